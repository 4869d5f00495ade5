"""Running tasks on the node: skill switches, the sandbox re-check, spooling and reporting."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import psutil

from .browser_actions import BrowserPolicy
from .compat import TIMEOUTS
from .config import AgentConfig
from .pb import mesh_pb2
from .sandbox import RULES, Policy, check_command
from .skill_names import SKILLS, Skill
from .skills.browser import BrowserError, BrowserSessions, browser_available
from .skills.files import FileLimits, FileSkillError, run_files
from .skills.push import ChunkSink, PushCancelled, receive_push
from .skills.shell import EnvRefused, build_env, run_shell, terminate_tree
from .spool import Spool
from .workspace import Workspace, WorkspaceError

logger = logging.getLogger("cortex_agent.tasks")

DEFAULT_TIMEOUT = 30.0
MAX_TIMEOUT = 24 * 3600.0
#: The hub's confirmation mark in a shell payload (`mesh.services.tasks.CONFIRMED_MARK`).
CONFIRMED_MARK = "confirmed"


@dataclass
class Running:
    task_id: str
    kind: str
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    job: asyncio.Task[None] | None = None
    abandoned: bool = False
    cancel_reason: str = ""
    sink: ChunkSink | None = None  # a files task's pushed chunks (see skills/push.py)


def browser_policy_from_pb(policy: mesh_pb2.SandboxPolicy) -> BrowserPolicy | None:
    """The wire's browser policy; None (refuse all browser work) when it cannot be read."""
    if not policy.browser_policy_json:
        return BrowserPolicy()
    try:
        return BrowserPolicy.from_dict(json.loads(policy.browser_policy_json))
    except ValueError:
        logger.warning("unreadable browser policy from the hub: refusing browser work")
        return None


def policy_from_pb(policy: mesh_pb2.SandboxPolicy) -> Policy:
    """The wire policy as a sandbox Policy; rules this agent does not know deny everything."""
    lists = {
        "allowed_commands": [e for e in policy.allowed_commands if not e.startswith("@")],
        "denied_commands": list(policy.denied_commands),
        "sensitive_commands": [
            e for e in policy.sensitive_commands if not e.startswith("@") or e in RULES
        ],
    }
    unknown = [e for e in lists["denied_commands"] if e.startswith("@") and e not in RULES]
    if unknown:  # a newer hub's deny rule: refuse every command rather than ignore it
        logger.warning("unknown deny rules %s: refusing every command", unknown)
        return Policy(mode="strict")
    mode = "strict" if policy.mode == mesh_pb2.SandboxPolicy.STRICT else "permissive"
    # The hub sends the effective terminal switch; an older hub sends false (refused).
    return Policy.from_dict({"mode": mode, "allow_terminals": policy.allow_terminals, **lists})


def result_message(task_id: str, result: dict[str, Any]) -> mesh_pb2.NodeMessage:
    payload = result.get("result")
    return mesh_pb2.NodeMessage(
        task_result=mesh_pb2.TaskResult(
            task_id=task_id,
            # The stubs type Value() as a plain int; it is one of the enum's numbers.
            outcome=cast("mesh_pb2.TaskOutcome", mesh_pb2.TaskOutcome.Value(result["outcome"])),
            exit_code=int(result.get("exit_code", 0)),
            error_code=result.get("error_code", ""),
            error_message=result.get("error_message", ""),
            last_seq=int(result.get("last_seq", 0)),
            result_json=json.dumps(payload).encode() if payload is not None else b"",
        )
    )


def output_message(task_id: str, seq: int, stream: int, data: bytes) -> mesh_pb2.NodeMessage:
    return mesh_pb2.NodeMessage(
        task_output=mesh_pb2.TaskOutput(
            task_id=task_id, seq=seq, stream=cast("mesh_pb2.OutputStream", stream), data=data
        )
    )


class TaskRunner:
    """Starts, cancels and reports tasks; every message goes out through `send` (may drop)."""

    def __init__(
        self, config: AgentConfig, spool: Spool, send: Callable[[mesh_pb2.NodeMessage], None]
    ) -> None:
        self.config = config
        self.spool = spool
        self.send = send
        self.running: dict[str, Running] = {}
        # Until the hub's Welcome arrives nothing may run: strict with an empty allow-list.
        self.policy = Policy(mode="strict")
        self.hub_skills: dict[str, Any] = {}
        self.workspace = Workspace(config.workspace_root)
        self._browser = browser_available() if config.skills.get("browser") else False
        # Until the hub's Welcome arrives no page may load anything.
        self.browser_policy: BrowserPolicy | None = None
        self.browsers = BrowserSessions(
            policy=lambda: self.browser_policy,
            downloads_root=lambda: self.workspace.root,
            idle_timeout=config.browser_idle_timeout,
        )

    # ------------------------------------------------------------------ configuration
    def capabilities(self) -> dict[str, bool]:
        """What this node can do, narrowed by the local switches (reported in Hello)."""
        found = {name: bool(self.config.skills.get(name)) for name in SKILLS}
        found[Skill.BROWSER.value] = found[Skill.BROWSER.value] and self._browser
        return found

    def apply(self, policy: mesh_pb2.SandboxPolicy, skills: mesh_pb2.SkillConfig) -> None:
        """Adopt the hub's policy and skill switches (Welcome or PolicyUpdate)."""
        self.policy = policy_from_pb(policy)
        self.browser_policy = browser_policy_from_pb(policy)
        self.hub_skills = {name: getattr(skills, name) for name in SKILLS}
        self.hub_skills["max_concurrent_tasks"] = skills.max_concurrent_tasks
        root = Workspace(self.config.workspace_root)
        if policy.workspace_root:
            try:  # the hub may only narrow the jail to a directory inside the local root
                root = Workspace(root.resolve(policy.workspace_root))
            except WorkspaceError:
                logger.warning("ignoring hub workspace root outside the local workspace root")
        self.workspace = root

    def skill_enabled(self, kind: str) -> bool:
        return bool(self.hub_skills.get(kind)) and self.capabilities().get(kind, False)

    # ------------------------------------------------------------------ hub -> agent
    def assign(self, assign: mesh_pb2.TaskAssign) -> None:
        """Start a task once; a repeated assignment re-sends what is known about it."""
        task_id = assign.task_id
        if task_id in self.running:
            return
        record = self.spool.records.get(task_id)
        if record is not None:
            if record.result is not None:
                self.send(result_message(task_id, record.result))
            return
        try:
            self.spool.begin(task_id)
        except ValueError:
            logger.warning("ignoring a task with an invalid id")
            return
        running = Running(task_id, assign.kind)
        if assign.kind == "files":  # chunks may arrive before the task's coroutine runs
            running.sink = ChunkSink()
        self.running[task_id] = running
        running.job = asyncio.create_task(self._run(running, assign), name=f"task-{task_id}")

    async def file_chunk(self, chunk: mesh_pb2.FileChunk) -> None:
        """Pass a pushed chunk to its task; waits while that task's queue is full."""
        running = self.running.get(chunk.task_id)
        if running is not None and running.sink is not None:
            await running.sink.put(chunk)

    def cancel(self, task_id: str, reason: str) -> None:
        running = self.running.get(task_id)
        if running is not None:
            running.cancel_reason = reason or "cancelled"
            running.cancel.set()
            return
        record = self.spool.records.get(task_id)
        if record is not None and record.result is not None:
            self.send(result_message(task_id, record.result))
            return
        # The hub believes the task is active but this agent does not hold it: close it.
        self.spool.begin(task_id)
        self._finish(task_id, "CANCELLED", -1, "unknown_task", "The node does not hold this task.")

    def abandon(self, task_ids: list[str]) -> None:
        """The hub gave up on these tasks: stop them and owe nothing."""
        for task_id in task_ids:
            running = self.running.get(task_id)
            if running is not None:
                running.abandoned = True
                running.cancel.set()
            self.spool.forget(task_id)

    def stream_closed(self) -> None:
        """The hub's stream closed: pushes under way fail as incomplete now (their remaining
        chunks never come; the hub sends the file again in a new task)."""
        for running in list(self.running.values()):
            if running.sink is not None:
                running.sink.stream_gone.set()

    async def stop_all(self, timeout: float = 10.0) -> None:
        """Agent shutdown: cancel what runs and wait for it (results stay in the spool)."""
        for running in list(self.running.values()):
            running.cancel_reason = "agent stopping"
            running.cancel.set()
        jobs = [r.job for r in self.running.values() if r.job is not None]
        if jobs:
            await asyncio.wait(jobs, timeout=timeout)
        await self.browsers.close_all()

    # ------------------------------------------------------------------ running
    def _emit(self, task_id: str, stream: int, data: bytes) -> None:
        running = self.running.get(task_id)
        if running is not None and running.abandoned:
            return
        chunk = self.spool.add_output(task_id, stream, data)
        self.send(output_message(task_id, chunk.seq, stream, data))

    def _finish(
        self,
        task_id: str,
        outcome: str,
        exit_code: int,
        error_code: str = "",
        error_message: str = "",
        result: Any = None,
    ) -> None:
        running = self.running.pop(task_id, None)
        if running is not None and running.sink is not None:
            running.sink.close()
        if running is not None and running.abandoned:
            self.spool.forget(task_id)
            return
        data = {
            "outcome": outcome,
            "exit_code": exit_code,
            "error_code": error_code,
            "error_message": error_message,
            "result": result,
        }
        self.spool.set_result(task_id, data)
        self.send(result_message(task_id, self.spool.records[task_id].result or data))

    def _reject(self, task_id: str, code: str, message: str) -> None:
        logger.info("task %s rejected: %s", task_id, code)
        self._finish(task_id, "REJECTED", -1, code, message)

    async def _run(self, running: Running, assign: mesh_pb2.TaskAssign) -> None:
        task_id, kind = running.task_id, assign.kind
        try:
            payload = json.loads(assign.payload_json or b"{}")
            if not isinstance(payload, dict):
                raise ValueError("payload must be an object")
        except ValueError:
            self._reject(task_id, "invalid_payload", "The task payload is not a JSON object.")
            return
        if kind not in SKILLS:
            self._reject(task_id, "unknown_kind", f"This node has no {kind!r} skill.")
            return
        if not self.skill_enabled(kind):
            self._reject(task_id, "skill_disabled", f"The {kind} skill is disabled on this node.")
            return
        timeout = assign.timeout_s if assign.timeout_s > 0 else DEFAULT_TIMEOUT
        timeout = min(timeout, MAX_TIMEOUT)
        try:
            if kind == "shell":
                await self._shell(running, payload, timeout)
            elif kind == "files":
                self.send(mesh_pb2.NodeMessage(task_started=mesh_pb2.TaskStarted(task_id=task_id)))
                try:
                    if "blob" in payload and running.sink is not None:
                        result = await receive_push(
                            self.workspace,
                            payload,
                            running.sink,
                            timeout=timeout,
                            cancel=running.cancel,
                        )
                    else:
                        result = await asyncio.wait_for(
                            asyncio.to_thread(
                                run_files,
                                self.workspace,
                                payload,
                                FileLimits(self.config.max_read_bytes, self.config.max_write_bytes),
                            ),
                            timeout,
                        )
                except FileSkillError as exc:
                    outcome = "REJECTED" if exc.rejected else "FAILED"
                    self._finish(task_id, outcome, -1, exc.code, exc.message)
                    return
                except PushCancelled:
                    reason = running.cancel_reason or "cancelled"
                    self._finish(
                        task_id, "CANCELLED", -1, "cancelled", f"The task was cancelled ({reason})."
                    )
                    return
                self._finish(task_id, "SUCCEEDED", 0, result=result)
            else:
                self.send(mesh_pb2.NodeMessage(task_started=mesh_pb2.TaskStarted(task_id=task_id)))
                try:
                    result = await asyncio.wait_for(self.browsers.run(payload, timeout), timeout)
                except BrowserError as exc:
                    outcome = "REJECTED" if exc.rejected else "FAILED"
                    self._finish(task_id, outcome, -1, exc.code, exc.message)
                    return
                self._finish(task_id, "SUCCEEDED", 0, result=result)
        except TIMEOUTS:
            self._finish(task_id, "TIMED_OUT", -1, "timeout", f"The task ran past {timeout:g} s.")
        except asyncio.CancelledError:
            self._finish(task_id, "CANCELLED", -1, "agent_stopping", "The agent stopped.")
            raise
        except Exception as exc:  # a skill bug must end the task, not the agent
            logger.exception("task %s failed inside the agent", task_id)
            self._finish(task_id, "FAILED", -1, "agent_error", f"{type(exc).__name__}: {exc}")

    async def _shell(self, running: Running, payload: dict[str, Any], timeout: float) -> None:
        task_id = running.task_id
        command = payload.get("command")
        if not isinstance(command, str) or not command.strip():
            self._reject(task_id, "invalid_payload", "The shell task has no command.")
            return
        cwd_error: WorkspaceError | None
        try:
            cwd = self.workspace.resolve(payload.get("cwd") or "")
        except WorkspaceError as exc:
            cwd, cwd_error = None, exc
        else:
            cwd_error = None
        # Strict mode resolves redirection targets against the directory the shell starts in.
        verdict = check_command(self.policy, command, self.workspace.root, cwd=cwd)
        if not verdict.allowed:
            self._reject(task_id, "command_not_allowed", verdict.reason)
            return
        if verdict.sensitive and payload.get(CONFIRMED_MARK) is not True:
            # Only the hub marks a task confirmed (a person said yes, or a chat approval): a
            # sensitive command that arrives without the mark does not run here.
            name = verdict.offending or "the command"
            self._reject(
                task_id,
                "confirmation_required",
                f"'{name}' is sensitive on this node and the task carries no confirmation.",
            )
            return
        if cwd is None:
            assert cwd_error is not None  # noqa: S101  # set together
            self._reject(task_id, cwd_error.code, str(cwd_error))
            return
        if not cwd.is_dir():
            self._reject(task_id, "invalid_cwd", "The working directory does not exist.")
            return
        try:
            env = build_env(
                allow=self.config.env_allow,
                fixed=self.config.env_set,
                declared=payload.get("env") if isinstance(payload.get("env"), dict) else None,
                home=self.workspace.root,
            )
        except EnvRefused as exc:
            self._reject(task_id, "env_not_allowed", str(exc))
            return
        self.send(mesh_pb2.NodeMessage(task_started=mesh_pb2.TaskStarted(task_id=task_id)))
        outcome = await run_shell(
            command=command,
            cwd=cwd,
            env=env,
            timeout=timeout,
            emit=lambda stream, data: self._emit(task_id, stream, data),
            cancel=running.cancel,
            grace=self.config.cancel_grace,
            drain_timeout=self.config.drain_timeout,
            program=self.config.shell_program,
            on_start=lambda pid, created: self.spool.process_started(task_id, pid, created),
        )
        message = outcome.error_message
        if outcome.outcome == "CANCELLED" and running.cancel_reason:
            message = f"The task was cancelled ({running.cancel_reason})."
        self._finish(task_id, outcome.outcome, outcome.exit_code, outcome.error_code, message)


async def recover(spool: Spool, grace: tuple[float, float]) -> list[str]:
    """After a restart: end processes a previous run left behind; their tasks end FAILED."""
    ended: list[str] = []
    for record in spool.load():
        if record.result is not None:
            continue
        proc = record.process or {}
        pid = proc.get("pid")
        if isinstance(pid, int):
            with contextlib.suppress(psutil.Error, OSError):
                found = psutil.Process(pid)
                if abs(found.create_time() - float(proc.get("create_time", 0))) < 0.01:
                    await terminate_tree(pid, os.getpgid(pid), grace)
        spool.set_result(
            record.task_id,
            {
                "outcome": "FAILED",
                "exit_code": -1,
                "error_code": "agent_restarted",
                "error_message": "The agent restarted while the task was running.",
                "result": None,
            },
        )
        ended.append(record.task_id)
    return ended
