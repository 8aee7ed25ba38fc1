"""Forums in Teams: set-up of channels, routing of submitted cases, decisions on the case card, reminders.

No SDK here. The bot's edge turns channel activities into calls of :class:`ForumService` and gives it what only
the edge can know (the team roster, who a picked person is). Everything that goes out to Teams on its own
(new threads, card updates, status replies, 1:1 messages, reminders) is written to the outbox in the same
transaction as the change that causes it; ``bot.delivery`` sends it.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from adaptive_cards import forum as forum_cards
from adaptive_cards import setup as setup_cards
from adaptive_cards import verbs
from adaptive_cards.common import COPENHAGEN, Json, card_activity, da_date, md_escape
from adaptive_cards.messages import case_notice_card, error_card, notice_card
from dialogs import engine, process
from dialogs.flow import DIALOGGRUNDLAG, FORM_ORDER, MINI_MTV, REVIEW, ROUTE_PSG, Phase, Step, plan
from dialogs.forms_model import Form, FormCatalog, ItemKind
from dialogs.organisation import ForumRef, Organisation
from dialogs.teams import is_entra_object_id
from dialogs.views import da_date as da_iso_date
from dialogs.views import mtv_progress_text
from storage.db import Database
from storage.forums import QUEUED, WAITING, CaseThread, ForumRepo
from storage.forums import Person as StoredPerson
from storage.outbox import THREAD_URL_PLACEHOLDER, OutboxRepo
from storage.repositories import Case, CaseAnswers, EventSpec, Repo, RevisionConflict
from storage.teams import TeamRepo

log = logging.getLogger(__name__)

PEOPLE_MEMO_SIZE = 10_000



@dataclass(frozen=True)
class PersonInfo:
    """A person as the edge knows them (team roster or a member lookup)."""

    user_id: str  # Entra object id
    mri: str = ""  # 29:… Teams id
    name: str = ""
    upn: str = ""


@dataclass(frozen=True)
class ChannelContext:
    team_id: str
    channel_id: str
    tenant_id: str
    service_url: str
    bot_id: str


@dataclass(frozen=True)
class ForumActor:
    id: str  # Entra object id (or Teams id without one)
    name: str
    mri: str = ""
    upn: str = ""


# Looks people up by Entra object id (the people picker's values); the edge asks Teams.
Resolver = Callable[[list[str]], Awaitable[dict[str, PersonInfo]]]


async def _no_resolver(ids: list[str]) -> dict[str, PersonInfo]:
    return {}


@dataclass
class Outgoing:
    """What a forum call answers: a card for the user, plus whether the outbox got new work."""

    card: Json
    summary: str = ""
    queued: bool = False


@dataclass
class _Ctx:
    """State of one transaction: what it queued, and the people it wrote (memoised once it commits)."""

    queued: bool = False
    fresh_threads: set[str] = field(default_factory=set)
    remembered: dict[str, tuple[str, ...]] = field(default_factory=dict)


def case_forms(catalog: FormCatalog, case: Case) -> dict[str, Form]:
    return {form_id: catalog.get(form_id, case.form_versions.get(form_id)) for form_id in FORM_ORDER}


def thread_key(channel_id: str) -> str:
    return channel_id


def personal_target(person: StoredPerson | None, user_id: str, *, service_url: str, tenant_id: str,
                    bot_id: str) -> dict[str, Any]:
    """Where a 1:1 message to ``user_id`` goes: their known chat, or a new one opened with their id."""
    if person is not None and person.conversation_id and person.service_url:
        return {"service_url": person.service_url, "conversation_id": person.conversation_id,
                "tenant_id": person.tenant_id or tenant_id}
    return {"service_url": (person.service_url if person and person.service_url else service_url),
            "user_id": user_id, "tenant_id": tenant_id, "bot_id": bot_id}


class ForumService:
    def __init__(
        self,
        database: Database,
        catalog: FormCatalog,
        organisation: Organisation,
        *,
        admins: Sequence[str] = (),
        longtext_max: int = 2000,
        followup_days: int = 30,
        evaluation_notice_days: int = 14,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        resolver: Resolver = _no_resolver,
    ) -> None:
        self.db = database
        self.catalog = catalog
        self.org = organisation
        self.env_admins = [a.strip() for a in admins if a.strip()]
        self.longtext_max = longtext_max
        self.followup_days = followup_days
        self.evaluation_notice_days = evaluation_notice_days
        self.clock = clock
        self.resolver = resolver
        self.on_queued: Callable[[], None] = lambda: None  # the delivery worker's wake()
        self._people_memo: OrderedDict[str, tuple[str, ...]] = OrderedDict()

    # ================================================================== helpers
    def _forum_for_case(self, case: Case, kind: str) -> ForumRef | None:
        return self.org.forum_of_kind(kind, case.hospital)

    def _decision_body(self) -> str:
        return self.org.decision_body.name

    def _fmt(self, text: str) -> str:
        return text.replace("{decision_body}", self._decision_body())

    def is_env_admin(self, actor: ForumActor) -> bool:
        keys = {actor.id.casefold()}
        if actor.upn:
            keys.add(actor.upn.casefold())
        return any(a.casefold() in keys for a in self.env_admins)

    async def is_admin(self, forums: ForumRepo, actor: ForumActor) -> bool:
        return self.is_env_admin(actor) or actor.id in await forums.admins()

    async def _run(self, op: Callable[[Repo, _Ctx], Awaitable[Outgoing]], activity_id: str | None,
                   on_duplicate: Callable[[Repo], Awaitable[Outgoing]] | None = None) -> Outgoing:
        """One transaction per call, redone on a concurrent write (like CaseService.action)."""
        for attempt in range(3):
            ctx = _Ctx()
            try:
                async with self.db.transaction() as repo:
                    if activity_id and not await repo.claim_activity(activity_id):
                        if on_duplicate is None:
                            return Outgoing({}, "")
                        out = await on_duplicate(repo)
                    else:
                        out = await op(repo, ctx)
                out.queued = ctx.queued
                self._memo_people(ctx)
                if ctx.queued:
                    self.on_queued()
                return out
            except RevisionConflict:
                log.info("write conflict in a forum action (attempt %d), retrying", attempt + 1)
        return Outgoing(error_card("Sagen blev ændret samtidig et andet sted.", "Prøv igen om et øjeblik."))

    async def names(self, forums: ForumRepo, user_ids: list[str]) -> dict[str, str]:
        people = await forums.people(user_ids)
        return {uid: (people[uid].name if uid in people and people[uid].name else "") for uid in user_ids}

    async def _remember_people(self, forums: ForumRepo, people: Sequence[PersonInfo], tenant_id: str,
                               ctx: _Ctx | None = None) -> None:
        """Store names and Teams ids (a team roster on every set-up click: only what this process has not
        written already — the memo is filled once the transaction has committed, see ``_run``)."""
        for person in people:
            if not person.user_id:
                continue
            known = (person.mri, person.name, person.upn, tenant_id)
            if self._people_memo.get(person.user_id) == known:
                continue
            await forums.remember_person(StoredPerson(person.user_id, mri=person.mri, name=person.name,
                                                      upn=person.upn, tenant_id=tenant_id))
            if ctx is not None:
                ctx.remembered[person.user_id] = known

    def _memo_people(self, ctx: _Ctx) -> None:
        for user_id, known in ctx.remembered.items():
            self._people_memo[user_id] = known
            self._people_memo.move_to_end(user_id)
        while len(self._people_memo) > PEOPLE_MEMO_SIZE:
            self._people_memo.popitem(last=False)

    # ================================================================== case card
    async def case_card(self, repo: Repo, case: Case, answers: CaseAnswers, forum: ForumRef, *,
                        thread_kind: str = "case", actor: ForumActor | None = None,
                        notices: Sequence[str] = (), info: Sequence[str] = ()) -> Json:
        """The compact case card of ``forum``'s thread; with the actor's secretariat actions if they have any."""
        return forum_cards.case_card(await self.case_card_view(repo, case, answers, forum, thread_kind=thread_kind,
                                                               actor=actor, notices=notices, info=info))

    async def case_card_view(self, repo: Repo, case: Case, answers: CaseAnswers, forum: ForumRef, *,
                             thread_kind: str = "case", actor: ForumActor | None = None,
                             notices: Sequence[str] = (), info: Sequence[str] = ()) -> forum_cards.CaseCardView:
        forums = ForumRepo(repo.conn)
        members = await forums.members(forum.id)
        coauthor_ids = await forums.participants(case.id)
        people = await forums.people(members + coauthor_ids)
        refresh = [people[m].mri if m in people and people[m].mri else f"8:orgid:{m}" for m in members]
        actions: list[tuple[str, str]] = []
        if actor is not None and actor.id in members:
            actions = self._actions(case, forum)
            # Teams refreshes the card for the secretariat right after the bot updates it: the one who just
            # decided still sees that it was recorded.
            recent = self.clock() - case.updated_at < timedelta(minutes=10)
            if not info and recent and case.flags.get("last_decision_by") == actor.id and case.flags.get("last_decision"):
                info = [f"Du har registreret: {case.flags['last_decision']}."]
        values = answers.values()
        forms = case_forms(self.catalog, case)
        mtv = None
        if case.route == ROUTE_PSG or case.flags.get("require_mtv") or values.get(MINI_MTV):
            mtv = mtv_progress_text(forms[MINI_MTV], values.get(MINI_MTV, {}))
        plan_flags = case.flags.get("plan") or {}
        plan_facts: list[tuple[str, str]] = []
        if Phase(case.phase) is Phase.EVALUATED:
            plan_facts.append(("Evaluering", case.closed_reason or "–"))
        elif plan_flags:
            names = ", ".join(plan_flags.get("names") or []) or "–"
            plan_facts.append(("Ansvarlige for opfølgning", names))
            if plan_flags.get("evaluation_date"):
                plan_facts.append(("Evaluering", da_iso_date(plan_flags["evaluation_date"])))
        phase = Phase(case.phase)
        label = phase.label
        if phase is Phase.DECISION:
            label = f"Til afgørelse i {self._decision_body()}"
        elif phase is Phase.REVIEW and case.flags.get("returned"):
            label = "Returneret til supplering"
        elif phase is Phase.MINI_MTV and case.flags.get("require_mtv"):
            label = "Løftet til Porteføljestyregruppen – Mini-MTV udfyldes"
        return forum_cards.CaseCardView(
            case_id=case.id,
            forum_id=forum.id,
            forum_name=forum.name,
            orientation=thread_kind == "orientation",
            number=case.number,
            title=case.title,
            phase_label=label,
            closed=phase.closed,
            route_label=self._route_label(case),
            initiator=case.initiator_name,
            organisation=values.get(DIALOGGRUNDLAG, {}).get("h_initiator_org", ""),
            coauthors=tuple(people[c].name if c in people and people[c].name else "(ukendt navn)"
                            for c in coauthor_ids),
            mtv_progress=mtv,
            updated_at=case.updated_at,
            last_decision=case.flags.get("last_decision"),
            plan=tuple(plan_facts),
            refresh_user_ids=tuple(refresh),  # the card keeps Teams' 60
            actions=tuple(actions),
            notices=tuple(notices),
            info=tuple(info),
        )

    def _route_label(self, case: Case) -> str:
        """The forums the case has passed through, e.g. «Samarbejdsforum … → Porteføljestyregruppen →
        Strategisk Sundhedsforum»."""
        psg = self.org.portfolio_group.name
        hospital = self.org.hospital(case.hospital)
        path = [psg] if case.route == ROUTE_PSG else [hospital.forum if hospital else "Samarbejdsforum"]
        if case.route != ROUTE_PSG and case.flags.get("require_mtv"):
            path.append(psg)
        psg_decision = (case.flags.get("decisions") or {}).get(process.PSG) or {}
        if psg_decision.get("outcome") == "afgoerelse" or Phase(case.phase) in (
                Phase.DECISION, Phase.PLANNING, Phase.FOLLOW_UP, Phase.NO_AGREEMENT):
            path.append(self._decision_body())
        return " → ".join(path)

    def _actions(self, case: Case, forum: ForumRef) -> list[tuple[str, str]]:
        phase = Phase(case.phase)
        actions: list[tuple[str, str]] = []
        if process.outcomes_for(forum.kind, phase):
            title = {"hospital": "Registrér beslutning", "psg": "Registrér Porteføljestyregruppens behandling",
                     "decision": "Registrér afgørelse"}[forum.kind]
            actions.append((title, verbs.FORUM_DECIDE_START))
        if process.can_plan(forum.kind, phase):
            has_plan = bool(case.flags.get("plan"))
            actions.append(("Ret plan for opfølgning" if has_plan else "Planlæg opfølgning", verbs.FORUM_PLAN_START))
            if process.can_evaluate(forum.kind, phase, has_plan):
                actions.append(("Registrér evaluering", verbs.FORUM_EVALUATE_START))
        return actions

    # ================================================================== threads and notifications
    async def _open_thread(self, repo: Repo, ctx: _Ctx, case: Case, answers: CaseAnswers, forum: ForumRef,
                           kind: str) -> bool:
        """Make sure the case has a thread in ``forum``'s channel (queued now, or waiting for a channel).

        Returns False when it has to wait (no channel bound, or the bot was removed from its team)."""
        forums = ForumRepo(repo.conn)
        existing = {t.forum_id: t for t in await forums.threads(case.id)}
        thread = existing.get(forum.id)
        if thread is not None:
            if thread.kind != kind:
                await forums.set_thread_kind(case.id, forum.id, kind)
            return thread.state == QUEUED or await self._queue_thread(repo, ctx, case, answers, forum, kind)
        await forums.add_thread(CaseThread(case.id, forum.id, kind, WAITING, "", "", "", "", ""))
        return await self._queue_thread(repo, ctx, case, answers, forum, kind)

    async def _queue_thread(self, repo: Repo, ctx: _Ctx, case: Case, answers: CaseAnswers, forum: ForumRef,
                            kind: str) -> bool:
        forums = ForumRepo(repo.conn)
        binding = await forums.binding(forum.id)
        team = await TeamRepo(repo.conn).get(binding.team_id) if binding else None
        if binding is None or team is None or not team.installed:
            await self._ask_admins(repo, ctx, forum, team.service_url if team else "", case.tenant_id)
            return False
        parent_key = f"thread:{case.id}:{forum.id}"
        view = await self.case_card_view(repo, case, answers, forum, thread_kind=kind)
        await OutboxRepo(repo.conn).enqueue(
            "create_thread",
            {"service_url": team.service_url, "tenant_id": team.tenant_id, "channel_id": binding.channel_id,
             "team_id": team.team_id, "bot_id": team.bot_id},
            card_activity(forum_cards.case_card(view), forum_cards.case_card_summary(view)),
            dedup_key=parent_key,
            thread_key=thread_key(binding.channel_id),
        )
        await forums.queue_thread(case.id, forum.id, parent_key=parent_key, team_id=team.team_id,
                                  channel_id=binding.channel_id, service_url=team.service_url,
                                  tenant_id=team.tenant_id, kind=kind)
        ctx.queued = True
        ctx.fresh_threads.add(forum.id)
        return True

    async def _ask_admins(self, repo: Repo, ctx: _Ctx, forum: ForumRef, service_url: str, tenant_id: str) -> None:
        """Tell every admin (once a day per forum) that a forum needs a channel."""
        forums = ForumRepo(repo.conn)
        admins = [a for a in self.env_admins if is_entra_object_id(a)] + await forums.admins()
        if not admins:
            log.warning("forum %s has no channel and no admin can be told (BOT_ADMINS is empty)", forum.id)
            return
        people = await forums.people(admins)
        any_url, bot_id = await TeamRepo(repo.conn).any_contact()
        fallback_url = service_url or any_url
        if not fallback_url:
            log.warning("forum %s has no channel; no service URL known to tell the admins yet", forum.id)
            return
        today = self.clock().astimezone(COPENHAGEN).date().isoformat()
        card = notice_card(
            f"{forum.name} mangler en kanal",
            [f"En sag venter på at blive sendt til **{md_escape(forum.name)}**, men forummet er ikke knyttet til "
             "en kanal i Teams endnu.",
             "Gå til forummets kanal, skriv **@Opgaveflytning opsætning**, og knyt kanalen til forummet. "
             "Ventende sager sendes straks derefter."],
            buttons=False,
        )
        outbox = OutboxRepo(repo.conn)
        for admin in dict.fromkeys(admins):
            queued = await outbox.enqueue(
                "send_personal",
                personal_target(people.get(admin), admin, service_url=fallback_url, tenant_id=tenant_id,
                                bot_id=bot_id),
                card_activity(card, f"{forum.name} mangler en kanal"),
                dedup_key=f"forum-missing:{forum.id}:{today}:{admin}",
                thread_key=f"personal:{admin}",
            )
            ctx.queued = ctx.queued or queued

    async def _announce(self, repo: Repo, ctx: _Ctx, case: Case, answers: CaseAnswers, actor_id: str,
                        status_lines: list[str], *, personal_title: str, personal_lines: list[str],
                        open_case_button: bool = False, include_actor: bool = False) -> None:
        """After a transition: update every root card, post a status reply in every thread of the case, and
        tell the initiator and co-authors in 1:1 (with a link to the thread)."""
        forums = ForumRepo(repo.conn)
        outbox = OutboxRepo(repo.conn)
        threads = [t for t in await forums.threads(case.id) if t.state == QUEUED]
        status = forum_cards.status_message(status_lines)
        for thread in threads:
            forum = self.org.forum(thread.forum_id)
            if forum is None:
                continue
            if thread.forum_id in ctx.fresh_threads:
                continue  # just created with the current card
            target = {"service_url": thread.service_url, "tenant_id": thread.tenant_id, "parent": thread.parent_key,
                      "team_id": thread.team_id}
            card = await self.case_card(repo, case, answers, forum, thread_kind=thread.kind)
            await outbox.enqueue("update", target, card_activity(card),
                                 dedup_key=f"card:{case.id}:{forum.id}:{case.revision}",
                                 thread_key=thread_key(thread.channel_id))
            await outbox.enqueue("reply", target, status,
                                 dedup_key=f"status:{case.id}:{forum.id}:{case.revision}",
                                 thread_key=thread_key(thread.channel_id))
            ctx.queued = True
        home_kind = process.HOME_FORUM_KIND.get(Phase(case.phase))
        home = next((t for t in threads if (f := self.org.forum(t.forum_id)) and f.kind == home_kind), None)
        home = home or (threads[-1] if threads else None)
        recipients = [case.initiator_id] + await forums.participants(case.id)
        if not include_actor:
            recipients = [r for r in recipients if r != actor_id]
        await self.notify_people(repo, ctx, case, recipients, personal_title, personal_lines,
                                 link_thread=home, open_case_button=open_case_button,
                                 dedup=f"notify:{case.id}:{case.revision}")

    async def notify_people(self, repo: Repo, ctx: _Ctx, case: Case, user_ids: list[str], title: str,
                            lines: list[str], *, link_thread: CaseThread | None, open_case_button: bool,
                            dedup: str) -> None:
        if not user_ids:
            return
        forums = ForumRepo(repo.conn)
        people = await forums.people(user_ids)
        outbox = OutboxRepo(repo.conn)
        any_url, bot_id = await TeamRepo(repo.conn).any_contact()
        known = [p.service_url for p in people.values() if p.service_url]
        service_url = (link_thread.service_url if link_thread else "") or (known[0] if known else any_url)
        if not service_url:
            log.warning("no service URL known to notify people about %s", case.number)
            return
        body = case_notice_card(case.id, case.title, title, lines, open_case=open_case_button,
                                thread_url=THREAD_URL_PLACEHOLDER if link_thread is not None else None)
        for user_id in dict.fromkeys(user_ids):
            target = personal_target(people.get(user_id), user_id, service_url=service_url,
                                     tenant_id=case.tenant_id, bot_id=bot_id)
            if link_thread is not None:
                target["link_parent"] = link_thread.parent_key
            queued = await outbox.enqueue("send_personal", target, card_activity(body, title),
                                          dedup_key=f"{dedup}:{user_id}", thread_key=f"personal:{user_id}")
            ctx.queued = ctx.queued or queued

    # ================================================================== submission (called by CaseService)
    async def submit(self, repo: Repo, case: Case, answers: CaseAnswers, actor_id: str, actor_name: str,
                     ctx: _Ctx | None = None) -> tuple[Case, list[str]]:
        """Send a reviewed case to its forum(s) inside the submitting turn's transaction.

        Returns the updated case and the lines telling the initiator where it went (and what waits)."""
        ctx = ctx if ctx is not None else _Ctx()
        returned = bool(case.flags.get("returned"))
        resubmitted = returned or bool(case.flags.get("require_mtv"))
        to_psg = case.route == ROUTE_PSG or resubmitted
        flags = {k: v for k, v in case.flags.items() if k != "returned"}
        kind = "genindsendt" if resubmitted else "indsendt"
        event = EventSpec(actor_id, actor_name, kind,
                          {"route": case.route, "hospital": case.hospital, "forms": case.form_versions,
                           "to": "psg" if to_psg else "samarbejdsforum"})
        case = await repo.update_case(case, event=event, phase=(Phase.PSG if to_psg else Phase.FORUM).value,
                                      submitted_at=self.clock(), current_step=REVIEW.key, flags=flags)
        psg = self.org.forum_of_kind("psg")
        assert psg is not None
        lines: list[str] = []
        waiting: list[str] = []
        if to_psg:
            if not await self._open_thread(repo, ctx, case, answers, psg, "case"):
                waiting.append(psg.name)
            lines.append(f"{psg.name} (dialoggrundlag og Mini-MTV)")
        else:
            hospital_forum = self._forum_for_case(case, "hospital")
            if hospital_forum is not None:
                if not await self._open_thread(repo, ctx, case, answers, hospital_forum, "case"):
                    waiting.append(hospital_forum.name)
                lines.append(hospital_forum.name)
            if not await self._open_thread(repo, ctx, case, answers, psg, "orientation"):
                waiting.append(psg.name)
            lines.append(f"{psg.name} til orientering")
        if case.flags.get("require_mtv") and not returned:
            status = (f"**{case.number}**: Mini-MTV er udfyldt af {md_escape(actor_name)}, og sagen er nu til "
                      f"behandling i {psg.name}.")
        elif returned:
            status = f"**{case.number}** er suppleret og indsendt igen af {md_escape(actor_name)}."
        else:
            status = f"**{case.number}** er indsendt af {md_escape(actor_name)}."
        notes = [f"⚠ {name} har endnu ingen kanal i Teams. Sagen venter og sendes, så snart en "
                 "administrator har knyttet en kanal til forummet; administratorerne har fået besked."
                 for name in waiting]
        await self._announce(repo, ctx, case, answers, actor_id, [status],
                             personal_title=f"Sag {case.number} er indsendt af {actor_name}",
                             personal_lines=["Sendt til: " + "; ".join(lines) + ".", *notes])
        if not waiting:
            # The submitter saw the confirmation in place; this message brings the link to the new thread.
            home = (await self._thread(ForumRepo(repo.conn), case.id,
                                       psg.id if to_psg else self._home_forum_id(case, psg)))
            first = lines[0].split(" (")[0]
            await self.notify_people(
                repo, ctx, case, [actor_id], f"Sag {case.number} er slået op hos {first}",
                ["Følg sagen i tråden i forummets kanal. Du får besked her, når forummet har behandlet den."],
                link_thread=home, open_case_button=False, dedup=f"posted:{case.id}:{case.revision}")
        return case, lines + notes

    def _home_forum_id(self, case: Case, psg: ForumRef) -> str:
        hospital = self._forum_for_case(case, "hospital")
        return hospital.id if hospital else psg.id

    # ================================================================== channel commands
    async def setup(self, actor: ForumActor, channel: ChannelContext, channel_name: str,
                    roster: Sequence[PersonInfo], activity_id: str | None) -> Outgoing:
        async def op(repo: Repo, ctx: _Ctx) -> Outgoing:
            forums = ForumRepo(repo.conn)
            await self._remember_people(forums, roster, channel.tenant_id, ctx)
            if not await self.is_admin(forums, actor):
                return self._not_admin()
            return Outgoing(await self._setup_card(repo, actor, channel, channel_name, roster), "Opsætning")
        return await self._run(op, activity_id)

    @staticmethod
    def _not_admin() -> Outgoing:
        return Outgoing(notice_card(
            "Kun administratorer kan sætte kanaler op",
            ["Opsætning af fora og sekretariater kræver, at du er administrator af Opgaveflytning. "
             "Bed en administrator om at tilføje dig (via **@Opgaveflytning opsætning**)."],
            buttons=False), "Ingen adgang")

    async def _setup_card(self, repo: Repo, actor: ForumActor, channel: ChannelContext, channel_name: str,
                          roster: Sequence[PersonInfo], *, notices: Sequence[str] = (),
                          info: Sequence[str] = (), focus: str | None = None) -> Json:
        forums = ForumRepo(repo.conn)
        teams = TeamRepo(repo.conn)
        team = await teams.get(channel.team_id)
        bindings = await forums.bindings()
        waiting = await forums.waiting_counts()
        choices: list[setup_cards.ForumChoice] = []
        bound: list[setup_cards.BoundForum] = []
        for forum in self.org.forums():
            binding = bindings.get(forum.id)
            where = None
            if binding is not None:
                other = team if binding.team_id == channel.team_id else await teams.get(binding.team_id)
                channel_label = (other.channels.get(binding.channel_id) if other else None) or "en kanal"
                where = f"{other.name if other and other.name else 'et team'} › {channel_label}"
            here = binding is not None and binding.channel_id == channel.channel_id
            choices.append(setup_cards.ForumChoice(forum.id, forum.name, where, here))
            if here:
                member_ids = await forums.members(forum.id)
                names = await self.names(forums, member_ids)
                bound.append(setup_cards.BoundForum(
                    forum.id, forum.name, tuple(setup_cards.Person(m, names.get(m, "")) for m in member_ids)))
        admin_ids = await forums.admins()
        admin_names = await self.names(forums, admin_ids + self.env_admins)
        admins: list[tuple[setup_cards.Person, bool]] = [
            (setup_cards.Person(a, admin_names.get(a, "")), False) for a in self.env_admins]
        admins += [(setup_cards.Person(a, admin_names.get(a, "")), True) for a in admin_ids
                   if a not in self.env_admins]
        view = setup_cards.SetupView(
            channel_id=channel.channel_id,
            channel_name=channel_name or (team.channels.get(channel.channel_id, "") if team else "") or "kanalen",
            team_name=team.name if team else "",
            forums=tuple(choices),
            bound=tuple(bound),
            roster=tuple(setup_cards.Person(p.user_id, p.name) for p in roster[:100] if p.user_id),
            admins=tuple(admins),
            waiting=waiting,
            notices=tuple(notices),
            info=tuple(info),
            focus=focus,
        )
        return setup_cards.setup_card(view)

    async def setup_action(self, actor: ForumActor, channel: ChannelContext, channel_name: str, verb: str,
                           data: Mapping[str, Any], roster: Sequence[PersonInfo],
                           activity_id: str | None) -> Outgoing:
        looked_up: dict[str, PersonInfo] = {p.user_id: p for p in roster}
        if verb in (verbs.SETUP_MEMBER_ADD, verbs.SETUP_ADMIN_ADD):
            keys = [setup_cards.ADMINS_INPUT, *(setup_cards.member_input_id(f.id) for f in self.org.forums())]
            looked_up = await self.look_up(data, keys, roster)

        async def op(repo: Repo, ctx: _Ctx) -> Outgoing:
            forums = ForumRepo(repo.conn)
            await self._remember_people(forums, roster, channel.tenant_id, ctx)
            if not await self.is_admin(forums, actor):
                return self._not_admin()
            if data.get("channel") not in (None, channel.channel_id):
                return Outgoing(await self._setup_card(
                    repo, actor, channel, channel_name, roster,
                    notices=["Kortet hører til en anden kanal. Her er opsætningen af denne kanal."]))
            notices: list[str] = []
            info: list[str] = []
            focus: str | None = _str(data.get("forum")) or None
            if verb == verbs.SETUP_BIND:
                focus = _str(data.get(setup_cards.BIND_INPUT)) or None
                await self._bind(repo, ctx, actor, channel, data, notices, info)
            elif verb == verbs.SETUP_UNBIND:
                forum = self.org.forum(_str(data.get("forum")))
                if forum and await forums.unbind(forum.id, channel.channel_id):
                    info.append(f"{forum.name} er fjernet fra kanalen. Nye sager til forummet venter, til det "
                                "knyttes til en kanal igen.")
            elif verb == verbs.SETUP_MEMBER_ADD:
                if await self._add_members(repo, actor, channel, data, looked_up, notices, info):
                    added_to = self.org.forum(_str(data.get("forum")))
                    if added_to is not None:
                        await self._refresh_cards(repo, ctx, added_to)
            elif verb == verbs.SETUP_MEMBER_REMOVE:
                forum = self.org.forum(_str(data.get("forum")))
                focus = forum.id if forum else None
                users = _ids(data.get("user")) or _ids(data.get(setup_cards.remove_input_id(forum.id) if forum else ""))
                if forum is None or not users:
                    notices.append("Vælg de personer, der skal fjernes fra sekretariatet.")
                removed = False
                for user in users:
                    if forum and await forums.remove_member(forum.id, user):
                        removed = True
                        name = (await self.names(forums, [user])).get(user) or "Personen"
                        info.append(f"{name} er fjernet fra sekretariatet for {forum.name}.")
                if forum and removed:
                    await self._refresh_cards(repo, ctx, forum)
            elif verb == verbs.SETUP_ADMIN_ADD:
                picked = await self._picked(forums, data.get(setup_cards.ADMINS_INPUT), looked_up)
                if not picked:
                    notices.append("Vælg en eller flere personer at gøre til administratorer.")
                for person in picked:
                    if await forums.add_admin(person.user_id, by=actor.id):
                        info.append(f"{person.name or person.user_id} er nu administrator.")
            elif verb == verbs.SETUP_ADMIN_REMOVE:
                for user in _ids(data.get("user")) or _ids(data.get(setup_cards.REMOVE_ADMINS_INPUT)):
                    if user == actor.id:
                        notices.append("Du kan ikke fjerne dig selv som administrator.")
                    elif await forums.remove_admin(user):
                        info.append("Administratoren er fjernet.")
            elif verb == verbs.SETUP_SHOW:
                picked_forum = self.org.forum(_str(data.get(setup_cards.FOCUS_INPUT)))
                focus = picked_forum.id if picked_forum else None
            return Outgoing(await self._setup_card(repo, actor, channel, channel_name, roster,
                                                   notices=notices, info=info, focus=focus or None), "Opsætning")
        return await self._run(op, activity_id)

    async def look_up(self, data: Mapping[str, Any], keys: Sequence[str],
                      roster: Sequence[PersonInfo] = ()) -> dict[str, PersonInfo]:
        """Who the people picked in these inputs are (team roster first, then Teams). Call it OUTSIDE a
        transaction: the lookup may read the database and ask the Bot Connector."""
        by_id = {p.user_id: p for p in roster}
        ids = [i for key in keys for i in _ids(data.get(key))]
        missing = list(dict.fromkeys(i for i in ids if i not in by_id))
        if missing:
            by_id.update(await self.resolver(missing))
        return by_id

    async def _picked(self, forums: ForumRepo, raw: Any, looked_up: Mapping[str, PersonInfo]) -> list[PersonInfo]:
        """People chosen in a people picker (comma-separated Entra ids), with names where known."""
        ids = _ids(raw)
        if not ids:
            return []
        by_id = looked_up
        known = await forums.people(ids)
        picked = []
        for user_id in ids:
            info = by_id.get(user_id)
            stored = known.get(user_id)
            picked.append(PersonInfo(user_id, mri=(info.mri if info else "") or (stored.mri if stored else ""),
                                     name=(info.name if info else "") or (stored.name if stored else ""),
                                     upn=(info.upn if info else "")))
        return picked

    async def _bind(self, repo: Repo, ctx: _Ctx, actor: ForumActor, channel: ChannelContext,
                    data: Mapping[str, Any], notices: list[str], info: list[str]) -> None:
        forums = ForumRepo(repo.conn)
        forum = self.org.forum(_str(data.get(setup_cards.BIND_INPUT)))
        if forum is None:
            notices.append("Vælg det forum, kanalen skal knyttes til.")
            return
        team = await TeamRepo(repo.conn).get(channel.team_id)
        if team is None or not team.installed:
            notices.append("Teamet er ikke registreret hos mig. Fjern og tilføj appen i teamet igen.")
            return
        before = await forums.bind(forum.id, team_id=channel.team_id, channel_id=channel.channel_id, by=actor.id)
        moved = before is not None and before.channel_id != channel.channel_id
        info.append(f"Kanalen er knyttet til {forum.name}." + (
            " Forummet er flyttet hertil; eksisterende tråde bliver i den gamle kanal." if moved else ""))
        sent = 0
        for thread in await forums.waiting_threads(forum.id):
            loaded = await repo.get_case_and_answers(thread.case_id)
            if loaded is None:
                continue
            case, answers = loaded
            if await self._queue_thread(repo, ctx, case, answers, forum, thread.kind):
                sent += 1
                await self._tell_sent(repo, ctx, case, forum)
        if sent:
            info.append(f"{sent} ventende {'sag' if sent == 1 else 'sager'} sendes nu til kanalen.")
        if not await forums.members(forum.id):
            info.append("Tilføj forummets sekretariat herunder: kun sekretariatet kan registrere beslutninger.")

    async def team_installed(self, repo: Repo, team_id: str) -> bool:
        """The bot was (re)installed in a team: post the cases waiting for forums bound to its channels.
        Returns whether anything was queued (runs inside the install turn's transaction)."""
        forums = ForumRepo(repo.conn)
        ctx = _Ctx()
        for forum_id, binding in (await forums.bindings()).items():
            forum = self.org.forum(forum_id)
            if forum is None or binding.team_id != team_id:
                continue
            for thread in await forums.waiting_threads(forum_id):
                loaded = await repo.get_case_and_answers(thread.case_id)
                if loaded is not None and await self._queue_thread(repo, ctx, loaded[0], loaded[1], forum,
                                                                   thread.kind):
                    await self._tell_sent(repo, ctx, loaded[0], forum)
        return ctx.queued

    async def _tell_sent(self, repo: Repo, ctx: _Ctx, case: Case, forum: ForumRef) -> None:
        """A case that waited for ``forum`` has been posted: tell the initiator and co-authors."""
        forums = ForumRepo(repo.conn)
        await self.notify_people(
            repo, ctx, case, [case.initiator_id, *await forums.participants(case.id)],
            f"Sag {case.number} er sendt til {forum.name}",
            [f"«{md_escape(case.title)}» ventede på, at {md_escape(forum.name)} fik en kanal i Teams. "
             "Nu er sagen sendt."],
            link_thread=await self._thread(forums, case.id, forum.id), open_case_button=False,
            dedup=f"delivered:{case.id}:{forum.id}")

    @staticmethod
    async def _thread(forums: ForumRepo, case_id: int, forum_id: str) -> CaseThread | None:
        return next((t for t in await forums.threads(case_id) if t.forum_id == forum_id), None)

    async def _add_members(self, repo: Repo, actor: ForumActor, channel: ChannelContext, data: Mapping[str, Any],
                           looked_up: Mapping[str, PersonInfo], notices: list[str], info: list[str]) -> bool:
        """Add the picked people to the forum's secretariat; True if anybody was added."""
        forums = ForumRepo(repo.conn)
        forum = self.org.forum(_str(data.get("forum")))
        if forum is None or forum.id not in await forums.forums_in_channel(channel.channel_id):
            notices.append("Forummet er ikke knyttet til denne kanal.")
            return False
        picked = await self._picked(forums, data.get(setup_cards.member_input_id(forum.id)), looked_up)
        if not picked:
            notices.append(f"Vælg de personer, der skal i sekretariatet for {forum.name}.")
            return False
        await self._remember_people(forums, picked, channel.tenant_id)
        added = [p.name or p.user_id for p in picked if await forums.add_member(forum.id, p.user_id, by=actor.id)]
        if added:
            info.append(f"Tilføjet til sekretariatet for {forum.name}: {', '.join(added)}.")
        else:
            info.append("De valgte personer var allerede i sekretariatet.")
        return bool(added)

    async def _refresh_cards(self, repo: Repo, ctx: _Ctx, forum: ForumRef) -> None:
        """The secretariat changed: update the root cards of the forum's open cases, so that their ``refresh``
        lists the new members (Teams then asks the bot for their view, with the decision buttons)."""
        stamp = self.clock().strftime("%Y%m%dT%H%M%S%f")
        outbox = OutboxRepo(repo.conn)
        for thread in await ForumRepo(repo.conn).posted_threads(forum.id):
            loaded = await repo.get_case_and_answers(thread.case_id)
            if loaded is None or Phase(loaded[0].phase).closed:
                continue
            case, answers = loaded
            card = await self.case_card(repo, case, answers, forum, thread_kind=thread.kind)
            await outbox.enqueue(
                "update", {"service_url": thread.service_url, "tenant_id": thread.tenant_id,
                           "parent": thread.parent_key, "team_id": thread.team_id},
                card_activity(card), dedup_key=f"card:{case.id}:{forum.id}:secretariat:{stamp}",
                thread_key=thread_key(thread.channel_id))
            ctx.queued = True

    async def status(self, actor: ForumActor, channel: ChannelContext, number: str,
                     activity_id: str | None) -> Outgoing:
        async def op(repo: Repo, ctx: _Ctx) -> Outgoing:
            number_clean = number.strip().upper()
            case = await repo.get_case_by_number(number_clean) if number_clean else None
            if case is None:
                return Outgoing(notice_card(
                    "Sagen findes ikke",
                    [f"Jeg kender ingen sag med nummeret «{md_escape(number.strip()[:40])}». "
                     "Skriv nummeret som på sagens kort, f.eks. **status OF-2026-0007**."], buttons=False))
            forum = await self._channel_forum_for(repo, case, channel.channel_id)
            if forum is None:
                return Outgoing(notice_card(
                    "Sagen hører ikke til et forum i denne kanal",
                    [f"{case.number} er ikke sendt til et forum, der er knyttet til denne kanal."], buttons=False))
            answers = await repo.get_answers(case.id)
            kind = await self._thread_kind(repo, case.id, forum.id)
            return Outgoing(await self.case_card(repo, case, answers, forum, thread_kind=kind, actor=actor),
                            f"Status for {case.number}")
        return await self._run(op, activity_id)

    async def _channel_forum_for(self, repo: Repo, case: Case, channel_id: str) -> ForumRef | None:
        """The forum of this channel that may see ``case`` (its thread's forum; PSG sees every case)."""
        forums = ForumRepo(repo.conn)
        here = await forums.forums_in_channel(channel_id)
        threads = {t.forum_id: t for t in await forums.threads(case.id)}
        for forum_id in here:
            if forum_id in threads:
                return self.org.forum(forum_id)
        psg = self.org.portfolio_group.id
        if psg in here and Phase(case.phase).sent:
            return self.org.forum(psg)
        return None

    async def _thread_kind(self, repo: Repo, case_id: int, forum_id: str) -> str:
        thread = await self._thread(ForumRepo(repo.conn), case_id, forum_id)
        return thread.kind if thread else "case"

    # ================================================================== actions on the case card
    async def card_action(self, actor: ForumActor, channel: ChannelContext, verb: str, data: Mapping[str, Any],
                          activity_id: str | None, *, trigger: str = "") -> Outgoing:
        case_id = data.get("case")
        forum = self.org.forum(_str(data.get("forum")))
        if not isinstance(case_id, int) or isinstance(case_id, bool) or forum is None:
            return Outgoing(error_card("Kortet kunne ikke læses.", "Skriv **@Opgaveflytning hjælp** i kanalen."))
        looked_up: dict[str, PersonInfo] = {}
        if verb == verbs.FORUM_PLAN:
            looked_up = await self.look_up(data, [forum_cards.PLAN_PEOPLE_ID])

        async def load(repo: Repo) -> tuple[Case, CaseAnswers, str] | Outgoing:
            loaded = await repo.get_case_and_answers(case_id)
            thread = await self._thread(ForumRepo(repo.conn), case_id, forum.id) if loaded else None
            # The card must belong here: the case has a thread of this forum, and this channel is that thread's
            # channel or the forum's channel now (a forum may have moved).
            here = bool(channel.channel_id) and thread is not None and (
                thread.channel_id == channel.channel_id
                or forum.id in await ForumRepo(repo.conn).forums_in_channel(channel.channel_id))
            if loaded is None or thread is None or not here:
                return Outgoing(error_card("Dette kort hører ikke til et forum i denne kanal.",
                                           "Skriv **@Opgaveflytning status OF-…** for at se en sag her."),
                                "Ingen adgang")
            return loaded[0], loaded[1], thread.kind

        async def current(repo: Repo) -> Outgoing:
            got = await load(repo)
            if isinstance(got, Outgoing):
                return got
            case, answers, kind = got
            return Outgoing(await self.case_card(repo, case, answers, forum, thread_kind=kind, actor=actor))

        async def op(repo: Repo, ctx: _Ctx) -> Outgoing:
            got = await load(repo)
            if isinstance(got, Outgoing):
                return got
            case, answers, kind = got
            if verb == verbs.FORUM_VIEW:
                return Outgoing(await self.case_card(repo, case, answers, forum, thread_kind=kind, actor=actor))
            if verb == verbs.FORUM_ANSWERS:
                return Outgoing(self._answers_card(case, answers, forum, data.get("part")), "Alle svar")
            if verb == verbs.FORUM_HISTORY:
                return Outgoing(await self._history_card(repo, case, forum, data.get("part")), "Historik")
            # everything below changes the case: the forum's secretariat only
            if not await ForumRepo(repo.conn).is_member(forum.id, actor.id):
                log.info("refused %s on %s by %s: not in the secretariat of %s", verb, case.number, actor.id, forum.id)
                return Outgoing(await self.case_card(
                    repo, case, answers, forum, thread_kind=kind, actor=actor,
                    notices=[f"Kun sekretariatet for {forum.name} kan registrere beslutninger på denne sag. "
                             "Intet er ændret."]), "Ingen adgang")
            phase = Phase(case.phase)
            if verb in (verbs.FORUM_DECIDE_START, verbs.FORUM_DECIDE):
                outcomes = process.outcomes_for(forum.kind, phase)
                # a form shown before the case changed (e.g. returned and resubmitted since) decides nothing
                outdated = verb == verbs.FORUM_DECIDE and "rev" in data and data.get("rev") != case.revision
                if not outcomes or outdated:
                    return await self._not_now(repo, case, answers, forum, kind, actor)
                if verb == verbs.FORUM_DECIDE_START:
                    return Outgoing(self._decision_form(case, forum, outcomes, {}, {}), "Registrér beslutning")
                return await self._decide(repo, ctx, actor, case, answers, forum, kind, outcomes, data)
            if verb in (verbs.FORUM_PLAN_START, verbs.FORUM_PLAN):
                if not process.can_plan(forum.kind, phase):
                    return await self._not_now(repo, case, answers, forum, kind, actor)
                if verb == verbs.FORUM_PLAN_START:
                    return Outgoing(await self._plan_form(repo, case, forum, None, {}), "Planlægning")
                return await self._plan(repo, ctx, actor, case, answers, forum, kind, data, looked_up)
            if verb in (verbs.FORUM_EVALUATE_START, verbs.FORUM_EVALUATE):
                if not process.can_evaluate(forum.kind, phase, bool(case.flags.get("plan"))):
                    return await self._not_now(repo, case, answers, forum, kind, actor)
                if verb == verbs.FORUM_EVALUATE_START:
                    return Outgoing(self._evaluation_form(case, forum, "", {}), "Evaluering")
                return await self._evaluate(repo, ctx, actor, case, answers, forum, kind, data)
            return Outgoing(error_card("Ukendt handling.", "Skriv **@Opgaveflytning hjælp** i kanalen."))

        return await self._run(op, activity_id, on_duplicate=current)

    async def _not_now(self, repo: Repo, case: Case, answers: CaseAnswers, forum: ForumRef, kind: str,
                       actor: ForumActor) -> Outgoing:
        return Outgoing(await self.case_card(
            repo, case, answers, forum, thread_kind=kind, actor=actor,
            notices=[f"Det kan ikke registreres nu: sagen er i fasen «{Phase(case.phase).label}». "
                     "Her er sagen, som den ser ud nu. Intet er ændret."]), "Sagen er ændret")

    # --- decisions ------------------------------------------------------------------------
    def _decision_form(self, case: Case, forum: ForumRef, outcomes: list[process.Outcome],
                       values: Mapping[str, str], errors: Mapping[str, str]) -> Json:
        needs_reason = [self._fmt(o.label) for o in outcomes if o.reason_required]
        hint = ("Begrundelse skal udfyldes ved: " + "; ".join(needs_reason) + ".") if needs_reason else ""
        view = forum_cards.DecisionFormView(
            case_id=case.id, forum_id=forum.id, forum_name=forum.name, number=case.number, title=case.title,
            revision=case.revision, outcomes=tuple((o.id, self._fmt(o.label)) for o in outcomes),
            questions=process.PSG_QUESTIONS if forum.kind == process.PSG else (),
            values=dict(values), errors=dict(errors), reason_hint=hint, max_length=self._decision_max(forum),
            heading={"psg": f"Registrér {forum.name}s behandling",
                     "decision": f"Registrér afgørelse – {forum.name}"}.get(forum.kind, ""),
            intro=process.PSG_INTRO if forum.kind == process.PSG else "")
        return forum_cards.decision_form_card(view)

    def _decision_max(self, forum: ForumRef) -> int:
        # Six answers and a reason must fit one card (25 KiB of UTF-16): PSG's texts are kept shorter.
        return min(self.longtext_max, 1000) if forum.kind == process.PSG else self.longtext_max

    async def _decide(self, repo: Repo, ctx: _Ctx, actor: ForumActor, case: Case, answers: CaseAnswers,
                      forum: ForumRef, kind: str, outcomes: list[process.Outcome], data: Mapping[str, Any]) -> Outgoing:
        chosen = _str(data.get("udfald"))
        limit = self._decision_max(forum)
        reason = engine.clean_text(_str(data.get("begrundelse")))
        questions = process.PSG_QUESTIONS if forum.kind == process.PSG else ()
        answers_given = {qid: engine.clean_text(_str(data.get(qid))) for qid, _ in questions}
        errors: dict[str, str] = {}
        for key, text in (("begrundelse", reason), *answers_given.items()):
            if len(text) > limit:
                errors[key] = f"Højst {limit} tegn (du skrev {len(text)}). Forkort teksten."
        outcome = next((o for o in outcomes if o.id == chosen), None)
        if outcome is None:
            errors["udfald"] = "Vælg en beslutning."
        elif outcome.reason_required and not reason and "begrundelse" not in errors:
            errors["begrundelse"] = "Skriv en begrundelse – den sendes til initiativtager."
        for qid, _ in questions:
            if not answers_given[qid] and qid not in errors:
                errors[qid] = "Besvar spørgsmålet (skriv «Ikke relevant», hvis det ikke er relevant)."
        if errors or outcome is None:
            return Outgoing(self._decision_form(case, forum, outcomes,
                                                {"udfald": chosen, "begrundelse": reason, **answers_given}, errors),
                            "Registrér beslutning")
        when = da_date(self.clock())
        label = self._fmt(outcome.label)
        flags = dict(case.flags)
        flags["last_decision"] = f"{forum.name}, {when}: {label}"
        flags["last_decision_by"] = actor.id
        decisions = dict(flags.get("decisions") or {})
        decisions[forum.kind] = {"outcome": outcome.id, "reason": reason, "answers": answers_given,
                                 "by": actor.name, "at": self.clock().isoformat()}
        flags["decisions"] = decisions
        changes: dict[str, Any] = {"phase": outcome.to.value, "flags": flags}
        if outcome.to.closed:
            changes["closed_reason"] = reason or label
        if outcome.id == "loeft":
            flags["require_mtv"] = True
            forms = case_forms(self.catalog, case)
            changes["current_step"] = Step(MINI_MTV, forms[MINI_MTV].pages[0].id).key
        elif outcome.id == "retur":
            flags["returned"] = {"forum": forum.id, "reason": reason}
            changes["current_step"] = REVIEW.key
        event = EventSpec(actor.id, actor.name, f"beslutning_{outcome.id}",
                          {"forum": forum.id, "outcome": outcome.id, "label": label, "reason": reason,
                           "answers": answers_given})
        case = await repo.update_case(case, event=event, **changes)
        extra: list[str] = []
        if outcome.id == "afgoerelse":
            body = self.org.forum_of_kind("decision")
            assert body is not None
            if not await self._open_thread(repo, ctx, case, answers, body, "case"):
                extra.append(f"{body.name} har endnu ingen kanal; sagen venter, og administratorerne har fået besked.")
        status = [f"**{case.number}** · {md_escape(forum.name)} har registreret: **{md_escape(label)}** "
                  f"({md_escape(actor.name)})."]
        if reason:
            status.append(f"Begrundelse: {md_escape(reason)}")
        status.append(self._fmt(outcome.status))
        personal = [self._fmt(outcome.status)] + ([f"Begrundelse: {md_escape(reason)}"] if reason else [])
        ask_user = outcome.id in ("loeft", "retur")
        if outcome.id == "loeft":
            personal.append("Åbn sagen og udfyld Mini-MTV; når du indsender, går sagen til Porteføljestyregruppen.")
        elif outcome.id == "retur":
            personal.append("Åbn sagen, ret svarene og indsend igen; sagen kommer tilbage i samme tråd.")
        await self._announce(repo, ctx, case, answers, actor.id, status,
                             personal_title=f"Sag {case.number}: {label}", personal_lines=personal,
                             open_case_button=ask_user, include_actor=ask_user)
        return Outgoing(await self.case_card(repo, case, answers, forum, thread_kind=kind, actor=actor,
                                             info=[f"Beslutningen «{label}» er registreret.", *extra]),
                        "Beslutning registreret")

    # --- planning and evaluation ------------------------------------------------------------
    async def _plan_form(self, repo: Repo, case: Case, forum: ForumRef, values: Mapping[str, Any] | None,
                         errors: Mapping[str, str]) -> Json:
        forums = ForumRepo(repo.conn)
        current = case.flags.get("plan") or {}
        selected = list(current.get("responsible") or [])
        if values is not None:
            selected = [p.strip() for p in _str(values.get("ansvarlige")).split(",") if p.strip()]
        candidates = list(dict.fromkeys([case.initiator_id, *await forums.participants(case.id),
                                         *await forums.members(forum.id), *selected]))
        names = await self.names(forums, candidates)
        names[case.initiator_id] = names.get(case.initiator_id) or case.initiator_name
        view = forum_cards.PlanFormView(
            case_id=case.id, forum_id=forum.id, forum_name=forum.name, number=case.number, title=case.title,
            revision=case.revision,
            people=tuple((uid, names.get(uid) or "(ukendt navn)") for uid in candidates),
            selected=tuple(selected),
            evaluation_date=_str(values.get("evalueringsdato")) if values is not None
            else _str(current.get("evaluation_date")),
            note=_str(values.get("note")) if values is not None else _str(current.get("note")),
            errors=dict(errors), pilot=Phase(case.phase) is Phase.PILOT)
        return forum_cards.plan_form_card(view)

    async def _plan(self, repo: Repo, ctx: _Ctx, actor: ForumActor, case: Case, answers: CaseAnswers,
                    forum: ForumRef, kind: str, data: Mapping[str, Any],
                    looked_up: Mapping[str, PersonInfo]) -> Outgoing:
        forums = ForumRepo(repo.conn)
        picked = await self._picked(forums, data.get(forum_cards.PLAN_PEOPLE_ID), looked_up)
        raw_date = _str(data.get("evalueringsdato")).strip()
        note = engine.clean_text(_str(data.get("note")))[: self.longtext_max]
        errors: dict[str, str] = {}
        today = self.clock().astimezone(COPENHAGEN).date()
        evaluation: date | None = None
        try:
            evaluation = date.fromisoformat(raw_date) if raw_date else None
        except ValueError:
            evaluation = None
        if not picked:
            errors["ansvarlige"] = "Vælg mindst én ansvarlig for opfølgningen."
        if evaluation is None:
            errors["evalueringsdato"] = "Vælg datoen for evalueringen."
        elif evaluation <= today:
            errors["evalueringsdato"] = "Evalueringsdatoen skal ligge efter i dag."
        elif evaluation > today + timedelta(days=366 * 5):
            errors["evalueringsdato"] = "Evalueringsdatoen skal ligge inden for fem år."
        if errors or evaluation is None:
            return Outgoing(await self._plan_form(repo, case, forum, data, errors), "Planlægning")
        await self._remember_people(forums, picked, case.tenant_id, ctx)
        names = (await self.names(forums, [p.user_id for p in picked]))
        plan_flags = {"responsible": [p.user_id for p in picked],
                      "names": [names.get(p.user_id) or p.name or "(ukendt navn)" for p in picked],
                      "evaluation_date": evaluation.isoformat(), "note": note, "forum": forum.id}
        phase = Phase(case.phase)
        new_phase = process.after_plan(phase)
        flags = {**case.flags, "plan": plan_flags}
        event = EventSpec(actor.id, actor.name, "plan",
                          {"forum": forum.id, "responsible": plan_flags["names"],
                           "evaluation_date": plan_flags["evaluation_date"], "note": note})
        case = await repo.update_case(case, event=event, phase=new_phase.value, flags=flags)
        await forums.schedule_reminders(case.id, self._reminder_times(evaluation))
        when = da_iso_date(evaluation.isoformat())
        status = [f"**{case.number}** · Plan for opfølgning registreret af {md_escape(actor.name)}: ansvarlige "
                  f"{md_escape(', '.join(plan_flags['names']))}; evaluering {when}."]
        if note:
            status.append(f"Aftaler: {md_escape(note)}")
        await self._announce(repo, ctx, case, answers, actor.id, status,
                             personal_title=f"Sag {case.number}: plan for opfølgning",
                             personal_lines=[f"Ansvarlige: {md_escape(', '.join(plan_flags['names']))}.",
                                             f"Evaluering: {when}."])
        # the responsible people hear it too (they may be neither initiator nor co-author)
        await self.notify_people(
            repo, ctx, case, [p.user_id for p in picked if p.user_id != actor.id],
            f"Du er ansvarlig for opfølgning på sag {case.number}",
            [f"«{md_escape(case.title)}»: evaluering {when}. Du får en påmindelse, når opfølgning og evaluering "
             "nærmer sig."],
            link_thread=await self._thread(forums, case.id, forum.id), open_case_button=False,
            dedup=f"responsible:{case.id}:{case.revision}")
        return Outgoing(await self.case_card(repo, case, answers, forum, thread_kind=kind, actor=actor,
                                             info=["Planen er gemt, og påmindelser er sat op."]), "Plan gemt")

    def _reminder_times(self, evaluation: date) -> list[tuple[str, datetime]]:
        """Follow-up reminders every ``followup_days`` until the evaluation notice, then the evaluation ones
        (09:00 Danish time)."""
        def at(day: date) -> datetime:
            return datetime.combine(day, time(9, 0), tzinfo=COPENHAGEN).astimezone(UTC)

        today = self.clock().astimezone(COPENHAGEN).date()
        notice_day = evaluation - timedelta(days=self.evaluation_notice_days)
        times: list[tuple[str, datetime]] = []
        if self.followup_days > 0:
            day = today + timedelta(days=self.followup_days)
            while day < notice_day and len(times) < 60:
                times.append(("followup", at(day)))
                day += timedelta(days=self.followup_days)
        if notice_day > today:
            times.append(("eval_notice", at(notice_day)))
        times.append(("evaluation", at(evaluation)))
        return times

    def _evaluation_form(self, case: Case, forum: ForumRef, value: str, errors: Mapping[str, str]) -> Json:
        view = forum_cards.EvaluationFormView(
            case_id=case.id, forum_id=forum.id, forum_name=forum.name, number=case.number, title=case.title,
            revision=case.revision, pilot=Phase(case.phase) is Phase.PILOT, value=value, errors=dict(errors))
        return forum_cards.evaluation_form_card(view)

    async def _evaluate(self, repo: Repo, ctx: _Ctx, actor: ForumActor, case: Case, answers: CaseAnswers,
                        forum: ForumRef, kind: str, data: Mapping[str, Any]) -> Outgoing:
        text = engine.clean_text(_str(data.get("evaluering")))[: self.longtext_max]
        if not text:
            return Outgoing(self._evaluation_form(case, forum, "", {"evaluering": "Skriv evalueringen."}), "Evaluering")
        phase = Phase(case.phase)
        new_phase = process.after_evaluation(phase)
        flags = {k: v for k, v in case.flags.items() if k != "plan"} if phase is Phase.PILOT else dict(case.flags)
        label = "Lokal afprøvning evalueret" if phase is Phase.PILOT else "Evalueret – sagen er afsluttet"
        flags["last_decision"] = f"{forum.name}, {da_date(self.clock())}: {label}"
        flags["last_decision_by"] = actor.id
        changes: dict[str, Any] = {"phase": new_phase.value, "flags": flags}
        if new_phase.closed:
            changes["closed_reason"] = text
        event = EventSpec(actor.id, actor.name, "evaluering", {"forum": forum.id, "text": text,
                                                                "pilot": phase is Phase.PILOT})
        case = await repo.update_case(case, event=event, **changes)
        await ForumRepo(repo.conn).cancel_reminders(case.id)
        if phase is Phase.PILOT:
            status_text = ("Den lokale afprøvning er evalueret. Sagen er tilbage hos Porteføljestyregruppen, "
                           "som beslutter det videre forløb.")
        else:
            status_text = "Opgaveflytningen er evalueret. Sagen er afsluttet."
        status = [f"**{case.number}** · {status_text} ({md_escape(actor.name)})", f"Evaluering: {md_escape(text)}"]
        await self._announce(repo, ctx, case, answers, actor.id, status,
                             personal_title=f"Sag {case.number}: {label}", personal_lines=[status_text])
        return Outgoing(await self.case_card(repo, case, answers, forum, thread_kind=kind, actor=actor,
                                             info=["Evalueringen er registreret."]), "Evaluering registreret")

    # --- read-only views -------------------------------------------------------------------
    def answer_entries(self, case: Case, answers: CaseAnswers) -> list[forum_cards.AnswerEntry]:
        forms = case_forms(self.catalog, case)
        values = answers.values()
        hospitals = self.org.hospital_forums()
        case_plan = plan(forms, values, continue_anyway=bool(case.flags.get("continue_anyway")),
                         require_mtv=bool(case.flags.get("require_mtv")))
        entries: list[forum_cards.AnswerEntry] = []
        for form_id in case_plan.forms():
            form = forms[form_id]
            form_values = values.get(form_id, {})
            for page in engine.visible_pages(form, form_values):
                for item in engine.page_items(form, page, form_values):
                    value = form_values.get(item.id, "")
                    if value and item.kind in (ItemKind.YESNO, ItemKind.CHOICE):
                        value = engine.option_values(item, hospitals).get(value, value)
                    elif value and item.kind is ItemKind.DATE:
                        value = da_iso_date(value)
                    label = item.label  # Mini-MTV labels carry their seed number («3: Hvilke parter …»)
                    if item.number and form_id == MINI_MTV and not label.startswith((f"{item.number}:",
                                                                                      f"{item.number}.")):
                        label = f"{item.number}. {label}"
                    section = "" if page.title == form.short_title else page.title  # no «Forum / Forum»
                    entries.append(forum_cards.AnswerEntry(form.short_title, section, label, value))
        for forum_kind, decision in (case.flags.get("decisions") or {}).items():
            forum = self.org.forum_of_kind(forum_kind, case.hospital)
            title = f"Beslutning – {forum.name if forum else forum_kind}"
            outcome = process.OUTCOME_BY_ID.get(decision.get("outcome", ""))
            entries.append(forum_cards.AnswerEntry(title, "", "Beslutning",
                                                   self._fmt(outcome.label) if outcome else ""))
            if forum_kind == process.PSG:
                for qid, question in process.PSG_QUESTIONS:
                    entries.append(forum_cards.AnswerEntry(title, process.PSG_INTRO, question,
                                                           (decision.get("answers") or {}).get(qid, "")))
            entries.append(forum_cards.AnswerEntry(title, "", "Begrundelse", decision.get("reason", "")))
        return entries

    def _answers_card(self, case: Case, answers: CaseAnswers, forum: ForumRef, part: Any) -> Json:
        parts = forum_cards.answer_parts(self.answer_entries(case, answers))
        index = part if isinstance(part, int) and not isinstance(part, bool) else 0
        return forum_cards.answers_card(case.id, forum.id, case.number, case.title, parts, index)

    async def _history_card(self, repo: Repo, case: Case, forum: ForumRef, part: Any) -> Json:
        entries = [forum_cards.HistoryEntry(e.at, e.actor_name or "Opgaveflytning", self._event_text(e.kind, e.detail))
                   for e in await repo.events(case.id) if e.kind != "svar_gemt"]
        entries.reverse()
        index = part if isinstance(part, int) and not isinstance(part, bool) else 0
        return forum_cards.history_card(case.id, forum.id, case.number, case.title, entries, index)

    def _event_text(self, kind: str, detail: Mapping[str, Any]) -> str:
        if kind.startswith("beslutning_"):
            forum = self.org.forum(detail.get("forum"))
            text = f"{forum.name if forum else 'Forum'}: {detail.get('label', kind)}"
            return text + (f" – {detail['reason']}" if detail.get("reason") else "")
        simple = {
            "oprettet": "Sagen er oprettet",
            "indsendt": "Sagen er indsendt",
            "genindsendt": "Sagen er suppleret og indsendt igen",
            "fortsat_frivilligt": "Fortsat frivilligt trods ingen initiativpligt",
            "genaabnet": "Screeningen er åbnet igen",
            "lukket_ingen_initiativpligt": "Lukket – ingen initiativpligt",
            "lukket_ikke_behov": "Lukket – intet behov for dialoggrundlag",
            "medforfatter_tilfoejet": f"Medforfatter tilføjet: {detail.get('name', '')}",
            "medforfatter_fjernet": f"Medforfatter fjernet: {detail.get('name', '')}",
            "paamindelse": f"Påmindelse sendt ({detail.get('label', '')})",
        }
        if kind == "plan":
            return (f"Plan: ansvarlige {', '.join(detail.get('responsible') or [])}; evaluering "
                    f"{da_iso_date(str(detail.get('evaluation_date', '')))}")
        if kind == "evaluering":
            return f"Evaluering registreret – {detail.get('text', '')}"
        return simple.get(kind, kind.replace("_", " ").capitalize())

    # ================================================================== reminders
    async def run_reminders(self, *, worker: str, now: datetime | None = None) -> int:
        """Send the reminders that are due; each is taken by exactly one process. Returns how many."""
        now = now or self.clock()
        ctx = _Ctx()
        sent = 0
        async with self.db.transaction() as repo:
            forums = ForumRepo(repo.conn)
            for reminder in await forums.take_due(now, worker=worker):
                loaded = await repo.get_case_and_answers(reminder.case_id)
                if loaded is None:
                    continue
                case, _answers = loaded
                phase = Phase(case.phase)
                plan_flags = case.flags.get("plan") or {}
                if phase not in (Phase.FOLLOW_UP, Phase.PILOT, Phase.PLANNING) or not plan_flags:
                    continue
                evaluation = da_iso_date(str(plan_flags.get("evaluation_date", "")))
                label = {"followup": "status på opfølgningen",
                         "eval_notice": f"evalueringen {evaluation} nærmer sig",
                         "evaluation": f"evalueringen er sat til i dag ({evaluation})"}.get(reminder.kind, "opfølgning")
                await repo.add_event(case.id, actor_id="bot", actor_name="Opgaveflytning", kind="paamindelse",
                                     detail={"kind": reminder.kind, "label": label, "reminder": reminder.id})
                threads = [t for t in await forums.threads(case.id) if t.state == QUEUED]
                home_forum = self.org.forum(plan_flags.get("forum")) or None
                home = next((t for t in threads if home_forum and t.forum_id == home_forum.id), None)
                home = home or (threads[-1] if threads else None)
                text = [f"**Påmindelse · {case.number}**: {label}.",
                        f"Ansvarlige: {md_escape(', '.join(plan_flags.get('names') or []))}. "
                        "Sekretariatet registrerer evalueringen på sagens kort."]
                if home is not None:
                    await OutboxRepo(repo.conn).enqueue(
                        "reply", {"service_url": home.service_url, "tenant_id": home.tenant_id,
                                  "parent": home.parent_key, "team_id": home.team_id},
                        forum_cards.status_message(text), dedup_key=f"reminder:{reminder.id}:thread",
                        thread_key=thread_key(home.channel_id))
                    ctx.queued = True
                await self.notify_people(
                    repo, ctx, case, list(plan_flags.get("responsible") or []),
                    f"Påmindelse: sag {case.number}", [f"«{md_escape(case.title)}»: {label}."],
                    link_thread=home, open_case_button=False, dedup=f"reminder:{reminder.id}")
                sent += 1
        if ctx.queued:
            self.on_queued()
        return sent


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _ids(value: Any) -> list[str]:
    """User ids from a data value or a (multi-select) input: comma-separated, bounded."""
    return [p.strip() for p in _str(value).split(",") if p.strip() and len(p.strip()) <= 128][:50]

