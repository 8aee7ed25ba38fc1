"""Teams activities → application calls (CaseService), and the replies back out."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from adaptive_cards import verbs
from adaptive_cards.messages import error_card, notice_card
from bot.activity import IncomingActivity, card_message, invoke_card_response
from bot.connector import ConnectorClient, ConnectorError
from bot.credentials import TokenUnavailableError
from bot.people import PeopleResolver
from dialogs.commands import normalise
from dialogs.deliveries import DeliveryAdmin
from dialogs.forums import ChannelContext, ForumActor, ForumService, Outgoing, PersonInfo
from dialogs.service import Actor, CaseService, Conversation, Reply
from dialogs.teams import TeamContext, TeamService

log = logging.getLogger(__name__)

INVOKE_CARD_ACTION = "adaptiveCard/action"
MAX_TEXT = 4000


@dataclass
class TurnResult:
    """What the HTTP edge answers: a status and, for invokes, a JSON body."""

    status: int = 200
    body: dict[str, Any] | None = None


class TeamsHandler:
    def __init__(self, service: CaseService, connector: ConnectorClient, teams: TeamService,
                 forums: ForumService | None = None, people: PeopleResolver | None = None) -> None:
        self.service = service
        self.connector = connector
        self.teams = teams
        self.forums = forums or service.forums
        self.people = people
        self.deliveries = DeliveryAdmin(self.forums)

    async def on_activity(self, activity: IncomingActivity) -> TurnResult:
        if activity.from_ is None or activity.conversation is None or not activity.service_url:
            return TurnResult(400, {"error": "activity lacks from, conversation or serviceUrl"})
        try:
            if activity.type == "invoke":
                return await self._on_invoke(activity)
            if activity.type == "message":
                await self._on_message(activity)
            elif activity.type == "installationUpdate":
                action = activity.action or ""
                if activity.team_id:
                    if action.startswith("add"):
                        await self._team_installed(activity)
                    elif action.startswith("remove"):
                        await self.teams.removed(self._team(activity), activity_id=activity.id)
                elif action.startswith("add") and activity.is_personal:
                    await self._send(activity, await self.service.welcome(*self._who(activity), activity.id))
            elif activity.type == "conversationUpdate":
                await self._on_conversation_update(activity)
            return TurnResult(200)
        except Exception:
            log.exception(
                "turn failed (activity %s, type %s, conversation %s)",
                activity.id, activity.type, activity.conversation.id,
            )
            card = error_card("Beklager – der opstod en fejl hos mig.", "Dine gemte svar er ikke tabt. Prøv igen om lidt.")
            if activity.type == "invoke":
                return TurnResult(200, invoke_card_response(card))
            try:
                await self.connector.send(activity.service_url, activity.conversation.id, card_message(card, activity),
                                          activity.id)
            except Exception:
                log.exception("could not tell the user about the failure")
            return TurnResult(200)

    async def _on_conversation_update(self, activity: IncomingActivity) -> None:
        bot_id = activity.recipient.id if activity.recipient else None
        bot_added = any(m.id == bot_id for m in activity.members_added or [])
        bot_removed = any(m.id == bot_id for m in activity.members_removed or [])
        if activity.team_id:
            event = str((activity.channel_data or {}).get("eventType") or "")
            if bot_added:
                await self._team_installed(activity)
            elif bot_removed:
                await self.teams.removed(self._team(activity), activity_id=activity.id)
            elif event in ("channelCreated", "channelRenamed", "channelRestored", "channelDeleted"):
                channel = (activity.channel_data or {}).get("channel") or {}
                if isinstance(channel, dict) and channel.get("id"):
                    name = None if event == "channelDeleted" else str(channel.get("name") or "")
                    await self.teams.channel_changed(self._team(activity), str(channel["id"]), name, activity.id)
        elif activity.is_personal and bot_added:
            await self._send(activity, await self.service.welcome(*self._who(activity), activity.id))

    async def _team_installed(self, activity: IncomingActivity) -> None:
        ctx = self._team(activity)
        team = (activity.channel_data or {}).get("team") or {}
        name = str(team.get("name") or "") if isinstance(team, dict) else ""
        try:
            channels = await self.connector.team_channels(ctx.service_url, ctx.team_id)
            if not name:
                name = str((await self.connector.team_details(ctx.service_url, ctx.team_id)).get("name") or "")
        except (ConnectorError, TokenUnavailableError, OSError, TimeoutError) as error:
            log.warning("could not read the channels of team %s (%s); keeping what is known", ctx.team_id, error)
            channels = {}
        await self.teams.installed(ctx, team_name=name, channels=channels, activity_id=activity.id)

    @staticmethod
    def _team(activity: IncomingActivity) -> TeamContext:
        user = activity.from_
        return TeamContext(
            team_id=activity.team_id or "",
            tenant_id=activity.tenant_id,
            service_url=activity.service_url or "",
            bot_id=activity.recipient.id if activity.recipient else "",
            by=(user.aad_object_id or user.id) if user else "",
        )

    @staticmethod
    def _who(activity: IncomingActivity) -> tuple[Actor, Conversation]:
        assert activity.from_ is not None and activity.conversation is not None
        user = activity.from_
        actor = Actor(id=user.aad_object_id or user.id, name=(user.name or "").strip(), tenant_id=activity.tenant_id)
        conversation = Conversation(
            key=f"{activity.channel_id or 'msteams'}:{activity.conversation.id}",
            conversation_id=activity.conversation.id,
            service_url=activity.service_url or "",
            channel_id=activity.channel_id or "msteams",
            conversation_type=activity.conversation.conversation_type or "personal",
            bot_id=activity.recipient.id if activity.recipient else "",
        )
        return actor, conversation

    @staticmethod
    def _channel(activity: IncomingActivity) -> ChannelContext:
        channel = (activity.channel_data or {}).get("channel")
        channel_id = str(channel.get("id") or "") if isinstance(channel, dict) else ""
        if not channel_id and activity.conversation is not None:
            channel_id = activity.conversation.id.split(";", 1)[0]
        return ChannelContext(
            team_id=activity.team_id or "",
            channel_id=channel_id,
            tenant_id=activity.tenant_id,
            service_url=activity.service_url or "",
            bot_id=activity.recipient.id if activity.recipient else "",
        )

    @staticmethod
    def _forum_actor(activity: IncomingActivity, roster: list[PersonInfo] | None = None) -> ForumActor:
        assert activity.from_ is not None
        user = activity.from_
        actor_id = user.aad_object_id or user.id
        upn = next((p.upn for p in roster or [] if p.user_id == actor_id or p.mri == user.id), "")
        return ForumActor(id=actor_id, name=(user.name or "").strip(), mri=user.id, upn=upn)

    async def _roster(self, activity: IncomingActivity) -> list[PersonInfo]:
        if self.people is None or not activity.team_id or not activity.service_url:
            return []
        return await self.people.roster(activity.service_url, activity.team_id)

    async def _channel_setup(self, activity: IncomingActivity, verb: str | None, data: dict[str, Any]) -> Outgoing:
        roster = await self._roster(activity)
        actor = self._forum_actor(activity, roster)
        channel = self._channel(activity)
        if verb is None:
            return await self.forums.setup(actor, channel, "", roster, activity.id)
        return await self.forums.setup_action(actor, channel, "", verb, data, roster, activity.id)

    async def _channel_action(self, activity: IncomingActivity, verb: str, data: dict[str, Any]) -> Outgoing:
        if verb in verbs.DELIVERIES:
            return await self.deliveries.handle(self._forum_actor(activity, await self._roster(activity)),
                                                verb, data)
        if verb in verbs.SETUP:
            if activity.is_personal or not activity.team_id:
                return Outgoing(error_card("Opsætning foregår i en kanal.",
                                           "Skriv **@Opgaveflytning opsætning** i forummets kanal."))
            return await self._channel_setup(activity, verb, data)
        return await self.forums.card_action(self._forum_actor(activity), self._channel(activity), verb, data,
                                             activity.id)

    async def _on_message(self, activity: IncomingActivity) -> None:
        actor, conversation = self._who(activity)
        if isinstance(activity.value, dict) and "verb" in activity.value:
            # Action.Submit fallback (clients without Universal Actions): same verbs, card updated in place.
            verb, data = _split_submit(activity.value)
            if verb in verbs.FORUM or verb in verbs.SETUP or verb in verbs.DELIVERIES:
                out = await self._channel_action(activity, verb, data)
                if out.card:
                    await self._replace(activity, Reply(out.card, out.summary))
                return
            reply = await self.service.action(actor, conversation, verb, data, activity.id)
            await self._replace(activity, reply)
            return
        if not activity.is_personal:
            command = normalise(activity.text_without_mention()[:MAX_TEXT])
            word = command.partition(" ")[0]
            if command in ("hjaelp", "help", "hjalp", "?"):
                await self._send(activity, [Reply(self.teams.help_card(), "Hjælp")])
                return
            if activity.team_id and word in ("opsaetning", "opsatning", "setup", "indstillinger"):
                out = await self._channel_setup(activity, None, {})
                if out.card:
                    await self._send(activity, [Reply(out.card, out.summary)])
                return
            if word == "leveringer":
                out = await self._channel_action(activity, verbs.DELIVERIES_SHOW, {})
                await self._send(activity, [Reply(out.card, out.summary)])
                return
            if activity.team_id and word == "status":
                raw = activity.text_without_mention()[:MAX_TEXT].strip()
                number = raw.split(None, 1)[1] if len(raw.split(None, 1)) > 1 else ""
                out = await self.forums.status(self._forum_actor(activity), self._channel(activity),
                                               number, activity.id)
                if out.card:
                    await self._send(activity, [Reply(out.card, out.summary)])
                return
            bot_id = activity.recipient.id if activity.recipient else ""
            link = ("Åbn chat med mig", f"https://teams.microsoft.com/l/chat/0/0?users={quote(bot_id)}") if bot_id else None
            await self._send(activity, [Reply(notice_card(
                "Skriv til mig i en 1:1-chat",
                ["Sager oprettes og udfyldes i din personlige chat med mig. Skriv **ny sag** dér."],
                buttons=False,
                link=link,
            ))])
            return
        text = activity.text_without_mention()[:MAX_TEXT]
        if normalise(text) == "leveringer":
            out = await self._channel_action(activity, verbs.DELIVERIES_SHOW, {})
            await self._send(activity, [Reply(out.card, out.summary)])
            return
        await self._send(activity, await self.service.command(actor, conversation, text, activity.id))

    async def _on_invoke(self, activity: IncomingActivity) -> TurnResult:
        if activity.name != INVOKE_CARD_ACTION:
            return TurnResult(200, {"statusCode": 400, "type": "application/vnd.microsoft.error",
                                    "value": {"code": "BadRequest", "message": "unsupported invoke"}})
        value: dict[str, Any] = activity.value if isinstance(activity.value, dict) else {}
        raw_action = value.get("action")
        action: dict[str, Any] = raw_action if isinstance(raw_action, dict) else {}
        raw_data = action.get("data")
        data: dict[str, Any] = raw_data if isinstance(raw_data, dict) else {}
        verb = action.get("verb")
        if not isinstance(verb, str) or verb not in verbs.ALL:
            card = error_card("Kortet kunne ikke læses.", "Skriv **mine sager** for at finde din sag.")
            return TurnResult(200, invoke_card_response(card))
        if verb in verbs.FORUM or verb in verbs.SETUP or verb in verbs.DELIVERIES:
            out = await self._channel_action(activity, verb, data)
            return TurnResult(200, invoke_card_response(out.card or error_card(
                "Handlingen er allerede udført.", "Skriv **@Opgaveflytning hjælp** i kanalen.")))
        actor, conversation = self._who(activity)
        reply = await self.service.action(actor, conversation, verb, data, activity.id)
        return TurnResult(200, invoke_card_response(reply.card))

    async def _send(self, activity: IncomingActivity, replies: list[Reply]) -> None:
        assert activity.conversation is not None and activity.service_url
        for reply in replies:
            try:
                await self.connector.send(activity.service_url, activity.conversation.id,
                                          card_message(reply.card, activity, reply.summary), activity.id)
            except (ConnectorError, TokenUnavailableError, OSError, TimeoutError) as error:
                log.warning("reply to %s not delivered: %s", activity.conversation.id, error)

    async def _replace(self, activity: IncomingActivity, reply: Reply) -> None:
        assert activity.conversation is not None and activity.service_url
        message = card_message(reply.card, activity, reply.summary)
        if activity.reply_to_id:
            try:
                await self.connector.update(activity.service_url, activity.conversation.id, activity.reply_to_id, message)
                return
            except (ConnectorError, TokenUnavailableError, OSError, TimeoutError) as error:
                log.info("could not update card %s (%s); sending a new one", activity.reply_to_id, error)
        await self._send(activity, [reply])


def _split_submit(value: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    verb = value.get("verb")
    data = {k: v for k, v in value.items() if k != "verb"}
    if not isinstance(verb, str) or verb not in verbs.ALL:
        return verbs.HELP, {}
    return verb, data
