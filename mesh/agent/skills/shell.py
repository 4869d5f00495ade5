"""The shell skill: one command in its own process group, output streamed as it is produced.

Cancellation and deadlines end the whole process tree: SIGINT, then SIGTERM, then SIGKILL, with
short configurable waits, sent to the process group and to every descendant found by psutil
(including ones that left the group with setsid).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from ..envpolicy import env_name_refusal

READ_SIZE = 64 * 1024
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
STDOUT, STDERR = 1, 2  # the OutputStream enum values


class EnvRefused(ValueError):
    """A declared variable may not be set (name invalid or dangerous)."""


@dataclass
class ShellOutcome:
    outcome: str  # SUCCEEDED, FAILED, CANCELLED, TIMED_OUT
    exit_code: int
    error_code: str = ""
    error_message: str = ""


def shell_program(configured: str = "") -> str:
    """The shell that runs commands: configured, else bash, else /bin/sh."""
    return configured or shutil.which("bash") or "/bin/sh"


def build_env(
    *,
    allow: tuple[str, ...],
    fixed: dict[str, str],
    declared: dict[str, str] | None,
    home: Path,
    source: dict[str, str] | None = None,
) -> dict[str, str]:
    """A clean environment: PATH/HOME basics, allow-listed agent vars, config vars, task vars."""
    source = dict(os.environ if source is None else source)
    env = {"PATH": source.get("PATH") or DEFAULT_PATH, "HOME": str(home), "TERM": "dumb"}
    env["LANG"] = "C.UTF-8"
    for name in ("USER", "LOGNAME"):
        if name in source:
            env[name] = source[name]
    for name in allow:
        if name in source:
            env[name] = source[name]
    env.update(fixed)
    for name, value in (declared or {}).items():
        refusal = env_name_refusal(name)
        if refusal:
            raise EnvRefused(refusal)
        if not isinstance(value, (str, int, float)) or "\x00" in str(value):
            raise EnvRefused(f"the value of {name} must be a string")
        env[name] = str(value)
    return env


def _alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    alive = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except psutil.Error:
            continue
    return alive


def process_tree(pid: int, pgid: int | None) -> list[psutil.Process]:
    """The process, its descendants and every member of its process group."""
    found: dict[int, psutil.Process] = {}
    with contextlib.suppress(psutil.Error):
        root = psutil.Process(pid)
        found[root.pid] = root
        for child in root.children(recursive=True):
            found[child.pid] = child
    if pgid is not None:
        for proc in psutil.process_iter():
            with contextlib.suppress(psutil.Error, OSError):
                if proc.pid not in found and os.getpgid(proc.pid) == pgid:
                    found[proc.pid] = proc
    return list(found.values())


async def terminate_tree(
    pid: int, pgid: int | None, grace: tuple[float, float], *, known: Sequence[psutil.Process] = ()
) -> None:
    """SIGINT, wait, SIGTERM, wait, SIGKILL the whole tree (group and descendants)."""
    procs = {p.pid: p for p in [*known, *process_tree(pid, pgid)]}
    steps = ((signal.SIGINT, grace[0]), (signal.SIGTERM, grace[1]), (signal.SIGKILL, 5.0))
    for sig, wait in steps:
        for proc in process_tree(pid, pgid):  # pick up children forked meanwhile
            procs.setdefault(proc.pid, proc)
        if not _alive(list(procs.values())):
            return
        if pgid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, sig)
        for proc in _alive(list(procs.values())):
            with contextlib.suppress(psutil.Error):
                proc.send_signal(sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _alive(list(procs.values())):
                return
            await asyncio.sleep(0.05)


async def _exited(proc: asyncio.subprocess.Process) -> int:
    """The exit status, as soon as the shell exits (proc.wait() also waits for the pipes)."""
    while proc.returncode is None:
        await asyncio.sleep(0.05)
    return proc.returncode


async def run_shell(
    *,
    command: str,
    cwd: Path,
    env: dict[str, str],
    timeout: float,
    emit: Callable[[int, bytes], None],
    cancel: asyncio.Event,
    grace: tuple[float, float] = (7.5, 2.5),
    drain_timeout: float = 2.0,
    program: str = "",
    on_start: Callable[[int, float], None] | None = None,
) -> ShellOutcome:
    """Run `command` with `program -c`; emit(stream, data) for every chunk as it arrives."""
    proc = await asyncio.create_subprocess_exec(
        shell_program(program),
        "-c",
        command,
        cwd=str(cwd),
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    pgid = proc.pid  # start_new_session: the shell leads its own group
    tracked: list[psutil.Process] = []
    with contextlib.suppress(psutil.Error):
        me = psutil.Process(proc.pid)
        tracked.append(me)
        if on_start is not None:
            on_start(proc.pid, me.create_time())

    async def pump(stream: asyncio.StreamReader, which: int) -> None:
        while True:
            data = await stream.read(READ_SIZE)
            if not data:
                return
            emit(which, data)

    assert proc.stdout is not None and proc.stderr is not None  # noqa: S101  # PIPE above
    pumps = [
        asyncio.create_task(pump(proc.stdout, STDOUT)),
        asyncio.create_task(pump(proc.stderr, STDERR)),
    ]
    waiter = asyncio.create_task(_exited(proc))
    cancelled = asyncio.create_task(cancel.wait())
    outcome: str | None = None
    try:
        done, _ = await asyncio.wait(
            {waiter, cancelled}, timeout=max(timeout, 0.001), return_when=asyncio.FIRST_COMPLETED
        )
        if waiter not in done:
            outcome = "CANCELLED" if cancelled in done else "TIMED_OUT"
            tracked += process_tree(proc.pid, pgid)
            await terminate_tree(proc.pid, pgid, grace, known=tracked)
            await waiter
        # Background children may still hold the pipes: give them a moment, then end them.
        _, pending = await asyncio.wait(pumps, timeout=drain_timeout)
        if pending:
            await terminate_tree(proc.pid, pgid, (0.5, 0.5), known=tracked)
            await asyncio.wait(pending, timeout=2.0)
    finally:
        cancelled.cancel()
        for task in pumps:
            task.cancel()
        if not waiter.done():  # the agent itself is stopping: leave nothing behind
            await terminate_tree(proc.pid, pgid, grace, known=tracked)
            waiter.cancel()
    code = proc.returncode if proc.returncode is not None else -1
    if outcome == "CANCELLED":
        return ShellOutcome("CANCELLED", code, "cancelled", "The task was cancelled.")
    if outcome == "TIMED_OUT":
        return ShellOutcome("TIMED_OUT", code, "timeout", f"The command ran past {timeout:g} s.")
    if code == 0:
        return ShellOutcome("SUCCEEDED", 0)
    return ShellOutcome("FAILED", code, "nonzero_exit", f"The command exited with status {code}.")
