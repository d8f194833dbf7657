"""The config reference in README.md and docs/aws.md is what the models say (defaults, meanings)."""

from __future__ import annotations

from tools import config_reference


def test_the_docs_tables_are_generated_from_the_models():
    stale = {path: text for path, text in config_reference.generated().items() if path.read_text() != text}
    assert stale == {}, "run: python -m tools.config_reference"
    assert config_reference.main(["--check"]) == 0


def test_every_key_has_a_meaning_and_lands_in_exactly_one_table():
    keys = {}
    for table in config_reference.TABLES:
        for row in config_reference.rows(table)[2:]:
            key = row.split("`")[1]
            # Keys each target defines its own way (a bucket, who authenticates).
            assert key not in keys or key in ("artifactStore.bucket", "auth.mode", "auth.adminUsername"), (
                key,
                keys.get(key),
                table,
            )
            keys.setdefault(key, table)
            assert row.rstrip(" |").rsplit("|", 1)[-1].strip(), f"{key} has no description"
    assert {"tracking.workers", "proxy.maxUploadSize", "aws.network.interfaceEndpoints"} <= set(keys)


def test_a_changed_default_makes_the_docs_stale(monkeypatch):
    from components.config.base import TrackingSettings

    field = TrackingSettings.model_fields["workers"]
    monkeypatch.setattr(field, "default", 3)
    assert config_reference.main(["--check"]) == 1
