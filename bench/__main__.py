"""`make bench`: the gateway's own overhead, measured against a fast mock upstream and against Portkey.

Layout on a 2-core machine: the gateway under test is pinned to core 0; nginx (the mock
upstream) and wrk (the load) share core 1. Each scenario is run against the upstream
directly, through Crossroads, and through Portkey's gateway (@portkey-ai/gateway 1.15.2),
at 1 and 64 connections. See docs/benchmarks.md for the method and the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.probe import ttfb_ms
from bench.scenarios import SCENARIOS, Scenario
from bench.servers import Server, crossroads, nginx, portkey, rss_mb

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
    url: str, scenario: Scenario, *, connections: int, seconds: float, extra_headers: dict[str, str]
) -> dict[str, Any]:
    script = WORK / f"{scenario.name}.lua"
    script.write_text(scenario.lua(extra_headers))
    out = subprocess.run(
        [
            "taskset",
            "-c",
            "1",
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(line for line in out.splitlines() if line.startswith("{"))
    result: dict[str, Any] = json.loads(line)
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_target(
    name: str, server: Server | None, scenarios: list[Scenario], args: argparse.Namespace, upstream_port: int
) -> dict[str, Any]:
    results: dict[str, Any] = {"target": name}
    if server is not None:
        results["rss_idle_mb"] = rss_mb(server.pid)
    for scenario in scenarios:
        url, headers = scenario.route(name, upstream_port, server.port if server else 0)
        wrk(url, scenario, connections=8, seconds=1, extra_headers=headers)  # warm up pools and caches
        for connections in args.connections:
            cpu_before = cpu_seconds(server.pid) if server else 0.0
            result = wrk(url, scenario, connections=connections, seconds=args.duration, extra_headers=headers)
            if server is not None and result["requests"]:
                result["cpu_ms_per_request"] = (
                    (cpu_seconds(server.pid) - cpu_before) * 1000 / result["requests"]
                )
            results[f"{scenario.name}@{connections}"] = result
            print(
                f"  {name:<10} {scenario.name:<12} c={connections:<3} {result['rps']:>8.0f} req/s  "
                f"p50 {result['p50'] / 1000:6.2f} ms  p99 {result['p99'] / 1000:6.2f} ms  "
                f"errors {result['errors'] + result['status_errors']}",
                flush=True,
            )
        if scenario.stream:
            results[f"{scenario.name}@ttfb"] = ttfb_ms(url, scenario, headers, count=args.ttfb_requests)
    if server is not None:
        results["rss_loaded_mb"] = rss_mb(server.pid)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="make bench")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement (default 10)")
    parser.add_argument("--connections", type=lambda s: [int(c) for c in s.split(",")], default=[1, 64])
    parser.add_argument("--scenarios", default=",".join(s.name for s in SCENARIOS))
    parser.add_argument("--no-portkey", action="store_true", help="skip Portkey's gateway")
    parser.add_argument("--ttfb-requests", type=int, default=300)
    args = parser.parse_args()
    ensure_tools(need_node=not args.no_portkey)
    WORK.mkdir(parents=True, exist_ok=True)
    chosen = [s for s in SCENARIOS if s.name in args.scenarios.split(",")]

    report: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "duration_s": args.duration,
        "cpus": os.cpu_count(),
        "targets": [],
    }
    with nginx(WORK) as upstream:
        print(f"mock upstream: nginx on 127.0.0.1:{upstream.port} (core 1); load: wrk (core 1)")
        report["targets"].append(run_target("direct", None, chosen, args, upstream.port))
        with crossroads(WORK) as gateway:
            report["targets"].append(run_target("crossroads", gateway, chosen, args, upstream.port))
        if not args.no_portkey:
            with portkey(WORK) as gateway:
                report["targets"].append(run_target("portkey", gateway, chosen, args, upstream.port))
    (WORK / "results.json").write_text(json.dumps(report, indent=2))
    print()
    print(summary(report, chosen, args.connections))


def summary(report: dict[str, Any], scenarios: list[Scenario], connections: list[int]) -> str:
    by_name = {t["target"]: t for t in report["targets"]}
    direct = by_name["direct"]
    lines = [
        "| scenario | conns | target | req/s | p50 ms | p99 ms | added p50 ms | CPU ms/req | vs Portkey |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for scenario in scenarios:
        for c in connections:
            key = f"{scenario.name}@{c}"
            base = direct[key]
            for name in ("direct", "crossroads", "portkey"):
                if name not in by_name:
                    continue
                r = by_name[name][key]
                added = (r["p50"] - base["p50"]) / 1000 if name != "direct" else 0.0
                ratio = ""
                if name == "crossroads" and "portkey" in by_name:
                    ratio = f"{r['rps'] / by_name['portkey'][key]['rps']:.1f}x"
                cpu = f"{r['cpu_ms_per_request']:.3f}" if "cpu_ms_per_request" in r else ""
                lines.append(
                    f"| {scenario.name} | {c} | {name} | {r['rps']:.0f} | {r['p50'] / 1000:.2f} | "
                    f"{r['p99'] / 1000:.2f} | {added:+.2f} | {cpu} | {ratio} |"
                )
        if scenario.stream:
            key = f"{scenario.name}@ttfb"
            base_ttfb = direct[key]["p50"]
            for name in ("crossroads", "portkey"):
                if name in by_name:
                    t = by_name[name][key]
                    lines.append(
                        f"| {scenario.name} TTFB | 1 | {name} | | {t['p50']:.2f} | {t['p99']:.2f} | "
                        f"{t['p50'] - base_ttfb:+.2f} | | |"
                    )
    for name in ("crossroads", "portkey"):
        if name in by_name:
            t = by_name[name]
            lines.append(
                f"\n{name}: RSS idle {t['rss_idle_mb']:.1f} MB, after load {t['rss_loaded_mb']:.1f} MB"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
