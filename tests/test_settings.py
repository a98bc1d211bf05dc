"""Configuration: file, environment, defaults, and the errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from dirsync.errors import ConfigError
from dirsync.settings import DEFAULT_DATABASE_URL, KEYS, load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "dirsync.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_are_local_and_safe() -> None:
    s = load_settings(environ={})
    assert s.database_url == DEFAULT_DATABASE_URL
    assert s.server_host == "127.0.0.1"
    assert s.server_trusted_proxies == ()


def test_file_then_environment(tmp_path: Path) -> None:
    path = write(tmp_path, """
database_url = "postgresql://dirsync@db/dirsync"
[server]
port = 9000
trusted_proxies = ["10.0.0.0/8", "::1"]
[auth]
cache_seconds = 5
""")
    s = load_settings(path, environ={"DIRSYNC_SERVER_PORT": "9100"})
    assert s.database_url == "postgresql://dirsync@db/dirsync"
    assert s.server_port == 9100  # the environment wins over the file
    assert s.server_trusted_proxies == ("10.0.0.0/8", "::1/128")
    assert s.auth_cache_seconds == 5


def test_config_path_from_environment(tmp_path: Path) -> None:
    path = write(tmp_path, "[log]\nlevel = 'debug'\n")
    assert load_settings(environ={"DIRSYNC_CONFIG": str(path)}).log_level == "DEBUG"


def test_lists_from_environment_are_comma_separated() -> None:
    s = load_settings(environ={"DIRSYNC_SERVER_TRUSTED_PROXIES": "10.1.0.0/16, 192.0.2.1"})
    assert s.server_trusted_proxies == ("10.1.0.0/16", "192.0.2.1/32")


@pytest.mark.parametrize(
    "text, env, key, fragment",
    [
        ("[server]\nport = 70000\n", {}, "server.port", "between 1 and 65535"),
        ("[server]\nport = 'eighty'\n", {}, "server.port", "whole number"),
        ("", {"DIRSYNC_SERVER_PORT": "x"}, "DIRSYNC_SERVER_PORT", "whole number"),
        ("[server]\nprot = 1\n", {}, "server.prot", "unknown key"),
        ("database_url = 'mysql://x'\n", {}, "database_url", "unsupported database"),
        ("[server]\ntrusted_proxies = ['10.1.2.3/8']\n", {}, "server.trusted_proxies",
         "did you mean 10.0.0.0/8"),
        ("[server]\ntrusted_proxies = ['proxy.example.com']\n", {}, "server.trusted_proxies",
         "CIDR"),
        ("[log]\nlevel = 'LOUD'\n", {}, "log.level", "DEBUG, INFO"),
        ("[server\n", {}, "--config", "not valid TOML"),
    ],
)
def test_bad_configuration_names_the_key(tmp_path: Path, text, env, key, fragment) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text), environ=env)
    assert info.value.key == key
    assert fragment in str(info.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_readme_documents_every_key() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    for key in KEYS:
        assert f"`{key.name}`" in readme, key.name


def test_readme_documents_every_directory_key() -> None:
    from dirsync.ldap.config import DIRECTORY_KEYS

    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    for key, _default, _meaning in DIRECTORY_KEYS:
        assert f"| `{key}` |" in readme, key


def test_directories_come_from_the_file_in_order(tmp_path: Path) -> None:
    path = tmp_path / "dirsync.toml"
    path.write_text(
        '[[directories]]\nname = "b"\npreset = "openldap"\nurls = ["ldap://127.0.0.1:1"]\n'
        'base_dn = "dc=b"\n\n'
        '[[directories]]\nname = "a"\npreset = "389ds"\nurls = "ldap://127.0.0.1:2"\n'
        'base_dn = "dc=a"\n'
    )
    settings = load_settings(path, environ={})
    assert [d.name for d in settings.directories] == ["b", "a"]
    path.write_text('[[directories]]\nname = "x"\npreset = "nope"\n')
    with pytest.raises(ConfigError, match=r"directories\[0\]"):
        load_settings(path, environ={})
