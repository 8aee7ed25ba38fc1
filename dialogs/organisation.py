"""The organisation of the collaboration (forums, hospitals, decision body) as configuration data."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Forum(_Strict):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    name: str
    secretariat: str | None = None
    aliases: list[str] = Field(default_factory=list)


class Hospital(_Strict):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    name: str
    forum: str


class ForumRef(_Strict):
    """One forum a channel can be bound to: a hospital's samarbejdsforum, PSG or the decision body."""

    id: str
    name: str
    kind: str  # hospital | psg | decision (see dialogs/process.py)
    hospital_id: str | None = None


HOSPITAL_FORUM_PREFIX = "sf_"


class Organisation(_Strict):
    region: str
    portfolio_group: Forum
    decision_body: Forum
    hospitals: list[Hospital] = Field(min_length=1)
    organisation_types: list[str] = Field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> Organisation:
        with path.open(encoding="utf-8") as handle:
            return cls.model_validate(yaml.safe_load(handle))

    def hospital_forums(self) -> dict[str, str]:
        """hospital id → its samarbejdsforum's name (the choices of the route page)."""
        return {hospital.id: hospital.forum for hospital in self.hospitals}

    def hospital(self, hospital_id: str | None) -> Hospital | None:
        return next((h for h in self.hospitals if h.id == hospital_id), None)

    def forums(self) -> list[ForumRef]:
        """Every forum of the configuration, in the order an admin expects them."""
        forums = [ForumRef(id=f"{HOSPITAL_FORUM_PREFIX}{h.id}", name=h.forum, kind="hospital", hospital_id=h.id)
                  for h in self.hospitals]
        forums.append(ForumRef(id=self.portfolio_group.id, name=self.portfolio_group.name, kind="psg"))
        forums.append(ForumRef(id=self.decision_body.id, name=self.decision_body.name, kind="decision"))
        return forums

    def forum(self, forum_id: str | None) -> ForumRef | None:
        return next((f for f in self.forums() if f.id == forum_id), None)

    def forum_of_kind(self, kind: str, hospital_id: str | None = None) -> ForumRef | None:
        if kind == "hospital":
            return self.forum(f"{HOSPITAL_FORUM_PREFIX}{hospital_id}") if hospital_id else None
        return next((f for f in self.forums() if f.kind == kind), None)
