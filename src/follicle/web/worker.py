"""The worker process of one run: ``python -m follicle.web.worker RUN_DIR DB``.

Runs the study of ``RUN_DIR/spec.yaml`` on the CDM *DB* with :func:`follicle.run.study.run_study`,
writing progress and the outcome to ``RUN_DIR/status.json``. A user error ends as a failed run
with its message; anything else as a failed run with the exception's type and text (the
traceback goes to the worker log on the server only).
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

from follicle.errors import FollicleError
from follicle.web.jobs import write_status


def expected_steps(spec: object) -> int:
    """How many progress messages a run of *spec* prints: cohorts and PS per comparison, one per outcome."""
    comps = spec.comparisons.values()  # type: ignore[attr-defined]
    return sum(2 + len(dict.fromkeys(c.outcomes + c.negative_controls)) for c in comps)


def main(argv: list[str]) -> int:
    run_dir, db = Path(argv[0]), argv[1]
    try:
        from follicle.run.study import run_study
        from follicle.study.spec import load_spec

        spec = load_spec(run_dir / "spec.yaml")
        total = max(1, expected_steps(spec))
        steps: list[str] = []

        def progress(message: str) -> None:
            steps.append(message)
            write_status(run_dir, state="running", message=message, progress=min(0.99, len(steps) / (total + 1)),
                         steps=steps[-200:])

        write_status(run_dir, state="running", message="opening the CDM", progress=0.0)
        run_study(spec, db, run_dir / "out", progress=progress)
    except FollicleError as exc:
        write_status(run_dir, state="failed", message=exc.render())
        return 1
    except Exception as exc:  # noqa: BLE001 - a worker reports every failure in its status
        traceback.print_exc()
        write_status(run_dir, state="failed", message=f"{type(exc).__name__}: {exc}")
        return 1
    write_status(run_dir, state="done", message="finished", progress=1.0)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
