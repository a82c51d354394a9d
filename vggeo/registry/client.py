"""A client for Valueguard's registry API: tokens, paging, retries, resumable bulk fetches.

The protocol (Valueguard's public Python client and wiki; FORMATS.md §1):

* ``POST /oauth/token`` with ``client_id=api&grant_type=password&username=…&password=…`` →
  ``{"access_token", "refresh_token", "expires_in"?}``; refresh with
  ``grant_type=refresh_token&refresh_token=…``. vggeo sends these as a form body (an OAuth
  token endpoint reads form and query parameters alike) so that secrets never appear in a URL.
* ``GET /v1/residential/registry?access_token=…&offset=N&limit=M&<criteria>`` →
  ``{"residences": [...], "meta_data": {"offset", "response_rows", "total_nr_records"}}``;
  ``/markups`` and ``/valuations`` below it page the same way; ``limit=0`` only counts.

Failures are retried a bounded number of times with exponential backoff (timeouts, dropped
connections, 5xx); ``429`` waits as long as ``Retry-After`` says; ``401`` refreshes the token
once (falling back to a new password grant). Credentials come from the environment
(``VGGEO_VALUEGUARD_USERNAME``/``_PASSWORD``, see :class:`ValueguardSettings`) and are never
logged: a filter on the ``httpx``/``httpcore`` loggers redacts tokens and passwords, and error
messages carry redacted URLs only.

:meth:`ValueguardClient.fetch_all` streams pages to a staging folder beside the output (each
page written whole, then recorded in ``state.json``), so an interrupted fetch resumes from the
last complete page. Offset paging over a changing registry can skip or repeat rows when rows
are added or removed mid-fetch; ``fetch_all`` therefore watches ``total_nr_records`` and, if it
changes, fetches the registry again (up to ``max_passes``), keeping only a pass in which the
total held still and every id appeared exactly once.
"""

from __future__ import annotations

import datetime as dt
import difflib
import email.utils
import json
import logging
import os
import random
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from vggeo.errors import ClientError, InputError, ParseError
from vggeo.registry.fields import SEARCH_CRITERIA, SPECIAL_CRITERIA

__all__ = ["ValueguardSettings", "ValueguardClient", "FetchResult", "validate_criteria",
           "ENDPOINTS", "redact"]  # fmt: skip

log = logging.getLogger(__name__)

#: Endpoint name → path.
ENDPOINTS = {
    "registry": "/v1/residential/registry",
    "markups": "/v1/residential/registry/markups",
    "valuations": "/v1/residential/registry/valuations",
}
_SECRET_PARAMS = ("access_token", "refresh_token", "password", "username", "client_secret")
_SECRET_RE = re.compile("((?:" + "|".join(_SECRET_PARAMS) + r")=)[^&\s\"']+", re.IGNORECASE)


class ValueguardSettings(BaseSettings):
    """Connection settings, from ``VGGEO_VALUEGUARD_*`` environment variables.

    Build with ``ValueguardSettings()`` (reads the environment) or pass values explicitly;
    tests use ``ValueguardSettings(_env_file=None, ...)``.
    """

    model_config = SettingsConfigDict(env_prefix="VGGEO_VALUEGUARD_", extra="ignore")

    base_url: str = "https://api.valueguard.se"
    username: SecretStr | None = None
    password: SecretStr | None = None
    client_id: str = "api"
    page_size: int = 20_000
    timeout: float = 120.0
    max_retries: int = 6
    backoff: float = 1.0
    max_backoff: float = 120.0


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` with token/password query values and the given secret strings replaced."""
    out = _SECRET_RE.sub(r"\1***", str(text))
    for s in secrets:
        if s and len(s) >= 3:
            out = out.replace(s, "***")
    return out


class _RedactFilter(logging.Filter):
    """Rewrites records of the HTTP libraries so that no secret reaches any handler."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is not ours to fix
            return True
        record.msg, record.args = redact(msg, tuple(self.secrets)), ()
        return True


_FILTER = _RedactFilter()
for _name in ("httpx", "httpcore", __name__):
    logging.getLogger(_name).addFilter(_FILTER)


# --- criteria -----------------------------------------------------------------------------------


def validate_criteria(criteria: Mapping[str, Any] | None, *, allow_special: bool = False) -> dict[str, str]:
    """Check search criteria against the documented list before any request is made.

    Returns the criteria as query strings. Raises :class:`~vggeo.errors.InputError` naming an
    unknown criterion (with the closest documented names), a value of the wrong kind, or a
    ``_min`` greater than its ``_max``.
    """
    known = dict(SEARCH_CRITERIA)
    if allow_special:
        known.update(SPECIAL_CRITERIA)
    out: dict[str, str] = {}
    for name, value in (criteria or {}).items():
        if name not in known:
            near = difflib.get_close_matches(name, list(known), n=3)
            hint = f"; did you mean {', '.join(near)}?" if near else ""
            special = " (needs special access: allow_special=True)" if name in SPECIAL_CRITERIA else ""
            raise InputError(f"unknown search criterion{special}{hint}", field=name, value=value)
        kind = known[name]
        text = str(value).strip()
        if kind == "int" and not re.fullmatch(r"-?\d+", text):
            raise InputError("search criterion needs a whole number", field=name, value=value)
        if kind == "number":
            try:
                float(text)
            except ValueError:
                raise InputError("search criterion needs a number", field=name, value=value) from None
        if kind == "date":
            try:
                dt.date.fromisoformat(text)
            except ValueError:
                raise InputError("search criterion needs a date YYYY-MM-DD", field=name,
                                 value=value) from None  # fmt: skip
        out[name] = text
    for name in out:
        if name.endswith("_min") and f"{name[:-4]}_max" in out:
            lo, hi = out[name], out[f"{name[:-4]}_max"]
            if float(lo) > float(hi):
                raise InputError(f"{name}={lo} is greater than {name[:-4]}_max={hi}", field=name)
    return out


# --- the client -----------------------------------------------------------------------------------


@dataclass
class FetchResult:
    """What :meth:`ValueguardClient.fetch_all` did."""

    output: Path
    rows: int
    total: int
    pages: int
    passes: int
    resumed_from: int | None = None
    requests: int = 0
    retries: int = 0
    criteria: dict[str, str] = field(default_factory=dict)


class _TotalChanged(Exception):
    def __init__(self, before: int, after: int) -> None:
        self.before, self.after = before, after


class ValueguardClient:
    """HTTP client for the registry API (a context manager; keyword-only options).

    Parameters
    ----------
    settings
        :class:`ValueguardSettings`; default reads ``VGGEO_VALUEGUARD_*``.
    transport
        An ``httpx`` transport (tests may pass one; the suite uses a real local server).
    sleep
        Function used to wait between retries (``time.sleep``).
    """

    def __init__(self, settings: ValueguardSettings | None = None, *,
                 transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:  # fmt: skip
        self.settings = settings or ValueguardSettings()
        self._http = httpx.Client(base_url=self.settings.base_url.rstrip("/"),
                                  timeout=self.settings.timeout, transport=transport,
                                  follow_redirects=False)  # fmt: skip
        self._sleep = sleep
        self._access: str | None = None
        self._refresh: str | None = None
        self._expires_at: float | None = None
        self.requests = 0
        self.retries = 0
        for s in (self.settings.username, self.settings.password):
            if s is not None:
                _FILTER.secrets.add(s.get_secret_value())

    def __enter__(self) -> ValueguardClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def __repr__(self) -> str:  # never shows credentials
        return f"ValueguardClient(base_url={self.settings.base_url!r})"

    # -- tokens -----------------------------------------------------------------------------

    def _secrets(self) -> tuple[str, ...]:
        vals = [self._access, self._refresh]
        for s in (self.settings.username, self.settings.password):
            if s is not None:
                vals.append(s.get_secret_value())
        return tuple(v for v in vals if v)

    def _token(self, data: dict[str, str]) -> None:
        r = self._send("POST", "/oauth/token", data=data, auth=False)
        try:
            body = r.json()
            access, refresh = body["access_token"], body.get("refresh_token")
        except (ValueError, KeyError, TypeError):
            raise ClientError("the token endpoint did not return an access_token") from None
        self._access, self._refresh = str(access), (str(refresh) if refresh else None)
        _FILTER.secrets.update(s for s in (self._access, self._refresh) if s)
        exp = body.get("expires_in") if isinstance(body, dict) else None
        self._expires_at = time.monotonic() + float(exp) - 5 if exp else None

    def authenticate(self) -> None:
        """Password grant with the configured credentials."""
        s = self.settings
        if s.username is None or s.password is None:
            raise ClientError("no Valueguard credentials: set VGGEO_VALUEGUARD_USERNAME and "
                              "VGGEO_VALUEGUARD_PASSWORD")  # fmt: skip
        self._token({"client_id": s.client_id, "grant_type": "password",
                     "username": s.username.get_secret_value(),
                     "password": s.password.get_secret_value()})  # fmt: skip
        log.info("authenticated with Valueguard at %s", s.base_url)

    def refresh(self) -> None:
        """Refresh the access token; a new password grant if the refresh token is refused."""
        if self._refresh:
            try:
                self._token({"client_id": self.settings.client_id, "grant_type": "refresh_token",
                             "refresh_token": self._refresh})  # fmt: skip
                log.info("refreshed the access token")
                return
            except ClientError as err:
                log.info("token refresh refused (%s); authenticating again", err)
        self.authenticate()

    # -- requests ---------------------------------------------------------------------------

    def _wait(self, attempt: int, retry_after: float | None = None) -> None:
        s = self.settings
        if retry_after is not None:
            delay = min(max(retry_after, 0.0), s.max_backoff)
        else:
            delay = min(s.backoff * 2**attempt, s.max_backoff) * (0.5 + random.random() / 2)
        self.retries += 1
        self._sleep(delay)

    def _send(self, method: str, path: str, *, params: dict | None = None,
              data: dict | None = None, auth: bool = True) -> httpx.Response:  # fmt: skip
        """One logical request with bounded retries. Never raises with a secret in the text."""
        s = self.settings
        just_refreshed = False
        last = "no attempt"
        for attempt in range(s.max_retries + 1):
            if auth:
                if self._access is None:
                    self.authenticate()
                elif self._expires_at is not None and time.monotonic() >= self._expires_at:
                    self.refresh()
                params = {**(params or {}), "access_token": self._access}
            self.requests += 1
            try:
                r = self._http.request(method, path, params=params, data=data)
            except httpx.TransportError as err:  # timeouts, refused/dropped connections
                just_refreshed = False
                last = f"{type(err).__name__}: {redact(str(err), self._secrets())}"
                log.warning("%s %s failed (%s); retry %d of %d", method, path, last,
                            attempt + 1, s.max_retries)  # fmt: skip
                if attempt < s.max_retries:
                    self._wait(attempt)
                continue
            # A 401 straight after a new token is a real refusal; otherwise the token may simply
            # have expired (again, during a long run of retries): refresh it and go on.
            if r.status_code == 401 and auth and not just_refreshed:
                log.info("401 from %s: refreshing the token", path)
                self.refresh()
                just_refreshed = True
                continue
            just_refreshed = False
            if r.status_code == 429:
                ra = _retry_after(r.headers.get("Retry-After"))
                last = f"429 Too Many Requests (Retry-After: {r.headers.get('Retry-After')})"
                log.warning("%s %s: %s", method, path, last)
                if attempt < s.max_retries:
                    self._wait(attempt, ra)
                continue
            if r.status_code >= 500:
                last = f"{r.status_code} {redact(r.text[:200], self._secrets())}"
                log.warning("%s %s: %s; retry %d of %d", method, path, last, attempt + 1,
                            s.max_retries)  # fmt: skip
                if attempt < s.max_retries:
                    self._wait(attempt)
                continue
            if r.status_code >= 400:
                raise ClientError(
                    f"{method} {path} refused: {r.status_code} "
                    f"{redact(r.text[:300], self._secrets()).strip()}"
                )
            return r
        raise ClientError(f"{method} {path} failed after {s.max_retries + 1} attempts; last: {last}")

    def page(self, endpoint: str = "registry", *, offset: int = 0, limit: int | None = None,
             criteria: Mapping[str, Any] | None = None, allow_special: bool = False) -> dict:  # fmt: skip
        """One page as the API returns it, checked: ``residences`` list and ``meta_data``."""
        path = _endpoint(endpoint)
        crit = validate_criteria(criteria, allow_special=allow_special)
        limit = self.settings.page_size if limit is None else int(limit)
        where = f"{endpoint} page at offset {offset}"
        for attempt in range(self.settings.max_retries + 1):
            r = self._send("GET", path, params={"offset": offset, "limit": limit, **crit})
            try:
                body = r.json()
            except ValueError:
                # A 200 with a broken body is usually a proxy cutting the stream: retry it.
                log.warning("%s: malformed JSON body; retrying", where)
                if attempt < self.settings.max_retries:
                    self._wait(attempt)
                    continue
                raise ParseError("malformed JSON page from the API", file=where) from None
            return _check_page(body, where, offset=offset, limit=limit)
        raise AssertionError("unreachable")  # pragma: no cover

    def count(self, endpoint: str = "registry", *, criteria=None, allow_special=False) -> int:
        """``total_nr_records`` for the criteria (a ``limit=0`` request)."""
        body = self.page(endpoint, offset=0, limit=0, criteria=criteria, allow_special=allow_special)
        return int(body["meta_data"]["total_nr_records"])

    def iter_pages(self, endpoint: str = "registry", *, criteria=None, start: int = 0,
                   limit: int | None = None, allow_special: bool = False) -> Iterator[dict]:  # fmt: skip
        """Pages from ``start`` until ``total_nr_records`` is reached."""
        offset = start
        limit = self.settings.page_size if limit is None else limit
        while True:
            body = self.page(endpoint, offset=offset, limit=limit, criteria=criteria,
                             allow_special=allow_special)  # fmt: skip
            yield body
            meta = body["meta_data"]
            rows = int(meta["response_rows"])
            offset += rows
            if rows == 0 or offset >= int(meta["total_nr_records"]):
                return

    # -- bulk fetch ---------------------------------------------------------------------------

    def fetch_all(
        self,
        output: str | os.PathLike,
        *,
        endpoint: str = "registry",
        criteria: Mapping[str, Any] | None = None,
        resume: bool = False,
        updated_since: str | dt.date | None = None,
        progress: bool = True,
        max_passes: int = 3,
        allow_special: bool = False,
        on_page: Callable[[int, dict], None] | None = None,
    ) -> FetchResult:
        """Fetch every matching row to ``output`` (``.parquet``, ``.gpkg``, ``.csv``, ``.jsonl``).

        Parameters
        ----------
        output
            The finished file, written atomically once all pages are in.
        resume
            Continue an interrupted fetch of the same endpoint and criteria from its last complete
            page (kept in ``.<output name>.parts/`` beside the output).
        updated_since
            Incremental mode: only rows with ``updated_at`` on or after this date
            (``updated_at_min``).
        max_passes
            How many times to start over when ``total_nr_records`` changes mid-fetch.
        on_page
            Called with (offset, page) after each page is safely on disk.
        """
        from vggeo.registry.writers import write_registry

        output = Path(output)
        crit = dict(criteria or {})
        if updated_since is not None:
            crit["updated_at_min"] = str(updated_since)
        crit = validate_criteria(crit, allow_special=allow_special)
        path = _endpoint(endpoint)
        staging = output.with_name(f".{output.name}.parts")
        ident = {"endpoint": path, "criteria": crit, "page_size": self.settings.page_size}
        state = _load_state(staging)
        resumed_from = None
        if state is not None and (not resume or state.get("ident") != ident):
            if resume:
                log.warning("staged pages in %s are for another fetch; starting over", staging)
            shutil.rmtree(staging)
            state = None
        if state is None:
            staging.mkdir(parents=True, exist_ok=True)
            state = {"ident": ident, "pass": 1, "total": None, "pages": []}
            _save_state(staging, state)
        else:
            resumed_from = _next_offset(state)
            log.info("resuming %s from offset %d (%d pages on disk)", path, resumed_from,
                     len(state["pages"]))  # fmt: skip
        from tqdm import tqdm

        bar = tqdm(total=state["total"], initial=_next_offset(state), unit="rows",
                   disable=not progress, file=sys.stderr, desc=f"fetch {endpoint}")  # fmt: skip
        try:
            while True:
                try:
                    self._fetch_pass(path, crit, staging, state, bar, on_page, endpoint,
                                     allow_special)  # fmt: skip
                except _TotalChanged as ch:
                    if state["pass"] >= max_passes:
                        raise ClientError(
                            f"the registry kept changing during the fetch (total {ch.before} → "
                            f"{ch.after}) after {max_passes} passes; try again later or fetch "
                            "incrementally (updated_since)"
                        ) from None
                    log.warning("total_nr_records changed %d → %d mid-fetch; offset paging may "
                                "have skipped or repeated rows, so fetching again (pass %d)",
                                ch.before, ch.after, state["pass"] + 1)  # fmt: skip
                    _restart(staging, state)
                    bar.reset(total=ch.after)
                    continue
                gdf = _read_staged(staging, state, source=f"{endpoint} fetch")
                n_unique = len(gdf)
                if n_unique != state["total"] and state["pass"] < max_passes:
                    log.warning("%d unique ids but total_nr_records %d: fetching again",
                                n_unique, state["total"])  # fmt: skip
                    _restart(staging, state)
                    continue
                if n_unique != state["total"]:
                    raise ClientError(f"fetched {n_unique} distinct rows but the API reports "
                                      f"{state['total']} after {max_passes} passes")  # fmt: skip
                break
        finally:
            bar.close()
        write_registry(gdf, output)
        result = FetchResult(output=output, rows=len(gdf), total=int(state["total"]),
                             pages=len(state["pages"]), passes=int(state["pass"]),
                             resumed_from=resumed_from, requests=self.requests,
                             retries=self.retries, criteria=crit)  # fmt: skip
        shutil.rmtree(staging, ignore_errors=True)
        return result

    def _fetch_pass(self, path, crit, staging: Path, state: dict, bar, on_page, endpoint,
                    allow_special) -> None:  # fmt: skip
        limit = self.settings.page_size
        offset = _next_offset(state)
        while state["total"] is None or offset < state["total"]:
            body = self.page(endpoint, offset=offset, limit=limit, criteria=crit,
                             allow_special=allow_special)  # fmt: skip
            meta = body["meta_data"]
            total = int(meta["total_nr_records"])
            if state["total"] is None:
                state["total"] = total
                bar.reset(total=total)
                bar.update(offset)
            elif total != state["total"]:
                raise _TotalChanged(state["total"], total)
            rows = body["residences"]
            if not rows and offset < total:
                raise ClientError(f"empty page at offset {offset} although total_nr_records is "
                                  f"{total}")  # fmt: skip
            name = f"page-{offset:012d}.jsonl"
            tmp = staging / f".{name}.tmp"
            with open(tmp, "w", encoding="utf-8") as fh:
                for rec in rows:
                    fh.write(json.dumps(rec, ensure_ascii=False))
                    fh.write("\n")
            os.replace(tmp, staging / name)
            state["pages"].append({"offset": offset, "rows": len(rows), "file": name})
            _save_state(staging, state)
            bar.update(len(rows))
            if on_page is not None:
                on_page(offset, body)
            offset += len(rows)
            if not rows:
                break


def _endpoint(name: str) -> str:
    try:
        return ENDPOINTS[name]
    except KeyError:
        raise InputError(f"unknown endpoint; use one of {', '.join(ENDPOINTS)}", value=name) from None


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        when = email.utils.parsedate_to_datetime(value)
        if when is None:
            return None
        return (when - dt.datetime.now(dt.UTC)).total_seconds()


def _check_page(body: Any, where: str, *, offset: int, limit: int) -> dict:
    if not isinstance(body, dict) or not isinstance(body.get("residences"), list):
        raise ParseError("API page without a 'residences' list", file=where)
    meta = body.get("meta_data")
    if not isinstance(meta, dict):
        raise ParseError("API page without 'meta_data'", file=where, field="meta_data")
    for k in ("offset", "response_rows", "total_nr_records"):
        if not isinstance(meta.get(k), int) or isinstance(meta.get(k), bool):
            raise ParseError("meta_data field missing or not an integer", file=where,
                             field=f"meta_data.{k}", value=meta.get(k))  # fmt: skip
    if meta["offset"] != offset:
        raise ParseError(f"asked for offset {offset}, got a page at {meta['offset']}", file=where,
                         field="meta_data.offset")  # fmt: skip
    if meta["response_rows"] != len(body["residences"]):
        raise ParseError(f"meta_data.response_rows is {meta['response_rows']} but the page holds "
                         f"{len(body['residences'])} residences", file=where,
                         field="meta_data.response_rows")  # fmt: skip
    if limit and meta["response_rows"] > limit:
        raise ParseError(f"page holds {meta['response_rows']} rows, more than limit {limit}",
                         file=where)  # fmt: skip
    for i, rec in enumerate(body["residences"]):
        if not isinstance(rec, dict):
            raise ParseError("a residence that is not an object", file=where, row=i + 1)
        if "id" not in rec:
            raise ParseError("a residence without 'id'", file=where, row=i + 1, field="id")
    return body


def _load_state(staging: Path) -> dict | None:
    p = staging / "state.json"
    if not p.exists():
        return None
    try:
        state = json.loads(p.read_text())
    except ValueError:
        return None
    # Keep only pages whose file is complete on disk (written, renamed, then recorded).
    state["pages"] = [pg for pg in state.get("pages", []) if (staging / pg["file"]).exists()]
    return state


def _save_state(staging: Path, state: dict) -> None:
    tmp = staging / ".state.json.tmp"
    tmp.write_text(json.dumps(state))
    os.replace(tmp, staging / "state.json")


def _next_offset(state: dict) -> int:
    if not state["pages"]:
        return 0
    last = max(state["pages"], key=lambda p: p["offset"])
    return int(last["offset"]) + int(last["rows"])


def _restart(staging: Path, state: dict) -> None:
    for pg in state["pages"]:
        (staging / pg["file"]).unlink(missing_ok=True)
    state.update({"pass": state["pass"] + 1, "total": None, "pages": []})
    _save_state(staging, state)


def _read_staged(staging: Path, state: dict, *, source: str):
    """All staged pages as one canonical frame, one row per id.

    The pages are concatenated into one JSON-lines file and read by the streaming reader (the
    national registry fits in a few GB that way). Should offset paging have repeated a row, the
    last copy of each id is kept.
    """
    import warnings

    from vggeo.errors import SchemaError
    from vggeo.registry.readers import _read_jsonl, read_registry, to_canonical

    pages = sorted(state["pages"], key=lambda p: p["offset"])
    combined = staging / "all.jsonl"
    with open(combined, "wb") as out:
        for pg in pages:
            with open(staging / pg["file"], "rb") as fh:
                shutil.copyfileobj(fh, out)
    try:
        return read_registry(combined, format="jsonl")
    except SchemaError as err:
        if err.field != "id" or "not unique" not in err.message:
            raise
    frame, _ = _read_jsonl(combined)
    frame = frame.drop_duplicates("id", keep="last", ignore_index=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # already warned about by the first read
        return to_canonical(frame, source=source, consume=True)
