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
