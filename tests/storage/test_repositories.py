"""Storage contract: every test runs on SQLite and on a real PostgreSQL (``db_url``).

The last section uses ``pg_url`` only: two :class:`Database` objects on one PostgreSQL database behave like
two bot processes sharing it (row locks, optimistic revision checks).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, inspect, select, text
from sqlalchemy.exc import IntegrityError

from storage import repositories
from storage.db import Database
from storage.migrate import current_revision, head_revision, upgrade
from storage.models import Base
from storage.repositories import (
    Case,
    Repo,
    RevisionConflict,
    StateConflict,
    cases_t,
    counters_t,
    processed_t,
)

TABLES = {
    "cases", "case_counters", "answers", "case_events", "conversation_state", "processed_activities",
    "outbox", "outbox_sends", "teams", "team_channels", "forum_bindings", "forum_members", "bot_admins", "people",
    "case_threads", "case_participants", "reminders",
}
NUMBER = re.compile(r"^OF-(\d{4})-(\d{4})$")
DANISH = "Æblegrød på Ærø – øl, blåbær & rødgrød med fløde: ÆØÅ æøå «citat» é ü ß"
EMOJI = "👩🏽‍⚕️🏥🚑 ❤️‍🩹 🇩🇰 𝔘𝔫𝔦𝔠𝔬𝔡𝔢"
TIMEOUT = 15.0


# --- fixtures & helpers -------------------------------------------------------------------------


@pytest.fixture
async def fresh_db(db_url: str) -> AsyncIterator[Database]:
    """A Database on an empty database (no migrations applied)."""
    database = Database(db_url)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
async def db(fresh_db: Database) -> Database:
    await upgrade(fresh_db)
    return fresh_db


class Clock:
    """Stands in for ``storage.repositories.utcnow``; every call advances by ``step``."""

    def __init__(self, start: datetime, step: timedelta = timedelta(seconds=1)) -> None:
        self.now = start
        self.step = step

    def __call__(self) -> datetime:
        value = self.now
        self.now += self.step
        return value

    def set(self, value: datetime) -> None:
        self.now = value


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock(datetime(2026, 3, 14, 9, 26, 53, 589793, tzinfo=UTC))
    monkeypatch.setattr(repositories, "utcnow", fake)
    return fake


async def new_case(repo: Repo, initiator: str = "user-1", **overrides: Any) -> Case:
    kwargs: dict[str, Any] = {
        "tenant_id": "tenant-1",
        "initiator_id": initiator,
        "initiator_name": "Søren Ærø",
        "phase": "draft",
        "current_step": "screening",
        "form_versions": {"screening": "2026.1", "mini_mtv": "2026.2"},
    }
    kwargs.update(overrides)
    return await repo.create_case(**kwargs)


async def create_case(db: Database, initiator: str = "user-1", **overrides: Any) -> Case:
    async with db.transaction() as repo:
        return await new_case(repo, initiator, **overrides)


async def read_case(db: Database, case_id: int) -> Case:
    async with db.transaction() as repo:
        case = await repo.get_case(case_id)
    assert case is not None
    return case


def assert_utc(value: datetime | None) -> None:
    assert value is not None
    assert value.tzinfo is not None
    assert value.utcoffset() == timedelta(0)


class Boom(Exception):
    """Raised inside a transaction to make it roll back."""


async def lock_timeout(repo: Repo, seconds: int = 5) -> None:
    """PostgreSQL: fail instead of hanging if a row lock is never released."""
    await repo.conn.execute(text(f"SET LOCAL lock_timeout = '{seconds}s'"))


# --- migrations ---------------------------------------------------------------------------------


def _table_names(sync_conn: Any) -> set[str]:
    return set(inspect(sync_conn).get_table_names())


def _schema(sync_conn: Any) -> dict[str, Any]:
    inspector = inspect(sync_conn)
    return {
        name: (
            sorted((c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(name)),
            sorted(i["name"] for i in inspector.get_indexes(name)),
        )
        for name in sorted(inspector.get_table_names())
    }


def _diffs(sync_conn: Any) -> list[Any]:
    context = MigrationContext.configure(sync_conn, opts={"compare_type": True, "compare_server_default": True})
    return compare_metadata(context, Base.metadata)


async def test_upgrade_creates_the_schema(fresh_db: Database) -> None:
    assert await current_revision(fresh_db) is None
    async with fresh_db.connect() as conn:
        assert await conn.run_sync(_table_names) == set()

    await upgrade(fresh_db)

    async with fresh_db.connect() as conn:
        assert await conn.run_sync(_table_names) == TABLES | {"alembic_version"}
        indexes = await conn.run_sync(lambda c: {i["name"] for i in inspect(c).get_indexes("cases")})
        uniques = await conn.run_sync(lambda c: inspect(c).get_unique_constraints("cases"))
    assert {"ix_cases_initiator_id", "ix_cases_initiator_updated"} <= indexes
    assert ["year", "seq"] in [u["column_names"] for u in uniques]
    assert ["number"] in [u["column_names"] for u in uniques]


async def test_upgrade_twice_is_a_no_op(db: Database) -> None:
    case = await create_case(db)
    async with db.connect() as conn:
        before = await conn.run_sync(_schema)

    await upgrade(db)

    async with db.connect() as conn:
        assert await conn.run_sync(_schema) == before
    assert await current_revision(db) == head_revision()
    assert (await read_case(db, case.id)).number == case.number


async def test_current_revision_is_head(db: Database) -> None:
    assert head_revision()
    assert await current_revision(db) == head_revision()


async def test_models_and_migrations_agree(db: Database) -> None:
    async with db.connect() as conn:
        diffs = await conn.run_sync(_diffs)
    assert diffs == []


# --- case numbers -------------------------------------------------------------------------------


async def test_case_numbers_are_sequential_and_readable(db: Database) -> None:
    year = datetime.now(UTC).year
    cases = [await create_case(db) for _ in range(3)]
    assert [c.number for c in cases] == [f"OF-{year}-{n:04d}" for n in (1, 2, 3)]
    assert all(NUMBER.match(c.number) for c in cases)
    assert len({c.id for c in cases}) == 3

    async with db.transaction() as repo:
        other = await new_case(repo, prefix="XY")
        by_number = await repo.get_case_by_number(cases[1].number)
        by_lower = await repo.get_case_by_number(cases[1].number.lower())
        missing = await repo.get_case_by_number(f"OF-{year}-9999")
    assert other.number == f"XY-{year}-0004"  # one sequence per year, whatever the prefix
    assert by_number is not None and by_number.id == cases[1].id
    assert by_lower is not None and by_lower.id == cases[1].id
    assert missing is None


async def test_case_numbers_are_unique_in_the_schema(db: Database) -> None:
    case = await create_case(db)
    row = {
        "title": "", "tenant_id": "t", "initiator_id": "u", "initiator_name": "", "phase": "draft",
        "current_step": "s", "revision": 1, "form_versions": "{}", "flags": "{}",
        "created_at": case.created_at, "updated_at": case.updated_at,
    }
    with pytest.raises(IntegrityError):  # same number
        async with db.transaction() as repo:
            await repo.conn.execute(insert(cases_t).values(number=case.number, year=1999, seq=1, **row))
    with pytest.raises(IntegrityError):  # same (year, seq)
        year = case.created_at.year
        async with db.transaction() as repo:
            await repo.conn.execute(insert(cases_t).values(number="OF-X", year=year, seq=1, **row))


async def test_30_concurrent_creates_get_30_consecutive_numbers(db: Database) -> None:
    in_flight = 0
    peak = 0

    async def create(i: int) -> Case:
        nonlocal in_flight, peak
        async with db.transaction() as repo:
            in_flight += 1
            peak = max(peak, in_flight)
            try:
                await asyncio.sleep(0)  # let the others start their transactions
                return await new_case(repo, initiator=f"user-{i}")
            finally:
                in_flight -= 1

    results = await asyncio.wait_for(asyncio.gather(*(create(i) for i in range(30)), return_exceptions=True), TIMEOUT)
    cases = [r for r in results if isinstance(r, Case)]
    assert len(cases) == 30, [r for r in results if not isinstance(r, Case)]

    numbers = [c.number for c in cases]
    assert len(set(numbers)) == 30
    matches = [NUMBER.match(n) for n in numbers]
    assert all(matches)
    assert {int(m.group(1)) for m in matches if m} == {datetime.now(UTC).year}
    assert sorted(int(m.group(2)) for m in matches if m) == list(range(1, 31))
    if db.is_sqlite:
        assert peak == 1  # serialised by the asyncio lock
    else:
        assert peak > 1  # real concurrency over the pool
    async with db.transaction() as repo:
        last = (await repo.conn.execute(select(counters_t.c.last))).scalars().all()
    assert last == [30]


async def test_rolled_back_create_leaves_no_gap(db: Database) -> None:
    first = await create_case(db)
    with pytest.raises(Boom):
        async with db.transaction() as repo:
            lost = await new_case(repo)
            assert lost.number.endswith("-0002")
            raise Boom
    again = await create_case(db)
    assert first.number.endswith("-0001")
    assert again.number.endswith("-0002")


async def test_a_new_year_starts_at_0001(db: Database, clock: Clock) -> None:
    async with db.transaction() as repo:
        await repo.conn.execute(insert(counters_t).values(year=2026, last=41))

    # Case numbers follow the Danish calendar year (Europe/Copenhagen, UTC+1 in winter).
    clock.set(datetime(2026, 12, 31, 22, 59, 59, tzinfo=UTC))
    late = await create_case(db)
    clock.set(datetime(2026, 12, 31, 23, 0, 0, tzinfo=UTC))  # 1 January 2027, 00:00 in Copenhagen
    new_year = [await create_case(db) for _ in range(2)]
    clock.set(datetime(2026, 12, 31, 22, 59, 59, 500000, tzinfo=UTC))  # a late straggler for 2026
    straggler = await create_case(db)

    assert late.number == "OF-2026-0042"
    assert [c.number for c in new_year] == ["OF-2027-0001", "OF-2027-0002"]
    assert straggler.number == "OF-2026-0043"
    async with db.transaction() as repo:
        rows = (await repo.conn.execute(select(counters_t).order_by(counters_t.c.year))).all()
    assert [tuple(r) for r in rows] == [(2026, 43), (2027, 2)]


# --- answers ------------------------------------------------------------------------------------


async def test_answers_upsert_overwrites_and_stores_revisions(db: Database) -> None:
    case = await create_case(db)
    async with db.transaction() as repo:
        await repo.save_answers(case.id, "screening", {"q1": "ja", "q2": "nej"}, revision=1, actor_id="a")
    async with db.transaction() as repo:
        await repo.save_answers(case.id, "screening", {"q2": "måske", "q3": "ny"}, revision=2, actor_id="b")
        await repo.save_answers(case.id, "mini_mtv", {"q1": "andet skema"}, revision=2, actor_id="b")
        await repo.save_answers(case.id, "mini_mtv", {}, revision=3, actor_id="b")  # nothing to do
    async with db.transaction() as repo:
        answers = await repo.get_answers(case.id)

    assert answers.values() == {
        "screening": {"q1": "ja", "q2": "måske", "q3": "ny"},
        "mini_mtv": {"q1": "andet skema"},
    }
    revisions = {f: {i: a.revision for i, a in items.items()} for f, items in answers.by_form.items()}
    assert revisions == {"screening": {"q1": 1, "q2": 2, "q3": 2}, "mini_mtv": {"q1": 2}}


async def test_empty_answer_deletes(db: Database) -> None:
    case = await create_case(db)
    async with db.transaction() as repo:
        await repo.save_answers(case.id, "screening", {"q1": "ja", "q2": "nej", "q3": " "}, revision=1, actor_id="a")
        await repo.save_answers(case.id, "mini_mtv", {"q1": "bliver"}, revision=1, actor_id="a")
    async with db.transaction() as repo:
        await repo.save_answers(case.id, "screening", {"q1": "", "q2": "ændret", "nope": ""}, revision=2, actor_id="a")
        answers = await repo.get_answers(case.id)
    assert answers.values() == {"screening": {"q2": "ændret", "q3": " "}, "mini_mtv": {"q1": "bliver"}}

    async with db.transaction() as repo:
        await repo.save_answers(case.id, "screening", {"q2": "", "q3": ""}, revision=3, actor_id="a")
        answers = await repo.get_answers(case.id)
    assert answers.values() == {"mini_mtv": {"q1": "bliver"}}


ROUND_TRIP_VALUES = {
    "danish": DANISH,
    "emoji": EMOJI,
    "whitespace": "  linje 1\r\nlinje 2\n\ttab  ",
    "quotes": "'; DROP TABLE answers; -- \"\\ %s %(x)s ?",
    "chars_2000": ("Æø" + "x" * 7 + "🏥") * 200,
    "chars_20000": "".join(chr(0x20 + (i * 7919) % 0x2000) for i in range(20_000)),
}


async def test_answer_values_round_trip_exactly(db: Database) -> None:
    assert len(ROUND_TRIP_VALUES["chars_2000"]) == 2_000
    assert len(ROUND_TRIP_VALUES["chars_20000"]) == 20_000
    case = await create_case(db)
    async with db.transaction() as repo:
        await repo.save_answers(case.id, "screening", ROUND_TRIP_VALUES, revision=1, actor_id="a")
        await repo.save_answers(case.id, "mini_mtv", {"one": ROUND_TRIP_VALUES["chars_20000"]}, revision=1, actor_id="a")
    async with db.transaction() as repo:
        stored = (await repo.get_answers(case.id)).values()
    for name, value in ROUND_TRIP_VALUES.items():
        assert stored["screening"][name] == value, name
    assert stored["mini_mtv"]["one"] == ROUND_TRIP_VALUES["chars_20000"]


@pytest.mark.parametrize(
    "url_fixture",
    [pytest.param("sqlite_url", id="sqlite"), pytest.param("pg_url", id="postgres", marks=pytest.mark.postgres)],
)
async def test_answer_with_nul_character_is_stored_without_it_on_both_backends(request: pytest.FixtureRequest, url_fixture: str) -> None:
    database = Database(request.getfixturevalue(url_fixture))
    try:
        await upgrade(database)
        case = await create_case(database)
        async with database.transaction() as repo:
            await repo.save_answers(case.id, "screening", {"q1": "før\x00efter"}, revision=1, actor_id="a")
        async with database.transaction() as repo:
            assert (await repo.get_answers(case.id)).values() == {"screening": {"q1": "førefter"}}
    finally:
        await database.dispose()


async def test_answers_of_one_case_do_not_leak_into_another(db: Database) -> None:
    a = await create_case(db, "user-a")
    b = await create_case(db, "user-b")
    empty = await create_case(db, "user-c")
    async with db.transaction() as repo:
        await repo.save_answers(a.id, "screening", {"q1": "A", "q2": "A2"}, revision=1, actor_id="a")
        await repo.save_answers(b.id, "screening", {"q1": "B"}, revision=1, actor_id="b")
    async with db.transaction() as repo:
        await repo.save_answers(b.id, "screening", {"q2": ""}, revision=2, actor_id="b")  # clear only in b
    async with db.transaction() as repo:
        assert (await repo.get_answers(a.id)).values() == {"screening": {"q1": "A", "q2": "A2"}}
        assert (await repo.get_answers(b.id)).values() == {"screening": {"q1": "B"}}
        assert (await repo.get_answers(empty.id)).values() == {}
        assert (await repo.get_answers(999_999)).values() == {}


# --- update_case --------------------------------------------------------------------------------


async def test_update_case_bumps_revision_and_persists(db: Database) -> None:
    case = await create_case(db)
    assert case.revision == 1
    async with db.transaction() as repo:
        returned = await repo.update_case(case, title="Sag om sårpleje", route="forum", hospital="Rigshospitalet")
    assert returned is case
    assert case.revision == 2 and case.title == "Sag om sårpleje"
    async with db.transaction() as repo:
        await repo.update_case(case, phase="review")
    stored = await read_case(db, case.id)
    assert stored.revision == 3
    assert (stored.title, stored.route, stored.hospital, stored.phase) == (
        "Sag om sårpleje", "forum", "Rigshospitalet", "review",
    )
    assert stored.updated_at == case.updated_at
    assert stored.created_at < stored.updated_at


async def test_stale_revision_gets_revision_conflict_and_nothing_changes(db: Database) -> None:
    created = await create_case(db)
    first = await read_case(db, created.id)
    second = await read_case(db, created.id)

    async with db.transaction() as repo:
        await repo.update_case(first, title="første", flags={"by": "first"})
        await repo.save_answers(first.id, "screening", {"q1": "første"}, revision=first.revision, actor_id="one")

    with pytest.raises(RevisionConflict):
        async with db.transaction() as repo:
            # the turn's other writes go before the refused update and must roll back with it
            await repo.save_answers(second.id, "screening", {"q1": "anden"}, revision=2, actor_id="two")
            await repo.add_event(second.id, actor_id="two", actor_name="", kind="gemt", detail={})
            await repo.update_case(second, title="anden", flags={"by": "second"})

    assert second.revision == 1 and second.title == "" and second.flags == {}  # caller's copy untouched
    stored = await read_case(db, created.id)
    assert (stored.revision, stored.title, stored.flags) == (2, "første", {"by": "first"})
    async with db.transaction() as repo:
        assert (await repo.get_answers(created.id)).values() == {"screening": {"q1": "første"}}
        assert await repo.events(created.id) == []

    async with db.transaction() as repo:  # after reloading, the second writer can write
        fresh = await repo.get_case(created.id)
        assert fresh is not None
        await repo.update_case(fresh, title="anden")
    assert (await read_case(db, created.id)).revision == 3


async def test_update_of_a_missing_case_is_a_conflict(db: Database) -> None:
    case = await create_case(db)
    case.id = 999_999
    with pytest.raises(RevisionConflict):
        async with db.transaction() as repo:
            await repo.update_case(case, title="x")


async def test_flags_and_form_versions_json_round_trip(db: Database) -> None:
    case = await create_case(db)
    assert case.form_versions == {"screening": "2026.1", "mini_mtv": "2026.2"}
    assert case.flags == {}
    flags = {
        "continue_anyway": True,
        "skipped": None,
        "note": DANISH + " " + EMOJI,
        "nested": {"liste": [1, 2.5, "tre", {"ø": ["å"]}], "tom": {}},
    }
    versions = {"screening": "2026.3", "mini_mtv": "2026.2", "dialoggrundlag": "2027.1"}
    async with db.transaction() as repo:
        await repo.update_case(case, flags=flags, form_versions=versions)
    stored = await read_case(db, case.id)
    assert stored.flags == flags
    assert stored.form_versions == versions
    assert case.flags == flags and case.form_versions == versions


async def test_timestamps_are_timezone_aware_utc(db: Database) -> None:
    before = datetime.now(UTC)
    case = await create_case(db)
    after = datetime.now(UTC)
    assert_utc(case.created_at)
    assert_utc(case.updated_at)
    assert case.submitted_at is None
    assert before <= case.created_at <= after

    submitted = datetime(2026, 7, 1, 10, 11, 12, 345678, tzinfo=UTC)
    async with db.transaction() as repo:
        await repo.update_case(case, submitted_at=submitted, phase="submitted")
        await repo.add_event(case.id, actor_id="a", actor_name="", kind="indsendt", detail={})
        events = await repo.events(case.id)
    stored = await read_case(db, case.id)
    for value in (stored.created_at, stored.updated_at, stored.submitted_at, events[0].at):
        assert_utc(value)
    assert stored.created_at == case.created_at  # microseconds survive
    assert stored.updated_at == case.updated_at
    assert stored.submitted_at == submitted
    assert before <= events[0].at <= datetime.now(UTC)


@pytest.mark.parametrize(
    "url_fixture",
    [
        pytest.param("sqlite_url", id="sqlite"),
        pytest.param("pg_url", id="postgres", marks=pytest.mark.postgres),
    ],
)
async def test_non_utc_aware_timestamp_keeps_its_instant(request: pytest.FixtureRequest, url_fixture: str) -> None:
    database = Database(request.getfixturevalue(url_fixture))
    try:
        await upgrade(database)
        case = await create_case(database)
        local = datetime(2026, 6, 1, 12, 0, tzinfo=ZoneInfo("Europe/Copenhagen"))  # 10:00 UTC
        async with database.transaction() as repo:
            await repo.update_case(case, submitted_at=local)
        stored = await read_case(database, case.id)
        assert_utc(stored.submitted_at)
        assert stored.submitted_at == local
    finally:
        await database.dispose()


# --- duplicate activities -----------------------------------------------------------------------


async def test_claim_activity_first_true_then_false(db: Database) -> None:
    async with db.transaction() as repo:
        assert await repo.claim_activity("act-1") is True
        assert await repo.claim_activity("act-1") is False
        assert await repo.claim_activity("act-2") is True
    async with db.transaction() as repo:
        assert await repo.claim_activity("act-1") is False
        assert await repo.claim_activity("act-2") is False
        assert await repo.claim_activity("act-3") is True


async def test_rolled_back_claim_is_not_kept(db: Database) -> None:
    with pytest.raises(Boom):
        async with db.transaction() as repo:
            assert await repo.claim_activity("act-rollback") is True
            raise Boom
    async with db.transaction() as repo:
        assert await repo.claim_activity("act-rollback") is True
    async with db.transaction() as repo:
        assert await repo.claim_activity("act-rollback") is False


async def test_prune_removes_old_activity_ids_only(db: Database, clock: Clock) -> None:
    start = clock.now
    clock.step = timedelta(0)
    async with db.transaction() as repo:
        await repo.claim_activity("old-1")
        await repo.claim_activity("old-2")
    clock.set(start + timedelta(hours=47))
    async with db.transaction() as repo:
        await repo.claim_activity("recent")
    clock.set(start + timedelta(hours=48, seconds=1))
    async with db.transaction() as repo:
        assert await repo.prune_activities(timedelta(hours=48)) == 2
        assert await repo.prune_activities(timedelta(hours=48)) == 0
    async with db.transaction() as repo:
        left = (await repo.conn.execute(select(processed_t.c.activity_id))).scalars().all()
        assert left == ["recent"]
        assert await repo.claim_activity("old-1") is True  # forgotten after pruning
        assert await repo.claim_activity("recent") is False


# --- conversation state -------------------------------------------------------------------------


async def test_conversation_state_etags(db: Database) -> None:
    key = "msteams/19:abc@thread.tacv2;messageid=1700000000000/user"
    async with db.transaction() as repo:
        assert await repo.load_state(key) == ({}, None)
        assert await repo.save_state(key, {"step": 1}, None) == 1
    async with db.transaction() as repo:
        assert await repo.load_state(key) == ({"step": 1}, 1)
        assert await repo.save_state(key, {"step": 2}, 1) == 2
    with pytest.raises(StateConflict):
        async with db.transaction() as repo:
            await repo.save_state(key, {"step": "stale"}, 1)
    with pytest.raises(StateConflict):
        async with db.transaction() as repo:
            await repo.save_state(key, {"step": "future"}, 7)
    with pytest.raises(StateConflict):
        async with db.transaction() as repo:
            await repo.save_state(key, {"step": "insert again"}, None)
    async with db.transaction() as repo:
        assert await repo.load_state(key) == ({"step": 2}, 2)
        with pytest.raises(StateConflict):
            await repo.save_state("other-key", {}, 1)  # update of a key that does not exist
        await repo.delete_state(key)
        await repo.delete_state("never-existed")
        assert await repo.load_state(key) == ({}, None)
        assert await repo.save_state(key, {"step": "restart"}, None) == 1


async def test_conversation_state_json_round_trip(db: Database) -> None:
    data = {
        "sted": "Ærøskøbing",
        "case": {"id": 7, "number": "OF-2026-0007", "noter": [DANISH, EMOJI, "", None]},
        "flag": True,
        "tal": [0, -1, 2.5, 10**12],
        "tom": {},
        "dybt": {"a": {"b": {"c": {"d": ["å", {"ø": "æ"}]}}}},
    }
    async with db.transaction() as repo:
        await repo.save_state("k1", data, None)
        await repo.save_state("k2", {"andet": "ja"}, None)
    async with db.transaction() as repo:
        assert await repo.load_state("k1") == (data, 1)
        assert await repo.load_state("k2") == ({"andet": "ja"}, 1)


# --- events -------------------------------------------------------------------------------------


async def test_events_are_ordered_and_detail_round_trips(db: Database, clock: Clock) -> None:
    case = await create_case(db)
    other = await create_case(db)
    details = [
        {"step": "screening", "svar": {"q1": DANISH}},
        {"emoji": EMOJI, "liste": [1, None, True, {"å": []}]},
        {},
    ]
    async with db.transaction() as repo:
        for i, detail in enumerate(details):
            await repo.add_event(case.id, actor_id=f"a{i}", actor_name="Søren Ærø", kind=f"kind-{i}", detail=detail)
            await repo.add_event(other.id, actor_id="x", actor_name="", kind="andet", detail={"i": i})
    async with db.transaction() as repo:
        events = await repo.events(case.id)
        assert len(await repo.events(other.id)) == 3
        assert await repo.events(999_999) == []
    assert [e.kind for e in events] == ["kind-0", "kind-1", "kind-2"]
    assert [e.actor_id for e in events] == ["a0", "a1", "a2"]
    assert all(e.actor_name == "Søren Ærø" for e in events)
    assert [e.detail for e in events] == details
    assert [e.at for e in events] == sorted(e.at for e in events)


async def test_events_keep_insertion_order_with_equal_timestamps(db: Database, clock: Clock) -> None:
    clock.step = timedelta(0)
    case = await create_case(db)
    async with db.transaction() as repo:
        for kind in ("c", "a", "b"):
            await repo.add_event(case.id, actor_id="a", actor_name="", kind=kind, detail={})
    async with db.transaction() as repo:
        assert [e.kind for e in await repo.events(case.id)] == ["c", "a", "b"]


# --- listing ------------------------------------------------------------------------------------


async def test_list_cases_newest_first_with_limit(db: Database, clock: Clock) -> None:
    a = await create_case(db)
    b = await create_case(db)
    c = await create_case(db)
    await create_case(db, "someone-else")
    async with db.transaction() as repo:
        await repo.update_case(a, title="rørt sidst")  # a becomes the most recently updated

    async with db.transaction() as repo:
        listed = await repo.list_cases("user-1")
        limited = await repo.list_cases("user-1", limit=2)
        assert await repo.count_cases("user-1") == 3
        assert await repo.count_cases("someone-else") == 1
        assert await repo.count_cases("nobody") == 0
        assert await repo.list_cases("nobody") == []
    assert [x.id for x in listed] == [a.id, c.id, b.id]
    assert [x.id for x in limited] == [a.id, c.id]
    assert listed[0].title == "rørt sidst"


async def test_list_cases_ties_broken_by_newest_id(db: Database, clock: Clock) -> None:
    clock.step = timedelta(0)
    cases = [await create_case(db) for _ in range(3)]
    async with db.transaction() as repo:
        assert [x.id for x in await repo.list_cases("user-1")] == [c.id for c in reversed(cases)]


async def test_newest_open_case(db: Database, clock: Clock) -> None:
    open_phases = ["draft", "review"]
    async with db.transaction() as repo:
        assert await repo.newest_open_case("user-1", open_phases) is None
    older = await create_case(db)
    newer = await create_case(db)
    await create_case(db, "someone-else")
    async with db.transaction() as repo:
        found = await repo.newest_open_case("user-1", open_phases)
        assert found is not None and found.id == newer.id
        await repo.update_case(older, phase="review")  # touched last → newest open
    async with db.transaction() as repo:
        found = await repo.newest_open_case("user-1", open_phases)
        assert found is not None and found.id == older.id
        await repo.update_case(older, phase="submitted", submitted_at=clock.now)
    async with db.transaction() as repo:
        found = await repo.newest_open_case("user-1", open_phases)
        assert found is not None and found.id == newer.id
        await repo.update_case(newer, phase="closed", closed_reason="trukket tilbage")
    async with db.transaction() as repo:
        assert await repo.newest_open_case("user-1", open_phases) is None
        assert await repo.newest_open_case("user-1", []) is None
        found = await repo.newest_open_case("user-1", ["closed"])
        assert found is not None and found.closed_reason == "trukket tilbage"


# --- PostgreSQL: two bot processes on one database ----------------------------------------------


@pytest.fixture
async def two_processes(pg_url: str) -> AsyncIterator[tuple[Database, Database]]:
    first, second = Database(pg_url), Database(pg_url)
    try:
        await upgrade(first)
        await upgrade(second)  # the second process finds the schema in place
        yield first, second
    finally:
        await first.dispose()
        await second.dispose()


def _outcomes(results: list[Any]) -> tuple[list[Case], list[BaseException]]:
    won = [r for r in results if isinstance(r, Case)]
    lost = [r for r in results if isinstance(r, BaseException)]
    return won, lost


@pytest.mark.postgres
async def test_pg_concurrent_update_from_two_processes_one_wins(two_processes: tuple[Database, Database]) -> None:
    db1, db2 = two_processes
    case = await create_case(db1)
    both_read = asyncio.Barrier(2)

    async def writer(database: Database, title: str) -> Case:
        async with database.transaction() as repo:
            await lock_timeout(repo)
            mine = await repo.get_case(case.id)
            assert mine is not None and mine.revision == 1
            await both_read.wait()
            updated = await repo.update_case(mine, title=title)
            await repo.add_event(case.id, actor_id=title, actor_name="", kind="gemt", detail={})
            await asyncio.sleep(0.1)  # hold the row lock a little while the other one writes
            return updated

    results = await asyncio.wait_for(
        asyncio.gather(writer(db1, "proces-1"), writer(db2, "proces-2"), return_exceptions=True), TIMEOUT
    )
    won, lost = _outcomes(results)
    assert len(won) == 1 and len(lost) == 1, results
    assert isinstance(lost[0], RevisionConflict)
    for database in (db1, db2):
        stored = await read_case(database, case.id)
        assert (stored.revision, stored.title) == (2, won[0].title)
        async with database.transaction() as repo:
            assert [e.actor_id for e in await repo.events(case.id)] == [won[0].title]


@pytest.mark.postgres
async def test_pg_second_writer_waits_for_the_first_then_conflicts(
    two_processes: tuple[Database, Database],
) -> None:
    db1, db2 = two_processes
    case = await create_case(db1)
    stale = await read_case(db2, case.id)
    first_wrote = asyncio.Event()
    release_first = asyncio.Event()

    async def first() -> None:
        async with db1.transaction() as repo:
            await lock_timeout(repo)
            mine = await repo.get_case(case.id)
            assert mine is not None
            await repo.update_case(mine, title="først")
            first_wrote.set()
            await release_first.wait()

    async def second() -> Case:
        await first_wrote.wait()
        async with db2.transaction() as repo:
            await lock_timeout(repo)
            return await repo.update_case(stale, title="sidst")

    async def run() -> None:
        first_task = asyncio.create_task(first())
        second_task = asyncio.create_task(second())
        await first_wrote.wait()
        await asyncio.sleep(0.3)
        assert not second_task.done(), "the second UPDATE must wait for the first transaction's row lock"
        release_first.set()
        await first_task
        with pytest.raises(RevisionConflict):
            await second_task

    await asyncio.wait_for(run(), TIMEOUT)
    stored = await read_case(db2, case.id)
    assert (stored.revision, stored.title) == (2, "først")


@pytest.mark.postgres
async def test_pg_get_case_for_update_blocks_until_commit(two_processes: tuple[Database, Database]) -> None:
    db1, db2 = two_processes
    case = await create_case(db1)
    first_locked = asyncio.Event()
    times: dict[str, float] = {}
    seen: dict[str, int] = {}

    async def first() -> None:
        async with db1.transaction() as repo:
            await lock_timeout(repo)
            mine = await repo.get_case(case.id, for_update=True)
            assert mine is not None
            times["first locked"] = time.monotonic()
            first_locked.set()
            await asyncio.sleep(0.4)
            await repo.update_case(mine, title="først")
            await repo.add_event(case.id, actor_id="first", actor_name="", kind="gemt", detail={})
            times["first commits"] = time.monotonic()
        times["first committed"] = time.monotonic()

    async def plain_reader() -> None:
        await first_locked.wait()
        async with db2.transaction() as repo:
            unlocked = await repo.get_case(case.id)  # no FOR UPDATE: does not wait
            assert unlocked is not None
            seen["plain"] = unlocked.revision
            times["plain read"] = time.monotonic()

    async def second() -> None:
        await first_locked.wait()
        async with db2.transaction() as repo:
            await lock_timeout(repo)
            times["second asks"] = time.monotonic()
            mine = await repo.get_case(case.id, for_update=True)
            assert mine is not None
            times["second locked"] = time.monotonic()
            seen["second"] = mine.revision
            await repo.update_case(mine, title="anden")  # it saw the committed revision: no conflict
            await repo.add_event(case.id, actor_id="second", actor_name="", kind="gemt", detail={})

    await asyncio.wait_for(asyncio.gather(first(), plain_reader(), second()), TIMEOUT)

    assert seen["plain"] == 1
    assert times["plain read"] < times["first commits"]
    assert seen["second"] == 2  # it read the row only after the first transaction committed
    assert times["second asks"] < times["first commits"] <= times["second locked"]
    assert times["second locked"] - times["second asks"] >= 0.3
    stored = await read_case(db1, case.id)
    assert (stored.revision, stored.title) == (3, "anden")
    async with db1.transaction() as repo:
        events = await repo.events(case.id)
    assert [e.actor_id for e in events] == ["first", "second"]
    assert events[0].at <= events[1].at


@pytest.mark.postgres
async def test_pg_concurrent_creates_from_two_processes(two_processes: tuple[Database, Database]) -> None:
    db1, db2 = two_processes
    results = await asyncio.wait_for(
        asyncio.gather(*(create_case((db1, db2)[i % 2], f"user-{i}") for i in range(20)), return_exceptions=True),
        TIMEOUT,
    )
    cases = [r for r in results if isinstance(r, Case)]
    assert len(cases) == 20, [r for r in results if not isinstance(r, Case)]
    seqs = sorted(int(c.number.rsplit("-", 1)[1]) for c in cases)
    assert seqs == list(range(1, 21))



@pytest.mark.postgres
async def test_pg_same_activity_claimed_by_two_processes_once(two_processes: tuple[Database, Database]) -> None:
    db1, db2 = two_processes
    both_started = asyncio.Barrier(2)

    async def claim(database: Database, activity_id: str) -> bool:
        async with database.transaction() as repo:
            await lock_timeout(repo)
            await both_started.wait()
            claimed = await repo.claim_activity(activity_id)
            await asyncio.sleep(0.05)
            return claimed

    for n in range(5):
        results = await asyncio.wait_for(asyncio.gather(claim(db1, f"act-{n}"), claim(db2, f"act-{n}")), TIMEOUT)
        assert sorted(results) == [False, True]


@pytest.mark.postgres
async def test_pg_redelivery_after_a_rolled_back_claim_is_processed(two_processes: tuple[Database, Database]) -> None:
    db1, db2 = two_processes
    first_claimed = asyncio.Event()

    async def failing_turn() -> None:
        with pytest.raises(Boom):
            async with db1.transaction() as repo:
                assert await repo.claim_activity("act-x") is True
                first_claimed.set()
                await asyncio.sleep(0.2)
                raise Boom

    async def redelivery() -> bool:
        await first_claimed.wait()
        async with db2.transaction() as repo:
            await lock_timeout(repo)
            return await repo.claim_activity("act-x")  # waits for the first, which rolls back

    _, claimed = await asyncio.wait_for(asyncio.gather(failing_turn(), redelivery()), TIMEOUT)
    assert claimed is True


@pytest.mark.postgres
async def test_pg_conversation_state_written_by_two_processes(two_processes: tuple[Database, Database]) -> None:
    db1, db2 = two_processes
    barrier = asyncio.Barrier(2)

    async def write(database: Database, who: str, etag: int | None) -> int:
        async with database.transaction() as repo:
            await lock_timeout(repo)
            await barrier.wait()
            new = await repo.save_state("samtale", {"who": who}, etag)
            await asyncio.sleep(0.05)
            return new

    for etag, expected in ((None, 1), (1, 2), (2, 3)):
        results = await asyncio.wait_for(
            asyncio.gather(write(db1, "one", etag), write(db2, "two", etag), return_exceptions=True), TIMEOUT
        )
        assert sorted(map(type, results), key=str) == sorted([int, StateConflict], key=str), results
        assert expected in results
    async with db1.transaction() as repo:
        data, etag = await repo.load_state("samtale")
    assert etag == 3 and data["who"] in {"one", "two"}


# --- one-round-trip loading and whole-row updates -----------------------------------------------


async def test_case_and_answers_in_one_query(db: Database) -> None:
    case = await create_case(db)
    other = await create_case(db, "someone-else")
    async with db.transaction() as repo:
        loaded = await repo.get_case_and_answers(case.id)
        assert loaded is not None
        assert loaded[0].number == case.number and loaded[1].values() == {}
        await repo.save_answers(case.id, "screening", {"s1": "ja", "s2": "nej"}, revision=2, actor_id="a")
        await repo.save_answers(case.id, "rute", {"route": "psg"}, revision=3, actor_id="a")
        await repo.save_answers(other.id, "screening", {"s1": "nej"}, revision=2, actor_id="b")
    async with db.transaction() as repo:
        loaded = await repo.get_case_and_answers(case.id, for_update=True)
        assert await repo.get_case_and_answers(999_999) is None
    assert loaded is not None
    got_case, answers = loaded
    assert got_case.id == case.id and got_case.form_versions == case.form_versions
    assert answers.values() == {"screening": {"s1": "ja", "s2": "nej"}, "rute": {"route": "psg"}}
    assert answers.by_form["rute"]["route"].revision == 3


async def test_update_case_refuses_fields_that_are_not_mutable(db: Database) -> None:
    case = await create_case(db)
    async with db.transaction() as repo:
        with pytest.raises(ValueError, match="not a mutable case field"):
            await repo.update_case(case, initiator_id="someone-else")
        updated = await repo.update_case(case, title="Ny titel", flags={"continue_anyway": True})
    async with db.transaction() as repo:
        stored = await repo.get_case(case.id)
    assert stored is not None and stored.title == "Ny titel" and stored.flags == {"continue_anyway": True}
    assert stored.revision == updated.revision == 2
    assert stored.initiator_id == "user-1"  # unchanged by the refused call


async def test_update_case_with_an_event_writes_both_or_neither(db: Database) -> None:
    from storage.repositories import EventSpec

    case = await create_case(db)
    stale = await read_case(db, case.id)
    async with db.transaction() as repo:
        await repo.update_case(case, event=EventSpec("a", "Anna", "svar_gemt", {"step": "x"}), title="T1")
    with pytest.raises(RevisionConflict):
        async with db.transaction() as repo:
            await repo.update_case(stale, event=EventSpec("b", "Bent", "svar_gemt", {"step": "y"}), title="T2")
    async with db.transaction() as repo:
        events = await repo.events(case.id)
        stored = await repo.get_case(case.id)
    assert stored is not None and stored.title == "T1"
    saved = [e for e in events if e.kind == "svar_gemt"]
    assert [(e.actor_id, e.actor_name, e.detail) for e in saved] == [("a", "Anna", {"step": "x"})]
    assert saved[0].at == stored.updated_at
