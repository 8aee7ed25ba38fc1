"""Forum channel cards (adaptive_cards.forum): schema 1.5, the 25 KiB budget, verbs and data, Danish texts.

Worst cases: a 200-character title of «æ», answers of 2,000 characters made of text that costs extra in
JSON or markdown (``"`` and ``\\``), 60+ refresh users, 200 history entries of 2,000 characters.
Every size check prints one line: run with ``-s`` to see the measured sizes.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adaptive_cards import forum, verbs
from adaptive_cards.common import (
    CARD_BUDGET_BYTES,
    CARD_VERSION,
    Json,
    md_escape,
    no_block_markdown,
    size_utf16,
)
from adaptive_cards.forum import (
    AnswerEntry,
    CaseCardView,
    DecisionFormView,
    EvaluationFormView,
    HistoryEntry,
    PlanFormView,
    answer_parts,
    answers_card,
    case_card,
    case_card_summary,
    decision_form_card,
    decision_form_omitted,
    evaluation_form_card,
    history_card,
    plan_form_card,
    status_message,
)
from tests.support.card_schema import card_errors, card_size_utf16
from tests.support.chat import walk

CASE_ID = 4711
FORUM_ID = "sf-aauh"
FORUM_NAME = "Samarbejdsforum ved Aalborg Universitetshospital"
NUMBER = "OF-2026-0007"
TITLE = "Sårpleje efter udskrivelse"
REVISION = 23
NOW = datetime(2026, 3, 12, 13, 5, tzinfo=UTC)  # 14:05 in Copenhagen
MARKDOWN_TITLE = "**fed** [link](http://x)"
ESCAPED_TITLE = r"\*\*fed\*\* \[link\](http://x)"
LONG_TITLE = "æ" * 200

PARAGRAPH = (
    "Kommunens sygeplejersker overtager sårplejen efter udskrivelse – også i weekender og på helligdage. "
    'Borgeren slipper for transport til ambulatoriet, men det kræver "ny" oplæring og tæt dialog.\n'
    "- Overlægen skrev: «Vi kan godt overtage kontrollen, hvis epikrisen følger med».\n"
    "1. Ærø, Øster Hornum og Åbybro: 12-15 besøg pr. uge; *ca.* 3.500 kr. pr. forløb_\\.\n"
)

DECISION_VERBS = {
    verbs.FORUM_DECIDE_START, verbs.FORUM_DECIDE, verbs.FORUM_PLAN_START, verbs.FORUM_PLAN,
    verbs.FORUM_EVALUATE_START, verbs.FORUM_EVALUATE,
}


def hard_text(length: int, unit: str = PARAGRAPH) -> str:
    text = (unit * (length // len(unit) + 1))[:length]
    return text[:-1] + "." if text[-1].isspace() else text


FILLS: dict[str, Callable[[int], str]] = {
    "danish": hard_text,
    "quotes": lambda n: '"' * n,
    "backslashes": lambda n: "\\" * n,
    "mixed": lambda n: ('"\\' * n)[:n],
}


# ---------------------------------------------------------------------------------------------- helpers
def executes(card: Json) -> list[Json]:
    """The buttons: every Action.Execute except the refresh action."""
    refresh = card.get("refresh", {}).get("action")
    return [node for node in walk(card) if node.get("type") == "Action.Execute" and node is not refresh]


def by_title(card: Json, title: str) -> Json:
    [found] = [a for a in executes(card) if a["title"] == title]
    return found


def inputs(card: Json) -> list[Json]:
    return [node for node in walk(card) if str(node.get("type", "")).startswith("Input.")]


def input_by_id(card: Json, input_id: str) -> Json:
    [found] = [e for e in inputs(card) if e["id"] == input_id]
    return found


def shown_texts(card: Json) -> list[str]:
    texts = [node["text"] for node in walk(card) if node.get("type") == "TextBlock"]
    for node in walk(card):
        if node.get("type") == "FactSet":
            for fact in node["facts"]:
                texts += [fact["title"], fact["value"]]
    return texts


def facts_of(card: Json) -> list[tuple[str, str]]:
    return [(f["title"], f["value"]) for node in walk(card) if node.get("type") == "FactSet" for f in node["facts"]]


def without_people_picker(card: Json) -> tuple[Json, list[Any]]:
    """A copy of the card without Teams' ``choices.data`` extension, and the removed values."""
    stripped = copy.deepcopy(card)
    removed = [node.pop("choices.data") for node in walk(stripped) if "choices.data" in node]
    return stripped, removed


def assert_valid(card: Json) -> None:
    assert card["version"] == CARD_VERSION == "1.5"
    assert card.get("msteams") == {"width": "Full"}
    assert card_errors(copy.deepcopy(card)) == []


def assert_fits(card: Json, name: str) -> int:
    size = size_utf16(card)
    assert size == card_size_utf16(card)
    print(f"{name}: {size} bytes UTF-16 = {size / CARD_BUDGET_BYTES:.1%} of the {CARD_BUDGET_BYTES}-byte budget")
    assert size < CARD_BUDGET_BYTES, f"{name}: {size} bytes UTF-16, budget {CARD_BUDGET_BYTES}"
    return size


def assert_actions(card: Json) -> None:
    """Every button is an Action.Execute with a forum verb, case/forum data and a matching Submit fallback."""
    buttons = executes(card)
    assert buttons
    for act in buttons:
        assert act["verb"] in verbs.FORUM
        assert act["data"]["case"] == CASE_ID and act["data"]["forum"] == FORUM_ID
        assert "verb" not in act["data"]
        fallback = act["fallback"]
        assert fallback["type"] == "Action.Submit" and fallback["title"] == act["title"]
        assert fallback["data"] == {**act["data"], "verb": act["verb"]}
        assert fallback["associatedInputs"] == act["associatedInputs"] in ("auto", "none")
    kinds = [node["type"] for node in walk(card) if str(node.get("type", "")).startswith("Action.")]
    assert kinds.count("Action.Submit") == len(buttons)
    assert not any("isRequired" in e for e in inputs(card))
    ids = [e["id"] for e in inputs(card)]
    assert len(ids) == len(set(ids))
    if not ids:
        assert all(a["associatedInputs"] == "none" for a in buttons)


def unescaped_markdown(text: str) -> list[str]:
    out, escaped = [], False
    for char in text:
        if not escaped and char in "*_[]`~<>":
            out.append(char)
        escaped = char == "\\" and not escaped
    return out


# ---------------------------------------------------------------------------------------------- case card
def case_view(**changes: Any) -> CaseCardView:
    view = CaseCardView(
        case_id=CASE_ID,
        forum_id=FORUM_ID,
        forum_name=FORUM_NAME,
        orientation=False,
        number=NUMBER,
        title=TITLE,
        phase_label="Hos samarbejdsforum",
        closed=False,
        route_label=FORUM_NAME,
        initiator="Anna Berg",
        organisation="Aalborg Kommune",
        coauthors=(),
        mtv_progress=None,
        updated_at=NOW,
        last_decision=None,
    )
    return replace(view, **changes)


ACTIONS = (("Registrér beslutning", verbs.FORUM_DECIDE_START), ("Planlægning", verbs.FORUM_PLAN_START),
           ("Registrér evaluering", verbs.FORUM_EVALUATE_START))
REFRESH_IDS = tuple(f"29:1{'a' * 60}-{i:03d}-bruger-mri-{'x' * 20}" for i in range(75))


def worst_case_view(fill: Callable[[int], str] = hard_text) -> CaseCardView:
    return case_view(
        orientation=True,
        title=LONG_TITLE,
        closed=True,
        phase_label="Afsluttet",
        initiator=fill(120),
        organisation=fill(200),
        coauthors=tuple(fill(80) for _ in range(12)),
        mtv_progress="23 af 31 spørgsmål besvaret",
        last_decision=fill(2000),
        plan=(("Ansvarlige for opfølgning", fill(600)), ("Evaluering", "1.6.2027"),
              ("Aftaler om opfølgning", fill(2000)), ("Resultat af afprøvningen", fill(2000))),
        refresh_user_ids=REFRESH_IDS,
        actions=ACTIONS,
        notices=("Kun sekretariatet for forummet kan registrere en beslutning.",),
        info=("Beslutningen er registreret.",),
    )


CASE_CARDS: dict[str, Callable[[], Json]] = {
    "read-only": lambda: case_card(case_view()),
    "secretariat": lambda: case_card(case_view(actions=ACTIONS, refresh_user_ids=REFRESH_IDS[:3])),
    "orientation": lambda: case_card(case_view(orientation=True, forum_name="Porteføljestyregruppen")),
    "no-title": lambda: case_card(case_view(title="", organisation="", coauthors=("Bo Ø",))),
    **{f"worst-{name}": (lambda fill=fill: case_card(worst_case_view(fill))) for name, fill in FILLS.items()},
}


@pytest.mark.parametrize("name", list(CASE_CARDS))
def test_case_card_is_valid_and_fits(name: str) -> None:
    card = CASE_CARDS[name]()
    assert_valid(card)
    assert_fits(card, f"case card {name}")
    assert_actions(card)
    assert inputs(card) == []


def test_case_card_read_only_facts_buttons_and_refresh() -> None:
    card = case_card(case_view())
    assert facts_of(card) == [
        ("Sag", NUMBER),
        ("Opgave", TITLE),
        ("Fase", "Hos samarbejdsforum"),
        ("Forum", FORUM_NAME),
        ("Initiativtager", "Anna Berg, Aalborg Kommune"),
        ("Senest ændret", "12.3.2026 kl. 14:05"),
    ]
    assert f"{NUMBER} · {TITLE}" in shown_texts(card)
    buttons = executes(card)
    assert [(a["title"], a["verb"], a["data"]) for a in buttons] == [
        ("Vis alle svar", verbs.FORUM_ANSWERS, {"case": CASE_ID, "forum": FORUM_ID, "part": 0}),
        ("Historik", verbs.FORUM_HISTORY, {"case": CASE_ID, "forum": FORUM_ID, "part": 0}),
    ]
    assert not {a["verb"] for a in buttons} & DECISION_VERBS
    assert card["refresh"] == {
        "action": {"type": "Action.Execute", "title": "Opdatér", "verb": verbs.FORUM_VIEW,
                   "data": {"case": CASE_ID, "forum": FORUM_ID}},
    }
    text = json.dumps(card, ensure_ascii=False)
    assert "Til orientering" not in text and "afsluttet" not in text


def test_case_card_with_secretariat_actions() -> None:
    card = case_card(case_view(actions=ACTIONS, refresh_user_ids=REFRESH_IDS[:3]))
    buttons = executes(card)
    assert [a["title"] for a in buttons] == ["Vis alle svar", "Historik", *[t for t, _ in ACTIONS]]
    for act, (title, verb) in zip(buttons[2:], ACTIONS, strict=True):
        assert act["title"] == title and act["verb"] == verb
        assert act["data"] == {"case": CASE_ID, "forum": FORUM_ID}
        assert act["associatedInputs"] == "none"
    assert card["refresh"]["userIds"] == list(REFRESH_IDS[:3])
    assert card["refresh"]["action"]["data"] == {"case": CASE_ID, "forum": FORUM_ID}


def test_case_card_worst_case_content() -> None:
    view = worst_case_view()
    card = case_card(view)
    texts = shown_texts(card)
    assert texts[0] == view.notices[0]
    assert "Beslutningen er registreret." in texts
    assert "Til orientering" in texts
    assert "Sagen er afsluttet." in texts
    assert f"{NUMBER} · {LONG_TITLE}" in texts
    assert len(card["refresh"]["userIds"]) == forum.MAX_REFRESH_USERS == 60
    assert card["refresh"]["userIds"] == list(REFRESH_IDS[:60])
    assert [title for title, _ in facts_of(card)] == [
        "Sag", "Opgave", "Fase", "Forum", "Initiativtager", "Medforfattere", "Mini-MTV", "Seneste beslutning",
        "Ansvarlige for opfølgning", "Evaluering", "Aftaler om opfølgning", "Resultat af afprøvningen",
        "Senest ændret",
    ]
    facts = dict(facts_of(card))
    assert facts["Mini-MTV"] == "23 af 31 spørgsmål besvaret"
    assert facts["Evaluering"] == "1.6.2027"
    assert facts["Seneste beslutning"].endswith("…")  # a one-line preview, not the full text
    assert len(facts["Seneste beslutning"]) <= 2 * forum.CASE_PREVIEW_STEPS[0]


def test_case_card_shows_no_form_answers() -> None:
    """The channel card is compact: a header, the facts and the buttons, nothing else."""
    card = case_card(case_view(mtv_progress="31 af 31 spørgsmål besvaret"))
    kinds = [node.get("type") for node in card["body"]]
    assert kinds == ["TextBlock", "TextBlock", "FactSet", "ActionSet"]
    assert len(facts_of(card)) == 7


def test_case_card_escapes_user_text() -> None:
    card = case_card(case_view(title=MARKDOWN_TITLE, initiator="*Anna_*", organisation="[Kommune]",
                               coauthors=("_Bo_", "Eva*"), last_decision="Bevilget: *ja*",
                               plan=(("Ansvarlige for opfølgning", "__Ole__"),)))
    assert_valid(card)
    facts = dict(facts_of(card))
    assert facts["Opgave"] == ESCAPED_TITLE
    assert f"{NUMBER} · {ESCAPED_TITLE}" in shown_texts(card)
    for title in ("Opgave", "Initiativtager", "Medforfattere", "Seneste beslutning", "Ansvarlige for opfølgning"):
        assert unescaped_markdown(facts[title]) == [], title


def test_case_card_summary() -> None:
    assert case_card_summary(case_view()) == f"{NUMBER} · {TITLE} – Hos samarbejdsforum"
    orientation = case_card_summary(case_view(orientation=True, title=""))
    assert orientation == f"Til orientering: {NUMBER} – Hos samarbejdsforum"
    summary = case_card_summary(case_view(title=LONG_TITLE))
    assert "\n" not in summary and len(summary) < 120


# ---------------------------------------------------------------------------------------------- decision
OUTCOMES = (
    ("godkendt", "Godkendt"),
    ("lokal_afproevning", "Godkendt til lokal afprøvning"),
    ("videre_ssf", "Til afgørelse i Strategisk Sundhedsforum"),
    ("afvist", "Afvist"),
)
QUESTIONS = tuple((f"q{i}", f"{i}. Hvordan vurderer forummet konsekvenserne for {'borgerne' if i % 2 else 'kommunen'}?")
                  for i in range(1, 7))


def decision_view(**changes: Any) -> DecisionFormView:
    view = DecisionFormView(
        case_id=CASE_ID, forum_id=FORUM_ID, forum_name=FORUM_NAME, number=NUMBER, title=TITLE, revision=REVISION,
        outcomes=OUTCOMES, questions=QUESTIONS, reason_hint="Begrundelse skal udfyldes ved «Afvist».",
    )
    return replace(view, **changes)


def test_decision_form() -> None:
    card = decision_form_card(decision_view())
    assert_valid(card)
    assert_fits(card, "decision form (empty)")
    assert_actions(card)
    texts = shown_texts(card)
    assert texts[0] == f"Registrér beslutning – {FORUM_NAME}"
    assert f"Sag {NUMBER} · {TITLE}" in texts
    assert "Begrundelse skal udfyldes ved «Afvist»." in texts
    assert [e["id"] for e in inputs(card)] == [*[q for q, _ in QUESTIONS], "udfald", "begrundelse"]
    for (qid, label), element in zip(QUESTIONS, inputs(card), strict=False):
        assert element == {"type": "Input.Text", "id": qid, "label": label, "isMultiline": True, "maxLength": 2000}
    outcome = input_by_id(card, "udfald")
    assert outcome["type"] == "Input.ChoiceSet" and outcome["style"] == "expanded"
    assert outcome["choices"] == [{"title": label, "value": oid} for oid, label in OUTCOMES]
    assert "value" not in outcome
    reason = input_by_id(card, "begrundelse")
    assert reason["label"] == "Begrundelse" and reason["isMultiline"] is True
    decide = by_title(card, "Registrér beslutning")
    assert decide["verb"] == verbs.FORUM_DECIDE
    assert decide["data"] == {"case": CASE_ID, "forum": FORUM_ID, "rev": REVISION}
    assert decide["associatedInputs"] == "auto"
    back = by_title(card, "Tilbage")
    assert back["verb"] == verbs.FORUM_VIEW and back["data"] == {"case": CASE_ID, "forum": FORUM_ID}
    assert back["associatedInputs"] == "none"


def test_decision_form_without_questions_and_with_prefill_and_errors() -> None:
    errors = {"udfald": "Vælg en beslutning.", "begrundelse": "Skriv en begrundelse for afslaget.",
              "_": "Sagen er ændret, siden formularen blev åbnet."}
    card = decision_form_card(decision_view(questions=(), values={"udfald": "afvist", "begrundelse": "For *dyrt*"},
                                            errors=errors, max_length=1500))
    assert_valid(card)
    assert [e["id"] for e in inputs(card)] == ["udfald", "begrundelse"]
    assert input_by_id(card, "udfald")["value"] == "afvist"
    assert input_by_id(card, "begrundelse")["value"] == "For *dyrt*"  # inputs hold the text as typed
    assert input_by_id(card, "begrundelse")["maxLength"] == 1500
    red = [n["text"] for n in walk(card) if n.get("type") == "TextBlock" and n.get("color") == "Attention"]
    assert red == ["Beslutningen er ikke registreret: se de markerede felter nedenfor.",
                   "Sagen er ændret, siden formularen blev åbnet.", "Vælg en beslutning.",
                   "Skriv en begrundelse for afslaget."]


@pytest.mark.parametrize("fill", list(FILLS))
def test_decision_form_worst_case_fits(fill: str) -> None:
    """Six questions (long labels) and the reason at 2,000 characters, with errors on every input:
    the card cannot hold all seven texts, so the longest are left out (and say so) until it fits."""
    text = FILLS[fill]
    questions = tuple((qid, f"{label} {hard_text(500)}") for qid, label in QUESTIONS)
    values = {qid: text(2000) for qid, _ in questions} | {"begrundelse": text(2000), "udfald": "videre_ssf"}
    errors = {qid: f"Svaret på spørgsmål {qid[1:]} er for langt (højst 2000 tegn)." for qid, _ in questions}
    errors |= {"udfald": "Vælg en beslutning.", "begrundelse": "Skriv en begrundelse."}
    view = decision_view(title=LONG_TITLE, questions=questions, values=values, errors=errors)
    card = decision_form_card(view)
    assert_valid(card)
    assert_fits(card, f"decision form (worst case, {fill})")
    assert_actions(card)
    omitted = decision_form_omitted(view)
    assert omitted and "udfald" not in omitted
    for element in inputs(card):
        if element["id"] in omitted:
            assert "value" not in element
        else:
            assert element["value"] == values[element["id"]]  # never cut
    texts = shown_texts(card)
    assert texts.count(forum.TOO_LONG_TO_SHOW) == len(omitted)
    assert all(message in texts for message in errors.values())
    assert by_title(card, "Registrér beslutning")["data"]["rev"] == REVISION


def test_decision_form_keeps_every_value_when_they_fit() -> None:
    values = {qid: hard_text(400) for qid, _ in QUESTIONS} | {"begrundelse": hard_text(2000), "udfald": "godkendt"}
    view = decision_view(title=LONG_TITLE, values=values)
    card = decision_form_card(view)
    assert_fits(card, "decision form (6 × 400 + 2000)")
    assert decision_form_omitted(view) == frozenset()
    assert {e["id"]: e["value"] for e in inputs(card)} == values


# ---------------------------------------------------------------------------------------------- plan
PEOPLE = (("aad-1", "Anna Berg"), ("aad-2", "Bo Ø"), ("aad-3", "Carl Å"))


def plan_view(**changes: Any) -> PlanFormView:
    view = PlanFormView(case_id=CASE_ID, forum_id=FORUM_ID, forum_name=FORUM_NAME, number=NUMBER, title=TITLE,
                        revision=REVISION, people=PEOPLE, selected=("aad-1", "aad-3"), evaluation_date="2027-06-01",
                        note="Opfølgning på næste møde.", errors={}, pilot=False)
    return replace(view, **changes)


PLAN_CARDS: dict[str, Callable[[], Json]] = {
    "plan": lambda: plan_form_card(plan_view()),
    "plan-empty": lambda: plan_form_card(plan_view(people=(), selected=(), evaluation_date="", note="")),
    "pilot": lambda: plan_form_card(plan_view(pilot=True)),
    **{f"worst-{name}": (lambda fill=fill: plan_form_card(plan_view(
        title=LONG_TITLE,
        people=tuple((f"{i:08d}-0000-0000-0000-{i:012d}", fill(64)) for i in range(25)),
        selected=tuple(f"{i:08d}-0000-0000-0000-{i:012d}" for i in range(25)),
        note=fill(2000),
        errors={"ansvarlige": "Vælg mindst én ansvarlig.", "evalueringsdato": "Datoen skal ligge efter i dag.",
                "note": "Skriv højst 2000 tegn.", "x": "Sagen er ændret."},
    ))) for name, fill in FILLS.items()},
}


@pytest.mark.parametrize("name", list(PLAN_CARDS))
def test_plan_form_is_valid_and_fits(name: str) -> None:
    card = PLAN_CARDS[name]()
    stripped, removed = without_people_picker(card)
    # Teams' people picker is not in the 1.5 schema: validate without it, and check its exact shape.
    assert removed == [{"type": "Data.Query", "dataset": "graph.microsoft.com/users"}]
    assert_valid(stripped)
    assert_fits(card, f"plan form {name}")
    assert_actions(card)


def test_plan_form() -> None:
    card = plan_form_card(plan_view())
    texts = shown_texts(card)
    assert texts[0] == "Planlægning og opfølgning"
    assert [e["id"] for e in inputs(card)] == ["ansvarlige", "evalueringsdato", "note"]
    people = input_by_id(card, "ansvarlige")
    assert people["type"] == "Input.ChoiceSet" and people["isMultiSelect"] is True
    assert people["choices"] == [{"title": name, "value": uid} for uid, name in PEOPLE]
    assert people["choices.data"] == {"type": "Data.Query", "dataset": "graph.microsoft.com/users"}
    assert people["value"] == "aad-1,aad-3"
    date = input_by_id(card, "evalueringsdato")
    assert date["type"] == "Input.Date" and date["value"] == "2027-06-01"
    note = input_by_id(card, "note")
    assert note["label"] == "Aftaler om opfølgning" and note["isMultiline"] is True
    assert note["value"] == "Opfølgning på næste møde."
    save = by_title(card, "Gem plan")
    assert save["verb"] == verbs.FORUM_PLAN and save["associatedInputs"] == "auto"
    assert save["data"] == {"case": CASE_ID, "forum": FORUM_ID, "rev": REVISION}
    assert by_title(card, "Tilbage")["verb"] == verbs.FORUM_VIEW

    pilot = plan_form_card(plan_view(pilot=True))
    assert shown_texts(pilot)[0] == "Lokal afprøvning – plan"
    empty = plan_form_card(plan_view(selected=(), evaluation_date="", note=""))
    assert all("value" not in e for e in inputs(empty))


# ---------------------------------------------------------------------------------------------- evaluation
def evaluation_view(**changes: Any) -> EvaluationFormView:
    view = EvaluationFormView(case_id=CASE_ID, forum_id=FORUM_ID, forum_name=FORUM_NAME, number=NUMBER,
                              title=TITLE, revision=REVISION, pilot=False, value="", errors={})
    return replace(view, **changes)


@pytest.mark.parametrize("pilot", [False, True])
def test_evaluation_form(pilot: bool) -> None:
    card = evaluation_form_card(evaluation_view(pilot=pilot))
    assert_valid(card)
    assert_fits(card, f"evaluation form (pilot={pilot})")
    assert_actions(card)
    [element] = inputs(card)
    assert element["id"] == "evaluering" and element["isMultiline"] is True and "value" not in element
    texts = shown_texts(card)
    if pilot:
        assert element["label"] == "Resultat af den lokale afprøvning"
        assert "Når resultatet registreres, sendes sagen tilbage til Porteføljestyregruppen." in texts
    else:
        assert element["label"] == "Evaluering af opgaveflytningen"
        assert "Når evalueringen registreres, afsluttes sagen." in texts
    act = by_title(card, "Registrér evaluering")
    assert act["verb"] == verbs.FORUM_EVALUATE and act["associatedInputs"] == "auto"
    assert act["data"] == {"case": CASE_ID, "forum": FORUM_ID, "rev": REVISION}
    assert by_title(card, "Tilbage")["verb"] == verbs.FORUM_VIEW


@pytest.mark.parametrize("fill", list(FILLS))
def test_evaluation_form_worst_case(fill: str) -> None:
    value = FILLS[fill](2000)
    card = evaluation_form_card(evaluation_view(title=LONG_TITLE, value=value,
                                                errors={"evaluering": "Skriv højst 2000 tegn."}))
    assert_valid(card)
    assert_fits(card, f"evaluation form (worst case, {fill})")
    assert input_by_id(card, "evaluering")["value"] == value
    assert "Skriv højst 2000 tegn." in shown_texts(card)


# ---------------------------------------------------------------------------------------------- answers
FORM_SECTIONS = [("Screening", ["Overvejelser"]), ("Dialoggrundlag", ["Stamdata", "Opgaven", "Konsekvenser"]),
                 ("Valg af forum", [""]), ("Mini-MTV", ["Indledning", "Patienten", "Organisation", "Økonomi"])]


def answer_entries(fill: Callable[[int], str], *, per_section: int = 6, label_length: int = 600) -> list[AnswerEntry]:
    entries = []
    for form_title, sections in FORM_SECTIONS:
        for section in sections:
            for i in range(per_section):
                label = f"{i + 1}. Spørgsmål om {section or form_title}: " + hard_text(label_length)
                answer = "" if i == per_section - 1 else fill(2000 - i)
                entries.append(AnswerEntry(form_title, section, label, answer))
    return entries


def answers_cards(entries: Sequence[AnswerEntry], title: str = LONG_TITLE) -> list[Json]:
    parts = answer_parts(entries)
    return [answers_card(CASE_ID, FORUM_ID, NUMBER, title, parts, i) for i in range(len(parts))]


@pytest.mark.parametrize("fill", list(FILLS))
def test_answers_lose_nothing_and_every_part_fits(fill: str) -> None:
    entries = answer_entries(FILLS[fill])
    parts = answer_parts(entries)
    assert [entry for part in parts for entry in part] == entries
    assert all(parts)
    cards = answers_cards(entries, title="\\" * 200)
    largest = 0
    for index, (part, card) in enumerate(zip(parts, cards, strict=True)):
        assert_valid(card)
        largest = max(largest, assert_fits(card, f"answers {fill} part {index + 1}/{len(parts)}"))
        assert_actions(card)
        texts = shown_texts(card)
        for entry in part:
            assert no_block_markdown(entry.label) in texts
            if entry.answer:
                assert no_block_markdown(md_escape(entry.answer)) in texts  # in full, never cut
        assert texts.count("Ikke besvaret") == sum(not entry.answer for entry in part)
    print(f"answers {fill}: {len(entries)} entries in {len(parts)} parts, largest {largest} bytes")
    assert len(parts) > 1


def test_answers_headings_and_navigation() -> None:
    entries = answer_entries(hard_text)
    parts = answer_parts(entries)
    count = len(parts)
    assert count >= 3
    cards = answers_cards(entries, title=TITLE)
    for index, card in enumerate(cards):
        texts = shown_texts(card)
        assert texts[0] == f"Alle svar – {NUMBER}"
        assert texts[1] == f"{TITLE} · Del {index + 1} af {count}"
        first = parts[index][0]
        # Each part starts with its form (and section) heading, «(fortsat)» when the form goes on.
        continued = index > 0 and parts[index - 1][-1].form_title == first.form_title
        assert texts[2] == first.form_title + (" (fortsat)" if continued else "")
        if first.section:
            assert texts[3] == first.section
        titles = [a["title"] for a in executes(card)]
        expected = (["Forrige"] if index > 0 else []) + (["Næste"] if index < count - 1 else [])
        assert titles == [*expected, "Tilbage til sagen"]
        for act in executes(card):
            if act["title"] == "Tilbage til sagen":
                assert act["verb"] == verbs.FORUM_VIEW and act["data"] == {"case": CASE_ID, "forum": FORUM_ID}
            else:
                step = -1 if act["title"] == "Forrige" else 1
                assert act["verb"] == verbs.FORUM_ANSWERS
                assert act["data"] == {"case": CASE_ID, "forum": FORUM_ID, "part": index + step}
    # Every form heading appears (once, or continued); sections in order.
    all_texts = [t for card in cards for t in shown_texts(card)]
    for form_title, _ in FORM_SECTIONS:
        assert all_texts.count(form_title) == 1
    # Out-of-range part indexes are clamped.
    assert answers_card(CASE_ID, FORUM_ID, NUMBER, TITLE, parts, 99) == cards[-1]
    assert answers_card(CASE_ID, FORUM_ID, NUMBER, TITLE, parts, -3) == cards[0]


def test_answers_single_part_and_empty() -> None:
    entries = [AnswerEntry("Screening", "Overvejelser", "1. Ændres opgaven?", "Ja"),
               AnswerEntry("Screening", "Overvejelser", "2. Flyttes den?", "")]
    parts = answer_parts(entries)
    assert parts == [entries]
    card = answers_card(CASE_ID, FORUM_ID, NUMBER, MARKDOWN_TITLE, parts, 0)
    assert_valid(card)
    texts = shown_texts(card)
    assert texts[:3] == [f"Alle svar – {NUMBER}", ESCAPED_TITLE, "Screening"]
    assert "Ja" in texts and "Ikke besvaret" in texts
    assert [a["title"] for a in executes(card)] == ["Tilbage til sagen"]

    assert answer_parts([]) == []
    empty = answers_card(CASE_ID, FORUM_ID, NUMBER, "", [], 3)
    assert_valid(empty)
    assert "Der er ingen svar på sagen endnu." in shown_texts(empty)
    assert [a["title"] for a in executes(empty)] == ["Tilbage til sagen"]


def test_answer_parts_are_greedy_with_a_small_budget() -> None:
    entries = [AnswerEntry("Dialoggrundlag", "Opgaven", f"Spørgsmål {i}", hard_text(500)) for i in range(30)]
    budget = 8000
    parts = answer_parts(entries, budget=budget)
    assert [e for part in parts for e in part] == entries
    for index in range(len(parts)):
        card = answers_card(CASE_ID, FORUM_ID, NUMBER, TITLE, parts, index)
        assert size_utf16(card) < budget
    assert len(parts) <= len(entries) // 2  # several entries per part, not one each


def test_answer_parts_gives_an_oversize_entry_a_part_of_its_own() -> None:
    huge = AnswerEntry("Mini-MTV", "", "Spørgsmål", '"' * 20_000)
    small = AnswerEntry("Mini-MTV", "", "Kort", "ja")
    assert answer_parts([small, huge, small]) == [[small], [huge], [small]]


# ---------------------------------------------------------------------------------------------- history
def history_entries(count: int, fill: Callable[[int], str] = hard_text) -> list[HistoryEntry]:
    start = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    return [HistoryEntry(start + timedelta(hours=i), f"Person {i} {fill(100)}", f"Hændelse {i}: {fill(2000)}")
            for i in range(count)]


@pytest.mark.parametrize("fill", list(FILLS))
def test_history_200_long_entries_every_part_fits(fill: str) -> None:
    entries = history_entries(200, FILLS[fill])
    count = 14  # 200 / 15
    seen: list[str] = []
    for index in range(count):
        card = history_card(CASE_ID, FORUM_ID, NUMBER, LONG_TITLE, entries, index)
        assert_valid(card)
        assert_fits(card, f"history {fill} part {index + 1}/{count}")
        assert_actions(card)
        texts = shown_texts(card)
        assert texts[1] == f"Sag {NUMBER} · {LONG_TITLE} · Del {index + 1} af {count}"
        lines = [t for t in texts if " kl. " in t]
        assert len(lines) == (15 if index < count - 1 else 200 - 15 * 13)
        seen += lines
        assert "200 hændelser i alt, nyeste først." in texts
    # Newest first, every entry once.
    numbers = [int(line.split("Hændelse ", 1)[1].split(":", 1)[0]) for line in seen]
    assert numbers == list(range(199, -1, -1))


def test_history_line_format_order_and_navigation() -> None:
    entries = [HistoryEntry(NOW, "Anna Berg", "Indsendt til Samarbejdsforum ved Aalborg Universitetshospital"),
               HistoryEntry(NOW - timedelta(days=1), "*Bo_*", "Oprettet"),
               HistoryEntry(NOW + timedelta(minutes=1), "Carl", "Beslutning: " + hard_text(1000))]
    card = history_card(CASE_ID, FORUM_ID, NUMBER, TITLE, entries, 0)
    assert_valid(card)
    texts = shown_texts(card)
    assert texts[:2] == ["Historik", f"Sag {NUMBER} · {TITLE}"]
    lines = texts[2:]
    assert lines[1] == "12.3.2026 kl. 14:05 · Anna Berg: Indsendt til Samarbejdsforum ved Aalborg Universitetshospital"
    assert lines[0].startswith("12.3.2026 kl. 14:06 · Carl: Beslutning: ") and lines[0].endswith("…")
    assert lines[2] == r"11.3.2026 kl. 14:05 · \*Bo\_\*: Oprettet"
    assert [a["title"] for a in executes(card)] == ["Tilbage til sagen"]

    many = history_entries(40)
    first = history_card(CASE_ID, FORUM_ID, NUMBER, TITLE, many, 0)
    middle = history_card(CASE_ID, FORUM_ID, NUMBER, TITLE, many, 1)
    last = history_card(CASE_ID, FORUM_ID, NUMBER, TITLE, many, 2)
    assert [a["title"] for a in executes(first)] == ["Næste", "Tilbage til sagen"]
    assert [a["title"] for a in executes(middle)] == ["Forrige", "Næste", "Tilbage til sagen"]
    assert [a["title"] for a in executes(last)] == ["Forrige", "Tilbage til sagen"]
    assert by_title(middle, "Forrige")["data"] == {"case": CASE_ID, "forum": FORUM_ID, "part": 0}
    assert by_title(middle, "Næste")["data"] == {"case": CASE_ID, "forum": FORUM_ID, "part": 2}
    assert all(a["verb"] == verbs.FORUM_HISTORY for a in executes(middle) if a["title"] != "Tilbage til sagen")
    assert history_card(CASE_ID, FORUM_ID, NUMBER, TITLE, many, 7) == last
    assert history_card(CASE_ID, FORUM_ID, NUMBER, TITLE, many, -1) == first
    single = history_card(CASE_ID, FORUM_ID, NUMBER, TITLE, many, 0, per_part=40)
    assert shown_texts(single)[1] == f"Sag {NUMBER} · {TITLE}"  # one part: no «Del 1 af 1»

    empty = history_card(CASE_ID, FORUM_ID, NUMBER, "", [], 0)
    assert_valid(empty)
    assert "Der er ingen hændelser på sagen endnu." in shown_texts(empty)


# ---------------------------------------------------------------------------------------------- status
def test_status_message() -> None:
    message = status_message(["**OF-2026-0007** er registreret.", f"Af {md_escape('*Anna_*')}."])
    assert message == {"type": "message", "textFormat": "markdown",
                       "text": "**OF-2026-0007** er registreret.\n\nAf \\*Anna\\_\\*."}
