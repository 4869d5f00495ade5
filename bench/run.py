"""Run every hub-vs-bare pair in one go and write bench/RESULTS.md.

Servers are pinned to CPU 0 and load to CPU 1 (taskset); every process is started here and
stopped by its pid; every client has a count and a time bound. Pairs run interleaved, two or
three times, and each goal is judged on the median of the per-run ratios.
usage: python -m bench [--quick] [--only dispatch,rest,http,thru,idle,ws,longpoll,terminal,agents,
       workspaces]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BASE = ROOT / "bench" / "baselines"
PY = sys.executable
PG_URL = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:55432")
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:56379")
PROCS: list[subprocess.Popen[bytes]] = []
T_START = time.time()


def log(*parts: Any) -> None:
    print(time.strftime("%H:%M:%S"), *parts, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 40.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"pid {proc.pid} exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"port {port} did not open within {timeout}s")


class Bench:
    def __init__(self, quick: bool) -> None:
        self.quick = quick
        self.work = Path(tempfile.mkdtemp(prefix="cortex-bench-"))
        self.logs = self.work / "logs"
        self.logs.mkdir()
        self.sqlite = f"sqlite:///{self.work / 'hub.sqlite3'}"
        self.pg_name = f"cortex_bench_{os.getpid()}"
        self.pg = f"{PG_URL}/{self.pg_name}"
        self.redis = f"{REDIS}/9"
        self.seed = self.work / "seed.json"
        self.pg_seed = self.work / "seed_pg.json"
        self.out: dict[str, Any] = {}

    # ------------------------------------------------------------------ processes
    def hub_env(self, db: str, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            DJANGO_SETTINGS_MODULE="bench.settings",
            DATABASE_URL=db,
            CORTEX_HEARTBEAT_INTERVAL="5",
            CORTEX_MEDIA_ROOT=str(self.work / "media"),  # pushes: staged by one, sent by another
            PYTHONDONTWRITEBYTECODE="1",
        )
        env.pop("REDIS_URL", None)
        env.update(extra)
        return env

    def base_env(self, **extra: str) -> dict[str, str]:
        env = {
            k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DJANGO_SETTINGS_MODULE")
        }
        env.update(PERF_DIR=str(self.work / "bare"), PYTHONDONTWRITEBYTECODE="1", **extra)
        return env

    def start(
        self, name: str, argv: list[str], port: int, env: dict[str, str], cwd: Path = ROOT
    ) -> subprocess.Popen[bytes]:
        fh = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115  # closed with the process
        p = subprocess.Popen(
            ["taskset", "-c", "0", *argv],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
        PROCS.append(p)
        wait_port(port, p)
        time.sleep(1.0)
        log(f"started {name} pid={p.pid} port={port}")
        return p

    @staticmethod
    def stop(p: subprocess.Popen[bytes]) -> None:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        if p in PROCS:
            PROCS.remove(p)

    def client(
        self, argv: list[str], env: dict[str, str], timeout: float, cwd: Path = ROOT
    ) -> dict:
        env = {**env, "PIN_CPU": "1"}
        try:
            r = subprocess.run(
                ["taskset", "-c", "1", *argv],
                capture_output=True,
                text=True,
                env=env,
                timeout=timeout,
                cwd=cwd,
            )
        except subprocess.TimeoutExpired:
            log("CLIENT TIMEOUT", " ".join(argv[:4]))
            return {"error": "timeout"}
        lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
        if r.returncode != 0 or not lines:
            log("CLIENT FAILED", " ".join(argv[:4]), r.stderr[-1500:])
            return {"error": r.stderr[-400:]}
        return json.loads(lines[-1])

    def hub_client(self, args: list[str], db: str, timeout: float, **env: str) -> dict:
        return self.client([PY, "-m", *args], self.hub_env(db, **env), timeout)

    def runmesh(self, name: str, db: str, **env: str) -> tuple[subprocess.Popen[bytes], str]:
        port = free_port()
        p = self.start(
            name,
            [PY, "manage.py", "runmesh", "--address", f"127.0.0.1:{port}", "--grace", "2"],
            port,
            self.hub_env(db, REDIS_URL=self.redis, **env),
        )
        return p, f"127.0.0.1:{port}"

    def serve(self, name: str, db: str, grpc: bool = True, **env: str) -> tuple[Any, int, str]:
        http, gport = free_port(), free_port()
        argv = [PY, "manage.py", "serve", "--http", f"127.0.0.1:{http}"]
        argv += ["--grpc", f"127.0.0.1:{gport}"] if grpc else ["--no-grpc"]
        p = self.start(name, argv, http, self.hub_env(db, **env))
        return p, http, f"127.0.0.1:{gport}"

    def bare_grpc(self) -> tuple[subprocess.Popen[bytes], int]:
        port = free_port()
        p = self.start(
            "bare_grpc", [PY, str(BASE / "grpc_server.py"), str(port), "aio"], port, self.base_env()
        )
        return p, port

    def bare_client(self, args: list[str], timeout: float) -> dict:
        return self.client([PY, str(BASE / "grpc_bench.py"), *args], self.base_env(), timeout)

    # ------------------------------------------------------------------ setup
    def setup(self) -> None:
        gen = self.work / "bare" / "gen"
        gen.mkdir(parents=True)
        subprocess.run(
            [PY, "-m", "grpc_tools.protoc", f"-I{BASE}", f"--python_out={gen}",
             f"--grpc_python_out={gen}", str(BASE / "echo.proto")],
            check=True,
            timeout=60,
        )  # fmt: skip
        env = self.hub_env(self.sqlite)
        subprocess.run(
            [PY, "manage.py", "migrate", "-v0"], env=env, cwd=ROOT, check=True, timeout=300
        )
        nodes = "2200" if self.quick else "5100"
        subprocess.run(
            [PY, "-m", "bench.seed", "--nodes", nodes, "--probes", "250", "--out", str(self.seed)],
            env=env, cwd=ROOT, check=True, timeout=300,
        )  # fmt: skip
        import psycopg

        with psycopg.connect(f"{PG_URL}/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.pg_name}"')
        env = self.hub_env(self.pg)
        subprocess.run(
            [PY, "manage.py", "migrate", "-v0"], env=env, cwd=ROOT, check=True, timeout=300
        )
        subprocess.run(
            [PY, "-m", "bench.seed", "--nodes", "20", "--probes", "0", "--out", str(self.pg_seed)],
            env=env, cwd=ROOT, check=True, timeout=300,
        )  # fmt: skip
        self.tokens = json.loads(self.seed.read_text())["tokens"]
        self.pg_tokens = json.loads(self.pg_seed.read_text())["tokens"]

    def teardown(self) -> None:
        for p in list(PROCS):
            self.stop(p)
        with contextlib.suppress(Exception):
            import psycopg

            with psycopg.connect(f"{PG_URL}/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.pg_name}" WITH (FORCE)')
        shutil.rmtree(self.work, ignore_errors=True)

    # ------------------------------------------------------------------ sections
    def sec_dispatch(self) -> None:
        reps = 2 if self.quick else 3
        bare, bport = self.bare_grpc()
        mesh, addr = self.runmesh("runmesh_dispatch", self.sqlite)
        res: dict[str, list] = {"bare": [], "hub": []}
        for _ in range(reps):
            res["bare"].append(
                self.bare_client(["latency", "--port", str(bport), "--n", "3000"], 120)
            )
            res["hub"].append(
                self.hub_client(
                    ["bench.nodesim", "dispatch", "--address", addr, "--seed", str(self.seed),
                     "--node", "4000" if not self.quick else "2000", "--n", "150", "--secs", "60"],
                    self.sqlite, 150, REDIS_URL=self.redis,
                )
            )  # fmt: skip
        self.stop(mesh)
        self.stop(bare)
        self.out["dispatch"] = res

    def sec_rest(self) -> None:
        res: dict[str, list] = {}
        for label, db, seed, tokens, node in (
            ("sqlite", self.sqlite, self.seed, self.tokens, 4001 if not self.quick else 2001),
            ("postgresql", self.pg, self.pg_seed, self.pg_tokens, 5),
        ):
            srv, http, gaddr = self.serve(f"serve_rest_{label}", db)
            agent = subprocess.Popen(
                ["taskset", "-c", "1", PY, "-m", "bench.nodesim", "agent", "--address", gaddr,
                 "--seed", str(seed), "--node", str(node), "--secs", "300"],
                env=self.hub_env(db), cwd=ROOT, stdout=subprocess.PIPE,
                stderr=open(self.logs / f"agent_{label}.log", "ab"),  # noqa: SIM115
                start_new_session=True,
            )  # fmt: skip
            PROCS.append(agent)
            assert agent.stdout is not None
            agent.stdout.readline()  # READY
            node_id = json.loads(seed.read_text())["nodes"][node][0]
            res[label] = [
                self.hub_client(
                    [
                        "bench.httpload",
                        "rest",
                        "--base",
                        f"http://127.0.0.1:{http}",
                        "--token",
                        tokens["admin"],
                        "--node",
                        node_id,
                        "--n",
                        "60",
                        "--secs",
                        "60",
                    ],
                    db,
                    120,
                )  # fmt: skip
                for _ in range(2)
            ]
            self.stop(agent)
            self.stop(srv)
        self.out["rest"] = res

    def sec_idle(self) -> None:
        reps = 1 if self.quick else 2
        hold = "12" if self.quick else "20"
        res: dict[str, Any] = {"bare": [], "hub": [], "hbdb": []}
        for _ in range(reps):
            bare, bport = self.bare_grpc()
            res["bare"].append(
                self.bare_client(
                    ["idle", "--port", str(bport), "--streams", "1000", "--per-channel",
                     "--interval", "5", "--hold", hold, "--server-pid", str(bare.pid)],
                    240,
                )
            )  # fmt: skip
            self.stop(bare)
            mesh, addr = self.runmesh("runmesh_idle", self.sqlite)
            res["hub"].append(
                self.hub_client(
                    ["bench.nodesim", "idle", "--address", addr, "--seed", str(self.seed),
                     "--nodes", "1000", "--interval", "5", "--hold", hold, "--check-offline",
                     "--server-pid", str(mesh.pid)],
                    self.sqlite, 400,
                )
            )  # fmt: skip
            self.stop(mesh)
            res["hbdb"].append(
                self.client(
                    [PY, "-m", "bench.hbdb", "--nodes", "1000"],
                    self.hub_env(self.sqlite, REDIS_URL=self.redis, PIN_CPU="0"),
                    180,
                )
            )
        res["profile"] = self.client(
            [PY, "-m", "bench.pathprof"],
            self.hub_env(self.sqlite, REDIS_URL=self.redis, PIN_CPU="0"),
            300,
        )
        big = "2000" if self.quick else "5000"
        mesh, addr = self.runmesh("runmesh_idle_big", self.sqlite)
        res["hub_big"] = self.hub_client(
            ["bench.nodesim", "idle", "--address", addr, "--seed", str(self.seed), "--nodes", big,
             "--interval", "5", "--hold", "12", "--mute", "0", "--server-pid", str(mesh.pid)],
            self.sqlite, 600,
        )  # fmt: skip
        self.stop(mesh)
        self.out["idle"] = res

    def sec_thru(self) -> None:
        reps = 1 if self.quick else 2
        mib = "50" if self.quick else "100"
        push_size = (12 if self.quick else 25) << 20  # 4 files: ~50 or ~100 MB like the bare run
        res: dict[str, list] = {"bare": [], "hub_up": [], "hub_push": []}
        bare, bport = self.bare_grpc()
        mesh, addr = self.runmesh("runmesh_thru", self.sqlite, BENCH_OUTPUT_RATE="10000000000")
        node = "4002" if not self.quick else "2002"
        for _ in range(reps):
            res["bare"].append(
                self.bare_client(["thru", "--port", str(bport), "--mib", mib, "--reps", "1"], 240)
            )
            res["hub_up"].append(
                self.hub_client(
                    ["bench.nodesim", "upload", "--address", addr, "--seed", str(self.seed),
                     "--node", node, "--mib", mib, "--secs", "120"],
                    self.sqlite, 300, REDIS_URL=self.redis,
                )
            )  # fmt: skip
            res["hub_push"].append(
                self.hub_client(
                    ["bench.nodesim", "push", "--address", addr, "--seed", str(self.seed),
                     "--node", node, "--files", "4", "--size", str(push_size), "--secs", "90"],
                    self.sqlite, 200, REDIS_URL=self.redis,
                )
            )  # fmt: skip
        self.stop(mesh)
        self.stop(bare)
        self.out["thru"] = res

    def sec_http(self) -> None:
        reps = 2 if self.quick else 3
        secs = "3" if self.quick else "5"
        full, fport, _ = self.serve("serve_full_mw", self.sqlite, grpc=False)
        none, nport, _ = self.serve("serve_no_mw", self.sqlite, grpc=False, BENCH_MIDDLEWARE="none")
        res: dict[str, list] = {"full": [], "none": [], "list1000": [], "list10": []}

        def rate(port: int, path: str, token: str, conns: str) -> dict:
            return self.hub_client(
                ["bench.httpload", "rate", "--url", f"http://127.0.0.1:{port}{path}", "--token",
                 token, "--conns", conns, "--secs", secs],
                self.sqlite, 90,
            )  # fmt: skip

        for _ in range(reps):
            res["full"].append(rate(fport, "/api/v1/users/me/", self.tokens["admin"], "16"))
            res["none"].append(rate(nport, "/api/v1/users/me/", self.tokens["admin"], "16"))
        for _ in range(reps):
            res["list1000"].append(rate(fport, "/api/v1/nodes/?page=1", self.tokens["u1000"], "4"))
            res["list10"].append(rate(fport, "/api/v1/nodes/?page=1", self.tokens["u10"], "4"))
        self.stop(full)
        self.stop(none)
        self.out["http"] = res

    def bare_ws(self, name: str) -> tuple[subprocess.Popen[bytes], int]:
        port = free_port()
        argv = [str(Path(PY).parent / "uvicorn"), "hubbench.asgi:application", "--host",
                "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log",
                "--ws", "websockets-sansio"]  # fmt: skip
        p = self.start(name, argv, port, self.base_env(BENCH_LAYER="memory"), BASE / "hubbench")
        return p, port

    def ws_client(self, args: list[str], timeout: float) -> dict:
        return self.client([PY, str(BASE / "ws_bench.py"), *args], self.base_env(), timeout)

    def sec_ws(self) -> None:
        reps = 1 if self.quick else 2
        node = "2003" if self.quick else "4003"
        seed = str(self.seed)
        res: dict[str, Any] = {"bare_fanout": [], "hub_fanout": [], "bare_echo": [],
                               "hub_echo": []}  # fmt: skip
        bare, bport = self.bare_ws("bare_ws")
        hub, hport, gaddr = self.serve("serve_ws", self.sqlite)
        rounds = "50" if self.quick else "100"
        for _ in range(reps):
            res["bare_fanout"].append(
                self.ws_client(
                    [
                        "fanout",
                        "--port",
                        str(bport),
                        "--subs",
                        "100",
                        "--rounds",
                        rounds,
                        "--burst",
                        "50",
                        "--bursts",
                        "10",
                    ],
                    240,
                )  # fmt: skip
            )
            res["hub_fanout"].append(
                self.hub_client(
                    [
                        "bench.wsbench",
                        "fanout",
                        "--http",
                        str(hport),
                        "--grpc",
                        gaddr,
                        "--seed",
                        seed,
                        "--node",
                        node,
                        "--rounds",
                        rounds,
                    ],
                    self.sqlite,
                    240,
                )  # fmt: skip
            )
        for _ in range(reps):
            res["bare_echo"].append(
                self.ws_client(["echo", "--port", str(bport), "--conns", "8", "--secs", "4"], 60)
            )
            res["hub_echo"].append(
                self.hub_client(["bench.wsbench", "echo", "--http", str(hport), "--seed", seed,
                                 "--node", node, "--conns", "8", "--secs", "4"], self.sqlite, 90)
            )  # fmt: skip
        self.stop(bare)
        self.stop(hub)
        bare, bport = self.bare_ws("bare_ws_idle")
        self.ws_client(["echo", "--port", str(bport), "--conns", "4", "--secs", "1"], 60)  # warm
        res["bare_idle"] = self.ws_client(
            ["idle", "--port", str(bport), "--conns", "1000", "--server-pid", str(bare.pid)], 240
        )
        self.stop(bare)
        hub, hport, _ = self.serve("serve_ws_idle", self.sqlite, grpc=False)
        res["hub_idle"] = self.hub_client(
            ["bench.wsbench", "idle", "--http", str(hport), "--seed", seed, "--node", node,
             "--conns", "1000", "--server-pid", str(hub.pid)], self.sqlite, 300,
        )  # fmt: skip
        self.stop(hub)
        self.out["ws"] = res

    def sec_agents(self) -> None:
        """Scheduled agents: fire-time jitter of 1,000 agents on a one-minute cron, two
        scheduler processes on one PostgreSQL database (bench/agents_tick.py)."""
        agents = "300" if self.quick else "1000"
        self.out["agents"] = self.client(
            [PY, "-m", "bench.agents_tick", "--agents", agents], self.base_env(), 400
        )

    def sec_longpoll(self) -> None:
        """1,500 long polls from one user against a hub of its own (bench/longpoll.py)."""
        waits = "500" if self.quick else "1500"
        self.out["longpoll"] = self.client(
            [PY, "-m", "bench.longpoll", "--waits", waits], self.base_env(), 300
        )

    def sec_terminal(self) -> None:
        """Issue 21: keystroke echo (hub vs bare PTY vs bare WS+gRPC relay) and `cat` of 100 MB
        through a hub terminal, with the hub's RSS; bench/termbench brings its own hub."""
        keys, mb = ("100", "20") if self.quick else ("300", "100")
        self.out["terminal"] = self.client(
            [PY, "-m", "bench.termbench", "all", "--keys", keys, "--mb", mb],
            self.base_env(),
            900,
        )

    def sec_workspaces(self) -> None:
        """Issue 22: initial sync of a `hub` workspace to two real agents against rsync over
        loopback, and a change's latency to both nodes; bench/wsync brings its own hub."""
        files, mb, changes = ("500", "20", "15") if self.quick else ("5000", "200", "30")
        self.out["workspaces"] = self.client(
            [PY, "-m", "bench.wsync", "all", "--files", files, "--mb", mb, "--changes", changes],
            self.base_env(),
            2700,
        )

    def env_info(self) -> dict[str, Any]:
        import channels
        import django
        import grpc
        import uvicorn

        cpu = ""
        with contextlib.suppress(Exception):
            cpu = next(
                ln.split(":", 1)[1].strip()
                for ln in open("/proc/cpuinfo")  # noqa: SIM115
                if ln.startswith("model name")
            )
        redis_v = subprocess.run(["redis-cli", "-u", REDIS, "info", "server"], capture_output=True,
                                 text=True, timeout=10).stdout  # fmt: skip
        pg_v = ""
        with contextlib.suppress(Exception):
            import psycopg

            with psycopg.connect(f"{PG_URL}/postgres") as conn:
                pg_v = conn.execute("show server_version").fetchone()[0]  # type: ignore[index]
        return {
            "cpu": cpu,
            "nproc": os.cpu_count(),
            "kernel": platform.release(),
            "python": platform.python_version(),
            "django": django.__version__,
            "grpcio": grpc.__version__,
            "channels": channels.__version__,
            "uvicorn": uvicorn.__version__,
            "redis": next(
                (
                    ln.split(":")[1].strip()
                    for ln in redis_v.splitlines()
                    if ln.startswith("redis_version")
                ),
                "",
            ),  # fmt: skip
            "postgresql": pg_v,
            "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default="")
    ap.add_argument("--results", default=str(ROOT / "bench" / "RESULTS.md"))
    ap.add_argument("--json", default="")
    a = ap.parse_args()
    b = Bench(a.quick)
    sections = ["dispatch", "rest", "http", "thru", "idle", "ws", "longpoll", "terminal", "agents",
                "workspaces"]  # fmt: skip
    if a.only:
        sections = [s for s in sections if s in a.only.split(",")]
    if set(sections) <= {"terminal", "workspaces"}:
        b.setup = lambda: None  # type: ignore[method-assign]  # these bring their own hub
    try:
        b.out["env"] = b.env_info()
        b.out["started"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
        log("setup in", b.work)
        b.setup()
        for name in sections:
            log(f"=== {name}")
            t0 = time.time()
            try:
                getattr(b, f"sec_{name}")()
            except Exception as exc:  # recorded in RESULTS.md, the other sections still run
                log(f"section {name} failed: {exc!r}")
                b.out[f"{name}_error"] = repr(exc)
            b.out.setdefault("section_seconds", {})[name] = round(time.time() - t0, 1)
    finally:
        b.out["elapsed_s"] = round(time.time() - T_START, 1)
        b.out["quick"] = a.quick
        b.teardown()
    if a.json:
        Path(a.json).write_text(json.dumps(b.out, indent=1))
    from bench.report import render

    Path(a.results).write_text(render(b.out))
    log("wrote", a.results)


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")
