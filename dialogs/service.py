"""Application service: commands and card actions of the 1:1 chat, on top of storage and the pure engine.

No SDK here: the bot's edge turns activities into calls of :class:`CaseService` and its replies
(cards) into activities or invoke responses. Every call is one database transaction.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from adaptive_cards import messages, verbs
from adaptive_cards import setup as coauthor_cards
from adaptive_cards.common import COPENHAGEN, Json, md_escape
from adaptive_cards.pages import page_card
from adaptive_cards.review import review_card
from dialogs import engine, views
from dialogs.commands import Command, parse
from dialogs.flow import (
    DIALOGGRUNDLAG,
    FORM_ORDER,
    MINI_MTV,
    REVIEW,
    ROUTE,
    ROUTE_PSG,
    SCREENING,
    Phase,
    Plan,
    Step,
    next_step,
    plan,
    previous_step,
)
from dialogs.forms_model import Form, FormCatalog
from dialogs.forums import ForumService, PersonInfo, _Ctx, case_forms
from dialogs.organisation import Organisation
from storage.db import Database
from storage.forums import ForumRepo
from storage.forums import Person as StoredPerson
from storage.repositories import Case, CaseAnswers, EventSpec, Repo, RevisionConflict, StateConflict

log = logging.getLogger(__name__)

OPEN_PHASES = [p.value for p in (Phase.SCREENING, Phase.DIALOGGRUNDLAG, Phase.ROUTE, Phase.MINI_MTV, Phase.REVIEW)]
LIST_LIMIT = 15
MAX_COAUTHORS = 10
REMEMBER_MEMO_SIZE = 10_000


@dataclass(frozen=True)
class Actor:
    id: str
    name: str
    tenant_id: str = ""


@dataclass(frozen=True)
class Conversation:
    """How to reach the conversation later (stored as part of the conversation state)."""

    key: str
    conversation_id: str
    service_url: str
    channel_id: str = "msteams"
    conversation_type: str = "personal"
    bot_id: str = ""


@dataclass
class Reply:
    card: Json
    # A short text for notifications/accessibility of the message that carries the card.
    summary: str = ""


@dataclass
class _Render:
    """What to show after an action (built once the transaction has the final case state)."""

    card: Json
    summary: str = ""
    queued: bool = False  # the outbox got work in this transaction (wake the delivery worker)


class CaseService:
    def __init__(
        self,
        database: Database,
        catalog: FormCatalog,
        organisation: Organisation,
        *,
        longtext_max: int = 2000,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        forums: ForumService | None = None,
    ) -> None:
        self.db = database
        self.catalog = catalog
        self.org = organisation
        self.longtext_max = longtext_max
        self.clock = clock
        self.forums = forums or ForumService(database, catalog, organisation, longtext_max=longtext_max, clock=clock)
        self._hospitals = organisation.hospital_forums()
        self._remembered: OrderedDict[str, tuple[tuple[str, str], ...]] = OrderedDict()

    # ------------------------------------------------------------------ entry points
    async def welcome(self, actor: Actor, conversation: Conversation, activity_id: str | None) -> list[Reply]:
        async with self.db.transaction() as repo:
            if activity_id and not await repo.claim_activity(activity_id):
                return []
            state, _ = await repo.load_state(conversation.key)
            if state.get("welcomed"):
                # Teams sends both installationUpdate and conversationUpdate on install: greet once.
                return []
            await self._remember(repo, actor, conversation, welcomed=True)
        return [Reply(messages.welcome_card(actor.name.split(" ")[0] if actor.name else None), "Velkommen")]

    async def command(
        self, actor: Actor, conversation: Conversation, text: str | None, activity_id: str | None
    ) -> list[Reply]:
        command = parse(text)
        async with self.db.transaction() as repo:
            if activity_id and not await repo.claim_activity(activity_id):
                log.info("duplicate activity %s ignored", activity_id)
                return []
            if command is Command.NEW:
                render = await self._new_case(repo, actor)
            elif command is Command.CONTINUE:
                render = await self._continue_newest(repo, actor)
            elif command is Command.LIST:
                render = await self._list(repo, actor)
            elif command is Command.HELP:
                render = _Render(messages.help_card(), "Hjælp")
            else:
                render = _Render(messages.help_card(unknown_text=text or ""), "Hjælp")
            await self._remember(repo, actor, conversation)
        return [Reply(render.card, render.summary)]

    async def action(
        self,
        actor: Actor,
        conversation: Conversation,
        verb: str,
        data: Mapping[str, Any],
        activity_id: str | None,
    ) -> Reply:
        """A card button. Always returns a card to show in place of the pressed one."""
        looked_up: dict[str, PersonInfo] = {}
        if verb == verbs.COAUTHORS_ADD:  # outside the transaction: it may ask Teams
            looked_up = await self.forums.look_up(data, [coauthor_cards.COAUTHORS_INPUT])
        for attempt in range(3):
            try:
                async with self.db.transaction() as repo:
                    if activity_id and not await repo.claim_activity(activity_id):
                        log.info("duplicate invoke %s: answering with the current view", activity_id)
                        render = await self._current_view(repo, actor, data)
                    else:
                        # The conversation reference is kept from messages and installs; a card action
                        # always comes after one of those, so it costs no extra read here.
                        render = await self._dispatch(repo, actor, verb, data, looked_up)
                if render.queued:
                    self.forums.on_queued()
                return Reply(render.card, render.summary)
            except (RevisionConflict, StateConflict):
                # Another turn (another device or process) wrote the case first: read again and redo.
                log.info("write conflict on %s (attempt %d), retrying", verb, attempt + 1)
        return Reply(
            messages.error_card("Sagen blev ændret samtidig et andet sted.", "Prøv igen om et øjeblik."),
            "Prøv igen",
        )

    # ------------------------------------------------------------------ dispatch
    async def _dispatch(self, repo: Repo, actor: Actor, verb: str, data: Mapping[str, Any],
                        looked_up: Mapping[str, PersonInfo] | None = None) -> _Render:
        if verb == verbs.CASE_NEW:
            return await self._new_case(repo, actor)
        if verb == verbs.CASE_LIST:
            return await self._list(repo, actor)
        if verb == verbs.HELP:
            return _Render(messages.help_card(), "Hjælp")
        case_id = data.get("case")
        if not isinstance(case_id, int) or isinstance(case_id, bool):
            return _Render(messages.error_card("Kortet kunne ikke læses.", "Skriv **mine sager** for at finde din sag."))
        # Optimistic: read the case and its answers in one statement; if another turn (another device or
        # process) writes the case first, update_case raises RevisionConflict and action() redoes the
        # turn on fresh data (where the stale-card rules apply).
        loaded = await repo.get_case_and_answers(case_id)
        case, answers = loaded if loaded else (None, CaseAnswers())
        if case is None or not await self._may_see(repo, case, actor):
            return _Render(
                messages.error_card(
                    "Dette kort hører til en sag, du ikke har adgang til.",
                    "Skriv **mine sager** for at se dine egne sager.",
                ),
                "Ingen adgang",
            )
        if verb == verbs.CASE_OPEN:
            return self._resume(case, answers)
        if verb in (verbs.PAGE_NEXT, verbs.PAGE_BACK, verbs.PAGE_PAUSE):
            return await self._page_action(repo, actor, case, answers, verb, data)
        if verb == verbs.CASE_CONTINUE_ANYWAY:
            return await self._continue_anyway(repo, actor, case, answers)
        if verb == verbs.REVIEW_EDIT:
            return await self._edit_from_review(repo, actor, case, answers, data)
        if verb == verbs.REVIEW_SUBMIT:
            return await self._submit(repo, actor, case, answers, data)
        if verb in (verbs.COAUTHORS_SHOW, verbs.COAUTHORS_ADD, verbs.COAUTHORS_REMOVE):
            return await self._coauthors(repo, actor, case, verb, data, looked_up or {})
        return _Render(messages.error_card("Ukendt handling.", "Skriv **hjælp** for at se, hvad jeg kan."))

    async def _current_view(self, repo: Repo, actor: Actor, data: Mapping[str, Any]) -> _Render:
        case_id = data.get("case")
        if isinstance(case_id, int) and not isinstance(case_id, bool):
            loaded = await repo.get_case_and_answers(case_id)
            if loaded is not None and await self._may_see(repo, loaded[0], actor):
                return self._resume(*loaded, use_current=True)
        return _Render(messages.help_card(), "Hjælp")

    # ------------------------------------------------------------------ commands
    async def _new_case(self, repo: Repo, actor: Actor) -> _Render:
        versions = {form_id: self.catalog.current(form_id).version for form_id in FORM_ORDER}
        first = Step(SCREENING, self.catalog.current(SCREENING).pages[0].id)
        case = await repo.create_case(
            tenant_id=actor.tenant_id,
            initiator_id=actor.id,
            initiator_name=actor.name,
            phase=Phase.SCREENING.value,
            current_step=first.key,
            form_versions=versions,
        )
        await repo.add_event(case.id, actor_id=actor.id, actor_name=actor.name, kind="oprettet", detail={"forms": versions})
        return self._page(case, CaseAnswers(), first, actor_name=actor.name)

    async def _continue_newest(self, repo: Repo, actor: Actor) -> _Render:
        case = await repo.newest_open_case(actor.id, OPEN_PHASES)
        if case is None:
            return _Render(
                messages.notice_card(
                    "Du har ingen uafsluttede sager",
                    ["Skriv **ny sag** for at begynde en ny, eller **mine sager** for at se dine sager."],
                ),
                "Ingen uafsluttede sager",
            )
        return self._resume(case, await repo.get_answers(case.id))

    async def _may_see(self, repo: Repo, case: Case, actor: Actor) -> bool:
        """The initiator and the case's co-authors work on a case in 1:1."""
        return case.initiator_id == actor.id or actor.id in await ForumRepo(repo.conn).participants(case.id)

    async def _list(self, repo: Repo, actor: Actor) -> _Render:
        cases = await repo.list_cases(actor.id, limit=LIST_LIMIT)
        total = len(cases) if len(cases) < LIST_LIMIT else await repo.count_cases(actor.id)
        shown = {c.id for c in cases}
        shared = [i for i in await ForumRepo(repo.conn).cases_of_participant(actor.id) if i not in shown]
        if shared:  # cases the user co-authors
            cases += await repo.get_cases(shared)
            total += len(shared)
            cases.sort(key=lambda c: (c.updated_at, c.id), reverse=True)
            cases = cases[:LIST_LIMIT]
        entries = [
            messages.CaseListEntry(
                case_id=c.id,
                number=c.number,
                title=c.title,
                phase_label=self._phase_label(c) + ("" if c.initiator_id == actor.id else " · medforfatter"),
                updated_at=c.updated_at,
                can_continue=c.phase in OPEN_PHASES,
            )
            for c in cases
        ]
        return _Render(messages.case_list_card(entries, total), "Mine sager")

    # ------------------------------------------------------------------ views
    def _forms(self, case: Case) -> dict[str, Form]:
        return case_forms(self.catalog, case)

    def _plan(self, case: Case, values: Mapping[str, Mapping[str, str]]) -> Plan:
        return plan(self._forms(case), values, continue_anyway=bool(case.flags.get("continue_anyway")),
                    require_mtv=bool(case.flags.get("require_mtv")))

    def _phase_label(self, case: Case) -> str:
        phase = Phase(case.phase)
        if phase is Phase.DECISION:
            return f"Til afgørelse i {self.org.decision_body.name}"
        if phase.editable and case.flags.get("returned"):
            return "Returneret til supplering"
        if phase.editable and case.flags.get("require_mtv"):
            return "Løftet til PSG – Mini-MTV udfyldes"
        return phase.label

    def _resume(self, case: Case, answers: CaseAnswers, *, use_current: bool = False) -> _Render:
        """The card a user should see for a case now: outcome, submitted summary, or the open page."""
        phase = Phase(case.phase)
        values = answers.values()
        if phase.sent:
            return self._submitted(case, values, just_sent=False)
        if phase is Phase.NOT_NEEDED:
            return _Render(messages.not_needed_card(case.number, case.closed_reason or ""), "Sagen er lukket")
        if phase is Phase.NO_DUTY:
            return _Render(messages.no_duty_card(case.id, case.number, case.revision), "Ingen initiativpligt")
        case_plan = self._plan(case, values)
        step = Step.parse(case.current_step)
        if use_current and case_plan.index(step) is not None:
            target = step
        else:
            target = self._first_open_step(case, case_plan, values)
        return self._render_step(case, answers, target, actor_name=case.initiator_name)

    def _first_open_step(self, case: Case, case_plan: Plan, values: Mapping[str, Mapping[str, str]]) -> Step:
        """Where to resume: the first page with open questions, counted from where the user stopped
        (optional questions skipped earlier do not pull them back; the review lists those)."""
        forms = self._forms(case)
        start = case_plan.index(Step.parse(case.current_step)) or 0
        for step in case_plan.steps[start:]:
            if step.form is None:
                return step
            form = forms[step.form]
            page = form.pages[form.page_index[step.page or ""]]
            form_values = values.get(step.form, {})
            if any(engine.is_open(item, form_values) for item in engine.page_items(form, page, form_values)):
                return step
        return case_plan.steps[-1]

    def _render_step(self, case: Case, answers: CaseAnswers, step: Step, **kwargs: Any) -> _Render:
        if step.form is None:
            return self._review(case, answers.values(), notices=kwargs.get("notices"))
        return self._page(case, answers, step, **kwargs)

    @staticmethod
    def _header(case: Case) -> views.CaseHeader:
        return views.CaseHeader(case.id, case.number, case.title, case.revision)

    def _page(
        self,
        case: Case,
        answers: CaseAnswers,
        step: Step,
        *,
        actor_name: str = "",
        shown: Mapping[str, str] | None = None,
        errors: Mapping[str, str] | None = None,
        warnings: Mapping[str, str] | None = None,
        notices: list[str] | None = None,
        return_to_review: bool = False,
    ) -> _Render:
        all_values = answers.values()
        view = views.page_view(
            self._forms(case),
            self._header(case),
            all_values,
            step,
            case_plan=self._plan(case, all_values),
            hospitals=self._hospitals,
            longtext_max=self.longtext_max,
            user_name=actor_name or case.initiator_name,
            today=self.clock().astimezone(COPENHAGEN).date(),
            shown=shown,
            errors=errors,
            warnings=warnings,
            notices=notices,
            return_to_review=return_to_review,
        )
        return _Render(page_card(view), f"{view.form.short_title} · side {view.page_no} af {view.page_count}")

    def _review(self, case: Case, values: Mapping[str, Mapping[str, str]], *, notices: list[str] | None = None,
                can_submit: bool = True) -> _Render:
        view = views.review_view(
            self._forms(case),
            self._header(case),
            values,
            case_plan=self._plan(case, values),
            hospitals=self._hospitals,
            destinations=self._destinations(case, values),
            notices=notices,
            can_submit=can_submit,
        )
        return _Render(review_card(view), "Gennemse og indsend")

    def _destinations(self, case: Case, values: Mapping[str, Mapping[str, str]]) -> list[str]:
        psg = self.org.portfolio_group.name
        if case.flags.get("returned"):
            return [f"{psg} igen (samme tråd som før)"]
        if case.flags.get("require_mtv"):
            return [f"{psg} (dialoggrundlag og Mini-MTV; løftet af samarbejdsforum)"]
        return views.destination_lines(self.org, values.get(ROUTE, {}))

    def _submitted(self, case: Case, values: Mapping[str, Mapping[str, str]], *, just_sent: bool = True,
                   lines: list[str] | None = None) -> _Render:
        mtv = None
        if case.route == ROUTE_PSG or case.flags.get("require_mtv"):
            mtv = views.mtv_progress_text(self._forms(case)[MINI_MTV], values.get(MINI_MTV, {}))
        destinations = [line for line in (lines or []) if not line.startswith("⚠")]
        notes = [line.lstrip("⚠ ") for line in (lines or []) if line.startswith("⚠")]
        if not destinations:
            destinations = views.destination_lines(self.org, values.get(ROUTE, {}))
            if case.flags.get("require_mtv") and case.route != ROUTE_PSG:
                destinations.append(f"{self.org.portfolio_group.name} (løftet af samarbejdsforum)")
        extra: list[tuple[str, str]] = []
        if case.flags.get("last_decision"):
            extra.append(("Seneste beslutning", str(case.flags["last_decision"])))
        if case.closed_reason and Phase(case.phase).closed:
            extra.append(("Evaluering" if Phase(case.phase) is Phase.EVALUATED else "Begrundelse", case.closed_reason))
        plan_flags = case.flags.get("plan") or {}
        if plan_flags and not Phase(case.phase).closed:
            extra.append(("Ansvarlige for opfølgning", ", ".join(plan_flags.get("names") or []) or "–"))
            extra.append(("Evaluering", views.da_date(str(plan_flags.get("evaluation_date", "")))))
        return _Render(
            messages.submitted_card(case.number, case.title, destinations, mtv, case_id=case.id,
                                    phase_label=self._phase_label(case), just_sent=just_sent, notes=notes or None,
                                    extra_facts=extra),
            f"Sag {case.number} er indsendt" if just_sent else f"Sag {case.number}: {self._phase_label(case)}",
        )

    # ------------------------------------------------------------------ page navigation
    async def _page_action(
        self, repo: Repo, actor: Actor, case: Case, answers: CaseAnswers, verb: str, data: Mapping[str, Any]
    ) -> _Render:
        phase = Phase(case.phase)
        if not phase.editable or phase is Phase.NO_DUTY:
            render = self._resume(case, answers)
            if phase.sent:
                render.card = messages.notice_card(
                    f"Sag {case.number} er allerede indsendt",
                    ["Et indsendt dialoggrundlag kan ikke længere ændres her. Skriv **mine sager** for at se sagen."],
                )
            return render
        step_key = data.get("step")
        card_rev = data.get("rev")
        if step_key == "gennemsyn" and verb == verbs.PAGE_PAUSE:
            return _Render(messages.paused_card(case.id, case.number, case.title, "Gennemse og indsend"), "Gemt")
        try:
            step = Step.parse(step_key) if isinstance(step_key, str) else None
        except ValueError:
            step = None
        if step is None or step.form is None or not isinstance(card_rev, int):
            return self._resume(case, answers, use_current=True)
        values_before = answers.values()
        plan_before = self._plan(case, values_before)
        if plan_before.index(step) is None:
            render = self._resume(case, answers, use_current=True)
            return self._with_notice(render, case, answers, "Kortet passede ikke længere til sagen. Her er den aktuelle side.")
        forms = self._forms(case)
        form = forms[step.form]
        page = form.pages[form.page_index[step.page or ""]]
        submitted = {
            key[len(verbs.INPUT_PREFIX):]: value
            for key, value in data.items()
            if isinstance(key, str) and key.startswith(verbs.INPUT_PREFIX)
        }
        stored = answers.by_form.get(form.id, {})
        stale = card_rev != case.revision
        notices: list[str] = []
        if stale:
            # Keep what was changed since this card was shown; take the rest from the card.
            for item_id in list(submitted):
                current = stored.get(item_id)
                if current is not None and current.revision > card_rev and current.value != engine.clean_text(submitted[item_id]):
                    del submitted[item_id]
                    item = form.items.get(item_id)
                    notices.append(f"«{item.short if item else item_id}» er ændret siden dette kort blev vist; den nyeste version er beholdt.")
        result = engine.read_page(
            form,
            page,
            submitted,
            {k: a.value for k, a in stored.items()},
            longtext_max=self.longtext_max,
            hospitals=self._hospitals,
            check_required=(verb == verbs.PAGE_NEXT and not stale),
        )
        changed = {k: v for k, v in result.values.items() if (stored[k].value if k in stored else "") != v}
        new_revision = case.revision + 1
        if changed:
            await repo.save_answers(case.id, form.id, changed, revision=new_revision, actor_id=actor.id)
            answers.apply(form.id, changed, new_revision)
        values = answers.values()
        new_plan = self._plan(case, values)
        if result.errors and verb != verbs.PAGE_NEXT:
            notices += [
                f"«{form.items[item_id].short}» blev ikke gemt: {message}" for item_id, message in result.errors.items()
            ]
        warnings = dict(result.warnings)
        if stale:
            notices.insert(0, "Du brugte et ældre kort. Her er sagen, som den ser ud nu.")
            target: Step | Phase = Step.parse(case.current_step) if new_plan.index(Step.parse(case.current_step)) is not None else step
        elif verb == verbs.PAGE_NEXT and result.errors:
            target = step
        elif verb == verbs.PAGE_NEXT:
            target = next_step(step, new_plan)
            if data.get("ret") == "review" and isinstance(target, Step) and REVIEW in new_plan.steps:
                target = REVIEW  # edited from the review: back to it (it shows anything now missing)
        elif verb == verbs.PAGE_BACK:
            target = previous_step(step, new_plan)
        else:
            target = step
        changes: dict[str, Any] = {}
        title = values.get(DIALOGGRUNDLAG, {}).get("h_task", "")
        if title != case.title:
            changes["title"] = title[:200]
        route_values = values.get(ROUTE, {})
        for key, value in (("route", route_values.get("route")), ("hospital", route_values.get("hospital"))):
            if value != getattr(case, key):
                changes[key] = value
        if isinstance(target, Phase):
            changes.update(phase=target.value, current_step=step.key)
            if target is Phase.NOT_NEEDED:
                changes["closed_reason"] = values.get(SCREENING, {}).get("need_reason", "")
        else:
            if target.phase.value != case.phase:
                changes["phase"] = target.phase.value
            if target.key != case.current_step:
                changes["current_step"] = target.key
        if changed or changes:
            saved = EventSpec(actor.id, actor.name, "svar_gemt", {"step": step.key, "items": sorted(changed)})
            case = await repo.update_case(case, event=saved if changed else None, **changes)
            if isinstance(target, Phase):
                await repo.add_event(case.id, actor_id=actor.id, actor_name=actor.name, kind=f"lukket_{target.value}",
                                     detail={"reason": case.closed_reason or ""})
        if isinstance(target, Phase):
            return self._resume(case, answers)
        if verb == verbs.PAGE_PAUSE and not result.errors and not stale:
            where = self._where(case, target)
            return _Render(messages.paused_card(case.id, case.number, case.title, where), "Dine svar er gemt")
        if target == step and (result.errors or stale or verb == verbs.PAGE_PAUSE):
            return self._page(case, answers, step, actor_name=actor.name, shown=result.rejected,
                              errors=result.errors if verb == verbs.PAGE_NEXT else {}, warnings=warnings,
                              notices=notices, return_to_review=data.get("ret") == "review")
        if warnings:
            notices += [f"{form.items[item_id].short}: {message}" for item_id, message in warnings.items()]
        return self._render_step(case, answers, target, actor_name=actor.name, notices=notices)

    def _where(self, case: Case, step: Step) -> str:
        if step.form is None:
            return "Gennemse og indsend"
        form = self._forms(case)[step.form]
        page = form.pages[form.page_index[step.page or ""]]
        return f"{form.short_title} – {page.title}"

    def _with_notice(self, render: _Render, case: Case, answers: CaseAnswers, text: str) -> _Render:
        step = Step.parse(case.current_step)
        if Phase(case.phase).editable and Phase(case.phase) is not Phase.NO_DUTY:
            return self._render_step(case, answers, step, notices=[text])
        return render

    async def _continue_anyway(self, repo: Repo, actor: Actor, case: Case, answers: CaseAnswers) -> _Render:
        if Phase(case.phase) is not Phase.NO_DUTY:
            return self._resume(case, answers)
        flags = {**case.flags, "continue_anyway": True}
        case.flags = flags
        first = Step(DIALOGGRUNDLAG, self._forms(case)[DIALOGGRUNDLAG].pages[0].id)
        case = await repo.update_case(case, event=EventSpec(actor.id, actor.name, "fortsat_frivilligt"), flags=flags,
                                      phase=Phase.DIALOGGRUNDLAG.value, current_step=first.key, closed_reason=None)
        return self._page(case, answers, first, actor_name=actor.name)

    async def _edit_from_review(
        self, repo: Repo, actor: Actor, case: Case, answers: CaseAnswers, data: Mapping[str, Any]
    ) -> _Render:
        phase = Phase(case.phase)
        if not phase.editable:
            return self._resume(case, answers)
        picked = data.get(data["pick"]) if isinstance(data.get("pick"), str) else None
        try:
            step = Step.parse(str(picked or data.get("step")))
        except ValueError:
            return self._resume(case, answers, use_current=True)
        if phase is Phase.NO_DUTY:
            # "Ret svarene" on the closing card reopens the screening.
            if step.form != SCREENING:
                return self._resume(case, answers)
            case = await repo.update_case(case, event=EventSpec(actor.id, actor.name, "genaabnet"),
                                          phase=Phase.SCREENING.value, current_step=step.key)
            return self._page(case, answers, step, actor_name=actor.name)
        if self._plan(case, answers.values()).index(step) is None:
            return self._resume(case, answers, use_current=True)
        return self._page(case, answers, step, actor_name=actor.name, return_to_review=phase is Phase.REVIEW)

    async def _submit(
        self, repo: Repo, actor: Actor, case: Case, answers: CaseAnswers, data: Mapping[str, Any]
    ) -> _Render:
        phase = Phase(case.phase)
        if phase.sent:
            return self._submitted(case, answers.values(), just_sent=False)
        if phase is not Phase.REVIEW:
            return self._resume(case, answers)
        values = answers.values()
        if data.get("rev") != case.revision:
            return self._review(case, values, notices=["Sagen er ændret, siden kortet blev vist. Gennemse den igen, før du indsender."])
        review = self._review(case, values)
        forms = self._forms(case)
        case_plan = self._plan(case, values)
        if any(engine.missing_required(forms[f], values.get(f, {})) for f in case_plan.forms()):
            return review
        ctx = _Ctx()
        case, lines = await self.forums.submit(repo, case, answers, actor.id, actor.name, ctx)
        render = self._submitted(case, values, lines=lines)
        render.queued = ctx.queued
        return render

    # ------------------------------------------------------------------ co-authors
    async def _coauthors(self, repo: Repo, actor: Actor, case: Case, verb: str, data: Mapping[str, Any],
                         looked_up: Mapping[str, PersonInfo]) -> _Render:
        forums = ForumRepo(repo.conn)
        editable = Phase(case.phase).editable
        notices: list[str] = []
        info: list[str] = []
        ctx = _Ctx()
        if verb == verbs.COAUTHORS_ADD:
            raw = data.get(coauthor_cards.COAUTHORS_INPUT)
            ids = [p.strip() for p in (raw if isinstance(raw, str) else "").split(",") if p.strip()]
            ids = [i for i in ids if len(i) <= 128 and i != case.initiator_id]
            current = await forums.participants(case.id)
            if not editable:
                notices.append("Sagen er indsendt; medforfattere kan ikke længere ændres.")
            elif not ids:
                notices.append("Vælg de personer, du vil tilføje.")
            elif len(set(current) | set(ids)) > MAX_COAUTHORS:
                notices.append(f"En sag kan højst have {MAX_COAUTHORS} medforfattere.")
            else:
                found = looked_up
                added = []
                for user_id in ids:
                    person = found.get(user_id, PersonInfo(user_id))
                    await forums.remember_person(StoredPerson(user_id, mri=person.mri, name=person.name,
                                                              upn=person.upn, tenant_id=case.tenant_id))
                    if await forums.add_participant(case.id, user_id, by=actor.id):
                        added.append(user_id)
                        await repo.add_event(case.id, actor_id=actor.id, actor_name=actor.name,
                                             kind="medforfatter_tilfoejet",
                                             detail={"user": user_id, "name": person.name})
                if added:
                    names = await self.forums.names(forums, added)
                    info.append("Tilføjet: " + ", ".join(names.get(a) or "(ukendt navn)" for a in added) + ".")
                    await self.forums.notify_people(
                        repo, ctx, case, added, f"Du er medforfatter på sag {case.number}",
                        [f"{md_escape(actor.name)} har tilføjet dig som medforfatter. Du kan se og rette "
                         "sagen her i chatten, indtil den er indsendt; den står også under **mine sager**."],
                        link_thread=None, open_case_button=True, dedup=f"coauthor:{case.id}:{case.revision}")
                else:
                    info.append("De valgte personer var allerede medforfattere.")
        elif verb == verbs.COAUTHORS_REMOVE:
            raw = data.get("user") or data.get(coauthor_cards.REMOVE_COAUTHORS_INPUT)
            users = [u.strip() for u in (raw if isinstance(raw, str) else "").split(",") if u.strip()][:50]
            if not editable:
                notices.append("Sagen er indsendt; medforfattere kan ikke længere ændres.")
            for user in users if editable else []:
                if await forums.remove_participant(case.id, user):
                    name = (await self.forums.names(forums, [user])).get(user, "")
                    await repo.add_event(case.id, actor_id=actor.id, actor_name=actor.name,
                                         kind="medforfatter_fjernet", detail={"user": user, "name": name})
                    info.append(f"{name or 'Medforfatteren'} er fjernet.")
        ids = await forums.participants(case.id)
        names = await self.forums.names(forums, ids)
        view = coauthor_cards.CoauthorView(
            case_id=case.id, number=case.number, title=case.title, editable=editable,
            coauthors=tuple(coauthor_cards.Person(i, names.get(i, "")) for i in ids),
            notices=tuple(notices), info=tuple(info))
        return _Render(coauthor_cards.coauthors_card(view), "Medforfattere", queued=ctx.queued)

    # ------------------------------------------------------------------ conversation state
    async def _remember(self, repo: Repo, actor: Actor, conversation: Conversation, **extra: Any) -> None:
        """Keep how to reach this conversation (for proactive messages) in its conversation state.

        Skips the read when this process already stored exactly this reference (a bounded memo of what
        it wrote; the database stays the record, and the write is idempotent)."""
        wanted = {
            **extra,
            "user_id": actor.id,
            "user_name": actor.name,
            "tenant_id": actor.tenant_id,
            "conversation_id": conversation.conversation_id,
            "service_url": conversation.service_url,
            "channel_id": conversation.channel_id,
            "conversation_type": conversation.conversation_type,
        }
        fingerprint = tuple(sorted((k, str(v)) for k, v in wanted.items()))
        if self._remembered.get(conversation.key) == fingerprint:
            return
        for _ in range(2):
            state, etag = await repo.load_state(conversation.key)
            if all(state.get(k) == v for k, v in wanted.items()):
                break
            try:
                await repo.save_state(conversation.key, {**state, **wanted, "seen": today_iso(self.clock())}, etag)
                break
            except StateConflict:
                continue  # another turn wrote it just now: read again
        if conversation.conversation_type == "personal" and actor.id:
            await ForumRepo(repo.conn).remember_person(StoredPerson(
                actor.id, name=actor.name, tenant_id=actor.tenant_id, service_url=conversation.service_url,
                conversation_id=conversation.conversation_id))
        self._remembered[conversation.key] = fingerprint
        self._remembered.move_to_end(conversation.key)
        while len(self._remembered) > REMEMBER_MEMO_SIZE:
            self._remembered.popitem(last=False)


def today_iso(now: datetime) -> str:
    return now.astimezone(COPENHAGEN).date().isoformat()
