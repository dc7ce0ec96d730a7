"""The README documents every setting, and says the same as the code."""

from __future__ import annotations

from pathlib import Path

from db.settings import Settings
from db.settings_doc import render_into

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_settings_table_is_current() -> None:
    text = README.read_text()
    assert render_into(text) == text, "README settings table is stale: run `python -m db.settings_doc`"
    for name in Settings.model_fields:
        assert f"VOICECAP_{name.upper()}" in text


def test_every_setting_is_described() -> None:
    undocumented = [name for name, field in Settings.model_fields.items() if not field.description]
    assert undocumented == []
