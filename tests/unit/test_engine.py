"""The pure form engine: text cleaning, CPR detection, reading a page, visibility, progress, prefill."""

from __future__ import annotations

import unicodedata
from datetime import date
from typing import Any

import pytest

from dialogs import engine
from dialogs.engine import (
    clean_text,
    expected_pages,
    first_open_page,
    is_enabled,
    is_required,
    looks_like_cpr,
    max_length,
    missing_required,
    option_values,
    page_items,
    prefill_values,
    progress,
    read_page,
    visible_pages,
)
from dialogs.forms_model import Form, FormCatalog, Page

CATALOG = FormCatalog.load()
SCREENING = CATALOG.current("screening")
DG = CATALOG.current("dialoggrundlag")
ROUTE = CATALOG.current("rute")
MTV = CATALOG.current("mini_mtv")
HOSPITALS = {"aalborg": "Samarbejdsforum ved Aalborg Universitetshospital", "nord": "Samarbejdsforum ved RHN"}
LONGTEXT_MAX = 2000
ALL_NO = {"s1": "nej", "s2": "nej", "s3": "nej"}


def page(form: Form, page_id: str) -> Page:
    return form.pages[form.page_index[page_id]]


def read(form: Form, page_id: str, submitted: dict[str, Any], stored: dict[str, str] | None = None,
         *, check_required: bool = False, longtext_max: int = LONGTEXT_MAX) -> engine.PageResult:
    return read_page(form, page(form, page_id), submitted, stored or {}, longtext_max=longtext_max,
                     hospitals=HOSPITALS, check_required=check_required)


def ids(items) -> list[str]:
    return [x.id for x in items]


# ---------------------------------------------------------------- clean_text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("hej", "hej"),
        ("  hej  ", "hej"),
        ("\n\t hej \n", "hej"),
        ("første\r\nanden", "første\nanden"),
        ("første\randen", "første\nanden"),
        ("a\r\n\r\nb", "a\n\nb"),
        ("a  b\tc", "a  b\tc"),  # inner whitespace is the user's
        # control characters
        ("a\x00b\x07c\x08d", "abcd"),
        ("a\x0bb\x0cc\x1bd\x1fe\x7ff", "abcdef"),
        # zero-width characters and BOM
        ("\ufeffhej", "hej"),
        ("h\u200be\u200cj\u200d", "hej"),
        # bidi marks, embeddings, overrides and isolates
        ("\u202ehej\u202c", "hej"),
        ("a\u202ab\u202bc\u202dd", "abcd"),
        ("\u2066a\u2067b\u2068c\u2069", "abc"),
        ("a\u200eb\u200fc", "abc"),
        # NFC
        ("e\u0301", "\u00e9"),
        ("A\u030a", "\u00c5"),
        ("Ha\u030avej", "H\u00e5vej"),
        ("", ""),
        ("   ", ""),
    ],
)
def test_clean_text(raw: str, expected: str) -> None:
    cleaned = clean_text(raw)
    assert cleaned == expected
    assert unicodedata.is_normalized("NFC", cleaned)


@pytest.mark.parametrize(("raw", "expected"), [(None, ""), (5, "5"), (12.5, "12.5")])
def test_clean_text_of_non_strings(raw: object, expected: str) -> None:
    assert clean_text(raw) == expected


def test_clean_text_is_idempotent() -> None:
    messy = " \ufeffÅ\u030a\r\nb\u202e\u200bc\x00 "
    assert clean_text(clean_text(messy)) == clean_text(messy)


def test_clean_text_is_nfc_after_removing_invisible_characters() -> None:
    cleaned = clean_text("Caf" + "e\u200b\u0301")
    assert cleaned == "Caf\u00e9"


@pytest.mark.parametrize("char", ["\x80", "\x9b", "\x9f"])
def test_clean_text_removes_c1_controls(char: str) -> None:
    assert clean_text(f"a{char}b") == "ab"


@pytest.mark.parametrize("char", ["\x85", "\u2028", "\u2029", "\r"])
def test_clean_text_turns_unicode_line_breaks_into_lf(char: str) -> None:
    assert clean_text(f"a{char}b") == "a\nb"


@pytest.mark.parametrize("char", ["\u2060", "\u061c"])
def test_clean_text_removes_other_invisible_format_characters(char: str) -> None:
    assert clean_text(f"a{char}b") == "ab"


# ---------------------------------------------------------------- CPR detection


@pytest.mark.parametrize(
    "text",
    [
        "010190-1234",
        "0101901234",
        "010190 1234",
        "Pt. 311299 1234",
        "Patienten (cpr 241280-4321) har ...",
        "311299-1234",
        "300600-0001",
        "pt:0101901234.",
        "første linje\n010190-1234\nsidste linje",
    ],
)
def test_cpr_is_detected(text: str) -> None:
    assert looks_like_cpr(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "12345678",  # phone number
        "+45 12 34 56 78",
        "Tlf. 98 76 54 32",
        "2026-11-23",  # ISO date
        "23-11-2026",
        "23.11.2026",
        "1234567890",  # day 12, month 34
        "991399-1234",  # day 99, month 13
        "321290-1234",  # day 32
        "000190-1234",  # day 00
        "010090-1234",  # month 00
        "011390-1234",  # month 13
        "01019012345",  # eleven digits
        "0101901234567",
        "12010190-1234",  # longer digit run before
        "010190-12345",  # longer digit run after
        "010190--1234",
        "010190-123",
        "Opgaveflytning af 40 patienter om året, 2 besøg pr. uge",
    ],
)
def test_cpr_negatives(text: str) -> None:
    assert not looks_like_cpr(text)


# ---------------------------------------------------------------- basic item helpers


def test_max_length() -> None:
    assert max_length(DG.items["h_task"], LONGTEXT_MAX) == 150  # explicit on the item
    assert max_length(DG.items["q2_1"], LONGTEXT_MAX) == LONGTEXT_MAX
    assert max_length(DG.items["q2_1"], 500) == 500
    assert max_length(DG.items["h_date"], LONGTEXT_MAX) == 10
    assert max_length(MTV.items["by_email"], LONGTEXT_MAX) == 254
    assert max_length(MTV.items["by_phone"], LONGTEXT_MAX) == 40
    assert max_length(ROUTE.items["route"], LONGTEXT_MAX) == 200


def test_enabled_and_required() -> None:
    need, reason = SCREENING.items["need"], SCREENING.items["need_reason"]
    assert not is_enabled(need, {}) and not is_required(need, {})
    assert not is_enabled(need, ALL_NO)
    for question in ("s1", "s2", "s3"):
        answers = {**ALL_NO, question: "ja"}
        assert is_enabled(need, answers) and is_required(need, answers)
    assert not is_required(reason, {"s1": "ja"})
    assert not is_required(reason, {"s1": "ja", "need": "ja"})
    assert is_required(reason, {"s1": "ja", "need": "nej"})
    assert not is_required(reason, {"s1": "nej", "need": "nej"})  # disabled: never required
    hospital = ROUTE.items["hospital"]
    assert is_enabled(hospital, {}) and not is_required(hospital, {"route": "psg"})
    assert is_required(hospital, {"route": "samarbejdsforum"})


def test_option_values() -> None:
    assert option_values(SCREENING.items["s1"], HOSPITALS) == {"ja": "Ja", "nej": "Nej"}
    assert list(option_values(ROUTE.items["route"], HOSPITALS)) == ["samarbejdsforum", "psg"]
    assert option_values(ROUTE.items["hospital"], HOSPITALS) == HOSPITALS
    assert option_values(DG.items["q2_1"], HOSPITALS) == {}


# ---------------------------------------------------------------- read_page


def test_required_only_checked_with_check_required() -> None:
    lenient = read(SCREENING, "overvejelser", {"s1": "", "s2": "ja"})
    assert lenient.ok and lenient.values == {"s1": "", "s2": "ja"}
    strict = read(SCREENING, "overvejelser", {"s1": "", "s2": "ja"}, check_required=True)
    assert not strict.ok
    assert set(strict.errors) == {"s1", "s3"}
    assert all("skal besvares" in message for message in strict.errors.values())
    assert strict.values == {"s1": "", "s2": "ja"}  # what was valid is still read


def test_required_satisfied_by_stored_answers() -> None:
    result = read(SCREENING, "overvejelser", {"s1": "nej"}, {"s2": "nej", "s3": "ja"}, check_required=True)
    assert result.ok, result.errors


def test_required_when_is_checked_against_the_submitted_values() -> None:
    stored = {"s1": "ja", "s2": "nej", "s3": "nej"}
    missing = read(SCREENING, "vurdering", {"need": "nej", "need_reason": "  "}, stored, check_required=True)
    assert set(missing.errors) == {"need_reason"}
    assert read(SCREENING, "vurdering", {"need": "ja", "need_reason": ""}, stored, check_required=True).ok
    given = read(SCREENING, "vurdering", {"need": "nej", "need_reason": "Lille ændring"}, stored, check_required=True)
    assert given.ok and given.values == {"need": "nej", "need_reason": "Lille ændring"}


def test_disabled_items_are_not_required() -> None:
    result = read(SCREENING, "vurdering", {}, ALL_NO, check_required=True)
    assert result.ok


def test_too_long_value_is_rejected_with_the_limit() -> None:
    stored = {"q2_1": "gammelt svar"}
    result = read(DG, "opgaven", {"q2_1": "x" * 2001, "q2_2": "snart"}, stored)
    assert not result.ok
    message = result.errors["q2_1"]
    assert "2.000" in message and "2.001" in message
    assert "for langt" in message
    assert "q2_1" not in result.values
    assert result.values == {"q2_2": "snart"}
    assert result.rejected["q2_1"] == "x" * 2000  # shown back, cut to the limit
    assert stored == {"q2_1": "gammelt svar"}  # the stored answers are not touched


def test_length_is_measured_after_cleaning() -> None:
    exactly = "æ" * 2000
    assert read(DG, "opgaven", {"q2_1": f"  {exactly}\u200b\n"}).values == {"q2_1": exactly}
    decomposed = "a\u030a" * 2000  # NFC makes it 2,000 characters
    assert read(DG, "opgaven", {"q2_1": decomposed}).values == {"q2_1": "å" * 2000}


def test_too_long_short_text_uses_its_own_limit() -> None:
    result = read(DG, "stamdata", {"h_task": "y" * 151})
    assert "150" in result.errors["h_task"] and "151" in result.errors["h_task"]
    assert result.rejected["h_task"] == "y" * 150


def test_configured_longtext_limit_is_formatted() -> None:
    result = read(DG, "opgaven", {"q2_1": "z" * 12001}, longtext_max=12000)
    assert "12.000" in result.errors["q2_1"] and "12.001" in result.errors["q2_1"]


@pytest.mark.parametrize(
    ("form", "page_id", "item_id", "value"),
    [
        (SCREENING, "overvejelser", "s1", "måske"),
        (SCREENING, "overvejelser", "s1", "yes"),
        (SCREENING, "overvejelser", "s2", "Ja"),  # values, not titles
        (ROUTE, "rute", "route", "regionsraadet"),
        (ROUTE, "rute", "hospital", "odense"),
        (DG, "stamdata", "h_date", "23.11.2026"),
        (DG, "stamdata", "h_date", "2026-02-30"),
        (DG, "stamdata", "h_date", "i morgen"),
        (MTV, "afslutning", "by_email", "anna"),
        (MTV, "afslutning", "by_email", "anna@region"),
        (MTV, "afslutning", "by_email", "anna hansen@rn.dk"),
        (MTV, "afslutning", "by_phone", "ring til mig"),
        (MTV, "afslutning", "by_phone", "12"),
    ],
)
def test_invalid_formats_are_rejected(form: Form, page_id: str, item_id: str, value: str) -> None:
    stored = {item_id: "tidligere"}
    result = read(form, page_id, {item_id: value}, stored, check_required=True)
    assert item_id in result.errors
    assert "skal besvares" not in result.errors[item_id]  # a format error, not "missing"
    assert item_id not in result.values
    assert result.rejected[item_id] == value


@pytest.mark.parametrize(
    ("form", "page_id", "item_id", "value"),
    [
        (SCREENING, "overvejelser", "s1", "ja"),
        (SCREENING, "overvejelser", "s1", "nej"),
        (ROUTE, "rute", "route", "psg"),
        (ROUTE, "rute", "hospital", "aalborg"),
        (DG, "stamdata", "h_date", "2026-11-23"),
        (MTV, "afslutning", "by_email", "anna.hansen@rn.dk"),
        (MTV, "afslutning", "by_phone", "+45 12 34 56 78"),
        (MTV, "afslutning", "by_phone", "12345678"),
        # An empty value clears the answer; no format check.
        (DG, "stamdata", "h_date", ""),
        (MTV, "afslutning", "by_email", ""),
        (ROUTE, "rute", "hospital", ""),
    ],
)
def test_valid_formats_are_accepted(form: Form, page_id: str, item_id: str, value: str) -> None:
    result = read(form, page_id, {item_id: f" {value} "})
    assert result.ok, result.errors
    assert result.values == {item_id: value}
    assert not result.rejected


def test_missing_keys_leave_stored_answers_untouched() -> None:
    stored = {"q2_1": "gammelt", "q2_2": "behold", "q2_3": "også"}
    result = read(DG, "opgaven", {"q2_1": "nyt"}, stored)
    assert result.values == {"q2_1": "nyt"}
    assert "q2_2" not in result.values and "q2_3" not in result.values
    assert stored == {"q2_1": "gammelt", "q2_2": "behold", "q2_3": "også"}


def test_keys_of_other_pages_are_ignored() -> None:
    result = read(DG, "opgaven", {"q2_1": "ja", "q5": "sneaky", "h_task": "sneaky", "unknown": "x"})
    assert result.values == {"q2_1": "ja"}


@pytest.mark.parametrize("value", [{"a": 1}, ["ja"], [], {}])
def test_structured_values_are_rejected(value: object) -> None:
    result = read(SCREENING, "overvejelser", {"s1": value, "s2": "ja"}, {"s1": "nej"})
    assert "s1" in result.errors
    assert "s1" not in result.values
    assert result.values == {"s2": "ja"}


def test_cpr_warning_keeps_the_value() -> None:
    text = "Fx pt. 010190-1234 skal have besøg"
    result = read(DG, "opgaven", {"q2_1": text, "q2_2": "om en uge"})
    assert result.ok
    assert result.values["q2_1"] == text
    assert "CPR" in result.warnings["q2_1"]
    assert set(result.warnings) == {"q2_1"}


def test_cpr_warning_on_short_text_too() -> None:
    result = read(DG, "stamdata", {"h_task": "Sårpleje 0101901234"})
    assert result.values["h_task"] == "Sårpleje 0101901234" and "h_task" in result.warnings


def test_no_cpr_warning_on_a_rejected_value() -> None:
    result = read(DG, "opgaven", {"q2_1": "010190-1234 " + "x" * 2000})
    assert "q2_1" in result.errors and not result.warnings


def test_values_are_cleaned() -> None:
    result = read(DG, "opgaven", {"q2_1": "\u202e  linje 1\r\nlinje 2\x00  "})
    assert result.values == {"q2_1": "linje 1\nlinje 2"}


def test_null_value_does_not_clear_a_saved_answer() -> None:
    result = read(MTV, "afslutning", {"by_phone": None}, {"by_phone": "12345678"})
    assert "by_phone" not in result.values


@pytest.mark.parametrize("value", ["----", "()()", "...."])
def test_phone_without_digits_is_rejected(value: str) -> None:
    assert "by_phone" in read(MTV, "afslutning", {"by_phone": value}).errors


# ---------------------------------------------------------------- pages, visibility, progress


def test_page_items_and_visible_pages() -> None:
    assert ids(page_items(SCREENING, page(SCREENING, "vurdering"), {})) == []
    assert ids(page_items(SCREENING, page(SCREENING, "vurdering"), {"s3": "ja"})) == ["need", "need_reason"]
    assert [p.id for p in visible_pages(SCREENING, {})] == ["overvejelser"]
    assert [p.id for p in visible_pages(SCREENING, {"s2": "ja"})] == ["overvejelser", "vurdering"]
    assert [p.id for p in visible_pages(MTV, {})] == [p.id for p in MTV.pages]


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        ({}, ["overvejelser", "vurdering"]),
        ({"s1": "nej"}, ["overvejelser", "vurdering"]),
        ({"s1": "nej", "s2": "nej"}, ["overvejelser", "vurdering"]),
        ({"s1": "nej", "s2": "nej", "s3": ""}, ["overvejelser", "vurdering"]),
        (ALL_NO, ["overvejelser"]),
        ({**ALL_NO, "s2": "ja"}, ["overvejelser", "vurdering"]),
        ({"s1": "ja"}, ["overvejelser", "vurdering"]),
    ],
)
def test_expected_pages_of_the_screening(answers: dict[str, str], expected: list[str]) -> None:
    assert [p.id for p in expected_pages(SCREENING, answers)] == expected


def test_expected_pages_of_unconditional_forms() -> None:
    assert expected_pages(DG, {}) == DG.pages
    assert expected_pages(MTV, {}) == MTV.pages


def _all_form() -> Form:
    """A form whose second page needs *both* a and b to be «ja» (enable_behavior all)."""
    yesno = {"kind": "yesno", "label": "?"}
    return Form.model_validate({
        "id": "alle", "version": "2026.1", "title": "Alle", "short_title": "Alle", "source": "test",
        "sections": [{"id": "s", "title": "S", "items": [
            {"id": "a", "short": "A", **yesno},
            {"id": "b", "short": "B", **yesno},
            {"id": "c", "kind": "text", "label": "C", "short": "C", "enable_behavior": "all",
             "enable_when": [{"item": "a", "equals": "ja"}, {"item": "b", "equals": "ja"}]},
        ]}],
        "pages": [{"id": "p1", "title": "1", "items": ["a", "b"]}, {"id": "p2", "title": "2", "items": ["c"]}],
    })


def test_enable_behavior_all() -> None:
    form = _all_form()
    assert [p.id for p in visible_pages(form, {"a": "ja", "b": "ja"})] == ["p1", "p2"]
    assert [p.id for p in visible_pages(form, {"a": "ja", "b": "nej"})] == ["p1"]
    assert [p.id for p in expected_pages(form, {"a": "ja"})] == ["p1", "p2"]  # b still open


def test_expected_pages_with_all_behavior_and_a_false_condition() -> None:
    assert [p.id for p in expected_pages(_all_form(), {"a": "nej"})] == ["p1"]


@pytest.mark.parametrize(
    ("form", "answers", "answered", "total"),
    [
        (SCREENING, {}, 0, 3),
        (SCREENING, {"s1": "nej"}, 1, 3),
        (SCREENING, {"s1": "", "s2": "nej"}, 1, 3),  # empty is not answered
        (SCREENING, ALL_NO, 3, 3),
        (SCREENING, {**ALL_NO, "need": "ja"}, 3, 3),  # answers to disabled items do not count
        (SCREENING, {"s1": "ja"}, 1, 4),  # the reason only counts once "need" is "nej"
        (SCREENING, {"s1": "ja", "s2": "nej", "s3": "nej", "need": "ja"}, 4, 4),
        (SCREENING, {"s1": "ja", "s2": "nej", "s3": "nej", "need": "nej", "need_reason": "x"}, 5, 5),
        (DG, {}, 0, 15),
        (DG, {"h_task": "Sårpleje", "q6": "ingen", "ukendt": "x"}, 2, 15),
        (MTV, {}, 0, 36),
        (ROUTE, {"route": "psg"}, 1, 1),  # the hospital only counts for a samarbejdsforum
        (ROUTE, {"route": "samarbejdsforum"}, 1, 2),
    ],
)
def test_progress(form: Form, answers: dict[str, str], answered: int, total: int) -> None:
    result = progress(form, answers)
    assert (result.answered, result.total) == (answered, total)
    assert result.text == f"{answered} af {total} besvaret"


def test_progress_of_numbered_questions_only() -> None:
    answers = {"q1": "Anna", "q31": "ingen", "comments": "x", "by_name": "Anna"}
    assert progress(MTV, answers, numbered_only=True) == engine.Progress(2, 31)
    assert progress(MTV, answers) == engine.Progress(4, 36)
    assert progress(DG, {"h_task": "x", "q1a": "y"}, numbered_only=True) == engine.Progress(1, 11)


def test_first_open_page() -> None:
    assert first_open_page(SCREENING, {}).id == "overvejelser"
    assert first_open_page(SCREENING, {"s1": "ja", "s2": "nej", "s3": "nej"}).id == "vurdering"
    assert first_open_page(SCREENING, ALL_NO) is None
    # need_reason only matters when need is «nej».
    assert first_open_page(SCREENING, {"s1": "ja", "s2": "nej", "s3": "nej", "need": "ja"}) is None
    assert first_open_page(SCREENING, {"s1": "ja", "s2": "nej", "s3": "nej", "need": "nej"}).id == "vurdering"
    assert first_open_page(DG, {"h_task": "x"}).id == "stamdata"


def test_missing_required() -> None:
    assert ids(missing_required(SCREENING, {})) == ["s1", "s2", "s3"]
    assert ids(missing_required(SCREENING, {"s1": "ja"})) == ["s2", "s3", "need"]
    assert ids(missing_required(SCREENING, {**ALL_NO, "s1": "ja", "need": "nej"})) == ["need_reason"]
    assert ids(missing_required(SCREENING, ALL_NO)) == []
    assert ids(missing_required(DG, {})) == ["h_task", "h_initiator_name", "h_initiator_org"]
    assert ids(missing_required(ROUTE, {"route": "samarbejdsforum"})) == ["hospital"]
    assert ids(missing_required(ROUTE, {"route": "psg"})) == []
    assert ids(missing_required(MTV, {})) == []


# ---------------------------------------------------------------- prefill

TODAY = date(2026, 11, 23)
DG_ANSWERS = {"h_task": "Sårpleje i eget hjem", "h_initiator_name": "Anna Hansen",
              "h_initiator_org": "Aalborg Universitetshospital"}


def prefill(form: Form, page_id: str, all_answers: dict[str, dict[str, str]], user_name: str = "Bo Jensen"):
    return prefill_values(form, page(form, page_id), all_answers, user_name=user_name, today=TODAY)


def test_prefill_from_the_user() -> None:
    assert prefill(DG, "stamdata", {}) == {"h_initiator_name": "Bo Jensen", "h_date": "2026-11-23"}
    assert prefill(DG, "stamdata", {}, user_name="") == {"h_date": "2026-11-23"}
    assert prefill(MTV, "afslutning", {}) == {"by_name": "Bo Jensen"}
    assert prefill(DG, "opgaven", {}) == {}


def test_prefill_does_not_overwrite_answers() -> None:
    own = {"dialoggrundlag": {"h_initiator_name": "Anna Hansen", "h_date": "2026-01-02"}}
    assert prefill(DG, "stamdata", own) == {}
    assert prefill(DG, "stamdata", {"dialoggrundlag": {"h_date": "2026-01-02"}}) == {"h_initiator_name": "Bo Jensen"}
    answered = {"dialoggrundlag": DG_ANSWERS, "mini_mtv": {"q1": "Anden forslagsstiller"}}
    assert prefill(MTV, "indledning", answered) == {"q2": "Sårpleje i eget hjem"}


def test_mini_mtv_prefill_from_the_dialoggrundlag() -> None:
    assert prefill(MTV, "indledning", {"dialoggrundlag": DG_ANSWERS}) == {
        "q1": "Anna Hansen, Aalborg Universitetshospital",
        "q2": "Sårpleje i eget hjem",
    }
    partial = {"dialoggrundlag": {"h_initiator_org": "Hjørring Kommune"}}
    assert prefill(MTV, "indledning", partial) == {"q1": "Hjørring Kommune"}
    assert prefill(MTV, "indledning", {}) == {}
    assert prefill(MTV, "indledning", {"dialoggrundlag": {"h_task": ""}}) == {}
