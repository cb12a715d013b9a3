"""Issue 19 point 1 and 5: loopback by default, token, CSRF, size limits, no traversal, 404 without a
trace, security headers, runs that never block other requests and failed runs that show their message."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from follicle.cli import app as cli_app
from follicle.errors import InputError
from follicle.web.settings import check_bind, is_loopback, resolve_token
from conftest import csrf, make_client


def test_loopback_by_default_and_other_hosts_need_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost") and is_loopback("127.8.9.1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5") and not is_loopback("example.org")
    check_bind("127.0.0.1", None)
    with pytest.raises(InputError, match="needs an access token"):
        check_bind("0.0.0.0", None)
    check_bind("0.0.0.0", "a" * 20)
    monkeypatch.setenv("FOLLICLE_WEB_TOKEN", "from-the-environment-123")
    assert resolve_token(None) == "from-the-environment-123"
    with pytest.raises(InputError, match="at least 16"):
        resolve_token("short")


def test_cli_refuses_a_public_host_without_token(world_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FOLLICLE_WEB_TOKEN", raising=False)
    r = CliRunner().invoke(cli_app, ["web", "--db", str(world_db), "--host", "0.0.0.0", "--runs", str(tmp_path)])
    assert r.exit_code == 2
    assert "needs an access token" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(cli_app, ["web", "--db", str(tmp_path / "missing.duckdb"), "--runs", str(tmp_path)])
    assert r.exit_code != 0 and "database file not found" in r.output


def test_token_guards_every_page(world_db: Path, tmp_path: Path) -> None:
    token = "s3cret-token-for-tests"
    c = make_client(world_db, tmp_path, token=token)
    r = c.get("/data", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert c.post("/meta", data={}).status_code == 401
    assert c.get("/static/app.css").status_code == 200
    assert c.get("/data", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    page = c.get("/login")
    assert page.status_code == 200
    r = c.post("/login", data={"token": "wrong", "next": "/data", "csrf_token": c.cookies.get("follicle_csrf")})
    assert r.status_code == 401
    r = c.post("/login", data={"token": token, "next": "//evil.example/x", "csrf_token": c.cookies.get("follicle_csrf")},
               follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"
    assert token not in (c.cookies.get("follicle_auth") or "")
    assert c.get("/data").status_code == 200


def test_host_header_is_pinned_on_loopback(client) -> None:
    assert client.get("/", headers={"host": "localhost:8000"}).status_code == 200
    r = client.get("/", headers={"host": "attacker.example"})
    assert r.status_code == 400


def test_csrf_on_state_changing_requests(client) -> None:
    r = client.post("/studies/new", data={"name": "x1"})
    assert r.status_code == 403 and "CSRF" in r.text
    r = client.post("/studies/new", data={"name": "x1"}, headers={"X-CSRF-Token": "forged-token-value-that-is-long-enough"})
    assert r.status_code == 403
    r = client.post("/studies/new", data={"name": "x1"}, headers=csrf(client) | {"Origin": "https://evil.example"})
    assert r.status_code == 403 and "another site" in r.text
    ok = client.post("/studies/new", data={"name": "x1", "csrf_token": client.cookies.get("follicle_csrf")},
                     follow_redirects=False)
    assert ok.status_code == 303
    # the cookie is SameSite=Strict and HttpOnly
    fresh = make_client(Path(client.app.state.settings.db), client.app.state.settings.runs)
    fresh.cookies.clear()
    cookie = fresh.get("/").headers["set-cookie"]
    assert "SameSite=Strict" in cookie and "HttpOnly" in cookie


def test_security_headers(client) -> None:
    r = client.get("/")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe" not in csp and "frame-ancestors 'none'" in csp
    assert r.headers["x-frame-options"] == "DENY" and r.headers["x-content-type-options"] == "nosniff"
    assert "no-store" in r.headers["cache-control"]
    html = r.text
    assert "http://" not in html.split("<body")[0] and "https://" not in html.split("<body")[0]  # no CDN


def test_unknown_paths_404_without_a_trace(client) -> None:
    for path in ("/nope", "/runs/../../etc/passwd", "/runs/%2e%2e%2fstatus.json", "/static/../app.py",
                 "/runs/20260101-000000-x/files/../../spec.yaml", "/studies/..%2F..%2Fetc", "/concepts/12x",
                 "/studies/Bad-Name", "/meta/r/unknown/forest"):
        r = client.get(path)
        assert r.status_code == 404, path
        assert "Traceback" not in r.text and "File \"" not in r.text
    assert client.post("/runs", headers=csrf(client)).status_code == 405


def test_body_size_limit(world_db: Path, tmp_path: Path) -> None:
    c = make_client(world_db, tmp_path, max_upload_bytes=10_000)
    big = "study,events_t,total_t,events_c,total_c\n" + "A,1,10,1,10\n" * 2000
    r = c.post("/meta", data={"source": "upload"}, files={"csv": ("big.csv", big, "text/csv")}, headers=csrf(c))
    assert r.status_code == 413


def test_uploads_parsed_strictly(client) -> None:
    h = csrf(client) | {"HX-Request": "true"}
    r = client.post("/meta", data={"source": "upload"}, files={"csv": ("t.csv", b"\xff\xfe\x00bin", "text/csv")}, headers=h)
    assert r.status_code == 400 and "t.csv" in r.text
    r = client.post("/meta", data={"source": "upload", "measure": "OR"},
                    files={"csv": ("t.csv", "study,events_t\nA,1\n", "text/csv")}, headers=h)
    assert r.status_code == 400 and "missing" in r.text
    r = client.post("/studies/upload", files={"spec": ("s.yaml", "a: [1, 2", "application/x-yaml")}, headers=csrf(client))
    assert r.status_code == 400 and "not valid YAML" in r.text
    r = client.post("/cds", data={"drug": "baricitinib", "egfr": "1e999"}, headers=h)
    assert r.status_code == 400 and "egfr" in r.text


def test_a_long_run_does_not_block_and_a_failed_run_shows_its_message(client) -> None:
    runs = client.app.state.runs
    run_id = runs.create("broken", "name: broken\nconcept_sets: {}\ncohorts: {}\ncomparisons: {}\nwhat: 1\n")
    t0 = time.monotonic()
    assert client.get("/concepts", params={"q": "alopecia"}).status_code == 200
    assert time.monotonic() - t0 < 20
    for _ in range(120):
        if runs.status(run_id).get("state") in ("done", "failed"):
            break
        time.sleep(0.5)
    assert runs.status(run_id)["state"] == "failed"
    page = client.get(f"/runs/{run_id}")
    assert "The run failed" in page.text and "what" in page.text and "Traceback" not in page.text
