"""Spark Connect (``--db sc://HOST:PORT``) beyond the contract suite: the URL's parts, a quick
and clear failure when no server answers, the session settings Follicle imposes on a server with
other defaults, and where a study's cached steps go (a cached view of the session by default,
Parquet tables of the ``;scratch=`` database otherwise). The server is ``spark_connect``'s."""

from __future__ import annotations

import socket
import time

import ibis
import pyarrow as pa
import pytest

from follicle.cdm.connect import connect, redact
from follicle.cdm.spark import split_remote
from follicle.errors import DatabaseError

ROWS = pa.table({"person_id": pa.array([1, 2, None], pa.int64()), "d": [1.5, None, 3.0]})
DATABRICKS = "sc://adb-1.2.azuredatabricks.net:443/;token=dapiSECRET;x-databricks-cluster-id=0101-x;database=main.cdm"


def test_url_parts_and_token():
    """Follicle's own parameters leave the URL; Spark Connect's (token, headers) stay; the token
    never appears in a message. Needs no server."""
    assert split_remote(DATABRICKS) == ("sc://adb-1.2.azuredatabricks.net:443/;token=dapiSECRET;x-databricks-cluster-id=0101-x",
                                        {"database": "main.cdm"})
    assert split_remote("sc://h:15002/;scratch=work;database=cdm") == ("sc://h:15002/", {"scratch": "work", "database": "cdm"})
    assert split_remote("sc://h:15002") == ("sc://h:15002", {})
    assert "SECRET" not in redact(DATABRICKS) and "token=***" in redact(DATABRICKS)
    with pytest.raises(DatabaseError, match="database= needs a name") as err:
        split_remote("sc://h:1/;token=SECRET;database=")
    assert "SECRET" not in str(err.value)


def test_no_server_fails_in_seconds_and_hides_the_token(connect_client):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(DatabaseError, match="no answer") as err:
        connect(f"sc://127.0.0.1:{port}/;token=SECRET")
    assert time.monotonic() - start < 60  # PySpark alone retries for 10 minutes
    assert "SECRET" not in str(err.value) and f"127.0.0.1:{port}" in str(err.value)


def test_session_settings_whatever_the_server_defaults(spark_connect: str):
    """The test server runs at UTC+14 with ANSI off; a Follicle session is UTC with ANSI on, and
    a missing database is named."""
    con = connect(spark_connect)
    try:
        assert con._session.conf.get("spark.sql.session.timeZone") == "UTC"
        assert con._session.conf.get("spark.sql.ansi.enabled") == "true"
        # a wall-clock time is read at UTC (at the server's UTC+14 it would be 50,400 s earlier)
        assert con.execute(ibis.timestamp("2000-01-01 00:30:00").epoch_seconds()) == 946_686_600
    finally:
        con.disconnect()
    assert con._session.is_stopped  # the server may forget the session and its views
    with pytest.raises(DatabaseError, match="nope"):
        connect(f"{spark_connect}/;database=nope")


def test_cached_step_is_a_cached_view_of_the_session(spark_connect: str):
    """Without ;scratch=, a study's step is a cached temporary view: computed once, no write
    rights needed, invisible to other sessions, gone once dropped."""
    con, other = connect(spark_connect), connect(spark_connect)
    try:
        name = ibis.util.gen_name("follicle_step")
        t = con.create_table(name, ibis.memtable(ROWS), temp=True)
        assert con._session.catalog.isCached(name)
        assert t.count().execute() == 3 and t.person_id.count().execute() == 2  # its NULLs kept
        assert name in con.list_tables() and name not in other.list_tables()
        con.drop_table(name, force=True)
        assert name not in con.list_tables()
    finally:
        con.disconnect()
        other.disconnect()


def test_scratch_database_holds_the_steps_as_tables(spark_connect: str):
    """With ;scratch=DB, a step is a Parquet table of DB, readable from another session, dropped
    with the step."""
    admin = connect(spark_connect)
    admin.raw_sql("CREATE DATABASE IF NOT EXISTS follicle_work")
    con = connect(f"{spark_connect}/;scratch=follicle_work")
    try:
        name = ibis.util.gen_name("follicle_step")
        t = con.create_table(name, ibis.memtable(ROWS), temp=True)
        assert t.get_name() == f"follicle_work.{name}"
        assert [x.isTemporary for x in admin._session.catalog.listTables("follicle_work") if x.name == name] == [False]
        assert admin.table(name, database="follicle_work").count().execute() == 3
        con.drop_table(name, force=True)
        assert name not in admin.list_tables(database="follicle_work")
    finally:
        con.disconnect()
        admin.disconnect()
