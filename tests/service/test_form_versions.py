"""A case keeps the form versions it was started with, after a new version of a form is deployed."""

from __future__ import annotations

from pathlib import Path

import yaml

from dialogs.forms_model import FORMS_DIR, Form, FormCatalog
from dialogs.organisation import Organisation
from dialogs.service import Actor, CaseService, Conversation
from storage.db import Database
from storage.migrate import upgrade
from tests.support.chat import texts_of

ROOT = Path(__file__).resolve().parents[2]
ORG = Organisation.load(ROOT / "config" / "organisation.yaml")
ANNA = Actor(id="aad-anna", name="Anna Andersen", tenant_id="t")
CONV = Conversation(key="msteams:a:1", conversation_id="a:1", service_url="http://127.0.0.1:1")


def catalog_with_new_dialoggrundlag() -> FormCatalog:
    """Today's forms plus dialoggrundlag 2026.2 with one more question on its first page."""
    forms = FormCatalog.load().all()
    data = yaml.safe_load((FORMS_DIR / "dialoggrundlag.yaml").read_text(encoding="utf-8"))
    data["version"] = "2026.2"
    data["sections"][1]["items"].append(
        {"id": "q1c", "kind": "longtext", "number": "1c", "label": "c. Et nyt spørgsmål i version 2026.2?",
         "short": "Nyt spørgsmål"}
    )
    data["pages"][0]["items"].append("q1c")
    return FormCatalog([*forms, Form.model_validate(data)])


async def walk_to_dialoggrundlag(service: CaseService, activity: str) -> tuple[int, dict]:
    [reply] = await service.command(ANNA, CONV, "ny sag", f"{activity}-new")
    case_id = reply.card["body"][-1]["actions"][0]["data"]["case"]
    card = (await service.action(ANNA, CONV, "side.naeste",
                                 {"case": case_id, "step": "screening/overvejelser", "rev": 1,
                                  "in_s1": "ja", "in_s2": "nej", "in_s3": "nej"}, f"{activity}-1")).card
    assert "Initiativpligt" in texts_of(card)
    card = (await service.action(ANNA, CONV, "side.naeste",
                                 {"case": case_id, "step": "screening/vurdering", "rev": 2, "in_need": "ja"},
                                 f"{activity}-2")).card
    return case_id, card


async def test_old_case_keeps_its_version_and_new_cases_get_the_new_one(sqlite_url: str) -> None:
    database = Database(sqlite_url)
    await upgrade(database)
    try:
        old_service = CaseService(database, FormCatalog.load(), ORG)
        old_case, card = await walk_to_dialoggrundlag(old_service, "old")
        assert "Et nyt spørgsmål" not in texts_of(card)

        new_service = CaseService(database, catalog_with_new_dialoggrundlag(), ORG)
        assert new_service.catalog.current("dialoggrundlag").version == "2026.2"
        # The old case, opened by the new deployment, still renders with 2026.1.
        card = (await new_service.action(ANNA, CONV, "sag.aabn", {"case": old_case}, "reopen")).card
        assert "Dialoggrundlag · side 1 af 4" in texts_of(card)
        assert "Et nyt spørgsmål" not in texts_of(card)
        # A new case gets the new version.
        new_case, card = await walk_to_dialoggrundlag(new_service, "new")
        assert "Et nyt spørgsmål i version 2026.2?" in texts_of(card)
        async with database.transaction() as repo:
            old = await repo.get_case(old_case)
            new = await repo.get_case(new_case)
        assert old is not None and new is not None
        assert old.form_versions["dialoggrundlag"] == "2026.1"
        assert new.form_versions["dialoggrundlag"] == "2026.2"
    finally:
        await database.dispose()
