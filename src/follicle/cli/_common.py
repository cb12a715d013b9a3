"""Shared CLI plumbing: JSON or Rich output, and one clear message for user errors."""

from __future__ import annotations

import functools
import gc
import json
import math
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from typer.core import TyperGroup
from rich.console import Console
from rich.markup import escape

from follicle.errors import FollicleError

console = Console()
err_console = Console(stderr=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of tables.")]

F = TypeVar("F", bound=Callable[..., Any])


#: Set by :func:`follicle.cli.main`: this process runs one command and then exits, so its heap may
#: be frozen (in a test or library process it holds other work, whose garbage must stay collectable).
OWN_PROCESS = False


@contextmanager
def loading_libraries() -> Iterator[None]:
    """Import a command's libraries with the cyclic collector off, then freeze what they built.

    Imports make hundreds of thousands of long-lived objects and almost no garbage: the full
    collections they trigger walk all of them for nothing (0.14 s of the ~1 s that `follicle run`
    spends importing), and every full collection during the command would walk them again.
    Frozen, they are left out of later collections; the collector is back on when the block ends.
    Only in the ``follicle`` process itself (:data:`OWN_PROCESS`); elsewhere a plain block.
    """
    if not OWN_PROCESS:
        yield
        return
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


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


def _is_interrupt(exc: BaseException) -> bool:
    """Ctrl-C that a database driver turned into its own error: DuckDB raises ``InterruptException``
    inside a query, or a ``RuntimeError("Query interrupted")`` whose cause is the KeyboardInterrupt."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, KeyboardInterrupt) or type(seen).__name__ == "InterruptException":
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _is_validation_error(exc: BaseException) -> bool:
    """A pydantic ``ValidationError`` (pydantic is imported only by the commands that use it, so
    when it is not loaded the error cannot be one)."""
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and isinstance(exc, pydantic.ValidationError)


def error_record(message: str, *, problems: list[str] | None = None, kind: str = "error", exit_code: int = 2) -> dict[str, Any]:
    """The JSON object a command prints on stdout for an error under ``--json``."""
    return {"error": message, "problems": list(problems or []), "type": kind, "exit_code": exit_code}


def _fail(message: str, problems: list[str], kind: str, exit_code: int, as_json: bool) -> typer.Exit:
    """Report an error (one message on stderr, or a JSON object on stdout) and return the exit to raise."""
    if as_json:
        print_json(error_record(message, problems=problems, kind=kind, exit_code=exit_code))
    else:
        text = "\n".join([message] + [f"  - {p}" for p in problems])
        err_console.print(f"[bold red]error:[/] {escape(text)}", highlight=False)
    return typer.Exit(exit_code)


def guarded(func: F) -> F:
    """Turn user errors into one message on stderr and a non-zero exit (no traceback); with
    ``--json`` (a ``json`` or ``json_out`` argument), into a JSON object on stdout
    (:func:`error_record`). Under ``--json`` even an unexpected error (a bug) answers in JSON, its
    traceback going to stderr."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        as_json = bool(kwargs.get("json") is True or kwargs.get("json_out") is True)
        try:
            return func(*args, **kwargs)
        except FollicleError as exc:
            raise _fail(str(exc), exc.problems, type(exc).__name__, exc.exit_code, as_json) from None
        except FileNotFoundError as exc:
            raise _fail(f"file not found: {exc.filename or exc}", [], "FileNotFoundError", 2, as_json) from None
        except KeyboardInterrupt:
            _interrupted()
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:
            if _is_validation_error(exc):
                problems = [f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors()]  # type: ignore[attr-defined]
                raise _fail(f"invalid {exc.title}:", problems, "ValidationError", 2, as_json) from None  # type: ignore[attr-defined]
            if _is_interrupt(exc):
                _interrupted()
            if not as_json:
                raise
            traceback.print_exc(file=sys.stderr)
            raise _fail(f"internal error ({type(exc).__name__}): {exc}", [], "InternalError", 1, True) from None

    return wrapper  # type: ignore[return-value]


class JsonErrorsGroup(TyperGroup):
    """The root command group: with ``--json`` anywhere on the command line, a usage error (an
    unknown option, a bad value, a missing argument) is also a JSON object on stdout."""

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        if "--json" not in argv or not standalone_mode:
            return super().main(argv, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.Abort:
            print_json(error_record("aborted", kind="Abort", exit_code=1))
            sys.exit(1)
        except typer.TyperException as exc:  # click's usage errors (Typer vendors click)
            message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
            code = int(getattr(exc, "exit_code", 2))
            print_json(error_record(message, kind=type(exc).__name__, exit_code=code))
            sys.exit(code)
        sys.exit(code if isinstance(code, int) else 0)
