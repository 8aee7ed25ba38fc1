"""The forums' part of the case lifecycle as data: who may move a case from which phase to which.

Pure (no I/O). ``dialogs/forums.py`` applies these rules; ``docs/flows.md`` draws them.

Forum kinds: a hospital's *samarbejdsforum* (``hospital``), *Porteføljestyregruppen* (``psg``) and the final
decision body (``decision``, Strategisk Sundhedsforum by default). Only the secretariat of the forum whose
channel holds the card may record a decision there.
"""

from __future__ import annotations

from dataclasses import dataclass

from dialogs.flow import Phase

HOSPITAL, PSG, DECISION = "hospital", "psg", "decision"

# The six questions Porteføljestyregruppen decides on, verbatim (seed 001, lines 311–339).
PSG_INTRO = "Porteføljestyregruppen beslutter udkastets videre forløb:"
PSG_QUESTIONS: tuple[tuple[str, str], ...] = (
    ("q1", "Skal der arbejdes videre med opgaveflytning – og hvordan?"),
    ("q2", "Er dialoggrundlaget og mini-mtv fyldestgørende?"),
    ("q3", "Afklare evaluering af opgaveflytning"),
    ("q4", "Skal opgaveflytningen afprøves lokalt før den evt. løftes til regionalt niveau?"),
    ("q5", "Afklares om der er behov for nye underliggende aftaler ved flytning til almen praksis?"),
    ("q6", "Afklare eventuelle behov for kompetenceudvikling?"),
)


@dataclass(frozen=True)
class Outcome:
    """One decision a forum's secretariat can record on the case card."""

    id: str
    forum_kind: str
    label: str  # the choice on the decision card
    from_phases: frozenset[Phase]
    to: Phase
    reason_required: bool
    # what the status reply and the 1:1 message say ({decision_body} is filled in from the configuration)
    status: str


OUTCOMES: tuple[Outcome, ...] = (
    Outcome("loeft", HOSPITAL, "Løftes til Porteføljestyregruppen", frozenset({Phase.FORUM}), Phase.MINI_MTV, False,
            "Samarbejdsforum har løftet sagen til Porteføljestyregruppen. Initiativtager udfylder nu Mini-MTV, "
            "derefter går sagen til Porteføljestyregruppen."),
    Outcome("orientering", HOSPITAL, "Ingen grundlag – kun orientering til Porteføljestyregruppen",
            frozenset({Phase.FORUM}), Phase.ORIENTATION, True,
            "Samarbejdsforum fandt ikke grundlag for at arbejde videre. Sagen er lukket; "
            "Porteføljestyregruppen er orienteret."),
    Outcome("retur", PSG, "Returneres til supplering", frozenset({Phase.PSG}), Phase.REVIEW, True,
            "Porteføljestyregruppen har returneret sagen til supplering. Initiativtager kan rette og indsende igen; "
            "sagen kommer tilbage i denne tråd."),
    Outcome("pilot", PSG, "Afprøves lokalt først", frozenset({Phase.PSG}), Phase.PILOT, False,
            "Porteføljestyregruppen har besluttet, at opgaveflytningen afprøves lokalt først."),
    Outcome("gensidig", PSG, "Kun gensidig orientering", frozenset({Phase.PSG}), Phase.MUTUAL, False,
            "Porteføljestyregruppen har besluttet, at der blot skal ske en gensidig orientering. Sagen er lukket."),
    Outcome("afgoerelse", PSG, "Til afgørelse i {decision_body}", frozenset({Phase.PSG}), Phase.DECISION, False,
            "Porteføljestyregruppen vurderer, at der er grundlag for at indgå aftale om opgaveflytning. "
            "Sagen afgøres i {decision_body}."),
    Outcome("afvist", PSG, "Afvises", frozenset({Phase.PSG}), Phase.REJECTED, True,
            "Porteføljestyregruppen har afvist sagen. Sagen er lukket."),
    Outcome("enighed", DECISION, "Enighed – aftale om opgaveflytning", frozenset({Phase.DECISION}), Phase.PLANNING,
            True, "{decision_body} har indgået aftale om opgaveflytningen. Nu planlægges opfølgning og evaluering."),
    Outcome("uenighed", DECISION, "Ikke enighed – ingen aftale", frozenset({Phase.DECISION}), Phase.NO_AGREEMENT,
            True, "{decision_body} indgik ikke aftale om opgaveflytningen. Sagen er lukket."),
)
OUTCOME_BY_ID = {outcome.id: outcome for outcome in OUTCOMES}


def outcomes_for(forum_kind: str, phase: Phase) -> list[Outcome]:
    """The decisions a forum of this kind can record while the case is in ``phase``."""
    return [o for o in OUTCOMES if o.forum_kind == forum_kind and phase in o.from_phases]


# Planning and evaluation: after an agreement (decision body) or for a local pilot (PSG). Both the decision
# body's and PSG's secretariats may record them («Sikrer opgaveflytningen gennemføres og evalueres som besluttet»).
PLAN_PHASES = frozenset({Phase.PLANNING, Phase.FOLLOW_UP, Phase.PILOT})
PLAN_FORUM_KINDS = frozenset({PSG, DECISION})
EVALUATE_PHASES = frozenset({Phase.FOLLOW_UP, Phase.PILOT})


def after_plan(phase: Phase) -> Phase:
    """The phase once a plan is recorded (a pilot stays a pilot until it is evaluated)."""
    return Phase.PILOT if phase is Phase.PILOT else Phase.FOLLOW_UP


def after_evaluation(phase: Phase) -> Phase:
    """An evaluated transfer closes the case; an evaluated local pilot goes back to PSG («afprøves lokalt før
    den evt. løftes til regionalt niveau»)."""
    return Phase.PSG if phase is Phase.PILOT else Phase.EVALUATED


def can_plan(forum_kind: str, phase: Phase) -> bool:
    return forum_kind in PLAN_FORUM_KINDS and phase in PLAN_PHASES and (phase is not Phase.PILOT or forum_kind == PSG)


def can_evaluate(forum_kind: str, phase: Phase, has_plan: bool) -> bool:
    return can_plan(forum_kind, phase) and phase in EVALUATE_PHASES and has_plan


# Where the case's current work happens: the forum kind whose thread gets decisions.
HOME_FORUM_KIND = {
    Phase.FORUM: HOSPITAL,
    Phase.PSG: PSG,
    Phase.PILOT: PSG,
    Phase.DECISION: DECISION,
    Phase.PLANNING: DECISION,
    Phase.FOLLOW_UP: DECISION,
}
