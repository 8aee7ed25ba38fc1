"""Apply the Alembic migrations: on start of the bot, and for operators.

    python -m storage.migrate            # upgrade the database in DATABASE_URL to the newest schema
    python -m storage.migrate --current  # print the revision the database is at
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from storage.db import Database

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def _upgrade(sync_connection: Any, target: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = sync_connection
    command.upgrade(config, target)


def _current(sync_connection: Any) -> str | None:
    return MigrationContext.configure(sync_connection).get_current_revision()


async def upgrade(database: Database, target: str = "head") -> None:
    async with database.connect() as conn:
        await conn.run_sync(_upgrade, target)
        await conn.commit()


async def current_revision(database: Database) -> str | None:
    async with database.connect() as conn:
        return await conn.run_sync(_current)


def main() -> None:
    from bot.settings import Settings  # the operator command reads the same settings as the bot

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--current", action="store_true", help="print the current revision and exit")
    args = parser.parse_args()

    async def run() -> None:
        database = Database(Settings().database_url)
        try:
            if args.current:
                print(await current_revision(database) or "(empty database)")
            else:
                await upgrade(database)
                print(f"database at {await current_revision(database)} (head {head_revision()})")
        finally:
            await database.dispose()

    asyncio.run(run())


if __name__ == "__main__":
    main()
