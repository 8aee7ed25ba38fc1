"""The case flow: which steps a case walks, where it stops, and moving forward and back."""

from __future__ import annotations

import pytest

from dialogs.flow import (
    DIALOGGRUNDLAG,
    FORM_ORDER,
    MINI_MTV,
    REVIEW,
    REVIEW_KEY,
    ROUTE,
    SCREENING,
    Phase,
    Plan,
    Step,
    next_step,
    plan,
    previous_step,
)
from dialogs.forms_model import FormCatalog

CATALOG = FormCatalog.load()
FORMS = {form_id: CATALOG.current(form_id) for form_id in FORM_ORDER}


def steps_of(form_id: str) -> list[str]:
    return [f"{form_id}/{page.id}" for page in FORMS[form_id].pages]


SCREEN_1 = "screening/overvejelser"
SCREEN_2 = "screening/vurdering"
DG_STEPS = steps_of(DIALOGGRUNDLAG)
ROUTE_STEPS = steps_of(ROUTE)
MTV_STEPS = steps_of(MINI_MTV)

ALL_NO = {"s1": "nej", "s2": "nej", "s3": "nej"}
ONE_YES = {"s1": "nej", "s2": "ja", "s3": "nej"}
NEED = {**ONE_YES, "need": "ja"}


def make_plan(answers: dict[str, dict[str, str]], *, continue_anyway: bool = False) -> Plan:
    return plan(FORMS, answers, continue_anyway=continue_anyway)


def keys(p: Plan) -> list[str]:
    return [step.key for step in p.steps]


SCENARIOS = {
    "nothing answered": ({}, False, [SCREEN_1], None),
    "partly answered": ({SCREENING: {"s1": "nej", "s2": "nej"}}, False, [SCREEN_1], None),
    "all nej": ({SCREENING: ALL_NO}, False, [SCREEN_1], Phase.NO_DUTY),
    "all nej, continue anyway": ({SCREENING: ALL_NO}, True, [SCREEN_1, *DG_STEPS, *ROUTE_STEPS], None),
    "all nej, continue anyway, psg": (
        {SCREENING: ALL_NO, ROUTE: {"route": "psg"}}, True,
        [SCREEN_1, *DG_STEPS, *ROUTE_STEPS, *MTV_STEPS, REVIEW_KEY], None,
    ),
    "one ja, need unanswered": ({SCREENING: ONE_YES}, False, [SCREEN_1, SCREEN_2], None),
    "one ja, the rest unanswered": ({SCREENING: {"s3": "ja"}}, False, [SCREEN_1, SCREEN_2], None),
    "need nej": ({SCREENING: {**ONE_YES, "need": "nej"}}, False, [SCREEN_1, SCREEN_2], Phase.NOT_NEEDED),
    "need nej, continue anyway ignored": (
        {SCREENING: {**ONE_YES, "need": "nej"}}, True, [SCREEN_1, SCREEN_2], Phase.NOT_NEEDED,
    ),
    "need ja": ({SCREENING: NEED}, False, [SCREEN_1, SCREEN_2, *DG_STEPS, *ROUTE_STEPS], None),
    "need ja, unknown route": (
        {SCREENING: NEED, ROUTE: {"route": "noget andet"}}, False, [SCREEN_1, SCREEN_2, *DG_STEPS, *ROUTE_STEPS], None,
    ),
    "route samarbejdsforum": (
        {SCREENING: NEED, ROUTE: {"route": "samarbejdsforum", "hospital": "aalborg"}}, False,
        [SCREEN_1, SCREEN_2, *DG_STEPS, *ROUTE_STEPS, REVIEW_KEY], None,
    ),
    "route psg": (
        {SCREENING: NEED, ROUTE: {"route": "psg"}}, False,
        [SCREEN_1, SCREEN_2, *DG_STEPS, *ROUTE_STEPS, *MTV_STEPS, REVIEW_KEY], None,
    ),
    "stale need answer after all nej": ({SCREENING: {**ALL_NO, "need": "ja"}}, False, [SCREEN_1], Phase.NO_DUTY),
}


@pytest.mark.parametrize(("answers", "continue_anyway", "expected", "stop"), SCENARIOS.values(), ids=SCENARIOS.keys())
def test_plan(answers: dict[str, dict[str, str]], continue_anyway: bool, expected: list[str], stop: Phase | None) -> None:
    result = make_plan(answers, continue_anyway=continue_anyway)
    assert keys(result) == expected
    assert result.stop is stop


def test_plan_does_not_depend_on_dialoggrundlag_or_mtv_answers() -> None:
    base = {SCREENING: NEED, ROUTE: {"route": "psg"}}
    filled = {**base, DIALOGGRUNDLAG: {"h_task": "x", "q6": "y"}, MINI_MTV: {"q1": "z"}}
    assert make_plan(base) == make_plan(filled)


def test_samarbejdsforum_plan_has_no_mini_mtv() -> None:
    result = make_plan({SCREENING: NEED, ROUTE: {"route": "samarbejdsforum"}})
    assert MINI_MTV not in result.forms()
    assert result.forms() == [SCREENING, DIALOGGRUNDLAG, ROUTE]
    assert result.steps[-1] is REVIEW


def test_plan_forms_and_index() -> None:
    result = make_plan({SCREENING: NEED, ROUTE: {"route": "psg"}})
    assert result.forms() == [SCREENING, DIALOGGRUNDLAG, ROUTE, MINI_MTV]
    assert result.index(Step.parse(SCREEN_1)) == 0
    assert result.index(REVIEW) == len(result.steps) - 1
    assert result.index(Step(MINI_MTV, "findes_ikke")) is None


# ---------------------------------------------------------------- next_step / previous_step

PSG_PLAN = make_plan({SCREENING: NEED, ROUTE: {"route": "psg"}})
FORUM_PLAN = make_plan({SCREENING: NEED, ROUTE: {"route": "samarbejdsforum"}})


def s(key: str) -> Step:
    return Step.parse(key)


@pytest.mark.parametrize(
    ("current", "answers", "continue_anyway", "expected"),
    [
        (SCREEN_1, {}, False, SCREEN_1),  # nothing decided yet: stay
        (SCREEN_1, {SCREENING: ALL_NO}, False, Phase.NO_DUTY),
        (SCREEN_1, {SCREENING: ALL_NO}, True, DG_STEPS[0]),
        (SCREEN_1, {SCREENING: ONE_YES}, False, SCREEN_2),
        (SCREEN_2, {SCREENING: ONE_YES}, False, SCREEN_2),  # need unanswered: stay
        (SCREEN_2, {SCREENING: {**ONE_YES, "need": "nej"}}, False, Phase.NOT_NEEDED),
        (SCREEN_2, {SCREENING: NEED}, False, DG_STEPS[0]),
        (DG_STEPS[0], {SCREENING: NEED}, False, DG_STEPS[1]),
        (DG_STEPS[-1], {SCREENING: NEED}, False, ROUTE_STEPS[0]),
        (ROUTE_STEPS[-1], {SCREENING: NEED}, False, ROUTE_STEPS[-1]),  # no route yet: stay
        (ROUTE_STEPS[-1], {SCREENING: NEED, ROUTE: {"route": "psg"}}, False, MTV_STEPS[0]),
        (ROUTE_STEPS[-1], {SCREENING: NEED, ROUTE: {"route": "samarbejdsforum"}}, False, REVIEW_KEY),
        (MTV_STEPS[-1], {SCREENING: NEED, ROUTE: {"route": "psg"}}, False, REVIEW_KEY),
        (REVIEW_KEY, {SCREENING: NEED, ROUTE: {"route": "psg"}}, False, REVIEW_KEY),  # the end: stay
        # A step the new plan no longer has leads to the plan's last step.
        (MTV_STEPS[3], {SCREENING: NEED, ROUTE: {"route": "samarbejdsforum"}}, False, REVIEW_KEY),
    ],
)
def test_next_step(current: str, answers: dict[str, dict[str, str]], continue_anyway: bool,
                   expected: str | Phase) -> None:
    target = next_step(s(current), make_plan(answers, continue_anyway=continue_anyway))
    if isinstance(expected, Phase):
        assert target is expected
    else:
        assert isinstance(target, Step) and target.key == expected


def test_next_step_walks_the_whole_psg_plan() -> None:
    walked = [PSG_PLAN.steps[0]]
    while (target := next_step(walked[-1], PSG_PLAN)) != walked[-1]:
        assert isinstance(target, Step)
        walked.append(target)
    assert tuple(walked) == PSG_PLAN.steps


@pytest.mark.parametrize(
    ("current", "the_plan", "expected"),
    [
        (SCREEN_1, PSG_PLAN, SCREEN_1),  # first step: stay
        (SCREEN_2, PSG_PLAN, SCREEN_1),
        (DG_STEPS[0], PSG_PLAN, SCREEN_2),
        (DG_STEPS[0], make_plan({SCREENING: ALL_NO}, continue_anyway=True), SCREEN_1),
        (ROUTE_STEPS[0], PSG_PLAN, DG_STEPS[-1]),
        (MTV_STEPS[0], PSG_PLAN, ROUTE_STEPS[-1]),
        (REVIEW_KEY, PSG_PLAN, MTV_STEPS[-1]),
        (REVIEW_KEY, FORUM_PLAN, ROUTE_STEPS[-1]),
        # A step the plan does not have leads to the first step.
        (MTV_STEPS[2], FORUM_PLAN, SCREEN_1),
    ],
)
def test_previous_step(current: str, the_plan: Plan, expected: str) -> None:
    assert previous_step(s(current), the_plan).key == expected


def test_previous_step_walks_back_to_the_start() -> None:
    walked = [PSG_PLAN.steps[-1]]
    while (target := previous_step(walked[-1], PSG_PLAN)) != walked[-1]:
        walked.append(target)
    assert tuple(reversed(walked)) == PSG_PLAN.steps


# ---------------------------------------------------------------- Step and Phase


@pytest.mark.parametrize("step", [*PSG_PLAN.steps, REVIEW], ids=lambda st: st.key)
def test_step_key_round_trip(step: Step) -> None:
    assert Step.parse(step.key) == step
    assert Step.parse(step.key).key == step.key


def test_step_keys_and_phases() -> None:
    assert REVIEW.key == REVIEW_KEY == "gennemsyn"
    assert Step.parse("gennemsyn") is REVIEW
    assert REVIEW.phase is Phase.REVIEW
    assert Step(SCREENING, "vurdering").key == "screening/vurdering"
    expected = {SCREENING: Phase.SCREENING, DIALOGGRUNDLAG: Phase.DIALOGGRUNDLAG, ROUTE: Phase.ROUTE,
                MINI_MTV: Phase.MINI_MTV}
    for step in PSG_PLAN.steps[:-1]:
        assert step.phase is expected[step.form]


@pytest.mark.parametrize(
    "key",
    ["", "x/y", "screening/", "/overvejelser", "screening", "Gennemsyn", " gennemsyn", "gennemsyn/",
     "gennemsyn/rute", "Screening/overvejelser", " screening/overvejelser", "review", "/", "mini-mtv/indledning"],
)
def test_step_parse_rejects_garbage(key: str) -> None:
    with pytest.raises(ValueError, match="unknown step"):
        Step.parse(key)


def test_phase_labels_are_danish_and_complete() -> None:
    assert {phase.label for phase in Phase} == {
        "Screening", "Dialoggrundlag udfyldes", "Valg af forum", "Mini-MTV udfyldes", "Klar til gennemsyn",
        "Lukket – ingen initiativpligt", "Lukket – intet behov for dialoggrundlag", "Hos samarbejdsforum",
        "Hos Porteføljestyregruppen", "Lokal afprøvning", "Til afgørelse", "Planlægning",
        "Opfølgning og evaluering", "Lukket – kun orientering til PSG", "Lukket – gensidig orientering",
        "Lukket – afvist", "Lukket – ingen aftale", "Afsluttet – evalueret",
    }


def test_phase_properties() -> None:
    assert {p for p in Phase if p.closed} == {
        Phase.NO_DUTY, Phase.NOT_NEEDED, Phase.ORIENTATION, Phase.MUTUAL, Phase.REJECTED, Phase.NO_AGREEMENT,
        Phase.EVALUATED}
    assert {p for p in Phase if p.editable} == {
        Phase.SCREENING, Phase.DIALOGGRUNDLAG, Phase.ROUTE, Phase.MINI_MTV, Phase.REVIEW, Phase.NO_DUTY}
    assert {p for p in Phase if p.sent} == set(Phase) - {p for p in Phase if p.editable} - {Phase.NOT_NEEDED}
    assert Phase.NO_DUTY.editable  # the user may still continue anyway
