"""The case lifecycle as a table: phases, the steps a case walks and where it stops.

Pure: input is the answers so far (per form) and the case's flags; output is the plan of steps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from dialogs.engine import NO, YES, FormAnswers, visible_pages
from dialogs.forms_model import Form

SCREENING, DIALOGGRUNDLAG, ROUTE, MINI_MTV = "screening", "dialoggrundlag", "rute", "mini_mtv"
FORM_ORDER = (SCREENING, DIALOGGRUNDLAG, ROUTE, MINI_MTV)
ROUTE_FORUM, ROUTE_PSG = "samarbejdsforum", "psg"


class Phase(StrEnum):
    # filled in by the initiator (and co-authors) in 1:1
    SCREENING = "screening"
    DIALOGGRUNDLAG = "dialoggrundlag"
    ROUTE = "rute"
    MINI_MTV = "mini_mtv"
    REVIEW = "gennemsyn"
    # closed before any forum
    NO_DUTY = "ingen_initiativpligt"
    NOT_NEEDED = "ikke_behov"
    # with the forums (see dialogs/process.py for who moves a case between these)
    FORUM = "samarbejdsforum"
    PSG = "psg"
    PILOT = "lokal_afproevning"
    DECISION = "afgoerelse"
    PLANNING = "planlaegning"
    FOLLOW_UP = "opfoelgning"
    # closed by a forum
    ORIENTATION = "kun_orientering"
    MUTUAL = "gensidig_orientering"
    REJECTED = "afvist"
    NO_AGREEMENT = "ingen_aftale"
    EVALUATED = "evalueret"

    @property
    def label(self) -> str:
        return PHASE_LABELS[self]

    @property
    def editable(self) -> bool:
        """The initiator (and co-authors) may still change the answers."""
        return self in _EDITABLE

    @property
    def closed(self) -> bool:
        return self in _CLOSED

    @property
    def sent(self) -> bool:
        """Submitted: the case is with (or was closed by) the forums."""
        return self in _SENT


_EDITABLE = frozenset({Phase.SCREENING, Phase.DIALOGGRUNDLAG, Phase.ROUTE, Phase.MINI_MTV, Phase.REVIEW, Phase.NO_DUTY})
_CLOSED = frozenset({Phase.NO_DUTY, Phase.NOT_NEEDED, Phase.ORIENTATION, Phase.MUTUAL, Phase.REJECTED,
                     Phase.NO_AGREEMENT, Phase.EVALUATED})
_SENT = frozenset({Phase.FORUM, Phase.PSG, Phase.PILOT, Phase.DECISION, Phase.PLANNING, Phase.FOLLOW_UP,
                   Phase.ORIENTATION, Phase.MUTUAL, Phase.REJECTED, Phase.NO_AGREEMENT, Phase.EVALUATED})

PHASE_LABELS = {
    Phase.SCREENING: "Screening",
    Phase.DIALOGGRUNDLAG: "Dialoggrundlag udfyldes",
    Phase.ROUTE: "Valg af forum",
    Phase.MINI_MTV: "Mini-MTV udfyldes",
    Phase.REVIEW: "Klar til gennemsyn",
    Phase.NO_DUTY: "Lukket – ingen initiativpligt",
    Phase.NOT_NEEDED: "Lukket – intet behov for dialoggrundlag",
    Phase.FORUM: "Hos samarbejdsforum",
    Phase.PSG: "Hos Porteføljestyregruppen",
    Phase.PILOT: "Lokal afprøvning",
    Phase.DECISION: "Til afgørelse",
    Phase.PLANNING: "Planlægning",
    Phase.FOLLOW_UP: "Opfølgning og evaluering",
    Phase.ORIENTATION: "Lukket – kun orientering til PSG",
    Phase.MUTUAL: "Lukket – gensidig orientering",
    Phase.REJECTED: "Lukket – afvist",
    Phase.NO_AGREEMENT: "Lukket – ingen aftale",
    Phase.EVALUATED: "Afsluttet – evalueret",
}

_PHASE_OF_FORM = {
    SCREENING: Phase.SCREENING,
    DIALOGGRUNDLAG: Phase.DIALOGGRUNDLAG,
    ROUTE: Phase.ROUTE,
    MINI_MTV: Phase.MINI_MTV,
}

REVIEW_KEY = "gennemsyn"


@dataclass(frozen=True)
class Step:
    """One card of the case flow: a page of a form, or the review (form is None)."""

    form: str | None
    page: str | None

    @property
    def key(self) -> str:
        return REVIEW_KEY if self.form is None else f"{self.form}/{self.page}"

    @property
    def phase(self) -> Phase:
        return Phase.REVIEW if self.form is None else _PHASE_OF_FORM[self.form]

    @classmethod
    def parse(cls, key: str) -> Step:
        if key == REVIEW_KEY:
            return REVIEW
        form, sep, page = key.partition("/")
        if not sep or form not in FORM_ORDER or not page:
            raise ValueError(f"unknown step {key!r}")
        return cls(form, page)


REVIEW = Step(None, None)


@dataclass(frozen=True)
class Plan:
    """The steps a case walks with the answers it has, and the phase it stops in (if it stops early)."""

    steps: tuple[Step, ...]
    stop: Phase | None = None  # a closing phase reached after the last step

    def index(self, step: Step) -> int | None:
        try:
            return self.steps.index(step)
        except ValueError:
            return None

    def forms(self) -> list[str]:
        seen: list[str] = []
        for step in self.steps:
            if step.form and step.form not in seen:
                seen.append(step.form)
        return seen


def any_yes(screening: FormAnswers) -> bool:
    return any(screening.get(q) == YES for q in ("s1", "s2", "s3"))


def all_no(screening: FormAnswers) -> bool:
    return all(screening.get(q) == NO for q in ("s1", "s2", "s3"))


def plan(
    forms: Mapping[str, Form], answers: Mapping[str, FormAnswers], *, continue_anyway: bool, require_mtv: bool = False
) -> Plan:
    """Which steps the case walks, given its answers so far.

    Screening → (assessment if any Ja) → Dialoggrundlag → route → (Mini-MTV if PSG) → review.
    All Nej stops in NO_DUTY unless the user chose to continue anyway; a Nej to the assessment stops
    in NOT_NEEDED. Steps after an unanswered decision are not planned yet. ``require_mtv``: a samarbejdsforum
    lifted the case to PSG, which needs the Mini-MTV whatever route was chosen.
    """
    screening = answers.get(SCREENING, {})
    steps = [Step(SCREENING, page.id) for page in visible_pages(forms[SCREENING], screening)]
    if any_yes(screening):
        if screening.get("need") == NO:
            return Plan(tuple(steps), Phase.NOT_NEEDED)
        if screening.get("need") != YES:
            return Plan(tuple(steps))
    elif all_no(screening):
        if not continue_anyway:
            return Plan(tuple(steps), Phase.NO_DUTY)
    else:
        return Plan(tuple(steps))
    steps += [Step(DIALOGGRUNDLAG, page.id) for page in visible_pages(forms[DIALOGGRUNDLAG], answers.get(DIALOGGRUNDLAG, {}))]
    route_answers = answers.get(ROUTE, {})
    steps += [Step(ROUTE, page.id) for page in visible_pages(forms[ROUTE], route_answers)]
    route = route_answers.get("route")
    if route not in (ROUTE_FORUM, ROUTE_PSG):
        return Plan(tuple(steps))
    if route == ROUTE_PSG or require_mtv:
        steps += [Step(MINI_MTV, page.id) for page in visible_pages(forms[MINI_MTV], answers.get(MINI_MTV, {}))]
    steps.append(REVIEW)
    return Plan(tuple(steps))


def next_step(current: Step, new_plan: Plan) -> Step | Phase:
    """Where Næste leads from ``current`` under the plan recomputed after saving: a step or a closing phase."""
    index = new_plan.index(current)
    if index is None:
        return new_plan.steps[-1]
    if index + 1 < len(new_plan.steps):
        return new_plan.steps[index + 1]
    return new_plan.stop if new_plan.stop is not None else current


def previous_step(current: Step, current_plan: Plan) -> Step:
    index = current_plan.index(current)
    if not index:
        return current_plan.steps[0]
    return current_plan.steps[index - 1]
