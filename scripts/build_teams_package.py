"""Build the Teams app package var/teams-app.zip (manifest.json + color.png + outline.png).

Reads deploy/teams/manifest.template.json, substitutes its ``${{NAME}}`` placeholders, validates the
result against the vendored manifest schema (deploy/teams/schema/MicrosoftTeams.schema.json) and
zips it with the icons. Standard library + jsonschema only.

    python scripts/build_teams_package.py --bot-id <Microsoft App ID>      # or env MICROSOFT_APP_ID

Placeholders and where their values come from (argument, then environment, then default):

    BOT_ID          --bot-id          MICROSOFT_APP_ID        required; the bot's Entra/Azure Bot app id
    APP_ID          --app-id          -                       uuid5 derived from BOT_ID (stable per bot)
    APP_VERSION     --version         TEAMS_APP_VERSION       [project].version in pyproject.toml
    DEVELOPER_NAME  --developer-name  TEAMS_DEVELOPER_NAME    "Opgaveflytning"
    WEBSITE_URL     --website-url     TEAMS_WEBSITE_URL       placeholder https URL (warned about)
    PRIVACY_URL     --privacy-url     TEAMS_PRIVACY_URL       WEBSITE_URL + "/privatliv"
    TERMS_URL       --terms-url       TEAMS_TERMS_URL         WEBSITE_URL + "/vilkaar"

Bump the version whenever the manifest changes: Teams only picks up an updated app with a new version.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import struct
import sys
import tomllib
import uuid
import zipfile
from pathlib import Path
from typing import Any

from jsonschema import Draft4Validator, Draft6Validator, validators

ROOT = Path(__file__).resolve().parents[1]
TEAMS_DIR = ROOT / "deploy" / "teams"
TEMPLATE = TEAMS_DIR / "manifest.template.json"
SCHEMA = TEAMS_DIR / "schema" / "MicrosoftTeams.schema.json"
DEFAULT_OUT = ROOT / "var" / "teams-app.zip"
ICONS = {"color.png": (192, 192), "outline.png": (32, 32)}

#: Namespace for deriving the manifest id from the bot id; never change it, or every installed app
#: would be seen by Teams as a different app.
APP_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:opgaveflytning:teams-app")
PLACEHOLDER_WEBSITE = "https://opgaveflytning.example.org"
DEFAULT_DEVELOPER_NAME = "Opgaveflytning"

_PLACEHOLDER = re.compile(r"\$\{\{([A-Z0-9_]+)\}\}")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
# The Teams schemas declare draft-04 but use the draft-06 keyword "const" (manifestVersion); enforce it.
ManifestValidator = validators.extend(Draft4Validator, {"const": Draft6Validator.VALIDATORS["const"]})


class PackageError(Exception):
    """The package cannot be built (missing/invalid value, schema violation, bad icon)."""


def derive_app_id(bot_id: str) -> str:
    """Stable manifest id for a bot: the same BOT_ID always gives the same APP_ID."""
    return str(uuid.uuid5(APP_ID_NAMESPACE, bot_id.strip().lower()))


def project_version() -> str:
    with (ROOT / "pyproject.toml").open("rb") as fh:
        return tomllib.load(fh)["project"]["version"]


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise PackageError("not a PNG file")
    return struct.unpack(">II", data[16:24])


def manifest_errors(manifest: dict[str, Any], schema_path: Path = SCHEMA) -> list[str]:
    """Schema violations of a rendered manifest, as "<path>: <message>" lines (empty = valid)."""
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    validator = ManifestValidator(schema)
    errors = sorted(validator.iter_errors(manifest), key=lambda e: list(map(str, e.absolute_path)))
    return ["/" + "/".join(map(str, e.absolute_path)) + f": {e.message}" for e in errors]


def _substitute(node: Any, values: dict[str, str]) -> Any:
    if isinstance(node, str):

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in values:
                raise PackageError(f"template uses unknown placeholder ${{{{{name}}}}}")
            return values[name]

        return _PLACEHOLDER.sub(replace, node)
    if isinstance(node, list):
        return [_substitute(item, values) for item in node]
    if isinstance(node, dict):
        return {key: _substitute(value, values) for key, value in node.items()}
    return node


def resolve_values(
    bot_id: str | None = None,
    *,
    app_id: str | None = None,
    version: str | None = None,
    developer_name: str | None = None,
    website_url: str | None = None,
    privacy_url: str | None = None,
    terms_url: str | None = None,
    env: dict[str, str] | None = None,
) -> dict[str, str]:
    """Placeholder values from arguments, then environment, then defaults (see module docstring)."""
    env = dict(os.environ) if env is None else env
    bot_id = (bot_id or env.get("MICROSOFT_APP_ID") or "").strip()
    if not bot_id:
        raise PackageError("BOT_ID missing: pass --bot-id or set MICROSOFT_APP_ID")
    if not _GUID.match(bot_id):
        raise PackageError(f"BOT_ID must be the bot's Microsoft App ID (a GUID), got {bot_id!r}")
    app_id = (app_id or "").strip() or derive_app_id(bot_id)
    if not _GUID.match(app_id):
        raise PackageError(f"APP_ID must be a GUID, got {app_id!r}")
    website = (website_url or env.get("TEAMS_WEBSITE_URL") or PLACEHOLDER_WEBSITE).rstrip("/")
    if website == PLACEHOLDER_WEBSITE:
        print(
            f"warning: developer URLs use the placeholder {PLACEHOLDER_WEBSITE}; "
            "pass --website-url (or set TEAMS_WEBSITE_URL) for a real package",
            file=sys.stderr,
        )
    values = {
        "BOT_ID": bot_id,
        "APP_ID": app_id,
        "APP_VERSION": version or env.get("TEAMS_APP_VERSION") or project_version(),
        "DEVELOPER_NAME": developer_name or env.get("TEAMS_DEVELOPER_NAME") or DEFAULT_DEVELOPER_NAME,
        "WEBSITE_URL": website,
        "PRIVACY_URL": privacy_url or env.get("TEAMS_PRIVACY_URL") or f"{website}/privatliv",
        "TERMS_URL": terms_url or env.get("TEAMS_TERMS_URL") or f"{website}/vilkaar",
    }
    for name in ("WEBSITE_URL", "PRIVACY_URL", "TERMS_URL"):
        if not values[name].startswith("https://"):
            raise PackageError(f"{name} must be an https:// URL, got {values[name]!r}")
    return values


def render_manifest(values: dict[str, str], template: Path = TEMPLATE) -> dict[str, Any]:
    """The manifest with every placeholder substituted and validated against the vendored schema."""
    manifest = _substitute(json.loads(template.read_text(encoding="utf-8")), values)
    leftover = _PLACEHOLDER.findall(json.dumps(manifest))
    if leftover:
        raise PackageError(f"placeholders left in manifest: {sorted(set(leftover))}")
    errors = manifest_errors(manifest)
    if errors:
        raise PackageError("manifest does not match the Teams schema:\n  " + "\n  ".join(errors))
    return manifest


def build_package(values: dict[str, str], out: Path = DEFAULT_OUT, icons_dir: Path = TEAMS_DIR) -> Path:
    """Write the zip (files at the archive root, as Teams requires) and return its path."""
    manifest = render_manifest(values)
    files = {"manifest.json": (json.dumps(manifest, ensure_ascii=False, indent=2) + "\n").encode("utf-8")}
    for name, expected in ICONS.items():
        data = (icons_dir / name).read_bytes()
        if png_size(data) != expected:
            raise PackageError(f"{name} is {png_size(data)}, Teams needs {expected}")
        files[name] = data
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))  # reproducible archive
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bot-id", help="Microsoft App ID of the bot (default: env MICROSOFT_APP_ID)")
    parser.add_argument("--app-id", help="manifest id GUID (default: uuid5 derived from the bot id)")
    parser.add_argument("--version", help="app version, semver (default: pyproject.toml version)")
    parser.add_argument("--developer-name")
    parser.add_argument("--website-url")
    parser.add_argument("--privacy-url")
    parser.add_argument("--terms-url")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"zip to write (default: {DEFAULT_OUT})"
    )
    args = parser.parse_args(argv)
    try:
        values = resolve_values(
            args.bot_id,
            app_id=args.app_id,
            version=args.version,
            developer_name=args.developer_name,
            website_url=args.website_url,
            privacy_url=args.privacy_url,
            terms_url=args.terms_url,
        )
        out = build_package(values, args.out)
    except PackageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(
        f"wrote {out} (app id {values['APP_ID']}, bot id {values['BOT_ID']}, version {values['APP_VERSION']})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
