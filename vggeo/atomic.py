"""Writing an output file so that it appears complete or not at all: :func:`atomic_path`.

Every writer of a user-facing file (GeoParquet, GeoPackage, CSV, JSON lines, reports) writes to a
temporary name beside the target and renames it into place only when the write succeeded. An
error or Ctrl-C leaves the target exactly as it was and removes the temporary file (and SQLite's
side files). A process killed outright (SIGKILL, a power cut) cannot clean up: the next write of
the same target removes the temporary files such a process left (:func:`sweep_stale`). The renamed file gets the permissions a plain ``open(path, "w")`` would give it: the
old file's mode when it replaces one, else ``0666`` less the process umask (``0644`` usually).
Temporary files made by :func:`tempfile.mkstemp` are ``0600``; without this step every output
would be unreadable to the user's group and to services (a tile server, a web server) that run as
another user.
"""

from __future__ import annotations

import glob
import os
import re
import secrets
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vggeo.errors import InputError

__all__ = ["atomic_path", "default_file_mode", "sweep_stale", "STALE_AFTER_SECONDS"]

#: Side files SQLite (GeoPackage) may leave beside a database while it is open.
_SQLITE_SIDE_FILES = ("-journal", "-wal", "-shm")

#: A temporary file untouched for this long whose process is gone is left over from a kill.
STALE_AFTER_SECONDS = 600


def _umask() -> int:
    """The process umask, read without changing it where the system allows."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    # Elsewhere the only way is to set it and put it back (a brief window for other threads).
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def default_file_mode() -> int:
    """The permission bits a new file gets from ``open(path, "w")``: ``0o666`` less the umask."""
    return 0o666 & ~_umask()


@contextmanager
def atomic_path(
    path: str | os.PathLike, *, overwrite: bool = True, mode: int | None = None
) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place only on success.

    The temporary name keeps the target's extension (GDAL and QGIS look at it) and does not exist
    yet when yielded: the writer creates it. An exception or Ctrl-C removes it, so ``path`` is
    either the complete new file or whatever it was before.

    Parameters
    ----------
    path
        The file to write.
    overwrite
        Replace an existing file; otherwise an existing ``path`` is refused before anything is
        written.
    mode
        Permission bits of the new file (e.g. ``0o600`` for a file holding secrets); by default
        those of the file it replaces, or of any new file.

    Raises
    ------
    InputError
        ``path`` exists and ``overwrite`` is false.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise InputError(
            f"{path} exists; pass overwrite=True (CLI: --overwrite) to replace it", file=str(path)
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}-{secrets.token_hex(4)}.part{path.suffix}")
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(2, "the writer produced no file", str(tmp))
        os.chmod(tmp, _target_mode(path) if mode is None else mode)
        os.replace(tmp, path)
    finally:
        for p in (tmp, *(Path(f"{tmp}{side}") for side in _SQLITE_SIDE_FILES)):
            p.unlink(missing_ok=True)


def _target_mode(path: Path) -> int:
    """The replaced file's permission bits, or those of a new file."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return default_file_mode()


_PART = re.compile(
    r"^\.(?P<stem>.*)\.(?P<pid>\d+)-[0-9a-f]{8}\.part(?P<suffix>.*?)(?P<side>-journal|-wal|-shm)?$"
)


def _alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this machine (one we may not signal counts too)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, as another user
        return True
    return True


def sweep_stale(path: str | os.PathLike, *, older_than: float = STALE_AFTER_SECONDS) -> list[Path]:
    """Remove the temporary files a killed writer of ``path`` left beside it; return them.

    A temporary file of :func:`atomic_path` (``.<stem>.<pid>-<hex>.part<suffix>`` and SQLite's
    side files of it) is stale when its process no longer runs *and* it has not been modified for
    ``older_than`` seconds. The second condition keeps the files of a writer on another machine
    (a shared folder, where the process number means nothing here): a live writer keeps touching
    its file. Files that cannot be removed are left as they are.
    """
    path = Path(path)
    removed: list[Path] = []
    try:
        candidates = list(path.parent.glob(f".{glob.escape(path.stem)}.*.part*"))
    except OSError:
        return removed
    now = time.time()
    for p in candidates:
        m = _PART.match(p.name)
        if m is None or m["stem"] != path.stem or m["suffix"] != path.suffix:
            continue
        try:
            if now - p.lstat().st_mtime < older_than or _alive(int(m["pid"])):
                continue
            if p.is_symlink() or not p.is_file():
                continue
            p.unlink()
        except OSError:
            continue
        removed.append(p)
    return removed
