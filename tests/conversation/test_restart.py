"""kill -9 in the middle of a form: after a restart every saved answer is there (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import aiohttp

from tests.conftest import free_port
from tests.conversation.helpers import DG_PAGE1, to_dialoggrundlag
from tests.support.chat import Chat, inputs_of
from tests.support.fake_connector import FakeConnector

ROOT = Path(__file__).resolve().parents[2]


async def _start_bot(database_url: str, port: int) -> asyncio.subprocess.Process:
    env = {**os.environ, "DATABASE_URL": database_url, "PORT": str(port), "HOST": "127.0.0.1", "LOG_LEVEL": "WARNING"}
    env.pop("MICROSOFT_APP_ID", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            try:
                async with session.get(f"http://127.0.0.1:{port}/readyz") as resp:
                    if resp.status == 200:
                        return process
            except aiohttp.ClientError:
                pass
            if process.returncode is not None:
                raise AssertionError(f"bot exited with {process.returncode}")
            await asyncio.sleep(0.1)
    process.kill()
    raise AssertionError("bot did not become ready")


async def test_kill_9_mid_form_then_resume(db_url: str, connector: FakeConnector) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/api/messages"
    process = await _start_bot(db_url, port)
    try:
        async with aiohttp.ClientSession() as session:
            chat = Chat(session, url, connector, user_id="29:kill-9-user")
            await to_dialoggrundlag(chat)
            await chat.press("Næste", {**DG_PAGE1, "q1b": "Svar før nedbruddet"})
            await chat.press("Næste", {"q2_1": "Side 2, gemt med Næste"})
            assert "side 3 af 4" in chat.text()
    finally:
        process.send_signal(signal.SIGKILL)
        await process.wait()
    assert process.returncode == -signal.SIGKILL

    process = await _start_bot(db_url, port)
    try:
        async with aiohttp.ClientSession() as session:
            chat = Chat(session, url, connector, user_id="29:kill-9-user")
            await chat.say("fortsæt")
            assert "Dialoggrundlag · side 3 af 4" in chat.text(), "resumes where the user stopped"
            await chat.press("Tilbage")
            assert inputs_of(chat.card or {})["in_q2_1"] == "Side 2, gemt med Næste"
            await chat.press("Tilbage")
            page1 = inputs_of(chat.card or {})
            assert page1["in_h_task"] == DG_PAGE1["h_task"]
            assert page1["in_q1b"] == "Svar før nedbruddet"
            await chat.say("mine sager")
            assert "Dialoggrundlag udfyldes" in chat.text()
    finally:
        process.terminate()
        await process.wait()
