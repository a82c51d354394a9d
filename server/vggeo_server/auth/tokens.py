"""JWT bearer tokens checked against a JWKS (a file or an http(s) URL), with PyJWT.

Checks, in order: the token's header names an algorithm of the allow-list (asymmetric only:
``none`` and the HMAC algorithms are refused whatever the settings say, since an HMAC "key" in
a public JWKS would let anyone sign), its ``kid`` names a key of the JWKS (a token without
``kid`` is taken only when the JWKS holds one key), the key's own ``alg`` (when it has one)
agrees, then the signature, ``exp`` (required), ``nbf``, ``iat``, ``iss`` and ``aud`` (both
required and compared with the settings), with a small leeway for clock skew.

The JWKS is cached. It is fetched again when its cache time is up, and at once when a token
names an unknown ``kid`` (the issuer rotated its keys) — but not more often than every
``min_refresh`` seconds, so tokens with made-up ``kid`` values cannot make us hammer the
issuer. When a fetch fails, the keys we have keep working and the failure is logged.

Verified tokens are remembered (by digest, bounded, never past their ``exp`` and at most a
minute), so a map page's hundreds of tile requests cost one signature check.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import jwt

from vggeo.errors import SettingsError

__all__ = ["JWKS", "TokenVerifier", "InvalidToken", "ALLOWED_ALGORITHMS"]

log = logging.getLogger(__name__)

#: The algorithms a JWKS of public keys can verify; nothing else is ever accepted.
ALLOWED_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)
MAX_JWKS_BYTES = 1 << 20


class InvalidToken(Exception):
    """A token that does not verify (the message says why, without the token)."""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_jwks_source(source: str) -> None:
    """Refuse a JWKS source that is neither a file nor an https URL (http only on loopback)."""
    if "://" not in source:
        return
    parts = urlsplit(source)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname and _is_loopback(parts.hostname):
        return
    raise SettingsError(f"JWKS URL must be https:// (http:// only on loopback): {source!r}")


class JWKS:
    """A cached JSON Web Key Set from a file or URL.

    Parameters
    ----------
    source
        A file path or an ``https://`` URL.
    ttl
        Seconds a fetched set is used before it is fetched again.
    min_refresh
        Least seconds between two fetches caused by unknown ``kid`` values.
    timeout
        Seconds a fetch may take.
    """

    def __init__(
        self, source: str, *, ttl: float = 300.0, min_refresh: float = 30.0, timeout: float = 5.0
    ) -> None:
        check_jwks_source(source)
        self.source = source
        self.ttl = ttl
        self.min_refresh = min_refresh
        self.timeout = timeout
        self._keys: dict[str | None, tuple[jwt.PyJWK, str | None]] = {}
        self._fetched = float("-inf")
        self._lock = threading.Lock()
        self.fetches = 0
        self.last_error: str | None = None

    @property
    def loaded(self) -> bool:
        return bool(self._keys)

    def _read(self) -> dict:
        if "://" not in self.source:
            data = Path(self.source).read_bytes()[: MAX_JWKS_BYTES + 1]
        else:
            with httpx.Client(timeout=self.timeout, follow_redirects=False) as client:
                with client.stream("GET", self.source, headers={"Accept": "application/json"}) as r:
                    r.raise_for_status()
                    data = b""
                    for chunk in r.iter_bytes():
                        data += chunk
                        if len(data) > MAX_JWKS_BYTES:
                            break
        if len(data) > MAX_JWKS_BYTES:
            raise ValueError(f"JWKS larger than {MAX_JWKS_BYTES} bytes")
        return json.loads(data)

    def refresh(self) -> bool:
        """Fetch the set now; True when it was read (the old keys stay on failure)."""
        with self._lock:
            self._fetched = time.monotonic()
            self.fetches += 1
            try:
                keys = self._parse(self._read())
            except Exception as err:  # noqa: BLE001 - any failure keeps the old keys
                self.last_error = f"{type(err).__name__}: {err}"[:300]
                log.warning("JWKS %s not loaded: %s", self.source, self.last_error)
                return False
            self._keys = keys
            self.last_error = None
            return True

    @staticmethod
    def _parse(doc: object) -> dict[str | None, tuple[jwt.PyJWK, str | None]]:
        """kid → (key, the ``alg`` the JWK declares) of the signing keys of a JWKS document."""
        if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
            raise ValueError("not a JWKS (no 'keys' list)")
        keys = {}
        for raw in doc["keys"]:
            if not isinstance(raw, dict) or raw.get("use") not in (None, "sig"):
                continue
            try:
                key = jwt.PyJWK.from_dict(raw)
            except jwt.PyJWTError as err:  # a key type we cannot use: the others still work
                log.warning("JWKS key %r skipped: %s", raw.get("kid"), err)
                continue
            keys[raw.get("kid")] = (key, raw.get("alg"))
        if not keys:
            raise ValueError("the JWKS holds no usable signing key")
        return keys

    def key(self, kid: str | None) -> tuple[jwt.PyJWK, str | None]:
        """The key with ``kid`` and the ``alg`` it declares (fetching the set again when
        allowed); :class:`InvalidToken` when there is none."""
        now = time.monotonic()
        if now - self._fetched > self.ttl:
            self.refresh()
        found = self._lookup(kid)
        if found is None and time.monotonic() - self._fetched >= self.min_refresh:
            self.refresh()
            found = self._lookup(kid)
        if found is None:
            raise InvalidToken("the token's signing key (kid) is not in the JWKS")
        return found

    def _lookup(self, kid: str | None) -> tuple[jwt.PyJWK, str | None] | None:
        keys = self._keys
        if kid is None:
            return next(iter(keys.values())) if len(keys) == 1 else None
        return keys.get(kid)


@dataclass(frozen=True)
class VerifiedToken:
    scopes: frozenset[str]
    principal: str
    expires: float  # epoch seconds


class TokenVerifier:
    """Verifies bearer tokens (see the module docstring).

    Parameters
    ----------
    jwks
        The key set.
    issuer, audience
        Required values of ``iss`` and ``aud``.
    algorithms
        Allow-list (a subset of :data:`ALLOWED_ALGORITHMS`).
    leeway
        Seconds of clock skew tolerated on ``exp``, ``nbf`` and ``iat``.
    scope_claim
        Claim holding the scopes: a space-separated string (OAuth ``scope``) or a list (``scp``).
    scope_prefix
        Prefix the issuer puts before vggeo's scope names (e.g. ``vggeo:``), removed.
    """

    def __init__(
        self,
        jwks: JWKS,
        *,
        issuer: str,
        audience: str,
        algorithms: list[str],
        leeway: float = 30.0,
        scope_claim: str = "scope",
        scope_prefix: str = "",
        cache_size: int = 10_000,
    ) -> None:
        bad = sorted(set(algorithms) - set(ALLOWED_ALGORITHMS))
        if bad or not algorithms:
            raise SettingsError(
                f"JWT algorithm {bad[0] if bad else '(none)'!r} not allowed; use "
                f"some of {', '.join(ALLOWED_ALGORITHMS)}"
            )
        self.jwks = jwks
        self.issuer = issuer
        self.audience = audience
        self.algorithms = list(algorithms)
        self.leeway = leeway
        self.scope_claim = scope_claim
        self.scope_prefix = scope_prefix
        self.cache_size = cache_size
        self._cache: OrderedDict[bytes, VerifiedToken] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _digest(token: str) -> bytes:
        return hashlib.sha256(token.encode("utf-8", "replace")).digest()

    def cached(self, token: str) -> VerifiedToken | None:
        """A token verified in the last minute and not expired since, else ``None``."""
        digest = self._digest(token)
        with self._lock:
            hit = self._cache.get(digest)
        if hit is None:
            return None
        if time.time() >= hit.expires:
            with self._lock:
                self._cache.pop(digest, None)
            return None
        return hit

    def verify(self, token: str) -> VerifiedToken:
        """Verify a token (may fetch the JWKS: call off the event loop)."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as err:
            raise InvalidToken("malformed token") from err
        alg = header.get("alg")
        if alg not in self.algorithms:
            raise InvalidToken(f"algorithm {str(alg)[:20]!r} not accepted")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise InvalidToken("malformed kid")
        jwk, declared = self.jwks.key(kid)
        if declared not in (None, alg):
            raise InvalidToken("the token's algorithm is not its key's")
        try:
            claims = jwt.decode(
                token,
                jwk.key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as err:
            raise InvalidToken("the token has expired") from err
        except jwt.ImmatureSignatureError as err:
            raise InvalidToken("the token is not valid yet (nbf/iat)") from err
        except jwt.InvalidAudienceError as err:
            raise InvalidToken("the token is for another audience") from err
        except jwt.InvalidIssuerError as err:
            raise InvalidToken("the token is from another issuer") from err
        except jwt.MissingRequiredClaimError as err:
            raise InvalidToken(f"the token lacks the {err.claim!r} claim") from err
        except jwt.InvalidSignatureError as err:
            raise InvalidToken("the token's signature does not verify") from err
        except (jwt.PyJWTError, ValueError, TypeError) as err:
            raise InvalidToken("invalid token") from err
        verified = VerifiedToken(
            self._scopes(claims), self._principal(claims), float(claims["exp"])
        )
        self._remember(token, verified)
        return verified

    def _scopes(self, claims: dict) -> frozenset[str]:
        raw = claims.get(self.scope_claim, claims.get("scp", ""))
        items = raw.split() if isinstance(raw, str) else raw if isinstance(raw, list) else []
        out = set()
        for s in items:
            if isinstance(s, str) and s.startswith(self.scope_prefix):
                out.add(s[len(self.scope_prefix) :])
        return frozenset(out)

    @staticmethod
    def _principal(claims: dict) -> str:
        # The subject may be an e-mail address: the log gets a digest of it, not the address.
        who = f"{claims.get('iss')}\0{claims.get('sub')}".encode("utf-8", "replace")
        return "jwt:" + hashlib.sha256(who).hexdigest()[:12]

    def _remember(self, token: str, verified: VerifiedToken) -> None:
        entry = VerifiedToken(
            verified.scopes,
            verified.principal,
            min(verified.expires + self.leeway, time.time() + 60),
        )
        with self._lock:
            self._cache[self._digest(token)] = entry
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
