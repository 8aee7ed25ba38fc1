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
PREVIEW_STEPS = (220, 160, 120, 90, 70, 50, 35, 20)


@dataclass
class ReviewItem:
    label: str
    value: str | None
    missing_required: bool = False


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


def _build(view: ReviewView, limit: int) -> Json:
    body: list[Json] = [
        *heading("Gennemse og indsend", f"Sag {view.number}" + (f" · {md_escape(view.title)}" if view.title else "")),
    ]
    if view.notices:
        body.append(notice(view.notices, color="Warning"))
    body.append(text_block("Sagen sendes til: " + "; ".join(view.destination_lines), size="Small"))
    for form in view.forms:
        body.append(
            text_block(f"{form.title} – {form.progress_text}", size="Medium", weight="Bolder", separator=True,
                       spacing="Large")
        )
        for page in form.pages:
            facts = []
            for item in page.items:
                if item.value:
                    value = md_escape(preview(item.value, limit))
                elif item.missing_required:
                    value = "**Mangler – skal besvares**"
                else:
                    value = "–"
                facts.append((item.label, value))
            body.append(
                {
                    "type": "ColumnSet",
                    "spacing": "Medium",
                    "columns": [
                        {"type": "Column", "width": "stretch", "verticalContentAlignment": "Center",
                         "items": [text_block(page.title, weight="Bolder")]},
                        {"type": "Column", "width": "auto", "items": [
                            action_set([action("Vis og ret", verbs.REVIEW_EDIT,
                                               {"case": view.case_id, "step": page.step_key})])]},
                    ],
                }
            )
            body.append(fact_set(facts))
    actions: list[Json] = []
    if view.missing:
        body.append(notice(["Før sagen kan indsendes, mangler svar på:", *[f"• {m}" for m in view.missing]]))
    if view.can_submit and not view.missing:
        actions.append(action("Indsend", verbs.REVIEW_SUBMIT, {"case": view.case_id, "rev": view.revision}))
    actions.append(action("Gem og fortsæt senere", verbs.PAGE_PAUSE,
                          {"case": view.case_id, "step": "gennemsyn", "rev": view.revision}))
    body.append(action_set(actions, spacing="Large"))
    return card(body)


def review_card(view: ReviewView, *, budget: int = CARD_BUDGET_BYTES) -> Json:
    built = _build(view, PREVIEW_STEPS[0])
    for limit in PREVIEW_STEPS[1:]:
        if size_utf16(built) <= budget:
            break
        built = _build(view, limit)
    return built
