"""``follicle analyze``: statistics on a researcher's own CSV (survival, matching)."""

from __future__ import annotations

import typer

from follicle.cli import analyze_match, analyze_survival


def register(app: typer.Typer) -> None:
    """Add the ``analyze`` command group to *app*."""
    group = typer.Typer(help="Statistics on your own CSV: survival analysis and propensity-score matching.",
                        no_args_is_help=True)
    analyze_survival.register(group)
    analyze_match.register(group)
    app.add_typer(group, name="analyze")
