"""The languages of people's pages: Flask-Babel, with catalogues a member adds without touching code.

A service keeps its catalogues in one folder (the node's: ``node/translations/<lang>/LC_MESSAGES/
messages.po``). The languages offered are the folders found there plus English, the language the
templates are written in, so adding a language is: ``pybabel init``, translate the ``.po`` file, restart
(docs/operations.md). Catalogues are compiled to ``.mo`` at start-up when the ``.po`` is newer, so a
checkout never runs with stale translations; ``make translations`` does the same ahead of time.

Which language a page is in: the public pages carry it in their path (``/nl/report``), so a link or a
bookmark keeps it and no cookie is needed; the bare site address redirects by ``Accept-Language``. The
consoles are English for now (the roadmap brings their translations).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, current_app, request
from flask_babel import Babel

from service.config import ConfigError

log = logging.getLogger(__name__)

SOURCE_LANGUAGE = "en"


def compile_catalogues(directory: Path) -> list[str]:
    """Compile every ``.po`` under ``directory`` whose ``.mo`` is missing or older; return the languages.

    Raises:
        ConfigError: a catalogue cannot be read or its ``.mo`` cannot be written (naming the file).
    """
    languages = []
    for po in sorted(directory.glob("*/LC_MESSAGES/messages.po")):
        language = po.parent.parent.name
        languages.append(language)
        mo = po.with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        try:
            with po.open("rb") as source:
                catalogue = read_po(source, locale=language)
            # Written aside and renamed: processes starting together never read half a catalogue.
            partial = mo.with_name(f".{mo.name}.{os.getpid()}")
            with partial.open("wb") as target:
                write_mo(target, catalogue)
            os.replace(partial, mo)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{po}: cannot compile the catalogue ({exc}); run `make translations`") from exc
        log.info("compiled %s", mo)
    return languages


def init_app(app: Flask, *, translations: Path | None = None, locale_selector: Callable[[], str] | None = None) -> None:
    """Give a people's surface Flask-Babel: its catalogues, and how each request's language is chosen."""
    languages = [SOURCE_LANGUAGE]
    if translations is not None and translations.is_dir():
        languages += [lang for lang in compile_catalogues(translations) if lang != SOURCE_LANGUAGE]
    app.config["LANGUAGES"] = languages
    app.config["BABEL_DEFAULT_LOCALE"] = SOURCE_LANGUAGE
    if translations is not None:
        app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(translations)
    Babel(app, locale_selector=locale_selector or (lambda: SOURCE_LANGUAGE))


def languages() -> list[str]:
    found: list[str] = current_app.config.get("LANGUAGES", [SOURCE_LANGUAGE])
    return found


def negotiated() -> str:
    """The best of the offered languages for this request's ``Accept-Language`` (English if none fits)."""
    best = request.accept_languages.best_match(languages())
    return best or SOURCE_LANGUAGE


def display_name(code: str) -> str:
    """A language's name in itself (``Nederlands``, ``Deutsch``), for the switcher."""
    try:
        name = Locale.parse(code).get_display_name(code) or code
    except (ValueError, UnknownLocaleError):
        return code
    return name[:1].upper() + name[1:]
