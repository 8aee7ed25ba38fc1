"""The Teams app package built by scripts/build_teams_package.py is complete and schema-valid (offline)."""

from __future__ import annotations

import importlib.util
import json
import os
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path
from types import ModuleType

import pytest
from jsonschema import Draft4Validator, Draft6Validator, validators

ROOT = Path(__file__).resolve().parents[2]
TEAMS_DIR = ROOT / "deploy" / "teams"
SCHEMA_PATH = TEAMS_DIR / "schema" / "MicrosoftTeams.schema.json"
BOT_ID = "0b7e3c1a-5d2f-4e8b-9a61-2c4d8f0e7b13"
OTHER_BOT_ID = "7f1d2e3c-4b5a-6978-8a9b-0c1d2e3f4a5b"
EXPECTED_FILES = {"manifest.json", "color.png", "outline.png"}


def _load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_script_{name}", ROOT / "scripts" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = _load_script("build_teams_package")


def _values(bot_id: str = BOT_ID, **kwargs) -> dict[str, str]:
    return build.resolve_values(bot_id, website_url="https://opgaveflytning.test", env={}, **kwargs)


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build.build_package(_values(), tmp_path_factory.mktemp("teams") / "teams-app.zip")


@pytest.fixture(scope="module")
def manifest(package: Path) -> dict:
    with zipfile.ZipFile(package) as zf:
        return json.loads(zf.read("manifest.json").decode("utf-8"))


# --- independent helpers (do not trust the build script's own checks) ---------------------------------


def _schema_validator() -> Draft4Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    # Declared draft-04, but manifestVersion uses the draft-06 "const"; enforce it too.
    cls = validators.extend(Draft4Validator, {"const": Draft6Validator.VALIDATORS["const"]})
    cls.check_schema(schema)
    return cls(schema)


def _refs(node) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for item in node for r in _refs(item)]
    return []


def _png_header(data: bytes) -> tuple[int, int, int, int]:
    """(width, height, bit depth, colour type) from the IHDR chunk."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    width, height, depth, color_type = struct.unpack(">IIBB", data[16:26])
    return width, height, depth, color_type


def _rgba_pixels(data: bytes) -> list[tuple[int, int, int, int]]:
    """Decode a non-interlaced 8-bit RGBA PNG (all five row filters)."""
    width, height, depth, color_type = _png_header(data)
    assert (depth, color_type, data[28]) == (8, 6, 0), "expected 8-bit RGBA, non-interlaced"
    pos, idat = 8, b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if kind == b"IDAT":
            idat += data[pos + 8 : pos + 8 + length]
        pos += 12 + length
    raw, bpp, stride = zlib.decompress(idat), 4, width * 4
    prev, pixels = bytearray(stride), []
    for y in range(height):
        ftype, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 0xFF
            elif ftype == 2:
                line[i] = (line[i] + b) & 0xFF
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        pixels += [tuple(line[i : i + 4]) for i in range(0, stride, 4)]
        prev = line
    return pixels


# --- the package ----------------------------------------------------------------------------------------


def test_zip_holds_exactly_the_three_files_at_the_root(package: Path) -> None:
    with zipfile.ZipFile(package) as zf:
        assert set(zf.namelist()) == EXPECTED_FILES
        assert zf.testzip() is None


def test_manifest_validates_against_vendored_schema(manifest: dict) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in _schema_validator().iter_errors(manifest)]
    assert errors == []


def test_vendored_schema_resolves_offline_and_matches_declared_version(manifest: dict) -> None:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    refs = _refs(schema)
    assert refs and all(ref.startswith("#/") for ref in refs), "remote $ref would need network access"
    assert schema["properties"]["manifestVersion"]["const"] == manifest["manifestVersion"] == "1.19"
    assert manifest["$schema"].endswith("/teams/v1.19/MicrosoftTeams.schema.json")


def test_schema_check_is_not_vacuous(manifest: dict) -> None:
    validator = _schema_validator()
    for path, bad in [
        (("manifestVersion",), "1.18"),
        (("accentColor",), "blå"),
        (("bots", 0, "botId"), "ikke-en-guid"),
        (("bots", 0, "scopes"), ["personal", "meetings"]),
    ]:
        broken = json.loads(json.dumps(manifest))
        target = broken
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = bad
        assert list(validator.iter_errors(broken)), f"schema accepted {path}={bad!r}"
        assert build.manifest_errors(broken), f"build script accepted {path}={bad!r}"


def test_no_placeholder_left(package: Path) -> None:
    with zipfile.ZipFile(package) as zf:
        text = zf.read("manifest.json").decode("utf-8")
    assert "${{" not in text


@pytest.mark.parametrize(("name", "size"), [("color.png", (192, 192)), ("outline.png", (32, 32))])
def test_icon_sizes(package: Path, name: str, size: tuple[int, int]) -> None:
    with zipfile.ZipFile(package) as zf:
        width, height, depth, _ = _png_header(zf.read(name))
    assert (width, height) == size and depth == 8


def test_outline_icon_is_white_on_transparent(package: Path) -> None:
    with zipfile.ZipFile(package) as zf:
        pixels = _rgba_pixels(zf.read("outline.png"))
    assert len(pixels) == 32 * 32
    assert pixels[0][3] == pixels[31][3] == pixels[-1][3] == 0, "corners must be transparent"
    visible = [p for p in pixels if p[3]]
    assert visible and len(visible) < len(pixels) // 2
    assert {p[:3] for p in visible} == {(255, 255, 255)}


def test_committed_icons_match_generator() -> None:
    icons = _load_script("make_teams_icons")
    assert (TEAMS_DIR / "color.png").read_bytes() == icons.color_icon()
    assert (TEAMS_DIR / "outline.png").read_bytes() == icons.outline_icon()


def test_manifest_content(manifest: dict) -> None:
    bot = manifest["bots"][0]
    assert bot["botId"] == BOT_ID
    assert manifest["id"] == build.derive_app_id(BOT_ID)
    assert sorted(bot["scopes"]) == ["groupChat", "personal", "team"]
    assert bot["supportsFiles"] is False
    commands = {tuple(cl["scopes"]): [c["title"] for c in cl["commands"]] for cl in bot["commandLists"]}
    assert commands == {
        ("personal",): ["ny sag", "fortsæt", "mine sager", "hjælp"],
        ("team",): ["opsætning", "status", "leveringer", "hjælp"],
    }
    assert manifest["name"]["short"] == "Opgaveflytning"
    assert manifest["description"]["short"] == "Dialoggrundlag og Mini-MTV for opgaveflytning mellem sektorer"
    assert manifest["localizationInfo"] == {"defaultLanguageTag": "da-dk"}
    assert manifest["validDomains"] == []
    assert manifest["icons"] == {"color": "color.png", "outline": "outline.png"}
    assert manifest["developer"]["websiteUrl"] == "https://opgaveflytning.test"
    assert all(manifest["developer"][k].startswith("https://") for k in ("privacyUrl", "termsOfUseUrl"))


# --- build script behaviour ------------------------------------------------------------------------------


def test_app_id_is_stable_per_bot_and_overridable() -> None:
    assert _values()["APP_ID"] == _values()["APP_ID"] == build.derive_app_id(BOT_ID.upper())
    assert _values(OTHER_BOT_ID)["APP_ID"] != _values()["APP_ID"]
    explicit = "c0ffee00-1234-4abc-8def-0123456789ab"
    assert _values(app_id=explicit)["APP_ID"] == explicit


def test_build_is_reproducible(tmp_path: Path) -> None:
    first = build.build_package(_values(), tmp_path / "a.zip").read_bytes()
    second = build.build_package(_values(), tmp_path / "b.zip").read_bytes()
    assert first == second


@pytest.mark.parametrize("bot_id", ["", "not-a-guid"])
def test_bot_id_is_required_and_must_be_a_guid(bot_id: str) -> None:
    with pytest.raises(build.PackageError, match="BOT_ID"):
        build.resolve_values(bot_id, env={})


def test_cli_takes_bot_id_from_environment(tmp_path: Path) -> None:
    out = tmp_path / "var" / "teams-app.zip"
    env = {**os.environ, "MICROSOFT_APP_ID": BOT_ID, "TEAMS_WEBSITE_URL": "https://opgaveflytning.test"}
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_teams_package.py"), "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    with zipfile.ZipFile(out) as zf:
        assert set(zf.namelist()) == EXPECTED_FILES
        assert json.loads(zf.read("manifest.json"))["bots"][0]["botId"] == BOT_ID


def test_cli_fails_without_bot_id(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MICROSOFT_APP_ID"}
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_teams_package.py"), "--out", str(tmp_path / "x.zip")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "BOT_ID" in result.stderr
    assert not (tmp_path / "x.zip").exists()
