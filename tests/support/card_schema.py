"""Adaptive Card checks for the test suite.

Validates cards against the vendored official Adaptive Cards 1.5 schema (``adaptive-card-schema-1.5.json``,
see README.md) and a few Teams rules the schema does not express. The schema is read from the vendored
file rather than imported, because our own ``adaptive_cards`` package shadows the PyPI module.

The schema models every element list as ``anyOf`` over all element types, so a plain jsonschema run
reports one error per candidate type (~20 lines for a single bad element). ``card_errors`` instead
descends only into the branch whose ``type`` const/enum matches the instance's ``"type"``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft6Validator
from jsonschema.exceptions import ValidationError

SCHEMA_PATH = Path(__file__).with_name("adaptive-card-schema-1.5.json")

#: Card versions Teams renders (Teams supports Adaptive Cards up to 1.5).
TEAMS_CARD_VERSIONS = ("1.0", "1.1", "1.2", "1.3", "1.4", "1.5")

#: Teams' people picker: an ``Input.ChoiceSet`` with ``"choices.data": {"type": "Data.Query", "dataset": …}``
#: searching the organisation's users (or only the members of the current chat/team). A documented Teams
#: extension that the 1.5 schema rejects (``additionalProperties: false``).
PEOPLE_PICKER_DATASETS = ("graph.microsoft.com/users", "graph.microsoft.com/users?scope=currentContext")


@cache
def _schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@cache
def _validator() -> Draft6Validator:
    schema = _schema()
    Draft6Validator.check_schema(schema)
    return Draft6Validator(schema)


def _resolve_local(ref: str) -> dict[str, Any]:
    """Resolve a document-local ``#/...`` JSON pointer against the vendored schema."""
    if not ref.startswith("#"):
        raise ValueError(f"non-local $ref in Adaptive Card schema: {ref}")
    node: Any = _schema()
    for part in ref[1:].split("/"):
        if part:
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _type_values(subschema: Any, _seen: frozenset[str] = frozenset()) -> set[str]:
    """The ``"type"`` discriminator values a (sub)schema accepts: ``properties.type`` const/enum,
    followed through ``$ref``, ``allOf`` and ``anyOf``. Empty if the schema is not discriminated."""
    if not isinstance(subschema, dict):
        return set()
    values: set[str] = set()
    type_prop = subschema.get("properties", {}).get("type")
    if isinstance(type_prop, dict):
        if "const" in type_prop:
            values.add(type_prop["const"])
        values.update(v for v in type_prop.get("enum", ()) if isinstance(v, str))
    ref = subschema.get("$ref")
    if isinstance(ref, str) and ref not in _seen:
        values |= _type_values(_resolve_local(ref), _seen | {ref})
    for key in ("allOf", "anyOf"):
        for sub in subschema.get(key, ()):
            values |= _type_values(sub, _seen)
    return values


def _path(error: ValidationError) -> str:
    out = "$"
    for part in error.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _short(value: Any, limit: int = 40) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _flatten(error: ValidationError) -> Iterator[str]:
    """Turn one jsonschema error into readable lines, pruning irrelevant ``anyOf`` branches."""
    if error.validator != "anyOf" or not error.context:
        yield f"{_path(error)}: {error.message}"
        return

    branches: list[Any] = error.validator_value
    by_branch: dict[int, list[ValidationError]] = {}
    for sub in error.context:
        by_branch.setdefault(sub.schema_path[0], []).append(sub)

    def descend(indexes: Iterable[int]) -> Iterator[str]:
        for index in indexes:
            for sub in by_branch.get(index, ()):
                yield from _flatten(sub)

    if len(branches) == 1:
        yield from descend([0])
        return

    instance = error.instance
    branch_types = [_type_values(b) for b in branches]
    discriminated = [i for i, types in enumerate(branch_types) if types]
    if isinstance(instance, dict) and discriminated:
        kind = instance.get("type")
        if kind is None:
            yield f"{_path(error)}: missing required property 'type'"
            return
        matching = [i for i in discriminated if kind in branch_types[i]]
        if matching:
            yield from descend(matching)
            return
        known = sorted(set().union(*(branch_types[i] for i in discriminated)))
        yield f"{_path(error)}: unknown type {_short(kind)} (expected one of: {', '.join(known)})"
        return

    # Not a typed element (e.g. ``"color": "purple"`` against anyOf [Colors, null]): one line listing
    # the leaf reasons; the schema's case-insensitive regex twins of each enum are left out as noise.
    leaves = list(_leaves(error))
    reasons: list[str] = []
    for leaf in leaves:
        if leaf.validator == "pattern" and len(leaves) > 1:
            continue
        if leaf.message not in reasons:
            reasons.append(leaf.message)
    yield f"{_path(error)}: {_short(instance)} matches none of: " + " | ".join(reasons[:4])


def _leaves(error: ValidationError) -> Iterator[ValidationError]:
    if error.validator == "anyOf" and error.context:
        for sub in error.context:
            yield from _leaves(sub)
    else:
        yield error


def _teams_errors(card: Any) -> list[str]:
    if not isinstance(card, dict):
        return [f"$: card must be a JSON object, got {type(card).__name__}"]
    errors = []
    if card.get("type") != "AdaptiveCard":
        errors.append(f"$.type: must be 'AdaptiveCard' (got {_short(card.get('type'))})")
    if not isinstance(card.get("$schema"), str):
        errors.append("$.$schema: missing (expected 'http://adaptivecards.io/schemas/adaptive-card.json')")
    if card.get("version") not in TEAMS_CARD_VERSIONS:
        errors.append(
            f"$.version: must be one of {', '.join(TEAMS_CARD_VERSIONS)} for Teams "
            f"(got {_short(card.get('version'))})"
        )
    return errors


def _without_people_pickers(node: Any, path: str, errors: list[str]) -> Any:
    """A copy of ``node`` where every Input.ChoiceSet's ``choices.data`` (Teams' people picker) is
    checked and removed, so the schema validates the rest; problems with it go to ``errors``."""
    if isinstance(node, list):
        return [_without_people_pickers(item, f"{path}[{index}]", errors) for index, item in enumerate(node)]
    if not isinstance(node, dict):
        return node
    picker = node.get("type") == "Input.ChoiceSet" and "choices.data" in node
    if picker:
        query = node["choices.data"]
        if not (
            isinstance(query, dict)
            and set(query) == {"type", "dataset"}
            and query["type"] == "Data.Query"
            and query["dataset"] in PEOPLE_PICKER_DATASETS
        ):
            errors.append(
                f"{path}.choices.data: unsupported Teams people picker {_short(query, 80)} (expected "
                f'{{"type": "Data.Query", "dataset": one of {", ".join(PEOPLE_PICKER_DATASETS)}}})'
            )
    return {
        key: _without_people_pickers(value, f"{path}.{key}", errors)
        for key, value in node.items()
        if not (picker and key == "choices.data")
    }


def card_errors(card: dict) -> list[str]:
    """Readable problems with an Adaptive Card for Teams; an empty list means the card is valid.

    Each entry is ``"<path>: <message>"`` with a JSONPath-like path such as ``$.body[2].wrap``.
    Combines Adaptive Cards 1.5 schema validation (Draft 6) with Teams rules: top-level ``type``
    is ``AdaptiveCard``, ``$schema`` is present and ``version`` is "1.0".."1.5"; Teams' top-level
    ``msteams`` extension (``{"width": "Full"}``) is allowed, and so is Teams' people picker on an
    Input.ChoiceSet (``"choices.data": {"type": "Data.Query", "dataset": "graph.microsoft.com/users"}``,
    see ``PEOPLE_PICKER_DATASETS``; any other ``choices.data`` is reported).
    """
    lines: list[str] = []
    card = _without_people_pickers(card, "$", lines)
    # Teams' documented extension on the card (not in the 1.5 schema): "msteams": {"width": "Full"}.
    msteams = card.get("msteams") if isinstance(card, dict) else None
    if msteams is not None:
        if not (isinstance(msteams, dict) and set(msteams) <= {"width", "entities"}
                and msteams.get("width", "Full") == "Full"):
            lines.append(f"$.msteams: unsupported Teams extension {msteams!r}")
        card = {key: value for key, value in card.items() if key != "msteams"}
    for error in sorted(
        _validator().iter_errors(card), key=lambda e: [(isinstance(p, str), p) for p in e.absolute_path]
    ):
        for line in _flatten(error):
            if line not in lines:
                lines.append(line)
    for line in _teams_errors(card):
        if line not in lines:
            lines.append(line)
    return lines


def card_size_utf16(card: dict) -> int:
    """Byte length of the card's compact JSON (no ASCII escaping) encoded as UTF-16-LE."""
    return len(json.dumps(card, ensure_ascii=False, separators=(",", ":")).encode("utf-16-le"))
