"""The ``follicle`` command: a thin Typer app over the library.

Each command group lives in its own module with a ``register(app)`` function; this module
only assembles them.
"""

from __future__ import annotations

import importlib

import typer

from follicle.cli._common import JsonErrorsGroup

app = typer.Typer(
    name="follicle",
    cls=JsonErrorsGroup,
    help="Follicle: evidence engine for JAK-inhibitor therapy in alopecia areata (OMOP CDM).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_COMMAND_MODULES = ("cdm", "synth", "study", "run", "analyze", "meta", "response", "cds", "nma", "web", "vocab", "atlas", "network")


def _version(value: bool) -> None:
    if value:
        from follicle import __version__

        typer.echo(f"follicle {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    """Follicle command line."""


for _name in _COMMAND_MODULES:
    importlib.import_module(f"follicle.cli.{_name}").register(app)


def main() -> None:
    """Console-script entry point."""
    app()
