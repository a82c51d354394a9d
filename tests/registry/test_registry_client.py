"""The API client against a real local HTTP server speaking Valueguard's protocol, with faults."""

from __future__ import annotations

import logging

import pytest
from vg_server import RegistryServer

from vggeo.errors import ClientError, InputError, ParseError
from vggeo.registry.client import ValueguardClient, ValueguardSettings, redact, validate_criteria
from vggeo.registry.readers import read_registry

USER, PASSWORD = "analyst-7f3c", "pw-Zq81-secret"


@pytest.fixture
def server(raw_records):
    with RegistryServer(raw_records, username=USER, password=PASSWORD) as srv:
        yield srv


class Sleeps(list):
    """Records requested waits; waits a token time so tests stay fast."""

    def __call__(self, seconds: float) -> None:
        import time

        self.append(seconds)
        time.sleep(min(seconds, 0.01))


def make_client(srv, sleeps=None, **kw) -> ValueguardClient:
    settings = ValueguardSettings(
        _env_file=None,
        base_url=srv.url,
        username=USER,
        password=PASSWORD,
        page_size=50,
        timeout=kw.pop("timeout", 2.0),
        max_retries=kw.pop("max_retries", 4),
        backoff=0.01,
        **kw,
    )
    return ValueguardClient(settings, sleep=sleeps if sleeps is not None else Sleeps())


def _ids(path) -> list[int]:
    return read_registry(path)["id"].tolist()


def test_plain_fetch_every_row_once(server, raw_records, tmp_path):
    with make_client(server) as c:
        res = c.fetch_all(tmp_path / "out.parquet", progress=False)
    ids = _ids(tmp_path / "out.parquet")
    assert sorted(ids) == sorted(r["id"] for r in raw_records)
    assert res.rows == res.total == len(raw_records) and res.pages == 6 and res.passes == 1
    offsets = [p["offset"] for _, p in server.state.log]
    assert offsets == list(range(0, 300, 50))
    assert not list(tmp_path.glob(".*")), "staging left behind"


def test_faults_every_row_exactly_once(server, raw_records, small_registry, tmp_path):
    st = server.state
    st.drop[50] = 2  # dropped connections
    st.errors500[100] = 2  # server errors
    st.slow[150] = 1  # slower than the client's timeout once
    st.slow_seconds = 1.0
    st.throttle[200] = 1  # 429 with Retry-After
    st.retry_after = "3"
    st.expire_every = 2  # tokens die every two requests → 401 → refresh
    st.malformed[250] = 1  # a truncated body once
    sleeps = Sleeps()
    with make_client(server, sleeps, timeout=0.5) as c:
        res = c.fetch_all(tmp_path / "out.gpkg", progress=False)
    ids = _ids(tmp_path / "out.gpkg")
    assert len(ids) == len(set(ids)) == len(raw_records)
    assert set(ids) == set(small_registry["id"])
    assert 3.0 in sleeps  # honoured Retry-After
    assert "refresh_token" in st.token_grants  # refreshed after a 401
    assert res.retries >= 2 + 2 + 1 + 1 + 1


def test_total_changing_mid_fetch_refetches(server, raw_records, tmp_path):
    new = [dict(raw_records[0], id=9_000_000 + k) for k in range(7)]
    server.state.insert_rows = new
    server.state.insert_after_pages = 3  # rows appear at the front: offsets shift
    with make_client(server) as c:
        res = c.fetch_all(tmp_path / "out.jsonl", progress=False)
    ids = _ids(tmp_path / "out.jsonl")
    expected = {r["id"] for r in raw_records} | {r["id"] for r in new}
    assert len(ids) == len(set(ids)) == len(expected) and set(ids) == expected
    assert res.passes == 2 and res.total == len(expected)


def test_resume_after_failure_starts_at_last_complete_page(server, raw_records, tmp_path):
    st = server.state
    st.drop[150] = 100  # the network dies at the fourth page
    out = tmp_path / "out.parquet"
    with (
        make_client(server, max_retries=2) as c,
        pytest.raises(ClientError, match="after 3 attempts"),
    ):
        c.fetch_all(out, progress=False)
    assert not out.exists()
    staged = sorted(p.name for p in (tmp_path / ".out.parquet.parts").glob("page-*.jsonl"))
    assert staged == [
        "page-000000000000.jsonl",
        "page-000000000050.jsonl",
        "page-000000000100.jsonl",
    ]
    st.drop.clear()
    st.log.clear()
    with make_client(server) as c:
        res = c.fetch_all(out, resume=True, progress=False)
    assert [p["offset"] for _, p in st.log] == [150, 200, 250]
    assert res.resumed_from == 150
    ids = _ids(out)
    assert sorted(ids) == sorted(r["id"] for r in raw_records)


def test_ctrl_c_keeps_complete_pages_and_resume_finishes(server, raw_records, tmp_path):
    out = tmp_path / "out.csv"

    def interrupt(offset, page):
        if offset == 100:
            raise KeyboardInterrupt

    with make_client(server) as c, pytest.raises(KeyboardInterrupt):
        c.fetch_all(out, progress=False, on_page=interrupt)
    assert not out.exists()
    server.state.log.clear()
    with make_client(server) as c:
        c.fetch_all(out, resume=True, progress=False)
    assert [p["offset"] for _, p in server.state.log] == [150, 200, 250]
    assert sorted(_ids(out)) == sorted(r["id"] for r in raw_records)


def test_without_resume_a_new_fetch_starts_over(server, raw_records, tmp_path):
    out = tmp_path / "out.parquet"
    server.state.drop[100] = 100
    with make_client(server, max_retries=1) as c, pytest.raises(ClientError):
        c.fetch_all(out, progress=False)
    server.state.drop.clear()
    server.state.log.clear()
    with make_client(server) as c:
        c.fetch_all(out, progress=False)
    assert [p["offset"] for _, p in server.state.log][0] == 0


def test_incremental_and_criteria_reach_the_server(server, raw_records, tmp_path):
    since = sorted(r["updated_at"] for r in raw_records)[200]
    with make_client(server) as c:
        c.fetch_all(
            tmp_path / "inc.parquet", updated_since=since, criteria={"rooms_min": 2}, progress=False
        )
    g = read_registry(tmp_path / "inc.parquet")
    expected = {
        r["id"]
        for r in raw_records
        if r["updated_at"] >= since and r["rooms"] is not None and r["rooms"] >= 2
    }
    assert set(g["id"]) == expected and len(g) == len(expected) > 0
    assert all(p.get("updated_at_min") == since for _, p in server.state.log)


def test_unknown_criterion_is_refused_before_any_request(server, tmp_path):
    with make_client(server) as c, pytest.raises(InputError) as err:
        c.fetch_all(tmp_path / "x.parquet", criteria={"room_min": 2}, progress=False)
    assert err.value.field == "room_min" and "rooms_min" in str(err.value)
    assert server.state.log == [] and server.state.token_grants == []


def test_criteria_validation():
    assert validate_criteria({"rooms_min": 2, "county_code": "05"}) == {
        "rooms_min": "2",
        "county_code": "05",
    }
    with pytest.raises(InputError, match="greater than"):
        validate_criteria({"rooms_min": 5, "rooms_max": 2})
    with pytest.raises(InputError, match="date"):
        validate_criteria({"updated_at_min": "yesterday"})
    with pytest.raises(InputError, match="whole number"):
        validate_criteria({"apartment_nr": "11a"})
    with pytest.raises(InputError, match="special access"):
        validate_criteria({"SSN": "202005302399"})
    assert validate_criteria({"sensitive_data": 0}, allow_special=True) == {"sensitive_data": "0"}


def test_malformed_pages_beyond_retries_name_the_offset(server, tmp_path):
    server.state.malformed[50] = 100
    with make_client(server, max_retries=2) as c, pytest.raises(ParseError, match="offset 50"):
        c.fetch_all(tmp_path / "x.parquet", progress=False)


def test_bad_credentials_and_missing_credentials(server, tmp_path):
    settings = ValueguardSettings(
        _env_file=None,
        base_url=server.url,
        username=USER,
        password="wrong-password-123",
        max_retries=1,
        backoff=0.01,
    )
    with ValueguardClient(settings) as c, pytest.raises(ClientError) as err:
        c.count()
    assert "401" in str(err.value) and "wrong-password-123" not in str(err.value)
    with (
        ValueguardClient(ValueguardSettings(_env_file=None, base_url=server.url)) as c,
        pytest.raises(ClientError, match="VGGEO_VALUEGUARD_USERNAME"),
    ):
        c.count()


def test_credentials_from_env_and_never_logged(
    server, raw_records, tmp_path, monkeypatch, caplog, capfd
):
    monkeypatch.setenv("VGGEO_VALUEGUARD_USERNAME", USER)
    monkeypatch.setenv("VGGEO_VALUEGUARD_PASSWORD", PASSWORD)
    monkeypatch.setenv("VGGEO_VALUEGUARD_BASE_URL", server.url)
    monkeypatch.setenv("VGGEO_VALUEGUARD_PAGE_SIZE", "50")
    monkeypatch.setenv("VGGEO_VALUEGUARD_BACKOFF", "0.01")
    server.state.expire_every = 2
    server.state.errors500[100] = 1
    server.state.drop[50] = 1
    caplog.set_level(logging.DEBUG)
    settings = ValueguardSettings()
    assert USER not in repr(settings) and PASSWORD not in repr(settings)
    with ValueguardClient(settings) as c:
        c.fetch_all(tmp_path / "o.parquet", progress=True)
        tokens = [t for t in (c._access, c._refresh) if t]
    out, err = capfd.readouterr()
    logged = caplog.text + out + err
    assert "HTTP Request" in caplog.text  # httpx did log its requests …
    assert "access_token=***" in caplog.text
    for secret in (USER, PASSWORD, *tokens):  # … but never a credential or token
        assert secret not in logged
    # Credentials travel in the POST body, never in a URL.
    assert not any(PASSWORD in line or USER in line for line in server.state.requests_seen)


def test_redact():
    assert redact("GET /x?access_token=abc123&offset=5") == "GET /x?access_token=***&offset=5"
    assert redact("user=me pw hunter22", ("hunter22",)) == "user=me pw ***"


def test_a_server_repeating_an_id_is_reported(raw_records, tmp_path):
    rows = list(raw_records) + [dict(raw_records[10])]  # the same residence twice
    with RegistryServer(rows, username=USER, password=PASSWORD) as srv:
        with make_client(srv) as c, pytest.raises(ClientError, match="distinct rows"):
            c.fetch_all(tmp_path / "x.parquet", progress=False, max_passes=2)
        assert not (tmp_path / "x.parquet").exists()
        assert [p["offset"] for _, p in srv.state.log].count(0) == 2  # fetched twice, then gave up


# --- failing fast, bounded attempts -------------------------------------------------------------


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_host_fails_at_once_with_one_clear_message(caplog):
    import time

    sleeps = Sleeps()
    settings = ValueguardSettings(
        _env_file=None,
        base_url=f"http://127.0.0.1:{_closed_port()}",
        username=USER,
        password=PASSWORD,
        max_retries=6,
        backoff=1.0,
    )
    caplog.set_level(logging.WARNING)
    t0 = time.perf_counter()
    with ValueguardClient(settings, sleep=sleeps) as c, pytest.raises(ClientError) as err:
        c.count()
    assert time.perf_counter() - t0 < 3
    assert "cannot reach http://127.0.0.1:" in str(
        err.value
    ) and "VGGEO_VALUEGUARD_BASE_URL" in str(err.value)
    assert sleeps == [] and c.requests == 1  # no retry of a host that never answered
    assert PASSWORD not in str(err.value) and PASSWORD not in caplog.text


def test_attempts_are_bounded_once_and_logged_as_k_of_n(server, tmp_path, caplog):
    import re

    server.state.errors500[50] = 100  # the second page never comes
    caplog.set_level(logging.WARNING)
    with (
        make_client(server, max_retries=3) as c,
        pytest.raises(ClientError, match="after 4 attempts"),
    ):
        c.fetch_all(tmp_path / "x.parquet", progress=False)
    assert [p["offset"] for _, p in server.state.log].count(50) == 4  # not (n+1)²
    said = re.findall(r"attempt (\d+) of (\d+)", caplog.text)
    assert said == [("1", "4"), ("2", "4"), ("3", "4"), ("4", "4")]


def test_broken_bodies_share_the_same_attempt_budget(server, tmp_path):
    server.state.malformed[50] = 100
    with make_client(server, max_retries=2) as c, pytest.raises(ParseError):
        c.fetch_all(tmp_path / "x.parquet", progress=False)
    assert [p["offset"] for _, p in server.state.log].count(50) == 3


def test_retry_after_as_a_date_and_5xx_then_success(server, raw_records, tmp_path):
    import email.utils
    import time

    server.state.throttle[0] = 1
    server.state.retry_after = email.utils.formatdate(time.time() + 2, usegmt=True)
    server.state.errors500[50] = 1
    sleeps = Sleeps()
    with make_client(server, sleeps) as c:
        res = c.fetch_all(tmp_path / "x.parquet", progress=False)
    assert res.rows == len(raw_records) and res.retries == 2
    assert 0.5 < sleeps[0] <= 2.0  # waited until the date the server named


def test_tokens_are_an_httpx_auth_refreshed_on_401(server, tmp_path):
    import httpx

    from vggeo.registry.client import ValueguardAuth

    server.state.expire_every = 1
    with make_client(server) as c:
        c.fetch_all(tmp_path / "x.parquet", progress=False)
        assert isinstance(c.auth, ValueguardAuth) and isinstance(c.auth, httpx.Auth)
    grants = server.state.token_grants
    assert grants[0] == "password" and grants.count("refresh_token") >= 5


# --- special criteria and address LIKE -----------------------------------------------------------


def _luhn_ok(ten: str) -> bool:
    total = sum(
        (int(c) * (2 - k % 2)) // 10 + (int(c) * (2 - k % 2)) % 10 for k, c in enumerate(ten[:9])
    )
    return (10 - total % 10) % 10 == int(ten[9])


def test_personnummer_checked_and_written_in_twelve_digits():
    import datetime as dt

    from vggeo.registry.client import normalise_personnummer

    today = dt.date(2026, 12, 1)
    assert normalise_personnummer("202005302399", today=today) == "202005302399"  # seed 000
    assert normalise_personnummer("200530-2399", today=today) == "202005302399"
    assert normalise_personnummer("20200530-2399", today=today) == "202005302399"
    assert normalise_personnummer("200530+2399", today=today) == "192005302399"  # 100+ years
    assert _luhn_ok("2005302399") and not _luhn_ok("2005302398")
    for bad in ("202005302398", "hello", "20201330-2399", "2005302"):
        with pytest.raises(InputError) as err:
            normalise_personnummer(bad, today=today)
        assert bad not in str(err.value)  # never repeated


def test_special_criteria_need_the_flag_and_valid_values():
    with pytest.raises(InputError, match="special access"):
        validate_criteria({"sensitive_data": 0})
    assert validate_criteria({"sensitive_data": "1"}, allow_special=True) == {"sensitive_data": "1"}
    for bad in (7, "yes", ""):
        with pytest.raises(InputError, match="0 .* or 1"):
            validate_criteria({"sensitive_data": bad}, allow_special=True)
    with pytest.raises(InputError) as err:
        validate_criteria({"SSN": "hello"}, allow_special=True)
    assert "hello" not in str(err.value)
    with pytest.raises(InputError, match="did you mean address"):
        validate_criteria({"adress": "Torgatan"})


def test_ssn_is_never_logged_nor_staged(server, raw_records, tmp_path, caplog, capfd):
    ssn = "202005302399"
    server.state.drop[100] = 100
    caplog.set_level(logging.DEBUG)
    out = tmp_path / "o.parquet"
    with make_client(server, max_retries=1) as c, pytest.raises(ClientError):
        c.fetch_all(
            out, criteria={"SSN": ssn, "sensitive_data": 0}, allow_special=True, progress=False
        )
    assert any("SSN" in p for _, p in server.state.log)  # it did reach the API …
    staged = tmp_path / ".o.parquet.parts"
    state = (staged / "state.json").read_text()
    assert ssn not in state and "SSN" in state  # … but the state names it, never its value
    assert '"sensitive_data"' in state and '"sensitive_data": "0"' not in state
    logged = caplog.text + "".join(capfd.readouterr())
    assert ssn not in logged and "200530" not in logged
    with make_client(server) as c, pytest.raises(InputError, match="cannot be resumed"):
        c.fetch_all(out, criteria={"SSN": ssn}, allow_special=True, resume=True, progress=False)


def test_address_is_a_like_match_and_exact_keeps_only_the_address(raw_records, tmp_path):
    rows = [dict(r) for r in raw_records[:12]]
    for k, (street, nr) in enumerate(
        [("Torgatan", 1), ("Storgatan", 1), ("Torgatan", 12), ("torgatan", 1), ("Torgatan", 2)]
    ):
        rows[k].update(
            street=street,
            number=[nr],
            letter="",
            address=f"{street} {nr}, 65341",
            apartment_nr=None,
        )
    with RegistryServer(rows, username=USER, password=PASSWORD) as srv, make_client(srv) as c:
        like = c.fetch_all(
            tmp_path / "like.parquet", criteria={"address": "Torgatan 1"}, progress=False
        )
        exact = c.fetch_all(
            tmp_path / "exact.parquet",
            criteria={"address": "Torgatan 1"},
            exact_address=True,
            progress=False,
        )
        street = c.fetch_all(
            tmp_path / "street.parquet",
            criteria={"address": "torgatan"},
            exact_address=True,
            progress=False,
        )
    got = lambda p: sorted(read_registry(p)["address"])  # noqa: E731
    assert got(tmp_path / "like.parquet") == [
        "Storgatan 1, 65341",
        "Torgatan 1, 65341",
        "Torgatan 12, 65341",
        "torgatan 1, 65341",
    ]
    assert got(tmp_path / "exact.parquet") == ["Torgatan 1, 65341", "torgatan 1, 65341"]
    assert like.rows == 4 and exact.rows == 2 and exact.dropped_inexact == 2 and exact.total == 4
    assert got(tmp_path / "street.parquet") == [
        "Torgatan 1, 65341",
        "Torgatan 12, 65341",
        "Torgatan 2, 65341",
        "torgatan 1, 65341",
    ]
    assert street.rows == 4


def test_resume_state_holds_what_the_docstring_says(server, tmp_path):
    import json as _json

    server.state.drop[100] = 100
    out = tmp_path / "o.jsonl"
    with make_client(server, max_retries=0) as c, pytest.raises(ClientError):
        c.fetch_all(
            out, criteria={"rooms_min": 2, "sensitive_data": 0}, allow_special=True, progress=False
        )
    state = _json.loads((tmp_path / ".o.jsonl.parts" / "state.json").read_text())
    assert set(state) == {"ident", "pass", "total", "pages"}
    assert state["ident"] == {
        "endpoint": "/v1/residential/registry",
        "page_size": 50,
        "criteria": {"rooms_min": "2"},
        "private_criteria": ["sensitive_data"],
    }
    assert [p["offset"] for p in state["pages"]] == [0, 50]
    assert '"0"' not in _json.dumps(state["ident"])
