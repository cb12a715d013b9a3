"""Spark targets: a local Spark session over a Parquet warehouse, or a cluster through Spark Connect.

``spark:///ABS/DIR`` starts (once per process) a local Spark session, master from
``FOLLICLE_SPARK_MASTER`` (default ``local[*]``), driver memory from ``FOLLICLE_SPARK_DRIVER_MEMORY``
(default ``4g``). The CDM is plain Parquet under ``DIR/warehouse/<table>/`` (no Delta, no Hive
metastore): each connection registers those folders as tables of its own Spark database, so a
second process, or the same process after a load, sees the current files. ``sc://HOST:PORT``
connects to a running cluster through Spark Connect (a session of its own per connection) and
reads the CDM tables of a database of the server's catalog: ``;database=NAME`` in the URL, else
the server's current one. Databricks goes the same way (``sc://`` URL of the workspace, see
docs/scale.md).

Spark pitfalls handled here: the session time zone is UTC (dates never shift with the machine's
zone); Spark has no temporary tables, and its temporary views are recomputed at every use, so a
step cached by the study is written as a real Parquet table (dropped when the study closes) or,
over Spark Connect without ``;scratch=DATABASE``, kept as a cached temporary view of the session
(``CACHE TABLE``: no write rights needed, gone when the session ends);
one JVM session is shared by every connection of a process (``disconnect`` does not stop it;
each connection is a ``newSession()`` with its own current database and views); Spark's log
and progress bar stay off stdout; ``spark-warehouse``, ``metastore_db`` and ``derby.log`` never
land in the working folder.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import ibis
import ibis.expr.types as ir
import sqlglot as sg
import sqlglot.expressions as sge
from ibis.backends.pyspark import Backend as _PySparkBackend
from ibis.backends.sql.compilers.pyspark import PySparkCompiler

from follicle.cdm import schema
from follicle.cdm.connect import redact
from follicle.errors import DatabaseError

SPARK_SCHEMES = ("spark", "sc")
_LOCK = threading.Lock()
_BASE: dict[str, Any] = {}  # the process's local session and its scratch folder


class _Compiler(PySparkCompiler):
    def visit_CountStar(self, op: Any, *, arg: Any, where: Any) -> Any:
        # Ibis 12 writes count(where=...) as SUM(CAST(where AS BIGINT)): NULL, not 0, on no rows
        if where is not None:
            return self.f.count_if(where)
        return super().visit_CountStar(op, arg=arg, where=where)

    def visit_BitOr(self, op: Any, *, arg: Any, where: Any) -> Any:
        # Ibis 12 has no rule for it on Spark, whose SQL has bit_or (the concept-set report uses it)
        return self.agg.bit_or(arg, where=where)


class SparkBackend(_PySparkBackend):
    """Ibis' PySpark backend as Follicle uses it: conditional counts of no rows are 0, in-memory
    tables keep their NULLs, temporary tables exist, and disconnecting leaves the process's shared
    Spark session running (it stops when the process exits)."""

    compiler = _Compiler()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._scratch: dict[str, str | None] = {}  # cached step -> its database (None: a cached view)

    #: Where "temporary" tables go: a database (the local session's scratch one, removed at exit,
    #: or the ``;scratch=`` of a Spark Connect URL), or None for cached temporary views
    scratch_database: str | None = None
    #: A Spark Connect session of this connection alone (stopped on disconnect)
    remote: bool = False

    def create_table(self, name: str, /, obj: Any = None, *, temp: bool | None = None, **kwargs: Any) -> Any:
        # Spark has no temporary tables, and a temporary view is recomputed at each use: write a
        # real Parquet table, or cache the view's rows; the study drops it when it closes
        # (events.EventStore.close)
        if not (temp and obj is not None and kwargs.get("database") is None):
            return super().create_table(name, obj, **kwargs)
        # compiled against the current (CDM) database, written to the scratch one
        table = obj if isinstance(obj, ir.Expr) else ibis.memtable(obj)
        self._run_pre_execute_hooks(table)
        query = self.compile(table)
        self._scratch[name] = self.scratch_database
        if self.scratch_database is None:
            self._session.sql(f"CACHE TABLE {sg.to_identifier(name, quoted=True).sql('spark')} AS {query}")
            return self.table(name)
        self._session.sql(query).write.saveAsTable(f"{self.scratch_database}.{name}", format="parquet")
        return self.table(name, database=self.scratch_database)

    def drop_table(self, name: str, /, *, database: Any = None, force: bool = False) -> None:
        # Ibis 12 builds DROP with sqlglot's old field and Spark receives "DROP TABLE IF EXISTS"
        # without a name; a scratch table is dropped from the scratch database
        if database is None and name in self._scratch:
            database = self._scratch.pop(name)
            if database is None:
                self._session.catalog.dropTempView(name)  # and its cached rows
                return
        table = sg.table(name, db=database, quoted=True)
        drop = sge.Drop(tables=[table], kind="TABLE", exists=force).sql(dialect="spark")
        self._session.sql(drop)

    def _register_in_memory_table(self, op: Any) -> None:
        # Ibis 12 goes through pandas here, where an integer column with a NULL becomes float NaN,
        # which Spark then reads as NULL in every row of that column; PySpark 4 takes Arrow as it is
        from ibis.backends.pyspark.datatypes import PySparkSchema

        arrow = op.data.to_pyarrow(op.schema)
        df = self._session.createDataFrame(arrow, schema=PySparkSchema.from_ibis(op.schema))
        df.createOrReplaceTempView(op.name)

    def disconnect(self) -> None:
        """Forget this connection's views: a Spark Connect session ends (the server drops its views
        and cached rows); the local JVM session is shared and stops at process exit."""
        if self.remote:
            retire(self._session)
            return
        for view in self._session.catalog.listTables():
            if view.isTemporary:
                self._session.catalog.dropTempView(view.name)


def is_spark(target: str | Path) -> bool:
    """True for ``spark:///DIR`` and ``sc://HOST:PORT`` targets."""
    return urlparse(str(target)).scheme in SPARK_SCHEMES


def local_dir(target: str | Path) -> Path:
    """The folder of a ``spark:///ABS/DIR`` target (absolute; created if missing)."""
    parsed = urlparse(str(target))
    if parsed.scheme != "spark" or parsed.netloc or not parsed.path.startswith("/"):
        raise DatabaseError(f"{target}: a local Spark target is spark:///ABSOLUTE/FOLDER (three slashes)")
    return Path(parsed.path)


def warehouse(target: str | Path) -> Path:
    """Where the CDM's Parquet tables of a local target live: ``DIR/warehouse``."""
    return local_dir(target) / "warehouse"


def database_name(folder: Path) -> str:
    """The Spark database that stands for *folder* in this process (one per folder)."""
    return "follicle_" + hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:12]


def base_session() -> Any:
    """The process's local Spark session, started on first use (5-10 s: a JVM starts)."""
    with _LOCK:
        if "session" in _BASE:
            return _BASE["session"]
        from pyspark.sql import SparkSession

        scratch = Path(tempfile.mkdtemp(prefix="follicle-spark-"))
        atexit.register(shutil.rmtree, scratch, ignore_errors=True)
        log_conf = scratch / "log4j2.properties"
        log_conf.write_text(files("follicle.cdm").joinpath("spark_log4j2.properties").read_text())
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # no "hostname resolves to loopback" warning
        java_opts = f"-Dlog4j2.configurationFile=file:{log_conf} -Dderby.system.home={scratch}"
        builder = (
            SparkSession.builder.master(os.environ.get("FOLLICLE_SPARK_MASTER", "local[*]"))
            .appName("follicle")
            .config("spark.driver.memory", os.environ.get("FOLLICLE_SPARK_DRIVER_MEMORY", "4g"))
            .config("spark.driver.extraJavaOptions", java_opts)
            .config("spark.sql.catalogImplementation", "in-memory")
            .config("spark.sql.warehouse.dir", str(scratch / "warehouse"))
            .config("spark.local.dir", str(scratch / "tmp"))
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.shuffle.partitions", os.environ.get("FOLLICLE_SPARK_PARTITIONS", "8"))
            .config("spark.sql.ansi.enabled", "true")  # overflow is an error, never a wrapped number
        )
        jvm_log = scratch / "jvm.log"
        try:
            with _fds_to(jvm_log):  # the JVM inherits these: its banner and warnings never reach stdout
                session = builder.getOrCreate()
        except Exception as exc:  # no Java, bad master URL, ...
            tail = jvm_log.read_text(errors="replace").strip().splitlines()[-3:] if jvm_log.exists() else []
            raise DatabaseError(f"cannot start a local Spark session: {str(exc).strip().splitlines()[0]}",
                                problems=tail) from exc
        session.sparkContext.setLogLevel("ERROR")
        _quiet_python_loggers()
        _BASE.update(session=session, scratch=scratch)
        return session


def _quiet_python_loggers() -> None:
    """PySpark logs every failed query as JSON on stderr before raising it; Follicle reports the
    exception itself, in one line."""
    import logging

    from pyspark.logger import PySparkLogger

    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        PySparkLogger.getLogger(name).setLevel(logging.CRITICAL + 1)


@contextlib.contextmanager
def _fds_to(path: Path) -> Iterator[None]:
    """Point file descriptors 1 and 2 at *path* for the duration (a child process keeps them)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with path.open("ab") as fh:
        os.dup2(fh.fileno(), 1)
        os.dup2(fh.fileno(), 2)
    try:
        yield
    finally:
        for fd, copy in zip((1, 2), saved, strict=True):
            os.dup2(copy, fd)
            os.close(copy)


def connect_spark(target: str) -> SparkBackend:
    """An Ibis connection to a ``spark:///DIR`` warehouse or an ``sc://`` Spark Connect server."""
    ibis.pyspark  # noqa: B018 - loading the backend by name registers its options (ibis.options.pyspark)
    parsed = urlparse(target)
    if parsed.scheme == "sc":
        return _connect_remote(target)
    folder = local_dir(target)
    session = base_session().newSession()  # own current database, views and SQL settings
    db = database_name(folder)
    session.sql(f"CREATE DATABASE IF NOT EXISTS {db} LOCATION '{_sql_path(folder / 'warehouse')}'")
    session.catalog.setCurrentDatabase(db)
    register_tables(session, folder / "warehouse", db)
    con = SparkBackend().connect(session)
    con.scratch_database = "default"  # its location is the process's scratch folder
    return con


#: Parameters of an ``sc://`` URL that Follicle reads and does not pass on to Spark Connect
REMOTE_PARAMS = ("database", "scratch")


def split_remote(target: str) -> tuple[str, dict[str, str]]:
    """The Spark Connect URL without Follicle's own parameters, and those parameters.

    >>> split_remote("sc://h:15002/;token=x;database=cdm")
    ('sc://h:15002/;token=x', {'database': 'cdm'})
    """
    head, _, params = target.partition(";")  # sc://HOST:PORT/;key=value;key=value
    kept, ours = [], {}
    for part in filter(None, params.split(";")):
        key, _, value = part.partition("=")
        if key in REMOTE_PARAMS:
            if not value:
                raise DatabaseError(f"{redact(target)}: ;{key}= needs a name")
            ours[key] = value
        else:
            kept.append(part)
    return ";".join([head, *kept]), ours


def _connect_remote(target: str) -> SparkBackend:
    """A Spark Connect session of its own, time zone UTC and ANSI mode on, its current database
    the CDM's (``;database=``), cached steps where ``;scratch=`` says (else cached views)."""
    url, ours = split_remote(target)
    try:
        from pyspark.sql import SparkSession

        session = SparkSession.builder.remote(url).create()  # not getOrCreate: views of its own
        _LIVE.append(session)  # see retire()
        with _few_retries(session):  # a wrong host or port fails in seconds, not after 10 minutes
            con = SparkBackend().connect(session)  # Ibis sets the time zone: the first call to the server
        with contextlib.suppress(Exception):  # a managed service may refuse to set it (it is then on)
            session.conf.set("spark.sql.ansi.enabled", "true")
        if "database" in ours:
            session.sql(f"USE {_qualified(ours['database'])}")
    except Exception as exc:  # no grpcio, server down, unknown database, ...
        if "session" in locals():
            retire(session)
        reason = str(exc).strip().splitlines()[0]
        if "RETRIES_EXCEEDED" in reason:
            reason = "no answer (is a Spark Connect server running there, and the host and port right?)"
        elif "PACKAGE_NOT_INSTALLED" in reason:
            reason += " (pip install -c constraints.txt -e '.[spark]')"
        raise DatabaseError(f"cannot connect to Spark Connect at {redact(target)}: {reason}") from exc
    con.remote = True
    con.scratch_database = ours.get("scratch")
    return con


#: Spark Connect sessions not yet retired: PySpark 4.0's sessions share one thread pool, and a
#: session's __del__ shuts it down; a session collected in the middle of another's query broke
#: that query ("cannot schedule new futures after shutdown"), so none is left to the collector
_LIVE: list[Any] = []


def retire(session: Any) -> None:
    """End a Spark Connect session (the server drops its views and cached rows) so that its
    collection later harms no other session."""
    with contextlib.suppress(Exception), _few_retries(session):  # the server may be gone already
        session.stop()
    session.client.close = lambda: None  # what __del__ calls: the pool is the live sessions'
    with contextlib.suppress(ValueError):
        _LIVE.remove(session)


@contextlib.contextmanager
def _few_retries(session: Any) -> Iterator[None]:
    """Retry an unreachable server for about 4 s (PySpark's default policy waits at least 10
    minutes, right for a busy cluster's queries, not for a mistyped URL), then restore it."""
    from pyspark.sql.connect.client.retries import DefaultPolicy

    client = session.client
    policies = client.get_retry_policies()
    client.set_retry_policies([DefaultPolicy(max_retries=4)])  # 50 + 200 + 800 + 3,200 ms
    try:
        yield
    finally:
        client.set_retry_policies(policies)


def _qualified(name: str) -> str:
    """``catalog.schema`` or ``schema`` as quoted Spark SQL."""
    return ".".join(sg.to_identifier(part, quoted=True).sql("spark") for part in name.split("."))


def register_tables(session: Any, root: Path, db: str) -> list[str]:
    """Register every CDM table folder under *root* as a Parquet table of *db*; return the tables.

    The catalog is shared by the process's sessions: tables are registered again only when the
    folder changed (a load swaps in a new one), since reading every table's Parquet schema takes
    seconds."""
    known = set(schema.tables("5.4")) | set(schema.tables("5.3"))
    present = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name in known) if root.is_dir() else []
    stat = root.stat() if root.is_dir() else None
    signature = (stat.st_ino, stat.st_mtime_ns, tuple(present)) if stat else None
    registry = _BASE.setdefault("registered", {})
    if signature is not None and registry.get(db) == signature:
        return present
    registry.pop(db, None)
    registered = {t.name for t in session.catalog.listTables(db) if not t.isTemporary}
    for name in sorted(registered & known):
        session.sql(f"DROP TABLE IF EXISTS {db}.{name}")  # an external table: its files stay
    for name in present:
        session.sql(f"CREATE TABLE {db}.{name} USING parquet LOCATION '{_sql_path(root / name)}'")
    registry[db] = signature
    return present


def _sql_path(path: Path) -> str:
    text = str(path)
    if "'" in text or "\\" in text:
        raise DatabaseError(f"{path}: a Spark warehouse folder may not contain quotes or backslashes")
    return text


def java_available() -> str | None:
    """Path of ``java`` if a Java runtime is installed (local Spark needs one), else None."""
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    return shutil.which("java")


def publish_stage(stage: Path, target: str, version: str, *, overwrite: bool = False) -> dict[str, int]:
    """Make the CDM in the staged DuckDB file *stage* the CDM of the local Spark *target*.

    Every table of CDM *version* is written as Parquet into ``DIR/.warehouse.tmp-PID/``, then that
    folder replaces ``DIR/warehouse`` by rename (the old one is removed after the swap): a failure
    before the swap leaves the previous CDM as it was, and a load killed mid-way leaves only a
    temporary folder that the next load removes. Returns rows per table.
    """
    from follicle.cdm.connect import open_duckdb
    from follicle.tempfiles import remove_stale

    if not target.startswith("spark:"):
        raise DatabaseError(f"{target}: loading through Spark Connect is not supported; load into a local "
                            "spark:///DIR warehouse and copy its Parquet folders to the cluster (docs/scale.md)")
    folder = local_dir(target)
    folder.mkdir(parents=True, exist_ok=True)
    live = folder / "warehouse"
    if live.is_dir() and any(live.iterdir()) and not overwrite:
        raise DatabaseError(f"{target} already holds a CDM ({live}); use --overwrite to replace it")
    remove_stale(folder, prefix=".warehouse.")
    tmp, old = folder / f".warehouse.tmp-{os.getpid()}", folder / f".warehouse.old-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    counts: dict[str, int] = {}
    duck = open_duckdb(stage, read_only=True)
    try:
        tmp.mkdir()
        for name in schema.tables(version):
            (tmp / name).mkdir()
            counts[name] = int(duck.execute(f"SELECT count(*) FROM {name}").fetchone()[0])
            out = _sql_path(tmp / name / "part-00000.parquet")
            duck.execute(f"COPY {name} TO '{out}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 1000000)")
        if live.exists():
            os.replace(live, old)
        os.replace(tmp, live)
    except Exception as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not live.exists():
            os.replace(old, live)  # the swap failed half-way: put the previous CDM back
        if isinstance(exc, DatabaseError):
            raise
        raise DatabaseError(f"load into {target} failed, previous CDM kept: {str(exc).splitlines()[0]}") from exc
    finally:
        duck.close()
    shutil.rmtree(old, ignore_errors=True)
    return counts
