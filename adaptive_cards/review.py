"""The review card: every answer of every form on one card, with a way to open and edit each page."""

from __future__ import annotations

from dataclasses import dataclass, field

from adaptive_cards import verbs
from adaptive_cards.common import (
    CARD_BUDGET_BYTES,
    Json,
    action,
    action_set,
    card,
    fact_set,
    heading,
    md_escape,
    notice,
    preview,
    size_utf16,
    text_block,
)

# Preview lengths tried in turn until the card fits the budget (long answers are shortened here;
# their full text is one click away on the page itself).
PREVIEW_STEPS = (220, 160, 120, 90, 70, 55, 40, 30, 20, 10, 0)  # 0: only "besvaret" (last resort)
# Input ids of the per-form page pickers ("Vis og ret").
EDIT_INPUT_PREFIX = "ret_"


@dataclass
class ReviewItem:
    label: str
    value: str | None
    missing_required: bool = False
    ref: str = ""  # how an unanswered item is named in the "Ikke besvaret" line (e.g. "6" or a short label)


@dataclass
class ReviewPage:
    step_key: str
    title: str
    items: list[ReviewItem]


@dataclass
class ReviewForm:
    title: str
    progress_text: str
    pages: list[ReviewPage]


@dataclass
class ReviewView:
    case_id: int
    number: str
    title: str
    revision: int
    forms: list[ReviewForm]
    destination_lines: list[str]
    missing: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    can_submit: bool = True


def _edit_picker(view: ReviewView, form_index: int, form: ReviewForm) -> list[Json]:
    """One "Vis og ret" per form: a compact page picker and a button (cheaper than a button per page)."""
    input_id = f"{EDIT_INPUT_PREFIX}{form_index}"
    pages = form.pages
    if not pages:
        return []
    return [
        {
            "type": "ColumnSet",
            "columns": [
                {"type": "Column", "width": "stretch", "items": [{
                    "type": "Input.ChoiceSet",
                    "id": input_id,
                    "label": "Vælg en side at se eller rette",
                    "style": "compact",
                    "value": pages[0].step_key,
                    "choices": [{"title": page.title, "value": page.step_key} for page in pages],
                }]},
                {"type": "Column", "width": "auto", "items": [action_set([
                    action("Vis og ret", verbs.REVIEW_EDIT, {"case": view.case_id, "pick": input_id}, inputs=True)
                ])]},
            ],
        }
    ]


def _build(view: ReviewView, limit: int) -> Json:
    body: list[Json] = [
        *heading("Gennemse og indsend", f"Sag {view.number}" + (f" · {md_escape(view.title)}" if view.title else "")),
    ]
    if view.notices:
        body.append(notice(view.notices, color="Warning"))
    body.append(text_block("Sagen sendes til: " + "; ".join(view.destination_lines), size="Small"))
    for index, form in enumerate(view.forms):
        body.append(
            text_block(f"{form.title} – {form.progress_text}", size="Medium", weight="Bolder", separator=True,
                       spacing="Large")
        )
        for page in form.pages:
            facts = []
            unanswered = []
            for item in page.items:
                if item.value:
                    facts.append((item.label, md_escape(preview(item.value, limit)) if limit else "besvaret"))
                elif item.missing_required:
                    facts.append((item.label, "**Mangler – skal besvares**"))
                else:
                    unanswered.append(item.ref or item.label)
            body.append(text_block(page.title, weight="Bolder", spacing="Medium"))
            if facts:
                body.append(fact_set(facts))
            if unanswered:
                body.append(text_block("Ikke besvaret: " + ", ".join(unanswered), size="Small", subtle=True,
                                       spacing="Small"))
        body += _edit_picker(view, index, form)
    actions: list[Json] = []
    if view.missing:
        body.append(notice(["Før sagen kan indsendes, mangler svar på:", *[f"• {m}" for m in view.missing]]))
    if view.can_submit and not view.missing:
        actions.append(action("Indsend", verbs.REVIEW_SUBMIT, {"case": view.case_id, "rev": view.revision}))
    actions.append(action("Gem og fortsæt senere", verbs.PAGE_PAUSE,
                          {"case": view.case_id, "step": "gennemsyn", "rev": view.revision}))
    actions.append(action("Medforfattere", verbs.COAUTHORS_SHOW, {"case": view.case_id}))
    body.append(action_set(actions, spacing="Large"))
    return card(body)


def review_card(view: ReviewView, *, budget: int = CARD_BUDGET_BYTES) -> Json:
    built = _build(view, PREVIEW_STEPS[0])
    for limit in PREVIEW_STEPS[1:]:
        if size_utf16(built) < budget:
            break
        built = _build(view, limit)
    return built
