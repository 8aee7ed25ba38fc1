"""Form page cards: one page of a form, with its inputs, progress and navigation."""

from __future__ import annotations

from dataclasses import dataclass, field

from adaptive_cards import verbs
from adaptive_cards.common import (
    CARD_BUDGET_BYTES,
    Json,
    action,
    action_set,
    card,
    md_escape,
    notice,
    size_utf16,
    text_block,
)
from dialogs.forms_model import Form, Item, ItemKind, Page


@dataclass
class PageView:
    case_id: int
    case_number: str
    case_title: str
    revision: int
    form: Form
    page: Page
    step_key: str
    page_no: int  # 1-based, among the form's visible pages
    page_count: int
    items: list[Item]
    values: dict[str, str]
    max_lengths: dict[str, int]
    options: dict[str, dict[str, str]]  # item id → value → title (choice and yes/no items)
    required: set[str] = field(default_factory=set)
    errors: dict[str, str] = field(default_factory=dict)
    warnings: dict[str, str] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)
    is_first: bool = False
    return_to_review: bool = False
    progress_text: str | None = None


def _input(item: Item, view: PageView) -> Json:
    input_id = verbs.INPUT_PREFIX + item.id
    value = view.values.get(item.id, "")
    # A question that is its section's only text ("3. Fordele/konsekvenser …") is labelled by the
    # section heading above it; repeating it as the input's label would show it twice.
    section = view.form.section_of[item.id]
    shows_heading = section.title != view.page.title
    label = "" if shows_heading and item.label == section.title else item.label
    if item.id in view.required:
        label = f"{label} *" if label else "*"
    element: Json
    if item.kind in (ItemKind.YESNO, ItemKind.CHOICE):
        options = view.options[item.id]
        element = {
            "type": "Input.ChoiceSet",
            "id": input_id,
            "label": label,
            "style": "expanded" if item.kind is ItemKind.YESNO or len(options) <= 3 else "compact",
            "choices": [{"title": title, "value": value_} for value_, title in options.items()],
        }
        if item.kind is ItemKind.CHOICE and len(options) > 3:
            element["placeholder"] = "Vælg …"
    elif item.kind is ItemKind.DATE:
        element = {"type": "Input.Date", "id": input_id, "label": label}
    else:
        element = {
            "type": "Input.Text",
            "id": input_id,
            "label": label,
            "maxLength": view.max_lengths[item.id],
        }
        if item.kind is ItemKind.LONGTEXT:
            element["isMultiline"] = True
        elif item.kind is ItemKind.EMAIL:
            element["style"] = "Email"
        elif item.kind is ItemKind.PHONE:
            element["style"] = "Tel"
        if item.placeholder:
            element["placeholder"] = item.placeholder
    if not label:
        del element["label"]
    if value:
        element["value"] = value
    return element


def page_card(view: PageView) -> Json:
    """The page as a card; if answers at their maximum length push it over the budget, the static
    help texts are left out (the questions, answers and messages are always kept)."""
    built = _page_card(view, compact=False)
    if size_utf16(built) >= CARD_BUDGET_BYTES:
        built = _page_card(view, compact=True)
    return built


def _page_card(view: PageView, *, compact: bool) -> Json:
    form = view.form
    body: list[Json] = [
        text_block(
            f"{form.short_title} · side {view.page_no} af {view.page_count}" if view.page_count > 1 else form.short_title,
            weight="Bolder",
            color="Accent",
        ),
        text_block(view.page.title, size="Large", weight="Bolder", spacing="None", style="heading"),
        text_block(
            f"Sag {view.case_number}" + (f" · {md_escape(view.case_title)}" if view.case_title else "")
            + (f" · {view.progress_text}" if view.progress_text else ""),
            subtle=True,
            spacing="None",
        ),
    ]
    if view.is_first and form.intro and not compact:
        body.append(text_block(form.intro, subtle=True))
    if view.notices:
        body.append(notice(view.notices, color="Warning"))
    if view.errors:
        body.append(notice(["Siden er ikke færdig: se de markerede spørgsmål nedenfor."]))
    if view.page.intro:
        body.append(text_block(view.page.intro))
    if view.required:
        body.append(text_block("Spørgsmål mærket * skal besvares.", subtle=True, size="Small"))
    current_section = None
    for item in view.items:
        section = form.section_of[item.id]
        if section is not current_section:
            current_section = section
            if section.title != view.page.title:
                body.append(text_block(section.title, weight="Bolder", separator=True, spacing="Medium"))
            if section.intro and not compact:
                body.append(text_block(section.intro, subtle=True))
        body.append(_input(item, view))
        if item.kind is ItemKind.CHOICE and item.options and not compact:
            for option in item.options:
                if option.help:
                    short = option.title.split("→")[-1].strip()
                    body.append(text_block(f"**{short}:** {option.help}", size="Small", subtle=True))
        if item.help and not compact:
            body.append(text_block(item.help, size="Small", subtle=True, spacing="None"))
        if item.id in view.errors:
            body.append(text_block(view.errors[item.id], color="Attention", spacing="None"))
        if item.id in view.warnings:
            body.append(text_block(view.warnings[item.id], color="Warning", spacing="None"))
    data = {"case": view.case_id, "step": view.step_key, "rev": view.revision}
    if view.return_to_review:
        data["ret"] = "review"
    actions = [
        action("Gem og gennemse" if view.return_to_review else "Næste", verbs.PAGE_NEXT, data, inputs=True)
    ]
    if not view.is_first:
        back = {k: v for k, v in data.items() if k != "ret"}
        actions.append(action("Tilbage", verbs.PAGE_BACK, back, inputs=True))
    actions.append(action("Gem og fortsæt senere", verbs.PAGE_PAUSE, data, inputs=True))
    body.append(action_set(actions, spacing="Large"))
    return card(body)
