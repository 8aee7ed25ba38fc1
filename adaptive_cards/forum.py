"""Cards for a case in a forum's Teams channel: the case card (the thread root) and the
user-specific cards reached from it (decision, planning and evaluation forms, all answers, history).

Pure builders: values in, Adaptive Card JSON (1.5) out. Every action carries ``case`` and ``forum``
in its data (see ``verbs.FORUM_*``); forms add ``rev`` (the case revision the form was built from).
User text is shown as typed (``md_escape``; ``text_block`` keeps list markers at line starts).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from adaptive_cards import verbs
from adaptive_cards.common import (
    CARD_BUDGET_BYTES,
    Json,
    action,
    action_set,
    card,
    da_datetime,
    fact_set,
    heading,
    md_escape,
    notice,
    people_picker,
    preview,
    size_utf16,
    text_block,
)

#: Teams runs a card's refresh automatically for at most 60 listed users.
MAX_REFRESH_USERS = 60
#: Length of one-line previews of texts on the case card (decision line, plan facts, names; twice this
#: for the co-authors), tried in turn until the card fits the budget.
CASE_PREVIEW_STEPS = (500, 300, 150, 80, 40)
#: Length of history texts in the history list, tried in turn until the card fits.
HISTORY_PREVIEW_STEPS = (300, 200, 120, 60, 30)
#: The task title is shortened to this many characters in page headers of the answers card.
ANSWERS_TITLE_PREVIEW = 100

DECISION_OUTCOME_ID = "udfald"
DECISION_REASON_ID = "begrundelse"
PLAN_PEOPLE_ID = "ansvarlige"
PLAN_DATE_ID = "evalueringsdato"
PLAN_NOTE_ID = "note"
EVALUATION_ID = "evaluering"

#: Teams' people picker: an Input.ChoiceSet with this dynamic data source (a Teams extension that is
#: not part of the Adaptive Cards 1.5 schema).

TOO_LONG_TO_SHOW = (
    "Teksten du skrev her, var for lang til at blive vist igen på kortet (kortet har en størrelsesgrænse). "
    "Skriv den igen – gerne kortere."
)


def _data(case_id: int, forum_id: str, **extra: object) -> Json:
    return {"case": case_id, "forum": forum_id, **extra}


def _subtitle(number: str, title: str) -> str:
    return f"Sag {number}" + (f" · {md_escape(title)}" if title else "")


def _form_subtitle(forum_name: str, number: str, title: str) -> str:
    return f"{md_escape(forum_name)} · {_subtitle(number, title)}"


def _back(case_id: int, forum_id: str, title: str = "Tilbage") -> Json:
    return action(title, verbs.FORUM_VIEW, _data(case_id, forum_id))


def _general_errors(errors: Mapping[str, str], input_ids: Sequence[str], lead: str) -> list[Json]:
    """A notice at the top when there are errors: ``lead`` plus errors not tied to an input on the card."""
    if not errors:
        return []
    other = [message for key, message in errors.items() if key not in input_ids]
    return [notice([lead, *other])]


def _error_line(errors: Mapping[str, str], input_id: str) -> list[Json]:
    return [text_block(errors[input_id], color="Attention", spacing="None")] if input_id in errors else []


def _text_input(input_id: str, label: str, value: str, max_length: int, *, placeholder: str = "") -> Json:
    element: Json = {
        "type": "Input.Text",
        "id": input_id,
        "label": label,
        "isMultiline": True,
        "maxLength": max_length,
    }
    if placeholder:
        element["placeholder"] = placeholder
    if value:
        element["value"] = value
    return element


# ---------------------------------------------------------------------------------------------- case card
@dataclass(frozen=True)
class CaseCardView:
    case_id: int
    forum_id: str  # the forum whose channel thread this card is in
    forum_name: str
    orientation: bool  # True: PSG's «Til orientering» copy of a samarbejdsforum case
    number: str  # "OF-2026-0007"
    title: str  # task name (may be "")
    phase_label: str  # e.g. "Hos Porteføljestyregruppen"
    closed: bool
    route_label: str  # e.g. "Samarbejdsforum ved Aalborg Universitetshospital"
    initiator: str
    organisation: str  # the initiator's organisation (may be "")
    coauthors: tuple[str, ...]
    mtv_progress: str | None  # e.g. "23 af 31 spørgsmål besvaret"; None: no Mini-MTV
    updated_at: datetime
    last_decision: str | None  # one line: "Porteføljestyregruppen, 12.3.2026: Til afgørelse i …"
    # facts like ("Ansvarlige for opfølgning", "Anna Berg"), ("Evaluering", "1.6.2027")
    plan: tuple[tuple[str, str], ...] = ()
    refresh_user_ids: tuple[str, ...] = ()  # user MRIs for refresh.userIds (only the first 60 are used)
    actions: tuple[tuple[str, str], ...] = ()  # (title, verb): secretariat actions; empty = read-only view
    notices: tuple[str, ...] = ()  # Attention lines at the top (e.g. a refusal)
    info: tuple[str, ...] = ()  # neutral lines at the top (e.g. "Beslutningen er registreret.")


def _case_facts(view: CaseCardView, limit: int) -> list[tuple[str, str]]:
    initiator = md_escape(preview(view.initiator, limit)) or "–"
    if view.organisation:
        initiator += f", {md_escape(preview(view.organisation, limit))}"
    facts = [
        ("Sag", view.number),
        ("Opgave", md_escape(view.title) or "–"),
        ("Fase", view.phase_label),
        ("Forum", md_escape(view.route_label) or "–"),
        ("Initiativtager", initiator),
    ]
    if view.coauthors:
        facts.append(("Medforfattere", md_escape(preview(", ".join(view.coauthors), 2 * limit))))
    if view.mtv_progress:
        facts.append(("Mini-MTV", view.mtv_progress))
    if view.last_decision:
        facts.append(("Seneste beslutning", md_escape(preview(view.last_decision, limit))))
    facts += [(md_escape(title), md_escape(preview(value, limit)) or "–") for title, value in view.plan]
    facts.append(("Senest ændret", da_datetime(view.updated_at)))
    return facts


def _case_card(view: CaseCardView, limit: int) -> Json:
    body: list[Json] = []
    if view.notices:
        body.append(notice(list(view.notices)))
    if view.info:
        body.append(notice(list(view.info), color="Default"))
    if view.orientation:
        body.append(text_block("Til orientering", weight="Bolder", color="Accent", size="Small"))
    head = f"{view.number} · {md_escape(view.title)}" if view.title else view.number
    subtitle = (
        f"Kopi til orientering for {md_escape(view.forum_name)} – "
        f"sagen behandles i {md_escape(view.route_label)}."
        if view.orientation
        else md_escape(view.forum_name)
    )
    body += heading(head, subtitle or None)
    if view.closed:
        body.append(text_block("Sagen er afsluttet.", weight="Bolder", color="Good"))
    body.append(fact_set(_case_facts(view, limit)))
    buttons = [
        action("Vis alle svar", verbs.FORUM_ANSWERS, _data(view.case_id, view.forum_id, part=0)),
        action("Historik", verbs.FORUM_HISTORY, _data(view.case_id, view.forum_id, part=0)),
        *[action(title, verb, _data(view.case_id, view.forum_id)) for title, verb in view.actions],
    ]
    body.append(action_set(buttons))
    result = card(body)
    refresh: Json = {
        "action": {
            "type": "Action.Execute",
            "title": "Opdatér",
            "verb": verbs.FORUM_VIEW,
            "data": _data(view.case_id, view.forum_id),
        }
    }
    if view.refresh_user_ids:
        refresh["userIds"] = list(view.refresh_user_ids[:MAX_REFRESH_USERS])
    result["refresh"] = refresh
    return result


def case_card(view: CaseCardView, *, budget: int = CARD_BUDGET_BYTES) -> Json:
    """The compact case card: header, facts and buttons; no form answers (those are behind «Vis alle
    svar»). Always carries a ``refresh`` (verb FORUM_VIEW) so each user gets their own view; Teams
    refreshes automatically only for ``userIds`` (at most 60). Long one-line facts (the latest
    decision, plan facts) are shortened as needed to fit ``budget``."""
    built = _case_card(view, CASE_PREVIEW_STEPS[0])
    for limit in CASE_PREVIEW_STEPS[1:]:
        if size_utf16(built) < budget:
            break
        built = _case_card(view, limit)
    return built


def case_card_summary(view: CaseCardView) -> str:
    """One line of plain text for notifications and the activity feed (not rendered as markdown)."""
    text = view.number
    if view.title:
        text += f" · {preview(view.title, 80)}"
    text += f" – {'Afsluttet' if view.closed and not view.phase_label else view.phase_label}"
    return f"Til orientering: {text}" if view.orientation else text


# ---------------------------------------------------------------------------------------------- decision
@dataclass(frozen=True)
class DecisionFormView:
    case_id: int
    forum_id: str
    forum_name: str
    number: str
    title: str
    revision: int
    outcomes: tuple[tuple[str, str], ...]  # (id, Danish label) for the expanded choice "udfald"
    questions: tuple[tuple[str, str], ...] = ()  # (input id, verbatim question label): multiline inputs
    values: Mapping[str, str] = field(default_factory=dict)  # prefill: "udfald", "begrundelse", question ids
    errors: Mapping[str, str] = field(default_factory=dict)  # input id → Danish error under that input
    reason_hint: str = ""  # help under «Begrundelse», e.g. which outcomes need one
    max_length: int = 2000
    heading: str = ""  # default «Registrér beslutning – {forum}»
    intro: str = ""  # a line above the questions (PSG: «Porteføljestyregruppen beslutter udkastets videre forløb:»)


def _decision_form(view: DecisionFormView, omitted: frozenset[str]) -> Json:
    input_ids = [qid for qid, _ in view.questions] + [DECISION_OUTCOME_ID, DECISION_REASON_ID]
    body: list[Json] = [
        *heading(view.heading or f"Registrér beslutning – {md_escape(view.forum_name)}",
                 _subtitle(view.number, view.title))
    ]
    body += _general_errors(
        view.errors, input_ids, "Beslutningen er ikke registreret: se de markerede felter nedenfor."
    )
    if view.intro:
        body.append(text_block(view.intro, weight="Bolder"))

    def value(input_id: str) -> str:
        return "" if input_id in omitted else view.values.get(input_id, "")

    def too_long(input_id: str) -> list[Json]:
        if input_id not in omitted:
            return []
        return [text_block(TOO_LONG_TO_SHOW, color="Attention", spacing="None")]

    for qid, label in view.questions:
        body.append(_text_input(qid, label, value(qid), view.max_length))
        body += _error_line(view.errors, qid) + too_long(qid)
    outcome: Json = {
        "type": "Input.ChoiceSet",
        "id": DECISION_OUTCOME_ID,
        "label": "Beslutning",
        "style": "expanded",
        "choices": [{"title": label, "value": outcome_id} for outcome_id, label in view.outcomes],
    }
    if view.questions:
        outcome["separator"] = True
        outcome["spacing"] = "Large"
    if view.values.get(DECISION_OUTCOME_ID):
        outcome["value"] = view.values[DECISION_OUTCOME_ID]
    body.append(outcome)
    body += _error_line(view.errors, DECISION_OUTCOME_ID)
    body.append(_text_input(DECISION_REASON_ID, "Begrundelse", value(DECISION_REASON_ID), view.max_length))
    if view.reason_hint:
        body.append(text_block(view.reason_hint, size="Small", subtle=True, spacing="None"))
    body += _error_line(view.errors, DECISION_REASON_ID) + too_long(DECISION_REASON_ID)
    data = _data(view.case_id, view.forum_id, rev=view.revision)
    body.append(
        action_set(
            [
                action("Registrér beslutning", verbs.FORUM_DECIDE, data, inputs=True),
                _back(view.case_id, view.forum_id),
            ],
            spacing="Large",
        )
    )
    return card(body)


def decision_form_card(view: DecisionFormView, *, budget: int = CARD_BUDGET_BYTES) -> Json:
    """The secretariat's decision form (FORUM_DECIDE with ``rev``; inputs: question ids, ``udfald``,
    ``begrundelse``). No ``isRequired``: the server validates and sends the form back with ``errors``
    and the submitted ``values``.

    Several long answers may not fit one card (the budget holds ~12,800 UTF-16 units, seven inputs of
    2,000 characters do not): then the longest values are left out, largest first, until the card fits,
    and each such input says so (``TOO_LONG_TO_SHOW``). See ``decision_form_omitted``."""
    omitted = decision_form_omitted(view, budget=budget)
    return _decision_form(view, omitted)


def decision_form_omitted(view: DecisionFormView, *, budget: int = CARD_BUDGET_BYTES) -> frozenset[str]:
    """Input ids whose prefilled values ``decision_form_card`` leaves out to fit ``budget`` (usually none)."""
    omitted: frozenset[str] = frozenset()
    candidates = sorted(
        (key for key in [qid for qid, _ in view.questions] + [DECISION_REASON_ID] if view.values.get(key)),
        key=lambda key: -size_utf16({"v": view.values[key]}),
    )
    for key in candidates:
        if size_utf16(_decision_form(view, omitted)) < budget:
            break
        omitted |= {key}
    return omitted


# ---------------------------------------------------------------------------------------------- plan
@dataclass(frozen=True)
class PlanFormView:
    case_id: int
    forum_id: str
    forum_name: str
    number: str
    title: str
    revision: int
    people: tuple[tuple[str, str], ...] = ()  # static choices: (user id, name); e.g. the current responsibles
    selected: tuple[str, ...] = ()  # user ids preselected
    evaluation_date: str = ""  # yyyy-mm-dd or ""
    note: str = ""
    errors: Mapping[str, str] = field(default_factory=dict)  # input id → Danish error
    pilot: bool = False  # local trial («Lokal afprøvning»)
    max_length: int = 2000


def plan_form_card(view: PlanFormView) -> Json:
    """Planning and follow-up (FORUM_PLAN with ``rev``; inputs: ``ansvarlige`` (comma-separated user
    ids), ``evalueringsdato`` (yyyy-mm-dd), ``note``).

    ``ansvarlige`` is Teams' people picker: ``"choices.data"`` (Data.Query on graph.microsoft.com/users)
    is a Teams extension outside the Adaptive Cards 1.5 schema; the static ``people`` choices let the
    preselected users show with their names."""
    input_ids = [PLAN_PEOPLE_ID, PLAN_DATE_ID, PLAN_NOTE_ID]
    title = "Lokal afprøvning – plan" if view.pilot else "Planlægning og opfølgning"
    body: list[Json] = [*heading(title, _form_subtitle(view.forum_name, view.number, view.title))]
    body += _general_errors(view.errors, input_ids, "Planen er ikke gemt: se de markerede felter nedenfor.")
    intro = (
        "Aftal, hvem der følger den lokale afprøvning, og hvornår resultatet skal foreligge."
        if view.pilot
        else "Aftal, hvem der er ansvarlige for opfølgningen, og hvornår opgaveflytningen skal evalueres."
    )
    body.append(text_block(intro, subtle=True))
    body.append(people_picker(PLAN_PEOPLE_ID, "Ansvarlige for opfølgning", list(view.people),
                              placeholder="Søg efter personer", value=",".join(view.selected)))
    body += _error_line(view.errors, PLAN_PEOPLE_ID)
    date: Json = {
        "type": "Input.Date",
        "id": PLAN_DATE_ID,
        "label": "Dato for resultat af afprøvningen" if view.pilot else "Evalueringsdato",
    }
    if view.evaluation_date:
        date["value"] = view.evaluation_date
    body.append(date)
    body += _error_line(view.errors, PLAN_DATE_ID)
    body.append(_text_input(PLAN_NOTE_ID, "Aftaler om opfølgning", view.note, view.max_length))
    body += _error_line(view.errors, PLAN_NOTE_ID)
    body.append(
        action_set(
            [
                action(
                    "Gem plan", verbs.FORUM_PLAN, _data(view.case_id, view.forum_id, rev=view.revision), inputs=True
                ),
                _back(view.case_id, view.forum_id),
            ],
            spacing="Large",
        )
    )
    return card(body)


# ---------------------------------------------------------------------------------------------- evaluation
@dataclass(frozen=True)
class EvaluationFormView:
    case_id: int
    forum_id: str
    forum_name: str
    number: str
    title: str
    revision: int
    pilot: bool = False
    value: str = ""
    errors: Mapping[str, str] = field(default_factory=dict)
    max_length: int = 2000


def evaluation_form_card(view: EvaluationFormView) -> Json:
    """Records the evaluation (FORUM_EVALUATE with ``rev``; input ``evaluering``). Recording it closes
    the case; for a local trial it sends the case back to Porteføljestyregruppen."""
    label = "Resultat af den lokale afprøvning" if view.pilot else "Evaluering af opgaveflytningen"
    title = "Lokal afprøvning – resultat" if view.pilot else "Evaluering"
    body: list[Json] = [*heading(title, _form_subtitle(view.forum_name, view.number, view.title))]
    body += _general_errors(view.errors, [EVALUATION_ID], "Evalueringen er ikke registreret: se feltet nedenfor.")
    body.append(_text_input(EVALUATION_ID, label, view.value, view.max_length))
    body += _error_line(view.errors, EVALUATION_ID)
    help_text = (
        "Når resultatet registreres, sendes sagen tilbage til Porteføljestyregruppen."
        if view.pilot
        else "Når evalueringen registreres, afsluttes sagen."
    )
    body.append(text_block(help_text, size="Small", subtle=True))
    body.append(
        action_set(
            [
                action(
                    "Registrér evaluering",
                    verbs.FORUM_EVALUATE,
                    _data(view.case_id, view.forum_id, rev=view.revision),
                    inputs=True,
                ),
                _back(view.case_id, view.forum_id),
            ],
            spacing="Large",
        )
    )
    return card(body)


# ---------------------------------------------------------------------------------------------- answers
@dataclass(frozen=True)
class AnswerEntry:
    form_title: str  # "Dialoggrundlag", "Mini-MTV", "Screening", "Valg af forum"
    section: str  # page/section heading ("" allowed)
    label: str  # the question as asked (may be long)
    answer: str  # full text; "" is shown as «Ikke besvaret»


def _entry_blocks(entries: Sequence[AnswerEntry], previous: AnswerEntry | None) -> list[Json]:
    """The entries of one part; the form and section headings are repeated at the top of each part
    («(fortsat)» when the previous part ended in the same form)."""
    blocks: list[Json] = []
    form: str | None = None
    section: str | None = None
    for index, entry in enumerate(entries):
        if entry.form_title != form:
            form, section = entry.form_title, None
            continued = index == 0 and previous is not None and previous.form_title == entry.form_title
            blocks.append(
                text_block(
                    entry.form_title + (" (fortsat)" if continued else ""),
                    size="Medium",
                    weight="Bolder",
                    separator=True,
                    spacing="Large",
                )
            )
        if entry.section != section:
            section = entry.section
            if section:
                blocks.append(text_block(section, weight="Bolder", color="Accent", spacing="Medium"))
        blocks.append(text_block(entry.label, weight="Bolder", spacing="Medium"))
        if entry.answer:
            blocks.append(text_block(md_escape(entry.answer), spacing="Small"))
        else:
            blocks.append(text_block("Ikke besvaret", subtle=True, spacing="Small"))
    return blocks


def _answers_card(
    case_id: int,
    forum_id: str,
    number: str,
    title: str,
    entries: Sequence[AnswerEntry],
    previous: AnswerEntry | None,
    index: int,
    count: int,
) -> Json:
    subtitle = md_escape(preview(title, ANSWERS_TITLE_PREVIEW)) if title else ""
    if count > 1:
        subtitle = (f"{subtitle} · " if subtitle else "") + f"Del {index + 1} af {count}"
    body: list[Json] = [*heading(f"Alle svar – {number}", subtitle or None)]
    if count == 0:
        body.append(text_block("Der er ingen svar på sagen endnu."))
    body += _entry_blocks(entries, previous)
    body.append(_pager(verbs.FORUM_ANSWERS, case_id, forum_id, index, count))
    return card(body)


def _pager(verb: str, case_id: int, forum_id: str, index: int, count: int) -> Json:
    """Forrige / Næste between the parts of a paged view, and back to the case."""
    buttons: list[Json] = []
    if index > 0:
        buttons.append(action("Forrige", verb, _data(case_id, forum_id, part=index - 1)))
    if index < count - 1:
        buttons.append(action("Næste", verb, _data(case_id, forum_id, part=index + 1)))
    buttons.append(_back(case_id, forum_id, "Tilbage til sagen"))
    return action_set(buttons, spacing="Large")


# Worst-case header for measuring parts (answer_parts does not know the case): a long number and forum
# id, the largest possible title preview (backslashes double when escaped, then again in JSON), and
# both navigation buttons.
_MEASURE_CASE_ID = 10**15
_MEASURE_FORUM_ID = "f" * 100
_MEASURE_NUMBER = "N" * 40
_MEASURE_TITLE = "\\" * ANSWERS_TITLE_PREVIEW


def _measure(entries: Sequence[AnswerEntry], previous: AnswerEntry | None) -> int:
    return size_utf16(
        _answers_card(_MEASURE_CASE_ID, _MEASURE_FORUM_ID, _MEASURE_NUMBER, _MEASURE_TITLE, entries, previous, 1, 999)
    )


def answer_parts(entries: Sequence[AnswerEntry], *, budget: int = CARD_BUDGET_BYTES) -> list[list[AnswerEntry]]:
    """Split ``entries`` in order into parts whose ``answers_card`` each fits ``budget`` (greedy).

    Nothing is shortened or lost: the parts concatenated are ``entries``. Measured with a worst-case
    header (title shortened to ANSWERS_TITLE_PREVIEW characters, number ≤ 40, forum id ≤ 100
    characters) and both navigation buttons. An entry too large for a card of its own (impossible with
    answers ≤ 2,000 and labels ≤ ~600 characters) gets a part of its own rather than being cut.
    """
    parts: list[list[AnswerEntry]] = []
    current: list[AnswerEntry] = []
    previous: AnswerEntry | None = None
    for entry in entries:
        if current and _measure([*current, entry], previous) >= budget:
            parts.append(current)
            previous, current = current[-1], []
        current.append(entry)
    if current:
        parts.append(current)
    return parts


def answers_card(
    case_id: int,
    forum_id: str,
    number: str,
    title: str,
    parts: Sequence[Sequence[AnswerEntry]],
    part_index: int,
) -> Json:
    """One part of all answers (``parts`` from ``answer_parts``), with Forrige/Næste (FORUM_ANSWERS with
    ``part``) and «Tilbage til sagen» (FORUM_VIEW). ``part_index`` out of range is clamped."""
    count = len(parts)
    index = min(max(part_index, 0), max(count - 1, 0))
    entries = parts[index] if count else []
    previous = parts[index - 1][-1] if index > 0 and parts[index - 1] else None
    return _answers_card(case_id, forum_id, number, title, entries, previous, index, count)


# ---------------------------------------------------------------------------------------------- history
@dataclass(frozen=True)
class HistoryEntry:
    at: datetime
    actor: str
    text: str


def history_line(entry: HistoryEntry, limit: int = HISTORY_PREVIEW_STEPS[0]) -> str:
    """«12.3.2026 kl. 14:05 · Anna Berg: Indsendt til …» (actor and text escaped, text shortened)."""
    actor = md_escape(preview(entry.actor, 80))
    return f"{da_datetime(entry.at)} · {actor}: {md_escape(preview(entry.text, limit))}"


def _history_card(
    case_id: int,
    forum_id: str,
    number: str,
    title: str,
    shown: Sequence[HistoryEntry],
    index: int,
    count: int,
    total: int,
    limit: int,
) -> Json:
    subtitle = _subtitle(number, title)
    if count > 1:
        subtitle += f" · Del {index + 1} af {count}"
    body: list[Json] = [*heading("Historik", subtitle)]
    if not total:
        body.append(text_block("Der er ingen hændelser på sagen endnu."))
    body += [text_block(history_line(entry, limit), spacing="Small") for entry in shown]
    if count > 1:
        body.append(text_block(f"{total} hændelser i alt, nyeste først.", size="Small", subtle=True))
    body.append(_pager(verbs.FORUM_HISTORY, case_id, forum_id, index, count))
    return card(body)


def history_card(
    case_id: int,
    forum_id: str,
    number: str,
    title: str,
    entries: Sequence[HistoryEntry],
    part_index: int,
    per_part: int = 15,
    *,
    budget: int = CARD_BUDGET_BYTES,
) -> Json:
    """The case history, newest first, ``per_part`` lines a page (FORUM_HISTORY with ``part``;
    ``part_index`` is clamped). Long texts are shortened to ~300 characters, less if needed to fit."""
    ordered = sorted(entries, key=lambda entry: entry.at, reverse=True)
    per_part = max(per_part, 1)
    count = -(-len(ordered) // per_part)
    index = min(max(part_index, 0), max(count - 1, 0))
    shown = ordered[index * per_part : (index + 1) * per_part]
    for limit in HISTORY_PREVIEW_STEPS:
        built = _history_card(case_id, forum_id, number, title, shown, index, count, len(ordered), limit)
        if size_utf16(built) < budget:
            break
    return built


# ---------------------------------------------------------------------------------------------- status
def status_message(text_lines: Sequence[str]) -> Json:
    """A plain message activity for a short status reply in a case's thread (no card).

    The lines are joined as markdown paragraphs and sent as they are: escape user-provided parts
    (names, titles, reasons) with ``md_escape`` before passing them, e.g.
    ``status_message([f"**{number}**: beslutning registreret af {md_escape(name)}."])``.
    """
    return {"type": "message", "textFormat": "markdown", "text": "\n\n".join(text_lines)}
