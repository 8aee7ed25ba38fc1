"""Cards for the 1:1 chat outside the form pages: welcome, help, case list, outcomes, notices."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from adaptive_cards import verbs
from adaptive_cards.common import (
    Json,
    action,
    action_set,
    card,
    da_datetime,
    fact_set,
    heading,
    md_escape,
    notice,
    preview,
    text_block,
)

DEFINITION = (
    "Ved opgaveflytning forstås, at en opgave planlagt flyttes fra en sektor (almen praksis, kommuner og/eller "
    "region) til en anden, og at denne ændring har afledte konsekvenser i den anden sektor (almen praksis, "
    "kommuner og/eller region)."
)

START_ACTIONS = [
    ("Ny sag", verbs.CASE_NEW),
    ("Mine sager", verbs.CASE_LIST),
    ("Hjælp", verbs.HELP),
]


def _start_buttons(*, include_help: bool = True) -> Json:
    return action_set(
        [action(title, verb) for title, verb in START_ACTIONS if include_help or verb != verbs.HELP]
    )


def welcome_card(user_name: str | None) -> Json:
    greeting = f"Hej {md_escape(user_name)}!" if user_name else "Hej!"
    return card(
        [
            *heading(greeting, "Jeg hjælper med opgaveflytning mellem hospital, kommune og almen praksis."),
            text_block(
                "Jeg stiller de tre screeningsspørgsmål, guider dig gennem **Dialoggrundlag – ”Første skridt”** og "
                "– ved større opgaveflytninger – **Mini-MTV**, og sender sagen til det rette forum."
            ),
            text_block(
                "Dine svar gemmes efter hver side, så du kan holde pause og fortsætte senere – også fra en anden enhed."
            ),
            text_block("Skriv **ny sag** for at begynde, **fortsæt** for at fortsætte, eller **hjælp**.", subtle=True),
            _start_buttons(),
        ]
    )


def help_card(*, unknown_text: str | None = None) -> Json:
    body: list[Json] = []
    if unknown_text is not None:
        body.append(text_block(f"Jeg forstod ikke »{md_escape(unknown_text[:80])}«.", weight="Bolder"))
    body += [
        text_block("Det kan du skrive til mig", size="Medium", weight="Bolder"),
        fact_set(
            [
                ("ny sag", "Start en ny sag med screeningsspørgsmålene."),
                ("fortsæt", "Fortsæt din nyeste uafsluttede sag, hvor du slap."),
                ("mine sager", "Se dine sager med status og seneste ændring."),
                ("hjælp", "Vis denne hjælp."),
            ]
        ),
        text_block(DEFINITION, size="Small", subtle=True),
        text_block(
            "Skriv aldrig patientoplysninger som CPR-numre i svarene – sagen handler om opgaven, ikke om patienter.",
            size="Small",
            subtle=True,
        ),
        _start_buttons(include_help=False),
    ]
    return card(body)


def notice_card(title: str, lines: list[str], *, buttons: bool = True, link: tuple[str, str] | None = None) -> Json:
    body: list[Json] = [text_block(title, size="Medium", weight="Bolder")]
    body += [text_block(line) for line in lines]
    if buttons:
        body.append(_start_buttons(include_help=False))
    if link:
        body.append(action_set([{"type": "Action.OpenUrl", "title": link[0], "url": link[1]}]))
    return card(body)


@dataclass
class CaseListEntry:
    case_id: int
    number: str
    title: str
    phase_label: str
    updated_at: datetime
    can_continue: bool


def case_list_card(entries: list[CaseListEntry], total: int) -> Json:
    if not entries:
        return notice_card("Du har ingen sager endnu", ["Skriv **ny sag** eller tryk på knappen for at begynde."])
    body: list[Json] = [*heading("Mine sager", f"{total} sag{'er' if total != 1 else ''}" if total else None)]
    for entry in entries:
        title = md_escape(preview(entry.title, 80)) if entry.title else "(uden titel endnu)"
        body.append(
            {
                "type": "Container",
                "separator": True,
                "items": [
                    {
                        "type": "ColumnSet",
                        "columns": [
                            {
                                "type": "Column",
                                "width": "stretch",
                                "items": [
                                    text_block(f"**{entry.number}** · {title}"),
                                    text_block(
                                        f"{entry.phase_label} · ændret {da_datetime(entry.updated_at)}",
                                        subtle=True,
                                        spacing="None",
                                        size="Small",
                                    ),
                                ],
                            },
                            {
                                "type": "Column",
                                "width": "auto",
                                "verticalContentAlignment": "Center",
                                "items": [
                                    action_set(
                                        [
                                            action(
                                                "Fortsæt" if entry.can_continue else "Åbn",
                                                verbs.CASE_OPEN,
                                                {"case": entry.case_id},
                                            )
                                        ]
                                    )
                                ],
                            },
                        ],
                    }
                ],
            }
        )
    if total > len(entries):
        body.append(text_block(f"Viser de {len(entries)} senest ændrede af {total} sager.", subtle=True, size="Small"))
    body.append(action_set([action("Ny sag", verbs.CASE_NEW)]))
    return card(body)


def no_duty_card(case_id: int, number: str, revision: int) -> Json:
    return card(
        [
            *heading("Ingen initiativpligt", f"Sag {number}"),
            text_block(
                "Du har svaret nej til alle tre spørgsmål. Ændringen har derfor ikke konsekvenser, der udløser "
                "initiativpligten, og sagen er registreret som **ingen initiativpligt**."
            ),
            text_block(
                "Kan der svares ja til minimum ét af spørgsmålene har nærmeste leder initiativpligten til at "
                "vurdere, om der er behov for udarbejdelse af et skriftligt dialoggrundlag.",
                subtle=True,
            ),
            text_block(
                "Vil du alligevel udarbejde et dialoggrundlag – f.eks. for at orientere samarbejdspartnerne – kan "
                "du fortsætte frivilligt."
            ),
            action_set(
                [
                    action("Fortsæt alligevel", verbs.CASE_CONTINUE_ANYWAY, {"case": case_id, "rev": revision}),
                    action("Ret svarene", verbs.REVIEW_EDIT, {"case": case_id, "step": "screening/overvejelser"}),
                    action("Mine sager", verbs.CASE_LIST),
                ]
            ),
        ]
    )


def not_needed_card(number: str, reason: str) -> Json:
    return card(
        [
            *heading("Sagen er lukket", f"Sag {number}"),
            text_block(
                "Nærmeste leder har vurderet, at der ikke er behov for et skriftligt dialoggrundlag. "
                "Sagen er lukket med denne begrundelse:"
            ),
            text_block(md_escape(reason) if reason else "–", style=None),
            _start_buttons(include_help=False),
        ]
    )


def paused_card(case_id: int, number: str, title: str, where: str) -> Json:
    return card(
        [
            *heading("Dine svar er gemt", f"Sag {number}" + (f" · {md_escape(title)}" if title else "")),
            text_block(f"Du er nået til: {where}."),
            text_block("Skriv **fortsæt** – eller tryk på knappen – når du vil videre. Det virker også fra en anden enhed."),
            action_set([action("Fortsæt nu", verbs.CASE_OPEN, {"case": case_id}),
                        action("Medforfattere", verbs.COAUTHORS_SHOW, {"case": case_id}),
                        action("Mine sager", verbs.CASE_LIST)]),
        ]
    )


def submitted_card(number: str, title: str, destination_lines: list[str], mtv_progress: str | None, *,
                   case_id: int | None = None, phase_label: str | None = None, just_sent: bool = True,
                   notes: list[str] | None = None, extra_facts: list[tuple[str, str]] | None = None) -> Json:
    """After submission (``just_sent``) or later, when the initiator opens a case that is with the forums
    (``extra_facts``: the latest decision, the plan; values are escaped here)."""
    facts = [("Sagsnummer", number), ("Opgave", md_escape(title) or "–")]
    if phase_label:
        facts.append(("Status", phase_label))
    if mtv_progress:
        facts.append(("Mini-MTV", mtv_progress))
    facts += [(label, md_escape(preview(value, 400))) for label, value in extra_facts or []]
    if just_sent:
        top = heading("Sagen er indsendt", f"Tak! Sag {number} er registreret som indsendt.")
    else:
        top = heading(f"Sag {number}", md_escape(title) if title else None)
    buttons = [action("Mine sager", verbs.CASE_LIST), action("Ny sag", verbs.CASE_NEW)]
    if case_id is not None:
        buttons.insert(0, action("Medforfattere", verbs.COAUTHORS_SHOW, {"case": case_id}))
    return card(
        [
            *top,
            fact_set(facts),
            text_block("Sagen går videre til:" if just_sent else "Sagen er sendt til:", weight="Bolder"),
            *[text_block(f"• {line}", spacing="None") for line in destination_lines],
            *([notice(notes, color="Warning")] if notes else []),
            text_block(
                "Du får besked i denne chat, hver gang et forum behandler sagen. Du kan altid se den og dens status "
                "under **mine sager**.",
                subtle=True,
            ),
            action_set(buttons),
        ]
    )


def error_card(title: str, message: str) -> Json:
    return card([notice([title, message], color="Attention"), _start_buttons(include_help=False)])


def team_welcome_card(team_name: str) -> Json:
    where = f" i **{md_escape(team_name)}**" if team_name else ""
    return card(
        [
            text_block("Opgaveflytning er klar", size="Medium", weight="Bolder"),
            text_block(
                f"Tak, fordi I har tilføjet mig{where}. Jeg hjælper med opgaveflytning mellem hospital, kommune og "
                "almen praksis: screening, Dialoggrundlag og Mini-MTV."
            ),
            text_block(
                "Sager oprettes i den personlige chat med mig. I teamets kanaler kan I skrive "
                "**@Opgaveflytning hjælp**."
            ),
            text_block(
                "Administratorer: skriv **@Opgaveflytning opsætning** i den kanal, et forum skal bruge "
                "(samarbejdsforum, Porteføljestyregruppen eller Strategisk Sundhedsforum).",
                size="Small",
            ),
        ]
    )


def channel_help_card() -> Json:
    return card(
        [
            text_block("Opgaveflytning i kanaler", size="Medium", weight="Bolder"),
            text_block(
                "Sager oprettes og udfyldes i din personlige chat med mig: skriv **ny sag** dér. "
                "Her i kanalen svarer jeg, når I nævner mig."
            ),
            fact_set([
                ("@Opgaveflytning status OF-2026-0007", "Viser sagens kort her i kanalen (sager i kanalens fora)."),
                ("@Opgaveflytning opsætning", "Administratorer: knyt kanalen til et forum, og udpeg forummets "
                                              "sekretariat."),
                ("@Opgaveflytning leveringer", "Administratorer: beskeder, jeg ikke kunne levere, og «Prøv igen»."),
                ("@Opgaveflytning hjælp", "Viser denne hjælp."),
            ]),
            text_block(
                "Når en sag sendes til et forum, starter jeg en ny tråd i forummets kanal med sagens kort. "
                "Forummets sekretariat registrerer beslutninger direkte på kortet; alle andre ser det uden knapper. "
                "Hver ændring står som et svar i tråden, og initiativtager får besked i sin chat.",
                size="Small",
            ),
            text_block(DEFINITION, size="Small", subtle=True),
        ]
    )


@dataclass(frozen=True)
class FailedDelivery:
    item_id: int
    what: str  # "Ny tråd", "Svar i tråd", "Opdatering af kort", "1:1-besked"
    about: str  # the message's notification text (e.g. "Sag OF-2026-0007 …")
    error: str
    in_doubt: bool
    attempts: int
    updated_at: datetime


def deliveries_card(items: list[FailedDelivery], *, total: int, notices: list[str] | None = None,
                    info: list[str] | None = None) -> Json:
    """Messages the bot could not deliver (admins): what, why, and «Prøv igen» per message."""
    body: list[Json] = [*heading("Leveringer, der mangler", f"{total} besked{'er' if total != 1 else ''} "
                                                            "kræver opmærksomhed" if total else None)]
    if notices:
        body.append(notice(notices))
    if info:
        body.append(notice(info, color="Good"))
    if not items:
        body.append(text_block("Alt er leveret. Der er ingen fejlede beskeder."))
    for item in items:
        state = ("Uvist om den nåede frem – se efter i kanalen, før du prøver igen" if item.in_doubt
                 else "Afvist af Teams")
        body.append(text_block(f"{item.what}: {md_escape(preview(item.about, 120)) or '–'}", weight="Bolder",
                               separator=True, spacing="Medium"))
        body.append(fact_set([("Status", state), ("Fejl", md_escape(preview(item.error, 200)) or "–"),
                              ("Forsøg", str(item.attempts)), ("Senest", da_datetime(item.updated_at))]))
        body.append(action_set([action("Prøv igen", verbs.DELIVERIES_RETRY, {"item": item.item_id})]))
    if total > len(items):
        body.append(text_block(f"Viser de ældste {len(items)} af {total}.", size="Small", subtle=True))
    body.append(action_set([action("Opdatér", verbs.DELIVERIES_SHOW)], spacing="Large"))
    return card(body)


def case_notice_card(case_id: int, case_title: str, title: str, lines: list[str], *, thread_url: str | None,
                     open_case: bool) -> Json:
    """A 1:1 message about a case: what happened, a link to its thread (``thread_url``, may be the outbox's
    placeholder) and, when the user must act, «Åbn sagen»."""
    body: list[Json] = [text_block(title, size="Medium", weight="Bolder")]
    if case_title:
        body.append(text_block(f"«{md_escape(case_title)}»", subtle=True))
    body += [text_block(line) for line in lines]
    buttons: list[Json] = []
    if open_case:
        buttons.append(action("Åbn sagen", verbs.CASE_OPEN, {"case": case_id}))
    if thread_url:
        buttons.append({"type": "Action.OpenUrl", "title": "Åbn tråden i kanalen", "url": thread_url})
    if buttons:
        body.append(action_set(buttons))
    return card(body)
