"""A study package: the spec every site runs, with its content hash, the Follicle version that made
it and the OMOP CDM version it needs (``follicle network package``).

The package id is the spec hash: bundles from sites carry it, and pooling refuses bundles of
different packages.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from follicle import __version__
from follicle.errors import InputError
from follicle.network.archive import json_bytes, parse_json, read_zip, write_zip
from follicle.study.hashing import spec_hash
from follicle.study.spec import StudySpec, load_spec

FORMAT = "follicle-network-package/1"
CDM_VERSION = "5.4"
SPEC = "spec.json"


@dataclass(frozen=True)
class StudyPackage:
    """A read, checked package."""

    spec: StudySpec
    spec_hash: str
    follicle_version: str
    cdm_version: str

    @property
    def package_id(self) -> str:
        return self.spec_hash


def build_package(spec_path: str | Path, out: str | Path) -> StudyPackage:
    """Validate the spec at *spec_path* and write the package zip to *out* (atomically)."""
    spec = load_spec(spec_path)
    digest = spec_hash(spec)
    manifest = {"format": FORMAT, "study": spec.name, "package_id": digest, "spec_hash": digest,
                "follicle_version": __version__, "cdm_version": CDM_VERSION}
    write_zip(Path(out), {SPEC: json_bytes(spec.model_dump(mode="json"))}, manifest)
    return StudyPackage(spec, digest, __version__, CDM_VERSION)


def read_package(path: str | Path) -> StudyPackage:
    """The package at *path*; refuses one whose spec does not hash to the id it claims."""
    manifest, files = read_zip(Path(path), kind="study package", expected={SPEC})
    if manifest.get("format") != FORMAT:
        raise InputError(f"{path}: format {manifest.get('format')!r} is not {FORMAT!r}")
    try:
        spec = StudySpec.model_validate(parse_json(files[SPEC], f"{path}: {SPEC}"))
    except ValueError as exc:
        raise InputError(f"{path}: {SPEC} is not a valid study spec ({exc})") from None
    digest = spec_hash(spec)
    if digest != manifest.get("spec_hash"):
        raise InputError(f"{path}: the spec hashes to {digest[:12]}, the manifest says "
                         f"{str(manifest.get('spec_hash'))[:12]}: the package was altered")
    return StudyPackage(spec, digest, str(manifest.get("follicle_version")), str(manifest.get("cdm_version")))
