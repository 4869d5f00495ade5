"""Render one `python -m bench` run as bench/RESULTS.md (every figure comes from the run)."""

from __future__ import annotations

import functools
import math
import operator
import statistics
from collections.abc import Callable
from typing import Any


def g(d: Any, *path: Any) -> Any:
    for k in path:
        in_dict = isinstance(d, dict) and k in d
        in_list = isinstance(d, list) and isinstance(k, int) and -len(d) <= k < len(d)
        if in_dict or in_list:
            d = d[k]
        else:
            return None
    return d


def med(xs: list[Any]) -> float | None:
    xs = [x for x in xs if isinstance(x, int | float) and not math.isnan(x)]
    return statistics.median(xs) if xs else None


def f(v: Any, nd: int = 1) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:,.{nd}f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def ms(us: Any) -> str:
    return "—" if us is None else f"{us / 1000:,.2f} ms"


class Goals:
    def __init__(self) -> None:
        self.rows: list[str] = []
        self.misses: list[str] = []
        self.ratios: dict[str, float | None] = {}
        self.targets: dict[str, str] = {}

    def add(
        self,
        goal: str,
        hub: str,
        bare: str,
        ratios: list[float | None],
        target: str,
        ok: Callable[[float], bool],
        runs: str = "",
    ) -> float | None:
        r = med(ratios)
        self.ratios[goal], self.targets[goal] = r, target
        verdict = "—" if r is None else ("**pass**" if ok(r) else "**miss**")
        if r is not None and not ok(r):
            self.misses.append(goal)
        per_run = ", ".join(f(x, 2) for x in ratios) if ratios else ""
        self.rows.append(
            f"| {goal} | {hub} | {bare} | {f(r, 2)}× ({per_run}) | {target} | {verdict} |"
        )
        return r

    def note(self, goal: str, figure: str, target: str, verdict: str) -> None:
        if "miss" in verdict:
            self.misses.append(goal)
        self.rows.append(f"| {goal} | {figure} | | | {target} | {verdict} |")


def ratio_list(a: list[Any], b: list[Any], *path: str) -> list[float | None]:
    out: list[float | None] = []
    for x, y in zip(a, b, strict=False):
        hx, by = g(x, *path[0].split(".")), g(y, *path[1].split("."))
        out.append(hx / by if isinstance(hx, int | float) and by else None)
    return out


def goals_of(d: dict[str, Any]) -> Goals:  # noqa: C901  # one linear list of goals
    """Every goal of issue 12 with its figures, ratio and verdict, from one run's data."""
    goals = Goals()
    # 1. dispatch
    dis = d.get("dispatch", {})
    bare, hub = dis.get("bare", []), dis.get("hub", [])
    goals.add(
        "1. dispatch over open stream, p50",
        ms(med([g(h, "dispatch_to_ack", "p50_us") for h in hub])),
        ms(med([g(b, "p50_us") for b in bare])),
        ratio_list(hub, bare, "dispatch_to_ack.p50_us", "p50_us"),
        "≤ 1.5×",
        lambda r: r <= 1.5,
    )
    goals.add(
        "1. dispatch over open stream, p99",
        ms(med([g(h, "dispatch_to_ack", "p99_us") for h in hub])),
        ms(med([g(b, "p99_us") for b in bare])),
        ratio_list(hub, bare, "dispatch_to_ack.p99_us", "p99_us"),
        "≤ 2×",
        lambda r: r <= 2.0,
    )
    rest = d.get("rest", {})
    for db in ("sqlite", "postgresql"):
        runs = rest.get(db, [])
        bad = sum(g(r, "not_succeeded") or 0 for r in runs)
        goals.note(
            f"1. REST POST + GET ?wait= round trip ({db})",
            f"p50 {ms(med([g(r, 'p50_us') for r in runs]))}, "
            f"p99 {ms(med([g(r, 'p99_us') for r in runs]))}, {bad} not succeeded",
            "reported",
            "reported" if runs and not any("error" in r for r in runs) else "**failed to run**",
        )
    ag = d.get("agents", {})
    goals.note(
        f"9. {f(g(ag, 'agents'))} agents on a one-minute cron, 2 schedulers (reported)",
        f"runs {g(ag, 'runs')} for {g(ag, 'agents_with_one_run')} agents; fire-time jitter "
        f"p50 {g(ag, 'jitter_ms', 'p50')} ms, p99 {g(ag, 'jitter_ms', 'p99')} ms; CPU per idle "
        f"pass p50 {g(ag, 'cpu_ms_per_idle_pass', 'p50')} ms, per firing pass "
        f"{g(ag, 'cpu_ms_per_firing_pass')} ms",
        "each agent once",
        "**pass**"
        if ag
        and "error" not in ag
        and g(ag, "runs") == g(ag, "agents") == g(ag, "agents_with_one_run")
        else "**miss**",
    )
    lp = d.get("longpoll", {})
    goals.note(
        f"1. {f(g(lp, 'waits'))} long polls from one user (reported)",
        f"held {g(lp, 'held')}, refused 429 {g(lp, 'refused_429')}; hub threads "
        f"{g(lp, 'before', 'threads')} → {g(lp, 'during', 'threads')} → "
        f"{g(lp, 'after', 'threads')}, RSS {g(lp, 'before', 'rss_mb')} → "
        f"{g(lp, 'during', 'rss_mb')} MB; another user's GET median "
        f"{g(lp, 'other_user_ms', 'median')} ms",
        "reported",
        "reported" if lp and "error" not in lp else "**failed to run**",
    )
    # 2/3. idle
    idle = d.get("idle", {})
    bare, hub = idle.get("bare", []), idle.get("hub", [])
    goals.add(
        "2. memory per node, 1,000 nodes",
        f"{f(med([g(h, 'server_kb_per_node') for h in hub]))} KB",
        f"{f(med([g(b, 'server_kb_per_stream') for b in bare]))} KB",
        ratio_list(hub, bare, "server_kb_per_node", "server_kb_per_stream"),
        "≤ 1.5×",
        lambda r: r <= 1.5,
    )
    threads = [g(h, "threads") for h in hub]
    grow = [t["after_hb"] - t["before"] for t in threads if t]
    goals.note(
        "2. threads, 1,000 nodes",
        "; ".join(f"{t['before']} → {t['connected']} → {t['after_hb']}" for t in threads if t),
        "not growing",
        "**pass**" if grow and max(grow) <= 2 else "**miss**",
    )
    big = idle.get("hub_big", {})
    goals.note(
        f"2. {f(g(big, 'nodes'))} nodes (reported)",
        f"{f(g(big, 'server_kb_per_node'))} KB/node, threads "
        f"{g(big, 'threads', 'before')} → {g(big, 'threads', 'after_hb')}, "
        f"{f(g(big, 'server_cpu_pct'))}% CPU at {f(g(big, 'hb_per_s'))} beats/s, "
        f"connect all {f(g(big, 'connect_all_s'))} s, errors {g(big, 'error_count')}",
        "reported",
        "reported" if big and "error" not in big else "**failed to run**",
    )
    goals.add(
        "3. server CPU per heartbeat",
        f"{f(med([g(h, 'server_cpu_us_per_hb') for h in hub]))} µs",
        f"{f(med([g(b, 'server_cpu_us_per_hb') for b in bare]))} µs",
        ratio_list(hub, bare, "server_cpu_us_per_hb", "server_cpu_us_per_hb"),
        "≤ 2×",
        lambda r: r <= 2.0,
    )
    goals.add(
        "3. DB time per heartbeat vs bare CPU per heartbeat",
        f"{f(med([g(h, 'db_us_per_hb') for h in idle.get('hbdb', [])]))} µs",
        f"{f(med([g(b, 'server_cpu_us_per_hb') for b in bare]))} µs",
        ratio_list(idle.get("hbdb", []), bare, "db_us_per_hb", "server_cpu_us_per_hb"),
        "≤ 0.1×",
        lambda r: r <= 0.1,
    )
    goals.add(
        "3. heartbeat ack p99",
        ms(med([g(h, "hb_probe_ack", "p99_us") for h in hub])),
        ms(med([g(b, "hb_rtt", "p99_us") for b in bare])),
        ratio_list(hub, bare, "hb_probe_ack.p99_us", "hb_rtt.p99_us"),
        "≤ 2×",
        lambda r: r <= 2.0,
    )
    off = [g(h, "offline_check") for h in hub]
    goals.note(
        "3. node silent for 3 beats marked offline",
        "; ".join(f"muted {o['muted_node']}, beating {o['beating_node']}" for o in off if o),
        "offline (heartbeat_missed)",
        "**pass**" if off and all(o and o["ok"] for o in off) else "**miss**",
    )
    # 4. throughput
    thru = d.get("thru", {})
    bare, up, push = thru.get("bare", []), thru.get("hub_up", []), thru.get("hub_push", [])
    goals.add(
        "4. 100 MB output in 64 KiB chunks (node → hub)",
        f"{f(med([g(h, 'up_MBps_median') for h in up]))} MB/s",
        f"{f(med([g(b, 'up_MBps_median') for b in bare]))} MB/s",
        ratio_list(up, bare, "up_MBps_median", "up_MBps_median"),
        "≥ 0.5×",
        lambda r: r >= 0.5,
    )
    goals.add(
        "4. file push hub → node",
        f"{f(med([g(h, 'down_MBps') for h in push]))} MB/s",
        f"{f(med([g(b, 'down_MBps_median') for b in bare]))} MB/s",
        ratio_list(push, bare, "down_MBps", "down_MBps_median"),
        "≥ 0.5×",
        lambda r: r >= 0.5,
    )
    ws = d.get("ws", {})
    bare, hub = ws.get("bare_fanout", []), ws.get("hub_fanout", [])
    for q, target, lim in (("p50", "≤ 1.5×", 1.5), ("p99", "≤ 2×", 2.0)):
        goals.add(
            f"5. one line to 100 watching WebSockets, {q} per delivery",
            ms(med([g(h, "closed_loop", "per_delivery", f"{q}_us") for h in hub])),
            ms(med([g(b, "closed_loop", "per_delivery", f"{q}_us") for b in bare])),
            ratio_list(
                hub, bare, f"closed_loop.per_delivery.{q}_us", f"closed_loop.per_delivery.{q}_us"
            ),  # fmt: skip
            target,
            functools.partial(operator.ge, lim),  # r <= lim
        )
    lost = [g(h, "bursts", "lost") for h in hub]
    goals.note(
        "5. lines lost in ten bursts of fifty (100 watchers)",
        f"hub lost {lost}, bare lost {[g(b, 'bursts', 'lost') for b in bare]}",
        "0",
        "**pass**" if lost and all(x == 0 for x in lost) else "**miss**",
    )
    http = d.get("http", {})
    goals.add(
        "6. authenticated view, full middleware vs none (req/s)",
        f"{f(med([g(h, 'rps') for h in http.get('full', [])]))} req/s",
        f"{f(med([g(h, 'rps') for h in http.get('none', [])]))} req/s",
        ratio_list(http.get("full", []), http.get("none", []), "rps", "rps"),
        "≥ 0.7×",
        lambda r: r >= 0.7,
    )
    goals.add(
        "7. node list page of 50: 1,000 nodes vs 10 (p50)",
        ms(med([g(h, "p50_us") for h in http.get("list1000", [])])),
        ms(med([g(h, "p50_us") for h in http.get("list10", [])])),
        ratio_list(http.get("list1000", []), http.get("list10", []), "p50_us", "p50_us"),
        "≤ 1.3×",
        lambda r: r <= 1.3,
    )
    goals.note(
        "7. node list query count constant",
        "`mesh/tests/test_bench_queries.py` (10 vs 1,000 nodes, admin and user)",
        "constant",
        "test",
    )
    goals.add(
        "8. 1,000 idle watcher WebSockets, memory per connection",
        f"{f(g(ws, 'hub_idle', 'server_kb_per_conn'))} KB",
        f"{f(g(ws, 'bare_idle', 'server_kb_per_conn'))} KB",
        ratio_list(
            [ws.get("hub_idle")], [ws.get("bare_idle")], "server_kb_per_conn", "server_kb_per_conn"
        ),  # fmt: skip
        "≤ 1.5×",
        lambda r: r <= 1.5,
    )
    goals.add(
        "8. echo through the consumer (8 sockets, msgs/s)",
        f"{f(med([g(h, 'msgs_per_s') for h in ws.get('hub_echo', [])]))} /s",
        f"{f(med([g(h, 'msgs_per_s') for h in ws.get('bare_echo', [])]))} /s",
        ratio_list(ws.get("hub_echo", []), ws.get("bare_echo", []), "msgs_per_s", "msgs_per_s"),
        "≥ 0.7×",
        lambda r: r >= 0.7,
    )
    return goals


def terminal_lines(t: dict[str, Any] | None) -> list[str]:
    """Issue 21's terminal figures (bench/termbench.py), when the section ran."""
    if not t:
        return []
    if "hub_echo" not in t:
        return ["", "## Terminals (issue 21)", "", f"The section failed: {t.get('error')}"]
    echo, relay, bare, bulk = t["hub_echo"], t["bare_relay"], t["bare_pty"], t["hub_bulk"]
    ratio = t.get("echo_ratio_vs_relay")
    pty_bulk = t.get("bare_pty_bulk", {}).get("mb_per_s", "")
    return [
        "",
        "## Terminals (issue 21)",
        "",
        "| measure | hub | bare WS+gRPC relay | bare local PTY | target | result |",
        "|---|---|---|---|---|---|",
        f"| keystroke echo p50 (p95) | {echo['p50_ms']} ms ({echo['p95_ms']}) | "
        f"{relay['p50_ms']} ms ({relay['p95_ms']}) | {bare['p50_ms']} ms | ≤ 2× relay | "
        f"{ratio}× {'met' if ratio is not None and ratio <= 2 else 'missed'} |",
        f"| `cat` of {bulk['megabytes']} MB | {bulk['mb_per_s']} MB/s | | {pty_bulk} MB/s | "
        "≥ 50 MB/s | "
        f"{'met' if bulk['mb_per_s'] >= 50 else 'missed'} |",
        f"| hub RSS during it | {bulk['hub_rss_start_mb']} → max {bulk['hub_rss_max_mb']} MB "
        f"(+{bulk['hub_rss_growth_mb']}) | | | flat | |",
    ]


def workspaces_lines(w: dict[str, Any] | None) -> list[str]:
    """Issue 22's shared-workspace figures (bench/wsync.py), when the section ran."""
    if not w:
        return []
    if "hub_sync" not in w:
        return ["", "## Shared workspaces (issue 22)", "", f"The section failed: {w.get('error')}"]
    sync, rsync, change = w["hub_sync"], w["rsync"], w["hub_change"]
    ratio = w.get("ratio_vs_rsync")
    size = f"{w['files']:,} files / {w['bytes'] / 1e6:.0f} MB"
    lines: list[str]
    cut = (
        f"; cut off: {sync['files_delivered']} of {2 * w['files']} files arrived"
        if sync.get("complete") is False
        else ""
    )
    lines = [
        "",
        "## Shared workspaces (issue 22)",
        "",
        f"Initial sync of a `hub` workspace ({size}, a mix of sizes, half text and half random "
        "bytes) to two real agents, from attaching both until the hub reports both `in_sync` "
        "(trees then checked byte for byte). Baseline: `rsync -a` of the same tree to two "
        "destinations in parallel over TCP loopback (`rsync://`, the rsync daemon; no ssh, no "
        "`-z`), once before and once after the hub, mean of the two. Throughput counts the bytes "
        "delivered to both destinations.",
        "",
        "| measure | hub | rsync (daemon, loopback) | target | result |",
        "|---|---|---|---|---|",
        f"| initial sync to 2 nodes | {sync['mb_per_s']} MB/s, {sync['files_per_s']} files/s "
        f"({sync['seconds']} s{cut}) | {rsync['mb_per_s']} MB/s, {rsync['files_per_s']} files/s "
        f"({rsync['seconds']} s) | ≥ 0.5× | "
        f"{ratio}× {'met' if ratio is not None and ratio >= 0.5 else 'missed'} |",
        f"| a PUT visible on both nodes, p50 (p95) | {change['p50_ms']} ms "
        f"({change['p95_ms']}) | | < 1000 ms | "
        f"{'met' if change['p50_ms'] < 1000 else 'missed'} |",
        f"| (setup) PUT of the tree through the API | {sync['upload_mb_per_s']} MB/s, "
        f"{sync['upload_files_per_s']} files/s | | | |",
    ]
    node = w.get("node_change") or {}
    if "p50_ms" in node:
        lines.append(
            f"| a file written on the `node` lead, on the other node, p50 (p95) | "
            f"{node['p50_ms']} ms ({node['p95_ms']}) | | < 1000 ms | "
            f"{'met' if node['p50_ms'] < 1000 else 'missed'} |"
        )
    else:
        lines.append(
            "| a file written on the `node` lead, on the other node | not measured: "
            f"{node.get('error', 'the `node` source is not in this build')} | | < 1000 ms | — |"
        )
    lines.append("| idle CPU of a lead watching 10,000 files | not measured yet | | | — |")
    return lines


def render(d: dict[str, Any]) -> str:  # noqa: C901  # one linear report
    env = d.get("env", {})
    lines = [
        "# Cortex Hub benchmarks: the hub against the bare libraries",
        "",
        f"Written by `make bench` (`python -m bench{' --quick' if d.get('quick') else ''}`) on "
        f"{d.get('started', '?')}; the whole run took {f(d.get('elapsed_s'), 0)} s. Do not edit by "
        "hand: run `make bench` again. Servers pinned to CPU 0, load to CPU 1 (`taskset`); each "
        "pair runs interleaved in the same run and each ratio is the median of the per-run ratios "
        "(per-run ratios in brackets). Other work shared the machine "
        f"(load average at start {env.get('loadavg_at_start')}), so only same-run ratios count.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
    ]
    for k in ("cpu", "nproc", "kernel", "python", "django", "grpcio", "channels", "uvicorn",
              "redis", "postgresql"):  # fmt: skip
        lines.append(f"| {k} | {env.get(k, '—')} |")
    goals = goals_of(d)
    lines += [
        "",
        "## Goals",
        "",
        "For 1–4 the second column is the hub, the third the bare baseline of the same run; for 6 "
        "the same view with and without middleware; for 7 the page with 1,000 and with 10 nodes.",
        "",
        "| goal | hub | baseline | ratio (median; per run) | target | result |",
        "|---|---|---|---|---|---|",
        *goals.rows,
    ]
    errors = {k: v for k, v in d.items() if k.endswith("_error")}
    if errors:
        lines += ["", "## Sections that failed", ""]
        lines += [f"- `{k}`: {v}" for k, v in errors.items()]
    lines += ["", "## Breakdown of the hub's paths (measured in this run)", ""]
    hub = d.get("dispatch", {}).get("hub", [])
    lines += [
        f"- Dispatch: `task_dispatch` call (audit row + task row + doorbell) p50 "
        f"{ms(med([g(h, 'task_dispatch_call', 'p50_us') for h in hub]))}; dispatch → TaskAssign "
        f"at the node p50 {ms(med([g(h, 'dispatch_to_assign', 'p50_us') for h in hub]))}; → "
        f"ResultAck p50 {ms(med([g(h, 'dispatch_to_ack', 'p50_us') for h in hub]))}.",
    ]
    hb = d.get("idle", {}).get("hbdb", [])
    lines += [
        f"- Heartbeat DB work per beat: `heartbeat_flush` "
        f"{f(med([g(h, 'flush_us_per_hb') for h in hb]))} µs + the flush's queued-work check "
        f"{f(med([g(h, 'queued_check_us_per_hb') for h in hb]))} µs; a delivery claim (now only "
        f"on a doorbell or queued work) {f(med([g(h, 'claim_us_per_doorbell') for h in hb]))} µs.",
        f"- 1,000 nodes connect in {f(med([g(h, 'connect_all_s') for h in d.get('idle', {}).get('hub', [])]))} s "  # noqa: E501
        f"(bare: {f(med([g(b, 'connect_all_s') for b in d.get('idle', {}).get('bare', [])]))} s).",
    ]
    for r in d.get("thru", {}).get("hub_up", []):
        for run in r.get("runs", []):
            lines.append(
                f"- Output run: {f(run['MBps'])} MB/s, {run['chunks_acked']} chunks acked, "
                f"stored {f(run['stored_bytes'])} B of {f(run['output_bytes'])} B (within cap: "
                f"{f(run['within_cap'])}), {run['watcher_frames']} live frames seen by a watcher."
            )
    lines += terminal_lines(d.get("terminal"))
    lines += workspaces_lines(d.get("workspaces"))
    lines += before_after(d)
    lines += round_before_after(goals)
    prof = d.get("idle", {}).get("profile") or {}
    if prof and "error" not in prof:
        lines += [
            "",
            "## Profiles (cProfile of the mesh services, in-process, after the load phases)",
            "",
            "Top functions by cumulative time, in ms per call of the profiled path (profiling "
            "inflates absolute times; the shares are what matter).",
        ]
        for name, p in prof.items():
            if not isinstance(p, dict):
                continue
            lines += ["", f"**{name}**: {p['ms_per_call_profiled']} ms per call", ""]
            lines += ["| function | calls | ms per call of the path |", "|---|---|---|"]
            lines += [f"| `{r[0]}` | {r[1]} | {r[2]} |" for r in p["top_ms_per_call"]]
    lines += ["", "## Raw figures", "", "```json"]
    import json

    lines += [json.dumps({k: v for k, v in d.items() if k != "env"}, indent=1)[:60000], "```", ""]
    lines += ["## Misses: profile and plan", ""]
    lines += [f"- {m}" for m in goals.misses] or ["- none"]
    lines += ["", PLAN, ""]
    return "\n".join(lines)


#: Stored full runs at the end of earlier rounds of changes (`bench/history/`), oldest first.
ROUNDS = (("round 1", "session1-final.json"), ("round 2", "session2-final.json"))


def round_before_after(goals: Goals) -> list[str]:
    """Each goal's ratio at the end of every earlier round of changes and in this run."""
    import json
    from pathlib import Path

    earlier = []
    for label, name in ROUNDS:
        path = Path(__file__).with_name("history") / name
        if path.is_file():
            old = json.loads(path.read_text())
            earlier.append((label, name, old.get("started"), goals_of(old)))
    if not earlier:
        return []
    rows = [
        f"| {goal} | "
        + " | ".join(f"{f(before.ratios.get(goal), 2)}×" for *_, before in earlier)
        + f" | {f(now, 2)}× | {goals.targets[goal]} |"
        for goal, now in goals.ratios.items()
    ]
    stored = "; ".join(
        f"{label}: {started}, `bench/history/{name}`" for label, name, started, _ in earlier
    )
    return [
        "",
        "## Every goal after each round of changes",
        "",
        f"Earlier columns are the last full run of each round ({stored}). The changes of this "
        "round are listed under the plan at the end.",
        "",
        "| goal | " + " | ".join(f"after {label}" for label, *_ in earlier) + " | now | target |",
        "|---|" + "---|" * len(earlier) + "---|---|",
        *rows,
    ]


def before_after(d: dict[str, Any]) -> list[str]:
    """The heartbeat path before the mesh changes (a stored run of this harness) and now."""
    import json
    from pathlib import Path

    path = Path(__file__).with_name("history") / "before-mesh-changes.json"
    if not path.is_file():
        return []
    old = json.loads(path.read_text())
    oi, ni = old.get("idle", {}), d.get("idle", {})

    def both(fn: Callable[[dict[str, Any]], Any]) -> tuple[str, str]:
        return f(fn(oi)), f(fn(ni))

    rows = [
        (
            "hub CPU per heartbeat, 1,000 nodes (µs)",
            *both(lambda i: med([g(h, "server_cpu_us_per_hb") for h in i.get("hub", [])])),
        ),
        (
            "bare CPU per heartbeat in the same run (µs)",
            *both(lambda i: med([g(b, "server_cpu_us_per_hb") for b in i.get("bare", [])])),
        ),
        (
            "DB time per heartbeat (µs)",
            *both(lambda i: med([g(h, "db_us_per_hb") for h in i.get("hbdb", [])])),
        ),
        (
            "heartbeat probe ack p99 (µs)",
            *both(lambda i: med([g(h, "hb_probe_ack", "p99_us") for h in i.get("hub", [])])),
        ),
        (
            "probe nodes whose ack timed out (10 s)",
            *both(lambda i: med([g(h, "error_count") for h in i.get("hub", [])])),
        ),
        (
            "1,000 nodes connect (s)",
            *both(lambda i: med([g(h, "connect_all_s") for h in i.get("hub", [])])),
        ),
    ]
    return [
        "",
        "## Heartbeat path before and after the mesh changes",
        "",
        f"Before: a `--quick` run of this harness on {old.get('started')} (same machine, same "
        "load generator; its bare figures are shown for scale). Changes: `heartbeat_flush` "
        "writes the whole batch in one transaction with the nodes and their viewers read in a "
        "few queries and every live frame sent after commit in one hop "
        "(`events.send_many_on_commit`, `selectors.node_user_ids_many`); the per-heartbeat "
        "delivery claim is replaced by one `nodes_with_queued_tasks` query per flush that "
        "rings only the nodes with queued work (`StreamHub.flush`, "
        "`NodeConnection.deliver_soon`).",
        "",
        "| figure | before | this run |",
        "|---|---|---|",
        *[f"| {a} | {b} | {c} |" for a, b, c in rows],
    ]


PLAN = """\
How the misses were profiled: the breakdown and the cProfile tables above (`bench/pathprof.py`,
`bench/hbdb.py`, the stage timings of `bench/nodesim.py dispatch`), py-spy on the bench's
runmesh and `manage.py serve` processes, and tracemalloc snapshots of a runmesh holding 1,000
simulated nodes.

What the third round changed (the table "Every goal after each round" has the ratios):

- Task journal (goal 1): a delivery claim is one SELECT of the node's free slots and one
  `UPDATE ... RETURNING` (was three ORM queries and an UPDATE per task, ~1.2 ms);
  `task_started` and `task_finish` are one UPDATE each (finish was a locked SELECT and a
  save). A result no longer triggers a claim unless the last claim was limited by the node's
  free slots (`Claim.more`); new tasks ring a doorbell anyway. Frames queued by a gRPC unit of
  DB work go to a per-loop ordered sender (`events.send_soon`) instead of being awaited, so a
  ResultAck does not wait on Redis. Sync code run from the ASGI server's loop hands its
  after-commit frames to that loop (`cortex/patches/asgiref_loops.py`) instead of blocking in
  `async_to_sync`.
- SQLite (goals 1, 3): `PRAGMA synchronous=NORMAL` with WAL (`CORTEX_SQLITE_SYNCHRONOUS`; FULL
  fsynced the log on every commit, ~0.25 ms each here; with NORMAL a commit survives any crash
  of the hub, and only a power cut or OS crash may lose the last ones) and a checkpoint every
  4,000 pages (a heartbeat flush rewrites the same node pages every second).
- Heartbeats (goals 2, 3): the flush's three 1,000-value `IN` lookups, the queued-work check
  and the viewers query are written by hand (Django prepared each value in Python), skill
  configs are decoded once per distinct value; frames are sent in slices of 128 so acks get
  the loop in between; a node's stream keeps no Hello or decoded policy for its lifetime
  (tracemalloc: ~2 KB per node).
- Middleware (goal 6): Django's session, common, auth and messages middleware run their hooks
  on the event loop (`cortex.middleware`); `MiddlewareMixin` hopped to the sync thread twice per
  middleware under ASGI. A hook that may reach the database still goes to the thread.
- Node list (goal 7): the user list counts on the grants alone, picks the page's ids with a
  narrow query (walking the `node_id` index for dense grants) and loads only the page's
  columns for them; an index on grants by (group, node).
- Output (goal 4): a batch is a few hand-written statements (the ORM cost ~1.9 ms per batch to
  build them), a short batch lingers 2 ms for more chunks, live frames go at most every 50 ms
  covering everything since the last (`LiveNews`).
- PostgreSQL (the REST round trip): a psycopg pool shared by the process's threads. Under ASGI
  Django runs each request in a thread of its own, so persistent connections were opened per
  request.

What is left, with its profile and plan:

- Dispatch (goal 1) is a miss by design. A bare echo is one loopback round trip (~0.15 ms). The
  hub's path, measured by its stages: `task_dispatch` in the caller's process (~0.55 ms of
  work: the audit row and the task row through the ORM, ~0.2 ms each with the commit; the
  sandbox check of the command, ~0.1 ms) plus the thread hop; the doorbell through Redis to the
  runmesh holding the stream; a claim in the runmesh's database thread (~0.15 ms plus a ~0.15
  ms thread hop); the TaskAssign; the node's result; `task_finish` (~0.1 ms plus the hop) before
  the ResultAck, which tells the node its result is durable. Each database step with its hop
  alone is about the whole 1.5x budget, and a task journal that loses nothing on a crash needs
  all three. Plan, for what remains: the audit and task rows in one hand-written insert each,
  and the runmesh's database work on an executor without asgiref's per-call overhead.
- Output (goal 4) sits at the line (0.49-0.51 in single runs). py-spy of the runmesh during
  the upload: the stream reader's receive and parse of each 64 KiB message (the work the bare
  server does too) is about half of the hub's CPU; the database thread (writing the 2 MiB head
  and 2 MiB tail as 64 KiB blobs, the commits, one counter UPDATE per batch) about a third,
  on the same core. Removing the simulated node's 64-chunk ack window (the real agent has
  none) changes nothing: the hub is CPU-bound. Plan: write the kept chunks as larger rows
  (fewer overflow chains and statements), and fold the secrets-version check into the task
  query.
- Heartbeat ack p99 (goal 3): the probe now has 250 nodes (~1,000 samples per run, where 50
  gave ~200 and a p99 that was the second-worst sample: earlier passes were that noise). p50 and
  p90 are ~1.4x the bare round trip; the p99 (~1.5-2.8 ms) is the loop waiting once a second
  while the database thread runs the flush (~20 ms of Python for 1,000 beats) and holds the
  GIL. Done: runmesh switches the GIL every 1 ms instead of 5 ms; a flush no longer
  serialises frames for node consoles nobody has open (one PUBSUB NUMSUB for a large batch,
  `cortex.patches.channels_redis_layer`). Plan: write the flush's rows from a second
  connection in the C-level `executemany` only (building the beat tuples on the loop as they
  arrive), so the database thread holds the GIL for less than a millisecond per flush.
- File push (goal 4): the simulated node's core is the bottleneck. Per 25 MiB file, staging
  (a copy and a sha256), receiving the 1 MiB `FileChunk`s and the node's own sha256 share that
  core; the hub spends ~45 ms of CPU streaming each file. Plan: hash while staging the upload
  (one pass instead of a copy and a read), and stream from the staged blob with `sendfile`-
  sized reads.
"""
