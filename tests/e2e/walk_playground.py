"""Walk a whole case through the bot in the Microsoft 365 Agents Playground, in headless Chromium.

    python -m tests.e2e.walk_playground --out var/screenshots

starts the bot (SQLite in a scratch directory) and the playground on free ports, then plays a user in
"Personal Chat": hjælp → ny sag → screening → initiativpligt → Dialoggrundlag (a missing required answer,
a long answer, Tilbage) → "Gem og fortsæt senere" → fortsæt → Forum (Porteføljestyregruppen) → Mini-MTV →
"Gennemse og indsend" → "Vis og ret" → Indsend → mine sager → an old card pressed after submission → the bot
@mentioned in the team channel. It takes a numbered screenshot at every step (NN-step.png; the tall review
card in parts) and checks the texts a person would see. Exit status 0 when every step passed; findings that
do not stop the walk are printed as NOTE lines.

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


def write_config(directory: Path, *, overwrite: bool = True, text: str = PLAYGROUND_CONFIG) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / CONFIG_NAME
    if overwrite or not path.exists():
        path.write_text(text, encoding="utf-8")
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
    config: str = PLAYGROUND_CONFIG  # the playground's .m365agentsplayground.yml
    bot_env: dict[str, str] = field(default_factory=dict)  # extra environment of the bot (e.g. BOT_ADMINS)

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
        env.update(self.bot_env)
        bot_log = (self.workdir / "bot.log").open("wb")
        self.procs.append(subprocess.Popen(
            [sys.executable, "-m", "bot"], cwd=self.workdir, env={**env, "PYTHONPATH": str(ROOT)},
            stdout=bot_log, stderr=subprocess.STDOUT, start_new_session=True,
        ))
        bot_log.close()
        wait_http(f"http://127.0.0.1:{self.bot_port}/healthz", 60, proc=self.procs[-1])
        pg_dir = self.workdir / "playground"
        write_config(pg_dir, text=self.config)
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
def running_services(workdir: Path | None = None, **options: Any) -> Iterator[Services]:
    """The bot and the playground running; ``options`` go to :class:`Services` (config, bot_env)."""
    scratch = None
    if workdir is None:
        scratch = tempfile.mkdtemp(prefix="e2e-playground-")
        workdir = Path(scratch)
    services = Services(workdir, **options)
    try:
        services.start()
        yield services
    finally:
        services.stop()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


# --------------------------------------------------------------------------------------------------------------
# The walk
# --------------------------------------------------------------------------------------------------------------

CASE_NUMBER = re.compile(r"OF-\d{4}-\d{4}")
TASK = "Sårpleje i eget hjem"
ORGANISATION = "Aalborg Universitetshospital, Karkirurgisk afdeling"
LONG_ANSWER = (
    "Borgere med kroniske sår efter karkirurgi får i dag skiftet forbinding på hospitalets sårambulatorium to "
    "gange om ugen. Fremover skal hjemmesygeplejen i bopælskommunen stå for skiftet i borgerens eget hjem, mens "
    "sårambulatoriet bevarer ansvaret for behandlingsplanen og ser borgeren hver fjerde uge. "
    "Hjemmesygeplejen får en skriftlig instruks, fotodokumentation af såret via den fælles sårjournal og en fast "
    "telefontid hos ambulatoriets sygeplejersker. Ændringen berører anslået 120-150 borgere om året i de 11 "
    "kommuner; de fleste er over 70 år, og mange har diabetes. Forbindinger og kompressionsmaterialer udleveres "
    "i overgangsperioden fra hospitalet og derefter efter kommunens hjælpemiddelordning. Æ, ø og å skal se "
    "rigtige ud – også i »citater« og tankestreger – og lange linjer skal ombrydes pænt."
)
TIMEOUT_MS = 20_000
TALL_CARD_PX = 1800  # screenshots of cards taller than this show only the chat column


@dataclass
class StepResult:
    number: int
    name: str
    ok: bool
    screenshot: str | None = None
    error: str | None = None
    seconds: float = 0.0


class StepFailed(AssertionError):
    pass


def _pattern(text: str, *, anchored: bool = False) -> re.Pattern[str]:
    """A regex for an accessible name; "/" escaped too, or Playwright's selector parser chokes on it."""
    return re.compile(("^" if anchored else "") + re.escape(text).replace("/", r"\/"))


@dataclass
class WalkReport:
    results: list[StepResult]
    total: int
    findings: list[str] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return sum(r.ok for r in self.results)

    @property
    def ok(self) -> bool:
        return self.passed == self.total


class Walk:
    """One user in "Personal Chat": helpers to type, click card buttons, check texts and take screenshots."""

    def __init__(self, page: Any, out: Path, width: int = 1280, height: int = 900) -> None:
        from playwright.sync_api import expect

        self.page = page
        self.out = out
        self.expect = expect
        self.width = width
        self.height = height
        self.results: list[StepResult] = []
        self.findings: list[str] = []
        self.case_number: str | None = None
        self.focus: Any = None  # the card the next screenshot shows (default: the newest)

    # ---- locators -------------------------------------------------------------------------------------------
    @property
    def cards(self) -> Any:
        return self.page.locator(".ac-adaptiveCard")

    @property
    def card(self) -> Any:
        return self.cards.last

    @property
    def composer(self) -> Any:
        return self.page.locator('[data-lexical-editor="true"][role="textbox"]').first

    # ---- actions --------------------------------------------------------------------------------------------
    def send(self, text: str, expect_text: str | re.Pattern[str]) -> None:
        """Type a message in the composer, press Enter, wait for a new card that shows ``expect_text``."""
        before = self.cards.count()
        self.composer.click()
        self.composer.press_sequentially(text, delay=15)
        self.page.keyboard.press("Enter")
        self.expect(self.cards).to_have_count(before + 1, timeout=TIMEOUT_MS)
        self.expect(self.card).to_contain_text(expect_text, timeout=TIMEOUT_MS)

    def press(self, button: str, expect_text: str | re.Pattern[str], *, card: Any = None, nth: int = 0,
              same_count: bool = True) -> Any:
        """Click a button of a card (default: the newest); Action.Execute must replace that card in place.

        Returns the locator of the card showing the answer. ``same_count=False`` allows other cards to arrive
        meanwhile (a 1:1 notice the outbox sends after the action).
        """
        card = self.card if card is None else card
        index = card.evaluate("el => [...document.querySelectorAll('.ac-adaptiveCard')].indexOf(el)")
        before = self.cards.count()
        # Every rendering of a card gives its elements new random ids: wait until the pressed rendering is gone.
        first_id = card.locator("[id^='__ac-']").first.get_attribute("id")
        card.get_by_role("button", name=button, exact=True).nth(nth).click()
        self.expect(self.page.locator(f"[id='{first_id}']")).to_have_count(0, timeout=TIMEOUT_MS)
        answer = self.cards.nth(index)
        self.expect(answer).to_contain_text(expect_text, timeout=TIMEOUT_MS)
        after = self.cards.count()
        if same_count and after != before:
            raise StepFailed(f"'{button}' changed the number of cards from {before} to {after} "
                             "(expected the card to be replaced in place)")
        return answer

    def choose(self, question: str, option: str | re.Pattern[str]) -> None:
        """Pick an option of an expanded Input.ChoiceSet (radio group) labelled ``question``."""
        group = self.card.get_by_role("radiogroup", name=_pattern(question))
        radio = group.get_by_role("radio", name=option, exact=True if isinstance(option, str) else None)
        radio.check()
        self.expect(radio).to_be_checked()

    def field(self, label: str) -> Any:
        return self.card.get_by_role("textbox", name=_pattern(label, anchored=True))

    def fill(self, label: str, text: str, *, keystrokes: bool = False) -> None:
        box = self.field(label)
        box.click()
        if keystrokes:
            box.press_sequentially(text, delay=10)
        else:
            box.fill(text)
        self.expect(box).to_have_value(text)

    def see(self, *texts: str | re.Pattern[str]) -> None:
        for text in texts:
            self.expect(self.card).to_contain_text(text, timeout=TIMEOUT_MS)

    def page_header(self) -> str:
        """The first line of the newest card, e.g. "Dialoggrundlag · side 3 af 4"."""
        return self.card.inner_text().strip().splitlines()[0]

    def note(self, finding: str) -> None:
        """Something a user would find wrong that does not stop the walk (reported at the end)."""
        self.findings.append(f"step {len(self.results) + 1:02d}: {finding}")

    # ---- screenshots ----------------------------------------------------------------------------------------
    def shot(self, name: str) -> str:
        """Screenshot of the chat with the newest card fully visible (the viewport grows for tall cards).

        A card taller than TALL_CARD_PX (the review) is cut into parts of the chat column: NN-name.png,
        NN-name-2.png, … so that every file stays small and readable.
        """
        path = self.out / f"{len(self.results) + 1:02d}-{name}.png"
        card = self.focus if self.focus is not None else (self.card if self.cards.count() else None)
        self.focus = None
        resized = False
        clips: list[dict[str, float] | None] = [None]
        if card is not None:
            box = card.bounding_box()
            needed = int(box["height"]) + 330 if box else self.height
            if needed > self.height:
                self.page.set_viewport_size({"width": self.width, "height": min(needed, 8000)})
                resized = True
            self.page.wait_for_timeout(150)
            card.scroll_into_view_if_needed()
            box = card.bounding_box()
            if needed > TALL_CARD_PX and box:
                left = max(0.0, box["x"] - 64)
                width = min(box["width"] + 94, self.width - left)
                top, bottom = max(0.0, box["y"] - 40), box["y"] + box["height"] + 80
                clips = []
                while top < bottom:
                    height = min(TALL_CARD_PX, bottom - top)
                    clips.append({"x": left, "y": top, "width": width, "height": height})
                    top += height - 40  # a little overlap between parts
                    if bottom - top < 200:
                        clips[-1]["height"] = bottom - clips[-1]["y"]
                        break
        self.page.wait_for_timeout(250)
        for part, clip in enumerate(clips, start=1):
            target = path if part == 1 else path.with_name(f"{path.stem}-{part}.png")
            self.page.screenshot(path=str(target), clip=clip)
        if resized:
            self.page.set_viewport_size({"width": self.width, "height": self.height})
        return path.name + (f" (+{len(clips) - 1} parts)" if len(clips) > 1 else "")

    # ---- steps ----------------------------------------------------------------------------------------------
    def step(self, name: str, body: Callable[[], None]) -> bool:
        number = len(self.results) + 1
        started = time.monotonic()
        try:
            body()
        except Exception as error:  # any failure ends the walk; the screenshot shows where
            shot = None
            with contextlib.suppress(Exception):
                shot = self.shot(f"{name}-FAILED")
            message = f"{type(error).__name__}: {error}".strip()
            self.results.append(StepResult(number, name, False, shot, message[:2000], time.monotonic() - started))
            return False
        shot = self.shot(name)
        self.results.append(StepResult(number, name, True, shot, None, time.monotonic() - started))
        return True


def walk_steps(w: Walk, ui_url: str) -> list[tuple[str, Callable[[], None]]]:

    def open_personal_chat() -> None:
        page = w.page
        page.goto(ui_url)
        page.get_by_role("treeitem", name=re.compile("Personal Chat")).click()
        with contextlib.suppress(Exception):
            page.get_by_role("button", name="Hide log panel").click(timeout=3000)
        w.expect(w.cards.first).to_contain_text("Hej", timeout=TIMEOUT_MS)
        w.see("ny sag", "Mini-MTV")

    def help_() -> None:
        w.send("hjælp", "Det kan du skrive til mig")
        w.see("ny sag", "fortsæt", "mine sager", "Skriv aldrig patientoplysninger")

    def new_case() -> None:
        w.send("ny sag", "Screening · side 1 af 2")
        w.see("Har ændringen konsekvenser for samarbejdspartnere?", "Indgår utensilier/hjælpemidler i ændringen?")
        match = CASE_NUMBER.search(w.card.inner_text())
        if not match:
            raise StepFailed("no case number OF-YYYY-NNNN on the screening card")
        w.case_number = match.group(0)

    def screening() -> None:
        w.choose("Har ændringen konsekvenser for samarbejdspartnere?", "Ja")
        w.choose("Kræver ændringen nye kompetencer hos samarbejdspartnerne?", "Nej")
        w.choose("Indgår utensilier/hjælpemidler i ændringen?", "Nej")

    def initiativpligt() -> None:
        w.press("Næste", "Screening · side 2 af 2")
        w.see("Initiativpligt", "Er der behov for udarbejdelse af et skriftligt dialoggrundlag?", "Begrundelse")
        w.choose("Er der behov for udarbejdelse af et skriftligt dialoggrundlag?", "Ja")

    def dialog_page1_missing() -> None:
        w.press("Næste", "Dialoggrundlag · side 1 af 4")
        w.see("Stamdata og baggrund", "Opgaveflytning af (navn på opgaven)")
        name = w.field("Initiativtager (navn og organisation): navn")
        w.expect(name).to_have_value("Mette Kjær Jensen")
        # Næste without the required task name: the same page again, with the error and the typed answer kept.
        w.fill("Initiativtager (navn og organisation): organisation", ORGANISATION)
        w.press("Næste", "Siden er ikke færdig")
        w.see("Dialoggrundlag · side 1 af 4")
        w.expect(w.field("Initiativtager (navn og organisation): organisation")).to_have_value(ORGANISATION)

    def dialog_page1() -> None:
        w.fill("Opgaveflytning af (navn på opgaven)", TASK, keystrokes=True)
        w.fill("a. Hvorfor opgaveflytning?", "Borgeren slipper for transport, og sårplejen kommer tættere på hverdagen.")

    def dialog_page2() -> None:
        w.press("Næste", "Dialoggrundlag · side 2 af 4")
        w.see("Beskrivelse af opgaven", TASK, "- Hvad skal der ske?")
        w.fill("- Hvad skal der ske?", LONG_ANSWER)
        w.fill("- Hvornår skal det ske?", "Fra 1. marts, efter et halvt års pilotforløb i to kommuner.")

    def dialog_page3() -> None:
        w.press("Næste", "Dialoggrundlag · side 3 af 4")
        w.see("Konsekvenser", "Fordele/konsekvenser for borgeren/patienten")

    def back_keeps_answers() -> None:
        w.press("Tilbage", "Dialoggrundlag · side 2 af 4")
        w.expect(w.field("- Hvad skal der ske?")).to_have_value(LONG_ANSWER)
        w.press("Næste", "Dialoggrundlag · side 3 af 4")
        w.fill("- Behov for kompetenceudvikling?", "Undervisning af hjemmesygeplejen i kompressionsbehandling.")

    def pause() -> None:
        w.press("Gem og fortsæt senere", "Dine svar er gemt")
        w.see(w.case_number or CASE_NUMBER, "Du er nået til:", "fortsæt")

    def resume() -> None:
        w.send("fortsæt", "Dialoggrundlag · side")
        w.see(w.case_number or CASE_NUMBER, TASK)
        header = w.page_header()
        if "side 3 af 4" not in header:
            w.note(f"'Gem og fortsæt senere' said 'Du er nået til: Dialoggrundlag – Konsekvenser' (side 3 af 4), "
                   f"but 'fortsæt' opened '{header}'")

    def dialog_page4() -> None:
        # From wherever "fortsæt" landed, Næste to page 4; the answers given before the pause must still be there.
        for _ in range(4):
            header = w.page_header()
            if "side 2 af 4" in header:
                w.expect(w.field("- Hvad skal der ske?")).to_have_value(LONG_ANSWER)
            if "side 3 af 4" in header:
                w.expect(w.field("- Behov for kompetenceudvikling?")).to_have_value(
                    "Undervisning af hjemmesygeplejen i kompressionsbehandling.")
            if "side 4 af 4" in header:
                break
            w.press("Næste", "Dialoggrundlag · side")
        w.see("Dialoggrundlag · side 4 af 4", "Hjælpemidler og økonomi", "Forventede økonomiske konsekvenser")

    def forum() -> None:
        w.press("Næste", "Forum")
        w.see("Vælg forum for sagen", "Porteføljestyregruppen", "samarbejdsforum")
        w.choose("Vælg forum for sagen", re.compile("Porteføljestyregruppen"))

    def mtv_page1() -> None:
        w.press("Næste", "Mini-MTV · side 1 af 10")
        w.see("Indledning")
        w.expect(w.field("2: Hvad er navnet/betegnelsen for den nye indsats?")).to_have_value(TASK)

    def mtv_page2() -> None:
        w.press("Næste", "Mini-MTV · side 2 af 10")
        w.see("Indsatsen (1 af 3)")
        w.fill("5: Til hvilken sundhedsmæssig problemstilling skal indsatsen anvendes?",
               "Kroniske sår hos ældre borgere efter karkirurgiske indgreb.")

    def mtv_to_last() -> None:
        for number in range(3, 11):
            w.press("Næste", f"Mini-MTV · side {number} af 10")
        w.see("Øvrige kommentarer og udfyldt af")

    def review() -> None:
        w.press("Næste", "Gennemse og indsend")
        w.see(TASK, "Porteføljestyregruppen", "Vis og ret", "Sårpleje")
        w.expect(w.card.get_by_role("button", name="Indsend", exact=True)).to_be_visible()

    def edit_from_review() -> None:
        # "Vis og ret" of the Dialoggrundlag: pick a page in the compact choice set (a Fluent combobox).
        picker = w.card.get_by_role("combobox").nth(1)
        picker.click()
        w.page.get_by_role("option", name="Beskrivelse af opgaven", exact=True).click()
        w.expect(picker).to_have_value("Beskrivelse af opgaven")
        w.press("Vis og ret", "Dialoggrundlag · side 2 af 4", nth=1)
        w.see("Beskrivelse af opgaven")
        w.expect(w.card.get_by_role("button", name="Gem og gennemse", exact=True)).to_be_visible()
        w.fill("- Hvilke og hvor mange patienter berører det?", "Ca. 120-150 borgere om året, primært over 70 år.")

    def back_to_review() -> None:
        w.press("Gem og gennemse", "Gennemse og indsend")
        w.see("Ca. 120-150 borgere om året")

    def submit() -> None:
        # Indsend also queues a 1:1 notice ("Sag … er sendt til …") that arrives as a new card below: wait for
        # it (a few seconds at most) so that the next step counts cards from a settled chat.
        answer = w.press("Indsend", "Sagen er indsendt", same_count=False)
        with contextlib.suppress(AssertionError):
            w.expect(w.cards.filter(has_text="er sendt til")).to_have_count(1, timeout=5000)
        w.focus = answer
        text = answer.inner_text()
        if not CASE_NUMBER.search(text):
            raise StepFailed("no case number OF-YYYY-NNNN on the confirmation card")
        if w.case_number and w.case_number not in text:
            raise StepFailed(f"confirmation does not show the case number {w.case_number}")
        w.expect(answer).to_contain_text(TASK)
        w.expect(answer).to_contain_text("Porteføljestyregruppen")

    def my_cases() -> None:
        w.send("mine sager", "Mine sager")
        w.see(w.case_number or CASE_NUMBER, TASK, "Hos Porteføljestyregruppen")

    def old_card() -> None:
        # Scroll back to the "Dine svar er gemt" card and press its "Fortsæt nu": the case is submitted, so it must
        # not open a form page for editing again.
        paused = w.cards.filter(has_text="Dine svar er gemt").last
        paused.scroll_into_view_if_needed()
        answer = w.press("Fortsæt nu", re.compile("indsendt|er sendt til"), card=paused)
        w.focus = answer
        if re.search(r"side \d+ af \d+", answer.inner_text()):
            raise StepFailed("an old card reopened a form page of a submitted case")

    def channel() -> None:
        page = w.page
        page.get_by_role("treeitem", name=re.compile("Porteføljestyregruppen")).click()
        post = page.locator('[data-lexical-editor="true"][role="textbox"]').first
        w.expect(post).to_be_visible()
        post.click()
        post.press_sequentially("@Opg", delay=30)
        page.get_by_role("menuitem", name="Opgaveflytning").click()
        post.press_sequentially(" ny sag", delay=15)
        page.get_by_role("button", name="Post", exact=True).click()
        w.expect(w.card).to_contain_text("Skriv til mig i en 1:1-chat", timeout=TIMEOUT_MS)

    return [
        ("velkomst", open_personal_chat),
        ("hjaelp", help_),
        ("ny-sag-screening", new_case),
        ("screening-besvaret", screening),
        ("initiativpligt", initiativpligt),
        ("dialoggrundlag-side-1-mangler-svar", dialog_page1_missing),
        ("dialoggrundlag-side-1", dialog_page1),
        ("dialoggrundlag-side-2-langt-svar", dialog_page2),
        ("dialoggrundlag-side-3", dialog_page3),
        ("tilbage-og-frem", back_keeps_answers),
        ("gem-og-fortsaet-senere", pause),
        ("fortsaet", resume),
        ("dialoggrundlag-side-4", dialog_page4),
        ("forum-psg", forum),
        ("mini-mtv-side-1", mtv_page1),
        ("mini-mtv-side-2", mtv_page2),
        ("mini-mtv-side-10", mtv_to_last),
        ("gennemse-og-indsend", review),
        ("vis-og-ret", edit_from_review),
        ("tilbage-til-gennemsyn", back_to_review),
        ("sagen-er-indsendt", submit),
        ("mine-sager", my_cases),
        ("gammelt-kort-efter-indsendelse", old_card),
        ("kanal-portefoeljestyregruppen", channel),
    ]


def run_walk(out: Path, *, workdir: Path | None = None, log: Callable[[str], None] = print) -> WalkReport:
    """Start bot and playground, walk every step, return the results (stops at the first failing step)."""
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("[0-9][0-9]-*.png"):  # the previous run's screenshots
        old.unlink()
    with running_services(workdir) as services, sync_playwright() as p:
        log(f"bot on :{services.bot_port}, playground UI {services.ui_url}")
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="da-DK",
                                          timezone_id="Europe/Copenhagen")
            page = context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            walk = Walk(page, out)
            steps = walk_steps(walk, services.ui_url)
            for name, body in steps:
                ok = walk.step(name, body)
                result = walk.results[-1]
                log(f"{'PASS' if ok else 'FAIL'} {result.number:02d} {name} ({result.seconds:.1f}s)"
                    + (f"\n     {result.error}" if result.error else ""))
                if not ok:
                    for log_name in ("bot.log", "playground.log"):
                        with contextlib.suppress(OSError):
                            tail = (services.workdir / log_name).read_text("utf-8", "replace").splitlines()[-15:]
                            log(f"--- end of {log_name}\n" + "\n".join(tail))
                    break
            for finding in walk.findings:
                log(f"NOTE {finding}")
            return WalkReport(walk.results, len(steps), walk.findings)
        finally:
            browser.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "screenshots", help="screenshot directory")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep bot.db and the logs here (default: a temporary directory, removed afterwards)")
    parser.add_argument("--write-config", type=Path, metavar="DIR",
                        help=f"only write {CONFIG_NAME} into DIR (if it is not there yet) and exit")
    args = parser.parse_args(argv)
    if args.write_config:
        print(write_config(args.write_config, overwrite=False))
        return 0
    missing = missing_prerequisites()
    if missing:
        print("missing: " + "; ".join(missing), file=sys.stderr)
        return 2
    # Stop the children on SIGTERM too (the default handler would skip the cleanup).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    report = run_walk(args.out, workdir=args.workdir)
    print(f"{report.passed}/{report.total} steps passed; screenshots in {args.out}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
