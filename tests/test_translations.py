"""The public pages' catalogues: every string of the pages is in the template, and every language has
every string translated, with the same placeholders (a missing ``%(days)d`` would crash a page)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[1]
TRANSLATIONS = ROOT / "node" / "translations"
LANGUAGES = sorted(path.name for path in TRANSLATIONS.iterdir() if (path / "LC_MESSAGES" / "messages.po").exists())
PLACEHOLDER = re.compile(r"%\([a-z_]+\)[sd]")


def test_the_network_has_at_least_dutch_and_german() -> None:
    assert {"nl", "de"} <= set(LANGUAGES)


def test_the_template_holds_every_string_of_the_pages(tmp_path: Path) -> None:
    fresh = tmp_path / "messages.pot"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "extract",
            "-F",
            "babel.cfg",
            "-o",
            str(fresh),
            "--no-location",
            "--omit-header",
            "--sort-output",
            "-k",
            "_l",
            ".",
        ],
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    with fresh.open("rb") as source:
        wanted = {message.id for message in read_po(source) if message.id}
    with (TRANSLATIONS / "messages.pot").open("rb") as source:
        kept = {message.id for message in read_po(source) if message.id}
    assert wanted == kept, "run `make translations` and translate what it adds"


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_string_is_translated_with_the_same_placeholders(language: str) -> None:
    with (TRANSLATIONS / "messages.pot").open("rb") as source:
        template = {message.id for message in read_po(source) if message.id}
    with (TRANSLATIONS / language / "LC_MESSAGES" / "messages.po").open("rb") as source:
        catalogue = read_po(source, locale=language)
    assert not catalogue.fuzzy
    translated = {message.id: message.string for message in catalogue if message.id}
    missing = sorted(msgid for msgid in template if not translated.get(msgid))
    assert not missing, f"{language}: untranslated: {missing[:5]}"
    for msgid, text in translated.items():
        assert sorted(PLACEHOLDER.findall(msgid)) == sorted(PLACEHOLDER.findall(text)), (language, msgid)
