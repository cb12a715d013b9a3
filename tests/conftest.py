"""Shared fixtures: paths to ../shared data, PostgreSQL and R availability.

Tests that need an external system skip with the reason when it is absent, except when
FOLLICLE_REQUIRE_ALL=1 (set by .ci/run): then a missing system is a failure, so CI can never
pass by skipping the PostgreSQL, R, browser or Spark tests.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _unavailable(reason: str) -> None:
    if os.environ.get("FOLLICLE_REQUIRE_ALL") == "1":
        pytest.fail(f"required in CI but unavailable: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The read-only ../shared folder (reference data; never copied into the repo)."""
    path = Path(os.environ.get("FOLLICLE_SHARED", REPO.parent / "shared"))
    if not (path / "data" / "omop").is_dir():
        _unavailable(f"shared data folder not found at {path} (set FOLLICLE_SHARED)")
    return path


@pytest.fixture(scope="session")
def gibleed_dir(shared_dir: Path) -> Path:
    return shared_dir / "data" / "omop" / "gibleed"


@pytest.fixture(scope="session")
def synthea_dir(shared_dir: Path) -> Path:
    return shared_dir / "data" / "omop" / "synthea27nj"


@pytest.fixture(scope="session")
def pg_url() -> str:
    """URL of a PostgreSQL server for tests (FOLLICLE_TEST_PG_URL); .ci/run starts one."""
    url = os.environ.get("FOLLICLE_TEST_PG_URL")
    if not url:
        _unavailable("FOLLICLE_TEST_PG_URL is not set (no PostgreSQL server for tests)")
    return url


@pytest.fixture(scope="session")
def rscript() -> str:
    """Path of Rscript (Debian r-base-core) for differential tests against R."""
    path = shutil.which("Rscript")
    if not path:
        _unavailable("Rscript not found (apt-get install r-base-core r-cran-survival r-cran-metafor)")
    return path


@pytest.fixture(scope="session")
def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        _unavailable("chromium not found (apt-get install chromium)")
    return path


@pytest.fixture(scope="session")
def spark_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder for local Spark warehouses (``spark:///<folder>/<name>``). The process's one Spark
    session starts here, once (a JVM: 10-30 s), and every Spark test shares it."""
    if importlib.util.find_spec("pyspark") is None:
        _unavailable("pyspark not installed (pip install -c constraints.txt -e '.[spark]')")
    from follicle.cdm.spark import base_session, java_available

    if java_available() is None:
        _unavailable("java not found (apt-get install openjdk-17-jre-headless); local Spark needs it")
    base_session()
    return tmp_path_factory.mktemp("spark")
