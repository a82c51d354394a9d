"""A JWKS served over real HTTP on loopback: fetched at start, cached, fetched again when the
issuer rotates its keys, never more often than the bound however many unknown key ids arrive,
and kept when the issuer is down."""

from __future__ import annotations

import contextlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from _auth_fixtures import make_client
from _tokens import AUDIENCE, ISSUER, SigningKey, claims, jwks


class Issuer:
    """A JWKS endpoint on 127.0.0.1 that counts its requests and can be switched off."""

    def __init__(self, *keys: SigningKey) -> None:
        self.doc = jwks(*keys)
        self.requests = 0
        self.up = True
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                issuer.requests += 1
                if not issuer.up:
                    self.send_response(503)
                    self.end_headers()
                    return
                body = json.dumps(issuer.doc).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@contextlib.contextmanager
def app_on(vg_store, issuer: Issuer, **kw):
    from vggeo_server.auth import AuthSettings

    auth = AuthSettings(_env_file=None, jwks=issuer.url, issuer=ISSUER, audience=AUDIENCE, **kw)
    with make_client(vg_store[0], auth) as c:
        yield c


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_jwks_is_fetched_once_and_reused(vg_store):
    k = SigningKey.ec("ec-a")
    with Issuer(k) as issuer, app_on(vg_store, issuer) as c:
        for i in range(5):
            token = k.sign(claims("residences", jti=str(i)))
            assert c.get("/collections/residences", headers=bearer(token)).status_code == 200
        assert issuer.requests == 1
        assert c.get("/readyz").json()["checks"]["auth"] == "ok"


def test_rotated_keys_are_fetched_but_unknown_kids_cannot_hammer_the_issuer(vg_store):
    old, new = SigningKey.rsa("2025-01"), SigningKey.rsa("2025-02")
    with Issuer(old) as issuer, app_on(vg_store, issuer, jwks_min_refresh_seconds=0.5) as c:
        assert c.get("/collections", headers=bearer(old.sign(claims()))).status_code == 200
        assert issuer.requests == 1
        issuer.doc = jwks(old, new)  # the issuer rotates
        import time

        time.sleep(0.6)
        assert c.get("/collections", headers=bearer(new.sign(claims()))).status_code == 200
        assert issuer.requests == 2
        # a burst of tokens with made-up key ids: at most one more fetch per bound (0.5 s). The
        # keys are made first (RSA key generation is slow on a loaded machine) and the burst is
        # timed, so the test states the bound itself rather than how fast the machine is.
        forged = [
            SigningKey.rsa(f"made-up-{i}") if i < 3 else SigningKey.ec(f"made-up-{i}")
            for i in range(30)
        ]
        tokens = [k.sign(claims()) for k in forged]
        start = time.monotonic()
        for token in tokens:
            r = c.get("/collections", headers=bearer(token))
            assert r.status_code == 401
        elapsed = time.monotonic() - start
        assert issuer.requests <= 3 + int(elapsed // 0.5)
        # the known keys never stopped working
        assert c.get("/collections", headers=bearer(old.sign(claims()))).status_code == 200


def test_an_issuer_that_goes_down_does_not_lock_out_known_keys(vg_store):
    k = SigningKey.rsa("k1")
    with (
        Issuer(k) as issuer,
        app_on(vg_store, issuer, jwks_cache_seconds=1, jwks_min_refresh_seconds=0) as c,
    ):
        assert c.get("/collections", headers=bearer(k.sign(claims()))).status_code == 200
        issuer.up = False
        import time

        time.sleep(1.1)  # the cache time is up: the next token causes a fetch, which fails
        assert c.get("/collections", headers=bearer(k.sign(claims(jti="2")))).status_code == 200
        assert issuer.requests >= 2


def test_readiness_says_when_no_jwks_could_be_loaded(vg_store):
    k = SigningKey.rsa("k1")
    with Issuer(k) as issuer:
        issuer.up = False
        with app_on(vg_store, issuer, jwks_min_refresh_seconds=0) as c:
            r = c.get("/readyz")
            assert r.status_code == 503 and "JWKS" in r.json()["reason"]
            issuer.up = True
            # the first token makes it fetch again; from then on it is ready
            assert c.get("/collections", headers=bearer(k.sign(claims()))).status_code == 200
            assert c.get("/readyz").status_code == 200
