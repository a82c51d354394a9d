"""API keys: created once, shown once, stored only as salted (and optionally peppered) hashes.

A key reads ``vgk_<id>_<secret>``: the id (10 base-32 characters, not secret) picks the entry of
the keys file, the secret (256 random bits) is checked against the entry's
``HMAC-SHA-256(pepper, salt ‖ secret)`` in constant time. The keys file holds, per key, its id,
a name, its scopes, the salt and that digest, creation and optional expiry dates — never the key.

Why not a slow password hash (scrypt, Argon2): those protect secrets people choose, which can be
guessed. A 256-bit random secret cannot be; a slow hash would only cost every tile request its
milliseconds. The pepper (``VGGEO_AUTH_KEY_PEPPER``, kept out of the keys file) makes a copied
keys file useless on its own; the file records a check value of the pepper so that a server
started with the wrong one refuses to start instead of refusing every key.

The keys file is JSON (``vggeo keys create|list|revoke`` write it, atomically, mode 0600)::

    {"vggeo_api_keys": 1, "pepper_check": null,
     "keys": [{"id": "k7d2q…", "name": "analytics", "scopes": ["residences"],
               "salt": "…", "hash": "…", "created": "2025-01-06T10:00:00Z", "expires": null}]}

The server re-reads the file when it changes (checked at most once a second), so a revoked key
stops working without a restart.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from vggeo.atomic import atomic_path
from vggeo.errors import SettingsError
from vggeo_server.auth.policy import SCOPES

__all__ = ["ApiKey", "KeyStore", "create_key", "revoke_key", "read_keys_file", "KEY_PREFIX"]

log = logging.getLogger(__name__)

KEY_PREFIX = "vgk_"
FORMAT_VERSION = 1
_KEY = re.compile(r"^vgk_([a-z2-7]{10})_([A-Za-z0-9_-]{43})$", re.ASCII)
_PEPPER_CHECK_MSG = b"vggeo api key pepper check"


@dataclass(frozen=True)
class ApiKey:
    """One entry of the keys file (no secret in it)."""

    id: str
    name: str
    scopes: frozenset[str]
    salt: bytes
    digest: bytes
    created: str
    expires: datetime | None = None

    def expired(self, now: datetime | None = None) -> bool:
        return self.expires is not None and (now or datetime.now(UTC)) >= self.expires

    def as_json(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "scopes": sorted(self.scopes),
            "salt": self.salt.hex(),
            "hash": self.digest.hex(),
            "created": self.created,
            "expires": None if self.expires is None else _iso(self.expires),
        }


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _digest(secret: str, salt: bytes, pepper: bytes) -> bytes:
    return hmac.new(pepper, salt + secret.encode("ascii"), hashlib.sha256).digest()


def pepper_check(pepper: bytes) -> str | None:
    """The value recorded in the keys file to recognise the pepper (``None``: no pepper)."""
    if not pepper:
        return None
    return hmac.new(pepper, _PEPPER_CHECK_MSG, hashlib.sha256).hexdigest()[:16]


def parse_key(text: str) -> tuple[str, str] | None:
    """(id, secret) of a well-formed key, else ``None``."""
    m = _KEY.match(text)
    return (m.group(1), m.group(2)) if m else None


def looks_like_key(text: str) -> bool:
    return text.startswith(KEY_PREFIX)


# --- the file --------------------------------------------------------------------------------


def _entry(raw: object, path: Path, n: int) -> ApiKey:
    where = f"{path}: key #{n + 1}"
    if not isinstance(raw, dict):
        raise SettingsError(f"{where}: not an object")
    try:
        scopes = frozenset(raw["scopes"])
        unknown = sorted(scopes - set(SCOPES))
        if unknown:
            raise SettingsError(
                f"{where}: unknown scope {unknown[0]!r}; known: {', '.join(SCOPES)}"
            )
        expires = raw.get("expires")
        entry = ApiKey(
            id=str(raw["id"]),
            name=str(raw.get("name", "")),
            scopes=scopes,
            salt=bytes.fromhex(raw["salt"]),
            digest=bytes.fromhex(raw["hash"]),
            created=str(raw.get("created", "")),
            expires=None if expires is None else _parse_time(expires),
        )
    except (KeyError, TypeError, ValueError) as err:
        if isinstance(err, SettingsError):
            raise
        raise SettingsError(f"{where}: missing or malformed field ({err})") from err
    if len(entry.digest) != 32 or not re.fullmatch(r"[a-z2-7]{10}", entry.id):
        raise SettingsError(f"{where}: malformed id or hash")
    return entry


def _parse_time(text: str) -> datetime:
    t = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def read_keys_file(path: str | os.PathLike) -> tuple[dict[str, ApiKey], str | None]:
    """The keys of a keys file by id, and its pepper check value.

    Raises
    ------
    SettingsError
        For a file that is not a keys file (naming the file and the entry).
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise SettingsError(
            f"{path}: no such keys file (create one with `vggeo keys create`)"
        ) from err
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SettingsError(f"{path}: not a readable JSON keys file ({err})") from err
    if not isinstance(doc, dict) or doc.get("vggeo_api_keys") != FORMAT_VERSION:
        raise SettingsError(f"{path}: not a vggeo API keys file (format {FORMAT_VERSION})")
    if not isinstance(doc.get("keys"), list):
        raise SettingsError(f"{path}: 'keys' must be a list")
    keys: dict[str, ApiKey] = {}
    for n, raw in enumerate(doc["keys"]):
        entry = _entry(raw, path, n)
        if entry.id in keys:
            raise SettingsError(f"{path}: key id {entry.id!r} twice")
        keys[entry.id] = entry
    return keys, doc.get("pepper_check")


def _write_keys_file(path: Path, keys: dict[str, ApiKey], check: str | None) -> None:
    doc = {
        "vggeo_api_keys": FORMAT_VERSION,
        "pepper_check": check,
        "keys": [k.as_json() for k in keys.values()],
    }
    # 0600 from the first byte: the file holds key hashes, for the server's user only.
    with (
        atomic_path(path, mode=0o600) as tmp,
        open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8") as f,
    ):
        json.dump(doc, f, indent=1)
        f.write("\n")


def _check_pepper(path: Path, recorded: str | None, pepper: bytes) -> None:
    if recorded != pepper_check(pepper):
        if recorded is None:
            raise SettingsError(
                f"{path}: the keys were made without a pepper, but VGGEO_AUTH_KEY_PEPPER is set"
            )
        raise SettingsError(
            f"{path}: the keys were made with a pepper; VGGEO_AUTH_KEY_PEPPER is "
            "missing or not that pepper"
        )


def create_key(
    path: str | os.PathLike,
    *,
    name: str,
    scopes: list[str],
    pepper: bytes = b"",
    expires: datetime | None = None,
) -> tuple[str, ApiKey]:
    """Add a new key to the keys file (created if missing) and return (key, entry).

    The key itself is returned once and stored nowhere.
    """
    path = Path(path)
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise SettingsError(f"unknown scope {unknown[0]!r}; known: {', '.join(SCOPES)}")
    if not scopes:
        raise SettingsError("a key needs at least one scope")
    if path.exists():
        keys, check = read_keys_file(path)
        _check_pepper(path, check, pepper)
    else:
        keys, check = {}, pepper_check(pepper)
    while True:
        kid = base64.b32encode(secrets.token_bytes(10)).decode().lower()[:10]
        if kid not in keys:
            break
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_bytes(16)
    entry = ApiKey(
        kid,
        name,
        frozenset(scopes),
        salt,
        _digest(secret, salt, pepper),
        _iso(datetime.now(UTC)),
        expires,
    )
    keys[kid] = entry
    _write_keys_file(path, keys, check)
    return f"{KEY_PREFIX}{kid}_{secret}", entry


def revoke_key(path: str | os.PathLike, key_id: str) -> ApiKey:
    """Remove a key from the keys file by id; returns the removed entry."""
    path = Path(path)
    keys, check = read_keys_file(path)
    if key_id not in keys:
        raise SettingsError(f"{path}: no key with id {key_id!r}")
    entry = keys.pop(key_id)
    _write_keys_file(path, keys, check)
    return entry


class KeyStore:
    """The keys of a keys file, verified in constant time, re-read when the file changes.

    Parameters
    ----------
    path
        The keys file.
    pepper
        The server-side secret mixed into every digest (``b""``: none).
    recheck
        Seconds between checks of the file for changes.
    """

    def __init__(
        self, path: str | os.PathLike, *, pepper: bytes = b"", recheck: float = 1.0
    ) -> None:
        self.path = Path(path)
        self.pepper = pepper
        self.recheck = recheck
        self._lock = threading.Lock()
        self._keys, check = read_keys_file(self.path)
        _check_pepper(self.path, check, pepper)
        self._signature = self._stat()
        self._checked = time.monotonic()

    def _stat(self) -> tuple | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def _maybe_reload(self) -> None:
        now = time.monotonic()
        if now - self._checked < self.recheck:
            return
        with self._lock:
            if now - self._checked < self.recheck:
                return
            self._checked = now
            signature = self._stat()
            if signature == self._signature:
                return
            try:
                keys, check = read_keys_file(self.path)
                _check_pepper(self.path, check, self.pepper)
            except SettingsError as err:
                # Keep serving the keys we have: a half-edited file must not lock everyone out.
                log.error("keys file not reloaded: %s", err)
                return
            self._keys, self._signature = keys, signature
            log.info("keys file reloaded: %d keys", len(keys))

    def verify(self, key: str) -> ApiKey | None:
        """The entry of a valid, unexpired key, else ``None``."""
        parsed = parse_key(key)
        if parsed is None:
            return None
        self._maybe_reload()
        kid, secret = parsed
        entry = self._keys.get(kid)
        if entry is None:
            # Same work as for a known id, so timing does not tell which ids exist.
            hmac.compare_digest(_digest(secret, b"\0" * 16, self.pepper), b"\0" * 32)
            return None
        if not hmac.compare_digest(_digest(secret, entry.salt, self.pepper), entry.digest):
            return None
        if entry.expired():
            return None
        return entry

    def __len__(self) -> int:
        return len(self._keys)
