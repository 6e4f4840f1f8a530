"""Side by side: two runs of deadline.py (`--json`), ngshare 0.6.0 and ngshare_s3, as markdown
tables ready for benchmarks/README.md, with the ratios the targets are stated in.

Usage: .venv/bin/python benchmarks/deadline.py --compare ngshare.json ngshare_s3.json

Either side may name several runs of one server, separated by commas: each number of a scenario
is then the median over those runs, so that one run disturbed by other work on the machine does
not decide a ratio; errors and wrong answers are added up over the runs.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

# Targets as ratios to ngshare 0.6.0: (minimum throughput ratio, maximum p99 ratio).
TARGETS: dict[str, tuple[float, float | None]] = {
    "fetch storm": (10.0, 0.1),
    "submit storm": (4.0, 0.25),
    "list": (5.0, None),
    "browse": (5.0, None),
    "collect": (4.0, None),
    "feedback fetch": (4.0, None),
}
BIG_PHASES = ("big upload", "big collect", "many files upload", "many files collect")
LAG_TARGET_MS = 50


def is_big(name: str) -> bool:
    return name in BIG_PHASES or name.startswith("big ")
BIG_GROWTH_TARGET_MB = 100


ADDED_UP = ("errors", "wrong")


def load(paths: Path | str) -> dict[str, Any]:
    """One run, or the median of several (`a.json,b.json`)."""
    runs = [json.loads(Path(path).read_text()) for path in str(paths).split(",") if path]
    run = runs[0]
    run["runs"] = len(runs)
    for phase in run["phases"]:
        same = [p for other in runs for p in other["phases"] if p["phase"] == phase["phase"]]
        for key, value in phase.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                values = [p[key] for p in same if key in p]
                if key in ADDED_UP:
                    phase[key] = sum(values)
                elif all(isinstance(v, int) for v in values):  # counts stay whole numbers
                    phase[key] = statistics.median_low(values)
                else:
                    phase[key] = statistics.median(values)
    run["by_phase"] = {phase["phase"]: phase for phase in run["phases"]}
    return run


def failed(phase: dict[str, Any]) -> str | None:
    """'fails (400)' and the like when a phase got no right answer at all."""
    if phase["errors"] == 0 and phase["wrong"] == 0:
        return None
    kinds = [*phase.get("error_kinds", {}), *phase.get("wrong_kinds", {})]
    codes = sorted({kind.split(" ", 1)[0] if kind[:3].isdigit() else "no answer" if kind.startswith("no answer")
                    else "wrong" for kind in kinds})
    ok = phase["requests"] - phase["errors"] - phase["wrong"]
    label = "fails" if ok <= 0 else f"{phase['errors'] + phase['wrong']} of {phase['requests']} fail"
    return f"{label} ({', '.join(codes) or '?'})"


def growth(run: dict[str, Any], name: str) -> float:
    """RSS growth of a scenario; for the collect after a big upload, over the RSS before that
    upload began (memory the upload left allocated would hide the collect's own growth)."""
    phase = run["by_phase"][name]
    upload = run["by_phase"].get(name.replace(" collect", " upload")) if name.endswith(" collect") else None
    if upload is None:
        return phase["rss_growth_mb"]
    return phase["peak_rss_mb"] - (upload["peak_rss_mb"] - upload["rss_growth_mb"])


def cell(run: dict[str, Any], name: str) -> str:
    phase = run["by_phase"].get(name)
    if phase is None:
        return "not run"
    problem = failed(phase)
    if problem and phase["errors"] + phase["wrong"] >= phase["requests"]:
        return f"**{problem}**"
    memory = f"peak RSS {phase['peak_rss_mb']:.0f} MB ({growth(run, name):+.0f})"
    if is_big(name):
        text = f"{phase['seconds']:.1f} s, {memory}"
    else:
        text = f"{phase['requests_per_second']:.1f} req/s, p99 {phase['p99_ms']:.0f} ms, {memory}"
    return f"**{problem}**; {text}" if problem else text


def ratio_cell(name: str, old_run: dict[str, Any], new_run: dict[str, Any]) -> tuple[str, str]:
    """(ratios, verdict against the target)."""
    old, new = old_run["by_phase"].get(name), new_run["by_phase"].get(name)
    if old is None or new is None or failed(new):
        return "", ("not met: ngshare_s3 fails" if new is not None and failed(new) else "")
    big_verdict = ""
    if is_big(name):
        rise = growth(new_run, name)
        big_verdict = ("met" if rise < BIG_GROWTH_TARGET_MB else "not met") + \
            f" (RSS growth {rise:+.0f} MB, target < {BIG_GROWTH_TARGET_MB})"
    if failed(old):
        return "ngshare fails", big_verdict
    speed = new["requests_per_second"] / old["requests_per_second"] if old["requests_per_second"] else 0.0
    p99 = new["p99_ms"] / old["p99_ms"] if old["p99_ms"] else 0.0
    text = f"{speed:.2f}× req/s, p99 {p99:.2f}×"
    if old["server_cpu_seconds"] and old["requests"] and new["requests"]:
        cpu = (new["server_cpu_seconds"] / new["requests"]) / (old["server_cpu_seconds"] / old["requests"])
        text += f", CPU/request {cpu:.2f}×"
    verdict = big_verdict
    if name in TARGETS:
        least, most_p99 = TARGETS[name]
        ok = speed >= least and (most_p99 is None or p99 <= most_p99)
        verdict = ("met" if ok else "not met") + f" (≥ {least:g}×" + (f", p99 ≤ {most_p99:g}×" if most_p99 else "") + ")"
        if name == "fetch storm":
            # PSS where both runs have it: RSS counts the pages forked workers share once per worker.
            memory = "peak_pss_mb" if old.get("peak_pss_mb") and new.get("peak_pss_mb") else "peak_rss_mb"
            within = new[memory] <= old[memory] + 64
            verdict += f"; peak {'PSS' if memory == 'peak_pss_mb' else 'RSS'} {'≤' if within else '>'} ngshare + 64 MB"
    return text, verdict


def describe(run: dict[str, Any]) -> str:
    info = run["info"]
    runs = f" (median of {run['runs']} runs)" if run.get("runs", 1) > 1 else ""
    return f"{info['server']} on {info.get('backend', 'embedded')}{runs}"


def compare(old_path: Path, new_path: Path) -> str:
    old, new = load(old_path), load(new_path)
    info = new["info"]
    names = [p["phase"] for p in new["phases"]] + [p["phase"] for p in old["phases"]
                                                   if p["phase"] not in new["by_phase"]]
    lines = [
        f"{describe(old)} vs {describe(new)}; {info['students']} students, {info['concurrency']} at a time; "
        f"release {info.get('release_mb', 0):.1f} MB; {info['machine']}; {info['date']}",
        "",
        "| scenario | ngshare | ngshare_s3 | ratio | target |",
        "|---|---|---|---|---|",
    ]
    for name in names:
        ratios, verdict = ratio_cell(name, old, new)
        lines.append(f"| {name} | {cell(old, name)} | {cell(new, name)} | {ratios} | {verdict} |")
    lag = [(name, run["by_phase"][name]["ops"].get("small GET during upload"))
           for run in (old, new) for name in run["by_phase"] if name.startswith("big upload")]
    if any(op for _, op in lag):
        lines += ["", "Event-loop lag: a small `GET assignments` sent every few ms while the big upload is sent",
                  f"(target: p99 < {LAG_TARGET_MS} ms).", "",
                  "| server | phase | probes | p50 ms | p99 ms | max ms | target |", "|---|---|--:|--:|--:|--:|---|"]
        for run in (old, new):
            for name, phase in run["by_phase"].items():
                op = phase["ops"].get("small GET during upload")
                if op:
                    verdict = "met" if op["p99_ms"] < LAG_TARGET_MS and not op["errors"] else "not met"
                    if failed(phase):
                        verdict = "the upload failed: nothing to measure"
                    lines.append(f"| {describe(run)} | {name} | {op['requests']} | {op['p50_ms']:.0f} | "
                                 f"{op['p99_ms']:.0f} | {op['max_ms']:.0f} | {verdict} |")
    lines += ["", "Server CPU per scenario (CPU time is less sensitive than throughput to other work on a "
              "shared machine), peak memory of the server's process tree, and token checks:", "",
              "| scenario | CPU s ngshare | CPU s ngshare_s3 | CPU ms/request ngshare | CPU ms/request ngshare_s3 "
              "| client + Hub CPU ms/request ngshare | client + Hub CPU ms/request ngshare_s3 "
              "| peak PSS MB ngshare | peak PSS MB ngshare_s3 | Hub calls ngshare | Hub calls ngshare_s3 |",
              "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]

    def num(phase: dict | None, key: str, fmt: str) -> str:
        return "" if phase is None else format(phase.get(key, 0), fmt)

    def per_request(phase: dict | None, *keys: str) -> str:
        if phase is None or not phase["requests"] or any(key not in phase for key in keys):
            return ""
        return f"{1000 * sum(phase[key] for key in keys) / phase['requests']:.1f}"

    benchmark = ("client_cpu_seconds", "hub_cpu_seconds")  # runs before these were kept lack them

    for name in names:
        a, b = old["by_phase"].get(name), new["by_phase"].get(name)
        lines.append(f"| {name} | {num(a, 'server_cpu_seconds', '.1f')} | {num(b, 'server_cpu_seconds', '.1f')} | "
                     f"{per_request(a, 'server_cpu_seconds')} | {per_request(b, 'server_cpu_seconds')} | "
                     f"{per_request(a, *benchmark)} | {per_request(b, *benchmark)} | "
                     f"{num(a, 'peak_pss_mb', '.0f')} | {num(b, 'peak_pss_mb', '.0f')} | "
                     f"{num(a, 'hub_calls', 'd')} | {num(b, 'hub_calls', 'd')} |")
    counted = [(name, new["by_phase"][name]["store_calls"]) for name in names
               if name in new["by_phase"] and "store_calls" in new["by_phase"][name]]
    if counted:
        s3 = any("s3_requests_per_request" in calls for _, calls in counted)
        lines += ["", f"ngshare_s3's store calls per request ({new['info'].get('backend', '')}):", "",
                  "| scenario | metadata queries | object-store calls |" + (" S3 requests (MinIO) |" if s3 else ""),
                  "|---|--:|--:|" + ("--:|" if s3 else "")]
        for name, calls in counted:
            lines.append(f"| {name} | {calls['database_calls_per_request']:.2f} | {calls['storage_calls_per_request']:.2f} |"
                         + (f" {calls.get('s3_requests_per_request', 0):.2f} |" if s3 else ""))
    return "\n".join(lines)
