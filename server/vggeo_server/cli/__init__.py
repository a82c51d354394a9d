"""The server's commands of the ``vggeo`` command line: ``vggeo serve`` and ``vggeo keys``.

They live with the server so that nothing in :mod:`vggeo` imports it: :mod:`vggeo.cli` finds
them through the ``vggeo.commands`` entry point (``pyproject.toml``). Importing this module is
cheap (click only); FastAPI, uvicorn and the rest load when a command runs, so an install
without the ``server`` extra still lists the commands and names the extra when one is run.
"""

from __future__ import annotations

import click

__all__ = ["register"]


from vggeo_server.cli.keys import keys
from vggeo_server.cli.serve import serve


def register(group: click.Group) -> None:
    """Add ``serve`` and the ``keys`` group to the main group."""
    group.add_command(serve)
    group.add_command(keys)
