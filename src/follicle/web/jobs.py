"""Study runs in the background: one worker process per run, status in a file, never blocking a request.

A run lives in ``<runs>/runs/<id>/``: ``spec.yaml`` (the study), ``status.json`` (state, message,
progress; written by the worker through a temporary file and a rename), ``worker.log`` (the
worker's own output, with any traceback: kept on the server, never shown) and ``out/`` (the
results of :func:`follicle.run.study.run_study`). The server only starts processes and reads
status files, so a long run never holds a request thread, and a crashed worker is reported as
a failed run with its exit code.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from follicle.web.settings import WebSettings

STATES = ("queued", "running", "done", "failed")


def write_status(run_dir: Path, **fields: Any) -> dict[str, Any]:
    """Merge *fields* into ``status.json`` atomically (temporary file, then rename)."""
    path = run_dir / "status.json"
    status = read_status(run_dir)
    status.update(fields, updated=dt.datetime.now().isoformat(timespec="seconds"))
    tmp = run_dir / f".status.json.tmp-{os.getpid()}-{threading.get_ident()}"
    tmp.write_text(json.dumps(status, indent=2))
    os.replace(tmp, path)
    return status


def read_status(run_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((run_dir / "status.json").read_text())
    except (OSError, ValueError):
        return {}


class RunManager:
    """Starts worker processes for runs (at most ``max_concurrent_runs`` at once; the rest wait)."""

    def __init__(self, settings: WebSettings) -> None:
        self.settings = settings
        self.root = settings.runs / "runs"
        self.root.mkdir(parents=True, exist_ok=True)
        self._procs: dict[str, subprocess.Popen] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        for d in self.root.iterdir():  # runs left "running" by a server that stopped: their worker is gone
            if d.is_dir() and read_status(d).get("state") == "running":
                write_status(d, state="failed", message="the server stopped during the run")
        self._ticker = threading.Thread(target=self._tick, name="follicle-web-runs", daemon=True)
        self._ticker.start()

    def _tick(self) -> None:
        """Reap finished workers and start queued runs every second, requests or not."""
        while not self._stop.wait(1.0):
            try:
                self.refresh()
            except OSError:  # a run folder removed under us: the next tick sees the new state
                pass

    def create(self, name: str, spec_yaml: str) -> str:
        """A new queued run of the study *name* (spec as YAML text); returns its id."""
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        with self._lock:
            run_id, i = f"{stamp}-{name}", 1
            while (self.root / run_id).exists():
                i += 1
                run_id = f"{stamp}-{name}-{i}"
            run_dir = self.root / run_id
            run_dir.mkdir(parents=True)
        (run_dir / "spec.yaml").write_text(spec_yaml, encoding="utf-8")
        write_status(run_dir, id=run_id, study=name, state="queued", message="waiting for a free worker",
                     created=dt.datetime.now().isoformat(timespec="seconds"), progress=0.0, steps=[])
        self.refresh()
        return run_id

    def refresh(self) -> None:
        """Reap finished workers (a crash becomes a failed run) and start queued runs while there is room."""
        with self._lock:
            for run_id, proc in list(self._procs.items()):
                code = proc.poll()
                if code is None:
                    continue
                del self._procs[run_id]
                run_dir = self.root / run_id
                if read_status(run_dir).get("state") not in ("done", "failed"):
                    write_status(run_dir, state="failed",
                                 message=f"the run's worker process ended unexpectedly (exit code {code})")
            queued = sorted(d for d in self.root.iterdir() if d.is_dir() and read_status(d).get("state") == "queued"
                            and d.name not in self._procs)
            for run_dir in queued:
                if len(self._procs) >= self.settings.max_concurrent_runs:
                    break
                self._start(run_dir)

    def _start(self, run_dir: Path) -> None:
        write_status(run_dir, state="running", message="starting", started=dt.datetime.now().isoformat(timespec="seconds"))
        log = open(run_dir / "worker.log", "ab")  # noqa: SIM115 - handed to the child, closed below
        try:
            self._procs[run_dir.name] = subprocess.Popen(
                [sys.executable, "-m", "follicle.web.worker", str(run_dir), self.settings.db],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=run_dir, start_new_session=True,
            )
        finally:
            log.close()

    def status(self, run_id: str) -> dict[str, Any]:
        self.refresh()
        return read_status(self.root / run_id)

    def list(self) -> list[dict[str, Any]]:
        self.refresh()
        out = [read_status(d) for d in self.root.iterdir() if d.is_dir() and (d / "status.json").exists()]
        return sorted(out, key=lambda s: s.get("id", ""), reverse=True)

    def shutdown(self) -> None:
        """End the workers this server started (on server exit)."""
        self._stop.set()
        with self._lock:
            for run_id, proc in self._procs.items():
                if proc.poll() is None:
                    proc.terminate()
                    try:
                        proc.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                write_status(self.root / run_id, state="failed", message="the server stopped during the run")
            self._procs.clear()
