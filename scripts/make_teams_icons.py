"""Generate the Teams app icons deploy/teams/color.png (192x192) and outline.png (32x32).

Standard library only (PNG written with zlib + struct). The symbol is two opposed arrows (→ over ←):
a task moving from one sector to another. The color icon is a full-bleed accent-colored square with
the white symbol in the central 96x96 area; the outline icon is the white symbol on a transparent
background, as Teams requires. Output is deterministic, so re-running gives byte-identical files.

    python scripts/make_teams_icons.py [--out-dir deploy/teams]
"""

from __future__ import annotations

import argparse
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "deploy" / "teams"

ACCENT = (0x1F, 0x6F, 0x8B)  # keep in sync with accentColor in deploy/teams/manifest.template.json
WHITE = (0xFF, 0xFF, 0xFF)
SUPERSAMPLE = 4


def _in_symbol(u: float, v: float) -> bool:
    """Point test in symbol space [0,1]x[0,1] (v grows downwards): → on top, ← below."""
    # Upper arrow pointing right: shaft then a head whose base is at u=0.52 and tip at (1, 0.25).
    if 0.0 <= u <= 0.6 and 0.17 <= v <= 0.33:
        return True
    if 0.52 <= u <= 1.0 and abs(v - 0.25) <= 0.25 * (1.0 - u) / 0.48:
        return True
    # Lower arrow pointing left: mirror image, centred on v=0.75.
    if 0.4 <= u <= 1.0 and 0.67 <= v <= 0.83:
        return True
    return 0.0 <= u <= 0.48 and abs(v - 0.75) <= 0.25 * u / 0.48


def _coverage(size: int, box_origin: float, box_size: float) -> list[list[float]]:
    """Fraction of each pixel covered by the symbol drawn in the square box at (origin, origin)."""
    step = 1.0 / SUPERSAMPLE
    rows = []
    for y in range(size):
        row = []
        for x in range(size):
            hits = 0
            for sy in range(SUPERSAMPLE):
                for sx in range(SUPERSAMPLE):
                    u = (x + (sx + 0.5) * step - box_origin) / box_size
                    v = (y + (sy + 0.5) * step - box_origin) / box_size
                    hits += _in_symbol(u, v)
            row.append(hits / SUPERSAMPLE**2)
        rows.append(row)
    return rows


def _png(width: int, height: int, color_type: int, pixel_rows: list[bytes]) -> bytes:
    """Encode 8-bit RGB (color_type 2) or RGBA (6) rows as PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    raw = b"".join(b"\x00" + row for row in pixel_rows)  # filter type 0 (None) on every row
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def _render(size: int, box_origin: float, box_size: float, pixel: Callable[[float], bytes]) -> list[bytes]:
    return [b"".join(pixel(c) for c in row) for row in _coverage(size, box_origin, box_size)]


def color_icon() -> bytes:
    def pixel(cov: float) -> bytes:
        return bytes(round(bg + (fg - bg) * cov) for bg, fg in zip(ACCENT, WHITE, strict=True))

    return _png(192, 192, 2, _render(192, 48, 96, pixel))


def outline_icon() -> bytes:
    def pixel(cov: float) -> bytes:
        return bytes((*WHITE, round(255 * cov)))

    return _png(32, 32, 6, _render(32, 2, 28, pixel))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name, data in (("color.png", color_icon()), ("outline.png", outline_icon())):
        (args.out_dir / name).write_bytes(data)
        print(f"wrote {args.out_dir / name} ({len(data)} bytes)")


if __name__ == "__main__":
    main()
