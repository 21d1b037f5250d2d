"""`make bench`: the gateway's own overhead, measured against a fast mock upstream and against Portkey.

Layout on a 2-core machine: the gateway under test is pinned to core 0; nginx (the mock
upstream) and wrk (the load) share core 1. Every scenario is measured against the upstream
directly, through Crossroads and through Portkey's gateway (@portkey-ai/gateway 1.15.2), at
1 and 64 connections. The targets take turns within each round and the report gives the
median of the rounds, so drift on a shared machine hits them alike. Method and figures:
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench import semantic
from bench.probe import ttfb_ms
from bench.scenarios import SCENARIOS, Scenario
from bench.servers import BENCH_ADMIN_KEY, Server, crossroads, governed_key, nginx, portkey, rss_mb

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / ".work"


def ensure_tools(need_node: bool) -> None:
    missing = [tool for tool in ("nginx", "wrk", "taskset") if shutil.which(tool) is None]
    if missing and os.geteuid() == 0:
        packages = {"nginx": "nginx", "wrk": "wrk", "taskset": "util-linux"}
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", *{packages[m] for m in missing}],
            check=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        missing = [tool for tool in missing if shutil.which(tool) is None]
    if missing:
        sys.exit(f"bench needs {', '.join(missing)} (apt-get install nginx wrk util-linux)")
    if need_node and shutil.which("npm") is None:
        sys.exit("bench needs node and npm for the Portkey comparison (or pass --no-portkey)")


def wrk(
    url: str, scenario: Scenario, *, connections: int, seconds: float, headers: dict[str, str]
) -> dict[str, Any]:
    script = WORK / f"{scenario.name}-{abs(hash(url)) % 10_000}.lua"
    script.write_text(scenario.lua(headers))
    command = ["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s"]
    out = subprocess.run(
        [*command, "--latency", "-s", str(script), url], capture_output=True, text=True, check=True
    ).stdout
    line = next(line for line in out.splitlines() if line.startswith("{"))
    result: dict[str, Any] = json.loads(line)
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# Headers some targets add to every request (the governed gateway's API key).
EXTRA_HEADERS: dict[str, dict[str, str]] = {}


def measure(
    name: str, server: Server | None, scenario: Scenario, *, connections: int, seconds: float, upstream: int
) -> dict[str, Any]:
    url, headers = scenario.route(name, upstream, server.port if server else 0)
    headers = {**headers, **EXTRA_HEADERS.get(name, {})}
    cpu_before = cpu_seconds(server.pid) if server else 0.0
    result = wrk(url, scenario, connections=connections, seconds=seconds, headers=headers)
    if server is not None and result["requests"]:
        result["cpu_ms_per_request"] = (cpu_seconds(server.pid) - cpu_before) * 1000 / result["requests"]
    return result


def median_result(samples: list[dict[str, Any]]) -> dict[str, Any]:
    out = {key: statistics.median(s[key] for s in samples) for key in samples[0] if key != "count"}
    out["errors"] = sum(s.get("errors", 0) + s.get("status_errors", 0) for s in samples)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="make bench")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measurement (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the median is reported (default 3)")
    parser.add_argument("--connections", type=lambda s: [int(c) for c in s.split(",")], default=[1, 64])
    parser.add_argument("--scenarios", default=",".join(s.name for s in SCENARIOS))
    parser.add_argument("--no-portkey", action="store_true", help="skip Portkey's gateway")
    parser.add_argument(
        "--no-governance",
        action="store_true",
        help="skip the gateway with API keys, rate limits and budgets on",
    )
    parser.add_argument("--ttfb-requests", type=int, default=300)
    args = parser.parse_args()
    ensure_tools(need_node=not args.no_portkey)
    WORK.mkdir(parents=True, exist_ok=True)
    chosen = [s for s in SCENARIOS if s.name in args.scenarios.split(",")]

    samples: dict[tuple[str, str], list[dict[str, Any]]] = {}
    rss: dict[str, dict[str, float]] = {}
    with ExitStack() as stack:
        upstream = stack.enter_context(nginx(WORK))
        servers: dict[str, Server | None] = {
            "direct": None,
            "crossroads": stack.enter_context(crossroads(WORK)),
        }
        if not args.no_governance:
            governed = stack.enter_context(
                crossroads(
                    WORK,
                    "governed",
                    {"CROSSROADS_ADMIN_KEY": BENCH_ADMIN_KEY, "CROSSROADS_REQUIRE_API_KEY": "true"},
                )
            )
            servers["governed"] = governed
            EXTRA_HEADERS["governed"] = {"x-portkey-api-key": governed_key(governed)}
        if not args.no_portkey:
            servers["portkey"] = stack.enter_context(portkey(WORK))
        print(
            f"mock upstream: nginx on 127.0.0.1:{upstream.port} (core 1); load: wrk (core 1); "
            f"gateways on core 0; {args.rounds} rounds of {args.duration:.0f} s",
            flush=True,
        )
        for name, server in servers.items():
            if server is not None:
                rss[name] = {"idle": rss_mb(server.pid)}
            for scenario in chosen:  # warm up connection pools and JIT-less caches alike
                measure(name, server, scenario, connections=8, seconds=1, upstream=upstream.port)
        for round_number in range(1, args.rounds + 1):
            for scenario in chosen:
                for connections in args.connections:
                    for name, server in servers.items():
                        result = measure(
                            name,
                            server,
                            scenario,
                            connections=connections,
                            seconds=args.duration,
                            upstream=upstream.port,
                        )
                        samples.setdefault((name, f"{scenario.name}@{connections}"), []).append(result)
                        print(
                            f"  round {round_number}  {name:<10} {scenario.name:<12} c={connections:<3} "
                            f"{result['rps']:>8.0f} req/s  p50 {result['p50'] / 1000:6.2f} ms  "
                            f"p99 {result['p99'] / 1000:6.2f} ms",
                            flush=True,
                        )
                if scenario.stream:
                    for name, server in servers.items():
                        url, headers = scenario.route(name, upstream.port, server.port if server else 0)
                        headers = {**headers, **EXTRA_HEADERS.get(name, {})}
                        samples.setdefault((name, f"{scenario.name}@ttfb"), []).append(
                            ttfb_ms(url, scenario, headers, count=args.ttfb_requests)
                        )
        for name, server in servers.items():
            if server is not None:
                rss[name]["loaded"] = rss_mb(server.pid)

    report: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "duration_s": args.duration,
        "rounds": args.rounds,
        "results": {f"{name}/{key}": median_result(runs) for (name, key), runs in samples.items()},
        "rss_mb": rss,
    }
    (WORK / "results.json").write_text(json.dumps(report, indent=2))
    print()
    print(summary(report, list(servers), chosen, args.connections))
    print()
    print(semantic.report())


def summary(
    report: dict[str, Any], targets: list[str], scenarios: list[Scenario], connections: list[int]
) -> str:
    results = report["results"]
    lines = [
        "| scenario | conns | target | req/s | p50 ms | p99 ms | added p50 ms | CPU ms/req "
        "| req/s vs Portkey |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for scenario in scenarios:
        for c in connections:
            key = f"{scenario.name}@{c}"
            base = results[f"direct/{key}"]
            for name in targets:
                r = results[f"{name}/{key}"]
                added = f"{(r['p50'] - base['p50']) / 1000:+.2f}" if name != "direct" else ""
                ratio = ""
                if name == "crossroads" and "portkey" in targets:
                    ratio = f"**{r['rps'] / results[f'portkey/{key}']['rps']:.1f}x**"
                if name == "governed":
                    ratio = f"{r['rps'] / results[f'crossroads/{key}']['rps']:.2f}x of crossroads"
                cpu = f"{r['cpu_ms_per_request']:.3f}" if "cpu_ms_per_request" in r else ""
                lines.append(
                    f"| {scenario.name} | {c} | {name} | {r['rps']:.0f} | {r['p50'] / 1000:.2f} | "
                    f"{r['p99'] / 1000:.2f} | {added} | {cpu} | {ratio} |"
                )
        if scenario.stream:
            base_ttfb = results[f"direct/{scenario.name}@ttfb"]["p50"]
            for name in targets:
                t = results[f"{name}/{scenario.name}@ttfb"]
                added = f"{t['p50'] - base_ttfb:+.2f}" if name != "direct" else ""
                lines.append(
                    f"| {scenario.name}, first byte | 1 | {name} | | {t['p50']:.2f} | {t['p99']:.2f} "
                    f"| {added} | | |"
                )
    for name, mem in report["rss_mb"].items():
        lines.append(f"\n{name}: RSS {mem['idle']:.1f} MB idle, {mem['loaded']:.1f} MB after the load")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
