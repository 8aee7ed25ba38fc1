"""Forms as data: pydantic models for the versioned form files under ``dialogs/forms/``.

A form has sections (the official form's headings, with their items in order) and pages (how the
items are grouped onto cards). Item ids are stable: answers are stored by them, and a case remembers
the form version it was answered with.
"""

from __future__ import annotations

from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

FORMS_DIR = Path(__file__).resolve().parent / "forms"


class ItemKind(StrEnum):
    TEXT = "text"  # one line
    LONGTEXT = "longtext"  # multi-line, limited by the configurable answer length
    YESNO = "yesno"  # Ja / Nej
    CHOICE = "choice"  # one of ``options`` (or of a list from the organisation configuration)
    DATE = "date"
    EMAIL = "email"
    PHONE = "phone"


# Default maximum lengths for the short kinds; LONGTEXT uses the configured answer limit.
SHORT_MAX = {ItemKind.TEXT: 200, ItemKind.EMAIL: 254, ItemKind.PHONE: 40, ItemKind.DATE: 10}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Option(_Strict):
    value: str = Field(pattern=r"^[a-z0-9_]+$")
    title: str
    help: str | None = None


class Condition(_Strict):
    """FHIR ``enableWhen``-style: the item is shown/asked when ``item`` (same form) equals ``equals``."""

    item: str
    equals: str


class Item(_Strict):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    kind: ItemKind
    label: str = Field(min_length=1)
    short: str = Field(min_length=1, max_length=60, description="Short label for review and case cards")
    number: str | None = None
    help: str | None = None
    placeholder: str | None = None
    required: bool = False
    max_length: int | None = Field(default=None, ge=1)
    options: list[Option] | None = None
    options_from: Literal["hospitals"] | None = None
    # Pre-fill from another form's answers: "form_id.item_id" (several joined with ", ").
    prefill: list[str] = Field(default_factory=list)
    # Pre-fill from who the user is: "user_name" or "today".
    prefill_user: Literal["user_name", "today"] | None = None
    enable_when: list[Condition] = Field(default_factory=list)
    enable_behavior: Literal["any", "all"] = "any"
    required_when: list[Condition] = Field(default_factory=list)

    @model_validator(mode="after")
    def _choices(self) -> Item:
        if self.kind is ItemKind.CHOICE and not (self.options or self.options_from):
            raise ValueError(f"choice item {self.id} needs options or options_from")
        if self.kind is not ItemKind.CHOICE and (self.options or self.options_from):
            raise ValueError(f"only choice items have options ({self.id})")
        return self


class Section(_Strict):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    title: str
    intro: str | None = None
    items: list[Item]


class Page(_Strict):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    title: str
    intro: str | None = None
    items: list[str] = Field(min_length=1)


class Form(_Strict):
    id: str = Field(pattern=r"^[a-z_]+$")
    version: str = Field(pattern=r"^\d{4}\.\d+$")
    title: str
    short_title: str
    source: str
    intro: str | None = None
    sections: list[Section]
    pages: list[Page]

    @model_validator(mode="after")
    def _consistent(self) -> Form:
        ids = [item.id for section in self.sections for item in section.items]
        if len(ids) != len(set(ids)):
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            raise ValueError(f"{self.id}: duplicate item ids {dupes}")
        paged = [item_id for page in self.pages for item_id in page.items]
        unknown = [i for i in paged if i not in ids]
        if unknown:
            raise ValueError(f"{self.id}: pages name unknown items {unknown}")
        if sorted(paged) != sorted(ids):
            missing = sorted(set(ids) - set(paged))
            twice = sorted({i for i in paged if paged.count(i) > 1})
            raise ValueError(f"{self.id}: every item must be on exactly one page (missing {missing}, twice {twice})")
        page_ids = [p.id for p in self.pages]
        if len(page_ids) != len(set(page_ids)):
            raise ValueError(f"{self.id}: duplicate page ids")
        for item in self.items.values():
            for cond in [*item.enable_when, *item.required_when]:
                if cond.item not in self.items:
                    raise ValueError(f"{self.id}.{item.id}: condition on unknown item {cond.item}")
        return self

    @cached_property
    def items(self) -> dict[str, Item]:
        return {item.id: item for section in self.sections for item in section.items}

    @cached_property
    def section_of(self) -> dict[str, Section]:
        return {item.id: section for section in self.sections for item in section.items}

    @cached_property
    def page_index(self) -> dict[str, int]:
        return {page.id: index for index, page in enumerate(self.pages)}

    @property
    def key(self) -> str:
        return f"{self.id}@{self.version}"


class FormCatalog:
    """All form versions found in a directory; ``current`` is the highest version of each form."""

    def __init__(self, forms: list[Form]) -> None:
        self._by_key = {form.key: form for form in forms}
        self._current: dict[str, Form] = {}
        for form in sorted(forms, key=lambda f: tuple(int(p) for p in f.version.split("."))):
            self._current[form.id] = form

    @classmethod
    def load(cls, directory: Path = FORMS_DIR) -> FormCatalog:
        forms = []
        for path in sorted(directory.glob("*.yaml")):
            with path.open(encoding="utf-8") as handle:
                data = yaml.safe_load(handle)
            forms.append(Form.model_validate(data))
        return cls(forms)

    def current(self, form_id: str) -> Form:
        return self._current[form_id]

    def get(self, form_id: str, version: str | None) -> Form:
        if version is None:
            return self.current(form_id)
        return self._by_key[f"{form_id}@{version}"]

    def all(self) -> list[Form]:
        return list(self._by_key.values())
