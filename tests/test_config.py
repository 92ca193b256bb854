"""``Settings.from_env``: defaults, derived values, and errors that name the bad variable."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from app.config import TABLE, ConfigError, Derived, Number, Settings


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.database_url is None
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert settings.external_url == "http://127.0.0.1:8080"
    assert settings.root_token is None
    assert settings.log_level == "info"
    assert settings.data_dir.name == "errgate"


def test_default_data_dir_follows_xdg(tmp_path) -> None:
    assert Settings.from_env({"XDG_DATA_HOME": str(tmp_path)}).data_dir == tmp_path / "errgate"


def test_default_data_dir_is_under_home_without_xdg(tmp_path) -> None:
    assert Settings.from_env({"HOME": str(tmp_path)}).data_dir == tmp_path / ".local" / "share" / "errgate"


def test_data_dir_home_is_the_given_environments(tmp_path) -> None:
    settings = Settings.from_env({"HOME": str(tmp_path), "ERRGATE_DATA_DIR": "~/pg"})
    assert settings.data_dir == tmp_path / "pg"


def test_only_the_given_mapping_is_read(monkeypatch, tmp_path) -> None:
    for name, value in {"XDG_DATA_HOME": "/elsewhere", "HOME": "/nowhere", "ERRGATE_PORT": "9999"}.items():
        monkeypatch.setenv(name, value)
    given = Settings.from_env({"HOME": str(tmp_path)})
    assert (given.port, given.data_dir) == (8080, tmp_path / ".local" / "share" / "errgate")
    # Without a mapping, the process environment is the one given.
    process = Settings.from_env()
    assert (process.port, process.data_dir) == (9999, Path("/elsewhere/errgate"))


def test_settings_built_directly_have_an_empty_environments_defaults() -> None:
    assert Settings() == Settings.from_env({})


def test_settings_are_immutable() -> None:
    settings = Settings.from_env({})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.port = 1  # type: ignore[misc]


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_wildcard_host_gives_a_localhost_external_url(host) -> None:
    settings = Settings.from_env({"ERRGATE_HOST": host, "ERRGATE_PORT": "9000"})
    assert settings.host == host
    assert settings.external_url == "http://localhost:9000"


def test_external_url_follows_host_and_port() -> None:
    settings = Settings.from_env({"ERRGATE_HOST": "10.1.2.3", "ERRGATE_PORT": "8181"})
    assert settings.external_url == "http://10.1.2.3:8181"


def test_explicit_values(tmp_path) -> None:
    env = {
        "DATABASE_URL": "postgresql://u:p@db:5432/errgate",
        "ERRGATE_HOST": "0.0.0.0",
        "ERRGATE_PORT": "80",
        "ERRGATE_EXTERNAL_URL": "https://errors.example.com/sub/",
        "ERRGATE_DATA_DIR": str(tmp_path),
        "ERRGATE_ROOT_TOKEN": "glpat-" + "x" * 20,
        "ERRGATE_LOG_LEVEL": "DEBUG",
    }
    settings = Settings.from_env(env)
    assert settings.database_url == "postgresql://u:p@db:5432/errgate"
    assert settings.port == 80
    assert settings.external_url == "https://errors.example.com/sub/"
    assert settings.data_dir == Path(tmp_path)
    assert settings.root_token == "glpat-" + "x" * 20
    assert settings.log_level == "debug"


@pytest.mark.parametrize("url", ["postgres://h/db", "postgresql://u@127.0.0.1:5432/db", "postgresql:///db?host=/tmp/s"])
def test_accepted_database_urls(url) -> None:
    assert Settings.from_env({"DATABASE_URL": url}).database_url == url


def test_blank_values_mean_unset() -> None:
    settings = Settings.from_env({"DATABASE_URL": "", "ERRGATE_PORT": "  ", "ERRGATE_ROOT_TOKEN": ""})
    assert (settings.database_url, settings.port, settings.root_token) == (None, 8080, None)


@pytest.mark.parametrize(
    "name, value",
    [
        ("ERRGATE_PORT", "abc"),
        ("ERRGATE_PORT", "70000"),
        ("ERRGATE_PORT", "0"),
        ("ERRGATE_PORT", "-1"),
        ("DATABASE_URL", "mysql://x"),
        ("DATABASE_URL", "not a url"),
        ("ERRGATE_EXTERNAL_URL", "ftp://x"),
        ("ERRGATE_EXTERNAL_URL", "errors.example.com"),
        ("ERRGATE_EXTERNAL_URL", "http://"),
        ("ERRGATE_ROOT_TOKEN", "short"),
        ("ERRGATE_ROOT_TOKEN", "x" * 19),
        ("ERRGATE_LOG_LEVEL", "loud"),
        ("ERRGATE_WORKERS", "many"),
        ("ERRGATE_DB_POOL_SIZE", "1"),
        ("ERRGATE_METRICS_PORT", "99999"),
        ("ERRGATE_KEY_CACHE_TTL_SECONDS", "soon"),
    ],
)
def test_bad_values_name_the_variable(name, value) -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({name: value})
    assert name in str(raised.value)


def test_root_token_of_twenty_characters_is_enough() -> None:
    assert Settings.from_env({"ERRGATE_ROOT_TOKEN": "x" * 20}).root_token == "x" * 20


def test_bad_sentry_dsn_is_named() -> None:
    for bad in ("not a dsn", "https://host/1", "https://key@host/app"):
        with pytest.raises(ConfigError, match="SENTRY_DSN"):
            Settings.from_env({"SENTRY_DSN": bad})
    good = "http://glet_abc@errgate.example.com/api/v4/error_tracking/collector/5"
    assert Settings.from_env({"SENTRY_DSN": good}).sentry_dsn == good


def test_database_timeout_is_read() -> None:
    assert Settings.from_env({"ERRGATE_DB_TIMEOUT_SECONDS": "2.5"}).db_timeout_seconds == 2.5
    with pytest.raises(ConfigError, match="ERRGATE_DB_TIMEOUT_SECONDS"):
        Settings.from_env({"ERRGATE_DB_TIMEOUT_SECONDS": "soon"})


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("ERRGATE_PORT", "abc", "ERRGATE_PORT: expected an integer, got 'abc'"),
        ("ERRGATE_PORT", "70000", "ERRGATE_PORT: must be between 1 and 65535, got '70000'"),
        ("ERRGATE_DB_TIMEOUT_SECONDS", "0.05", "ERRGATE_DB_TIMEOUT_SECONDS: must be between 0.1 and 300, got '0.05'"),
        ("ERRGATE_BATCH_MAX_WAIT_MS", "soon", "ERRGATE_BATCH_MAX_WAIT_MS: expected a number, got 'soon'"),
        ("ERRGATE_LOG_LEVEL", "loud",
         "ERRGATE_LOG_LEVEL: expected one of debug, info, warning, error, critical, got 'loud'"),
        ("DATABASE_URL", "mysql://x", "DATABASE_URL: expected a postgresql:// URL"),
        ("ERRGATE_ROOT_TOKEN", "short", "ERRGATE_ROOT_TOKEN: must be at least 20 characters long"),
    ],
)
def test_error_messages(name, value, message) -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({name: value})
    assert str(raised.value) == message


def test_every_attribute_has_one_row_and_every_variable_one_attribute() -> None:
    assert [row.name for row in TABLE] == [f.name for f in dataclasses.fields(Settings)]
    variables = [row.variable for row in TABLE]
    assert len(set(variables)) == len(variables)
    assert all(v.startswith("ERRGATE_") or v in ("DATABASE_URL", "SENTRY_DSN") for v in variables)
    assert all(row.meaning.strip() and "\n" not in row.meaning for row in TABLE)


PLAIN = [row for row in TABLE if row.default is not None and not isinstance(row.default, Derived)]


@pytest.mark.parametrize("row", PLAIN, ids=lambda row: row.variable)
def test_each_default_is_a_value_its_parser_accepts(row) -> None:
    assert row.parse(str(row.default), {}) == row.default
    assert getattr(Settings.from_env({row.variable: str(row.default)}), row.name) == row.default


BOUNDED = [row for row in TABLE if isinstance(row.parse, Number)]
# Settings bounded by another one too: the other set so that only the row's own range matters.
COMPANIONS = {"ERRGATE_WRITER_COMMITS_IN_FLIGHT": {"ERRGATE_DB_POOL_SIZE": "500"}}


@pytest.mark.parametrize("row", BOUNDED, ids=lambda row: row.variable)
def test_bounds_are_inclusive_and_enforced(row) -> None:
    low, high = row.parse.low, row.parse.high
    for inside in (low, high):
        env = {row.variable: str(inside), **COMPANIONS.get(row.variable, {})}
        assert getattr(Settings.from_env(env), row.name) == inside
    for outside in (low - 1, high + 1):
        with pytest.raises(ConfigError, match=f"^{row.variable}: must be between {low} and {high}, got"):
            Settings.from_env({row.variable: str(outside)})


def test_commits_in_flight_may_use_all_but_one_pooled_connection() -> None:
    assert Settings.from_env({}).writer_commits_in_flight == 1
    env = {"ERRGATE_WRITER_COMMITS_IN_FLIGHT": "3", "ERRGATE_DB_POOL_SIZE": "4"}
    assert Settings.from_env(env).writer_commits_in_flight == 3


@pytest.mark.parametrize(("commits", "pool_size"), [("10", "10"), ("5", "4")])
def test_commits_in_flight_must_be_below_the_pool_size(commits, pool_size) -> None:
    with pytest.raises(ConfigError, match="^ERRGATE_WRITER_COMMITS_IN_FLIGHT: .*ERRGATE_DB_POOL_SIZE"):
        Settings.from_env({"ERRGATE_WRITER_COMMITS_IN_FLIGHT": commits, "ERRGATE_DB_POOL_SIZE": pool_size})
