"""Access control settings (pydantic-settings, prefix ``VGGEO_AUTH_``).

Access control is **off** unless a keys file or a JWKS is configured: the local sample needs no
setting at all. Once on, every request is answered according to the caller's scopes (see
:mod:`vggeo_server.auth.policy`); callers without credentials get the ``public_scopes``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from vggeo.errors import SettingsError
from vggeo_server.auth.policy import PROVISIONS, SCOPES
from vggeo_server.auth.tokens import ALLOWED_ALGORITHMS, check_jwks_source


class AuthSettings(BaseSettings):
    """Settings of access control (API keys and/or JWT bearer tokens)."""

    model_config = SettingsConfigDict(env_prefix="VGGEO_AUTH_", extra="ignore")

    keys_file: Path | None = Field(
        None,
        description="API keys file (JSON, written by `vggeo keys create`; holds salted "
        "hashes only). Keys are sent as `X-API-Key: <key>` or `Authorization: Bearer <key>`. "
        "Setting it turns access control on. Re-read when it changes.",
    )
    key_pepper: SecretStr | None = Field(
        None,
        description="Secret mixed into every key hash (HMAC key), kept outside the keys "
        "file; `vggeo keys` must be given the same value (env VGGEO_AUTH_KEY_PEPPER).",
    )
    jwks: str | None = Field(
        None,
        description="JWKS of the token issuer: a file path or an https:// URL (http:// "
        "only on loopback). Setting it turns access control on and requires `issuer` and "
        "`audience`.",
    )
    issuer: str | None = Field(None, description="Required `iss` of bearer tokens.")
    audience: str | None = Field(None, description="Required `aud` of bearer tokens.")
    algorithms: list[str] = Field(
        default_factory=lambda: ["RS256", "ES256"],
        description=f"Accepted JWT algorithms (some of {', '.join(ALLOWED_ALGORITHMS)}).",
    )
    leeway: float = Field(
        30.0, ge=0, le=300, description="Seconds of clock skew tolerated on `exp`, `nbf` and `iat`."
    )
    scope_claim: str = Field(
        "scope",
        description="Token claim with the scopes: a space-separated "
        "string, or a list (`scp` is read when it is absent).",
    )
    scope_prefix: str = Field(
        "",
        description="Prefix of vggeo's scopes in tokens (e.g. "
        "`vggeo:`), removed before the names are compared.",
    )
    jwks_cache_seconds: float = Field(
        300.0, ge=1, description="Seconds a fetched JWKS is used before it is fetched again."
    )
    jwks_min_refresh_seconds: float = Field(
        30.0,
        ge=0,
        description="Least seconds between two fetches of the JWKS caused by tokens "
        "naming an unknown key id (the bound on refreshes an attacker can cause).",
    )
    public_scopes: list[str] = Field(
        default_factory=lambda: [PROVISIONS],
        description="Scopes every caller has, with or "
        "without credentials, when access control is on (default: provisions are public; [] "
        "closes everything).",
    )
    query_key: bool = Field(
        False,
        description="Also accept an API key as `?api_key=` (a last resort for clients "
        "that cannot send headers: URLs end up in browser histories and proxy logs; vggeo's own "
        "access log redacts it).",
    )
    realm: str = Field("vggeo", description="Realm named in `WWW-Authenticate`.")

    @property
    def enabled(self) -> bool:
        return self.keys_file is not None or self.jwks is not None

    @property
    def pepper(self) -> bytes:
        return self.key_pepper.get_secret_value().encode() if self.key_pepper else b""

    @field_validator("public_scopes")
    @classmethod
    def _known_scopes(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(SCOPES))
        if unknown:
            raise ValueError(f"unknown scope {unknown[0]!r}; known: {', '.join(SCOPES)}")
        return value

    @field_validator("algorithms")
    @classmethod
    def _asymmetric_only(cls, value: list[str]) -> list[str]:
        bad = sorted(set(value) - set(ALLOWED_ALGORITHMS))
        if bad or not value:
            raise ValueError(
                f"algorithm {bad[0] if bad else '(none)'!r} not allowed; use some "
                f"of {', '.join(ALLOWED_ALGORITHMS)}"
            )
        return value

    @field_validator("realm")
    @classmethod
    def _plain_realm(cls, value: str) -> str:
        if not value or not all(c.isalnum() or c in " -_." for c in value) or not value.isascii():
            raise ValueError("realm must be letters, digits, spaces, '-', '_' or '.'")
        return value

    @model_validator(mode="after")
    def _jwt_complete(self) -> AuthSettings:
        if self.jwks is not None:
            if not self.issuer or not self.audience:
                raise ValueError(
                    "a JWKS needs `issuer` and `audience` (VGGEO_AUTH_ISSUER, "
                    "VGGEO_AUTH_AUDIENCE): tokens of other issuers or services "
                    "must not be accepted"
                )
            try:
                check_jwks_source(self.jwks)
            except SettingsError as err:
                raise ValueError(str(err)) from err
        return self
