"""A real HTTP server speaking Valueguard's registry protocol, with faults on request.

Runs in a thread on 127.0.0.1 (``ThreadingHTTPServer`` from the standard library). It keeps a
list of residences, hands out access/refresh tokens for a password grant, pages with
``offset``/``limit``, filters on a few criteria (``address`` as LIKE, as the real API), and
can be told to misbehave:

* ``drop``: offsets whose next N requests get the connection closed without a response
* ``errors500``: offsets whose next N requests get a 500
* ``slow``: offsets whose next N requests sleep ``slow_seconds`` before answering
* ``throttle``: offsets whose next N requests get 429 with ``Retry-After``
* ``expire_every``: access tokens die after this many registry requests (→ 401)
* ``insert_after_pages``: after this many served pages, new residences appear at the front
* ``malformed``: offsets whose next N requests get a 200 with a truncated JSON body
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class RegistryState:
    def __init__(self, rows: list[dict], *, username: str, password: str) -> None:
        self.rows = list(rows)
        self.username, self.password = username, password
        self.lock = threading.Lock()
        self.access: dict[str, int] = {}  # token → registry requests served with it
        self.refresh: set[str] = set()
        self.drop: Counter = Counter()
        self.errors500: Counter = Counter()
        self.slow: Counter = Counter()
        self.slow_seconds = 0.0
        self.throttle: Counter = Counter()
        self.retry_after = "1"
        self.malformed: Counter = Counter()
        self.expire_every: int | None = None
        self.insert_after_pages: int | None = None
        self.insert_rows: list[dict] = []
        self.pages_served = 0
        self.log: list[tuple[str, dict]] = []  # (path, params without secrets)
        self.token_grants: list[str] = []
        self.requests_seen: list[str] = []  # raw request lines (for leak checks)


def _take(counter: Counter, key) -> bool:
    if counter.get(key, 0) > 0:
        counter[key] -= 1
        return True
    return False


class Handler(BaseHTTPRequestHandler):
    state: RegistryState  # set on the subclass
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def _send(
        self, code: int, body: bytes | str, *, ctype="application/json", headers=None
    ) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        st = self.state
        url = urlparse(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        form = parse_qs(self.rfile.read(length).decode()) if length else {}
        params = {k: v[0] for k, v in {**parse_qs(url.query), **form}.items()}
        st.requests_seen.append(self.requestline)
        if url.path != "/oauth/token":
            return self._send(404, "not found", ctype="text/plain")
        grant = params.get("grant_type")
        with st.lock:
            st.token_grants.append(grant or "")
            if grant == "password":
                if params.get("username") != st.username or params.get("password") != st.password:
                    return self._send(401, "bad credentials", ctype="text/plain")
            elif grant == "refresh_token":
                if params.get("refresh_token") not in st.refresh:
                    return self._send(400, "invalid refresh token", ctype="text/plain")
                st.refresh.discard(params["refresh_token"])
            else:
                return self._send(400, "unsupported grant_type", ctype="text/plain")
            access, refresh = secrets.token_hex(16), secrets.token_hex(16)
            st.access[access] = 0
            st.refresh.add(refresh)
        self._send(
            200,
            json.dumps({"access_token": access, "refresh_token": refresh, "token_type": "bearer"}),
        )

    def do_GET(self) -> None:  # noqa: N802
        st = self.state
        url = urlparse(self.path)
        params = {k: v[0] for k, v in parse_qs(url.query).items()}
        st.requests_seen.append(self.requestline)
        if not url.path.startswith("/v1/residential/registry"):
            return self._send(404, "not found", ctype="text/plain")
        token = params.pop("access_token", None)
        with st.lock:
            if token not in st.access:
                return self._send(401, "invalid or expired token", ctype="text/plain")
            st.access[token] += 1
            if st.expire_every and st.access[token] > st.expire_every:
                del st.access[token]
                return self._send(401, "token expired", ctype="text/plain")
        try:
            offset, limit = int(params.pop("offset", 0)), int(params.pop("limit", 100))
        except ValueError:
            return self._send(400, "offset and limit must be integers", ctype="text/plain")
        st.log.append((url.path, {"offset": offset, "limit": limit, **params}))
        if _take(st.drop, offset):
            # Close the socket without any response: the client sees a dropped connection.
            self.close_connection = True
            self.connection.shutdown(2)
            return None
        if _take(st.errors500, offset):
            return self._send(500, "internal error", ctype="text/plain")
        if _take(st.throttle, offset):
            return self._send(
                429, "slow down", ctype="text/plain", headers={"Retry-After": st.retry_after}
            )
        if _take(st.slow, offset):
            time.sleep(st.slow_seconds)
        with st.lock:
            rows = [r for r in st.rows if _matches(r, params)]
            page = rows[offset : offset + limit] if limit > 0 else []
            body = {
                "residences": page,
                "meta_data": {
                    "offset": offset,
                    "response_rows": len(page),
                    "total_nr_records": len(rows),
                },
            }
            if limit > 0:
                st.pages_served += 1
                if st.insert_after_pages and st.pages_served == st.insert_after_pages:
                    st.rows[0:0] = st.insert_rows  # new rows at the front: everything shifts
        text = json.dumps(body)
        if _take(st.malformed, offset):
            text = text[: len(text) // 2]
        self._send(200, text)


def _matches(row: dict, params: dict) -> bool:
    for k, v in params.items():
        if k.endswith("_min"):
            base = k[:-4]
            if base == "updated_at":
                if str(row.get("updated_at") or "") < v:
                    return False
            elif row.get(base) is None or float(row[base]) < float(v):
                return False
        elif k.endswith("_max"):
            if row.get(k[:-4]) is None or float(row[k[:-4]]) > float(v):
                return False
        elif k == "address":
            # Seed 000: 'NOTE this is treated as a "like", so 'Torgatan' will return both
            # Torgatan and Storgatan'.
            if v.lower() not in str(row.get("address") or "").lower():
                return False
        elif k in row and str(row[k]) != v:
            return False
    return True


class RegistryServer:
    """Start with ``with RegistryServer(rows, ...) as srv:``; ``srv.url`` is the base URL."""

    def __init__(self, rows: list[dict], *, username="tester", password="s3cret-pw") -> None:
        self.state = RegistryState(rows, username=username, password=password)
        handler = type("BoundHandler", (Handler,), {"state": self.state})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> RegistryServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
