"""Shared CLI plumbing: JSON or Rich output, and one clear message for user errors."""

from __future__ import annotations

import functools
import json
import math
import sys
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from follicle.errors import FollicleError

console = Console()
err_console = Console(stderr=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of tables.")]

F = TypeVar("F", bound=Callable[..., Any])


def _default(obj: Any) -> Any:
    if isinstance(obj, (date, datetime)):
        return obj.isoformat()
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")
    if hasattr(obj, "tolist"):  # numpy scalars and arrays
        return obj.tolist()
    if hasattr(obj, "to_dict"):  # pandas objects
        return obj.to_dict(orient="records") if hasattr(obj, "columns") else obj.to_dict()
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def _clean(obj: Any) -> Any:
    """Replace NaN and infinities (not valid JSON) with None, recursively."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def to_json(obj: Any) -> str:
    """Serialise results for ``--json``: plain JSON, NaN written as null."""
    return json.dumps(_clean(json.loads(json.dumps(obj, default=_default, allow_nan=True))), indent=2)


def print_json(obj: Any) -> None:
    sys.stdout.write(to_json(obj) + "\n")


def _interrupted() -> None:
    """Ctrl-C: one line, exit 130; writers clean up their temporaries on the way out."""
    err_console.print("[bold red]interrupted:[/] nothing was published (outputs are written to a temporary "
                      "name and renamed only when complete)", highlight=False)
    raise typer.Exit(130) from None


def guarded(func: F) -> F:
    """Turn user errors into one message on stderr and a non-zero exit (no traceback)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except FollicleError as exc:
            err_console.print(f"[bold red]error:[/] {escape(exc.render())}", highlight=False)
            raise typer.Exit(exc.exit_code) from None
        except ValidationError as exc:
            lines = [
                f"  - {'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors()
            ]
            err_console.print(f"[bold red]error:[/] invalid {escape(exc.title)}:\n" + escape("\n".join(lines)),
                              highlight=False)
            raise typer.Exit(2) from None
        except FileNotFoundError as exc:
            err_console.print(f"[bold red]error:[/] file not found: {escape(str(exc.filename or exc))}", highlight=False)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            _interrupted()
        except Exception as exc:
            if type(exc).__name__ != "InterruptException":  # DuckDB's Ctrl-C during a query
                raise
            _interrupted()

    return wrapper  # type: ignore[return-value]
