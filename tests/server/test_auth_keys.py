"""API keys at rest: the keys file holds salted (peppered) HMAC-SHA-256 digests, never a key; the
``vggeo keys`` commands print a key once and refuse what they cannot do with one line, exit 2."""

from __future__ import annotations

import hashlib
import hmac
import json
import stat

import pytest
from click.testing import CliRunner

from vggeo.cli import cli


def _entry(path, key_id):
    return next(k for k in json.loads(path.read_text())["keys"] if k["id"] == key_id)


def test_the_keys_file_holds_the_documented_digest_and_never_the_key(tmp_path):
    from vggeo_server.auth.keys import create_key

    path = tmp_path / "keys.json"
    pepper = b"server-side secret"
    key, entry = create_key(path, name="bank", scopes=["residences", "metrics"], pepper=pepper)
    text = path.read_text()
    _, kid, secret = key.split("_", 2)
    assert key not in text and secret not in text and secret[:16] not in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    raw = _entry(path, kid)
    # the digest as the module docstring defines it, computed here with hmac/hashlib
    expected = hmac.new(pepper, bytes.fromhex(raw["salt"]) + secret.encode(), hashlib.sha256)
    assert raw["hash"] == expected.hexdigest()
    assert raw["scopes"] == ["metrics", "residences"] and raw["name"] == "bank"
    assert len(bytes.fromhex(raw["salt"])) >= 16 and len(secret) >= 43  # 256 random bits


def test_keys_verify_in_the_store_and_nothing_else_does(tmp_path):
    from vggeo_server.auth.keys import KeyStore, create_key

    path = tmp_path / "keys.json"
    a, _ = create_key(path, name="a", scopes=["residences"])
    b, _ = create_key(path, name="b", scopes=["provisions"])
    store = KeyStore(path)
    assert store.verify(a).scopes == {"residences"} and store.verify(b).scopes == {"provisions"}
    prefix, kid, secret = a.split("_", 2)
    flipped = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    for wrong in (
        f"{prefix}_{kid}_{flipped}",
        b.replace(b.split("_", 2)[1], kid),
        a + "x",
        a.upper(),
        "",
        "vgk_",
        a[:-1],
    ):
        assert store.verify(wrong) is None, wrong


def test_a_wrong_or_missing_pepper_is_refused_at_start(tmp_path):
    from vggeo.errors import SettingsError
    from vggeo_server.auth.keys import KeyStore, create_key

    path = tmp_path / "keys.json"
    create_key(path, name="a", scopes=["residences"], pepper=b"one")
    with pytest.raises(SettingsError, match="pepper"):
        KeyStore(path, pepper=b"two")
    with pytest.raises(SettingsError, match="pepper"):
        KeyStore(path)
    with pytest.raises(SettingsError, match="pepper"):
        create_key(path, name="b", scopes=["residences"], pepper=b"two")


@pytest.mark.parametrize(
    "content, match",
    [
        ("{", "JSON"),
        ('{"keys": []}', "not a vggeo API keys file"),
        ('{"vggeo_api_keys": 1, "keys": [{"id": "abcdefghij"}]}', "key #1"),
        (
            '{"vggeo_api_keys": 1, "keys": [{"id": "abcdefghij", "scopes": ["root"], "salt": "00",'
            ' "hash": "00"}]}',
            "unknown scope 'root'",
        ),
    ],
)
def test_a_bad_keys_file_is_named_with_what_is_wrong(tmp_path, content, match):
    from vggeo.errors import SettingsError
    from vggeo_server.auth.keys import KeyStore

    path = tmp_path / "keys.json"
    path.write_text(content)
    with pytest.raises(SettingsError, match=match) as err:
        KeyStore(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_cli_creates_lists_and_revokes_keys(tmp_path):
    path = tmp_path / "keys.json"
    runner = CliRunner()
    r = runner.invoke(
        cli,
        [
            "keys",
            "create",
            "--file",
            str(path),
            "--name",
            "analytics",
            "--scope",
            "residences",
            "--scope",
            "residences:attributes",
            "--expires",
            "2099-01-01",
        ],
    )
    assert r.exit_code == 0, r.output
    key = r.stdout.strip()
    assert key.startswith("vgk_") and "\n" not in key
    assert key not in path.read_text()
    listed = runner.invoke(cli, ["keys", "list", "--file", str(path), "--json"])
    row = json.loads(listed.stdout)
    assert row["name"] == "analytics" and row["expires"] == "2099-01-01T00:00:00Z"
    assert key not in listed.stdout and "hash" not in row
    from vggeo_server.auth.keys import KeyStore

    assert KeyStore(path).verify(key) is not None
    gone = runner.invoke(cli, ["keys", "revoke", "--file", str(path), row["id"]])
    assert gone.exit_code == 0 and KeyStore(path).verify(key) is None


@pytest.mark.parametrize(
    "args, match",
    [
        (["--scope", "admin"], "unknown scope 'admin'"),
        (["--scope", "residences", "--expires", "yesterday"], "--expires"),
        (["--scope", "residences", "--expires", "2001-01-01"], "past"),
    ],
)
def test_cli_refuses_with_one_line_and_exit_2(tmp_path, args, match):
    r = CliRunner().invoke(
        cli, ["keys", "create", "--file", str(tmp_path / "k.json"), "--name", "x", *args]
    )
    assert r.exit_code == 2, r.output
    assert match in r.output and len(r.output.strip().splitlines()) == 1
    assert not (tmp_path / "k.json").exists()
    r = CliRunner().invoke(cli, ["keys", "revoke", "--file", str(tmp_path / "k.json"), "abc"])
    assert r.exit_code == 2 and "no such keys file" in r.output
