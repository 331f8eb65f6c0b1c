#!/usr/bin/env python3
"""The provider against nginx on this machine, in alternation: one command, a ratio table.

    .venv/bin/python bench/run.py            # installs nginx-light, wrk, uvloop (bench/install.sh)
    .venv/bin/python bench/run.py --pairs 3 --duration 10 --cert ec

nginx (Debian, ``worker_processes 1``, static files, access log off) serves byte-identical
copies of the provider's discovery document and JWKS (checked before measuring). The provider is
the real console script: file source, ``serving_cert_file`` (TLS) or ``insecure_addr`` (plain).
Servers run under ``taskset -c 1``, wrk and this script under ``taskset -c 0``: each side has one
core of the two. For every scenario and pair, nginx then the provider each get a warm-up and a
measured wrk run (A B A B ...); ratios are provider ÷ nginx per pair, and the table shows medians.
Server CPU per request is utime+stime of the server's process group over the run.

Scenarios (wrk -t1 -c50):
  keys_tls_keepalive       GET /keys, keep-alive, TLS
  keys_plain_keepalive     GET /keys, keep-alive, plain HTTP
  keys_tls_newconn_full    GET /keys, Connection: close, TLS with tickets and session cache off on
                           both servers: every request is a new connection with a full handshake
  discovery_tls_keepalive  GET /.well-known/openid-configuration, keep-alive, TLS
Then: peak RSS (VmHWM) of every provider process, cold start to the first 200 on /keys, the
Workload API rotation latency (bench/rotation_latency.py), and the peak RSS with the Workload API
and Server API sources (the test suite's gRPC fakes as upstream). Every wrk run is bounded by
``--duration``; every wait has a timeout. Everything stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from procs import Server, free_port, http_get, system_cpu, wait_for_200

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PY = ROOT / ".venv" / "bin" / "python"  # dev venv: the gRPC fakes, rotation_latency.py
PRODUCT = BENCH / ".venv-product" / "bin"  # the provider as installed: runtime deps + uvloop
EXE = PRODUCT / "oidc-discovery-provider"
DISCOVERY = "/.well-known/openid-configuration"
SERVER_CPU = "1"
CLIENT_CPU = "0"


@dataclass(frozen=True)
class Scenario:
    name: str
    path: str
    close: bool
    listener: str  # tls | plain | tls_noticket


SCENARIOS = [
    Scenario("keys_tls_keepalive", "/keys", False, "tls"),
    Scenario("keys_plain_keepalive", "/keys", False, "plain"),
    Scenario("keys_tls_newconn_full", "/keys", True, "tls_noticket"),
    Scenario("discovery_tls_keepalive", DISCOVERY, False, "tls"),
]
EXTRA_SCENARIOS = [Scenario("keys_tls_newconn_resumed", "/keys", True, "tls")]


# -- material ----------------------------------------------------------------------------------
def make_certificate(work: Path, kind: str) -> tuple[Path, Path]:
    """A self-signed serving certificate for localhost / 127.0.0.1 (ECDSA P-256 or RSA-2048)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import NameOID

    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    if kind == "ec":
        key = ec.generate_private_key(ec.SECP256R1())
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = work / "tls.crt", work / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def make_bundle(work: Path) -> Path:
    """A SPIFFE bundle with 2 x RSA-2048 and 1 x EC P-256 JWT authorities (JWKS ~1.3 KB)."""
    sys.path.insert(0, str(ROOT))
    from tests.keyfactory import bundle_bytes, ec_key, public_jwk, rsa_key

    path = work / "bundle.spiffe"
    path.write_bytes(
        bundle_bytes(
            [
                public_jwk("bench-rsa-1", rsa_key(fresh=True)),
                public_jwk("bench-rsa-2", rsa_key(fresh=True)),
                public_jwk("bench-ec-1", ec_key()),
            ]
        )
    )
    return path


def provider_config(work: Path, name: str, listener: str, source: str) -> Path:
    lines = ['domains = ["localhost"]']
    if listener == "plain":
        lines.append(f'insecure_addr = "127.0.0.1:{free_port()}"')
    else:
        lines += [
            "serving_cert_file {",
            f'  cert_file_path = "{work / "tls.crt"}"',
            f'  key_file_path = "{work / "tls.key"}"',
            f'  addr = "127.0.0.1:{free_port()}"',
            "}",
        ]
    lines += source.splitlines()
    path = work / f"{name}.conf"
    path.write_text("\n".join(lines) + "\n")
    return path


def listener_port(conf: Path) -> int:
    for line in conf.read_text().splitlines():
        if "127.0.0.1:" in line:
            return int(line.rsplit(":", 1)[1].strip('"'))
    raise ValueError(conf)


NGINX_CONF = """\
daemon off;
master_process on;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    server_tokens off;
    keepalive_requests 10000000;
    keepalive_timeout 10s;
    client_body_temp_path {work}/nginx-tmp;
    proxy_temp_path {work}/nginx-tmp;
    fastcgi_temp_path {work}/nginx-tmp;
    uwsgi_temp_path {work}/nginx-tmp;
    scgi_temp_path {work}/nginx-tmp;
    types {{ }}
    default_type application/json;
    ssl_certificate {work}/tls.crt;
    ssl_certificate_key {work}/tls.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    server {{
        listen 127.0.0.1:{plain};
{locations}
    }}
    server {{
        listen 127.0.0.1:{tls} ssl;
{locations}
    }}
    server {{
        listen 127.0.0.1:{tls_noticket} ssl;
        ssl_session_tickets off;
        ssl_session_cache off;
{locations}
    }}
}}
"""
NGINX_LOCATIONS = """\
        location = /keys {{ alias {work}/docroot/keys.json; }}
        location = /.well-known/openid-configuration {{ alias {work}/docroot/discovery.json; }}"""


# -- load ----------------------------------------------------------------------------------------
def run_wrk(port: int, scenario: Scenario, duration: float, connections: int) -> dict[str, Any]:
    scheme = "http" if scenario.listener == "plain" else "https"
    env = dict(os.environ, WRK_PATH=scenario.path, WRK_CLOSE="1" if scenario.close else "0")
    seconds = max(1, round(duration))  # wrk takes whole seconds
    argv = [
        "taskset", "-c", CLIENT_CPU, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s",
        "--timeout", "5s", "--latency", "-s", str(BENCH / "wrk_report.lua"),
        f"{scheme}://127.0.0.1:{port}/",
    ]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=duration + 60, check=True
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((x for x in out.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{out.stdout}\n{out.stderr}")
    result: dict[str, float] = json.loads(line[len("WRKJSON ") :])
    result["client_cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return result


def measure(
    server: Server, port: int, scenario: Scenario, args: argparse.Namespace
) -> dict[str, Any]:
    """A warm-up, then a measured run with the server's CPU and the machine's load around it."""
    run_wrk(port, scenario, args.warmup, args.connections)
    cpu0, sys0 = server.cpu_seconds(), system_cpu()
    r = run_wrk(port, scenario, args.duration, args.connections)
    cpu1, sys1 = server.cpu_seconds(), system_cpu()
    seconds = r["duration_us"] / 1e6
    server_cpu = cpu1 - cpu0
    busy, irq = sys1[0] - sys0[0], sys1[1] - sys0[1]
    errors = sum(
        int(r[k])
        for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")
    )
    return {
        "server": server.name,
        "scenario": scenario.name,
        "requests": int(r["requests"]),
        "rps": r["requests"] / seconds,
        "p50_ms": r["p50_us"] / 1000,
        "p99_ms": r["p99_us"] / 1000,
        "max_ms": r["max_us"] / 1000,
        "errors": errors,
        "server_cpu_s": server_cpu,
        "server_us_per_req": server_cpu / max(1, r["requests"]) * 1e6,
        "client_cpu_s": r["client_cpu_s"],
        "irq_cpu_s": irq,
        # CPU used by everything else on the machine during the run (other engineers' work).
        "other_cpu_pct": max(0.0, busy - irq - server_cpu - r["client_cpu_s"]) / seconds * 100,
        "seconds": seconds,
    }


# -- reporting -----------------------------------------------------------------------------------
def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def summarise(runs: list[dict[str, Any]], scenarios: list[Scenario]) -> list[dict[str, Any]]:
    rows = []
    for sc in scenarios:
        a = [r for r in runs if r["scenario"] == sc.name and r["server"] == "nginx"]
        b = [r for r in runs if r["scenario"] == sc.name and r["server"] == "provider"]
        pairs = list(zip(a, b, strict=False))
        if not pairs:
            continue

        def col(rs: list[dict[str, Any]], key: str) -> float:
            return med([float(r[key]) for r in rs])

        rows.append(
            {
                "scenario": sc.name,
                "pairs": len(pairs),
                "nginx_rps": col(a, "rps"),
                "ours_rps": col(b, "rps"),
                "rps_ratio": med([float(y["rps"]) / float(x["rps"]) for x, y in pairs]),
                "nginx_p50": col(a, "p50_ms"),
                "nginx_p99": col(a, "p99_ms"),
                "ours_p50": col(b, "p50_ms"),
                "ours_p99": col(b, "p99_ms"),
                "nginx_us": col(a, "server_us_per_req"),
                "ours_us": col(b, "server_us_per_req"),
                "cpu_eff_ratio": med(
                    [
                        float(x["server_us_per_req"]) / float(y["server_us_per_req"])
                        for x, y in pairs
                    ]
                ),
                "other_cpu_pct": med([float(r["other_cpu_pct"]) for r in a + b]),
                "errors": sum(int(r["errors"]) for r in a + b),
            }
        )
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    out = [
        "| scenario | nginx req/s | ours req/s | **ratio** | nginx p50/p99 ms | ours p50/p99 ms "
        "| nginx µs/req | ours µs/req | **CPU eff.** | other load | errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {r['scenario']} | {r['nginx_rps']:,.0f} | {r['ours_rps']:,.0f} "
            f"| **{r['rps_ratio']:.2f}** | {r['nginx_p50']:.2f} / {r['nginx_p99']:.2f} "
            f"| {r['ours_p50']:.2f} / {r['ours_p99']:.2f} | {r['nginx_us']:.1f} "
            f"| {r['ours_us']:.1f} | **{r['cpu_eff_ratio']:.2f}** | {r['other_cpu_pct']:.0f} % "
            f"| {r['errors']:.0f} |"
        )
    return "\n".join(out)


# -- the other figures ---------------------------------------------------------------------------
def cold_start(work: Path, conf: Path, runs: int) -> list[float]:
    """Seconds from spawning the console script to the first 200 on /keys over TLS."""
    port = listener_port(conf)
    times = []
    for i in range(runs):
        server = Server(
            f"cold-{i}", [str(EXE), "-config", str(conf)], SERVER_CPU, work / "cold.log"
        )
        server.start()
        try:
            times.append(wait_for_200(port, "/keys", tls=True, server=server))
        finally:
            server.stop()
    return times


def rotation_latency(rotations: int) -> str:
    out = subprocess.run(
        [str(PY), str(BENCH / "rotation_latency.py"), "--rotations", str(rotations)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return out.stdout.strip()


def upstream_rss(work: Path, args: argparse.Namespace) -> dict[str, float]:
    """Peak RSS (MiB) of the provider with the Workload API and Server API sources, after load."""
    upstream_dir = Path(tempfile.mkdtemp(prefix="up-", dir="/tmp"))  # short unix socket paths
    fakes = Server(
        "fake-upstreams",
        [str(PY), str(BENCH / "fake_upstreams.py"), str(upstream_dir), "--lifetime", "300"],
        CLIENT_CPU,
        work / "fakes.log",
    )
    fakes.start()
    result = {}
    try:
        deadline = time.monotonic() + 30
        while not (upstream_dir / "upstreams.ready").exists():
            if time.monotonic() > deadline or not fakes.alive():
                raise RuntimeError(f"fake upstreams did not start; see {fakes.log}")
            time.sleep(0.05)
        sources = {
            "workload_api": "workload_api {\n"
            f'  socket_path = "{upstream_dir / "agent.sock"}"\n'
            '  trust_domain = "example.org"\n}',
            "server_api": f'server_api {{\n  address = "unix://{upstream_dir / "server.sock"}"\n}}',
        }
        for name, source in sources.items():
            conf = provider_config(work, f"provider-{name}", "tls", source)
            port = listener_port(conf)
            server = Server(
                name, [str(EXE), "-config", str(conf)], SERVER_CPU, work / f"{name}.log"
            )
            server.start()
            try:
                wait_for_200(port, "/keys", tls=True, server=server)
                for sc in (SCENARIOS[0], EXTRA_SCENARIOS[0]):
                    run_wrk(port, sc, args.upstream_load, args.connections)
                result[name] = server.peak_rss_kib() / 1024
            finally:
                server.stop()
    finally:
        fakes.stop()
        shutil.rmtree(upstream_dir, ignore_errors=True)
    return result


def acme_idle_rss(work: Path, bundle: Path, seconds: float = 3.0) -> float:
    """Peak RSS (MiB) in ACME mode, idle: no ACME server is reachable offline, so the manager
    keeps retrying (127.0.0.1:9) and the listener has no certificate to serve yet."""
    conf = work / "provider-acme.conf"
    conf.write_text(
        'domains = ["oidc.example.org"]\n'
        "acme {\n"
        '  directory_url = "https://127.0.0.1:9/directory"\n'
        '  email = "bench@example.org"\n'
        "  tos_accepted = true\n"
        f'  cache_dir = "{work / "acme-cache"}"\n'
        f'  addr = "127.0.0.1:{free_port()}"\n'
        "}\n"
        f'file {{\n  path = "{bundle}"\n}}\n'
    )
    server = Server("acme", [str(EXE), "-config", str(conf)], SERVER_CPU, work / "acme.log")
    server.start()
    try:
        time.sleep(seconds)
        if not server.alive():
            raise RuntimeError(f"the ACME-mode provider exited; see {server.log}")
        return server.peak_rss_kib() / 1024
    finally:
        server.stop()


# -- main ----------------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3, help="A/B pairs per scenario (>= 3)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measured run")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of warm-up per run")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--cert", choices=["ec", "rsa"], default="ec")
    parser.add_argument("--scenarios", default=",".join(s.name for s in SCENARIOS))
    parser.add_argument("--extra", action="store_true", help="also the resumed-TLS scenario")
    parser.add_argument("--cold-starts", type=int, default=5)
    parser.add_argument("--rotations", type=int, default=200)
    parser.add_argument("--upstream-load", type=float, default=3.0)
    parser.add_argument(
        "--nice", type=int, default=0, help="run servers and wrk at this nice level (e.g. -10)"
    )
    parser.add_argument("--skip-install", action="store_true")
    parser.add_argument("--skip-extras", action="store_true", help="only the wrk scenarios")
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "latest.json")
    args = parser.parse_args()

    if args.nice:
        os.nice(args.nice)  # inherited by every server and wrk started from here
    if not args.skip_install:
        subprocess.run([str(BENCH / "install.sh")], check=True, timeout=900)
    os.sched_setaffinity(0, {int(CLIENT_CPU)})  # this script stays off the servers' core
    chosen = [s for s in SCENARIOS + EXTRA_SCENARIOS if s.name in args.scenarios.split(",")]
    if args.extra:
        chosen += [s for s in EXTRA_SCENARIOS if s not in chosen]

    work = Path(tempfile.mkdtemp(prefix="spire-oidc-bench-"))
    work.chmod(0o755)  # nginx's worker (an unprivileged user) reads the docroot
    (work / "nginx-tmp").mkdir()
    (work / "docroot").mkdir()
    make_certificate(work, args.cert)
    bundle = make_bundle(work)
    file_source = f'file {{\n  path = "{bundle}"\n  poll_interval = "10s"\n}}'
    confs = {
        "tls": provider_config(work, "provider-tls", "tls", file_source),
        "plain": provider_config(work, "provider-plain", "plain", file_source),
        "tls_noticket": provider_config(work, "provider-tls-noticket", "tls", file_source),
    }

    def provider(key: str, *argv: str) -> Server:
        return Server(
            "provider", [*argv, "-config", str(confs[key])], SERVER_CPU, work / f"{key}.log"
        )

    providers = {
        "tls": provider("tls", str(EXE)),
        "plain": provider("plain", str(EXE)),
        "tls_noticket": provider(
            "tls_noticket", str(PRODUCT / "python"), str(BENCH / "provider_no_tickets.py")
        ),
    }
    nginx_ports = {"plain": free_port(), "tls": free_port(), "tls_noticket": free_port()}
    nginx_conf = work / "nginx.conf"
    nginx_conf.write_text(
        NGINX_CONF.format(work=work, locations=NGINX_LOCATIONS.format(work=work), **nginx_ports)
    )
    nginx = Server(
        "nginx", ["nginx", "-c", str(nginx_conf), "-p", str(work)], SERVER_CPU, work / "nginx.log"
    )
    report: dict[str, Any] = {
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {os.cpu_count()} CPUs {platform.python_version()}",
        "loadavg_before": Path("/proc/loadavg").read_text().split()[:3],
        "args": {k: str(v) for k, v in vars(args).items()},
        "work": str(work),
    }
    runs: list[dict[str, Any]] = []
    try:
        for p in providers.values():
            p.start()
        for key, p in providers.items():
            wait_for_200(listener_port(confs[key]), "/keys", tls=key != "plain", server=p)
        # nginx serves the provider's own bytes.
        for path, file in (("/keys", "keys.json"), (DISCOVERY, "discovery.json")):
            status, _head, body = http_get(listener_port(confs["tls"]), path, tls=True)
            assert status == 200, (path, status)
            (work / "docroot" / file).write_bytes(body)
        nginx.start()
        wait_for_200(nginx_ports["tls"], "/keys", tls=True, server=nginx)
        for key in nginx_ports:
            for path in ("/keys", DISCOVERY):
                tls = key != "plain"
                ours = http_get(listener_port(confs[key]), path, tls=tls)[2]
                theirs = http_get(nginx_ports[key], path, tls=tls)[2]
                if ours != theirs:
                    raise RuntimeError(f"nginx and the provider differ on {key} {path}")
        keys_len = len((work / "docroot" / "keys.json").read_bytes())
        disc_len = len((work / "docroot" / "discovery.json").read_bytes())
        print(
            f"documents byte-identical: /keys {keys_len} B, discovery {disc_len} B; "
            f"certificate {args.cert}"
        )
        report["documents"] = {"keys_bytes": keys_len, "discovery_bytes": disc_len}

        for pair in range(1, args.pairs + 1):
            for sc in chosen:
                for server, port in (
                    (nginx, nginx_ports[sc.listener]),
                    (providers[sc.listener], listener_port(confs[sc.listener])),
                ):
                    r = measure(server, port, sc, args)
                    r["pair"] = pair
                    runs.append(r)
                    print(
                        f"pair {pair} {sc.name:<26} {server.name:<8} {r['rps']:>9,.0f} req/s "
                        f"p50 {r['p50_ms']:.2f} p99 {r['p99_ms']:.2f} ms "
                        f"{r['server_us_per_req']:.1f} µs/req  other {r['other_cpu_pct']:.0f} %"
                        + (f"  ERRORS {r['errors']}" if r["errors"] else ""),
                        flush=True,
                    )
        report["runs"] = runs
        report["peak_rss_mib"] = {
            key: round(p.peak_rss_kib() / 1024, 1) for key, p in providers.items()
        }
        report["nginx_rss_mib"] = round(nginx.rss_kib() / 1024, 1)
    finally:
        nginx.stop()
        for p in providers.values():
            p.stop()

    rows = summarise(runs, chosen)
    report["summary"] = rows
    print()
    print(table(rows))
    print()
    print(
        "provider peak RSS (VmHWM, MiB, file source): "
        + ", ".join(f"{k} {v}" for k, v in report["peak_rss_mib"].items())
        + f"; nginx RSS {report['nginx_rss_mib']} MiB (master + worker)"
    )
    if not args.skip_extras:
        starts = cold_start(work, confs["tls"], args.cold_starts)
        report["cold_start_s"] = starts
        print(
            f"cold start to first 200 on /keys (TLS, {len(starts)} runs): median "
            f"{med(starts) * 1000:.0f} ms, min {min(starts) * 1000:.0f}, "
            f"max {max(starts) * 1000:.0f}"
        )
        rot = rotation_latency(args.rotations)
        report["rotation_latency"] = rot
        print("rotation latency (bench/rotation_latency.py):\n  " + rot.replace("\n", "\n  "))
        up = upstream_rss(work, args)
        up["acme_idle"] = acme_idle_rss(work, bundle)
        report["upstream_peak_rss_mib"] = up
        print(
            "provider peak RSS with other sources (MiB; gRPC ones after keep-alive + "
            "new-connection load, ACME idle without a certificate): "
            + ", ".join(f"{k} {v:.1f}" for k, v in up.items())
        )
    report["loadavg_after"] = Path("/proc/loadavg").read_text().split()[:3]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nraw results: {args.out}; logs and configs: {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
