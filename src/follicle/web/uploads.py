"""Uploaded files, read strictly: size-limited, UTF-8, no NUL bytes, CSV with a row limit."""

from __future__ import annotations

import io
from typing import Any

import pandas as pd

from follicle.errors import InputError

MAX_FILE = 1_000_000
MAX_ROWS = 5_000


async def upload_text(upload: Any, *, what: str, max_bytes: int = MAX_FILE) -> str | None:
    """The text of an uploaded file, or None when no file was chosen."""
    if upload is None or isinstance(upload, str) or not getattr(upload, "filename", ""):
        return None
    raw = await upload.read(max_bytes + 1)
    name = upload.filename
    if len(raw) > max_bytes:
        raise InputError(f"{what} {name}: larger than {max_bytes:,} bytes")
    if not raw.strip():
        raise InputError(f"{what} {name}: the file is empty")
    if b"\x00" in raw:
        raise InputError(f"{what} {name}: a binary file, not text")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{what} {name}: not UTF-8 text (byte {exc.start})") from None


def csv_frame(text: str, *, name: str, max_rows: int = MAX_ROWS, dtype: Any = str) -> pd.DataFrame:
    """A CSV text as a data frame (all text columns by default, empty cells as empty strings)."""
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=dtype, keep_default_na=dtype is not str, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise InputError(f"{name}: not a readable CSV file ({' '.join(str(exc).split())})") from None
    if len(frame) > max_rows:
        raise InputError(f"{name}: {len(frame):,} rows; at most {max_rows:,} study rows are accepted")
    if frame.columns.duplicated().any():
        dup = sorted(set(frame.columns[frame.columns.duplicated()]))
        raise InputError(f"{name}: duplicate column(s) {', '.join(dup)}")
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame
