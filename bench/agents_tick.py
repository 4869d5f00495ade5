"""Scheduled agents: fire-time jitter for 1,000 agents on a one-minute cron, and the
scheduler's CPU per pass, with two scheduler processes sharing one PostgreSQL database.

usage: python -m bench.agents_tick [--agents 1000] [--processes 2] [--tick 1.0]
Creates and drops its own database on the test PostgreSQL (BENCH_POSTGRES, default
postgres://postgres@127.0.0.1:55432). Each worker runs the scheduler's firing pass
(`agents.services.runs.ticks_fire`) every `--tick` seconds across one minute boundary; runs
are left `scheduled` (no model is called: this measures the scheduler, not the turn).
Jitter = the run row's insert time minus its tick. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PG = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:55432")


def _env(db: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL"))}
    env.update(
        DJANGO_SETTINGS_MODULE="bench.settings",
        DATABASE_URL=f"{PG}/{db}",
        CORTEX_FIELD_KEYS=env.get(
            "CORTEX_FIELD_KEYS", "Zm9yLWJlbmNoLW9ubHktMzItYnl0ZXMta2V5LXh4eHg="
        ),
        CORTEX_AGENT_MIN_INTERVAL_S="60",
        PYTHONUNBUFFERED="1",
    )
    return env


def _django() -> None:
    import django

    django.setup()


def seed(agents: int) -> float:
    """Agents on `* * * * *`, all due at the next minute boundary at least 15 s away."""
    _django()
    from datetime import UTC, datetime, timedelta

    from accounts.models import User
    from agents.models import Agent

    now = datetime.now(UTC)
    boundary = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    if (boundary - now).total_seconds() < 15:
        boundary += timedelta(minutes=1)
    owner = User.objects.create_user(email="bench-agents@example.com", password="x-bench-pass-1")  # noqa: S106
    Agent.objects.bulk_create(
        Agent(
            owner=owner,
            name=f"bench-{i:04d}",
            prompt="noop",
            trigger_kind="cron",
            cron_expression="* * * * *",
            timezone="UTC",
            next_fire_at=boundary,
        )
        for i in range(agents)
    )
    return boundary.timestamp()


def worker(until: float, tick: float) -> dict[str, Any]:
    """Firing passes until `until`; CPU seconds of each pass (idle and firing apart)."""
    _django()
    from django.db import close_old_connections

    from agents.services.runs import BATCH, next_due_in, ticks_fire

    idle: list[float] = []
    firing: list[float] = []
    firing_wall: list[float] = []
    fired = 0
    started = time.time()
    while time.time() < until:
        cpu, wall = time.process_time(), time.monotonic()
        got = ticks_fire()
        close_old_connections()
        spent = time.process_time() - cpu
        (firing if got else idle).append(spent)
        if got:
            firing_wall.append(time.monotonic() - wall)
        fired += len(got)
        if len(got) >= BATCH:
            continue  # the scheduler passes again at once after a full batch
        due = next_due_in()
        time.sleep(min(tick, due + 0.001) if due is not None else tick)
    return {
        "fired": fired,
        "idle_cpu_s": idle,
        "firing_cpu_s": firing,
        "firing_wall_s": firing_wall,
        "started": started,
    }


def _pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--tick", type=float, default=1.0)
    parser.add_argument("--worker-until", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker_until:
        print(json.dumps(worker(args.worker_until, args.tick)))
        return

    import psycopg

    db = f"cortex_bench_agents_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    env = _env(db)
    try:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=ROOT,
            env=env,
            check=True,
            timeout=600,
        )
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                f"from bench.agents_tick import seed; print(seed({args.agents}))",
            ],
            cwd=ROOT,
            env=env,
            check=True,
            timeout=600,
            capture_output=True,
            text=True,
        )
        boundary = float(done.stdout.strip().splitlines()[-1])
        until = boundary + 10
        workers = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bench.agents_tick",
                    "--worker-until",
                    str(until),
                    "--tick",
                    str(args.tick),
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(args.processes)
        ]
        reports = [
            json.loads(w.communicate(timeout=300)[0].strip().splitlines()[-1]) for w in workers
        ]
        with psycopg.connect(f"{PG}/{db}") as conn:
            rows = conn.execute(
                "SELECT agent_id, EXTRACT(EPOCH FROM created_at - scheduled_for) "
                "FROM agents_agentrun"
            ).fetchall()
    finally:
        with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    jitter_ms = [float(r[1]) * 1000 for r in rows]
    idle = [x for r in reports for x in r["idle_cpu_s"]]
    firing = [x for r in reports for x in r["firing_cpu_s"]]
    print(
        json.dumps(
            {
                "agents": args.agents,
                "processes": args.processes,
                "tick_s": args.tick,
                "runs": len(rows),
                "agents_with_one_run": len({r[0] for r in rows}),
                "fired_per_process": [r["fired"] for r in reports],
                "jitter_ms": {
                    "p50": round(statistics.median(jitter_ms), 1) if jitter_ms else None,
                    "p99": round(_pct(jitter_ms, 99), 1),
                    "max": round(max(jitter_ms), 1) if jitter_ms else None,
                },
                "cpu_ms_per_idle_pass": {
                    "p50": round(statistics.median(idle) * 1000, 2) if idle else None,
                    "p99": round(_pct(idle, 99) * 1000, 2),
                },
                "cpu_ms_per_firing_pass": [round(x * 1000, 1) for x in firing],
                "wall_ms_per_firing_pass": [
                    round(x * 1000, 1) for r in reports for x in r["firing_wall_s"]
                ],
                "workers_ready_s_before_tick": [round(boundary - r["started"], 1) for r in reports],
            },
        )
    )


if __name__ == "__main__":
    main()
