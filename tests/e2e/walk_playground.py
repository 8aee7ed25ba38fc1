"""Walk a whole case through the bot in the Microsoft 365 Agents Playground, in headless Chromium.

    python -m tests.e2e.walk_playground --out var/screenshots

starts the bot (SQLite in a scratch directory) and the playground on free ports, then plays a user in
"Personal Chat": hjælp → ny sag → screening → initiativpligt → Dialoggrundlag → "Gem og fortsæt senere" →
fortsæt → Forum (Porteføljestyregruppen) → Mini-MTV → "Gennemse og indsend" → Indsend → mine sager.
It takes a numbered screenshot at every step and checks the texts a person would see. Exit status 0 when
every step passed.

Needs: .playground/ (scripts/install_playground.sh), /usr/bin/chromium and the playwright Python package
(never ``playwright install``). ``--write-config DIR`` only writes the playground's config file (used by
scripts/playground.sh).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PLAYGROUND_BIN = ROOT / ".playground" / "node_modules" / ".bin" / "agentsplayground"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
CONFIG_NAME = ".m365agentsplayground.yml"

# The playground's config (schema 0.1.1): exactly 5 users besides the current user, and a team with at most
# ONE channel besides "General" (the playground's schema has maxItems 1), so "Samarbejdsforum Aalborg" cannot
# be a second channel here. Names are Danish on purpose (æ, ø, å in names and titles).
PLAYGROUND_CONFIG = """\
# Microsoft 365 Agents Playground: mock tenant, users, chats and team for the opgaveflytning bot.
# Written by tests/e2e/walk_playground.py (scripts/playground.sh); edit freely, it is not overwritten.
# Schema: users must list exactly 5 users; the team may have one channel besides General.
version: "0.1.1"
tenantId: 6f1c2a4e-8d3b-4c5a-9e7f-0a1b2c3d4e5f
bot:
  id: 28:0d9e6c1a-5b7f-4e2d-8a3c-9f1e2d3c4b5a
  name: Opgaveflytning
currentUser:
  id: user-id-0
  name: Mette Kjær Jensen
  userPrincipleName: mette.jensen@rn.example.dk
  aadObjectId: 3a1f0c2e-1111-4a6b-9c8d-000000000001
  givenName: Mette
  surname: Kjær Jensen
  email: mette.jensen@rn.example.dk
users:
  - id: user-id-1
    name: Søren Østergaard
    userPrincipleName: soeren.oestergaard@rn.example.dk
    aadObjectId: 3a1f0c2e-1111-4a6b-9c8d-000000000002
    givenName: Søren
    surname: Østergaard
    email: soeren.oestergaard@rn.example.dk
  - id: user-id-2
    name: Anne Sørensen
    userPrincipleName: anne.soerensen@aalborg.example.dk
    aadObjectId: 3a1f0c2e-1111-4a6b-9c8d-000000000003
    givenName: Anne
    surname: Sørensen
    email: anne.soerensen@aalborg.example.dk
  - id: user-id-3
    name: Lars Nielsen
    userPrincipleName: lars.nielsen@hjoerring.example.dk
    aadObjectId: 3a1f0c2e-1111-4a6b-9c8d-000000000004
    givenName: Lars
    surname: Nielsen
    email: lars.nielsen@hjoerring.example.dk
  - id: user-id-4
    name: Karen Pedersen
    userPrincipleName: karen.pedersen@rn.example.dk
    aadObjectId: 3a1f0c2e-1111-4a6b-9c8d-000000000005
    givenName: Karen
    surname: Pedersen
    email: karen.pedersen@rn.example.dk
  - id: user-id-5
    name: Jens Åge Christensen
    userPrincipleName: jens.christensen@praksis.example.dk
    aadObjectId: 3a1f0c2e-1111-4a6b-9c8d-000000000006
    givenName: Jens Åge
    surname: Christensen
    email: jens.christensen@praksis.example.dk
personalChat:
  id: a:1personal-opgaveflytning-mette
groupChat:
  id: 19:gruppe-tvaersektoriel@thread.v2
  name: Tværsektoriel arbejdsgruppe
team:
  id: 19:sundhedsaftalen-general@thread.tacv2
  name: Sundhedsaftalen
  aadGroupId: 5b2e7d90-2222-4c1d-8e3f-000000000010
  channels:
    - id: 19:portefoeljestyregruppen@thread.tacv2
      name: Porteføljestyregruppen
"""


def write_config(directory: Path, *, overwrite: bool = True) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / CONFIG_NAME
    if overwrite or not path.exists():
        path.write_text(PLAYGROUND_CONFIG, encoding="utf-8")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float, expect: str | None = None, proc: subprocess.Popen[Any] | None = None) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | str | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} while waiting for {url}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback only)
                body = response.read().decode("utf-8", "replace")
                if expect is None or expect in body:
                    return
                last = body[:100]
        except (urllib.error.URLError, OSError) as error:
            last = error
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready after {timeout:.0f}s (last: {last})")


def missing_prerequisites() -> list[str]:
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (apt-get install -y chromium fonts-liberation)")
    if shutil.which("node") is None:
        missing.append("node")
    if not PLAYGROUND_BIN.exists():
        missing.append(f"{PLAYGROUND_BIN.relative_to(ROOT)} (scripts/install_playground.sh)")
    try:
        import playwright  # noqa: F401
    except ImportError:
        missing.append("the playwright Python package")
    return missing


@dataclass
class Services:
    """The bot and the playground as child processes, with their logs in a scratch directory."""

    workdir: Path
    bot_port: int = field(default_factory=free_port)
    playground_port: int = field(default_factory=free_port)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.playground_port}/"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MICROSOFT_APP_")}
        env.update(
            PORT=str(self.bot_port), HOST="127.0.0.1", LOG_LEVEL="INFO",
            DATABASE_URL=f"sqlite+aiosqlite:///{self.workdir / 'bot.db'}",
        )
        bot_log = (self.workdir / "bot.log").open("wb")
        self.procs.append(subprocess.Popen(
            [sys.executable, "-m", "bot"], cwd=self.workdir, env={**env, "PYTHONPATH": str(ROOT)},
            stdout=bot_log, stderr=subprocess.STDOUT, start_new_session=True,
        ))
        bot_log.close()
        wait_http(f"http://127.0.0.1:{self.bot_port}/healthz", 60, proc=self.procs[-1])
        pg_dir = self.workdir / "playground"
        write_config(pg_dir)
        pg_env = {**os.environ, "TEAMSAPPTESTER_BROWSER": "none"}
        pg_log = (self.workdir / "playground.log").open("wb")
        self.procs.append(subprocess.Popen(
            [str(PLAYGROUND_BIN), "-e", f"http://127.0.0.1:{self.bot_port}/api/messages", "-c", "msteams",
             "-p", str(self.playground_port), "--dt"],
            cwd=pg_dir, env=pg_env, stdout=pg_log, stderr=subprocess.STDOUT, start_new_session=True,
        ))
        pg_log.close()
        wait_http(f"http://127.0.0.1:{self.playground_port}/_debug/ping", 60, expect="pong", proc=self.procs[-1])

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(5)
        self.procs.clear()


@contextlib.contextmanager
def running_services(workdir: Path | None = None) -> Iterator[Services]:
    scratch = None
    if workdir is None:
        scratch = tempfile.mkdtemp(prefix="e2e-playground-")
        workdir = Path(scratch)
    services = Services(workdir)
    try:
        services.start()
        yield services
    finally:
        services.stop()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
