"""Cards for setting up a forum channel (admins only) and for a case's co-authors.

Pure builders: values in, Adaptive Card JSON (1.5, Teams) out. People are added with Teams' people
picker (an Input.ChoiceSet searching the organisation through ``choices.data``, see ``people_picker``);
names are shown as typed (``md_escape``) and a person without a name is shown by their Entra object id.

The action contract is in ``verbs.SETUP_*`` / ``verbs.COAUTHORS_*``; every set-up action carries
``channel`` in its data. Two additions keep the set-up card under the size budget when a channel hosts
many forums with large secretariats (``setup_card`` tries these layouts in turn, see ``_layouts``):

- removal checklists: instead of one «Fjern» per person (data ``user``), the people of a forum are a
  multi-select checklist ``remove_input_id(forum)`` and one «Fjern de markerede» button
  (``SETUP_MEMBER_REMOVE`` with data channel + forum and no ``user``; the input holds comma-separated
  user ids); the same for admins (``SETUP_ADMIN_REMOVE`` without ``user``, input ``REMOVE_ADMINS_INPUT``)
  and, on the co-authors card, for co-authors (``COAUTHORS_REMOVE`` without ``user``, input
  ``REMOVE_COAUTHORS_INPUT``);
- collapsed forums: forums shown as one line each, with a dropdown ``FOCUS_INPUT`` and «Vis og ret»
  (``SETUP_SHOW`` with data channel and that input); the handler shows the card again with
  ``SetupView.focus`` set to the chosen forum, which is then shown in full first. (After an action on
  a forum, passing that forum as ``focus`` keeps it in view.)

Inputs travel with every action that has ``inputs=True`` ("auto": all inputs of the card and of the
cards around it), and a set input overrides an action data key of the same name: no input id equals a
data key (the bind dropdown is ``knyt_forum``, not ``forum``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from adaptive_cards import verbs
from adaptive_cards.common import (
    CARD_BUDGET_BYTES,
    Json,
    action,
    action_set,
    card,
    heading,
    md_escape,
    notice,
    preview,
    size_utf16,
    text_block,
)
from adaptive_cards.common import PEOPLE_QUERY as PEOPLE_QUERY  # re-exported (the card tests use it)
from adaptive_cards.common import people_picker as common_people_picker

#: Teams' people picker (``common.PEOPLE_QUERY``): an Input.ChoiceSet with that dynamic data source searches
#: the organisation's users (a documented Teams extension that is not part of the Adaptive Cards 1.5 schema).
#: The value is the chosen users' Entra object ids, comma-separated.

#: Input ids (see ``verbs``; none can equal ``member_input_id`` / ``remove_input_id`` of a forum):
#: the forum to bind, the admins to add, the admins ticked for removal, the collapsed forum to show in
#: full (``SETUP_SHOW``; the handler passes it on as ``SetupView.focus``); on the co-authors card the
#: co-authors to add and those ticked for removal.
BIND_INPUT = "knyt_forum"
ADMINS_INPUT = "admins"
REMOVE_ADMINS_INPUT = "admins_fjern"
FOCUS_INPUT = "vis_forum"
COAUTHORS_INPUT = "personer"
REMOVE_COAUTHORS_INPUT = "fjern_personer"


def member_input_id(forum_id: str) -> str:
    """The people picker of a forum's secretariat (``SETUP_MEMBER_ADD``)."""
    return f"personer_{forum_id}"


def remove_input_id(forum_id: str) -> str:
    """The removal checklist of a forum's secretariat (``SETUP_MEMBER_REMOVE`` without ``user``)."""
    return f"fjern_{forum_id}"


@dataclass(frozen=True)
class ForumChoice:
    forum_id: str
    name: str  # e.g. "Samarbejdsforum ved Aalborg Universitetshospital"
    bound_to: str | None  # where it is bound now, e.g. "Sundhedssamarbejde › Fora"; None: not bound
    here: bool  # bound to this channel


@dataclass(frozen=True)
class Person:
    user_id: str  # Entra object id
    name: str  # may be "": the id is shown


@dataclass(frozen=True)
class BoundForum:
    forum_id: str
    name: str
    secretariat: tuple[Person, ...]


@dataclass(frozen=True)
class SetupView:
    channel_id: str
    channel_name: str
    team_name: str
    forums: tuple[ForumChoice, ...]  # all forums of the configuration
    bound: tuple[BoundForum, ...]  # forums bound to this channel (a channel may host several)
    roster: tuple[Person, ...]  # team members, offered as static choices in the pickers (≤ 100)
    admins: tuple[tuple[Person, bool], ...]  # (admin, removable); env-configured admins are not removable
    waiting: Mapping[str, int] = field(default_factory=dict)  # forum id → cases waiting for a channel
    notices: tuple[str, ...] = ()  # Attention-colour lines at the top (errors)
    info: tuple[str, ...] = ()  # neutral confirmation lines at the top
    focus: str | None = None  # bound forum shown in full first if not all fit (SETUP_SHOW, FOCUS_INPUT)


@dataclass(frozen=True)
class CoauthorView:
    case_id: int
    number: str
    title: str
    editable: bool  # False once submitted (list only)
    coauthors: tuple[Person, ...]
    notices: tuple[str, ...] = ()
    info: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------------- parts
def person_name(person: Person) -> str:
    """The person's name on one line, or their id if the name is unknown (plain text, not escaped)."""
    return " ".join(person.name.split()) or person.user_id


def people_picker(input_id: str, label: str, choices: Sequence[Person] = ()) -> Json:
    """Teams' people picker (multi-select): search the organisation, plus ``choices`` offered up front."""
    return common_people_picker(input_id, label, [(p.user_id, person_name(p)) for p in choices],
                                placeholder="Søg efter navn")


def _checklist(input_id: str, label: str, people: Sequence[Person]) -> Json:
    return {
        "type": "Input.ChoiceSet",
        "id": input_id,
        "label": label,
        "isMultiSelect": True,
        "style": "expanded",
        "wrap": True,
        "choices": [{"title": person_name(p), "value": p.user_id} for p in people],
    }


def _person_row(text: str, button: Json | None) -> Json:
    """A person's name (markdown, already escaped) with an optional button at the right."""
    if button is None:
        return text_block(text, spacing="Small")
    return {
        "type": "ColumnSet",
        "spacing": "Small",
        "columns": [
            {"type": "Column", "width": "stretch", "verticalContentAlignment": "Center", "items": [text_block(text)]},
            {"type": "Column", "width": "auto", "items": [action_set([button])]},
        ],
    }


def _section(title: str) -> Json:
    return text_block(title, size="Medium", weight="Bolder", separator=True, spacing="Large")


def _messages(notices: Sequence[str], info: Sequence[str]) -> list[Json]:
    body: list[Json] = []
    if notices:
        body.append(notice(list(notices)))
    if info:
        body.append(notice(list(info), color="Default"))
    return body


# ---------------------------------------------------------------------------------------------- set-up
@dataclass(frozen=True)
class _Layout:
    roster: bool  # the team's members as static choices in the people pickers
    buttons: bool  # one «Fjern» per person (else a removal checklist per list and one button)
    expanded: tuple[str, ...]  # bound forums shown in full (the others collapsed to a summary)
    lean: bool = False  # collapsed forums only in their dropdown, fixed admins on one line


def _forum_order(view: SetupView) -> list[str]:
    ids = [forum.forum_id for forum in view.bound]
    if view.focus in ids:
        ids.remove(view.focus)
        ids.insert(0, view.focus)
    return ids


def _layouts(view: SetupView) -> Iterator[_Layout]:
    """From the fullest to the smallest card: first the roster goes (the pickers still search the whole
    organisation), then per-person buttons become checklists, then forums are collapsed one by one
    (the focused forum last, after the lean layout has made room for it)."""
    order = _forum_order(view)
    every = tuple(order)
    if view.roster:
        yield _Layout(roster=True, buttons=True, expanded=every)
    for count in range(len(order), -1, -1):
        expanded = tuple(order[:count])
        yield _Layout(roster=False, buttons=True, expanded=expanded)
        yield _Layout(roster=False, buttons=False, expanded=expanded)
        if count <= 1:
            yield _Layout(roster=False, buttons=False, expanded=expanded, lean=True)


def setup_card(view: SetupView, *, budget: int = CARD_BUDGET_BYTES) -> Json:
    """The set-up card of a channel: its forums and their secretariats, binding a forum, the admins.

    Shows as much as fits in ``budget`` (UTF-16 bytes), see ``_layouts``; if even the smallest layout
    does not fit (hundreds of admins), that one is returned."""
    built: Json = {}
    for layout in _layouts(view):
        built = _setup_card(view, layout)
        if size_utf16(built) < budget:
            return built
    return built


def _setup_card(view: SetupView, layout: _Layout) -> Json:
    channel = view.channel_id
    body = _messages(view.notices, view.info)
    body += heading(
        f"Opsætning af kanalen «{md_escape(view.channel_name)}»" if view.channel_name else "Opsætning af kanalen",
        f"Team: {md_escape(view.team_name)}" if view.team_name else None,
    )
    body.append(
        text_block(
            "Når et forum er knyttet til kanalen, slår jeg forummets nye sager op her – hver sag som sin egen "
            "tråd. Alle i kanalen kan følge og drøfte sagerne, men kun forummets sekretariat kan registrere "
            "beslutninger."
        )
    )
    if view.roster and not layout.roster:
        body.append(
            text_block(
                "Teamets medlemmer vises ikke som forslag i søgefelterne, fordi kortet ellers bliver for stort. "
                "Intet går tabt: skriv navnet i feltet – alle i organisationen kan findes.",
                subtle=True,
                size="Small",
            )
        )

    body.append(_section("Fora i denne kanal"))
    if not view.bound:
        body.append(text_block("Ingen fora er knyttet til kanalen endnu."))
    elif len(layout.expanded) < len(view.bound):
        body.append(
            text_block(
                "Der er ikke plads til at vise alle fora fuldt ud på én gang. Vælg et forum under "
                "**Se og ret et forum**, og tryk **Vis og ret**.",
                subtle=True,
            )
        )
    # Expanded forums first, in layout order (the focused one on top), then the collapsed ones.
    by_id = {forum.forum_id: forum for forum in view.bound}
    for forum_id in layout.expanded:
        body.append(_forum_full(channel, by_id[forum_id], view.roster if layout.roster else (), layout.buttons))
    collapsed = [forum for forum in view.bound if forum.forum_id not in layout.expanded]
    if collapsed:
        body += _collapsed(channel, collapsed, lean=layout.lean)

    body.append(_section("Knyt et forum til kanalen"))
    body += _bind(view)

    body.append(_section("Administratorer"))
    body += _admins(view, layout)
    return card(body)


def _forum_full(channel: str, forum: BoundForum, roster: Sequence[Person], buttons: bool) -> Json:
    data = {"channel": channel, "forum": forum.forum_id}
    items: list[Json] = [text_block(md_escape(forum.name), weight="Bolder")]
    members = forum.secretariat
    if not members:
        items.append(
            text_block(
                "Ingen i sekretariatet endnu – tilføj mindst én person, så forummets beslutninger kan registreres.",
                color="Warning",
                spacing="Small",
            )
        )
    elif buttons:
        items.append(text_block("Sekretariat:", subtle=True, spacing="Small"))
        items += [
            _person_row(
                md_escape(person_name(person)),
                action("Fjern", verbs.SETUP_MEMBER_REMOVE, {**data, "user": person.user_id}),
            )
            for person in members
        ]
    else:
        items.append(_checklist(remove_input_id(forum.forum_id), "Sekretariat – markér dem, der skal fjernes", members))
        items.append(
            action_set([action("Fjern de markerede", verbs.SETUP_MEMBER_REMOVE, data, inputs=True)], spacing="Small")
        )
    present = {person.user_id for person in members}
    items.append(
        people_picker(
            member_input_id(forum.forum_id),
            "Tilføj personer til sekretariatet",
            [person for person in roster if person.user_id not in present],
        )
    )
    items.append(
        action_set([action("Tilføj til sekretariatet", verbs.SETUP_MEMBER_ADD, data, inputs=True)], spacing="Small")
    )
    # Removing a forum from the channel asks first (new cases for it would wait until it is bound again).
    confirm = {
        "type": "AdaptiveCard",
        "body": [
            text_block(
                f"Fjern {md_escape(forum.name)} fra kanalen? Nye sager til forummet venter, til det knyttes til en "
                "kanal igen. Sager, der allerede er slået op her, bliver i kanalen.",
                size="Small",
            ),
            action_set([action("Ja, fjern forummet", verbs.SETUP_UNBIND, data)]),
        ],
    }
    items.append(action_set([{"type": "Action.ShowCard", "title": "Fjern forummet fra kanalen …", "card": confirm}],
                            spacing="Small"))
    return {"type": "Container", "separator": True, "spacing": "Medium", "items": items}


def _collapsed(channel: str, forums: Sequence[BoundForum], *, lean: bool) -> list[Json]:
    """Forums not shown in full: one line each (``lean``: only in the dropdown), and a dropdown to show
    one of them in full."""
    def members(forum: BoundForum) -> str:
        count = len(forum.secretariat)
        return f"{count} i sekretariatet" if count else "ingen i sekretariatet endnu"

    def name(forum: BoundForum) -> str:
        return " ".join(forum.name.split())

    lines = [] if lean else [text_block(f"**{md_escape(name(f))}** · {members(f)}", spacing="Small") for f in forums]
    return [
        {
            "type": "Container",
            "separator": True,
            "spacing": "Medium",
            "items": [
                *lines,
                {
                    "type": "Input.ChoiceSet",
                    "id": FOCUS_INPUT,
                    "label": "Se og ret et forum",
                    "style": "compact",
                    "placeholder": "Vælg forum",
                    "wrap": True,
                    "choices": [
                        {"title": f"{name(f)} · {members(f)}" if lean else name(f), "value": f.forum_id} for f in forums
                    ],
                },
                action_set([action("Vis og ret", verbs.SETUP_SHOW, {"channel": channel}, inputs=True)], spacing="Small"),
            ],
        }
    ]


def _forum_label(forum: ForumChoice, waiting: int) -> str:
    label = " ".join(forum.name.split())
    if forum.bound_to:
        label += f" (nu i {' '.join(forum.bound_to.split())} – flyttes hertil)"
    if waiting > 0:
        label += f" ({waiting} {'sag venter' if waiting == 1 else 'sager venter'})"
    return label


def _bind(view: SetupView) -> list[Json]:
    here = {forum.forum_id for forum in view.bound}
    candidates = [forum for forum in view.forums if not forum.here and forum.forum_id not in here]
    if not candidates:
        text = "Alle fora er knyttet til kanalen." if view.forums else "Der er ingen fora i konfigurationen."
        return [text_block(text)]
    lines = ["Vælg et forum, så slår jeg forummets nye sager op her."]
    if any(forum.bound_to for forum in candidates):
        lines.append("Er forummet knyttet til en anden kanal, flyttes det hertil.")
    if any(view.waiting.get(forum.forum_id, 0) > 0 for forum in candidates):
        lines.append("Sager, der venter på, at forummet får en kanal, slås op her, når forummet er knyttet.")
    intro = text_block(" ".join(lines))
    form: list[Json] = [
        {
            "type": "Input.ChoiceSet",
            "id": BIND_INPUT,
            "label": "Forum",
            "style": "compact",
            "placeholder": "Vælg forum",
            "wrap": True,
            "choices": [
                {"title": _forum_label(forum, view.waiting.get(forum.forum_id, 0)), "value": forum.forum_id}
                for forum in candidates
            ],
        },
        action_set([action("Knyt til kanalen", verbs.SETUP_BIND, {"channel": view.channel_id}, inputs=True)]),
    ]
    # (the dropdown's id differs from every action data key: a filled-in input would override a data key)
    return [intro, *form]


def _admins(view: SetupView, layout: _Layout) -> list[Json]:
    channel = view.channel_id
    blocks: list[Json] = [text_block("Administratorer kan knytte fora til kanalerne og udpege sekretariaterne.")]
    fixed = [person for person, removable in view.admins if not removable]
    removable = [person for person, can_remove in view.admins if can_remove]
    if fixed:
        blocks.append(
            text_block("Administratorer fra botens konfiguration kan ikke fjernes her.", subtle=True, spacing="None")
        )
    if not view.admins:
        blocks.append(text_block("Der er ingen administratorer endnu."))
    if layout.buttons:
        for person, can_remove in view.admins:
            name = md_escape(person_name(person))
            if can_remove:
                button = action("Fjern", verbs.SETUP_ADMIN_REMOVE, {"channel": channel, "user": person.user_id})
                blocks.append(_person_row(name, button))
            else:
                blocks.append(_person_row(f"{name} · fra konfigurationen", None))
    else:
        if layout.lean and fixed:
            names = ", ".join(md_escape(person_name(p)) for p in fixed)
            blocks.append(text_block(f"Fra konfigurationen: {names}", spacing="Small"))
        else:
            blocks += [_person_row(f"{md_escape(person_name(p))} · fra konfigurationen", None) for p in fixed]
        if removable:
            blocks.append(_checklist(REMOVE_ADMINS_INPUT, "Markér dem, der skal fjernes", removable))
            blocks.append(
                action_set(
                    [action("Fjern de markerede", verbs.SETUP_ADMIN_REMOVE, {"channel": channel}, inputs=True)],
                    spacing="Small",
                )
            )
    present = {person.user_id for person, _ in view.admins}
    roster = [person for person in view.roster if person.user_id not in present] if layout.roster else []
    blocks.append(people_picker(ADMINS_INPUT, "Tilføj administratorer", roster))
    blocks.append(
        action_set(
            [action("Tilføj administrator", verbs.SETUP_ADMIN_ADD, {"channel": channel}, inputs=True)],
            spacing="Small",
        )
    )
    return blocks


# ---------------------------------------------------------------------------------------------- co-authors
def coauthors_card(view: CoauthorView, *, budget: int = CARD_BUDGET_BYTES) -> Json:
    """A case's co-authors: the list (with «Fjern» while the case can be edited) and a people picker.

    If one «Fjern» per co-author does not fit in ``budget``, the list becomes a removal checklist."""
    built = _coauthors_card(view, buttons=True)
    if view.editable and view.coauthors and size_utf16(built) >= budget:
        built = _coauthors_card(view, buttons=False)
    return built


def _coauthors_card(view: CoauthorView, *, buttons: bool) -> Json:
    data = {"case": view.case_id}
    body = _messages(view.notices, view.info)
    body += heading(f"Medforfattere – {view.number}", md_escape(preview(view.title, 120)) if view.title else None)
    body.append(
        text_block(
            "Medforfattere – typisk kontaktpersonen for det tværsektorielle samarbejde – kan se sagen i deres "
            "egen chat med mig og under **mine sager**, og de kan rette i den, indtil den er indsendt. "
            "De får besked, når der sker noget i sagen."
        )
    )
    if not view.editable:
        body.append(text_block("Sagen er indsendt, så medforfatterne kan ikke længere ændres.", subtle=True))
    if not view.coauthors:
        body.append(text_block("Sagen har ingen medforfattere endnu."))
    elif view.editable and not buttons:
        body.append(_checklist(REMOVE_COAUTHORS_INPUT, "Medforfattere – markér dem, der skal fjernes", view.coauthors))
        body.append(
            action_set([action("Fjern de markerede", verbs.COAUTHORS_REMOVE, data, inputs=True)], spacing="Small")
        )
    else:
        body.append(text_block("Medforfattere:", weight="Bolder"))
        body += [
            _person_row(
                md_escape(person_name(person)),
                action("Fjern", verbs.COAUTHORS_REMOVE, {**data, "user": person.user_id}) if view.editable else None,
            )
            for person in view.coauthors
        ]
    if view.editable:
        body.append(people_picker(COAUTHORS_INPUT, "Tilføj medforfattere"))
        body.append(action_set([action("Tilføj", verbs.COAUTHORS_ADD, data, inputs=True)], spacing="Small"))
    body.append(action_set([action("Tilbage til sagen", verbs.CASE_OPEN, data)]))
    return card(body)
