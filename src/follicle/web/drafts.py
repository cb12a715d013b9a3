"""Study drafts: study specs being edited, kept as YAML under ``<runs>/studies/<name>.yaml``.

A draft may be incomplete or invalid while it is edited (a comparison naming an outcome not yet
defined); :func:`problems` lists what :class:`follicle.study.spec.StudySpec` would refuse. Files
are written through a temporary file and a rename; names are spec names (never paths).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from fastapi import HTTPException

from follicle.errors import InputError, SpecError
from follicle.web.deps import NAME_RE

MAX_SPEC_BYTES = 512_000


def blank(name: str) -> dict[str, Any]:
    """A new, empty study (it validates once it has concept sets, cohorts and a comparison)."""
    return {"name": name, "description": "", "concept_sets": {}, "cohorts": {}, "outcomes": {}, "comparisons": {},
            "time_at_risk": {}, "covariates": {"demographics": True, "concept_sets": []}, "min_cell_count": 10}


class DraftStore:
    def __init__(self, root: Path) -> None:
        self.root = root / "studies"
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> Path:
        if not NAME_RE.match(name):
            raise HTTPException(404)
        return self.root / f"{name}.yaml"

    def names(self) -> list[str]:
        return sorted(p.stem for p in self.root.glob("*.yaml") if NAME_RE.match(p.stem))

    def exists(self, name: str) -> bool:
        return self.path(name).is_file()

    def load(self, name: str) -> dict[str, Any]:
        path = self.path(name)
        if not path.is_file():
            raise HTTPException(404)
        return parse_yaml(path.read_text(encoding="utf-8"), source=f"draft {name}")

    def save(self, name: str, data: dict[str, Any]) -> None:
        data = dict(data)
        data["name"] = name
        path = self.path(name)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
        os.replace(tmp, path)

    def delete(self, name: str) -> None:
        self.path(name).unlink(missing_ok=True)


def parse_yaml(text: str, *, source: str) -> dict[str, Any]:
    """A YAML study spec as a mapping, with a size limit and one clear message."""
    if len(text.encode("utf-8")) > MAX_SPEC_BYTES:
        raise InputError(f"{source}: larger than {MAX_SPEC_BYTES:,} bytes")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"{source}: not valid YAML ({' '.join(str(exc).split())})") from None
    if not isinstance(data, dict):
        raise SpecError(f"{source}: a study spec is a mapping of fields; got {type(data).__name__}")
    return data


_MAPPINGS = ("concept_sets", "cohorts", "outcomes", "comparisons")
_SECTIONS = ("time_at_risk", "covariates", "analysis")


def check_shape(data: dict[str, Any], *, source: str) -> None:
    """Refuse a spec whose sections the designer cannot show: named sections must map names to
    mappings, settings sections must be mappings (finer problems are left to validation)."""
    bad = []
    for key in _MAPPINGS:
        value = data.get(key)
        if value is None:
            continue
        if not isinstance(value, dict):
            bad.append(f"{key}: expected a mapping of names to entries, got {type(value).__name__}")
            continue
        bad += [f"{key}.{k}: expected a mapping, got {type(v).__name__}" for k, v in value.items()
                if not isinstance(v, dict)]
        bad += [f"{key}: {k!r} is not a name (lower case, digits, _)" for k in value if not NAME_RE.match(str(k))]
    for key in _SECTIONS:
        if data.get(key) is not None and not isinstance(data[key], dict):
            bad.append(f"{key}: expected a mapping, got {type(data[key]).__name__}")
    cohorts = data.get("cohorts")
    for k, c in (cohorts.items() if isinstance(cohorts, dict) else []):
        if isinstance(c, dict) and not isinstance(c.get("entry"), dict):
            bad.append(f"cohorts.{k}.entry: expected a mapping with concept_set")
    if bad:
        raise SpecError(f"{source}: {len(bad)} problem(s)", problems=bad)


def problems(data: dict[str, Any]) -> list[str]:
    """Everything :class:`StudySpec` refuses in *data*, each naming its field (empty when valid)."""
    from follicle.study.spec import parse_spec

    try:
        parse_spec(data, source="study")
    except SpecError as exc:
        return exc.problems or [str(exc)]
    return []


def validated(data: dict[str, Any]) -> Any:
    """The :class:`StudySpec` of *data* (raises :class:`SpecError` listing every problem)."""
    from follicle.study.spec import parse_spec

    return parse_spec(data, source=f"study {data.get('name', '?')}")
