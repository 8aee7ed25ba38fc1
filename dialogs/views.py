"""Pure view building: a case's answers → the view data the card builders render.

Used by CaseService and by the card tests, so the tests render exactly what users get.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from adaptive_cards.pages import PageView
from adaptive_cards.review import ReviewForm, ReviewItem, ReviewPage, ReviewView
from dialogs import engine
from dialogs.flow import MINI_MTV, ROUTE_PSG, Plan, Step
from dialogs.forms_model import Form, ItemKind
from dialogs.organisation import Organisation

Values = Mapping[str, Mapping[str, str]]


@dataclass(frozen=True)
class CaseHeader:
    id: int
    number: str
    title: str
    revision: int


def mtv_progress_text(form: Form, values: Mapping[str, str]) -> str:
    progress = engine.progress(form, values, numbered_only=True)
    return f"{progress.answered} af {progress.total} spørgsmål besvaret"


def da_date(value: str) -> str:
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return value
    return f"{day.day}.{day.month}.{day.year}"


def page_view(
    forms: Mapping[str, Form],
    case: CaseHeader,
    all_values: Values,
    step: Step,
    *,
    case_plan: Plan,
    hospitals: Mapping[str, str],
    longtext_max: int,
    user_name: str,
    today: date,
    shown: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
    warnings: Mapping[str, str] | None = None,
    notices: list[str] | None = None,
    return_to_review: bool = False,
) -> PageView:
    """One page of a form with the stored answers (plus ``shown`` values and pre-fill suggestions)."""
    assert step.form is not None and step.page is not None
    form = forms[step.form]
    page = form.pages[form.page_index[step.page]]
    values = dict(all_values.get(form.id, {}))
    if shown:
        values.update(shown)
    for item_id, suggestion in engine.prefill_values(form, page, all_values, user_name=user_name,
                                                     today=today).items():
        values.setdefault(item_id, suggestion)
    expected = engine.expected_pages(form, values)
    page_no = next((i + 1 for i, p in enumerate(expected) if p.id == page.id), 1)
    items = engine.page_items(form, page, values)
    progress = None
    if form.id == MINI_MTV:
        progress = mtv_progress_text(form, values)  # pre-filled answers count: they are on the card
    return PageView(
        case_id=case.id,
        case_number=case.number,
        case_title=case.title,
        revision=case.revision,
        form=form,
        page=page,
        step_key=step.key,
        page_no=page_no,
        page_count=len(expected),
        items=items,
        values={k: v for k, v in values.items() if k in form.items},
        max_lengths={item.id: engine.max_length(item, longtext_max) for item in items},
        options={
            item.id: engine.option_values(item, hospitals)
            for item in items
            if item.kind in (ItemKind.YESNO, ItemKind.CHOICE)
        },
        required={item.id for item in items if engine.is_required(item, values)},
        errors=dict(errors or {}),
        warnings=dict(warnings or {}),
        notices=list(notices or []),
        is_first=case_plan.index(step) == 0,
        return_to_review=return_to_review,
        progress_text=progress,
    )


def destination_lines(organisation: Organisation, route_values: Mapping[str, str]) -> list[str]:
    """Where a submitted case goes, in Danish (one line per forum)."""
    psg = organisation.portfolio_group.name
    if route_values.get("route") == ROUTE_PSG:
        return [f"{psg} (dialoggrundlag og Mini-MTV)"]
    hospital = organisation.hospital(route_values.get("hospital"))
    forum = hospital.forum if hospital else "hospitalets samarbejdsforum"
    return [forum, f"{psg} til orientering"]


def review_view(
    forms: Mapping[str, Form],
    case: CaseHeader,
    values: Values,
    *,
    case_plan: Plan,
    hospitals: Mapping[str, str],
    destinations: list[str],
    notices: list[str] | None = None,
    can_submit: bool = True,
) -> ReviewView:
    """Every answer of every form the case walks, page by page, with what is still missing."""
    review_forms: list[ReviewForm] = []
    missing: list[str] = []
    for form_id in case_plan.forms():
        form = forms[form_id]
        form_values = values.get(form_id, {})
        pages = []
        for page in engine.visible_pages(form, form_values):
            items = []
            for item in engine.page_items(form, page, form_values):
                label = f"{item.number}. {item.short}" if item.number and form_id == MINI_MTV else item.short
                needed = engine.is_required(item, form_values) and not form_values.get(item.id)
                if needed:
                    missing.append(f"{form.short_title}: {item.short}")
                value = form_values.get(item.id)
                if value and item.kind in (ItemKind.YESNO, ItemKind.CHOICE):
                    value = engine.option_values(item, hospitals).get(value, value)
                elif value and item.kind is ItemKind.DATE:
                    value = da_date(value)
                ref = item.number if form_id == MINI_MTV and item.number else item.short
                items.append(ReviewItem(label, value, needed, ref))
            pages.append(ReviewPage(Step(form_id, page.id).key, page.title, items))
        if form_id == MINI_MTV:
            mtv = engine.progress(form, form_values, numbered_only=True)
            progress_text = mtv_progress_text(form, form_values)
            if mtv.answered * 2 < mtv.total:
                notices = [*(notices or []), (
                    f"Mini-MTV: kun {mtv.answered} af {mtv.total} spørgsmål er besvaret. Porteføljestyregruppen "
                    "forudsætter en udfyldt Mini-MTV – besvar så mange af spørgsmålene som muligt."
                )]
        else:
            progress_text = engine.progress(form, form_values).text
        review_forms.append(ReviewForm(form.short_title, progress_text, pages))
    return ReviewView(
        case_id=case.id,
        number=case.number,
        title=case.title,
        revision=case.revision,
        forms=review_forms,
        destination_lines=destinations,
        missing=missing,
        notices=list(notices or []),
        can_submit=can_submit,
    )
