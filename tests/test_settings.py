"""Settings from defaults, YAML and CROSSROADS_* variables, with errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from crossroads.settings import Settings, SettingsError, default_database_url, load_settings, prepare_database


def test_defaults_bind_loopback_8787() -> None:
    settings = load_settings(env={})
    assert (settings.host, settings.port, settings.workers) == ("127.0.0.1", 8787, 1)
    assert settings.trusted_custom_hosts == ("localhost", "127.0.0.1", "::1")


def test_file_then_environment(tmp_path: Path) -> None:
    path = tmp_path / "crossroads.yaml"
    path.write_text("port: 9000\nworkers: 2\nproviders:\n  openai:\n    base_url: http://proxy:8080/v1\n")
    settings = load_settings(path, env={"CROSSROADS_PORT": "9100", "CROSSROADS_TRUSTED_CUSTOM_HOSTS": "a, b"})
    assert settings.port == 9100 and settings.workers == 2
    assert settings.trusted_custom_hosts == ("a", "b")
    assert settings.providers["openai"].base_url == "http://proxy:8080/v1"
    settings = load_settings(
        env={"CROSSROADS_CONFIG": str(path), "CROSSROADS_PROVIDERS__GROQ__BASE_URL": "http://g/v1"}
    )
    assert settings.port == 9000 and settings.providers["groq"].base_url == "http://g/v1"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("prot: 1\n", "unknown key `prot`; valid keys: host, port"),
        (
            "providers:\n  openai:\n    baseurl: x\n",
            "unknown key `baseurl` in `providers.openai`; valid keys: base_url",
        ),
        ("port: 99999\n", "port"),
        ("port: eighty\n", "Expected `int`"),
        ("log_level: loud\n", "log_level"),
        ("- a\n- b\n", "must hold a mapping"),
        ("port: [\n", "not valid YAML"),
    ],
)
def test_bad_files_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(SettingsError) as caught:
        load_settings(path, env={})
    assert message in str(caught.value)
    assert (
        str(path) in str(caught.value) or "valid YAML" in str(caught.value) or "mapping" in str(caught.value)
    )


def test_unknown_environment_variable_is_an_error() -> None:
    with pytest.raises(SettingsError, match="CROSSROADS_PROT"):
        load_settings(env={"CROSSROADS_PROT": "1"})


def test_missing_file() -> None:
    with pytest.raises(SettingsError, match="cannot read settings file"):
        load_settings("/nonexistent/crossroads.yaml", env={})


def test_documented_keys_match_the_struct() -> None:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "settings.md").read_text()
    for field in Settings.__struct_fields__:
        assert f"`{field}`" in doc, f"docs/settings.md does not document {field}"


def test_the_default_database_is_in_the_users_data_directory(tmp_path: Path) -> None:
    env = {"XDG_DATA_HOME": str(tmp_path / "data"), "HOME": str(tmp_path / "home")}
    assert load_settings(env=env).database_url == f"sqlite:///{tmp_path}/data/crossroads/crossroads.db"
    # Without XDG_DATA_HOME, or with a relative one (the XDG spec ignores those): ~/.local/share.
    home = f"sqlite:///{tmp_path}/home/.local/share/crossroads/crossroads.db"
    assert load_settings(env={"HOME": str(tmp_path / "home")}).database_url == home
    assert load_settings(env={**env, "XDG_DATA_HOME": "relative/dir"}).database_url == home
    # The setting wins; nothing is created by reading settings.
    chosen = load_settings(env={**env, "CROSSROADS_DATABASE_URL": "sqlite:///x.db"})
    assert chosen.database_url == "sqlite:///x.db"
    assert list(tmp_path.iterdir()) == []
    assert default_database_url(env) == load_settings(env=env).database_url


def test_only_the_default_database_directory_is_created(tmp_path: Path) -> None:
    env = {"XDG_DATA_HOME": str(tmp_path / "data")}
    prepare_database(load_settings(env=env), env)
    assert (tmp_path / "data" / "crossroads").is_dir()
    chosen = load_settings(env={**env, "CROSSROADS_DATABASE_URL": f"sqlite:///{tmp_path}/elsewhere/c.db"})
    prepare_database(chosen, env)
    assert not (tmp_path / "elsewhere").exists()  # a path the user chose must exist: it is not guessed
