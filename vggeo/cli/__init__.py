"""The ``vggeo`` command.

One click group; every subcommand is a thin wrapper over a library call and lives in the module of
its area, which adds itself through a ``register(group)`` function:

=================  ==========================================================================
module             commands
=================  ==========================================================================
``transform``      ``vggeo transform``
``registry``       ``vggeo registry load|check|fetch``, ``vggeo sample registry``
``lm``             ``vggeo inspect``, ``vggeo read``, ``vggeo sample delivery``
``store``          ``vggeo ingest``, ``vggeo store status``
``export``         ``vggeo export gpkg|parquet``, ``vggeo join``
``tiles``          ``vggeo tiles export|basemap``
(entry points)     ``vggeo serve``, ``vggeo keys create|list|revoke``: from the server package,
                   ``vggeo_server.cli``, through the ``vggeo.commands`` entry point group, so
                   that nothing in :mod:`vggeo` imports the server
=================  ==========================================================================

Heavy libraries are imported inside command functions so that ``--help`` stays fast. Results go
to stdout; logs, progress and errors to stderr. Every :class:`vggeo.errors.VggeoError` (and a
missing or unreadable input file, or an optional dependency that is not installed, named with the
extra that installs it) becomes a one-line message and exit code 2 — never a traceback.
Any other exception is a bug: it too becomes one line and exit code 2, naming the input that was
being read and asking for a report; ``--debug`` (or ``VGGEO_DEBUG=1``) adds the traceback. Ctrl-C
exits with 130, and every store is left as it was (writes are transactions).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import os
import sqlite3
import sys
import traceback
from typing import IO, Any

import click

from vggeo._version import __version__
from vggeo.errors import MissingExtraError, VggeoError, current_input, note_input, printable

#: Subcommand modules, in help order. Each defines ``register(group: click.Group) -> None``.
COMMAND_MODULES = ("transform", "registry", "lm", "store", "export", "tiles")
#: Entry point group of commands other packages add (each a ``register(group)`` function).
COMMAND_ENTRY_POINTS = "vggeo.commands"

EXIT_INPUT = 2
EXIT_INTERRUPTED = 130


EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports a pipe closed by its reader

#: click's own control flow, which passes through the guard untouched.
_CLICK_FLOW = (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort)


class InputFailure(click.ClickException):
    """A usage or input error: one line on stderr, exit code 2."""

    exit_code = EXIT_INPUT

    def show(self, file: IO[Any] | None = None) -> None:
        # One line, whatever the message holds (a newline in a file name, a bidi override).
        click.echo(f"vggeo: error: {printable(self.format_message())}", err=True)


def _debug(ctx: click.Context) -> bool:
    return bool(ctx.find_root().params.get("debug"))


def _inputs(ctx: click.Context) -> list[str]:
    """The command line's arguments that are existing files or folders (what was being read)."""
    args = ctx.find_root().meta.get("vggeo.args", [])
    return [a for a in args if not a.startswith("-") and os.path.exists(a)]


def _command_line_path(ctx: click.Context) -> str:
    """The command being run as the user typed it (``vggeo tiles export``), options left out.

    Found again from the arguments because click has left the subcommands' contexts when the
    error reaches the root group.
    """
    root = ctx.find_root()
    command: click.Command = root.command
    words = ["vggeo"]  # the program's name, also when invoked as a function (click's test runner)
    for arg in root.meta.get("vggeo.args", []):
        if arg.startswith("-"):
            continue
        sub = command.get_command(root, arg) if isinstance(command, click.Group) else None
        if sub is None:
            break
        words.append(arg)
        command = sub
    return " ".join(words)


def bug_report(err: BaseException, ctx: click.Context) -> str:
    """The one line shown for an exception vggeo did not expect: where, what, and what to do."""
    where = current_input() or ", ".join(_inputs(ctx)) or "the command line"
    hint = "" if _debug(ctx) else " (run it again with --debug for the details)"
    what = str(err) if len(str(err)) <= 300 else str(err)[:300] + " …"
    return (
        f"unexpected {type(err).__name__} in `{_command_line_path(ctx)}` while processing "
        f"{where}: {what}. This is a bug in vggeo {__version__}; please report it with this "
        f"line{hint}"
    )


#: SQLite's result codes (extended codes start with them) that say what became of a file or the
#: machine, not what vggeo did, and whether the line names the store: a damaged or foreign file,
#: one this user may not write, another process holding its lock; a full disk, an I/O error.
_SQLITE_CONDITIONS = {
    "SQLITE_CORRUPT": ("the SQLite file is damaged (restore it from a copy)", True),
    "SQLITE_NOTADB": ("not an SQLite file", True),
    "SQLITE_READONLY": ("the file cannot be written", True),
    "SQLITE_PERM": ("the file cannot be written", True),
    "SQLITE_CANTOPEN": ("the file cannot be opened", True),
    "SQLITE_BUSY": ("another process holds the file's lock; try again when it is done", True),
    "SQLITE_LOCKED": ("another process holds the file's lock; try again when it is done", True),
    "SQLITE_FULL": ("the disk is full", False),
    "SQLITE_IOERR": ("an I/O error", False),
}


def _sqlite_condition(err: sqlite3.DatabaseError, ctx: click.Context) -> str | None:
    """One line for an SQLite error that is a file's or the machine's condition (naming the
    store the command was given, else the input being read); ``None`` for any other."""
    name = getattr(err, "sqlite_errorname", "") or ""
    hit = next((v for k, v in _SQLITE_CONDITIONS.items() if name.startswith(k)), None)
    if hit is None:
        return None
    said, of_file = hit
    if not of_file:
        return f"{said}: {err}"
    where = _store_arg(ctx) or current_input() or ", ".join(_inputs(ctx)) or "the store"
    return f"{where}: {said}: {err}"


def _store_arg(ctx: click.Context) -> str | None:
    """The value of ``--store`` on the command line, if one was given."""
    args = ctx.find_root().meta.get("vggeo.args", [])
    for i, arg in enumerate(args):
        if arg == "--store" and i + 1 < len(args):
            return str(args[i + 1])
        if arg.startswith("--store="):
            return str(arg.partition("=")[2])
    return None


def _one_line(err: click.UsageError) -> InputFailure:
    """A usage error as one line that says where the help is, instead of click's three lines."""
    hint = f" (see '{err.ctx.command_path} --help')" if err.ctx is not None else ""
    # click lays some messages out on lines ("Choose from:\n\ta,\n\tb"): one line of words
    return InputFailure(" ".join(err.format_message().split()) + hint)


class VggeoGroup(click.Group):
    """A click group that turns every error into one line on stderr and an exit code.

    Input errors (:class:`~vggeo.errors.VggeoError`, an unreadable file), usage errors and bugs
    (anything else) alike: exit code 2, one line, no traceback unless ``--debug``. Ctrl-C: exit
    code 130.
    """

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.exceptions.NoArgsIsHelpError:  # bare `vggeo`: click shows the help
            raise
        except click.UsageError as err:  # the root's own options (vggeo --bogus)
            raise _one_line(err) from err

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if ctx.parent is None:
            ctx.meta["vggeo.args"] = list(args)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as err:
            raise _one_line(err) from err
        except _CLICK_FLOW:
            raise
        except VggeoError as err:
            self._trace(ctx)
            raise InputFailure(str(err)) from err
        except ModuleNotFoundError as err:
            self._trace(ctx)
            missing = MissingExtraError.from_import(err, f"`{_command_line_path(ctx)}`")
            raise InputFailure(str(missing) if missing else bug_report(err, ctx)) from err
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as err:
            self._trace(ctx)
            raise InputFailure(f"{err.strerror}: {err.filename}") from err
        except KeyboardInterrupt:
            click.echo("vggeo: interrupted; nothing half-written was kept", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except BrokenPipeError:
            # The reader of stdout went away (| head): not an error of ours, nothing to say.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(EXIT_BROKEN_PIPE)
        except MemoryError as err:
            self._trace(ctx)
            where = current_input() or ", ".join(_inputs(ctx)) or "the input"
            raise InputFailure(f"out of memory while processing {where}") from err
        except OSError as err:  # the machine's trouble (disk full …), not a bug of vggeo's
            self._trace(ctx)
            name = err.filename or current_input()
            raise InputFailure(f"{err.strerror or err}" + (f": {name}" if name else "")) from err
        except sqlite3.DatabaseError as err:
            self._trace(ctx)
            said = _sqlite_condition(err, ctx)
            raise InputFailure(said or bug_report(err, ctx)) from err
        except Exception as err:  # noqa: BLE001 - the guard: every bug becomes one line and exit 2
            self._trace(ctx)
            raise InputFailure(bug_report(err, ctx)) from err

    @staticmethod
    def _trace(ctx: click.Context) -> None:
        if _debug(ctx):
            traceback.print_exc(file=sys.stderr)


@click.group(cls=VggeoGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="vggeo")
@click.option("-v", "--verbose", count=True, help="More log output (repeatable).")
@click.option("-q", "--quiet", count=True, help="Less log output (repeatable).")
@click.option(
    "--debug",
    is_flag=True,
    envvar="VGGEO_DEBUG",
    help="Show the traceback of an error (to report a bug). Env: VGGEO_DEBUG.",
)
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: int, debug: bool) -> None:
    """Swedish residences and land-regulating provisions: coordinates, deliveries, stores, tiles."""
    note_input(None)
    level = logging.WARNING - 10 * (verbose - quiet)
    logging.basicConfig(
        level=max(logging.DEBUG, min(logging.CRITICAL, level)),
        stream=sys.stderr,
        format="%(levelname)s %(name)s: %(message)s",
    )
    ctx.ensure_object(dict)
    ctx.obj["verbosity"] = verbose - quiet


@cli.group(cls=VggeoGroup)
def sample() -> None:
    """Generate realistic synthetic data (registry, deliveries) from a seed."""


for _name in COMMAND_MODULES:
    importlib.import_module(f"vggeo.cli.{_name}").register(cli)
for _entry in importlib.metadata.entry_points(group=COMMAND_ENTRY_POINTS):
    _entry.load()(cli)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="vggeo")


if __name__ == "__main__":  # pragma: no cover
    main()
