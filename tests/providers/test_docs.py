"""The provider table in docs/providers.md lists every provider the gateway knows."""

from __future__ import annotations

from pathlib import Path

from crossroads.providers.compatible import TABLE

DOC = (Path(__file__).resolve().parents[2] / "docs" / "providers.md").read_text()


def test_every_profile_is_documented_with_its_base_url() -> None:
    for profile in TABLE:
        row = next((line for line in DOC.splitlines() if line.startswith(f"| `{profile.slug}` |")), None)
        assert row is not None, f"docs/providers.md has no row for {profile.slug}"
        if profile.base_url:
            assert profile.base_url in row
