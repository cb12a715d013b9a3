"""The output layout of a run: a shareable folder published as a whole, a work folder beside it.

``<out>/`` holds only aggregate, suppressed outputs (results.json, tables/, report.html) and is
what users share. ``<out>.work/`` (or ``--work``) holds the step cache, which is row-level.

A run's outputs are written into a complete new folder next to ``<out>`` and then swapped with
it in one step (``renameat2(RENAME_EXCHANGE)`` on Linux; elsewhere two renames, with recovery of
the old folder if a run dies between them). A reader therefore sees the old outputs or the new
ones, never a mix of two runs. Temporaries are named with the process id that made them and are
removed by the next run once that process is gone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import tempfile
from pathlib import Path

from follicle.errors import InputError
from follicle.tempfiles import TEMP_NAME as _TMP
from follicle.tempfiles import pid_alive, remove_stale

#: Written into every published folder; a non-empty folder without it (or results.json) is not ours.
MARKER = ".follicle-output"
_RENAME_EXCHANGE = 2


def work_dir_for(out_dir: Path) -> Path:
    """The default work folder of *out_dir*: ``<out>.work`` beside it."""
    out_dir = Path(out_dir)
    return out_dir.with_name(out_dir.name + ".work")


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2); False when the system cannot."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd = -100
    rc = fn(at_fdcwd, os.fsencode(str(a)), at_fdcwd, os.fsencode(str(b)), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: the file system cannot exchange
        return False
    raise OSError(err, os.strerror(err), str(b))


def _recover(out_dir: Path) -> None:
    """If a run died between the two renames of the fallback, put the old outputs back."""
    if out_dir.exists():
        return
    olds = sorted(out_dir.parent.glob(f".{out_dir.name}.old-*"), key=lambda p: p.stat().st_mtime)
    for old in reversed(olds):
        m = _TMP.match(old.name)
        if m and not pid_alive(int(m.group(1))) and (old / MARKER).exists():
            os.rename(old, out_dir)
            return


def check_out_dir(out_dir: Path) -> None:
    """Refuse to replace a folder that holds something other than Follicle outputs."""
    if out_dir.is_symlink() or (out_dir.exists() and not out_dir.is_dir()):
        raise InputError(f"--out {out_dir}: not a folder (a run replaces the whole output folder)")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (
            (out_dir / MARKER).exists() or (out_dir / "results.json").exists()):
        raise InputError(f"--out {out_dir}: the folder is not empty and holds no Follicle results; "
                         "a run replaces the whole output folder, so give an empty or new folder")


def publish(out_dir: Path, files: dict[str, bytes]) -> None:
    """Write *files* (relative name -> bytes) as the whole new content of *out_dir*, atomically."""
    out_dir = Path(out_dir)
    parent = out_dir.parent
    parent.mkdir(parents=True, exist_ok=True)
    _recover(out_dir)
    remove_stale(parent, prefix=f".{out_dir.name}.")
    check_out_dir(out_dir)
    stage = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-{os.getpid()}-", dir=parent))
    try:
        for name, data in files.items():
            path = stage / name
            if not path.resolve().is_relative_to(stage.resolve()):
                raise ValueError(f"output name {name!r} leaves the output folder")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        (stage / MARKER).write_text("Aggregate outputs of a Follicle run; replaced as a whole by the next run.\n")
        os.chmod(stage, 0o755)
        if not out_dir.exists():
            os.rename(stage, out_dir)
        elif _exchange(stage, out_dir):
            pass  # stage now holds the old outputs; removed below
        else:
            old = parent / f".{out_dir.name}.old-{os.getpid()}"
            os.rename(out_dir, old)
            os.rename(stage, out_dir)
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
