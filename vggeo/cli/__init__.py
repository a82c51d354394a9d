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
``tiles``          ``vggeo serve``, ``vggeo tiles export|basemap``
=================  ==========================================================================

Heavy libraries are imported inside command functions so that ``--help`` stays fast. Results go
to stdout; logs, progress and errors to stderr. Every :class:`vggeo.errors.VggeoError` (and a
missing or unreadable input file) becomes a one-line message and exit code 2 — never a traceback.
"""

from __future__ import annotations

import importlib
import logging
import sys

import click

from vggeo._version import __version__
from vggeo.errors import VggeoError

#: Subcommand modules, in help order. Each defines ``register(group: click.Group) -> None``.
COMMAND_MODULES = ("transform", "registry", "lm", "store", "export", "tiles")

EXIT_INPUT = 2
EXIT_INTERRUPTED = 130


class InputFailure(click.ClickException):
    """A usage or input error: one line on stderr, exit code 2."""

    exit_code = EXIT_INPUT

    def show(self, file=None) -> None:
        click.echo(f"vggeo: error: {self.format_message()}", err=True)


class VggeoGroup(click.Group):
    """A click group that turns vggeo's errors into one-line messages."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except VggeoError as err:
            raise InputFailure(str(err)) from err
        except (FileNotFoundError, IsADirectoryError, PermissionError) as err:
            raise InputFailure(f"{err.strerror}: {err.filename}") from err
        except KeyboardInterrupt:
            click.echo("vggeo: interrupted; nothing half-written was kept", err=True)
            ctx.exit(EXIT_INTERRUPTED)


@click.group(cls=VggeoGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="vggeo")
@click.option("-v", "--verbose", count=True, help="More log output (repeatable).")
@click.option("-q", "--quiet", count=True, help="Less log output (repeatable).")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: int) -> None:
    """Swedish residences and land-regulating provisions: coordinates, deliveries, stores, tiles."""
    level = logging.WARNING - 10 * (verbose - quiet)
    logging.basicConfig(level=max(logging.DEBUG, min(logging.CRITICAL, level)), stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")  # fmt: skip
    ctx.ensure_object(dict)
    ctx.obj["verbosity"] = verbose - quiet


@cli.group(cls=VggeoGroup)
def sample() -> None:
    """Generate realistic synthetic data (registry, deliveries) from a seed."""


for _name in COMMAND_MODULES:
    importlib.import_module(f"vggeo.cli.{_name}").register(cli)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="vggeo")


if __name__ == "__main__":  # pragma: no cover
    main()
