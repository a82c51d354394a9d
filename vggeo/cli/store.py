"""CLI commands of this area (see the table in :mod:`vggeo.cli`)."""

import click


def register(group: click.Group) -> None:
    """Add this area's commands to the main group (and to group.commands['sample'])."""
