"""The bot's Adaptive Cards: schema 1.5, the 25 KiB budget, the action contract, escaping, snapshots.

Cards are built from the real inputs: the form files (``FormCatalog.load()``), the organisation file,
and views assembled the way :class:`dialogs.service.CaseService` assembles them (``_page`` and
``_review``; two tests check that the mirrors here produce exactly the service's cards).

Worst cases use answers at their maximum length (``engine.max_length(item, 2000)``) made of realistic
"hard" text: Danish letters, punctuation, quotes, markdown characters and newlines. Choice and yes/no
items get a valid option value and dates a valid ISO date (their inputs cannot carry free text).

Sizes: ``pytest tests/cards/test_cards.py -s -k size`` prints the measured sizes.
"""

from __future__ import annotations

import json
import os
from collections.abc Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adaptive_cards import messages, verbs
from adaptive_cards.common import CARD_BUDGET_BYTES, CARD_VERSION, Json, md_escape, preview, size_utf16
from adaptive_cards.pages import PageView, page_card
from adaptive_cards.review import PREVIEW_STEPS, ReviewForm, ReviewItem, ReviewPage, ReviewView, review_card
from dialogs import engine
from dialogs.flow import DIALOGGRUNDLAG, FORM_ORDER, MINI_MTV, ROUTE, ROUTE_PSG, SCREENING, Phase, Step, plan
from dialogs.forms_model import Form, FormCatalog, Item, ItemKind, Page
from dialogs.organisation import Organisation
from dialogs.service import CaseService
from storage.repositories import Case, CaseAnswers, StoredAnswer
from tests.support.card_schema import card_errors, card_size_utf16
