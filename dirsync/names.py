"""Case-folded lookup keys and LIKE-pattern escaping. Pure.

Crowd compares user and group names case-insensitively and returns them in their stored case.
We fold with Unicode casefold after NFC normalisation, so that "STRASSE", "straße" and a
decomposed "é" all find the entry they should.
"""

from __future__ import annotations

import unicodedata

LIKE_ESCAPE = "\\"


def name_key(name: str) -> str:
    """The key a name is stored and looked up under."""
    return unicodedata.normalize("NFC", name).casefold()


def like_escape(text: str) -> str:
    """Escape `text` for use inside a SQL LIKE pattern with ESCAPE '\\'."""
    return (
        text.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2)
        .replace("%", LIKE_ESCAPE + "%")
        .replace("_", LIKE_ESCAPE + "_")
    )
