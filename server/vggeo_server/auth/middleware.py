"""Authentication as ASGI middleware: credentials in, an :class:`Access` on the request out.

Credentials are taken from ``Authorization: Bearer <token or key>``, ``X-API-Key: <key>`` or,
when allowed, ``?api_key=<key>`` (removed from the query string before anything else sees it,
so it never reaches links the server writes, the tile cache or the routes). One method per
request (RFC 6750 §2). API keys start with ``vgk_``; any other bearer value is a JWT.

Answers (RFC 6750 §3, every one with ``WWW-Authenticate: Bearer realm="…"``):

* credentials in a form we do not take → **400** ``error="invalid_request"``;
* a key or token that does not verify (unknown, revoked, expired, wrong issuer …) → **401**
  ``error="invalid_token"``, on every path but the probes (so a client notices at once);
* no credentials where some are needed → **401** without an error code;
* valid credentials without the scope needed → **403** ``error="insufficient_scope"`` and the
  scope (raised by the routes, see :mod:`vggeo_server.auth.views`).

Responses then vary on the credentials (``Vary: Authorization, X-API-Key``) and, when the request
carried any, are ``Cache-Control: private``: a shared cache must never hand one caller's tile to
another. Neither keys nor tokens are ever logged.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vggeo_server.auth.keys import KeyStore, looks_like_key
from vggeo_server.auth.policy import (
    FULL_ACCESS,
    Access,
    AccessDenied,
    BadCredentials,
    Unauthenticated,
)
from vggeo_server.auth.settings import AuthSettings
from vggeo_server.auth.tokens import JWKS, InvalidToken, TokenVerifier

__all__ = [
    "Authenticator",
    "AuthMiddleware",
    "get_access",
    "install_handlers",
    "document_security",
    "challenge",
    "QUERY_KEY",
]

QUERY_KEY = "api_key"
#: Paths answered without looking at credentials: probes must not depend on a key or the IdP.
PROBES = frozenset({"/healthz", "/readyz"})
_TOKEN68 = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")


@dataclass(frozen=True)
class Credentials:
    kind: str  # "key" or "jwt"
    value: str


class Authenticator:
    """Turns credentials into an :class:`Access` (built once per app from the settings)."""

    def __init__(self, settings: AuthSettings) -> None:
        self.settings = settings
        self.public = frozenset(settings.public_scopes)
        self.anonymous = Access(self.public, enforced=True)
        self.keys = (
            KeyStore(settings.keys_file, pepper=settings.pepper) if settings.keys_file else None
        )
        self.tokens = None
        if settings.jwks:
            if not settings.issuer or not settings.audience:  # AuthSettings refuses this
                raise ValueError("a JWKS needs `issuer` and `audience`")
            jwks = JWKS(
                settings.jwks,
                ttl=settings.jwks_cache_seconds,
                min_refresh=settings.jwks_min_refresh_seconds,
            )
            self.tokens = TokenVerifier(
                jwks,
                issuer=settings.issuer,
                audience=settings.audience,
                algorithms=settings.algorithms,
                leeway=settings.leeway,
                scope_claim=settings.scope_claim,
                scope_prefix=settings.scope_prefix,
            )

    def start(self) -> None:
        """Load the JWKS (a failure is logged and reported by /readyz, not fatal)."""
        if self.tokens is not None:
            self.tokens.jwks.refresh()

    def readiness(self) -> str | None:
        """Why tokens cannot be verified now, or ``None``."""
        if self.tokens is not None and not self.tokens.jwks.loaded:
            return f"JWKS not loaded ({self.tokens.jwks.last_error or 'not fetched yet'})"
        return None

    # --- credentials -----------------------------------------------------------------------------

    def extract(self, scope: Scope) -> tuple[Credentials | None, bytes | None]:
        """The request's credentials and, when a key came in the query, the query string
        without it. Raises :class:`BadCredentials` for a form we do not take."""
        found: list[tuple[str, str]] = []
        for name, value in scope["headers"]:
            if name == b"authorization":
                found.append(("authorization", value.decode("latin-1")))
            elif name == b"x-api-key":
                found.append(("x-api-key", value.decode("latin-1")))
        query = None
        raw_query = scope.get("query_string") or b""
        if raw_query:  # parsed, not searched: ``api%5Fkey`` is an api_key too
            pairs = parse_qsl(raw_query.decode("latin-1"), keep_blank_values=True)
            if any(k == "access_token" for k, _ in pairs):
                raise BadCredentials(
                    "send tokens in the Authorization header, not the query",
                    error="invalid_request",
                )
            keys = [v for k, v in pairs if k == QUERY_KEY]
            if keys:
                if not self.settings.query_key:
                    raise BadCredentials(
                        f"`{QUERY_KEY}` in the query string is not accepted "
                        "here; send the key as the X-API-Key header",
                        error="invalid_request",
                    )
                found += [("query", v) for v in keys]
                query = urlencode([(k, v) for k, v in pairs if k != QUERY_KEY]).encode("latin-1")
        if not found:
            return None, query
        if len(found) > 1:
            raise BadCredentials(
                "credentials sent more than once (use one of Authorization, X-API-Key, api_key)",
                error="invalid_request",
            )
        how, value = found[0]
        value = value.strip()
        if how == "authorization":
            scheme, _, value = value.partition(" ")
            value = value.strip()
            if scheme.lower() != "bearer" or not value or not _TOKEN68.match(value):
                raise BadCredentials(
                    "the Authorization header must be `Bearer <token or key>`",
                    error="invalid_request",
                )
        if not value:
            raise BadCredentials("empty API key", error="invalid_request")
        if looks_like_key(value) or how != "authorization":
            return Credentials("key", value), query
        return Credentials("jwt", value), query

    def cached(self, creds: Credentials) -> Access | None:
        """The access of credentials checked without blocking (keys; tokens seen lately)."""
        if creds.kind == "key":
            return self._key_access(creds.value)
        if self.tokens is None:
            raise self._invalid("bearer tokens are not accepted here")
        verified = self.tokens.cached(creds.value)
        return None if verified is None else self._access(verified.scopes, verified.principal)

    def authenticate(self, creds: Credentials) -> Access:
        """The access of credentials (may fetch the JWKS: run off the event loop)."""
        if creds.kind == "key":
            return self._key_access(creds.value)
        if self.tokens is None:
            raise self._invalid("bearer tokens are not accepted here")
        try:
            verified = self.tokens.verify(creds.value)
        except InvalidToken as err:
            raise self._invalid(str(err)) from None
        return self._access(verified.scopes, verified.principal)

    def _key_access(self, key: str) -> Access:
        if self.keys is None:
            raise self._invalid("API keys are not accepted here")
        entry = self.keys.verify(key)
        if entry is None:
            raise self._invalid("unknown, revoked or expired API key")
        return self._access(entry.scopes, f"key:{entry.id}")

    def _access(self, scopes: frozenset[str], principal: str) -> Access:
        return Access(scopes | self.public, enforced=True, authenticated=True, principal=principal)

    @staticmethod
    def _invalid(why: str) -> Unauthenticated:
        return Unauthenticated(
            f"invalid credentials: {why}", error="invalid_token", description=why
        )


# --- answers ---------------------------------------------------------------------------------


def _quoted(text: str) -> str:
    # RFC 6750 §3: error_description is printable ASCII without '"' and '\'.
    return "".join(c for c in text if 0x20 <= ord(c) < 0x7F and c not in '"\\')[:200]


def challenge(exc: AccessDenied, realm: str) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and JSON body of a refusal."""
    params = [f'realm="{_quoted(realm)}"']
    if exc.error:
        params.append(f'error="{exc.error}"')
    if exc.description:
        params.append(f'error_description="{_quoted(exc.description)}"')
    if exc.scope:
        params.append(f'scope="{_quoted(exc.scope)}"')
    headers = {"WWW-Authenticate": "Bearer " + ", ".join(params), "Cache-Control": "no-store"}
    body = json.dumps({"detail": exc.detail, "type": type(exc).__name__}).encode()
    return exc.status, headers, body


def install_handlers(app: FastAPI, realm: str) -> None:
    """Answer :class:`AccessDenied` raised by routes and dependencies (401/403 with a challenge)."""

    async def handler(request: Request, exc: Exception) -> JSONResponse:
        if not isinstance(exc, AccessDenied):  # registered for AccessDenied alone
            raise exc
        status, headers, body = challenge(exc, realm)
        return JSONResponse(json.loads(body), status, headers=headers)

    app.add_exception_handler(AccessDenied, handler)


async def get_access(request: Request) -> Access:
    """The caller's access (everything when access control is off)."""
    return request.scope.get("state", {}).get("access", FULL_ACCESS)


def _merge_vary(headers: list[tuple[bytes, bytes]], extra: bytes) -> list[tuple[bytes, bytes]]:
    present = [v for k, v in headers if k.lower() == b"vary"]
    names = {n.strip().lower() for v in present for n in v.split(b",") if n.strip()}
    if b"*" in names:
        return headers
    add = [n for n in extra.split(b", ") if n.lower() not in names]
    if not add:
        return headers
    if present:
        out = [(k, v) for k, v in headers if k.lower() != b"vary"]
        return out + [(b"vary", b", ".join([*present, *add]))]
    return headers + [(b"vary", b", ".join(add))]


def _private(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    out, seen = [], False
    for k, v in headers:
        if k.lower() == b"cache-control":
            seen = True
            parts = [p.strip() for p in v.split(b",") if p.strip()]
            if b"no-store" not in parts:
                parts = [b"private"] + [
                    p for p in parts if p.lower() not in (b"public", b"private")
                ]
            v = b", ".join(parts)
        out.append((k, v))
    if not seen:
        out.append((b"cache-control", b"private"))
    return out


class AuthMiddleware:
    """ASGI middleware: authenticate, put the :class:`Access` on the request, mark responses."""

    VARY = b"Authorization, X-API-Key"

    def __init__(self, app: ASGIApp, *, authenticator: Authenticator) -> None:
        self.app = app
        self.auth = authenticator
        self.realm = authenticator.settings.realm

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        if scope["path"] in PROBES:
            state["access"] = self.auth.anonymous
            await self.app(scope, receive, send)
            return
        try:
            creds, query = self.auth.extract(scope)
            if creds is None:
                access = self.auth.anonymous
            else:
                cached = self.auth.cached(creds)
                if cached is None:
                    access = await to_thread.run_sync(self.auth.authenticate, creds)
                else:
                    access = cached
        except AccessDenied as exc:
            await self._refuse(exc, send)
            return
        state["access"] = access
        if query is not None:
            scope = {**scope, "query_string": query}

        async def marked(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = _merge_vary(list(message.get("headers", [])), self.VARY)
                if creds is not None:
                    headers = _private(headers)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, marked)

    async def _refuse(self, exc: AccessDenied, send: Send) -> None:
        status, headers, body = challenge(exc, self.realm)
        raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        raw += [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"vary", self.VARY),
        ]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body})


_ERROR_REF = {"$ref": "#/components/schemas/Error"}


def document_security(spec: dict, settings: AuthSettings) -> dict:
    """Add the security schemes and the 400/401/403 answers access control gives to the
    OpenAPI document (every path but the probes)."""
    schemes = {
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "A JWT from the configured issuer, or an API key (`vgk_…`).",
        },
        "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    }
    if settings.query_key:
        schemes["apiKeyQuery"] = {"type": "apiKey", "in": "query", "name": QUERY_KEY}
    spec.setdefault("components", {})["securitySchemes"] = schemes
    # {} first: credentials are optional where the public scopes suffice.
    spec["security"] = [{}, *({name: []} for name in schemes)]
    answers = {
        "400": "Credentials in a form not taken (RFC 6750 `invalid_request`), or an invalid "
        "parameter.",
        "401": "Credentials needed, or not valid (`WWW-Authenticate` says which).",
        "403": "The credentials lack a scope this needs (`WWW-Authenticate` names it).",
    }
    for path, item in spec.get("paths", {}).items():
        if path in PROBES:
            item.get("get", {})["security"] = []
            continue
        for method, op in item.items():
            if method not in ("get", "head"):
                continue
            responses = op.setdefault("responses", {})
            for code, text in answers.items():
                if code not in responses:
                    responses[code] = {
                        "description": text,
                        "content": {"application/json": {"schema": _ERROR_REF}},
                    }
    return spec
