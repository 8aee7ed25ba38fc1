"""The channel set-up card and the co-authors card: schema 1.5 (with Teams' people picker), the size
budget, the action contract (ids round-trip in action data or in inputs), escaping.

Worst case: 8 forums bound to one channel, 20 people with long names in every secretariat, a
100-person roster, admins with long names, notices and confirmations. Run with ``-s`` to see sizes.
"""

from __future__ import annotations

import copy
import dataclasses
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from adaptive_cards import verbs
from adaptive_cards.common import CARD_BUDGET_BYTES, Json, md_escape, size_utf16
from adaptive_cards.setup import (
    ADMINS_INPUT,
    BIND_INPUT,
    COAUTHORS_INPUT,
    FOCUS_INPUT,
    PEOPLE_QUERY,
    REMOVE_ADMINS_INPUT,
    REMOVE_COAUTHORS_INPUT,
    BoundForum,
    CoauthorView,
    ForumChoice,
    Person,
    SetupView,
    coauthors_card,
    member_input_id,
    remove_input_id,
    setup_card,
)
from tests.support.card_schema import card_errors

CHANNEL = "19:4a95f7d8db4c4e7fae857bcebe0623e6@thread.tacv2"
ELSEWHERE = "Sundhedssamarbejde › Fora"
LONG_NAME = "Anne-Mette Skovgaard Østergaard-Christensen"
LONG_FORUM = "Samarbejdsforum ved Regionshospital Nordjylland, Hjørring og Frederikshavn"
MARKDOWN_NAME = "Jens *Peter* [Hansen](http://x)_"


def uid(key: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"person/{key}"))


def person(key: str, name: str | None = None) -> Person:
    return Person(uid(key), f"{LONG_NAME} {key}" if name is None else name)


# ---------------------------------------------------------------------------------------------- card walking
def walk(node: Any, *, into_show_cards: bool = True) -> Iterator[Json]:
    """Every dict in the card (elements, actions, fallbacks), optionally not entering ShowCard cards."""
    if isinstance(node, list):
        for item in node:
            yield from walk(item, into_show_cards=into_show_cards)
    elif isinstance(node, dict):
        yield node
        for key, value in node.items():
            if key == "card" and node.get("type") == "Action.ShowCard" and not into_show_cards:
                continue
            if key == "fallback":
                continue
            yield from walk(value, into_show_cards=into_show_cards)


def executes(card: Json, **kwargs: Any) -> list[Json]:
    return [node for node in walk(card, **kwargs) if node.get("type") == "Action.Execute"]


def by_verb(card: Json, verb: str) -> list[Json]:
    return [a for a in executes(card) if a["verb"] == verb]


def inputs(card: Json, **kwargs: Any) -> dict[str, Json]:
    found = [node for node in walk(card, **kwargs) if str(node.get("type", "")).startswith("Input.")]
    ids = [node["id"] for node in found]
    assert len(ids) == len(set(ids)), f"duplicate input ids: {ids}"
    return {node["id"]: node for node in found}


def texts(card: Json) -> str:
    return "\n".join(node["text"] for node in walk(card) if node.get("type") == "TextBlock")


def show_cards(card: Json) -> list[Json]:
    return [node for node in walk(card) if node.get("type") == "Action.ShowCard"]


def assert_good(card: Json, name: str) -> int:
    assert card_errors(card) == [], name
    size = size_utf16(card)
    print(f"{name}: {size} bytes UTF-16 = {size / CARD_BUDGET_BYTES:.1%} of the budget")
    assert size < CARD_BUDGET_BYTES, f"{name}: {size} bytes"
    assert_no_input_overrides_data(card)
    for act in executes(card):
        fallback = act["fallback"]
        assert fallback["type"] == "Action.Submit"
        assert fallback["data"] == {**act["data"], "verb": act["verb"]}
        assert fallback["associatedInputs"] == act["associatedInputs"]
    return size


def assert_no_input_overrides_data(card: Json) -> None:
    """An action that sends inputs ("auto": those of its card and of the cards around it) gets its data
    keys overwritten by set inputs of the same id, so no such input may share a data key."""
    main = set(inputs(card, into_show_cards=False))
    for act in executes(card, into_show_cards=False):
        if act["associatedInputs"] == "auto":
            assert not main & set(act["data"]), (act["title"], main & set(act["data"]))
    for show in show_cards(card):
        sent = main | set(inputs(show["card"]))
        for act in executes(show["card"]):
            if act["associatedInputs"] == "auto":
                assert not sent & set(act["data"]), (act["title"], sent & set(act["data"]))


def is_people_picker(element: Json) -> bool:
    return (
        element["type"] == "Input.ChoiceSet"
        and element.get("isMultiSelect") is True
        and element.get("choices.data") == PEOPLE_QUERY
    )


# ---------------------------------------------------------------------------------------------- views
def forum_choices(count: int, *, name: str = LONG_FORUM, here: int = 0) -> tuple[ForumChoice, ...]:
    """``count`` forums; the first ``here`` are bound to this channel, every other one elsewhere."""
    return tuple(
        ForumChoice(
            f"forum_{i}",
            f"{name} {i}",
            None if i >= here and i % 2 else ELSEWHERE,
            i < here,
        )
        for i in range(count)
    )


def typical_view(**changes: Any) -> SetupView:
    forums = (
        ForumChoice("aalborg", "Samarbejdsforum ved Aalborg Universitetshospital", "Fora – Aalborg", True),
        ForumChoice("nord", "Samarbejdsforum ved Regionshospital Nordjylland", "Fora – Nord", False),
        ForumChoice("psykiatri", "Samarbejdsforum ved Psykiatrien", None, False),
        ForumChoice("psg", "Porteføljestyregruppen", None, True),
        ForumChoice("ssf", "Strategisk Sundhedsforum", None, False),
    )
    bound = (
        BoundForum("aalborg", forums[0].name, (person("a1", "Birgitte Holm"), person("a2", MARKDOWN_NAME),
                                                person("a3", ""))),
        BoundForum("psg", forums[3].name, ()),
    )
    roster = tuple(person(f"r{i}", f"Teammedlem {i}") for i in range(8)) + (bound[0].secretariat[0],)
    admins = ((person("env", "Lars Admin"), False), (person("added", "Mette Admin"), True))
    view = SetupView(
        channel_id=CHANNEL,
        channel_name="Fora *Nord*",
        team_name="Sundhedssamarbejde [Nordjylland]",
        forums=forums,
        bound=bound,
        roster=roster,
        admins=admins,
        waiting={"psykiatri": 3, "nord": 1},
    )
    return dataclasses.replace(view, **changes)


def worst_view(**changes: Any) -> SetupView:
    forums = forum_choices(10, here=8)
    bound = tuple(
        BoundForum(f.forum_id, f.name, tuple(person(f"{f.forum_id}/{j}") for j in range(20))) for f in forums[:8]
    )
    view = SetupView(
        channel_id=CHANNEL,
        channel_name="Tværsektorielle samarbejdsfora – Region Nordjylland og kommunerne",
        team_name="Sundhedssamarbejdet i Nordjylland – fælles team for region, kommuner og almen praksis",
        forums=forums,
        bound=bound,
        roster=tuple(person(f"roster/{i}") for i in range(100)),
        admins=tuple((person(f"admin/{i}"), i >= 3) for i in range(8)),
        waiting={"forum_8": 12, "forum_9": 1},
        notices=("Forummet kunne ikke knyttes: kanalen er slettet eller arkiveret i Teams. Prøv en anden kanal.",),
        info=(f"{LONG_NAME} er føjet til sekretariatet for {LONG_FORUM} 3.",),
    )
    return dataclasses.replace(view, **changes)


def member_ids_in_card(card: Json, forum: BoundForum) -> set[str]:
    """The secretariat's user ids as the card lets them be removed: «Fjern» data or checklist values."""
    removes = [a for a in by_verb(card, verbs.SETUP_MEMBER_REMOVE) if a["data"]["forum"] == forum.forum_id]
    per_person = {a["data"]["user"] for a in removes if "user" in a["data"]}
    checklist = inputs(card).get(remove_input_id(forum.forum_id))
    if checklist is None:
        return per_person
    assert not per_person
    assert [a["data"] for a in removes] == [{"channel": CHANNEL, "forum": forum.forum_id}]
    assert removes[0]["associatedInputs"] == "auto"
    assert checklist["isMultiSelect"] is True and "choices.data" not in checklist
    return {choice["value"] for choice in checklist["choices"]}


def expanded_forums(card: Json) -> list[str]:
    return [a["data"]["forum"] for a in by_verb(card, verbs.SETUP_MEMBER_ADD)]


def assert_collapsed(card: Json, view: SetupView, shown: list[str]) -> None:
    """The forums not shown in full are one line each (or, lean, a line in the dropdown) and can be
    opened with «Vis og ret»."""
    collapsed = [f for f in view.bound if f.forum_id not in shown]
    assert collapsed
    assert "Der er ikke plads til at vise alle fora fuldt ud" in texts(card)
    choices = inputs(card)[FOCUS_INPUT]["choices"]
    assert [c["value"] for c in choices] == [f.forum_id for f in collapsed]
    for forum, choice in zip(collapsed, choices, strict=True):
        count = f"{len(forum.secretariat)} i sekretariatet"
        assert f"**{md_escape(forum.name)}** · {count}" in texts(card) or choice["title"] == f"{forum.name} · {count}"
    [show] = by_verb(card, verbs.SETUP_SHOW)
    assert show["data"] == {"channel": CHANNEL} and show["associatedInputs"] == "auto"


# ---------------------------------------------------------------------------------------------- A. people picker
def _picker_card(**picker_changes: Any) -> Json:
    picker: Json = {
        "type": "Input.ChoiceSet",
        "id": "personer",
        "isMultiSelect": True,
        "choices": [],
        "choices.data": {"type": "Data.Query", "dataset": "graph.microsoft.com/users"},
    }
    picker.update(picker_changes)
    return {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.5",
        "body": [{"type": "Container", "items": [picker]}],
    }


@pytest.mark.parametrize("dataset", ["graph.microsoft.com/users", "graph.microsoft.com/users?scope=currentContext"])
def test_people_picker_extension_is_accepted(dataset: str) -> None:
    card = _picker_card(**{"choices.data": {"type": "Data.Query", "dataset": dataset}})
    before = copy.deepcopy(card)
    assert card_errors(card) == []
    assert card == before  # validated on a copy
    assert card_errors(_picker_card(choices=[{"title": "Anna", "value": uid("anna")}])) == []


@pytest.mark.parametrize(
    "query",
    [
        {"type": "Data.Query", "dataset": "graph.microsoft.com/groups"},
        {"type": "Data.Other", "dataset": "graph.microsoft.com/users"},
        {"type": "Data.Query"},
        {"type": "Data.Query", "dataset": "graph.microsoft.com/users", "count": 5},
        "graph.microsoft.com/users",
        None,
    ],
)
def test_people_picker_extension_other_shapes_are_rejected(query: Any) -> None:
    errors = card_errors(_picker_card(**{"choices.data": query}))
    assert len(errors) == 1, errors
    assert errors[0].startswith("$.body[0].items[0].choices.data: unsupported Teams people picker")


def test_people_picker_extension_only_on_choice_sets_and_the_rest_is_still_checked() -> None:
    text_input = {"type": "Input.Text", "id": "x", "choices.data": dict(PEOPLE_QUERY)}
    card = _picker_card(isMultiSelect="ja")
    card["body"].append(text_input)
    errors = card_errors(card)
    assert any(e.startswith("$.body[0].items[0].isMultiSelect") for e in errors), errors
    assert any(e.startswith("$.body[1]") and "choices.data" in e for e in errors), errors


# ---------------------------------------------------------------------------------------------- B. set-up card
def test_setup_card_typical() -> None:
    view = typical_view()
    card = setup_card(view)
    assert_good(card, "set-up card, typical")
    assert {a["verb"] for a in executes(card)} <= verbs.SETUP
    text = texts(card)
    assert "Opsætning af kanalen «Fora \\*Nord\\*»" in text
    assert "Team: Sundhedssamarbejde \\[Nordjylland\\]" in text
    assert "kun forummets sekretariat kan registrere beslutninger" in text
    assert "Intet går tabt" not in text  # the roster fits

    # Both bound forums in full, each with its people picker (static roster minus members) and buttons.
    assert expanded_forums(card) == ["aalborg", "psg"]
    found = inputs(card)
    aalborg = view.bound[0]
    for forum in view.bound:
        picker = found[member_input_id(forum.forum_id)]
        assert is_people_picker(picker)
        present = {p.user_id for p in forum.secretariat}
        assert [c["value"] for c in picker["choices"]] == [p.user_id for p in view.roster if p.user_id not in present]
        [add] = [a for a in by_verb(card, verbs.SETUP_MEMBER_ADD) if a["data"]["forum"] == forum.forum_id]
        assert add["data"] == {"channel": CHANNEL, "forum": forum.forum_id}
        assert add["associatedInputs"] == "auto" and add["title"] == "Tilføj til sekretariatet"
        [unbind] = [a for a in by_verb(card, verbs.SETUP_UNBIND) if a["data"]["forum"] == forum.forum_id]
        assert unbind["data"] == {"channel": CHANNEL, "forum": forum.forum_id}
        assert unbind["associatedInputs"] == "none" and unbind["title"] == "Ja, fjern forummet"
        # ... behind a confirmation: the button on the card only opens it
        [confirm] = [s for s in show_cards(card) if forum.name in str(s["card"]) and unbind in walk(s["card"])]
        assert confirm["title"] == "Fjern forummet fra kanalen …"

    # One «Fjern» per secretariat member; names escaped, a nameless person shown by id.
    removes = by_verb(card, verbs.SETUP_MEMBER_REMOVE)
    assert [a["data"] for a in removes] == [
        {"channel": CHANNEL, "forum": "aalborg", "user": p.user_id} for p in aalborg.secretariat
    ]
    assert all(a["title"] == "Fjern" and a["associatedInputs"] == "none" for a in removes)
    assert md_escape(MARKDOWN_NAME) in text and uid("a3") in text
    assert "Ingen i sekretariatet endnu" in text  # psg

    # Binding: a dropdown whose id is no action's data key (a set input overrides a data key of its name).
    assert all(not inputs(show["card"]) for show in show_cards(card)), "no inputs hidden in a ShowCard"
    assert BIND_INPUT == "knyt_forum"
    bind_input = inputs(card)[BIND_INPUT]
    assert bind_input["style"] == "compact" and "isMultiSelect" not in bind_input
    assert [(c["value"], c["title"]) for c in bind_input["choices"]] == [
        ("nord", "Samarbejdsforum ved Regionshospital Nordjylland (nu i Fora – Nord – flyttes hertil) (1 sag venter)"),
        ("psykiatri", "Samarbejdsforum ved Psykiatrien (3 sager venter)"),
        ("ssf", "Strategisk Sundhedsforum"),
    ]
    [bind] = by_verb(card, verbs.SETUP_BIND)
    assert bind["data"] == {"channel": CHANNEL} and bind["associatedInputs"] == "auto"
    assert bind["title"] == "Knyt til kanalen"

    # Admins: only the added one can be removed; people picker "admins" with the roster.
    [admin_remove] = by_verb(card, verbs.SETUP_ADMIN_REMOVE)
    assert admin_remove["data"] == {"channel": CHANNEL, "user": uid("added")}
    assert "Lars Admin · fra konfigurationen" in text
    assert is_people_picker(found[ADMINS_INPUT])
    assert [c["value"] for c in found[ADMINS_INPUT]["choices"]] == [p.user_id for p in view.roster]
    [admin_add] = by_verb(card, verbs.SETUP_ADMIN_ADD)
    assert admin_add["data"] == {"channel": CHANNEL} and admin_add["associatedInputs"] == "auto"
    assert admin_add["title"] == "Tilføj administrator"


def test_setup_card_channel_without_forums() -> None:
    view = typical_view(bound=(), forums=forum_choices(3), notices=("Du er ikke administrator.",),
                        info=("Kanalen er knyttet til …",))
    card = setup_card(view)
    assert_good(card, "set-up card, nothing bound")
    assert "Ingen fora er knyttet til kanalen endnu." in texts(card)
    assert not show_cards(card)  # no forum buttons, so the dropdown can sit in the card itself
    assert [c["value"] for c in inputs(card)[BIND_INPUT]["choices"]] == ["forum_0", "forum_1", "forum_2"]
    assert not by_verb(card, verbs.SETUP_MEMBER_ADD)
    notices = [n for n in card["body"] if n["type"] == "Container"][:2]
    assert [n["style"] for n in notices] == ["attention", "emphasis"]
    assert notices[0]["items"][0]["color"] == "Attention" and "color" not in notices[1]["items"][0]


def test_setup_card_nothing_left_to_bind() -> None:
    forums = forum_choices(2, here=2)
    bound = tuple(BoundForum(f.forum_id, f.name, ()) for f in forums)
    card = setup_card(typical_view(forums=forums, bound=bound))
    assert_good(card, "set-up card, every forum bound here")
    assert "Alle fora er knyttet til kanalen." in texts(card)
    assert BIND_INPUT not in inputs(card) and not by_verb(card, verbs.SETUP_BIND)
    assert "Der er ingen fora i konfigurationen." in texts(setup_card(typical_view(forums=(), bound=())))


def test_setup_card_drops_the_roster_first() -> None:
    """A large roster does not fit in every picker: the pickers keep searching, nothing else changes."""
    view = typical_view(roster=tuple(person(f"roster/{i}") for i in range(100)))
    card = setup_card(view)
    assert_good(card, "set-up card, 100-person roster")
    assert "Intet går tabt" in texts(card)
    pickers = [e for e in inputs(card).values() if "choices.data" in e]
    assert len(pickers) == 3 and all(is_people_picker(p) and p["choices"] == [] for p in pickers)
    assert len(by_verb(card, verbs.SETUP_MEMBER_REMOVE)) == 3  # still one «Fjern» per person
    assert expanded_forums(card) == ["aalborg", "psg"]


@pytest.mark.parametrize("focus", [None, "forum_5", "forum_7", "unknown"])
def test_setup_card_worst_case_fits(focus: str | None) -> None:
    view = worst_view(focus=focus)
    card = setup_card(view)
    assert_good(card, f"set-up card, 8 forums x 20 people, 100-person roster, focus {focus}")
    text = texts(card)
    assert "Intet går tabt" in text

    # The focused forum (else the first) is shown in full, with a removal checklist of all 20 people.
    shown = expanded_forums(card)
    assert shown and shown[0] == (focus if focus in {f.forum_id for f in view.bound} else "forum_0")
    for forum in view.bound:
        if forum.forum_id in shown:
            assert member_ids_in_card(card, forum) == {p.user_id for p in forum.secretariat}
            assert is_people_picker(inputs(card)[member_input_id(forum.forum_id)])
    assert_collapsed(card, view, shown)

    # Binding the two other forums, the admins (removable ones as a checklist).
    assert [c["value"] for c in inputs(card)[BIND_INPUT]["choices"]] == ["forum_8", "forum_9"]
    admins_checklist = inputs(card)[REMOVE_ADMINS_INPUT]
    assert [c["value"] for c in admins_checklist["choices"]] == [uid(f"admin/{i}") for i in range(3, 8)]
    [admin_remove] = by_verb(card, verbs.SETUP_ADMIN_REMOVE)
    assert admin_remove["data"] == {"channel": CHANNEL} and admin_remove["associatedInputs"] == "auto"
    for i in range(3):
        assert f"{LONG_NAME} admin/{i} · fra konfigurationen" in text
    assert is_people_picker(inputs(card)[ADMINS_INPUT])


def test_setup_card_worst_case_with_long_messages_keeps_the_focused_forum() -> None:
    """Long notices leave less room: the collapsed forums move into their dropdown (lean) so that the
    focused forum is still shown in full."""
    line = "Forummet kunne ikke knyttes, fordi kanalen er slettet eller arkiveret i Teams. " * 4
    view = worst_view(focus="forum_3", notices=(line, line), info=(line,))
    card = setup_card(view)
    assert_good(card, "set-up card, worst case with long notices")
    assert expanded_forums(card) == ["forum_3"]
    assert "forum_3" not in {c["value"] for c in inputs(card)[FOCUS_INPUT]["choices"]}
    assert "· 20 i sekretariatet" not in texts(card)  # lean: counts in the dropdown
    assert_collapsed(card, view, ["forum_3"])
    assert f"Fra konfigurationen: {LONG_NAME} admin/0, {LONG_NAME} admin/1" in texts(card)


def test_setup_card_worst_case_without_roster_and_secretariats_of_five() -> None:
    """Smaller secretariats: per-person «Fjern» buttons as long as they fit, then checklists."""
    view = worst_view(bound=tuple(BoundForum(f.forum_id, f.name, f.secretariat[:5]) for f in worst_view().bound),
                      roster=())
    card = setup_card(view)
    assert_good(card, "set-up card, 8 forums x 5 people")
    assert "Intet går tabt" not in texts(card)
    for forum in view.bound:
        if forum.forum_id in expanded_forums(card):
            assert member_ids_in_card(card, forum) == {p.user_id for p in forum.secretariat}


def test_setup_card_every_layout_is_valid() -> None:
    """Whatever the budget forces: every step is schema-valid, fits if anything fits, keeps the contract
    and shows the focused forum first."""
    view = worst_view(focus="forum_2")
    smallest = size_utf16(setup_card(view, budget=1))
    sizes = []
    for budget in (10**7, 300_000, 80_000, 60_000, 40_000, 30_000, CARD_BUDGET_BYTES, 20_000, 1):
        card = setup_card(view, budget=budget)
        assert card_errors(card) == [], budget
        assert_no_input_overrides_data(card)
        size = size_utf16(card)
        assert size < budget or size == smallest, budget
        sizes.append(size)
        shown = expanded_forums(card)
        if shown:
            assert shown[0] == "forum_2"
        for forum in view.bound:
            if forum.forum_id in shown:
                assert member_ids_in_card(card, forum) == {p.user_id for p in forum.secretariat}
    print("set-up card sizes by budget:", sizes)
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) > 4


# ---------------------------------------------------------------------------------------------- B. co-authors
def coauthor_view(**changes: Any) -> CoauthorView:
    view = CoauthorView(
        case_id=4711,
        number="OF-2026-0042",
        title="Sårpleje efter **udskrivelse**",
        editable=True,
        coauthors=(person("c1", "Karen Kontaktperson"), person("c2", MARKDOWN_NAME), person("c3", "")),
    )
    return dataclasses.replace(view, **changes)


def test_coauthors_card_editable() -> None:
    view = coauthor_view(notices=("Personen er allerede medforfatter.",), info=("Karen er tilføjet.",))
    card = coauthors_card(view)
    assert_good(card, "co-authors card")
    assert {a["verb"] for a in executes(card)} <= verbs.CASE_FLOW
    text = texts(card)
    assert "Medforfattere – OF-2026-0042" in text and "Sårpleje efter \\*\\*udskrivelse\\*\\*" in text
    assert "kontaktpersonen for det tværsektorielle samarbejde" in text and "**mine sager**" in text
    assert md_escape(MARKDOWN_NAME) in text and uid("c3") in text
    removes = by_verb(card, verbs.COAUTHORS_REMOVE)
    assert [a["data"] for a in removes] == [{"case": 4711, "user": p.user_id} for p in view.coauthors]
    assert all(a["title"] == "Fjern" and a["associatedInputs"] == "none" for a in removes)
    picker = inputs(card)[COAUTHORS_INPUT]
    assert is_people_picker(picker) and picker["choices"] == []
    [add] = by_verb(card, verbs.COAUTHORS_ADD)
    assert add["data"] == {"case": 4711} and add["associatedInputs"] == "auto" and add["title"] == "Tilføj"
    [back] = by_verb(card, verbs.CASE_OPEN)
    assert back["data"] == {"case": 4711} and back["title"] == "Tilbage til sagen"


def test_coauthors_card_after_submission_lists_only() -> None:
    card = coauthors_card(coauthor_view(editable=False))
    assert_good(card, "co-authors card, submitted")
    assert "Karen Kontaktperson" in texts(card) and "kan ikke længere ændres" in texts(card)
    assert not by_verb(card, verbs.COAUTHORS_REMOVE) and not by_verb(card, verbs.COAUTHORS_ADD)
    assert inputs(card) == {}
    assert [a["verb"] for a in executes(card)] == [verbs.CASE_OPEN]


def test_coauthors_card_without_coauthors() -> None:
    card = coauthors_card(coauthor_view(coauthors=()))
    assert_good(card, "co-authors card, none")
    assert "Sagen har ingen medforfattere endnu." in texts(card)
    assert list(inputs(card)) == [COAUTHORS_INPUT]


@pytest.mark.parametrize("count", [15, 40])
def test_coauthors_card_many_coauthors_fit(count: int) -> None:
    view = coauthor_view(coauthors=tuple(person(f"c/{i}") for i in range(count)), title="x" * 500)
    card = coauthors_card(view)
    assert_good(card, f"co-authors card, {count} co-authors with long names")
    removes = by_verb(card, verbs.COAUTHORS_REMOVE)
    checklist = inputs(card).get(REMOVE_COAUTHORS_INPUT)
    if checklist is None:
        assert {a["data"]["user"] for a in removes} == {p.user_id for p in view.coauthors}
    else:
        assert [a["data"] for a in removes] == [{"case": 4711}] and removes[0]["associatedInputs"] == "auto"
        assert [c["value"] for c in checklist["choices"]] == [p.user_id for p in view.coauthors]
    if count == 40:
        assert checklist is not None
