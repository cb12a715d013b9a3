"""Latency of the CDS Hooks order-sign service under a steady load, over loopback.

Starts uvicorn (one worker, JWT verification ON with an ES384 key made here) on 127.0.0.1, then sends
a realistic order-sign request (baricitinib draft order, Patient + 10 labs + medications prefetch,
a fresh signed token per request) at a fixed rate for a fixed time: an open-loop schedule (request i
is due at i/rate seconds), at most ``--max-in-flight`` outstanding, ``rate*duration`` requests in all.

Reports p50/p95/p99/max latency (from the scheduled send time, so client lag counts against us),
the server's peak RSS, and, as the baseline in the same run, the same statistics for the discovery
endpoint (same framework and JWT check, no engine): the ratio shows what the engine adds.

    PYTHONPATH=src /work/venv/bin/python bench/bench_cds.py            # 100 req/s for 60 s
    PYTHONPATH=src /work/venv/bin/python bench/bench_cds.py --duration 5 --baseline-duration 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx  # only to wait for the server to come up
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "tests" / "cds" / "data" / "patient_bundle.json"
ISS = "https://bench-ehr.example.org"
ORDER = "/cds-services/aa-jaki-order-check"
DISC = "/cds-services"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def order_body() -> dict:
    res = [e["resource"] for e in json.loads(BUNDLE.read_text())["entry"]]
    labs = [r for r in res if r["resourceType"] == "Observation" and r["id"] != "bmi"]
    meds = [r for r in res if r["resourceType"] == "MedicationRequest"]
    mr = {"resourceType": "MedicationRequest", "id": "mr1", "status": "draft", "intent": "order",
          "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "2047232", "display": "baricitinib 4 MG Oral Tablet"}]},
          "dosageInstruction": [{"doseAndRate": [{"doseQuantity": {"value": 4, "unit": "mg"}}]}],
          "subject": {"reference": "Patient/pt1"}}
    ss = lambda rs: {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in rs]}  # noqa: E731
    return {"hook": "order-sign", "hookInstance": str(uuid.uuid4()),
            "context": {"userId": "Practitioner/p1", "patientId": "pt1", "draftOrders": ss([mr])},
            "prefetch": {"patient": res[0], "labs": ss(labs), "medications": ss(meds)}}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process *pid* so far (from /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return -1


async def _read_response(reader: asyncio.StreamReader) -> int:
    """Read one HTTP/1.1 response (Content-Length framed); return its status code."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


async def run_load(port: int, path: str, method: str, body: bytes | None, key, rate: float, duration: float,
                   max_in_flight: int, alg: str = "ES384") -> dict:
    """Open-loop load: request i is due at i/rate s; a pool of keep-alive connections, one request each at a time.

    A minimal HTTP/1.1 client on asyncio streams keeps the load generator's own cost far below the
    server's (a full HTTP client library costs more CPU per request than the service itself).
    """
    n = int(rate * duration)
    aud = f"http://127.0.0.1:{port}{path}"
    now = int(time.time())
    raw: list[bytes] = []
    for _ in range(n):
        tok = jwt.encode({"iss": ISS, "aud": aud, "iat": now, "exp": now + int(duration) + 120, "jti": str(uuid.uuid4())},
                         key, algorithm=alg, headers={"kid": "bench"})
        head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {tok}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body or b'')}\r\n\r\n").encode()
        raw.append(head + (body or b""))
    conns: asyncio.Queue = asyncio.Queue()
    for _ in range(max_in_flight):
        conns.put_nowait(await asyncio.open_connection("127.0.0.1", port))
    lat: list[float] = []
    service: list[float] = []
    errors: dict[str, int] = {}
    t0 = time.perf_counter() + 0.2

    async def one(i: int) -> None:
        due = t0 + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        reader, writer = await conns.get()
        sent = time.perf_counter()
        try:
            writer.write(raw[i])
            status = await asyncio.wait_for(_read_response(reader), timeout=10)
            key_ = str(status)
            conns.put_nowait((reader, writer))
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
            key_ = type(exc).__name__
            writer.close()
            conns.put_nowait(await asyncio.open_connection("127.0.0.1", port))
        end = time.perf_counter()
        if key_ == "200":
            lat.append((end - due) * 1000)
            service.append((end - sent) * 1000)
        else:
            errors[key_] = errors.get(key_, 0) + 1

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    wall = time.perf_counter() - start
    while not conns.empty():
        _, w = conns.get_nowait()
        w.close()
    q = statistics.quantiles(lat, n=100) if len(lat) >= 2 else [float("nan")] * 99
    return {"requests": n, "ok": len(lat), "errors": errors, "wall_s": wall, "achieved_rps": len(lat) / wall,
            "p50_ms": q[49], "p95_ms": q[94], "p99_ms": q[98], "max_ms": max(lat, default=float("nan")),
            "p99_from_send_ms": statistics.quantiles(service, n=100)[98] if len(service) >= 2 else float("nan")}


async def run_closed(port: int, path: str, body: bytes, key, connections: int, total: int, alg: str) -> dict:
    """Closed loop: *connections* keep-alive connections, each sending its next request as soon as
    the previous answer arrives, *total* requests in all (bounded); latency from send to answer."""
    aud = f"http://127.0.0.1:{port}{path}"
    now = int(time.time())
    raw = []
    for _ in range(total):
        tok = jwt.encode({"iss": ISS, "aud": aud, "iat": now, "exp": now + 600, "jti": str(uuid.uuid4())},
                         key, algorithm=alg, headers={"kid": "bench"})
        raw.append((f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {tok}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body)
    conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(connections)]
    lat: list[float] = []
    errors: dict[str, int] = {}
    it = iter(range(total))

    async def worker(reader, writer) -> None:
        for i in it:
            sent = time.perf_counter()
            try:
                writer.write(raw[i])
                status = await asyncio.wait_for(_read_response(reader), timeout=30)
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                return
            if status == 200:
                lat.append((time.perf_counter() - sent) * 1000)
            else:
                errors[str(status)] = errors.get(str(status), 0) + 1

    start = time.perf_counter()
    await asyncio.gather(*(worker(r, w) for r, w in conns))
    wall = time.perf_counter() - start
    for _, w in conns:
        w.close()
    q = statistics.quantiles(lat, n=100) if len(lat) >= 2 else [float("nan")] * 99
    return {"connections": connections, "requests": total, "ok": len(lat), "errors": errors, "wall_s": wall,
            "throughput_rps": len(lat) / wall, "p50_ms": q[49], "p99_ms": q[98], "max_ms": max(lat, default=float("nan"))}


async def abuse(port: int, key, alg: str, mib: int = 200) -> dict:
    """Oversized bodies: *mib* MiB without a token, and with a valid token (413), and 30 MB of small
    JSON objects with a valid token; seconds until the answer and the server's RSS afterwards."""
    out = {}
    aud = f"http://127.0.0.1:{port}{ORDER}"
    now = int(time.time())

    def tok() -> str:
        return jwt.encode({"iss": ISS, "aud": aud, "iat": now, "exp": now + 600, "jti": str(uuid.uuid4())},
                          key, algorithm=alg, headers={"kid": "bench"})

    cases = {"unauthenticated_%dMiB" % mib: (None, mib * 2**20, b"["),
             "authenticated_%dMiB" % mib: (tok(), mib * 2**20, b"["),
             "authenticated_30MB_small_objects": (tok(), 30_000_000, b'{"a":1},')}
    for name, (token, size, unit) in cases.items():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        writer.write((f"POST {ORDER} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}Content-Type: application/json\r\n"
                      f"Transfer-Encoding: chunked\r\n\r\n").encode())
        t0 = time.perf_counter()
        chunk = unit * (2**20 // len(unit))
        sent, status = 0, None
        read = asyncio.ensure_future(_read_response(reader))
        try:
            while sent < size and not read.done():
                writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                await writer.drain()
                sent += len(chunk)
            if not read.done():
                writer.write(b"0\r\n\r\n")
            status = await asyncio.wait_for(read, timeout=60)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as exc:
            status = type(exc).__name__
        out[name] = {"status": status, "seconds": round(time.perf_counter() - t0, 3), "bytes_sent": sent}
        writer.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=100.0)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--baseline-duration", type=float, default=20.0)
    ap.add_argument("--max-in-flight", type=int, default=64)
    ap.add_argument("--alg", choices=["ES384", "RS384"], default="ES384", help="JWT algorithm (both recommended by the spec)")
    ap.add_argument("--closed-connections", type=int, default=200,
                    help="then a closed loop over this many concurrent keep-alive connections (0: skip)")
    ap.add_argument("--closed-requests", type=int, default=3000)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.rate * args.duration > 20_000:
        ap.error("rate*duration above 20000 requests: keep the loop bounded")

    if args.alg == "ES384":
        key = ec.generate_private_key(ec.SECP384R1())
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key())) | {"kid": "bench"}
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key())) | {"kid": "bench"}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), FOLLICLE_CDS_AUTH_ENABLED="true",
               FOLLICLE_CDS_TRUSTED_ISSUERS=json.dumps([{"iss": ISS, "jwks": {"keys": [jwk]}}]))
    server = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "follicle.service.main:create_app",
                               "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log"], env=env)
    try:
        for _ in range(100):
            try:
                if httpx.get(base + DISC, timeout=0.5).status_code == 401:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise SystemExit("server did not start")
        body = json.dumps(order_body()).encode()
        # warm-up (imports, first KB load), not measured
        asyncio.run(run_load(port, ORDER, "POST", body, key, 50, 1, args.max_in_flight, args.alg))
        c0 = cpu_seconds(server.pid)
        order = asyncio.run(run_load(port, ORDER, "POST", body, key, args.rate, args.duration, args.max_in_flight, args.alg))
        c1 = cpu_seconds(server.pid)
        disc = asyncio.run(run_load(port, DISC, "GET", None, key, args.rate, args.baseline_duration, args.max_in_flight, args.alg))
        c2 = cpu_seconds(server.pid)
        closed = (asyncio.run(run_closed(port, ORDER, body, key, args.closed_connections, args.closed_requests, args.alg))
                  if args.closed_connections else None)
        order["server_cpu_ms_per_request"] = (c1 - c0) * 1000 / order["requests"]
        disc["server_cpu_ms_per_request"] = (c2 - c1) * 1000 / disc["requests"]
        rss = peak_rss_kib(server.pid)
        abuse_res = asyncio.run(abuse(port, key, args.alg))
        abuse_res["server_peak_rss_mib_after"] = peak_rss_kib(server.pid) / 1024
    finally:
        server.terminate()
        server.wait(timeout=10)
    result = {
        "config": {"rate": args.rate, "duration_s": args.duration, "request_bytes": len(body), "jwt": args.alg,
                   "cpus": os.cpu_count(), "loadavg_1m": os.getloadavg()[0]},
        "order_sign": order, "discovery_baseline": disc, "order_sign_closed_loop": closed, "oversized_bodies": abuse_res,
        "ratio_p50_order_vs_discovery": order["p50_ms"] / disc["p50_ms"],
        "ratio_p99_order_vs_discovery": order["p99_ms"] / disc["p99_ms"],
        "server_peak_rss_mib": rss / 1024, "client_peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "target_p99_ms": 50, "target_met": order["p99_ms"] < 50 and not order["errors"],
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        o, d = order, disc
        print(f"order-sign  {o['ok']}/{o['requests']} ok at {o['achieved_rps']:.1f} req/s over {o['wall_s']:.1f} s; "
              f"p50 {o['p50_ms']:.2f} ms  p95 {o['p95_ms']:.2f}  p99 {o['p99_ms']:.2f}  max {o['max_ms']:.2f}  errors {o['errors']}")
        print(f"discovery   {d['ok']}/{d['requests']} ok; p50 {d['p50_ms']:.2f} ms  p99 {d['p99_ms']:.2f} ms (baseline: framework + JWT, no engine)")
        print(f"server CPU per request: order-sign {o['server_cpu_ms_per_request']:.2f} ms, discovery {d['server_cpu_ms_per_request']:.2f} ms")
        print(f"ratio order/discovery: p50 {result['ratio_p50_order_vs_discovery']:.2f}x  p99 {result['ratio_p99_order_vs_discovery']:.2f}x")
        print(f"server peak RSS {result['server_peak_rss_mib']:.0f} MiB; client peak RSS {result['client_peak_rss_mib']:.0f} MiB; "
              f"load avg {result['config']['loadavg_1m']:.2f} on {result['config']['cpus']} CPUs")
        if closed:
            print(f"closed loop, {closed['connections']} connections: {closed['ok']}/{closed['requests']} ok at "
                  f"{closed['throughput_rps']:.1f} req/s; p50 {closed['p50_ms']:.1f} ms  p99 {closed['p99_ms']:.1f} ms  "
                  f"max {closed['max_ms']:.1f}  errors {closed['errors']}")
        for name, a in abuse_res.items():
            print(f"oversized body {name}: {a}")
        print(f"target p99 < 50 ms: {'MET' if result['target_met'] else 'NOT MET'}")
    return 0 if result["target_met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
