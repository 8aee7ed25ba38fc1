"""Who is who: team rosters and people picked in a people picker, looked up with the Bot Connector REST API.

The people picker hands the bot Entra object ids only. Names and Teams ids (needed for a card's
``refresh.userIds`` and for 1:1 messages) come from the rosters of the teams the bot is installed in.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace

from bot.connector import ConnectorClient, ConnectorError, Member
from bot.credentials import TokenUnavailableError
from dialogs.forums import PersonInfo
from storage.db import Database
from storage.teams import TeamRepo

log = logging.getLogger(__name__)

ROSTER_TTL_SECONDS = 60.0
MAX_TEAMS_TO_ASK = 10


def person_of(member: Member) -> PersonInfo:
    return PersonInfo(user_id=member.aad_object_id or member.id, mri=member.id, name=member.name, upn=member.upn)


class PeopleResolver:
    def __init__(self, database: Database, connector: ConnectorClient, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.db = database
        self.connector = connector
        self.clock = clock
        self._rosters: dict[str, tuple[float, list[PersonInfo]]] = {}

    async def roster(self, service_url: str, team_id: str) -> list[PersonInfo]:
        """The team's members (cached for a minute: an admin clicking through the set-up card)."""
        cached = self._rosters.get(team_id)
        if cached and self.clock() - cached[0] < ROSTER_TTL_SECONDS:
            return cached[1]
        try:
            members = await self.connector.team_members(service_url, team_id)
        except (ConnectorError, TokenUnavailableError, OSError, TimeoutError) as error:
            log.warning("could not read the members of team %s: %s", team_id, error)
            return cached[1] if cached else []
        people = [person_of(m) for m in members]
        self._rosters[team_id] = (self.clock(), people)
        return people

    async def resolve(self, user_ids: list[str]) -> dict[str, PersonInfo]:
        """Names and Teams ids of people picked by Entra object id (asked of the teams the bot is in)."""
        found: dict[str, PersonInfo] = {}
        for _, people in self._rosters.values():
            for person in people:
                if person.user_id in user_ids:
                    found[person.user_id] = person
        missing = [u for u in user_ids if u not in found]
        if not missing:
            return found
        async with self.db.transaction() as repo:
            teams = await TeamRepo(repo.conn).installed_teams(MAX_TEAMS_TO_ASK)
        for team_id, service_url in teams:
            for user_id in list(missing):
                try:
                    member = await self.connector.member(service_url, team_id, user_id)
                except (ConnectorError, TokenUnavailableError, OSError, TimeoutError) as error:
                    log.info("member lookup of %s in team %s failed: %s", user_id, team_id, error)
                    continue
                if member is not None:
                    found[user_id] = replace(person_of(member), user_id=user_id)
                    missing.remove(user_id)
            if not missing:
                break
        return found
