"""Proves tests/support/card_schema.py catches real card mistakes with short, path-bearing messages."""

from __future__ import annotations

import copy
import json

import pytest
from jsonschema import Draft6Validator

from tests.support.card_schema import SCHEMA_PATH, card_errors, card_size_utf16

CARD_SCHEMA_URL = "http://adaptivecards.io/schemas/adaptive-card.json"


def _card(body: list[dict], **extra) -> dict:
    return {"$schema": CARD_SCHEMA_URL, "type": "AdaptiveCard", "version": "1.5", "body": body, **extra}


def _valid_card() -> dict:
    submit = {
        "type": "Action.Execute",
        "title": "Gem",
        "verb": "gem_dialoggrundlag",
        "data": {"sagId": "abc-123", "trin": 2},
        "associatedInputs": "auto",
        "style": "positive",
    }
    return _card(
        [
            {
                "type": "TextBlock",
                "text": "Dialoggrundlag",
                "size": "large",
                "weight": "bolder",
                "wrap": True,
            },
            {
                "type": "Container",
                "style": "emphasis",
                "items": [
                    {
                        "type": "FactSet",
                        "facts": [
                            {"title": "Sag", "value": "Sårpleje efter udskrivelse"},
                            {"title": "Status", "value": "Kladde"},
                        ],
                    }
                ],
            },
            {
                "type": "ColumnSet",
                "columns": [
                    {
                        "type": "Column",
                        "width": "stretch",
                        "items": [{"type": "Input.Date", "id": "frist", "label": "Frist"}],
                    },
                    {
                        "type": "Column",
                        "width": "auto",
                        "items": [
                            {
                                "type": "Input.ChoiceSet",
                                "id": "sektor",
                                "label": "Fra sektor",
                                "style": "expanded",
                                "choices": [
                                    {"title": "Region", "value": "region"},
                                    {"title": "Kommune", "value": "kommune"},
                                    {"title": "Almen praksis", "value": "praksis"},
                                ],
                            }
                        ],
                    },
                ],
            },
            {
                "type": "Input.Text",
                "id": "beskrivelse",
                "label": "Beskriv opgaven",
                "isMultiline": True,
                "maxLength": 2000,
                "isRequired": True,
                "errorMessage": "Skriv en kort beskrivelse",
            },
        ],
        actions=[submit],
        refresh={
            "action": {"type": "Action.Execute", "verb": "opdater", "data": {"sagId": "abc-123"}},
            "userIds": ["29:1abc"],
        },
    )


def test_valid_card_passes() -> None:
    assert card_errors(_valid_card()) == []


def test_unknown_element_type_gives_one_line_not_one_per_candidate() -> None:
    card = _valid_card()
    card["body"].append({"type": "TextBlok", "text": "tastefejl i typen"})

    errors = card_errors(card)

    assert len(errors) == 1, errors
    assert errors[0].startswith("$.body[4]: unknown type")
    assert '"TextBlok"' in errors[0] and "TextBlock" in errors[0]
    # Without the anyOf pruning jsonschema reports one sub-error per element type.
    raw = Draft6Validator(json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))).iter_errors(card)
    assert sum(_leaf_count(e) for e in raw) >= 15


def _leaf_count(error) -> int:
    return sum(_leaf_count(sub) for sub in error.context) if error.context else 1


def test_unknown_action_type() -> None:
    errors = card_errors(_card([], actions=[{"type": "Action.Sumbit", "title": "Send"}]))
    assert len(errors) == 1, errors
    assert errors[0].startswith("$.actions[0]: unknown type") and "Action.Submit" in errors[0]


@pytest.mark.parametrize(
    ("element", "bad_property"),
    [
        ({"type": "TextBlock", "text": "hej", "wrapp": True}, "wrapp"),
        ({"type": "Input.Text", "id": "x", "label": "Tekst", "isMultiLine": True}, "isMultiLine"),
    ],
)
def test_misspelled_property_is_flagged(element: dict, bad_property: str) -> None:
    # The 1.5 schema sets additionalProperties: false on element definitions, so typos really fail.
    card = _valid_card()
    card["body"][1]["items"].append(element)

    errors = card_errors(card)

    assert len(errors) == 1, errors
    assert errors[0].startswith("$.body[1].items[1]: ")
    assert f"'{bad_property}' was unexpected" in errors[0]


def test_wrong_type_for_wrap_points_at_the_property() -> None:
    card = _valid_card()
    card["body"][0]["wrap"] = "true"

    errors = card_errors(card)

    assert errors == ["$.body[0].wrap: 'true' is not of type 'boolean'"]


def test_wrong_type_deep_inside_columns() -> None:
    card = _valid_card()
    card["body"][2]["columns"][1]["items"][0]["isMultiSelect"] = "ja"

    errors = card_errors(card)

    assert len(errors) == 1, errors
    assert errors[0].startswith("$.body[2].columns[1].items[0].isMultiSelect: ")


def test_element_without_type() -> None:
    card = _valid_card()
    card["body"].insert(0, {"text": "jeg mangler type", "wrap": True})

    errors = card_errors(card)

    assert errors == ["$.body[0]: missing required property 'type'"]


def test_input_without_id() -> None:
    card = _valid_card()
    del card["body"][3]["id"]

    errors = card_errors(card)

    assert errors == ["$.body[3]: 'id' is a required property"]


def test_bad_enum_value_is_one_line() -> None:
    card = _valid_card()
    card["body"][0]["color"] = "purple"

    errors = card_errors(card)

    assert len(errors) == 1, errors
    assert errors[0].startswith('$.body[0].color: "purple" matches none of:')


def test_teams_rules_on_top_level() -> None:
    # The schema does not require top-level type/$schema/version; Teams needs them.
    card = _valid_card()
    del card["type"], card["$schema"]
    card["version"] = "1.6"

    errors = card_errors(card)

    assert len(errors) == 3, errors
    assert any(e.startswith("$.type:") for e in errors)
    assert any(e.startswith("$.$schema:") for e in errors)
    assert any(e.startswith("$.version:") and '"1.6"' in e for e in errors)


@pytest.mark.parametrize("version", ["1.0", "1.2", "1.5"])
def test_teams_versions_accepted(version: str) -> None:
    card = _card([{"type": "TextBlock", "text": "hej"}])
    card["version"] = version
    assert card_errors(card) == []


def test_missing_version_is_flagged() -> None:
    card = _card([{"type": "TextBlock", "text": "hej"}])
    del card["version"]
    assert [e for e in card_errors(card) if e.startswith("$.version:")]


def test_checker_does_not_mutate_card() -> None:
    card = _valid_card()
    before = copy.deepcopy(card)
    card_errors(card)
    assert card == before


def test_card_size_utf16() -> None:
    assert card_size_utf16({"a": "b"}) == len('{"a":"b"}') * 2
    # Danish letters are one UTF-16 unit (not \\u-escaped); an emoji is a surrogate pair.
    assert card_size_utf16({"a": "æøå"}) == len('{"a":"æøå"}') * 2
    assert card_size_utf16({"a": "👍"}) == (len('{"a":""}') + 2) * 2
    assert card_size_utf16(_valid_card()) > 1000
