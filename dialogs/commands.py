"""Text commands of the 1:1 chat: case- and accent-insensitive, tolerant of punctuation."""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum


class Command(StrEnum):
    NEW = "ny sag"
    CONTINUE = "fortsæt"
    LIST = "mine sager"
    HELP = "hjælp"
    UNKNOWN = ""


_FOLD = str.maketrans({"æ": "ae", "ø": "oe", "å": "aa"})
_ALIASES = {
    "ny sag": Command.NEW,
    "ny": Command.NEW,
    "start": Command.NEW,
    "opret sag": Command.NEW,
    "fortsaet": Command.CONTINUE,
    "fortsat": Command.CONTINUE,
    "fortsaet sag": Command.CONTINUE,
    "videre": Command.CONTINUE,
    "mine sager": Command.LIST,
    "sager": Command.LIST,
    "mine": Command.LIST,
    "hjaelp": Command.HELP,
    "help": Command.HELP,
    "hjalp": Command.HELP,
    "?": Command.HELP,
}


def normalise(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.casefold())
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch)).translate(_FOLD)
    if folded.strip() == "?":
        return "?"
    folded = re.sub(r"[^\w\s]", " ", folded)
    return " ".join(folded.split())


def parse(text: str | None) -> Command:
    if not text:
        return Command.UNKNOWN
    return _ALIASES.get(normalise(text), Command.UNKNOWN)
