"""The form files as data: they load, are consistent, and carry the official texts verbatim.

The expected texts are copied from the domain analysis of the seed documents (seed-analysis §2-4);
nothing outside the repository is read at test time.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from dialogs.flow import FORM_ORDER
from dialogs.forms_model import FORMS_DIR, Form, FormCatalog, ItemKind
from dialogs.organisation import Organisation

ROOT = Path(__file__).resolve().parents[2]
CATALOG = FormCatalog.load()
FORMS = {form_id: CATALOG.current(form_id) for form_id in FORM_ORDER}
ALL_FORMS = CATALOG.all()
FORM_PARAMS = [pytest.param(form, id=form.key) for form in ALL_FORMS]

# ---------------------------------------------------------------- verbatim texts (seed-analysis)

# §2.1 The three screening questions.
SCREENING_QUESTIONS = {
    "s1": "Har ændringen konsekvenser for samarbejdspartnere?",
    "s2": "Kræver ændringen nye kompetencer hos samarbejdspartnerne?",
    "s3": "Indgår utensilier/hjælpemidler i ændringen?",
}
# §2.2 The rule (shown as the intro of the manager's assessment).
SCREENING_RULE = (
    "Kan der svares ja til minimum ét af spørgsmålene har nærmeste leder initiativpligten til at vurdere, "
    "om der er behov for udarbejdelse af et skriftligt dialoggrundlag."
)

# §3.1 Dialoggrundlag: section headings 1-6 and the sub-questions (by item number).
DIALOGGRUNDLAG_SECTIONS = [
    "1. Baggrund for ønske om opgaveflytning:",
    "2. Beskrivelse af opgaven:",
    "3. Fordele/konsekvenser for borgeren/patienten:",
    "4. Konsekvenser for samarbejdspartnere:",
    "5. Utensilier/hjælpemidler, der indgår i opgaven:",
    "6. Forventede økonomiske konsekvenser af opgaveflytning",
]
DIALOGGRUNDLAG_SECTION_ITEMS = [
    ["1a", "1b"],
    ["2.1", "2.2", "2.3", "2.4"],
    ["3"],
    ["4.1", "4.2"],
    ["5"],
    ["6"],
]
DIALOGGRUNDLAG_QUESTIONS = {
    "1a": "a. Hvorfor opgaveflytning?",
    "1b": "b. Hvilke kvalitetsforbedringer?",
    "2.1": "- Hvad skal der ske?",
    "2.2": "- Hvornår skal det ske?",
    "2.3": "- Hvilke og hvor mange patienter berører det?",
    "2.4": "- Hvad er det forventede ressourceforbrug?",
    # Sections 3, 5 and 6 have no sub-questions: the heading is the question.
    "3": "3. Fordele/konsekvenser for borgeren/patienten:",
    "4.1": "- Hvornår på ugen/døgnet skal opgaven løftes?",
    "4.2": "- Behov for kompetenceudvikling?",
    "5": "5. Utensilier/hjælpemidler, der indgår i opgaven:",
    "6": "6. Forventede økonomiske konsekvenser af opgaveflytning",
}
DIALOGGRUNDLAG_SECTION1_LEAD_IN = "Motivation med forståelse for:"
DIALOGGRUNDLAG_TASK = "Opgaveflytning af (navn på opgaven)"
DIALOGGRUNDLAG_INITIATOR = "Initiativtager (navn og organisation):"
DIALOGGRUNDLAG_DATE = "Dato:"

# §4.2 Mini-MTV: the five headings with the questions they hold (Q17 and Q31 fall outside the
# ranges their headings name; that is the source's quirk, kept).
MINI_MTV_SECTIONS = [
    ("Spørgsmål 1- 4: Indledning", range(1, 5)),
    ("Spørgsmål 5 - 13: Indsatsen", range(5, 14)),
    ("Spørgsmål 14 - 16: Borgeren", range(14, 18)),
    ("Spørgsmål 18 - 24: Organisation", range(18, 25)),
    ("Spørgsmål 25 - 30: Økonomi", range(25, 32)),
]
MINI_MTV_QUESTIONS = {
    # Q1 spans two lines in the source («1: Hvem er forslagsstiller?» «(Person eller organisation)?»),
    # joined with one space.
    1: "1: Hvem er forslagsstiller? (Person eller organisation)?",
    2: "2: Hvad er navnet/betegnelsen for den nye indsats?",
    3: "3: Hvilke parter er forslaget drøftet med?",
    4: "4: Indgår forslaget i Sundhedsaftalen? Hvis ja, hvordan?",
    5: "5: Til hvilken sundhedsmæssig problemstilling skal indsatsen anvendes?",
    6: "6: På hvilken måde er indsatsen ny i forhold til målgruppen?",
    7: "7: Beskriv den foretagne litteratursøgning (udført af initiativtager eller af andre)?",
    8: "8: Angiv de væsentligste referencer, vurder kvaliteten og evt. styrken af evidensen.",
    9: "9: Hvad er effekten af indsatsen for målgruppen med hensyn til sundhedstilstand?",
    10: "10: Hvilke risici, bivirkninger eller andre uønskede effekter kan indsatsen have?",
    11: "11: Kendes der til igangværende undersøgelser af effekten af samme el. lign. indsatser i Danmark?",
    12: "12: Er indsatsen anbefalet af Sundhedsstyrelsen, Servicestyrelsen eller andre? Hvis JA, angiv af hvem.",
    13: "13: Har initiativtageren tidligere, evt. i andre sammenhænge, søgt om indførelse af indsatsen? "
    "Hvis JA, med hvilket resultat?",
    14: "14: Medfører indsatsen særlige etiske overvejelser? Hvis ja, hvilke?",
    15: "15: Forventes det, at målgruppens livskvalitet, funktionsevne, sociale eller beskæftigelsesmæssige "
    "situation påvirkes af indsatsen? Hvis ja, hvordan?",
    16: "16: Hvordan tænkes målgruppen inddraget (information, opsøgning m.m.)?",
    17: "17. Hvilket tidspunkt på døgnet vedrører den planlagte opgaveflytning? (dag, aften, nat, evt. antal "
    "besøg og disse forventelige varighed)",
    18: "18: Hvilke konsekvenser har indsatsen for personalet, hvad angår information, uddannelse, tidsforbrug "
    "(over døgnet / ugen) og arbejdsmiljø?",
    19: "19: Kan indsatsen rummes i opgavemodtagerens nuværende fysiske el. organisatoriske rammer? "
    "Hvis ja, hvordan?",
    20: "20: Bliver andre afdelinger eller relaterede områder i opgavemodtagerens organisation påvirket af "
    "indsatsen? Hvis ja, hvordan?",
    21: "21: Påvirker indsatsen samarbejdet med andre kommuner, regioner, primærsektoren, leverandører, "
    "frivillige organisationer m.v. (for eksempel i forbindelse med ændringer i det ønskede forløb for "
    "borgeren)? Hvis ja, hvordan?",
    22: "22: Hvornår kan indsatsen iværksættes og evt. afsluttes igen?",
    23: "23: Hvordan tænkes indsatsen evalueret?",
    24: "24: Er indsatsen implementeret andre steder i Danmark (hvor)?",
    25: "25: Er der opstartsudgifter til udstyr, ombygning, uddannelse m.v.? Både anlæg og drift.",
    26: "26: Hvad er de forventede aktivitetsmæssige konsekvenser de nærmeste år? (Vær så konkret som muligt)",
    27: "27: Hvad er det forventede ressourceforbrug pr. borger omfattet af indsatsen pr. dag/pr. uge/ pr. år "
    "for kommunen? Både anlæg og drift.",
    28: "28: Hvad er det forventede totale ressourceforbrug pr. år for kommunen de nærmeste år? "
    "(Anlægs-, drifts- og afledte driftsforbrug angives for sig)",
    29: "29: Er der forventede et øget/reduceret ressourceforbrug for andre kommuner, regioner mv.? "
    "(Anlægs-, drifts- og afledte driftsforbrug angives for sig)",
    30: "30: Hvilke forudsætninger ligger til grund for ovenstående beregninger?",
    31: "31. Hvilke økonomiske forbedringer kan der eventuelt forventes?",
}
MINI_MTV_FULL_STOP_NUMBERS = {17, 31}  # «17.» and «31.»; all others use «N:»
MINI_MTV_COMMENTS = "Øvrige kommentarer"
MINI_MTV_FILLED_BY = "Mini MTV er udfyldt af:"
MINI_MTV_FILLED_BY_FIELDS = [("Navn:", ItemKind.TEXT), ("Adresse:", ItemKind.TEXT), ("Tlf.", ItemKind.PHONE),
                             ("E-mail", ItemKind.EMAIL)]


# ---------------------------------------------------------------- loading and consistency


def test_all_form_files_load() -> None:
    files = sorted(FORMS_DIR.glob("*.yaml"))
    assert len(files) == len(ALL_FORMS) >= 4
    assert {form.id for form in ALL_FORMS} >= set(FORM_ORDER)
    for path in files:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert CATALOG.get(data["id"], data["version"]).title == data["title"], path.name


def test_current_is_the_highest_version() -> None:
    for form_id in FORM_ORDER:
        versions = [f.version for f in ALL_FORMS if f.id == form_id]
        highest = max(versions, key=lambda v: tuple(int(p) for p in v.split(".")))
        assert CATALOG.current(form_id).version == highest
        assert CATALOG.get(form_id, None) is CATALOG.current(form_id)


@pytest.mark.parametrize("form", FORM_PARAMS)
def test_ids_are_unique(form: Form) -> None:
    item_ids = [item.id for section in form.sections for item in section.items]
    section_ids = [section.id for section in form.sections]
    page_ids = [page.id for page in form.pages]
    for ids in (item_ids, section_ids, page_ids):
        assert len(ids) == len(set(ids)), ids
    numbers = [item.number for item in form.items.values() if item.number]
    assert len(numbers) == len(set(numbers)), numbers


@pytest.mark.parametrize("form", FORM_PARAMS)
def test_every_item_is_on_exactly_one_page_in_form_order(form: Form) -> None:
    paged = [item_id for page in form.pages for item_id in page.items]
    assert sorted(paged) == sorted(form.items)
    assert len(paged) == len(set(paged))
    # Pages walk the form in the official order of its sections.
    assert paged == [item.id for section in form.sections for item in section.items]


@pytest.mark.parametrize("form", FORM_PARAMS)
def test_pages_are_small(form: Form) -> None:
    for page in form.pages:
        longtexts = [i for i in page.items if form.items[i].kind is ItemKind.LONGTEXT]
        assert len(longtexts) <= 4, f"{form.id}/{page.id} has {len(longtexts)} longtext items"


@pytest.mark.parametrize("form", FORM_PARAMS)
def test_short_labels_fit(form: Form) -> None:
    for item in form.items.values():
        assert 1 <= len(item.short) <= 60, item.id
        assert item.short == item.short.strip(), item.id
    shorts = [item.short for item in form.items.values()]
    assert len(shorts) == len(set(shorts)), "short labels are shown on the review card and must differ"


@pytest.mark.parametrize("form", FORM_PARAMS)
def test_conditions_refer_to_existing_earlier_items_and_valid_values(form: Form) -> None:
    order = list(form.items)
    for item in form.items.values():
        for cond in [*item.enable_when, *item.required_when]:
            assert cond.item in form.items, f"{item.id}: unknown {cond.item}"
            assert order.index(cond.item) < order.index(item.id), f"{item.id} depends on a later item"
            target = form.items[cond.item]
            if target.kind is ItemKind.YESNO:
                assert cond.equals in ("ja", "nej"), (item.id, cond)
            elif target.kind is ItemKind.CHOICE and target.options:
                assert cond.equals in [o.value for o in target.options], (item.id, cond)


@pytest.mark.parametrize("form", FORM_PARAMS)
def test_prefills_refer_to_earlier_forms(form: Form) -> None:
    for item in form.items.values():
        for ref in item.prefill:
            other_form, sep, other_item = ref.partition(".")
            assert sep and other_form in FORMS, ref
            assert other_item in FORMS[other_form].items, ref
            if form.id in FORM_ORDER:
                assert FORM_ORDER.index(other_form) < FORM_ORDER.index(form.id), ref


@pytest.mark.parametrize("form", FORM_PARAMS)
def test_choice_items_have_options(form: Form) -> None:
    for item in form.items.values():
        if item.kind is ItemKind.CHOICE:
            assert item.options or item.options_from == "hospitals", item.id
            values = [o.value for o in item.options or []]
            assert len(values) == len(set(values)), item.id


# ---------------------------------------------------------------- screening


def test_screening_questions_verbatim() -> None:
    form = FORMS["screening"]
    for item_id, label in SCREENING_QUESTIONS.items():
        item = form.items[item_id]
        assert item.label == label
        assert item.kind is ItemKind.YESNO
        assert item.required
        assert not item.enable_when
    assert [form.items[i].number for i in SCREENING_QUESTIONS] == ["1", "2", "3"]
    assert form.pages[0].items == list(SCREENING_QUESTIONS)


def test_screening_assessment_follows_the_rule() -> None:
    form = FORMS["screening"]
    assert form.section_of["need"].intro == SCREENING_RULE
    need = form.items["need"]
    assert need.kind is ItemKind.YESNO and need.required
    assert need.enable_behavior == "any"
    assert {(c.item, c.equals) for c in need.enable_when} == {("s1", "ja"), ("s2", "ja"), ("s3", "ja")}
    reason = form.items["need_reason"]
    assert [(c.item, c.equals) for c in reason.required_when] == [("need", "nej")]
    assert reason.enable_when == need.enable_when


# ---------------------------------------------------------------- dialoggrundlag


def test_dialoggrundlag_header_fields() -> None:
    form = FORMS["dialoggrundlag"]
    assert form.items["h_task"].label == DIALOGGRUNDLAG_TASK
    assert form.items["h_task"].required
    # One field in the source, split into name and organisation.
    for item_id in ("h_initiator_name", "h_initiator_org"):
        assert form.items[item_id].label.startswith(DIALOGGRUNDLAG_INITIATOR)
        assert form.items[item_id].required
    assert form.items["h_date"].label == DIALOGGRUNDLAG_DATE
    assert form.items["h_date"].kind is ItemKind.DATE


def test_dialoggrundlag_sections_one_to_six_verbatim() -> None:
    form = FORMS["dialoggrundlag"]
    numbered = [s for s in form.sections if s.title[:1].isdigit()]
    assert [s.title for s in numbered] == DIALOGGRUNDLAG_SECTIONS
    assert [[item.number for item in s.items] for s in numbered] == DIALOGGRUNDLAG_SECTION_ITEMS
    assert numbered[0].intro == DIALOGGRUNDLAG_SECTION1_LEAD_IN
    # Nothing but the header comes before section 1.
    assert form.sections[0].id == "stamdata" and form.sections[1] is numbered[0]


@pytest.mark.parametrize(("number", "label"), DIALOGGRUNDLAG_QUESTIONS.items())
def test_dialoggrundlag_question_verbatim(number: str, label: str) -> None:
    form = FORMS["dialoggrundlag"]
    matches = [item for item in form.items.values() if item.number == number]
    assert len(matches) == 1
    assert matches[0].label == label
    assert matches[0].kind is ItemKind.LONGTEXT


def test_dialoggrundlag_questions_are_all_listed() -> None:
    form = FORMS["dialoggrundlag"]
    assert sorted(i.number for i in form.items.values() if i.number) == sorted(DIALOGGRUNDLAG_QUESTIONS)


# ---------------------------------------------------------------- mini-mtv


def _mtv_by_number() -> dict[int, Any]:
    form = FORMS["mini_mtv"]
    return {int(item.number): item for item in form.items.values() if item.number}


def test_mini_mtv_numbers_one_to_thirty_one_once_in_order() -> None:
    form = FORMS["mini_mtv"]
    numbers = [item.number for item in form.items.values() if item.number]
    assert numbers == [str(n) for n in range(1, 32)]


def test_mini_mtv_sections_verbatim() -> None:
    form = FORMS["mini_mtv"]
    titles = [s.title for s in form.sections]
    assert titles == [title for title, _ in MINI_MTV_SECTIONS] + [MINI_MTV_COMMENTS, MINI_MTV_FILLED_BY]
    for section, (_, numbers) in zip(form.sections, MINI_MTV_SECTIONS, strict=False):
        assert [item.number for item in section.items] == [str(n) for n in numbers], section.title


@pytest.mark.parametrize(("number", "label"), MINI_MTV_QUESTIONS.items())
def test_mini_mtv_question_verbatim(number: int, label: str) -> None:
    item = _mtv_by_number()[number]
    assert item.label == label
    separator = "." if number in MINI_MTV_FULL_STOP_NUMBERS else ":"
    assert item.label.startswith(f"{number}{separator} ")
    assert item.kind is ItemKind.LONGTEXT


def test_mini_mtv_closing_blocks() -> None:
    form = FORMS["mini_mtv"]
    comments, filled_by = form.sections[-2], form.sections[-1]
    assert [(i.label, i.kind) for i in comments.items] == [(MINI_MTV_COMMENTS, ItemKind.LONGTEXT)]
    assert [(i.label, i.kind) for i in filled_by.items] == MINI_MTV_FILLED_BY_FIELDS
    assert all(i.number is None for i in [*comments.items, *filled_by.items])


def test_nothing_in_mini_mtv_is_required() -> None:
    form = FORMS["mini_mtv"]
    for item in form.items.values():
        assert not item.required, item.id
        assert not item.required_when, item.id


def test_mini_mtv_q1_q2_prefill_from_dialoggrundlag() -> None:
    by_number = _mtv_by_number()
    assert by_number[1].prefill == ["dialoggrundlag.h_initiator_name", "dialoggrundlag.h_initiator_org"]
    assert by_number[2].prefill == ["dialoggrundlag.h_task"]
    assert [n for n, item in by_number.items() if item.prefill] == [1, 2]


# ---------------------------------------------------------------- route and organisation


def test_route_choices_and_hospital() -> None:
    form = FORMS["rute"]
    assert [o.value for o in form.items["route"].options or []] == ["samarbejdsforum", "psg"]
    hospital = form.items["hospital"]
    assert hospital.options_from == "hospitals"
    assert [(c.item, c.equals) for c in hospital.required_when] == [("route", "samarbejdsforum")]


def test_organisation_config_loads() -> None:
    org = Organisation.load(ROOT / "config" / "organisation.yaml")
    assert len(org.hospitals) >= 1
    assert len({h.id for h in org.hospitals}) == len(org.hospitals)
    assert all(h.name and h.forum for h in org.hospitals)
    assert org.portfolio_group.id == "psg"
    assert org.portfolio_group.name == "Porteføljestyregruppen"
    assert org.decision_body.name == "Strategisk Sundhedsforum"
    assert org.hospital_forums() == {h.id: h.forum for h in org.hospitals}
    assert org.hospital(org.hospitals[0].id) == org.hospitals[0]
    assert org.hospital("ukendt") is None and org.hospital(None) is None


# ---------------------------------------------------------------- the model rejects bad form data


def _item(item_id: str, **extra: Any) -> dict[str, Any]:
    return {"id": item_id, "kind": "text", "label": f"Label {item_id}", "short": f"Kort {item_id}", **extra}


GOOD: dict[str, Any] = {
    "id": "proeve",
    "version": "2026.1",
    "title": "Prøve",
    "short_title": "Prøve",
    "source": "test",
    "sections": [
        {"id": "a", "title": "A", "items": [_item("x"), _item("y")]},
        {"id": "b", "title": "B", "items": [_item("z", enable_when=[{"item": "x", "equals": "ja"}])]},
    ],
    "pages": [{"id": "p1", "title": "P1", "items": ["x", "y"]}, {"id": "p2", "title": "P2", "items": ["z"]}],
}


def _bad(change) -> dict[str, Any]:
    data = copy.deepcopy(GOOD)
    change(data)
    return data


def test_good_form_data_is_accepted() -> None:
    form = Form.model_validate(GOOD)
    assert list(form.items) == ["x", "y", "z"]
    assert form.page_index == {"p1": 0, "p2": 1}


BAD_FORMS = {
    "duplicate item id in another section": (
        lambda d: d["sections"][1]["items"].append(_item("x")),
        "duplicate item ids",
    ),
    "duplicate item id in the same section": (
        lambda d: d["sections"][0]["items"].append(_item("y")),
        "duplicate item ids",
    ),
    "item on two pages": (lambda d: d["pages"][1]["items"].append("x"), "exactly one page"),
    "item twice on one page": (lambda d: d["pages"][0]["items"].append("y"), "exactly one page"),
    "item on no page": (lambda d: d["pages"][0]["items"].remove("y"), "exactly one page"),
    "page names an unknown item": (lambda d: d["pages"][0]["items"].append("nope"), "unknown items"),
    "duplicate page id": (lambda d: d["pages"][1].update(id="p1"), "duplicate page ids"),
    "condition on an unknown item": (
        lambda d: d["sections"][1]["items"][0].update(enable_when=[{"item": "nope", "equals": "ja"}]),
        "condition on unknown item",
    ),
    "required_when on an unknown item": (
        lambda d: d["sections"][0]["items"][0].update(required_when=[{"item": "nope", "equals": "ja"}]),
        "condition on unknown item",
    ),
    "short label over 60 characters": (
        lambda d: d["sections"][0]["items"][0].update(short="x" * 61),
        "at most 60 characters",
    ),
    "choice without options": (
        lambda d: d["sections"][0]["items"][0].update(kind="choice"),
        "needs options",
    ),
    "options on a text item": (
        lambda d: d["sections"][0]["items"][0].update(options=[{"value": "a", "title": "A"}]),
        "only choice items have options",
    ),
    "unknown key": (lambda d: d["sections"][0]["items"][0].update(mandatory=True), "Extra inputs"),
    "bad item id": (lambda d: d["sections"][0]["items"][0].update(id="X-1"), "should match pattern"),
    "empty page": (lambda d: d["pages"].append({"id": "p3", "title": "P3", "items": []}), "at least 1 item"),
    "bad version": (lambda d: d.update(version="1"), "should match pattern"),
}


@pytest.mark.parametrize(("change", "message"), BAD_FORMS.values(), ids=BAD_FORMS.keys())
def test_bad_form_data_is_rejected(change, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Form.model_validate(_bad(change))


@pytest.mark.parametrize("case", ["duplicate item id in another section", "item on two pages"])
def test_bad_form_file_is_rejected_by_the_catalog(tmp_path: Path, case: str) -> None:
    change, message = BAD_FORMS[case]
    (tmp_path / "good.yaml").write_text(yaml.safe_dump({**GOOD, "id": "god"}, allow_unicode=True), encoding="utf-8")
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(_bad(change), allow_unicode=True), encoding="utf-8")
    with pytest.raises(ValidationError, match=message):
        FormCatalog.load(tmp_path)


def test_catalog_keeps_versions(tmp_path: Path) -> None:
    for version in ("2026.1", "2026.10", "2026.2"):
        data = {**GOOD, "version": version, "title": f"Prøve {version}"}
        (tmp_path / f"proeve_{version}.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    catalog = FormCatalog.load(tmp_path)
    assert catalog.current("proeve").version == "2026.10"  # numeric, not string, order
    assert catalog.get("proeve", "2026.2").title == "Prøve 2026.2"
    with pytest.raises(KeyError):
        catalog.get("proeve", "2025.1")
