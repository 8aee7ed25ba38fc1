"""Card building blocks: pure functions from values to Adaptive Card JSON (schema 1.5, Teams)."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

CARD_VERSION = "1.5"
SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
# Teams documents message limits between 28 KB and ~100 KB (UTF-16); we keep every card under this.
CARD_BUDGET_BYTES = 25 * 1024
COPENHAGEN = ZoneInfo("Europe/Copenhagen")

Json = dict[str, Any]

_MD_INLINE = re.compile(r"([\\`*_\[\]<>~])")
# A line starting with "1. ", "- ", "+ ", "# " or "> " becomes a list, heading or quote in Teams' markdown.
_MD_LINE_START = re.compile(r"^(\s*)(\d+\.|[-+#>])[ \t]", re.MULTILINE)


def no_block_markdown(text: str) -> str:
    """Keep "1. Baggrund …" or "- Hvad skal der ske?" as written: a no-break space after the marker
    stops Teams from turning the line into a numbered or bulleted list (it looks the same)."""
    return _MD_LINE_START.sub(lambda m: f"{m.group(1)}{m.group(2)}\u00a0", text)


def md_escape(text: str) -> str:
    """Show user text as typed: neutralise the markdown Teams renders in TextBlocks and FactSets
    (emphasis, links, code; list/heading markers at the start of a line are handled by text_block)."""
    return _MD_INLINE.sub(r"\\\1", text)


def size_utf16(card: Json) -> int:
    return len(json.dumps(card, ensure_ascii=False, separators=(",", ":")).encode("utf-16-le"))


def da_datetime(value: datetime) -> str:
    local = value.astimezone(COPENHAGEN)
    return f"{local.day}.{local.month}.{local.year} kl. {local:%H:%M}"


def da_date(value: datetime) -> str:
    local = value.astimezone(COPENHAGEN)
    return f"{local.day}.{local.month}.{local.year}"


def preview(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: max(limit - 1, 1)].rstrip() + "…"


CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"


def card_activity(content: Json, summary: str = "") -> Json:
    """A message activity carrying one Adaptive Card (``summary``: the notification text)."""
    activity: Json = {"type": "message", "attachments": [{"contentType": CARD_CONTENT_TYPE, "content": content}]}
    if summary:
        activity["summary"] = summary
    return activity


def card(body: list[Json], actions: list[Json] | None = None) -> Json:
    result: Json = {
        "type": "AdaptiveCard",
        "$schema": SCHEMA,
        "version": CARD_VERSION,
        "msteams": {"width": "Full"},
        "body": body,
    }
    if actions:
        result["actions"] = actions
    return result


def text_block(
    text: str,
    *,
    size: str | None = None,
    weight: str | None = None,
    color: str | None = None,
    subtle: bool = False,
    spacing: str | None = None,
    separator: bool = False,
    style: str | None = None,
) -> Json:
    block: Json = {"type": "TextBlock", "text": no_block_markdown(text), "wrap": True}
    if size:
        block["size"] = size
    if weight:
        block["weight"] = weight
    if color:
        block["color"] = color
    if subtle:
        block["isSubtle"] = True
    if spacing:
        block["spacing"] = spacing
    if separator:
        block["separator"] = True
    if style:
        block["style"] = style
    return block


def heading(text: str, subtitle: str | None = None) -> list[Json]:
    blocks = [text_block(text, size="Large", weight="Bolder", style="heading")]
    if subtitle:
        blocks.append(text_block(subtitle, subtle=True, spacing="None"))
    return blocks


def notice(lines: list[str], *, color: str = "Attention") -> Json:
    return {
        "type": "Container",
        "style": "warning" if color == "Warning" else ("attention" if color == "Attention" else "emphasis"),
        "items": [text_block(line, color=color if color != "Default" else None) for line in lines],
    }


def action(title: str, verb: str, data: Json | None = None, *, inputs: bool = False) -> Json:
    """An Action.Execute (Universal Actions) with an Action.Submit fallback for older clients.

    ``inputs``: whether the card's inputs travel with the action. Validation of required answers is
    done on the server, so no action is blocked by client-side validation.
    """
    payload = dict(data or {})
    result: Json = {
        "type": "Action.Execute",
        "title": title,
        "verb": verb,
        "data": payload,
        "associatedInputs": "auto" if inputs else "none",
        "fallback": {
            "type": "Action.Submit",
            "title": title,
            "data": {**payload, "verb": verb},
            "associatedInputs": "auto" if inputs else "none",
        },
    }
    return result


def action_set(actions: list[Json], *, spacing: str | None = None) -> Json:
    block: Json = {"type": "ActionSet", "actions": actions}
    if spacing:
        block["spacing"] = spacing
    return block


def fact_set(facts: list[tuple[str, str]]) -> Json:
    return {
        "type": "FactSet",
        "facts": [{"title": no_block_markdown(title), "value": no_block_markdown(value)} for title, value in facts],
    }


# Teams' people picker: an Input.ChoiceSet searching the organisation (a Teams extension of the schema).
PEOPLE_QUERY: Json = {"type": "Data.Query", "dataset": "graph.microsoft.com/users"}


def people_picker(input_id: str, label: str, choices: list[tuple[str, str]], *, placeholder: str,
                  value: str = "") -> Json:
    """A multi-select people picker; ``choices`` (value, title) are offered up front. Choice titles are plain
    text in Teams (no markdown), so names are not escaped."""
    picker: Json = {
        "type": "Input.ChoiceSet",
        "id": input_id,
        "label": label,
        "isMultiSelect": True,
        "placeholder": placeholder,
        "choices": [{"title": title, "value": choice} for choice, title in choices],
        "choices.data": dict(PEOPLE_QUERY),
    }
    if value:
        picker["value"] = value
    return picker
