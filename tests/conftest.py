"""Shared fixtures: paths to ../shared data, PostgreSQL and R availability.

Tests that need an external system skip with the reason when it is absent, except when
FOLLICLE_REQUIRE_ALL=1 (set by .ci/run): then a missing system is a failure, so CI can never
pass by skipping the PostgreSQL, R, browser or Spark tests.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
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


@pytest.fixture(scope="session")
def connect_client() -> None:
    """PySpark's Spark Connect client is installed (pyspark and grpcio: the spark extra)."""
    if importlib.util.find_spec("pyspark") is None:
        _unavailable("pyspark not installed (pip install -c constraints.txt -e '.[spark]')")
    if importlib.util.find_spec("grpc") is None:
        _unavailable("grpcio not installed: the Spark Connect client needs it (pip install -c constraints.txt -e '.[spark]')")


@pytest.fixture(scope="session")
def spark_connect(tmp_path_factory: pytest.TempPathFactory, connect_client: None) -> Iterator[str]:
    """URL (``sc://127.0.0.1:PORT``) of a Spark Connect server started for the test run from the
    jars PySpark bundles (``SparkConnectServer``, as Spark's ``start-connect-server.sh`` runs it;
    10-30 s: a second JVM), on a free port, stopped at the end. Its catalog is in memory and
    starts empty: a test puts the CDM's tables there as a cluster would hold them. Its session
    time zone and ANSI mode are set to what Follicle does not want, so a client that forgot to set
    its own would give different answers."""
    import pyspark

    from follicle.cdm.spark import java_available

    if java_available() is None:
        _unavailable("java not found (apt-get install openjdk-17-jre-headless); a Spark Connect server needs it")
    home = Path(pyspark.__file__).parent
    folder = tmp_path_factory.mktemp("spark-connect")
    with socket.socket() as s:  # a free port (released again just before the server binds it)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = {"spark.connect.grpc.binding.address": "127.0.0.1", "spark.connect.grpc.binding.port": port,
            "spark.sql.catalogImplementation": "in-memory", "spark.sql.warehouse.dir": folder / "warehouse",
            "spark.local.dir": folder / "tmp", "spark.ui.enabled": "false", "spark.sql.shuffle.partitions": 4,
            "spark.driver.extraJavaOptions": f"-Dderby.system.home={folder}",
            "spark.sql.session.timeZone": "Pacific/Kiritimati", "spark.sql.ansi.enabled": "false"}
    command = [str(home / "bin" / "spark-submit"), "--master", "local[2]", "--driver-memory", "1g",
               "--class", "org.apache.spark.sql.connect.service.SparkConnectServer", "--name", "follicle-tests",
               *[arg for key, value in conf.items() for arg in ("--conf", f"{key}={value}")], "spark-internal"]
    log = folder / "server.log"
    env = {**os.environ, "SPARK_HOME": str(home), "SPARK_LOCAL_IP": "127.0.0.1"}
    with log.open("wb") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=folder, env=env,
                                  start_new_session=True)  # its own process group: stopped as one
    try:
        deadline = time.monotonic() + 180
        while "Spark Connect server started" not in log.read_text(errors="replace"):
            if server.poll() is not None or time.monotonic() > deadline:
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
                pytest.fail(f"the Spark Connect server did not start (exit {server.poll()}):\n{tail}")
            time.sleep(0.5)
        yield f"sc://127.0.0.1:{port}"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
