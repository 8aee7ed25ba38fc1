"""The pure form engine: which items a page asks, validation, progress.

No SDK, no database, no I/O. Answers are plain ``dict[item_id, str]`` per form.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

from dialogs.forms_model import SHORT_MAX, Form, Item, ItemKind, Page

FormAnswers = Mapping[str, str]

YES, NO = "ja", "nej"
_CONTROL = re.compile(
    r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064"
    r"\u2066-\u2069\ufeff]"
)
_LINE_BREAKS = re.compile(r"\r\n|[\r\x85\u2028\u2029]")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^(?=(?:\D*\d){4})[+0-9 ()\-./]{4,40}$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# Danish CPR: DDMMYY-SSSS (the dash or a space optional), day 01-31 and month 01-12.
_CPR = re.compile(
    r"(?<!\d)(0[1-9]|[12]\d|3[01])[ .]?(0[1-9]|1[0-2])[ .]?(\d{2})[ \-\u2010-\u2013./]?(\d{4})(?!\d)"
)


def clean_text(value: object) -> str:
    """Normalise user text: NFC, no control or direction-override characters, LF line ends, trimmed."""
    text = value if isinstance(value, str) else ("" if value is None else str(value))
    text = _CONTROL.sub("", _LINE_BREAKS.sub("\n", text))
    return unicodedata.normalize("NFC", text).strip()


def looks_like_cpr(text: str) -> bool:
    return _CPR.search(text) is not None


def max_length(item: Item, longtext_max: int) -> int:
    if item.max_length is not None:
        return item.max_length
    if item.kind is ItemKind.LONGTEXT:
        return longtext_max
    return SHORT_MAX.get(item.kind, 200)


def is_enabled(item: Item, answers: FormAnswers) -> bool:
    if not item.enable_when:
        return True
    hits = [answers.get(cond.item) == cond.equals for cond in item.enable_when]
    return any(hits) if item.enable_behavior == "any" else all(hits)


def is_required(item: Item, answers: FormAnswers) -> bool:
    if not is_enabled(item, answers):
        return False
    if item.required:
        return True
    return any(answers.get(cond.item) == cond.equals for cond in item.required_when)


def page_items(form: Form, page: Page, answers: FormAnswers) -> list[Item]:
    """The items of ``page`` that are enabled by the answers so far."""
    return [form.items[item_id] for item_id in page.items if is_enabled(form.items[item_id], answers)]


def visible_pages(form: Form, answers: FormAnswers) -> list[Page]:
    return [page for page in form.pages if page_items(form, page, answers)]


def _could_enable(item: Item, answers: FormAnswers) -> bool:
    """Whether an item not enabled yet may still be enabled once open conditions are answered."""
    if not item.enable_when:
        return False
    open_ = [not answers.get(cond.item) for cond in item.enable_when]
    met = [answers.get(cond.item) == cond.equals for cond in item.enable_when]
    if item.enable_behavior == "any":
        return any(open_)
    return any(open_) and all(m or o for m, o in zip(met, open_, strict=True))


def expected_pages(form: Form, answers: FormAnswers) -> list[Page]:
    """Pages the user will see: visible ones, plus conditional pages whose conditions are still open."""
    result = []
    for page in form.pages:
        items = [form.items[item_id] for item_id in page.items]
        undecided = any(_could_enable(item, answers) for item in items)
        if page_items(form, page, answers) or undecided:
            result.append(page)
    return result


def option_values(item: Item, hospitals: Mapping[str, str]) -> dict[str, str]:
    """value → title for a choice/yes-no item."""
    if item.kind is ItemKind.YESNO:
        return {YES: "Ja", NO: "Nej"}
    if item.options_from == "hospitals":
        return dict(hospitals)
    return {option.value: option.title for option in item.options or []}


@dataclass
class PageResult:
    """Outcome of reading one submitted page."""

    values: dict[str, str] = field(default_factory=dict)  # cleaned values of the page's items (valid ones)
    errors: dict[str, str] = field(default_factory=dict)  # item id → Danish message
    rejected: dict[str, str] = field(default_factory=dict)  # item id → value shown back (invalid, not stored)
    warnings: dict[str, str] = field(default_factory=dict)  # item id → Danish warning (stored anyway)

    @property
    def ok(self) -> bool:
        return not self.errors


def _format_count(number: int) -> str:
    return f"{number:,}".replace(",", ".")


def read_page(
    form: Form,
    page: Page,
    submitted: Mapping[str, object],
    stored: FormAnswers,
    *,
    longtext_max: int,
    hospitals: Mapping[str, str],
    check_required: bool,
) -> PageResult:
    """Clean and check the values of one page.

    Keys missing from ``submitted`` are left as they are (an input that was not on the card).
    Format errors (too long, unknown option, bad date) always reject that value, so a malformed or
    oversized payload never overwrites a saved answer. Missing required answers are only errors
    when ``check_required`` (Næste); Tilbage and Gem og fortsæt senere never validate them.
    """
    result = PageResult()
    merged = dict(stored)
    for item in (form.items[item_id] for item_id in page.items):
        if item.id not in submitted:
            continue
        raw = submitted[item.id]
        if raw is None:
            continue  # a null is no answer to store (and never wipes a saved one)
        if not isinstance(raw, str):
            result.errors[item.id] = "Svaret kunne ikke læses. Prøv igen."
            continue
        value = clean_text(raw)
        limit = max_length(item, longtext_max)
        error = None
        if len(value) > limit:
            error = f"Svaret er for langt: {_format_count(len(value))} tegn. Højst {_format_count(limit)} tegn."
            result.rejected[item.id] = value[:limit]
        elif value:
            error = _format_error(item, value, hospitals)
            if error:
                result.rejected[item.id] = value
        if error:
            result.errors[item.id] = error
            continue
        result.values[item.id] = value
        merged[item.id] = value
        if item.kind in (ItemKind.TEXT, ItemKind.LONGTEXT) and looks_like_cpr(value):
            result.warnings[item.id] = (
                "Svaret ligner et CPR-nummer. Patientdata hører ikke hjemme i dialoggrundlaget – "
                "fjern venligst personhenførbare oplysninger."
            )
    if check_required:
        for item in page_items(form, page, merged):
            if item.id not in result.errors and is_required(item, merged) and not merged.get(item.id):
                result.errors[item.id] = "Dette spørgsmål skal besvares, før du kan gå videre."
    return result


def _format_error(item: Item, value: str, hospitals: Mapping[str, str]) -> str | None:
    if item.kind in (ItemKind.YESNO, ItemKind.CHOICE):
        if value not in option_values(item, hospitals):
            return "Vælg en af mulighederne."
    elif item.kind is ItemKind.DATE:
        try:
            if not _ISO_DATE.match(value):
                raise ValueError(value)
            date.fromisoformat(value)
        except ValueError:
            return "Angiv en gyldig dato."
    elif item.kind is ItemKind.EMAIL:
        if not _EMAIL.match(value):
            return "Angiv en gyldig e-mailadresse."
    elif item.kind is ItemKind.PHONE:
        if not _PHONE.match(value):
            return "Angiv et gyldigt telefonnummer."
    return None


@dataclass(frozen=True)
class Progress:
    answered: int
    total: int

    @property
    def text(self) -> str:
        return f"{self.answered} af {self.total} besvaret"


def progress(form: Form, answers: FormAnswers, *, numbered_only: bool = False) -> Progress:
    """How many of the enabled items have an answer (``numbered_only``: only numbered questions)."""
    items = [
        i
        for i in form.items.values()
        if is_enabled(i, answers) and (i.number or not numbered_only) and (not i.required_when or is_required(i, answers) or answers.get(i.id))
    ]
    return Progress(sum(1 for i in items if answers.get(i.id)), len(items))


def is_open(item: Item, answers: FormAnswers) -> bool:
    """Unanswered and still relevant (an item only required under a condition counts when it is required)."""
    if answers.get(item.id):
        return False
    return not item.required_when or is_required(item, answers)


def first_open_page(form: Form, answers: FormAnswers) -> Page | None:
    """The first visible page with an open item, or None when every relevant item is answered."""
    for page in visible_pages(form, answers):
        if any(is_open(item, answers) for item in page_items(form, page, answers)):
            return page
    return None


def missing_required(form: Form, answers: FormAnswers) -> list[Item]:
    return [
        item
        for item in form.items.values()
        if is_required(item, answers) and not answers.get(item.id)
    ]


def prefill_values(form: Form, page: Page, all_answers: Mapping[str, FormAnswers], *, user_name: str,
                   today: date) -> dict[str, str]:
    """Suggested values for unanswered items of a page (from other forms or from who the user is)."""
    own = all_answers.get(form.id, {})
    suggestions: dict[str, str] = {}
    for item_id in page.items:
        item = form.items[item_id]
        if own.get(item_id):
            continue
        if item.prefill:
            parts = []
            for ref in item.prefill:
                other_form, _, other_item = ref.partition(".")
                value = all_answers.get(other_form, {}).get(other_item)
                if value:
                    parts.append(value)
            if parts:
                suggestions[item_id] = ", ".join(parts)
        elif item.prefill_user == "user_name" and user_name:
            suggestions[item_id] = user_name
        elif item.prefill_user == "today":
            suggestions[item_id] = today.isoformat()
    return suggestions
