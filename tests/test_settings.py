"""Settings from defaults, YAML and CROSSROADS_* variables, with errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from crossroads.settings import Settings, SettingsError, load_settings


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
