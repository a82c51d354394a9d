"""``vggeo keys create|list|revoke``: the server's API keys (see the table in :mod:`vggeo.cli`).

The keys file holds salted hashes only; ``create`` prints the new key once, on stdout, and
nowhere else. The pepper, when used, comes from ``VGGEO_AUTH_KEY_PEPPER`` as for the server.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import click

from vggeo.errors import SettingsError

_FILE = click.option(
    "--file",
    "path",
    envvar="VGGEO_AUTH_KEYS_FILE",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="KEYS_FILE",
    help="The keys file (created if missing). Env: VGGEO_AUTH_KEYS_FILE.",
)


def _pepper() -> bytes:
    return os.environ.get("VGGEO_AUTH_KEY_PEPPER", "").encode()


@click.group()
def keys() -> None:
    """API keys of the server (hashed at rest; each with scopes)."""


@keys.command("create")
@_FILE
@click.option("--name", required=True, help="Who or what the key is for (shown by `list`).")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    metavar="SCOPE",
    help="A scope the key grants (repeatable): residences, residences:attributes, "
    "provisions, inskrivning, metrics.",
)
@click.option(
    "--expires",
    default=None,
    metavar="DATE",
    help="Expiry, ISO 8601 (e.g. 2026-12-31 or 2026-12-31T12:00:00Z). Default: never.",
)
def create(path: Path, name: str, scopes: tuple[str, ...], expires: str | None) -> None:
    """Create a key and print it (once: only its hash is kept)."""
    # lazy: vggeo_server.auth loads FastAPI (server extra); keeps vggeo --help fast
    from vggeo_server.auth.keys import create_key

    until = _expiry(expires) if expires else None
    key, entry = create_key(path, name=name, scopes=list(scopes), pepper=_pepper(), expires=until)
    click.echo(
        f"vggeo: key {entry.id} ({name}: {', '.join(sorted(entry.scopes))}) added to "
        f"{path}; it is shown once, here:",
        err=True,
    )
    click.echo(key)


def _expiry(text: str) -> datetime:
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as err:
        raise SettingsError("not an ISO 8601 date or time", field="--expires", value=text) from err
    t = t if t.tzinfo else t.replace(tzinfo=UTC)
    if t <= datetime.now(UTC):
        raise SettingsError("the expiry is in the past", field="--expires", value=text)
    return t


@keys.command("list")
@_FILE
@click.option("--json", "as_json", is_flag=True, help="One JSON object per key.")
def list_(path: Path, as_json: bool) -> None:
    """List the keys: id, name, scopes, creation and expiry (never a key or its hash)."""
    # lazy: vggeo_server.auth loads FastAPI (server extra); keeps vggeo --help fast
    from vggeo_server.auth.keys import read_keys_file

    entries, _ = read_keys_file(path)
    for e in entries.values():
        row = {
            "id": e.id,
            "name": e.name,
            "scopes": sorted(e.scopes),
            "created": e.created,
            "expires": e.as_json()["expires"],
            "expired": e.expired(),
        }
        if as_json:
            click.echo(json.dumps(row, ensure_ascii=False))
        else:
            click.echo(
                "\t".join(
                    [e.id, e.name, ",".join(row["scopes"]), e.created, row["expires"] or "never"]
                )
            )


@keys.command("revoke")
@_FILE
@click.argument("key_id")
def revoke(path: Path, key_id: str) -> None:
    """Remove the key KEY_ID (running servers stop taking it within a second)."""
    # lazy: vggeo_server.auth loads FastAPI (server extra); keeps vggeo --help fast
    from vggeo_server.auth.keys import revoke_key

    entry = revoke_key(path, key_id)
    click.echo(f"vggeo: key {entry.id} ({entry.name}) revoked", err=True)
