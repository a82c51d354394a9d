"""Real external parts for the tests: GDAL (as an oracle), PostGIS, Chromium, QGIS.

Each helper finds a Debian-installed part or, where it is absent, skips with a message that names
the missing package. In CI (``VGGEO_REQUIRE_SYSTEM=1``, set by ``.ci/run``) a missing part fails
the test instead, so a green CI cannot hide a skipped oracle.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from contextlib import closing, contextmanager
from pathlib import Path

import pytest

SYSTEM_PYTHON = "/usr/bin/python3"
REQUIRED = os.environ.get("VGGEO_REQUIRE_SYSTEM") == "1"


def missing(what: str, packages: str) -> None:
    """Skip (or, in CI, fail) because a system part is absent."""
    msg = f"{what} not available: install Debian package(s) {packages}"
    if REQUIRED:
        pytest.fail(msg + " (VGGEO_REQUIRE_SYSTEM=1)")
    pytest.skip(msg)


def require_command(cmd: str, packages: str) -> str:
    path = shutil.which(cmd)
    if path is None:
        missing(f"command {cmd!r}", packages)
    return path  # type: ignore[return-value]


def _system_python_has(module: str) -> bool:
    if not Path(SYSTEM_PYTHON).exists():
        return False
    r = subprocess.run(
        [SYSTEM_PYTHON, "-c", f"import {module}"],
        capture_output=True,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    return r.returncode == 0


def run_system_python(
    code: str,
    *args: str,
    module: str = "osgeo",
    packages: str = "python3-gdal",
    timeout: float = 300,
) -> subprocess.CompletedProcess:
    """Run ``code`` in Debian's Python (which has python3-gdal / python3-qgis), not our venv."""
    if not _system_python_has(module):
        missing(f"{module} for {SYSTEM_PYTHON}", packages)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["QT_QPA_PLATFORM"] = "offscreen"
    return subprocess.run(
        [SYSTEM_PYTHON, "-c", code, *args], capture_output=True, text=True, env=env, timeout=timeout
    )


def gdal_json(code: str, *args: str) -> object:
    """Run ``code`` under system Python with GDAL; it must print one JSON document."""
    r = run_system_python(code, *args)
    if r.returncode != 0:
        raise AssertionError(f"GDAL oracle failed:\n{r.stderr}")
    return json.loads(r.stdout)


# --- GDAL's GeoPackage validator -----------------------------------------------------------------

_VALIDATE_GPKG = """
import json, sys
from osgeo import ogr
from osgeo_utils.samples import validate_gpkg as v

path = sys.argv[1]
checker = v.GPKGChecker(path, abort_at_first_error=False, extra_checks=True, warning_msg=False)
checker.check()
ds = ogr.Open(path)
empty = 0
for i in range(ds.GetLayerCount()):
    for feature in ds.GetLayer(i):
        g = feature.GetGeometryRef()
        empty += g is not None and g.IsEmpty()
print(json.dumps({"errors": [[r, m] for r, m in checker.errors], "warnings": checker.warnings,
                  "empty": empty}))
"""

#: GDAL 3.6's validate_gpkg.py reads the empty-geometry flag from bit 3 of the blob header's
#: flags instead of bit 4 (fixed in later GDAL), so it reports this for every correctly flagged
#: empty geometry.
_EMPTY_FLAG_BUG = "Inconsistent empty_flag vs geometry content"


def validate_gpkg(path: str | os.PathLike) -> list[str]:
    """GDAL's ``validate_gpkg.py`` (all checks, extra checks, warnings too): its complaints.

    An empty list means the file passed. The one known false report of GDAL 3.6's validator
    (:data:`_EMPTY_FLAG_BUG`) is set aside only when its count equals the number of geometries
    GDAL itself reads as empty and each of those blobs carries the standard's empty flag (bit 4);
    otherwise it is returned like any other complaint.
    """
    import sqlite3

    doc = gdal_json(_VALIDATE_GPKG, str(path))
    problems = [f"Req {r}: {m}" if r else m for r, m in doc["errors"] if m != _EMPTY_FLAG_BUG]
    problems += [f"warning: {w}" for w in doc["warnings"]]
    reported = sum(m == _EMPTY_FLAG_BUG for _, m in doc["errors"])
    with closing(sqlite3.connect(path)) as conn:
        flagged = 0
        for table, column in conn.execute(
            "SELECT table_name, column_name FROM gpkg_geometry_columns"
        ).fetchall():
            blobs = conn.execute(f'SELECT "{column}" FROM "{table}" WHERE "{column}" NOT NULL')
            flagged += sum(bool(blob[3] & 0b10000) for (blob,) in blobs)
    if reported not in (0, doc["empty"]) or flagged != doc["empty"]:
        problems.append(
            f"{reported} x '{_EMPTY_FLAG_BUG}', {flagged} blobs flagged empty, "
            f"{doc['empty']} geometries GDAL reads as empty"
        )
    return problems


# --- PostGIS ------------------------------------------------------------------------------------


def _pg_bindir() -> Path | None:
    for base in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (base / "initdb").exists() and (base / "pg_ctl").exists():
            return base
    return None


def _postgis_available(bindir: Path) -> bool:
    ext = Path("/usr/share/postgresql") / bindir.parent.name / "extension"
    return (ext / "postgis.control").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def postgis_cluster():
    """A throwaway PostgreSQL cluster with PostGIS: initdb in a temp dir, a free port, removed after.

    Yields a ``postgresql://`` URL of a database with ``CREATE EXTENSION postgis`` done.
    PostgreSQL refuses to run as root, so as root the cluster runs as the ``postgres`` user.
    """
    bindir = _pg_bindir()
    if bindir is None:
        missing("PostgreSQL server (initdb)", "postgresql")
    if not _postgis_available(bindir):
        missing("PostGIS extension", "postgis")
    as_root = os.geteuid() == 0
    tmp = Path(tempfile.mkdtemp(prefix="vggeo-pg-"))
    data, sock = tmp / "data", tmp / "sock"
    sock.mkdir()
    pre: list[str] = []
    if as_root:
        shutil.chown(tmp, "postgres")
        shutil.chown(sock, "postgres")
        pre = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    log = tmp / "log"

    def run(*cmd: str) -> None:
        subprocess.run([*pre, *cmd], check=True, capture_output=True, text=True)

    run(
        str(bindir / "initdb"),
        "-D",
        str(data),
        "-U",
        "postgres",
        "-A",
        "trust",
        "--no-sync",
        "-E",
        "UTF8",
        "--locale=C",
    )
    opts = (
        f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", opts, "-w", "start")
    try:
        run(str(bindir / "createdb"), "-h", str(sock), "-p", str(port), "-U", "postgres", "vggeo")
        run(
            str(bindir / "psql"),
            "-h",
            str(sock),
            "-p",
            str(port),
            "-U",
            "postgres",
            "-d",
            "vggeo",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            "CREATE EXTENSION postgis",
        )
        yield f"postgresql://postgres@127.0.0.1:{port}/vggeo"
    finally:
        subprocess.run(
            [*pre, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
        )
        time.sleep(0.1)
        shutil.rmtree(tmp, ignore_errors=True)


def chromium_path() -> str:
    for cand in ("/usr/bin/chromium", "/usr/bin/chromium-browser"):
        if Path(cand).exists():
            return cand
    missing("Chromium", "chromium")
    raise AssertionError("unreachable")
