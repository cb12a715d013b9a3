"""Strict reading of form fields: every problem names its field, all are reported at once."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from follicle.errors import InputError
from follicle.web.deps import NAME_RE

MAX_TEXT = 2000


class Fields:
    """The fields of one submitted form; read with the typed getters, then call :meth:`done`."""

    def __init__(self, form: Any) -> None:
        self.form = form
        self.problems: list[str] = []

    def raw(self, key: str) -> str:
        v = self.form.get(key)
        return v.strip() if isinstance(v, str) else ""

    def text(self, key: str, default: str = "") -> str:
        v = self.raw(key)
        if len(v) > MAX_TEXT:
            self.problems.append(f"{key}: at most {MAX_TEXT} characters")
            return default
        return v or default

    def name(self, key: str) -> str:
        """A spec name (lower case, digits, _), required."""
        v = self.raw(key)
        if not NAME_RE.match(v):
            self.problems.append(f"{key}: a name of lower-case letters, digits and _ starting with a letter "
                                 f"(at most 40) is needed; got {v!r}")
        return v

    def names(self, key: str) -> list[str]:
        out = []
        for v in self.form.getlist(key) if hasattr(self.form, "getlist") else []:
            v = v.strip() if isinstance(v, str) else ""
            if not v:
                continue
            if not NAME_RE.match(v):
                self.problems.append(f"{key}: {v!r} is not a name")
                continue
            out.append(v)
        return out

    def int(self, key: str, *, minimum: int | None = None, maximum: int | None = None) -> int | None:
        """An integer, or None when blank."""
        v = self.raw(key)
        if v == "":
            return None
        try:
            x = int(v)
        except ValueError:
            self.problems.append(f"{key}: expected a whole number, got {v!r}")
            return None
        if (minimum is not None and x < minimum) or (maximum is not None and x > maximum):
            self.problems.append(f"{key}: expected a number from {minimum if minimum is not None else '-inf'} "
                                 f"to {maximum if maximum is not None else 'inf'}, got {x}")
            return None
        return x

    def float(self, key: str, *, positive: bool = False) -> float | None:
        v = self.raw(key)
        if v == "":
            return None
        try:
            x = float(v)
        except ValueError:
            self.problems.append(f"{key}: expected a number, got {v!r}")
            return None
        if not math.isfinite(x) or (positive and x <= 0):
            self.problems.append(f"{key}: expected a finite number{' > 0' if positive else ''}, got {v!r}")
            return None
        return x

    def choice(self, key: str, choices: Sequence[str], default: str | None = None) -> str:
        v = self.raw(key) or (default or "")
        if v not in choices:
            self.problems.append(f"{key}: expected one of {', '.join(choices)}, got {v!r}")
            return choices[0]
        return v

    def flag(self, key: str) -> bool:
        return self.raw(key) in ("on", "true", "yes", "1")

    def done(self) -> None:
        """Raise :class:`InputError` listing every problem seen so far."""
        if self.problems:
            raise InputError(f"the form has {len(self.problems)} problem(s)", problems=list(self.problems))
