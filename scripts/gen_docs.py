"""Generate docs/flows.md: Mermaid diagrams of the case lifecycle and of every form's pages.

The diagrams come from the code (dialogs/flow.py via dialogs/diagrams.py) and the current version of
each form file under dialogs/forms/. Run it after changing either; tests/unit/test_docs_fresh.py
fails while docs/flows.md is stale.

    python scripts/gen_docs.py            # write docs/flows.md
    python scripts/gen_docs.py --check    # exit 1 if docs/flows.md is not up to date
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dialogs.diagrams import flows_markdown  # noqa: E402
from dialogs.flow import FORM_ORDER  # noqa: E402
from dialogs.forms_model import FORMS_DIR, FormCatalog  # noqa: E402

OUTPUT = ROOT / "docs" / "flows.md"


def render(forms_dir: Path = FORMS_DIR) -> str:
    """The text of docs/flows.md for the form files in ``forms_dir`` (case-flow order first)."""
    catalog = FormCatalog.load(forms_dir)
    ids = sorted({form.id for form in catalog.all()}, key=lambda i: (FORM_ORDER.index(i) if i in FORM_ORDER else len(FORM_ORDER), i))
    return flows_markdown([catalog.current(form_id) for form_id in ids])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that the file is up to date")
    parser.add_argument("--output", type=Path, default=OUTPUT, help=f"file to write (default {OUTPUT.relative_to(ROOT)})")
    args = parser.parse_args(argv)
    text = render()
    current = args.output.read_text(encoding="utf-8") if args.output.exists() else None
    if args.check:
        if current != text:
            print(f"{args.output} is stale: run `python scripts/gen_docs.py`", file=sys.stderr)
            return 1
        print(f"{args.output} is up to date")
        return 0
    if current == text:
        print(f"{args.output} is up to date")
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with args.output.open("w", encoding="utf-8", newline="\n") as handle:
        handle.write(text)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
