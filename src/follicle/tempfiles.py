"""Temporary files named after the process that made them, and removing those a dead process left.

A writer puts its output under ``.<name>.tmp-<pid>...`` (or ``.tmp-<pid>-...``) and renames it into
place; a kill leaves the temporary behind. The next writer removes such names whose process no
longer exists (never those of a live process: a concurrent run may be writing them).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

#: ``.x.tmp-PID``, ``.x.tmp-PID-rand``, ``.tmp-PID-rand``, ``.x.old-PID``: group 1 is the PID.
TEMP_NAME = re.compile(r"^\.(?:.*\.)?(?:tmp|old)-(\d+)(?:[-.].*)?$")
_LEGACY = re.compile(r"^\.tmp-results-")


def pid_alive(pid: int) -> bool:
    """True when a process *pid* exists (ours or another user's)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale(folder: Path, *, depth: int = 1, legacy_age_s: float = 600.0, prefix: str = "") -> int:
    """Delete temporaries (``.x.tmp-PID...``, ``.tmp-PID-...``, ``.x.old-PID...``) under *folder*
    whose process is gone; *depth* levels deep; only names starting with *prefix* at the top
    level (so a shared parent folder loses only our own). Returns how many were removed."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    removed = 0
    for entry in list(folder.iterdir()):
        if not entry.name.startswith(prefix):
            continue
        m = TEMP_NAME.match(entry.name)
        stale = (m is not None and int(m.group(1)) != os.getpid() and not pid_alive(int(m.group(1)))) or (
            _LEGACY.match(entry.name) is not None and time.time() - entry.stat().st_mtime > legacy_age_s)
        if stale:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed += 1
        elif depth > 1 and entry.is_dir() and not entry.is_symlink():
            removed += remove_stale(entry, depth=depth - 1, legacy_age_s=legacy_age_s)
    return removed


