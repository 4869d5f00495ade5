#!/usr/bin/env python3
"""Run the trust suite and write bench/trust.md from the figures its tests record.

Usage: .venv/bin/python scripts/trust_report.py [--out bench/trust.md] [--no-run]

The tests in tests/trust/ write their figures to a JSON file (tests/trust/figures.py); this
script points them at var/trust-figures.json, runs them (plus the existing tests that prove
the fault-injection promises on their own, listed in CITED), and renders the table. It exits
non-zero when a test fails or a figure is not what it must be.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET  # noqa: S405  # parses the junit file pytest just wrote
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "var" / "trust-figures.json"
JUNIT = ROOT / "var" / "trust-junit.xml"

# Figure -> (what it counts, the value it must have, how to compare).
TARGETS: dict[str, tuple[str, float, str]] = {
    "unprotected_routes": (
        "HTTP routes, WebSocket routes and gRPC methods answering without valid credentials",
        0,
        "==",
    ),
    "cross_group_successes": ("calls of a group-B user that reached group A's objects", 0, "=="),
    "secret_occurrences": (
        "plain secrets found in responses, frames, logs, audit, output",
        0,
        "==",
    ),
    "fuzz_5xx": ("5xx answers to schema-generated requests", 0, "=="),
    "schema_violations": ("operations whose responses break their schema", 0, "=="),
    "tasks_lost_silently": (
        "tasks left non-terminal (or ended without a reason) after faults",
        0,
        "==",
    ),
    "duplicate_executions": ("commands that ran more than once across faults", 0, "=="),
    "output_completeness_after_partition": (
        "stored output / output the node produced, across a cut connection",
        1.0,
        "==",
    ),
    "reconnect_spread_seconds": (
        "first to last agent reconnect after a hub restart (must be > 0: not one wave)",
        0,
        ">",
    ),
    "duplicate_nodes_after_restart": ("node rows or credentials added by reconnects", 0, "=="),
    "auth_failures_after_restart": ("agents refused after a hub restart", 0, "=="),
    "deploy_check_issues": ("`check --deploy` findings and wrong security settings", 0, "=="),
}
# The sandbox bypass corpus (tests/trust/sandbox_corpus.py): one figure per attack class.
SANDBOX_CLASSES: dict[str, str] = {
    "assignment": "assignments that remap commands or load code (BASH_CMDS, BASH_ENV, hash -p)",
    "deferred": "deferred evaluation (${a@P}, $((a)), ${!a}, [[ -eq ]], test -v, let)",
    "lexing": "whitespace and quoting the checker could read differently from bash (\\r#)",
    "redirection": "writes through redirections outside the workspace (symlinks included)",
    "dev_tcp": "network connections through /dev/tcp and /dev/udp",
    "indirect": "indirect runs: trap, source, bash -c, here-strings, stdin, find -exec, xargs",
    "wrapper": "wrappers: command, exec, nohup, timeout, nice, stdbuf, env, sudo",
    "root_wipe": "recursive rm/chmod of /, system directories or homes (.., globs, braces, $x)",
    "substitution": "command substitutions in every position (quotes, defaults, here-docs...)",
}
for _cls, _what in SANDBOX_CLASSES.items():
    TARGETS[f"sandbox_bypass_{_cls}"] = (
        f"sandbox bypass attempts ({_what}) whose marker file appeared on a real agent; "
        "checked counts attempts, each run twice (REST API, and below the hub's check)",
        0,
        "==",
    )

# Existing tests (other apps' suites) that prove a promise of issue 11 on their own.
CITED: list[tuple[str, str]] = [
    (
        "mesh/tests/test_provisioning_e2e.py::test_node_from_bundle_runs_cancels_is_lost_and_comes_back",
        "real hub + real agent process: agent SIGKILLed mid-task, the task ends `lost`, the "
        "agent comes back with its saved credential",
    ),
    (
        "mesh/tests/test_grpc_protocol.py::test_killed_node_loses_its_running_task_after_grace",
        "a node that vanishes mid-task: its task is marked lost after the grace period",
    ),
    (
        "mesh/tests/test_grpc_protocol.py::test_reconnect_within_grace_resumes_without_gaps_or_duplicates",
        "reconnect within grace: output resumes without gaps or duplicates",
    ),
    (
        "mesh/tests/test_grpc_protocol.py::test_duplicate_result_is_acknowledged_and_ignored",
        "a resent result is acknowledged once, never applied twice",
    ),
    (
        "mesh/tests/test_api_tasks.py::test_no_audit_row_means_no_task_and_no_doorbell",
        "audit table unavailable at dispatch: no task stored, nothing sent to the node",
    ),
    (
        "mesh/tests/test_agent_protocol.py::test_output_spooled_across_a_network_cut_is_resent",
        "real agent behind a cut TCP link: spooled output is resent, stored byte-for-byte",
    ),
    (
        "mesh/tests/test_agent_protocol.py::test_hub_restart_twenty_agents_reconnect_spread_without_auth_failure",
        "20 agents, hub restarted: reconnects spread in time, no credential refused",
    ),
    (
        "mesh/tests/consumers/test_node_consumer.py::test_slow_client_gets_one_resync_instead_of_a_growing_queue",
        "a slow console viewer while a node floods output: bounded queue, one resync frame",
    ),
    (
        "mesh/tests/consumers/test_node_consumer.py::test_revoking_the_grant_closes_the_socket_with_4403",
        "a revoked grant closes an open console socket",
    ),
    (
        "sessions_app/tests/test_turns.py::test_retries_then_timeout",
        "LLM provider failing (5xx, hangs): retried, then the turn fails with a code",
    ),
    (
        "sessions_app/tests/test_turns.py::test_invalid_key_is_not_retried",
        "LLM provider refusing the key: not retried, the turn fails with a code",
    ),
    (
        "sessions_app/tests/test_turns.py::test_deadline_stops_a_slow_answer",
        "LLM provider streaming too slowly: the turn deadline stops it",
    ),
    (
        "sessions_app/tests/test_llm_clients.py::test_openai_context_too_long",
        "LLM provider: context too long is reported, not retried",
    ),
    (
        "sessions_app/tests/test_llm_clients.py::test_anthropic_overloaded_maps_to_unavailable",
        "LLM provider overloaded: mapped to unavailable",
    ),
    (
        "sessions_app/tests/test_llm_clients.py::test_no_retry_once_output_was_streamed",
        "LLM provider failing mid-stream: no retry once output was streamed",
    ),
]


def _ok(value: float, target: float, op: str) -> bool:
    return value > target if op == ">" else abs(value - target) < 1e-9


def run_suite(extra: list[str]) -> int:
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    FIGURES.unlink(missing_ok=True)
    JUNIT.unlink(missing_ok=True)
    cited = [nodeid for nodeid, _ in CITED if (ROOT / nodeid.split("::")[0]).exists()]
    env = {**os.environ, "CORTEX_TRUST_FIGURES": str(FIGURES)}
    command = [
        sys.executable,
        "-m",
        "pytest",
        "tests/trust",
        *cited,
        "--no-cov",
        "-p",
        "no:cacheprovider",
        "-q",
        f"--junitxml={JUNIT}",
        *extra,
    ]
    print("$", " ".join(command), flush=True)
    return subprocess.run(command, cwd=ROOT, env=env, check=False).returncode


def _junit() -> dict[str, str]:
    """nodeid-ish (file::name) -> passed/failed/skipped/error."""
    if not JUNIT.exists():
        return {}
    results: dict[str, str] = {}
    for case in ET.parse(JUNIT).getroot().iter("testcase"):  # noqa: S314  # our own file
        path = case.get("classname", "").replace(".", "/") + ".py"
        name = case.get("name", "")
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed"}.get(child.tag, child.tag)
        results[f"{path}::{name}"] = outcome
    return results


def render(rc: int) -> tuple[str, bool]:
    figures = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
    tests = _junit()
    good = rc == 0
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Trust report",
        "",
        f"Written by `make trust` (scripts/trust_report.py) on {stamp}; do not edit by hand.",
        f"Suite: tests/trust/ plus {len(CITED)} cited tests; pytest exit code {rc}.",
        "",
        "| Figure | Value | Must be | Checked | OK | Measured by |",
        "|---|---|---|---|---|---|",
    ]
    for name, (_meaning, target, op) in TARGETS.items():
        entry = figures.get(name)
        if entry is None:
            good = False
            lines.append(f"| {name} | not measured | {op} {target} | - | no | - |")
            continue
        value = entry["value"]
        ok = _ok(value, target, op)
        good = good and ok
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        sources = "<br>".join(entry["sources"])
        lines.append(
            f"| {name} | {shown} | {op} {target} | {entry['checked']} | "
            f"{'yes' if ok else '**NO**'} | {sources} |"
        )
    lines += ["", "## Sandbox bypass corpus", "", "| Class | Attempts | Successes | OK |"]
    lines += ["|---|---|---|---|"]
    for cls in SANDBOX_CLASSES:
        entry = figures.get(f"sandbox_bypass_{cls}")
        if entry is None:
            lines.append(f"| {cls} | not run | - | no |")
            continue
        ok = entry["value"] == 0
        lines.append(
            f"| {cls} | {entry['checked']} | {entry['value']} | {'yes' if ok else '**NO**'} |"
        )
    lines += ["", "What each figure counts:", ""]
    lines += [f"- `{name}`: {meaning}." for name, (meaning, _, _) in TARGETS.items()]
    lines += ["", "## Cited tests", "", "| Test | Proves | Result |", "|---|---|---|"]
    for nodeid, proves in CITED:
        # A parametrized test counts once, passed only when every parametrization passed.
        runs = [v for k, v in tests.items() if k == nodeid or k.startswith(nodeid + "[")]
        outcome = "not run" if not runs else next((v for v in runs if v != "passed"), "passed")
        good = good and outcome == "passed"
        lines.append(f"| `{nodeid}` | {proves} | {outcome} |")
    details = [(n, e) for n, e in figures.items() if any(e.get("details", []))]
    if details:
        lines += ["", "## Details", ""]
        for name, entry in details:
            lines += [f"### {name}", "", "```", *[d for d in entry["details"] if d], "```", ""]
    lines += ["", f"Overall: {'PASS' if good else 'FAIL'}", ""]
    return "\n".join(lines), good


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "bench" / "trust.md"))
    parser.add_argument("--no-run", action="store_true", help="render the last figures only")
    args, extra = parser.parse_known_args()
    rc = 0 if args.no_run else run_suite(extra)
    text, good = render(rc)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"wrote {out} ({'PASS' if good else 'FAIL'})")
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
