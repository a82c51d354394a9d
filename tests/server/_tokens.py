"""JWTs and JWKS made in the tests, by RFC 7515/7517/7518 with ``cryptography`` alone.

The server verifies tokens with PyJWT; the tests sign them without it (base64url of the header
and claims, RS256 = RSASSA-PKCS1-v1_5 with SHA-256, ES256 = ECDSA P-256 with the signature as
the 64-byte r ‖ s), so a token the server accepts is one the standard defines, not one PyJWT
agrees with itself about.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

ISSUER = "https://idp.example/realms/vggeo"
AUDIENCE = "vggeo-api"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _uint(n: int, size: int | None = None) -> str:
    size = size or (n.bit_length() + 7) // 8
    return b64url(n.to_bytes(size, "big"))


@dataclass
class SigningKey:
    kid: str
    alg: str
    private: object

    @classmethod
    def rsa(cls, kid: str) -> SigningKey:
        return cls(kid, "RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @classmethod
    def ec(cls, kid: str) -> SigningKey:
        return cls(kid, "ES256", ec.generate_private_key(ec.SECP256R1()))

    def jwk(self, *, with_alg: bool = True) -> dict:
        pub = self.private.public_key().public_numbers()
        if self.alg == "RS256":
            out = {"kty": "RSA", "n": _uint(pub.n), "e": _uint(pub.e)}
        else:
            out = {"kty": "EC", "crv": "P-256", "x": _uint(pub.x, 32), "y": _uint(pub.y, 32)}
        out |= {"kid": self.kid, "use": "sig"}
        if with_alg:
            out["alg"] = self.alg
        return out

    def sign(self, claims: dict, *, header: dict | None = None) -> str:
        head = {"alg": self.alg, "typ": "JWT", "kid": self.kid, **(header or {})}
        head = {k: v for k, v in head.items() if v is not None}
        signing_input = (
            b64url(json.dumps(head).encode()) + "." + b64url(json.dumps(claims).encode())
        ).encode()
        if self.alg == "RS256":
            sig = self.private.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        else:
            r, s = decode_dss_signature(self.private.sign(signing_input, ec.ECDSA(hashes.SHA256())))
            sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return signing_input.decode() + "." + b64url(sig)


def jwks(*keys: SigningKey) -> dict:
    return {"keys": [k.jwk() for k in keys]}


def claims(scope: str = "residences", *, lifetime: float = 300, **extra) -> dict:
    now = int(time.time())
    out = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "analyst@bank.example",
        "iat": now,
        "nbf": now,
        "exp": now + int(lifetime),
        "scope": scope,
    }
    out.update(extra)
    return {k: v for k, v in out.items() if v is not None}


def unsigned(claims_: dict) -> str:
    """An ``alg: none`` token (RFC 7519 §6): must never be accepted."""
    head = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{head}.{b64url(json.dumps(claims_).encode())}."


def hs256(claims_: dict, secret: bytes, kid: str) -> str:
    """An HMAC token keyed with ``secret`` (e.g. a public key's bytes: the algorithm-confusion
    attack)."""
    import hmac
    from hashlib import sha256

    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    body = b64url(json.dumps(claims_).encode())
    sig = hmac.new(secret, f"{head}.{body}".encode(), sha256).digest()
    return f"{head}.{body}.{b64url(sig)}"
