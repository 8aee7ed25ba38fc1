"""Repositories over one transaction (SQLAlchemy Core on the mapped tables: lean per turn)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, and_, bindparam, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.common import as_utc, dialect_insert, utcnow
from storage.models import (
    AnswerRow,
    CaseCounterRow,
    CaseEventRow,
    CaseRow,
    ConversationStateRow,
    ProcessedActivityRow,
)

cases_t = cast(Table, CaseRow.__table__)
counters_t = cast(Table, CaseCounterRow.__table__)
answers_t = cast(Table, AnswerRow.__table__)
events_t = cast(Table, CaseEventRow.__table__)
state_t = cast(Table, ConversationStateRow.__table__)
processed_t = cast(Table, ProcessedActivityRow.__table__)


COPENHAGEN = ZoneInfo("Europe/Copenhagen")


class StateConflict(Exception):
    """The conversation state changed since it was read (another turn or process wrote it)."""


class RevisionConflict(Exception):
    """The case changed since it was read."""


@dataclass
class Case:
    id: int
    number: str
    title: str
    tenant_id: str
    initiator_id: str
    initiator_name: str
    phase: str
    current_step: str
    route: str | None
    hospital: str | None
    revision: int
    form_versions: dict[str, str]
    flags: dict[str, Any]
    closed_reason: str | None
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None

    @classmethod
    def from_row(cls, row: Any) -> Case:
        m = row._mapping
        return cls(
            id=m["id"],
            number=m["number"],
            title=m["title"],
            tenant_id=m["tenant_id"],
            initiator_id=m["initiator_id"],
            initiator_name=m["initiator_name"],
            phase=m["phase"],
            current_step=m["current_step"],
            route=m["route"],
            hospital=m["hospital"],
            revision=m["revision"],
            form_versions=json.loads(m["form_versions"]),
            flags=json.loads(m["flags"] or "{}"),
            closed_reason=m["closed_reason"],
            created_at=as_utc(m["created_at"]),  # type: ignore[arg-type]
            updated_at=as_utc(m["updated_at"]),  # type: ignore[arg-type]
            submitted_at=as_utc(m["submitted_at"]),
        )


@dataclass
class StoredAnswer:
    value: str
    revision: int


@dataclass
class CaseAnswers:
    """Answers of one case: form id → item id → value (with the revision that wrote it)."""

    by_form: dict[str, dict[str, StoredAnswer]] = field(default_factory=dict)

    def values(self) -> dict[str, dict[str, str]]:
        return {form: {item: a.value for item, a in items.items()} for form, items in self.by_form.items()}

    def apply(self, form_id: str, values: dict[str, str], revision: int) -> None:
        """Mirror a ``Repo.save_answers`` in memory ("" clears)."""
        answers = self.by_form.setdefault(form_id, {})
        for item_id, value in values.items():
            if value == "":
                answers.pop(item_id, None)
            else:
                answers[item_id] = StoredAnswer(value, revision)


@dataclass(frozen=True)
class EventSpec:
    """An event to record with a case update."""

    actor_id: str
    actor_name: str
    kind: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Event:
    at: datetime
    actor_id: str
    actor_name: str
    kind: str
    detail: dict[str, Any]


MUTABLE_CASE_COLUMNS = (
    "title", "phase", "current_step", "route", "hospital", "revision", "form_versions", "flags",
    "closed_reason", "updated_at", "submitted_at",
)


class Statements:
    """Statements of the hot path, built once per dialect (building them is costlier than running them)."""

    def __init__(self, *, sqlite: bool) -> None:
        insert_ = dialect_insert(sqlite=sqlite)
        self.insert = insert_
        self.claim = insert_(processed_t).on_conflict_do_nothing(index_elements=["activity_id"])
        upsert = insert_(answers_t)
        self.upsert_answers = upsert.on_conflict_do_update(
            index_elements=["case_id", "form_id", "item_id"],
            set_={
                "value": upsert.excluded.value,
                "revision": upsert.excluded.revision,
                "updated_at": upsert.excluded.updated_at,
                "updated_by": upsert.excluded.updated_by,
            },
        )
        self.get_case = select(cases_t).where(cases_t.c.id == bindparam("case_id"))
        self.get_case_for_update = self.get_case if sqlite else self.get_case.with_for_update()
        self.get_answers = select(
            answers_t.c.form_id, answers_t.c.item_id, answers_t.c.value, answers_t.c.revision
        ).where(answers_t.c.case_id == bindparam("case_id"))
        self.add_event = insert(events_t)
        self.update_case = (
            update(cases_t)
            .where(and_(cases_t.c.id == bindparam("b_id"), cases_t.c.revision == bindparam("b_revision")))
            .values({column: bindparam(f"v_{column}") for column in MUTABLE_CASE_COLUMNS})
        )
        # PostgreSQL: the case update and its event in one round trip (the event only if the update matched).
        self.update_case_with_event: Any = None
        if not sqlite:
            updated = self.update_case.returning(cases_t.c.id).cte("updated")
            self.update_case_with_event = insert(events_t).from_select(
                ["case_id", "at", "actor_id", "actor_name", "kind", "detail"],
                select(
                    updated.c.id,
                    bindparam("e_at", type_=events_t.c.at.type),
                    bindparam("e_actor_id", type_=events_t.c.actor_id.type),
                    bindparam("e_actor_name", type_=events_t.c.actor_name.type),
                    bindparam("e_kind", type_=events_t.c.kind.type),
                    bindparam("e_detail", type_=events_t.c.detail.type),
                ),
            )
        self.get_case_with_answers = (
            select(cases_t, answers_t.c.form_id, answers_t.c.item_id, answers_t.c.value,
                   answers_t.c.revision.label("answer_revision"))
            .select_from(cases_t.outerjoin(answers_t, answers_t.c.case_id == cases_t.c.id))
            .where(cases_t.c.id == bindparam("case_id"))
        )
        self.list_cases = (
            select(cases_t)
            .where(cases_t.c.initiator_id == bindparam("initiator_id"))
            .order_by(cases_t.c.updated_at.desc(), cases_t.c.id.desc())
            .limit(bindparam("limit"))
        )

        self.load_state = select(state_t.c.data, state_t.c.etag).where(state_t.c.key == bindparam("key"))


_STATEMENTS: dict[bool, Statements | None] = {True: None, False: None}


def statements(*, sqlite: bool) -> Statements:
    built = _STATEMENTS[sqlite]
    if built is None:
        built = _STATEMENTS[sqlite] = Statements(sqlite=sqlite)
    return built


class Repo:
    """All reads and writes of one turn, on one connection inside one transaction."""

    def __init__(self, conn: AsyncConnection, *, sqlite: bool) -> None:
        self.conn = conn
        self._sql = statements(sqlite=sqlite)
        self._insert = self._sql.insert
        self._sqlite = sqlite

    # --- duplicate activities -------------------------------------------------------------
    async def claim_activity(self, activity_id: str) -> bool:
        """Record an activity id; False when it was already processed (a redelivery)."""
        result = await self.conn.execute(self._sql.claim, {"activity_id": activity_id, "received_at": utcnow()})
        return result.rowcount == 1

    async def prune_activities(self, older_than: timedelta) -> int:
        result = await self.conn.execute(delete(processed_t).where(processed_t.c.received_at < utcnow() - older_than))
        return result.rowcount or 0

    # --- cases ----------------------------------------------------------------------------
    async def create_case(
        self,
        *,
        tenant_id: str,
        initiator_id: str,
        initiator_name: str,
        phase: str,
        current_step: str,
        form_versions: dict[str, str],
        prefix: str = "OF",
    ) -> Case:
        now = utcnow()
        year = now.astimezone(COPENHAGEN).year  # case numbers follow the Danish calendar year
        seq = await self._next_seq(year)
        values = {
            "number": f"{prefix}-{year}-{seq:04d}",
            "year": year,
            "seq": seq,
            "title": "",
            "tenant_id": tenant_id,
            "initiator_id": initiator_id,
            "initiator_name": initiator_name,
            "phase": phase,
            "current_step": current_step,
            "revision": 1,
            "form_versions": json.dumps(form_versions, sort_keys=True),
            "flags": "{}",
            "created_at": now,
            "updated_at": now,
        }
        result = await self.conn.execute(insert(cases_t).values(**values).returning(cases_t))
        return Case.from_row(result.one())

    async def _next_seq(self, year: int) -> int:
        bumped = await self.conn.execute(
            update(counters_t).where(counters_t.c.year == year).values(last=counters_t.c.last + 1).returning(counters_t.c.last)
        )
        row = bumped.first()
        if row is not None:
            return int(row[0])
        stmt = self._insert(counters_t).values(year=year, last=1).on_conflict_do_update(
            index_elements=["year"], set_={"last": counters_t.c.last + 1}
        )
        result = await self.conn.execute(stmt.returning(counters_t.c.last))
        return int(result.scalar_one())

    async def get_case(self, case_id: int, *, for_update: bool = False) -> Case | None:
        stmt = self._sql.get_case_for_update if for_update else self._sql.get_case
        row = (await self.conn.execute(stmt, {"case_id": case_id})).first()
        return Case.from_row(row) if row else None

    async def get_cases(self, case_ids: list[int]) -> list[Case]:
        if not case_ids:
            return []
        rows = await self.conn.execute(select(cases_t).where(cases_t.c.id.in_(case_ids)))
        return [Case.from_row(row) for row in rows.all()]

    async def get_case_by_number(self, number: str) -> Case | None:
        row = (await self.conn.execute(select(cases_t).where(cases_t.c.number == number.strip().upper()))).first()
        return Case.from_row(row) if row else None

    async def list_cases(self, initiator_id: str, *, limit: int = 20) -> list[Case]:
        rows = await self.conn.execute(self._sql.list_cases, {"initiator_id": initiator_id, "limit": limit})
        return [Case.from_row(row) for row in rows.all()]

    async def count_cases(self, initiator_id: str) -> int:
        stmt = select(func.count()).select_from(cases_t).where(cases_t.c.initiator_id == initiator_id)
        return int((await self.conn.execute(stmt)).scalar_one())

    async def newest_open_case(self, initiator_id: str, open_phases: list[str]) -> Case | None:
        stmt = (
            select(cases_t)
            .where(and_(cases_t.c.initiator_id == initiator_id, cases_t.c.phase.in_(open_phases)))
            .order_by(cases_t.c.updated_at.desc(), cases_t.c.id.desc())
            .limit(1)
        )
        row = (await self.conn.execute(stmt)).first()
        return Case.from_row(row) if row else None

    async def update_case(self, case: Case, *, event: EventSpec | None = None, **changes: Any) -> Case:
        """Write changes and bump the revision; refuses (RevisionConflict) if someone else wrote first.

        ``event``: record it in the case's history in the same step (one round trip on PostgreSQL)."""
        unknown = set(changes) - set(MUTABLE_CASE_COLUMNS)
        if unknown:
            raise ValueError(f"not a mutable case field: {sorted(unknown)}")
        now = utcnow()
        changed = {k: (v.astimezone(UTC) if isinstance(v, datetime) else v) for k, v in changes.items()}
        row = {column: changed.get(column, getattr(case, column)) for column in MUTABLE_CASE_COLUMNS}
        row.update(revision=case.revision + 1, updated_at=now)
        for key in ("flags", "form_versions"):
            row[key] = json.dumps(row[key], sort_keys=True)
        params = {f"v_{column}": value for column, value in row.items()}
        params.update(b_id=case.id, b_revision=case.revision)
        if event is not None and self._sql.update_case_with_event is not None:
            params.update(e_at=now, e_actor_id=event.actor_id, e_actor_name=event.actor_name, e_kind=event.kind,
                          e_detail=json.dumps(event.detail, ensure_ascii=False, sort_keys=True))
            result = await self.conn.execute(self._sql.update_case_with_event, params)
            event = None  # written (or nothing was, if the revision check failed)
        else:
            result = await self.conn.execute(self._sql.update_case, params)
        if result.rowcount != 1:
            raise RevisionConflict(case.number)
        if event is not None:
            await self.add_event(case.id, actor_id=event.actor_id, actor_name=event.actor_name, kind=event.kind,
                                 detail=event.detail, at=now)
        for key, value in changed.items():
            setattr(case, key, value)
        case.revision += 1
        case.updated_at = now
        return case

    async def get_case_and_answers(self, case_id: int, *, for_update: bool = False) -> tuple[Case, CaseAnswers] | None:
        """The case and all its answers in one round trip (locking the case row when asked)."""
        if for_update and not self._sqlite:
            # Lock the case row on its own first. A joined SELECT … FOR UPDATE that waited for another
            # transaction re-reads the locked case row but not the joined answers (those come from the
            # statement's snapshot), so it could pair the new revision with old answers. After the lock
            # is held, a fresh statement sees everything committed before it.
            if (await self.conn.execute(self._sql.get_case_for_update, {"case_id": case_id})).first() is None:
                return None
        rows = (await self.conn.execute(self._sql.get_case_with_answers, {"case_id": case_id})).all()
        if not rows:
            return None
        answers = CaseAnswers()
        for row in rows:
            m = row._mapping
            if m["form_id"] is not None:
                answers.by_form.setdefault(m["form_id"], {})[m["item_id"]] = StoredAnswer(m["value"], m["answer_revision"])
        return Case.from_row(rows[0]), answers

    # --- answers --------------------------------------------------------------------------
    async def get_answers(self, case_id: int) -> CaseAnswers:
        rows = await self.conn.execute(self._sql.get_answers, {"case_id": case_id})
        answers = CaseAnswers()
        for form_id, item_id, value, revision in rows.all():
            answers.by_form.setdefault(form_id, {})[item_id] = StoredAnswer(value, revision)
        return answers

    async def save_answers(
        self, case_id: int, form_id: str, values: dict[str, str], *, revision: int, actor_id: str
    ) -> None:
        """Upsert answers (an empty string clears an answer)."""
        if not values:
            return
        now = utcnow()
        cleared = [item for item, value in values.items() if value == ""]
        # PostgreSQL text cannot hold U+0000; it is never meaningful in an answer, so no backend stores it.
        values = {item: value.replace("\x00", "") for item, value in values.items()}
        kept = [
            {"case_id": case_id, "form_id": form_id, "item_id": item, "value": value, "revision": revision,
             "updated_at": now, "updated_by": actor_id}
            for item, value in values.items()
            if value != ""
        ]
        if cleared:
            await self.conn.execute(
                delete(answers_t).where(
                    and_(answers_t.c.case_id == case_id, answers_t.c.form_id == form_id, answers_t.c.item_id.in_(cleared))
                )
            )
        if kept:
            await self.conn.execute(self._sql.upsert_answers, kept)

    # --- events ---------------------------------------------------------------------------
    async def add_event(self, case_id: int, *, actor_id: str, actor_name: str, kind: str, detail: dict[str, Any],
                        at: datetime | None = None) -> None:
        await self.conn.execute(
            self._sql.add_event,
            {"case_id": case_id, "at": at or utcnow(), "actor_id": actor_id, "actor_name": actor_name, "kind": kind,
             "detail": json.dumps(detail, ensure_ascii=False, sort_keys=True)},
        )

    async def events(self, case_id: int) -> list[Event]:
        rows = await self.conn.execute(
            select(events_t.c.at, events_t.c.actor_id, events_t.c.actor_name, events_t.c.kind, events_t.c.detail)
            .where(events_t.c.case_id == case_id)
            .order_by(events_t.c.id)
        )
        return [Event(as_utc(at), actor_id, actor_name, kind, json.loads(detail)) for at, actor_id, actor_name, kind, detail in rows.all()]  # type: ignore[arg-type]

    # --- conversation state ---------------------------------------------------------------
    async def load_state(self, key: str) -> tuple[dict[str, Any], int | None]:
        row = (await self.conn.execute(self._sql.load_state, {"key": key})).first()
        if row is None:
            return {}, None
        return json.loads(row[0]), int(row[1])

    async def save_state(self, key: str, data: dict[str, Any], etag: int | None) -> int:
        """Write state if it is still at ``etag`` (None: must not exist yet); returns the new eTag."""
        payload = json.dumps(data, ensure_ascii=False, sort_keys=True)
        now = utcnow()
        if etag is None:
            stmt = self._insert(state_t).values(key=key, data=payload, etag=1, updated_at=now)
            result = await self.conn.execute(stmt.on_conflict_do_nothing(index_elements=["key"]))
            if result.rowcount != 1:
                raise StateConflict(key)
            return 1
        result = await self.conn.execute(
            update(state_t)
            .where(and_(state_t.c.key == key, state_t.c.etag == etag))
            .values(data=payload, etag=etag + 1, updated_at=now)
        )
        if result.rowcount != 1:
            raise StateConflict(key)
        return etag + 1

    async def delete_state(self, key: str) -> None:
        await self.conn.execute(delete(state_t).where(state_t.c.key == key))
