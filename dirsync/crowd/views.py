"""The read-only Crowd `usermanagement` REST API (crowd-protocol §2), as a Flask blueprint.

Served under /rest/usermanagement/1 and the /latest alias. Views are thin: parse parameters,
call a query, hand rows to the negotiated renderer. Large lists stream from a cursor, so memory
does not grow with the directory. Every write endpoint answers 403 APPLICATION_PERMISSION_DENIED.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any, Callable

from flask import Blueprint, Response, current_app, g, request

from dirsync import feed, search
from dirsync.authentication import authenticate_user
from dirsync.crowd.bodies import is_json, parse_json, password_value
from dirsync.crowd.negotiate import renderer_for_request
from dirsync.crowd.render import chunked
from dirsync.errors import (
    EventTokenExpired,
    GroupNotFound,
    IllegalArgument,
    MembershipNotFound,
    ReadOnly,
    UserNotFound,
)
from dirsync.store import reads
from dirsync.store.db import Store
from dirsync.store.search import group_condition, user_condition

bp = Blueprint("crowd", __name__)
log = logging.getLogger(__name__)

DEFAULT_MAX_RESULTS = 1000
NO_CACHE = {"Cache-Control": "no-cache, no-store", "Pragma": "no-cache"}
ATTR_BATCH = 1000


@bp.url_value_preprocessor
def _pop_version(_endpoint: str | None, values: dict[str, Any] | None) -> None:
    if values is not None:
        g.api_version = values.pop("api_version", "1")


def _store() -> Store:
    return current_app.extensions["dirsync"].store


# --- parameters ------------------------------------------------------------------------------


def _required(name: str) -> str:
    value = request.args.get(name)
    if value is None or value == "":
        raise IllegalArgument(f"{name} query parameter required.")
    return value


def _int_arg(name: str, default: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise IllegalArgument(f"{name} must be a whole number, got {raw!r}") from None


def _paging() -> tuple[int, int | None]:
    start = _int_arg("start-index", 0)
    if start < 0:
        raise IllegalArgument(f"start-index must not be negative, got {start}")
    limit = _int_arg("max-results", DEFAULT_MAX_RESULTS)
    # -1 means "all" (the Java client's full sync); treat any negative the same, leniently.
    return start, (None if limit < 0 else limit)


def _expand() -> set[str]:
    tokens: set[str] = set()
    for value in request.args.getlist("expand"):
        tokens.update(t.strip().lower() for t in value.split(",") if t.strip())
    return tokens


# --- responses -------------------------------------------------------------------------------


def _respond(body: str | Iterable[bytes], status: int = 200) -> Response:
    renderer = renderer_for_request()
    return Response(body, status=status, content_type=renderer.content_type, headers=NO_CACHE)


def _with_attributes(
    conn: Any, rows: Iterable[Any], kind: str, wanted: bool
) -> Iterator[tuple[Any, dict | None]]:
    if not wanted:
        for row in rows:
            yield row, None
        return
    lookup = reads.user_attributes_of if kind == "user" else reads.group_attributes_of
    batch: list[Any] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= ATTR_BATCH:
            attrs = lookup(conn, [r.id for r in batch])
            yield from ((r, attrs[r.id]) for r in batch)
            batch = []
    if batch:
        attrs = lookup(conn, [r.id for r in batch])
        yield from ((r, attrs[r.id]) for r in batch)


def _user_entity(conn: Any, row: Any, expand: set[str]) -> Response:
    renderer = renderer_for_request()
    attrs = reads.user_attributes_of(conn, [row.id])[row.id] if "attributes" in expand else None
    return _respond(renderer.document(renderer.user(row, attrs, True)))


def _group_entity(conn: Any, row: Any, expand: set[str]) -> Response:
    renderer = renderer_for_request()
    attrs = reads.group_attributes_of(conn, [row.id])[row.id] if "attributes" in expand else None
    return _respond(renderer.document(renderer.group(row, attrs, True)))


def _user_list(conn: Any, rows: list[Any], expand: set[str]) -> Response:
    renderer = renderer_for_request()
    full = "user" in expand
    items = _with_attributes(conn, rows, "user", full and "attributes" in expand)
    return _respond(b"".join(chunked(renderer.users(items, full))))


def _group_list(conn: Any, rows: list[Any], expand: set[str]) -> Response:
    renderer = renderer_for_request()
    full = "group" in expand
    items = _with_attributes(conn, rows, "group", full and "attributes" in expand)
    return _respond(b"".join(chunked(renderer.groups(items, full))))


def _get_user(conn: Any, name: str) -> Any:
    row = reads.find_user(conn, name)
    if row is None:
        raise UserNotFound(name)
    return row


def _get_group(conn: Any, name: str) -> Any:
    row = reads.find_group(conn, name)
    if row is None:
        raise GroupNotFound(name)
    return row


# --- users -----------------------------------------------------------------------------------


@bp.get("/user")
def get_user() -> Response:
    """A user by `username` (or by `key`); `expand=attributes` adds its attributes."""
    with _store().read() as conn:
        key = request.args.get("key")
        if key and not request.args.get("username"):
            row = reads.find_user_by_key(conn, key)
            if row is None:
                raise UserNotFound(key)
        else:
            row = _get_user(conn, _required("username"))
        return _user_entity(conn, row, _expand())


@bp.get("/user/attribute")
def get_user_attributes() -> Response:
    """The attributes of a user."""
    renderer = renderer_for_request()
    with _store().read() as conn:
        row = _get_user(conn, _required("username"))
        attrs = reads.user_attributes_of(conn, [row.id])[row.id]
    return _respond(renderer.document(renderer.attributes(attrs, renderer.links.user_attributes(row.name))))


def _groups_of_user(nested: bool) -> Response:
    with _store().read() as conn:
        user = _get_user(conn, _required("username"))
        group_name = request.args.get("groupname")
        if group_name is not None:
            group = _get_group(conn, group_name)
            if not reads.is_user_member(conn, user.id, group.id, nested=nested):
                raise MembershipNotFound(user.name, group.name)
            return _group_entity(conn, group, _expand())
        start, limit = _paging()
        rows = reads.groups_of_user(conn, user.id, nested=nested, start=start, limit=limit)
        return _group_list(conn, rows, _expand())


@bp.get("/user/group/direct")
def get_user_direct_groups() -> Response:
    """Groups the user is a direct member of; with `groupname`, whether it is one."""
    return _groups_of_user(nested=False)


@bp.get("/user/group/nested")
def get_user_nested_groups() -> Response:
    """Groups the user is a member of directly or through nested groups."""
    return _groups_of_user(nested=True)


# --- groups ----------------------------------------------------------------------------------


@bp.get("/group")
def get_group() -> Response:
    """A group by `groupname`; `expand=attributes` adds its attributes."""
    with _store().read() as conn:
        return _group_entity(conn, _get_group(conn, _required("groupname")), _expand())


@bp.get("/group/attribute")
def get_group_attributes() -> Response:
    """The attributes of a group."""
    renderer = renderer_for_request()
    with _store().read() as conn:
        row = _get_group(conn, _required("groupname"))
        attrs = reads.group_attributes_of(conn, [row.id])[row.id]
    return _respond(renderer.document(renderer.attributes(attrs, renderer.links.group_attributes(row.name))))


def _users_of_group(nested: bool) -> Response:
    with _store().read() as conn:
        group = _get_group(conn, _required("groupname"))
        user_name = request.args.get("username")
        if user_name is not None:
            user = _get_user(conn, user_name)
            if not reads.is_user_member(conn, user.id, group.id, nested=nested):
                raise MembershipNotFound(user.name, group.name)
            return _user_entity(conn, user, _expand())
        start, limit = _paging()
        rows = reads.users_of_group(conn, group.id, nested=nested, start=start, limit=limit)
        return _user_list(conn, rows, _expand())


@bp.get("/group/user/direct")
def get_group_direct_users() -> Response:
    """Direct user members of a group; with `username`, whether the user is one."""
    return _users_of_group(nested=False)


@bp.get("/group/user/nested")
def get_group_nested_users() -> Response:
    """User members of a group, directly or through nested groups."""
    return _users_of_group(nested=True)


def _related_groups(relation: Callable[..., list[Any]], other_param: str, nested: bool,
                    child_side: bool) -> Response:
    with _store().read() as conn:
        group = _get_group(conn, _required("groupname"))
        other_name = request.args.get(other_param)
        if other_name is not None:
            other = _get_group(conn, other_name)
            child, parent = (other, group) if child_side else (group, other)
            if not reads.is_group_member(conn, child.id, parent.id, nested=nested):
                raise MembershipNotFound(child.name, parent.name)
            return _group_entity(conn, other, _expand())
        start, limit = _paging()
        rows = relation(conn, group.id, nested=nested, start=start, limit=limit)
        return _group_list(conn, rows, _expand())


@bp.get("/group/child-group/direct")
def get_child_groups_direct() -> Response:
    """Groups directly nested in a group; with `child-groupname`, whether one is."""
    return _related_groups(reads.child_groups, "child-groupname", False, True)


@bp.get("/group/child-group/nested")
def get_child_groups_nested() -> Response:
    """Groups nested in a group at any depth (the group itself excluded)."""
    return _related_groups(reads.child_groups, "child-groupname", True, True)


@bp.get("/group/parent-group/direct")
def get_parent_groups_direct() -> Response:
    """Groups a group is directly nested in; with `parent-groupname`, whether it is."""
    return _related_groups(reads.parent_groups, "parent-groupname", False, False)


@bp.get("/group/parent-group/nested")
def get_parent_groups_nested() -> Response:
    """Groups a group is nested in at any depth (the group itself excluded)."""
    return _related_groups(reads.parent_groups, "parent-groupname", True, False)


@bp.get("/group/membership")
def get_memberships() -> Response:
    """Every group with its direct user members and direct child groups, streamed."""
    renderer = renderer_for_request()
    store = _store()

    def generate() -> Iterator[bytes]:
        with store.read() as conn:
            yield from chunked(renderer.memberships(reads.iter_memberships(conn)))

    return _respond(generate())


# --- search ----------------------------------------------------------------------------------


def _entity_type() -> str:
    value = _required("entity-type").lower()
    if value not in ("user", "group"):
        raise IllegalArgument(f"Unknown type: {request.args['entity-type']}")
    return value


# entity type -> (condition compiler, query, renderer method name)
SEARCHES: dict[str, tuple[Callable[..., Any], Callable[..., Any], str]] = {
    "user": (user_condition, reads.search_users, "users"),
    "group": (group_condition, reads.search_groups, "groups"),
}


def _search(entity: str, restriction: search.Restriction) -> Response:
    start, limit = _paging()
    expand = _expand()
    full = entity in expand
    compile_condition, query, render = SEARCHES[entity]
    condition = compile_condition(restriction)
    render_list = getattr(renderer_for_request(), render)
    store = _store()

    def generate() -> Iterator[bytes]:
        with store.read() as conn:
            rows = query(conn, condition, start, limit)
            items = _with_attributes(conn, rows, entity, full and "attributes" in expand)
            yield from chunked(render_list(items, full))

    return _respond(generate())


@bp.post("/search")
def post_search() -> Response:
    """Users or groups matching a search restriction (XML or JSON body)."""
    entity = _entity_type()
    body = request.get_data(cache=False)
    if is_json(request.content_type, body):
        restriction = search.parse_json(parse_json(body, "search restriction"), entity=entity)
    else:
        restriction = search.parse_xml(body, entity=entity)
    return _search(entity, restriction)


@bp.get("/search")
def get_search() -> Response:
    """Users or groups matching a CQL `restriction` (empty = all)."""
    entity = _entity_type()
    return _search(entity, search.parse_cql(request.args.get("restriction", ""), entity=entity))


# --- authentication, config ------------------------------------------------------------------


@bp.post("/authentication")
def post_authentication() -> Response:
    """Check a user's password; answers the full user when it is right."""
    name = _required("username")
    password = password_value(request.get_data(cache=False), request.content_type)
    services = current_app.extensions["dirsync"]
    row = authenticate_user(services.store, name, password, services.directories)
    with _store().read() as conn:
        return _user_entity(conn, row, _expand())


@bp.get("/config/cookie")
def get_cookie_config() -> Response:
    """SSO cookie settings. dirsync does no SSO; the values are Crowd's defaults."""
    renderer = renderer_for_request()
    return _respond(renderer.cookie_config("crowd.token_key", False, None))


# --- events (incremental synchronisation) ----------------------------------------------------


def _application() -> str:
    application = getattr(g, "application", None)
    return application.name if application is not None else "?"


@bp.get("/event")
def get_event_token() -> Response:
    """The current event token; clients ask before and after every full synchronisation."""
    token = feed.current_token(_store())
    log.info("application %r took event token %s (full synchronisation)", _application(), token)
    return _respond(renderer_for_request().event_token(token))


@bp.get("/event/<path:token>")
def get_events(token: str) -> Response:
    """Every change since `token`, as net events, with the token to ask with next time."""
    settings = current_app.extensions["dirsync"].settings
    try:
        result = feed.read_feed(
            _store(), token,
            max_rows=settings.events_max_journal_rows, max_events=settings.events_max_events,
        )
    except EventTokenExpired as exc:
        log.info("application %r: incremental synchronisation refused, %s", _application(), exc)
        raise
    log.info(
        "application %r synchronised incrementally: %s -> %s, %d events from %d journal entries",
        _application(), token, result.token, len(result.events), result.journal_rows,
    )
    renderer = renderer_for_request()
    return _respond(b"".join(chunked(renderer.event_feed(result))))


# --- writes: the directory is read-only ------------------------------------------------------

WRITE_ROUTES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("/user", ("POST", "PUT", "DELETE")),
    ("/user/rename", ("POST",)),
    ("/user/password", ("PUT", "DELETE")),
    ("/user/mail/password", ("POST",)),
    ("/user/mail/usernames", ("POST",)),
    ("/user/expire-all-passwords", ("POST",)),
    ("/user/attribute", ("POST", "DELETE")),
    ("/user/group/direct", ("POST", "DELETE")),
    ("/group", ("POST", "PUT", "DELETE")),
    ("/group/attribute", ("POST", "DELETE")),
    ("/group/user/direct", ("POST", "DELETE")),
    ("/group/child-group/direct", ("POST", "DELETE")),
    ("/group/parent-group/direct", ("POST", "DELETE")),
)


def read_only() -> Response:
    """Writes are refused: the directory mirrors its source and is read-only to clients."""
    raise ReadOnly()


for _path, _methods in WRITE_ROUTES:
    bp.add_url_rule(
        _path, endpoint="write" + _path.replace("/", "_").replace("-", "_"),
        view_func=read_only, methods=list(_methods),
    )


def init_app(app: Any) -> None:
    prefix = "/rest/usermanagement/<any('1', 'latest'):api_version>"
    app.register_blueprint(bp, url_prefix=prefix)
