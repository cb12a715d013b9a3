"""CLI command: follicle analyze survival (placeholder until its issue lands)."""

from __future__ import annotations

import typer


def register(group: typer.Typer) -> None:
    """Add this command to the analyze group."""
