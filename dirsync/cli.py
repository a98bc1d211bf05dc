"""The `dirsync` command. Operators' scripts rely on these command names.

Errors the operator can fix (bad configuration, bad fixtures, unknown application) end the
command with a one-line message and exit status 2, never a traceback.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

import click

from dirsync import feed, netacl, passwords
from dirsync.errors import DirsyncError
from dirsync.ldap.config import DirectoryConfig
from dirsync.names import name_key
from dirsync.settings import Settings, load_settings
from dirsync.store import apps as store_apps
from dirsync.store.db import Store

DEMO_APPLICATION = "bitbucket"
DEMO_FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "demo.ldif"
FIXTURE_DIRECTORY = "fixtures"


def _fail(message: str) -> NoReturn:
    click.echo(f"dirsync: {message}", err=True)
    sys.exit(2)


class _Context:
    def __init__(self, config: str | None, overrides: dict[str, Any]) -> None:
        self.config = config
        self.overrides = overrides
        self._settings: Settings | None = None
        self._store: Store | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config, overrides=self.overrides)
            logging.basicConfig(
                level=self._settings.log_level,
                format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            )
        return self._settings

    def close(self) -> None:
        if self._store is not None:
            self._store.dispose()

    def store(self, *, check: bool = True) -> Store:
        if self._store is None:
            self._store = Store(self.settings.database_url)
            if check:
                self._store.check_schema()
        return self._store


pass_ctx = click.make_pass_decorator(_Context)


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DirsyncError as exc:
            _fail(str(exc))


@click.group(cls=_Group)
@click.option("--config", envvar="DIRSYNC_CONFIG", type=click.Path(dir_okay=False),
              help="TOML configuration file (or DIRSYNC_CONFIG).")
@click.version_option(package_name="dirsync")
@click.pass_context
def main(ctx: click.Context, config: str | None) -> None:
    """dirsync: a Crowd-compatible user server for Atlassian Data Center products."""
    ctx.obj = _Context(config, {})
    ctx.call_on_close(ctx.obj.close)


@main.command()
@pass_ctx
def init(ctx: _Context) -> None:
    """Create or upgrade the store's schema."""
    store = ctx.store(check=False)
    result = store.init_schema()
    click.echo(f"store {store.safe_url}: schema {result}")


# --- fixtures --------------------------------------------------------------------------------


@main.group()
def fixtures() -> None:
    """Seed the store from fixture files (LDIF, YAML, JSON)."""


def load_fixtures(store: Store, paths: list[str], settings: Settings) -> Any:
    from dirsync.fixtures import load_fixture_files
    from dirsync.sync.fixtures import apply_fixtures

    snapshot = load_fixture_files(paths)
    return apply_fixtures(store, FIXTURE_DIRECTORY, snapshot, settings.events_max_journal_rows)


@fixtures.command("load")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@pass_ctx
def fixtures_load(ctx: _Context, paths: tuple[str, ...]) -> None:
    """Load fixture files; only the difference to the store is applied.

    All files together form one directory: a user or group missing from them is removed."""
    counts = load_fixtures(ctx.store(), list(paths), ctx.settings)
    if counts.total:
        click.echo(f"applied: {counts.summary()}")
    else:
        click.echo("no changes: the store already matches the fixtures")


# --- applications ----------------------------------------------------------------------------


@main.group()
def app() -> None:
    """Client applications allowed to use the Crowd API."""


def _networks(values: tuple[str, ...]) -> list[str]:
    out = []
    for value in values:
        try:
            out.append(str(netacl.parse_network(value)))
        except ValueError as exc:
            _fail(f"--allow {value}: {exc}")
    return out


def _read_password(from_stdin: bool) -> tuple[str, bool]:
    if not from_stdin:
        return passwords.generate_password(), True
    password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < 12:
        _fail("the password read from standard input must be at least 12 characters")
    return password, False


@app.command("add")
@click.argument("name")
@click.option("--allow", "allow", multiple=True, required=True, metavar="CIDR",
              help="Address or CIDR range allowed to connect; repeat for several.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@pass_ctx
def app_add(ctx: _Context, name: str, allow: tuple[str, ...], password_stdin: bool) -> None:
    """Create an application (prints a generated password once)."""
    networks = _networks(allow)
    if not name.strip() or name != name.strip() or ":" in name:
        _fail("an application name must be non-empty, without surrounding spaces or ':'")
    password, generated = _read_password(password_stdin)
    with ctx.store().write() as conn:
        store_apps.add_application(conn, name, passwords.hash_app_password(password), networks)
    click.echo(f"application {name} created, allowed from {', '.join(networks)}")
    if generated:
        click.echo(f"password (shown once): {password}")


@app.command("list")
@pass_ctx
def app_list(ctx: _Context) -> None:
    """List applications and their allow-lists."""
    with ctx.store().read() as conn:
        found = store_apps.list_applications(conn)
    if not found:
        click.echo("no applications; create one with: dirsync app add NAME --allow CIDR")
    for application in found:
        click.echo(f"{application.name}\t{', '.join(application.networks) or '(no address allowed)'}")


@app.command("remove")
@click.argument("name")
@pass_ctx
def app_remove(ctx: _Context, name: str) -> None:
    """Delete an application."""
    with ctx.store().write() as conn:
        store_apps.remove_application(conn, name)
    click.echo(f"application {name} removed")


@app.command("allow")
@click.argument("name")
@click.argument("cidr", nargs=-1, required=True)
@pass_ctx
def app_allow(ctx: _Context, name: str, cidr: tuple[str, ...]) -> None:
    """Allow more addresses or CIDR ranges for an application."""
    with ctx.store().write() as conn:
        application = store_apps.allow_networks(conn, name, _networks(cidr))
    click.echo(f"application {application.name} allowed from {', '.join(application.networks)}")


@app.command("deny")
@click.argument("name")
@click.argument("cidr", nargs=-1, required=True)
@pass_ctx
def app_deny(ctx: _Context, name: str, cidr: tuple[str, ...]) -> None:
    """Remove addresses or CIDR ranges from an application's allow-list."""
    with ctx.store().write() as conn:
        application = store_apps.deny_networks(conn, name, _networks(cidr))
    click.echo(f"application {application.name} allowed from "
               f"{', '.join(application.networks) or '(no address)'}")


@app.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@pass_ctx
def app_passwd(ctx: _Context, name: str, password_stdin: bool) -> None:
    """Set a new password (prints a generated one once)."""
    password, generated = _read_password(password_stdin)
    with ctx.store().write() as conn:
        store_apps.set_password_hash(conn, name, passwords.hash_app_password(password))
    click.echo(f"password of application {name} changed")
    if generated:
        click.echo(f"password (shown once): {password}")


# --- serving ---------------------------------------------------------------------------------


# --- LDAP directories ------------------------------------------------------------------------


class _Progress:
    """Phase, entries read and rate on stderr: rewritten in place on a terminal, a line every
    few seconds otherwise (logs, CI)."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.phase = ""
        self.phase_started = self.last_shown = time.monotonic()

    def __call__(self, phase: str, entries: int) -> None:
        now = time.monotonic()
        if phase != self.phase:
            if self.phase and self.tty:
                click.echo("", err=True)
            self.phase, self.phase_started = phase, now
        elif now - self.last_shown < (0.2 if self.tty else 5.0):
            return
        self.last_shown = now
        elapsed = now - self.phase_started
        rate = f", {entries / elapsed:,.0f}/s" if elapsed > 0.5 else ""
        text = f"{phase}: {entries:,} entries{rate}"
        if self.tty:
            click.echo("\r" + text.ljust(60), err=True, nl=False)
        else:
            click.echo(text, err=True)

    def done(self) -> None:
        if self.tty and self.phase:
            click.echo("", err=True)


def _directory(settings: Settings, name: str) -> DirectoryConfig:
    for config in settings.directories:
        if name_key(config.name) == name_key(name):
            return config
    known = ", ".join(d.name for d in settings.directories) or "none are configured"
    _fail(f"no directory named {name!r} in the configuration ({known})")


@main.command("sync")
@click.argument("name", required=False)
@click.option("--full", is_flag=True,
              help="A full sync even where an incremental one would do.")
@click.option("--allow-mass-delete", is_flag=True,
              help="Apply even if more than mass_delete_threshold of the users or groups go.")
@pass_ctx
def sync_command(ctx: _Context, name: str | None, full: bool, allow_mass_delete: bool) -> None:
    """Sync one directory (NAME) or all of them now, with progress."""
    from dirsync.sync.mirror import sync_directory

    settings = ctx.settings
    configs = [_directory(settings, name)] if name else list(settings.directories)
    if not configs:
        _fail("no [[directories]] in the configuration; nothing to sync")
    order = [d.name for d in settings.directories]
    failed = False
    for config in configs:
        progress = _Progress()
        click.echo(f"syncing {config.name} ...", err=True)
        result = sync_directory(ctx.store(), config, order, full=full,
                                allow_mass_delete=allow_mass_delete,
                                progress=progress, journal_limit=settings.events_max_journal_rows)
        progress.done()
        click.echo(result.summary())
        failed = failed or result.status != "ok"
    if failed:
        sys.exit(1)


@main.command("status")
@click.option("--history", "history", type=int, default=10, show_default=True,
              help="How many recent runs to list.")
@pass_ctx
def status_command(ctx: _Context, history: int) -> None:
    """Each directory's sync state and the recent sync history."""
    from dirsync.store import runs
    from dirsync.sync.mirror import directory_status

    store = ctx.store()
    for config in ctx.settings.directories:
        click.echo(directory_status(store, config.name).describe())
    with store.read() as conn:
        recent = runs.history(conn, limit=history)
    if recent:
        click.echo("\nrecent runs (newest first):")
    for run in recent:
        counts = f"+{run.added} ~{run.updated} -{run.deleted}"
        line = (f"  {run.started_at:%Y-%m-%d %H:%M:%S}Z  {run.directory:<16} {run.mode:<11} "
                f"{run.status:<8} {counts}")
        if run.finished_at is not None:
            line += f"  {(run.finished_at - run.started_at).total_seconds():.1f}s"
        click.echo(line)
        if run.error:
            click.echo(f"      error: {run.error}")
        if run.notes:
            click.echo(f"      notes: {run.notes}")


@main.group("directory")
def directory_group() -> None:
    """LDAP directories in the configuration."""


@directory_group.command("test")
@click.argument("name")
@pass_ctx
def directory_test(ctx: _Context, name: str) -> None:
    """Check connection, TLS, bind, base DNs and filters of directory NAME."""
    from dirsync.ldap.probe import test_directory

    results = test_directory(_directory(ctx.settings, name))
    for result in results:
        count = f" ({result.count:,} entries)" if result.count is not None else ""
        click.echo(f"{result.status.upper():<7} {result.check}: {result.message}{count}")
    if not all(r.ok for r in results):
        sys.exit(1)


@main.group()
def events() -> None:
    """The event journal behind incremental synchronisation."""


@events.command("status")
@pass_ctx
def events_status(ctx: _Context) -> None:
    """Show the current token and what the journal retains."""
    status = feed.status(ctx.store())
    click.echo(f"current token:   {status.token}")
    click.echo(f"journal entries: {status.entries}")
    oldest = status.oldest.isoformat(timespec="seconds") if status.oldest else "-"
    click.echo(f"oldest entry:    {oldest}")
    click.echo(f"tokens valid from seq {status.trimmed_through} "
               "(older tokens get EVENT_TOKEN_EXPIRED and a full sync)")


@events.command("trim")
@pass_ctx
def events_trim(ctx: _Context) -> None:
    """Trim the journal to the configured retention now (the server also does it hourly)."""
    settings = ctx.settings
    result = feed.trim(ctx.store(), days=settings.events_retention_days,
                       keep=settings.events_retention_count)
    click.echo(f"removed {result.deleted} journal entries; tokens valid from seq {result.trimmed_through}")


@main.command()
@click.option("--host", help="Listen address (default from server.host: 127.0.0.1).")
@click.option("--port", type=int, help="Listen port (default from server.port: 8095).")
@pass_ctx
def serve(ctx: _Context, host: str | None, port: int | None) -> None:
    """Serve the Crowd API with gunicorn."""
    ctx.overrides.update({"server.host": host, "server.port": port})
    ctx.store()  # fail now, not in every worker, if the store is not ready
    from dirsync.server import serve as run

    click.echo(f"dirsync serving {ctx.settings.database_url.split('://')[0]} store on "
               f"http://{ctx.settings.server_host}:{ctx.settings.server_port}/")
    run(ctx.settings)


@main.command()
@click.option("--port", type=int, help="Port to listen on (default from server.port: 8095).")
@click.option("--fixture", "fixture_paths", multiple=True, type=click.Path(exists=True),
              help="Fixture files to load instead of the bundled demo.")
@pass_ctx
def demo(ctx: _Context, port: int | None, fixture_paths: tuple[str, ...]) -> None:
    """Set up a local test environment and serve it on 127.0.0.1.

    Creates the store, loads the demo fixture, (re)creates the application `bitbucket` with a
    new random password for 127.0.0.1 and ::1, prints what to type into Bitbucket, and serves."""
    ctx.overrides.update({"server.host": "127.0.0.1", "server.port": port})
    settings = ctx.settings
    store = ctx.store(check=False)
    store.init_schema()
    paths = list(fixture_paths) or [str(DEMO_FIXTURE)]
    if not fixture_paths and not DEMO_FIXTURE.exists():
        _fail(f"the demo fixture {DEMO_FIXTURE} is missing; pass --fixture PATH")
    counts = load_fixtures(store, paths, settings)
    password = passwords.generate_password()
    with store.write() as conn:
        if store_apps.find_application(conn, DEMO_APPLICATION) is not None:
            store_apps.remove_application(conn, DEMO_APPLICATION)
        store_apps.add_application(conn, DEMO_APPLICATION, passwords.hash_app_password(password),
                                   ["127.0.0.1/32", "::1/128"])
    url = f"http://127.0.0.1:{settings.server_port}"
    click.echo(
        f"""
dirsync demo: store {store.safe_url}, fixtures {', '.join(paths)} ({counts.summary()})

In Bitbucket: Administration > User directories > Add directory > Atlassian Jira
  Server URL:           {url}
  Application name:     {DEMO_APPLICATION}
  Application password: {password}
  (shown once; run `dirsync demo` again for a new one)

Try it:
  curl -u '{DEMO_APPLICATION}:{password}' -H 'Accept: application/json' \\
    '{url}/rest/usermanagement/1/user/group/nested?username=alice'
"""
    )
    store.dispose()
    from dirsync.server import serve as run

    run(settings)


if __name__ == "__main__":
    main()
