"""The whole case walked in the Microsoft 365 Agents Playground, in headless Chromium (opt-in).

    RUN_E2E=1 .venv/bin/pytest -m e2e tests/e2e -q

Needs scripts/install_playground.sh to have run (.playground/, /usr/bin/chromium, playwright). Screenshots go
to var/screenshots/e2e/ (or $E2E_SCREENSHOTS), so they can be looked at after a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.e2e.walk_playground import ROOT, missing_prerequisites, run_walk

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def prerequisites() -> None:
    if os.environ.get("RUN_E2E") != "1":
        pytest.skip("end-to-end walk in the Agents Playground is opt-in: set RUN_E2E=1")
    missing = missing_prerequisites()
    if missing:
        pytest.skip("missing: " + "; ".join(missing))


def test_case_from_hjaelp_to_mine_sager_in_the_playground(prerequisites: None, tmp_path: Path) -> None:
    out = Path(os.environ.get("E2E_SCREENSHOTS", ROOT / "var" / "screenshots" / "e2e"))
    lines: list[str] = []
    report = run_walk(out, workdir=tmp_path / "services", log=lines.append)
    log = "\n".join(lines)
    print(log)
    failed = [r for r in report.results if not r.ok]
    assert not failed, (
        f"step {failed[0].number:02d} {failed[0].name} failed ({failed[0].screenshot} in {out}):\n"
        f"{failed[0].error}\n\n{log}"
    )
    assert report.ok, f"only {report.passed} of {report.total} steps ran:\n{log}"


def test_forums_from_setup_to_evaluation_in_the_playground(prerequisites: None, tmp_path: Path) -> None:
    from tests.e2e.walk_forums import run_forum_walk

    out = Path(os.environ.get("E2E_SCREENSHOTS", ROOT / "var" / "screenshots" / "e2e")) / "forums"
    lines: list[str] = []
    report = run_forum_walk(out, workdir=tmp_path / "forum-services", log=lines.append)
    log = "\n".join(lines)
    print(log)
    failed = [r for r in report.results if not r.ok]
    assert not failed, (
        f"step {failed[0].number:02d} {failed[0].name} failed ({failed[0].screenshot} in {out}):\n"
        f"{failed[0].error}\n\n{log}"
    )
