"""A client for Valueguard's registry API: tokens, paging, retries, resumable bulk fetches.

The protocol (Valueguard's public Python client and wiki; FORMATS.md §1):

* ``POST /oauth/token`` with ``client_id=api&grant_type=password&username=…&password=…`` →
  ``{"access_token", "refresh_token", "expires_in"?}``; refresh with
  ``grant_type=refresh_token&refresh_token=…``. vggeo sends these as a form body (an OAuth
  token endpoint reads form and query parameters alike) so that secrets never appear in a URL.
* ``GET /v1/residential/registry?access_token=…&offset=N&limit=M&<criteria>`` →
  ``{"residences": [...], "meta_data": {"offset", "response_rows", "total_nr_records"}}``;
  ``/markups`` and ``/valuations`` below it page the same way; ``limit=0`` only counts.

Settings (environment, see :class:`ValueguardSettings`): ``VGGEO_VALUEGUARD_USERNAME`` and
``VGGEO_VALUEGUARD_PASSWORD`` (required), ``VGGEO_VALUEGUARD_BASE_URL`` (default
``https://api.valueguard.se``), ``…_PAGE_SIZE``, ``…_TIMEOUT``, ``…_CONNECT_TIMEOUT``,
``…_MAX_RETRIES``, ``…_BACKOFF``, ``…_MAX_BACKOFF``.

Tokens: :class:`ValueguardAuth`, an ``httpx.Auth``: a password grant before the first request,
the token added to every request, a refresh (or, if refused, a new password grant) on a 401 or
when ``expires_in`` has run out. Credentials and tokens are never logged: a filter on the
``httpx``/``httpcore`` loggers redacts them (and the special criteria), and error messages carry
paths, not URLs.

Retries (tenacity): each request is tried at most ``max_retries + 1`` times in all — one bounded
count, logged as "attempt k of n" — with exponential backoff and jitter, for timeouts, dropped
connections, 5xx, a 200 with a broken body, and 429 (waiting as long as ``Retry-After`` says,
capped at ``max_backoff``). A host that cannot be reached at all (name not resolved, connection
refused, no answer within ``connect_timeout``) before it ever answered fails at once with one
clear message: retrying would only delay the same answer.

Search criteria are checked before any request (:func:`validate_criteria`): unknown names are
refused with the closest documented ones; ``address`` is matched by the API as LIKE
(``Torgatan`` also finds ``Storgatan``), so :meth:`ValueguardClient.fetch_all` can keep only
exact matches (``exact_address=True``, see :func:`exact_address_mask`). The special criteria
``SSN`` (a personnummer, checked and written as 12 digits) and ``sensitive_data`` (0 or 1) need
``allow_special=True``; their values, like ``owner_id`` (which for a sole trader is a
personnummer), are never logged nor written to the resume state.

Resumable fetches: :meth:`ValueguardClient.fetch_all` stages pages in the folder
``.<output name>.parts/`` beside the output. Each page is written whole to
``page-<offset>.jsonl`` (the residences as the API sent them, one per line), renamed into
place, then recorded in ``state.json``::

    {"ident": {"endpoint": "/v1/residential/registry", "page_size": 20000,
               "criteria": {"rooms_min": "2"}, "private_criteria": ["owner_id"]},
     "pass": 1, "total": 5600000,
     "pages": [{"offset": 0, "rows": 20000, "file": "page-000000000000.jsonl"}, ...]}

``ident`` says which fetch the pages belong to: a resume (``resume=True``) continues only the
same endpoint, page size and criteria, from the end of the last recorded page; anything else
starts over. The state holds no credentials, no tokens and no values of private criteria
(``SSN``, ``sensitive_data``, ``owner_id``: names only), so a fetch that used them cannot be
checked to be the same and is not resumed. The folder is removed once the output is written.

Offset paging over a changing registry can skip or repeat rows when rows are added or removed
mid-fetch; ``fetch_all`` therefore watches ``total_nr_records`` and, if it changes, fetches the
registry again (up to ``max_passes``), keeping only a pass in which the total held still and
every id appeared exactly once.
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
import warnings
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np
import pandas as pd
import tenacity
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from tqdm import tqdm

from vggeo.atomic import atomic_path
from vggeo.errors import ClientError, InputError, ParseError, SchemaError
from vggeo.registry.fields import SEARCH_CRITERIA, SPECIAL_CRITERIA
from vggeo.registry.readers import _read_jsonl, read_registry, to_canonical
from vggeo.registry.rules import valid_organisation_numbers
from vggeo.registry.writers import write_registry

if TYPE_CHECKING:
    import geopandas as gpd

__all__ = [
    "ValueguardSettings",
    "ValueguardClient",
    "ValueguardAuth",
    "FetchResult",
    "validate_criteria",
    "normalise_personnummer",
    "exact_address_mask",
    "ENDPOINTS",
    "PRIVATE_CRITERIA",
    "redact",
]

log = logging.getLogger(__name__)

#: Endpoint name → path.
ENDPOINTS = {
    "registry": "/v1/residential/registry",
    "markups": "/v1/residential/registry/markups",
    "valuations": "/v1/residential/registry/valuations",
}
#: Criteria whose values are never logged nor written to the resume state: the special ones,
#: and owner_id (a sole trader's organisation number is his personnummer).
PRIVATE_CRITERIA = ("SSN", "sensitive_data", "owner_id")
_SECRET_PARAMS = (
    "access_token",
    "refresh_token",
    "password",
    "username",
    "client_secret",
    *PRIVATE_CRITERIA,
)
_SECRET_RE = re.compile("((?:" + "|".join(_SECRET_PARAMS) + r")=)[^&\s\"']+", re.IGNORECASE)


class ValueguardSettings(BaseSettings):
    """Connection settings, from ``VGGEO_VALUEGUARD_*`` environment variables.

    Build with ``ValueguardSettings()`` (reads the environment) or pass values explicitly;
    tests use ``ValueguardSettings(_env_file=None, ...)``. ``max_retries`` is the number of
    retries after the first attempt (so ``max_retries + 1`` attempts in all).
    """

    model_config = SettingsConfigDict(env_prefix="VGGEO_VALUEGUARD_", extra="ignore")

    base_url: str = "https://api.valueguard.se"
    username: SecretStr | None = None
    password: SecretStr | None = None
    client_id: str = "api"
    page_size: int = 20_000
    timeout: float = 120.0
    connect_timeout: float = 10.0
    max_retries: int = 6
    backoff: float = 1.0
    max_backoff: float = 120.0


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` with token/password/private-criteria query values and the given strings replaced."""
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


def normalise_personnummer(value: Any, *, today: dt.date | None = None) -> str:
    """A Swedish personnummer (or samordningsnummer) as 12 digits ``YYYYMMDDNNNN``, or InputError.

    Accepts ``YYYYMMDD-NNNN``, ``YYYYMMDDNNNN``, ``YYMMDD-NNNN``, ``YYMMDDNNNN`` and ``YYMMDD+NNNN``
    (``+``: a hundred years or older). Checks the date (a samordningsnummer adds 60 to the day)
    and the check digit (Luhn over the ten digits, Skatteverket). The error never repeats the
    value.
    """
    text = str(value).strip().replace(" ", "")
    m = re.fullmatch(r"(\d{2})?(\d{6})([-+]?)(\d{4})", text)
    if not m:
        raise InputError("SSN must be a personnummer: YYYYMMDD-NNNN or YYMMDD-NNNN", field="SSN")
    century, date6, sep, last4 = m.groups()
    today = today or dt.date.today()
    yy = int(date6[:2])
    if century is None:
        year = today.year - (today.year - yy) % 100
        if sep == "+":
            year -= 100
    else:
        year = int(century) * 100 + yy
    month, day = int(date6[2:4]), int(date6[4:6])
    try:
        dt.date(year, month, day - 60 if day > 60 else day)
    except ValueError:
        raise InputError("SSN is not a personnummer: no such birth date", field="SSN") from None
    digits = np.array([[int(c) for c in date6 + last4]])
    if not valid_organisation_numbers(digits)[0]:
        raise InputError("SSN is not a personnummer: the check digit is wrong", field="SSN")
    return f"{year:04d}{date6[2:]}{last4}"


def validate_criteria(
    criteria: Mapping[str, Any] | None, *, allow_special: bool = False
) -> dict[str, str]:
    """Check search criteria against the documented list before any request is made.

    Returns the criteria as query strings (``SSN`` as 12 digits). Raises
    :class:`~vggeo.errors.InputError` naming an unknown criterion (with the closest documented
    names), a value of the wrong kind, a ``_min`` greater than its ``_max``, a special criterion
    without ``allow_special``, an ``SSN`` that is not a personnummer or a ``sensitive_data``
    other than 0 or 1. Private values are never repeated in an error.
    """
    known = dict(SEARCH_CRITERIA)
    known.update(SPECIAL_CRITERIA)
    out: dict[str, str] = {}
    for name, value in (criteria or {}).items():
        shown = None if name in PRIVATE_CRITERIA else value
        if name not in known:
            near = difflib.get_close_matches(name, list(known), n=3)
            hint = f"; did you mean {', '.join(near)}?" if near else ""
            raise InputError(f"unknown search criterion{hint}", field=name, value=shown)
        if name in SPECIAL_CRITERIA and not allow_special:
            raise InputError(
                "this criterion needs special access: pass allow_special=True "
                "(CLI: --special-access)",
                field=name,
            )
        kind = known[name]
        text = str(value).strip()
        if name == "SSN":
            text = normalise_personnummer(text)
        elif name == "sensitive_data" and text not in ("0", "1"):
            raise InputError(
                "sensitive_data is 0 (only non-sensitive homes) or 1 (only "
                "sensitive ones); leave it out for all",
                field=name,
            )
        elif kind == "int" and not re.fullmatch(r"-?\d+", text):
            raise InputError("search criterion needs a whole number", field=name, value=shown)
        elif kind == "number":
            try:
                float(text)
            except ValueError:
                raise InputError(
                    "search criterion needs a number", field=name, value=shown
                ) from None
        elif kind == "date":
            try:
                dt.date.fromisoformat(text)
            except ValueError:
                raise InputError(
                    "search criterion needs a date YYYY-MM-DD", field=name, value=shown
                ) from None
        out[name] = text
    for name in out:
        if name.endswith("_min") and f"{name[:-4]}_max" in out:
            lo, hi = out[name], out[f"{name[:-4]}_max"]
            if float(lo) > float(hi):
                raise InputError(f"{name}={lo} is greater than {name[:-4]}_max={hi}", field=name)
    for name in PRIVATE_CRITERIA:
        if name in out:
            _FILTER.secrets.add(out[name])
            _FILTER.secrets.add(str((criteria or {})[name]).strip())
    return out


def _collapse(s: pd.Series) -> pd.Series:
    return s.astype("string").str.lower().str.replace(r"\s+", " ", regex=True).str.strip()


def exact_address_mask(frame: pd.DataFrame, address: str) -> np.ndarray:
    """Rows whose address matches ``address`` exactly, not merely as the API's LIKE does.

    The API treats the ``address`` criterion as LIKE (seed 000: "'Torgatan' will return both
    Torgatan and Storgatan"). A row is kept when, ignoring case and repeated spaces, ``address``
    equals its whole ``address`` (``"Torgatan 1, 65341"``), its address without the postal code
    (``"Torgatan 1"``), or its ``street`` (``"Torgatan"``).
    """
    want = " ".join(str(address).lower().split())
    keep = np.zeros(len(frame), dtype=bool)
    if "address" in frame:
        full = _collapse(frame["address"])
        before_comma = full.str.rsplit(",", n=1).str[0].str.strip()
        keep |= ((full == want) | (before_comma == want)).fillna(False).to_numpy(dtype=bool)
    if "street" in frame:
        keep |= (_collapse(frame["street"]) == want).fillna(False).to_numpy(dtype=bool)
    return keep


# --- authentication --------------------------------------------------------------------------------


class ValueguardAuth(httpx.Auth):
    """Valueguard's OAuth tokens as an ``httpx.Auth``: password grant, refresh on 401 or expiry.

    The access token travels as the ``access_token`` query parameter (the API's convention);
    credentials go in a form body to ``/oauth/token``. A refused refresh falls back to a new
    password grant; a 401 that survives a new token is the API's answer and is returned as is.
    """

    requires_response_body = True

    def __init__(self, settings: ValueguardSettings) -> None:
        self.settings = settings
        self.access: str | None = None
        self.refresh_token: str | None = None
        self.expires_at: float | None = None
        self.grants: list[str] = []

    # -- the flow httpx drives ------------------------------------------------------------------
    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self.access is None:
            yield from self._password_grant()
        elif self.expires_at is not None and time.monotonic() >= self.expires_at:
            yield from self._renew()
        self._sign(request)
        response = yield request
        if response.status_code == 401:
            log.info("401 from %s: renewing the token", request.url.path)
            yield from self._renew()
            self._sign(request)
            yield request

    def _sign(self, request: httpx.Request) -> None:
        request.url = request.url.copy_set_param("access_token", self.access or "")

    def _token_request(self, form: dict[str, str]) -> httpx.Request:
        url = self.settings.base_url.rstrip("/") + "/oauth/token"
        return httpx.Request("POST", url, data=form)

    def _password_grant(self) -> Generator[httpx.Request, httpx.Response, None]:
        s = self.settings
        if s.username is None or s.password is None:
            raise ClientError(
                "no Valueguard credentials: set VGGEO_VALUEGUARD_USERNAME and "
                "VGGEO_VALUEGUARD_PASSWORD"
            )
        response = yield self._token_request(
            {
                "client_id": s.client_id,
                "grant_type": "password",
                "username": s.username.get_secret_value(),
                "password": s.password.get_secret_value(),
            }
        )
        self._take(response, "password")
        log.info("authenticated with Valueguard at %s", s.base_url)

    def _renew(self) -> Generator[httpx.Request, httpx.Response, None]:
        if self.refresh_token:
            response = yield self._token_request(
                {
                    "client_id": self.settings.client_id,
                    "grant_type": "refresh_token",
                    "refresh_token": self.refresh_token,
                }
            )
            if response.status_code == 200:
                self._take(response, "refresh_token")
                log.info("refreshed the access token")
                return
            _raise_if_retryable(response, "POST /oauth/token")
            log.info("token refresh refused (%s); authenticating again", response.status_code)
        yield from self._password_grant()

    def _take(self, response: httpx.Response, grant: str) -> None:
        self.grants.append(grant)
        _raise_if_retryable(response, "POST /oauth/token")
        if response.status_code != 200:
            raise ClientError(
                f"POST /oauth/token refused: {response.status_code} "
                f"{redact(response.text[:300], _secrets(self.settings)).strip()}"
            )
        try:
            body = response.json()
            access, refresh = body["access_token"], body.get("refresh_token")
        except (ValueError, KeyError, TypeError):
            raise ClientError("the token endpoint did not return an access_token") from None
        self.access, self.refresh_token = str(access), (str(refresh) if refresh else None)
        _FILTER.secrets.update(t for t in (self.access, self.refresh_token) if t)
        exp = body.get("expires_in") if isinstance(body, dict) else None
        self.expires_at = time.monotonic() + float(exp) - 5 if exp else None


def _secrets(settings: ValueguardSettings) -> tuple[str, ...]:
    return tuple(s.get_secret_value() for s in (settings.username, settings.password) if s)


# --- retries ---------------------------------------------------------------------------------------


class _Retryable(Exception):
    """A failure worth another attempt; ``retry_after``: the wait the server asked for."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _raise_if_retryable(r: httpx.Response, what: str) -> None:
    if r.status_code == 429:
        raise _Retryable(
            f"429 Too Many Requests (Retry-After: {r.headers.get('Retry-After')})",
            _retry_after(r.headers.get("Retry-After")),
        )
    if r.status_code >= 500:
        raise _Retryable(f"{r.status_code} {redact(r.text[:200]).strip()}")


# --- the client -----------------------------------------------------------------------------------


@dataclass
class FetchResult:
    """What :meth:`ValueguardClient.fetch_all` did.

    ``rows`` were written; ``total`` is what the API reported for the criteria (``rows`` is
    smaller only by ``dropped_inexact``, the LIKE matches ``exact_address`` left out).
    ``rejects`` lists the values that broke a documented rule (see
    :mod:`vggeo.registry.canonical`). ``criteria`` shows private values as ``***``.
    """

    output: Path
    rows: int
    total: int
    pages: int
    passes: int
    resumed_from: int | None = None
    requests: int = 0
    retries: int = 0
    criteria: dict[str, str] = field(default_factory=dict)
    dropped_inexact: int = 0
    rejects: pd.DataFrame | None = None

    def describe(self) -> str:
        """One line: rows and where they went, pages, passes, retries, resumption, left-outs."""
        details = [f"{self.pages} pages", f"{self.passes} pass(es)", f"{self.retries} retries"]
        if self.resumed_from:
            details.append(f"resumed at offset {self.resumed_from}")
        if self.dropped_inexact:
            details.append(f"{self.dropped_inexact} inexact address matches left out")
        return f"{self.rows} rows → {self.output} ({', '.join(details)})"


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

    def __init__(
        self,
        settings: ValueguardSettings | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings or ValueguardSettings()
        s = self.settings
        self.auth = ValueguardAuth(s)
        self._http = httpx.Client(
            base_url=s.base_url.rstrip("/"),
            auth=self.auth,
            transport=transport,
            timeout=httpx.Timeout(s.timeout, connect=min(s.connect_timeout, s.timeout)),
            follow_redirects=False,
            event_hooks={"request": [self._count], "response": [self._answered]},
        )
        self._sleep = sleep
        self._contacted = False
        self.requests = 0
        self.retries = 0
        _FILTER.secrets.update(_secrets(s))

    def __enter__(self) -> ValueguardClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def __repr__(self) -> str:  # never shows credentials
        return f"ValueguardClient(base_url={self.settings.base_url!r})"

    def _count(self, request: httpx.Request) -> None:
        self.requests += 1

    def _answered(self, response: httpx.Response) -> None:
        self._contacted = True  # the host answers: later connection failures are worth retrying

    # -- tokens (kept for callers that manage them explicitly) ---------------------------------
    @property
    def _access(self) -> str | None:
        return self.auth.access

    @property
    def _refresh(self) -> str | None:
        return self.auth.refresh_token

    def authenticate(self) -> None:
        """Password grant with the configured credentials (otherwise done before the first request)."""
        self._run("POST", "/oauth/token", lambda: self._drive(self.auth._password_grant()))

    def refresh(self) -> None:
        """Refresh the access token; a new password grant if the refresh token is refused."""
        self._run("POST", "/oauth/token", lambda: self._drive(self.auth._renew()))

    def _drive(self, flow: Generator[httpx.Request, httpx.Response, None]) -> None:
        """Run a token flow of :class:`ValueguardAuth` outside a request."""
        try:
            req = next(flow)
            while True:
                req = flow.send(self._http.send(req, auth=None))
        except StopIteration:
            return
        except httpx.TransportError as err:
            raise self._transport_failure("POST", "/oauth/token", err) from None

    # -- requests ---------------------------------------------------------------------------
    def _wait(self, state: tenacity.RetryCallState) -> float:
        s = self.settings
        err = state.outcome.exception() if state.outcome else None
        if isinstance(err, _Retryable) and err.retry_after is not None:
            return min(max(err.retry_after, 0.0), s.max_backoff)
        k = state.attempt_number - 1
        return min(s.backoff * 2**k, s.max_backoff) * (0.5 + random.random() / 2)

    def _run(self, method: str, path: str, attempt_fn: Callable[[], Any]) -> Any:
        """Call ``attempt_fn`` with bounded retries; one count for everything a request meets."""
        n = self.settings.max_retries + 1

        def before_sleep(state: tenacity.RetryCallState) -> None:
            self.retries += 1
            wait = state.next_action.sleep if state.next_action else 0.0
            log.warning(
                "%s %s failed (%s); attempt %d of %d, next in %.1f s",
                method,
                path,
                state.outcome and state.outcome.exception(),
                state.attempt_number,
                n,
                wait,
            )

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(n),
            wait=self._wait,
            sleep=self._sleep,
            retry=tenacity.retry_if_exception_type(_Retryable),
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            return retrying(attempt_fn)
        except _Retryable as err:
            log.warning("%s %s failed (%s); attempt %d of %d, giving up", method, path, err, n, n)
            raise ClientError(f"{method} {path} failed after {n} attempts; last: {err}") from None

    def _transport_failure(self, method: str, path: str, err: httpx.TransportError) -> Exception:
        reason = f"{type(err).__name__}: {redact(str(err), tuple(_FILTER.secrets)) or 'no detail'}"
        unreachable = isinstance(err, (httpx.ConnectError, httpx.ConnectTimeout))
        if unreachable and not self._contacted:
            return ClientError(
                f"cannot reach {self.settings.base_url} ({reason}); check the network and "
                "VGGEO_VALUEGUARD_BASE_URL (CLI: --base-url)"
            )
        return _Retryable(reason)

    def _attempt(
        self, method: str, path: str, params: dict | None, *, as_json: bool
    ) -> httpx.Response | Any:
        """The response (or with ``as_json`` its JSON body) of one attempt."""
        try:
            r = self._http.request(method, path, params=params)
        except httpx.TransportError as err:  # timeouts, refused/dropped connections
            raise self._transport_failure(method, path, err) from None
        _raise_if_retryable(r, f"{method} {path}")
        if r.status_code >= 400:
            raise ClientError(
                f"{method} {path} refused: {r.status_code} "
                f"{redact(r.text[:300], tuple(_FILTER.secrets)).strip()}"
            )
        if not as_json:
            return r
        try:
            return r.json()
        except ValueError:
            # A 200 with a broken body is usually a proxy cutting the stream: try again.
            raise _Retryable("malformed JSON body") from None

    def _get_json(self, path: str, params: dict) -> Any:
        return self._run("GET", path, lambda: self._attempt("GET", path, params, as_json=True))

    def page(
        self,
        endpoint: str = "registry",
        *,
        offset: int = 0,
        limit: int | None = None,
        criteria: Mapping[str, Any] | None = None,
        allow_special: bool = False,
    ) -> dict:
        """One page as the API returns it, checked: ``residences`` list and ``meta_data``."""
        path = _endpoint(endpoint)
        crit = validate_criteria(criteria, allow_special=allow_special)
        limit = self.settings.page_size if limit is None else int(limit)
        where = f"{endpoint} page at offset {offset}"
        try:
            body = self._get_json(path, {"offset": offset, "limit": limit, **crit})
        except ClientError as err:
            if "malformed JSON body" in str(err):
                raise ParseError(f"malformed JSON page from the API ({err})", file=where) from None
            raise
        return _check_page(body, where, offset=offset, limit=limit)

    def count(
        self,
        endpoint: str = "registry",
        *,
        criteria: Mapping[str, Any] | None = None,
        allow_special: bool = False,
    ) -> int:
        """``total_nr_records`` for the criteria (a ``limit=0`` request)."""
        body = self.page(
            endpoint, offset=0, limit=0, criteria=criteria, allow_special=allow_special
        )
        return int(body["meta_data"]["total_nr_records"])

    def iter_pages(
        self,
        endpoint: str = "registry",
        *,
        criteria: Mapping[str, Any] | None = None,
        start: int = 0,
        limit: int | None = None,
        allow_special: bool = False,
    ) -> Iterator[dict]:
        """Pages from ``start`` until ``total_nr_records`` is reached."""
        offset = start
        limit = self.settings.page_size if limit is None else limit
        while True:
            body = self.page(
                endpoint, offset=offset, limit=limit, criteria=criteria, allow_special=allow_special
            )
            yield body
            meta = body["meta_data"]
            rows = int(meta["response_rows"])
            offset += rows
            if rows == 0 or offset >= int(meta["total_nr_records"]):
                return

    # -- bulk fetch ---------------------------------------------------------------------------

    def fetch_incremental(
        self,
        output: str | os.PathLike,
        *,
        endpoint: str = "registry",
        criteria: Mapping[str, Any] | None = None,
        resume: bool = False,
        progress: bool = True,
        allow_special: bool = False,
        exact_address: bool = False,
        strict: bool = False,
    ) -> FetchResult:
        """Update ``output`` with the rows changed since its newest ``updated_at``.

        Fetches rows updated on or after that day (the boundary day again: ``updated_at`` holds
        dates) into a staging file beside ``output``, then replaces every row of ``output`` with
        the same id and adds the new ones; ``output`` is rewritten atomically. The other
        parameters are those of :meth:`fetch_all`. ``FetchResult.rows`` is the size of the
        updated file.

        Raises
        ------
        InputError
            ``output`` does not exist or holds no ``updated_at`` dates to continue from.
        """
        output = Path(output)
        if not output.exists():
            raise InputError("--incremental needs an existing OUTPUT to update", file=str(output))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # OUTPUT's own rejects were reported when it was made
            old = read_registry(output, endpoint=endpoint)
        if "updated_at" not in old or old["updated_at"].isna().all():
            raise InputError("OUTPUT has no updated_at dates to continue from", file=str(output))
        since = old["updated_at"].max().date().isoformat()  # inclusive: the boundary day again
        delta_path = output.with_name(f".{output.stem}.delta{output.suffix}")
        result = self.fetch_all(
            delta_path,
            endpoint=endpoint,
            criteria=criteria,
            resume=resume,
            updated_since=since,
            progress=progress,
            strict=strict,
            allow_special=allow_special,
            exact_address=exact_address,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the delta's rejects are in result.rejects
            new = read_registry(delta_path, endpoint=endpoint)
            merged = pd.concat([old[~old["id"].isin(new["id"])], new], ignore_index=True)
            merged = to_canonical(
                pd.DataFrame(merged.drop(columns=["geometry", "coord_source"])),
                source=str(output),
                endpoint=endpoint,
                warn=False,
            )
        write_registry(merged, output)
        delta_path.unlink(missing_ok=True)
        result.output, result.rows = output, len(merged)
        return result

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
        exact_address: bool = False,
        strict: bool = False,
        on_page: Callable[[int, dict], None] | None = None,
    ) -> FetchResult:
        """Fetch every matching row to ``output`` (``.parquet``, ``.gpkg``, ``.csv``, ``.jsonl``).

        Parameters
        ----------
        output
            The finished file, written atomically once all pages are in.
        resume
            Continue an interrupted fetch of the same endpoint and criteria from its last complete
            page (kept in ``.<output name>.parts/`` beside the output; see the module docstring).
        updated_since
            Incremental mode: only rows with ``updated_at`` on or after this date
            (``updated_at_min``).
        max_passes
            How many times to start over when ``total_nr_records`` changes mid-fetch.
        allow_special
            Permit the special criteria ``SSN`` and ``sensitive_data``.
        exact_address
            Keep only rows whose address matches the ``address`` criterion exactly
            (:func:`exact_address_mask`); the API matches it as LIKE.
        strict
            Refuse the result (nothing written) if any value breaks a documented rule;
            otherwise such values are nulled or kept and listed in ``FetchResult.rejects``.
        on_page
            Called with (offset, page) after each page is safely on disk.
        """
        output = Path(output)
        crit = dict(criteria or {})
        if updated_since is not None:
            crit["updated_at_min"] = str(updated_since)
        crit = validate_criteria(crit, allow_special=allow_special)
        if exact_address and "address" not in crit:
            raise InputError("exact_address needs an address criterion", field="address")
        private = sorted(k for k in crit if k in PRIVATE_CRITERIA)
        if resume and private:
            raise InputError(
                "a fetch with " + ", ".join(private) + " cannot be resumed: their "
                "values are never written to disk, so the staged pages could not "
                "be checked to belong to the same search; fetch again without "
                "--resume",
                field=private[0],
            )
        path = _endpoint(endpoint)
        staging = output.with_name(f".{output.name}.parts")
        ident = {
            "endpoint": path,
            "page_size": self.settings.page_size,
            "criteria": {k: v for k, v in crit.items() if k not in PRIVATE_CRITERIA},
            "private_criteria": private,
        }
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
            log.info(
                "resuming %s from offset %d (%d pages on disk)",
                path,
                resumed_from,
                len(state["pages"]),
            )

        bar = tqdm(
            total=state["total"],
            initial=_next_offset(state),
            unit="rows",
            disable=not progress,
            file=sys.stderr,
            desc=f"fetch {endpoint}",
        )
        gdf: Any = None  # set by the pass that completes
        rejects: Any = None
        try:
            while True:
                try:
                    self._fetch_pass(
                        path, crit, staging, state, bar, on_page, endpoint, allow_special
                    )
                except _TotalChanged as ch:
                    if state["pass"] >= max_passes:
                        raise ClientError(
                            f"the registry kept changing during the fetch (total {ch.before} → "
                            f"{ch.after}) after {max_passes} passes; try again later or fetch "
                            "incrementally (updated_since)"
                        ) from None
                    log.warning(
                        "total_nr_records changed %d → %d mid-fetch; offset paging may "
                        "have skipped or repeated rows, so fetching again (pass %d)",
                        ch.before,
                        ch.after,
                        state["pass"] + 1,
                    )
                    _restart(staging, state)
                    bar.reset(total=ch.after)
                    continue
                gdf, rejects = _read_staged(
                    staging, state, source=f"{endpoint} fetch", endpoint=endpoint, strict=strict
                )
                n_unique = len(gdf)
                if n_unique != state["total"] and state["pass"] < max_passes:
                    log.warning(
                        "%d unique ids but total_nr_records %d: fetching again",
                        n_unique,
                        state["total"],
                    )
                    _restart(staging, state)
                    continue
                if n_unique != state["total"]:
                    raise ClientError(
                        f"fetched {n_unique} distinct rows but the API reports "
                        f"{state['total']} after {max_passes} passes"
                    )
                break
        finally:
            bar.close()
        dropped = 0
        if exact_address:
            keep = exact_address_mask(gdf, crit["address"])
            dropped = int((~keep).sum())
            if dropped:
                log.info(
                    "kept %d of %d rows whose address matches exactly", int(keep.sum()), len(gdf)
                )
                kept_ids = set(gdf["id"].to_numpy()[keep].tolist())
                gdf = gdf[keep].reset_index(drop=True)
                rejects = rejects[rejects["id"].isin(kept_ids)].reset_index(drop=True)
        write_registry(gdf, output)
        shown = {k: ("***" if k in PRIVATE_CRITERIA else v) for k, v in crit.items()}
        result = FetchResult(
            output=output,
            rows=len(gdf),
            total=int(state["total"]),
            pages=len(state["pages"]),
            passes=int(state["pass"]),
            resumed_from=resumed_from,
            requests=self.requests,
            retries=self.retries,
            criteria=shown,
            dropped_inexact=dropped,
            rejects=rejects,
        )
        shutil.rmtree(staging, ignore_errors=True)
        return result

    def _fetch_pass(
        self,
        path: str,
        crit: Mapping[str, Any] | None,
        staging: Path,
        state: dict,
        bar: tqdm,
        on_page: Callable[[int, dict], None] | None,
        endpoint: str,
        allow_special: bool,
    ) -> None:
        limit = self.settings.page_size
        offset = _next_offset(state)
        while state["total"] is None or offset < state["total"]:
            body = self.page(
                endpoint, offset=offset, limit=limit, criteria=crit, allow_special=allow_special
            )
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
                raise ClientError(
                    f"empty page at offset {offset} although total_nr_records is {total}"
                )
            name = f"page-{offset:012d}.jsonl"
            with atomic_path(staging / name) as tmp, open(tmp, "w", encoding="utf-8") as fh:
                for rec in rows:
                    fh.write(json.dumps(rec, ensure_ascii=False))
                    fh.write("\n")
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
        raise InputError(
            f"unknown endpoint; use one of {', '.join(ENDPOINTS)}", value=name
        ) from None


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
            raise ParseError(
                "meta_data field missing or not an integer",
                file=where,
                field=f"meta_data.{k}",
                value=meta.get(k),
            )
    if meta["offset"] != offset:
        raise ParseError(
            f"asked for offset {offset}, got a page at {meta['offset']}",
            file=where,
            field="meta_data.offset",
        )
    if meta["response_rows"] != len(body["residences"]):
        raise ParseError(
            f"meta_data.response_rows is {meta['response_rows']} but the page holds "
            f"{len(body['residences'])} residences",
            file=where,
            field="meta_data.response_rows",
        )
    if limit and meta["response_rows"] > limit:
        raise ParseError(
            f"page holds {meta['response_rows']} rows, more than limit {limit}", file=where
        )
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
    with atomic_path(staging / "state.json") as tmp:
        tmp.write_text(json.dumps(state))


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


def _read_staged(
    staging: Path, state: dict, *, source: str, endpoint: str, strict: bool
) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """All staged pages as one canonical frame, one row per id, and its rejects.

    The pages are concatenated into one JSON-lines file and read by the streaming reader (the
    national registry fits in a few GB that way). Should offset paging have repeated a row, the
    last copy of each id is kept.
    """
    pages = sorted(state["pages"], key=lambda p: p["offset"])
    combined = staging / "all.jsonl"
    with open(combined, "wb") as out:
        for pg in pages:
            with open(staging / pg["file"], "rb") as fh:
                shutil.copyfileobj(fh, out)
    try:
        return read_registry(
            combined, format="jsonl", endpoint=endpoint, strict=strict, with_rejects=True
        )
    except SchemaError as err:
        if err.field != "id" or "not unique" not in err.message:
            raise
    frame, _ = _read_jsonl(combined)
    frame = frame.drop_duplicates("id", keep="last", ignore_index=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # already warned about by the first read
        return to_canonical(
            frame, source=source, consume=True, endpoint=endpoint, strict=strict, with_rejects=True
        )
