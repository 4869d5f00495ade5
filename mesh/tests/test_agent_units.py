"""Agent pieces in-process: config, credentials, backoff, spool, shell runner, files skill."""

from __future__ import annotations

import asyncio
import base64
import os
import random
import stat
import time
from pathlib import Path

import psutil
import pytest

from cortex.testing import wait_until_async
from mesh.agent.backoff import Backoff
from mesh.agent.config import ConfigError, load_config, parse_config
from mesh.agent.credentials import CredentialStore, fingerprint
from mesh.agent.skills.files import FileLimits, FileSkillError, run_files
from mesh.agent.skills.shell import STDERR, STDOUT, EnvRefused, build_env, run_shell
from mesh.agent.spool import Spool
from mesh.agent.workspace import Workspace

# ------------------------------------------------------------------------------------ config
MINIMAL = {"hub": {"address": "127.0.0.1:50051"}, "node_id": "node-a", "invite_token": "inv"}


def test_config_defaults_and_relative_paths(tmp_path: Path) -> None:
    path = tmp_path / "agent_config.yaml"
    path.write_text(
        "hub:\n  address: hub.example:443\n  tls:\n    enabled: true\n    ca_file: ca.pem\n"
        "node_id: gpu-1\ninvite_token: ' cni_x '\nworkspace_root: ws\n"
        "skills: {browser: false}\nenv: {allow: [LANG], set: {A: 1}}\n"
        "shell: {cancel_grace_s: [0.5, 0.25]}\nreconnect: {initial_s: 0.1, max_s: 2}\n"
    )
    config = load_config(path)
    assert config.hub_address == "hub.example:443"
    assert config.tls is True
    assert config.tls_ca_file == tmp_path / "ca.pem"
    assert config.node_id == "gpu-1"
    assert config.invite_token == "cni_x"
    assert config.workspace_root == tmp_path / "ws"
    assert config.state_dir == tmp_path / ".cortex-agent"
    assert config.credential_file == tmp_path / ".cortex-agent" / "credential"
    assert config.spool_dir == tmp_path / ".cortex-agent" / "spool"
    assert config.skills == {"shell": True, "files": True, "browser": False}
    assert config.env_allow == ("LANG",)
    assert config.env_set == {"A": "1"}
    assert config.cancel_grace == (0.5, 0.25)
    assert (config.reconnect_initial, config.reconnect_factor, config.reconnect_max) == (
        0.1,
        1.6,
        2.0,
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"hub": {}}, "hub.address must be host:port"),
        ({"node_id": "Bad Id"}, "node_id must be a slug (lowercase letters, digits, - and _)"),
        (
            {"skills": {"gpu": True}},
            "skills.gpu must be true or false (skills: shell, files, browser)",
        ),
        (
            {"skills": {"shell": "yes"}},
            "skills.shell must be true or false (skills: shell, files, browser)",
        ),
        ({"env": {"allow": ["A B"]}}, "env.allow must be a list of variable names"),
        (
            {"shell": {"cancel_grace_s": [1]}},
            "shell.cancel_grace_s must be [seconds after SIGINT, after SIGTERM]",
        ),
        (
            {"reconnect": {"initial_s": 5, "max_s": 1}},
            "reconnect.max_s must be at least reconnect.initial_s",
        ),
        ({"log_level": "LOUD"}, "log_level must be DEBUG, INFO, WARNING or ERROR"),
    ],
)
def test_config_errors_name_the_key(tmp_path: Path, change: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({**MINIMAL, **change}, config_path=tmp_path / "c.yaml")
    assert str(info.value) == message


def test_config_file_missing_or_invalid(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("hub: [")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path / "bad.yaml")


# ------------------------------------------------------------------------------- credentials
def test_credential_saved_0600_and_replaced_atomically(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path / "state" / "credential")
    assert store.load() is None
    store.save("cnc_first")
    assert store.load() == "cnc_first"
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.path.parent.stat().st_mode) == 0o700
    store.save("cnc_second")
    assert store.load() == "cnc_second"
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert sorted(p.name for p in store.path.parent.iterdir()) == ["credential"]


def test_fingerprint_is_the_first_12_hex_of_sha256() -> None:
    assert fingerprint("abc") == "ba7816bf8f01"


# ----------------------------------------------------------------------------------- backoff
def test_backoff_full_jitter_grows_and_is_capped() -> None:
    backoff = Backoff(initial=1.0, factor=2.0, cap=10.0, rng=random.Random(7))
    ceilings = []
    for _ in range(8):
        ceilings.append(backoff.ceiling())
        delay = backoff.next()
        assert 0 <= delay <= ceilings[-1]
    assert ceilings == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0, 10.0]
    backoff.reset()
    assert backoff.ceiling() == 1.0


def test_backoff_spreads_a_crowd() -> None:
    delays = [Backoff(initial=1, factor=1.6, cap=120, rng=random.Random(i)) for i in range(200)]
    for b in delays:
        for _ in range(5):
            b.next()
    spread = sorted(b.next() for b in delays)
    assert spread[0] < 1.0
    assert spread[-1] > 8.0  # ceiling after 5 attempts is 1.6**5 ~ 10.5


def test_backoff_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        Backoff(initial=0)
    with pytest.raises(ValueError):
        Backoff(initial=2, cap=1)


# ------------------------------------------------------------------------------------- spool
def test_spool_numbers_acks_and_survives_a_restart(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    spool.begin("t1")
    assert [spool.add_output("t1", STDOUT, f"{i}".encode()).seq for i in range(1, 5)] == [
        1,
        2,
        3,
        4,
    ]
    spool.ack_output("t1", 2)
    spool.ack_output("t1", 1)  # stale ack: ignored
    assert [c.seq for c in spool.pending("t1")] == [3, 4]
    spool.process_started("t1", 123, 1.5)
    again = Spool(tmp_path / "spool")
    (record,) = again.load()
    assert record.task_id == "t1"
    assert record.last_seq == 4
    assert record.acked_seq == 2
    assert [(c.seq, c.stream, c.data) for c in record.chunks] == [(3, 1, b"3"), (4, 1, b"4")]
    assert record.process == {"pid": 123, "create_time": 1.5}
    assert record.finished is False
    again.set_result("t1", {"outcome": "SUCCEEDED", "exit_code": 0})
    third = Spool(tmp_path / "spool")
    (record,) = third.load()
    assert record.result == {"outcome": "SUCCEEDED", "exit_code": 0, "last_seq": 4}
    assert record.process is None
    third.forget("t1")
    assert list((tmp_path / "spool").iterdir()) == []
    assert Spool(tmp_path / "spool").load() == []
    assert stat.S_IMODE((tmp_path / "spool").stat().st_mode) == 0o700


def test_spool_compacts_a_large_file_keeping_what_is_owed(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    spool.begin("t1")
    for _ in range(40):
        spool.add_output("t1", STDOUT, b"x" * 40_000)
    spool.ack_output("t1", 39)
    path = tmp_path / "spool" / "t1.jsonl"
    assert path.stat().st_size < 100_000
    (record,) = Spool(tmp_path / "spool").load()
    assert (record.acked_seq, record.last_seq) == (39, 40)
    assert [(c.seq, len(c.data)) for c in record.chunks] == [(40, 40_000)]


def test_spool_refuses_odd_task_ids(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        Spool(tmp_path).begin("../../etc/passwd")


# -------------------------------------------------------------------------------- shell runner
def _env(tmp_path: Path) -> dict[str, str]:
    return build_env(allow=(), fixed={}, declared=None, home=tmp_path)


async def _run(tmp_path: Path, command: str, **kw):  # type: ignore[no-untyped-def]
    chunks: list[tuple[int, bytes, float]] = []
    cancel = kw.pop("cancel", asyncio.Event())
    outcome = await run_shell(
        command=command,
        cwd=tmp_path,
        env=kw.pop("env", _env(tmp_path)),
        timeout=kw.pop("timeout", 10.0),
        emit=lambda s, d: chunks.append((s, d, time.monotonic())),
        cancel=cancel,
        grace=kw.pop("grace", (0.5, 0.5)),
        drain_timeout=kw.pop("drain_timeout", 0.5),
        **kw,
    )
    return outcome, chunks


def _text(chunks: list, stream: int) -> str:
    return b"".join(d for s, d, _ in chunks if s == stream).decode()


async def test_shell_streams_stdout_and_stderr_with_exit_code(tmp_path: Path) -> None:
    outcome, chunks = await _run(tmp_path, "echo out; echo err >&2; pwd; exit 3")
    assert outcome.outcome == "FAILED"
    assert outcome.exit_code == 3
    assert outcome.error_code == "nonzero_exit"
    assert _text(chunks, STDOUT) == f"out\n{tmp_path}\n"
    assert _text(chunks, STDERR) == "err\n"


async def test_shell_output_arrives_while_the_command_runs(tmp_path: Path) -> None:
    start = time.monotonic()
    outcome, chunks = await _run(tmp_path, "echo first; sleep 1; echo second")
    assert outcome.outcome == "SUCCEEDED"
    first = next(t for s, d, t in chunks if b"first" in d)
    assert first - start < 0.8  # not held back until the end
    assert _text(chunks, STDOUT) == "first\nsecond\n"


async def test_shell_environment_is_clean_plus_declared(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AGENT_SECRET", "leak")
    env = build_env(
        allow=("LANG",), fixed={"FIXED": "1"}, declared={"TASK_VAR": "x y"}, home=tmp_path
    )
    outcome, chunks = await _run(
        tmp_path, 'echo "[$AGENT_SECRET][$FIXED][$TASK_VAR][$HOME]"', env=env
    )
    assert outcome.outcome == "SUCCEEDED"
    assert _text(chunks, STDOUT) == f"[][1][x y][{tmp_path}]\n"


@pytest.mark.parametrize(
    ("declared", "message"),
    [
        ({"PATH": "/tmp"}, "the variable PATH may not be set by a task"),
        ({"BASH_ENV": "/tmp/x"}, "the variable BASH_ENV may not be set by a task"),
        ({"LD_PRELOAD": "x.so"}, "the variable LD_PRELOAD may not be set by a task"),
        ({"BASH_FUNC_ls%%": "x"}, "'BASH_FUNC_ls%%' is not a valid variable name"),
        ({"A B": "x"}, "'A B' is not a valid variable name"),
    ],
)
def test_dangerous_declared_variables_are_refused(
    tmp_path: Path, declared: dict, message: str
) -> None:
    with pytest.raises(EnvRefused) as info:
        build_env(allow=(), fixed={}, declared=declared, home=tmp_path)
    assert str(info.value) == message


def _tree_pids(marker: str) -> list[int]:
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if marker in cmd and proc.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(proc.pid)
    return found


async def test_cancel_ends_the_whole_process_tree(tmp_path: Path) -> None:
    marker = f"sleep 6{os.getpid() % 100:02d}"
    cancel = asyncio.Event()
    command = f"{marker} & ( {marker} ) & setsid {marker} & {marker}; wait"
    job = asyncio.create_task(_run(tmp_path, command, cancel=cancel))
    await wait_until_async(lambda: len(_tree_pids(marker)) >= 4, timeout=10, interval=0.05)
    cancel.set()
    outcome, _ = await asyncio.wait_for(job, timeout=15)
    assert outcome.outcome == "CANCELLED"
    assert outcome.error_code == "cancelled"
    await wait_until_async(lambda: _tree_pids(marker) == [], timeout=5, interval=0.05)


async def test_cancel_escalates_past_a_process_ignoring_int_and_term(tmp_path: Path) -> None:
    cancel = asyncio.Event()
    script = "trap '' INT TERM; echo ready; while :; do sleep 0.1; done"
    job = asyncio.create_task(_run(tmp_path, script, cancel=cancel, grace=(0.3, 0.3)))
    await asyncio.sleep(0.5)
    started = time.monotonic()
    cancel.set()
    outcome, chunks = await asyncio.wait_for(job, timeout=15)
    assert outcome.outcome == "CANCELLED"
    assert outcome.exit_code == -9  # only SIGKILL ended it
    assert 0.5 < time.monotonic() - started < 5
    assert _text(chunks, STDOUT) == "ready\n"


async def test_deadline_times_the_task_out(tmp_path: Path) -> None:
    outcome, _ = await _run(tmp_path, "sleep 30", timeout=0.5)
    assert outcome.outcome == "TIMED_OUT"
    assert outcome.error_code == "timeout"
    assert outcome.error_message == "The command ran past 0.5 s."


async def test_background_child_holding_the_pipe_does_not_hang_the_task(tmp_path: Path) -> None:
    started = time.monotonic()
    outcome, chunks = await _run(tmp_path, "echo done; sleep 300 &", drain_timeout=0.3)
    assert outcome.outcome == "SUCCEEDED"
    assert _text(chunks, STDOUT) == "done\n"
    assert time.monotonic() - started < 8


# ---------------------------------------------------------------------------------- files skill
@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    root = tmp_path / "root"
    (root / "dir").mkdir(parents=True)
    (root / "dir" / "a.txt").write_text("alpha")
    (tmp_path / "root-sibling").mkdir()
    (tmp_path / "root-sibling" / "s.txt").write_text("secret")
    (tmp_path / "outside.txt").write_text("outside")
    os.symlink(tmp_path / "outside.txt", root / "escape")
    return Workspace(root)


LIMITS = FileLimits(max_read_bytes=100, max_write_bytes=50)


def test_files_list_stat_read(ws: Workspace) -> None:
    listing = run_files(ws, {"action": "list"}, LIMITS)
    assert listing["path"] == "."
    assert [(e["name"], e["type"]) for e in listing["entries"]] == [
        ("dir", "directory"),
        ("escape", "symlink"),
    ]
    info = run_files(ws, {"action": "stat", "path": "dir/a.txt"}, LIMITS)
    assert (info["path"], info["type"], info["size"]) == ("dir/a.txt", "file", 5)
    read = run_files(ws, {"action": "read", "path": "dir/a.txt"}, LIMITS)
    assert read == {"path": "dir/a.txt", "size": 5, "encoding": "utf-8", "content": "alpha"}
    read64 = run_files(ws, {"action": "read", "path": "dir/a.txt", "encoding": "base64"}, LIMITS)
    assert read64["content"] == base64.b64encode(b"alpha").decode()


def test_files_write_delete_move_copy(ws: Workspace) -> None:
    assert run_files(ws, {"action": "write", "path": "new/b.txt", "content": "beta"}, LIMITS) == {
        "path": "new/b.txt",
        "size": 4,
    }
    assert (ws.root / "new" / "b.txt").read_text() == "beta"
    run_files(ws, {"action": "copy", "path": "new/b.txt", "to_path": "c.txt"}, LIMITS)
    run_files(ws, {"action": "move", "path": "c.txt", "to_path": "dir/c.txt"}, LIMITS)
    assert (ws.root / "dir" / "c.txt").read_text() == "beta"
    assert not (ws.root / "c.txt").exists()
    with pytest.raises(FileSkillError) as info:
        run_files(ws, {"action": "copy", "path": "new/b.txt", "to_path": "dir/c.txt"}, LIMITS)
    assert info.value.code == "exists"
    with pytest.raises(FileSkillError) as info:
        run_files(ws, {"action": "delete", "path": "dir"}, LIMITS)
    assert info.value.code == "os_error"
    run_files(ws, {"action": "delete", "path": "dir", "recursive": True}, LIMITS)
    assert not (ws.root / "dir").exists()
    with pytest.raises(FileSkillError) as info:
        run_files(ws, {"action": "delete", "path": "."}, LIMITS)
    assert info.value.code == "refused"
    assert ws.root.is_dir()


def test_files_size_limits(ws: Workspace) -> None:
    (ws.root / "big").write_bytes(b"x" * 101)
    with pytest.raises(FileSkillError) as info:
        run_files(ws, {"action": "read", "path": "big"}, LIMITS)
    assert (info.value.code, info.value.message) == (
        "too_large",
        "big is 101 bytes; the limit is 100.",
    )
    with pytest.raises(FileSkillError) as info:
        run_files(ws, {"action": "write", "path": "w", "content": "y" * 51}, LIMITS)
    assert info.value.code == "too_large"
    assert not (ws.root / "w").exists()


@pytest.mark.parametrize(
    "payload",
    [
        {"action": "read", "path": "../../etc/passwd"},
        {"action": "read", "path": "/etc/passwd"},
        {"action": "read", "path": "../root-sibling/s.txt"},
        {"action": "read", "path": "escape"},
        {"action": "list", "path": ".."},
        {"action": "write", "path": "escape", "content": "pwned"},
        {"action": "write", "path": "../root-sibling/x", "content": "pwned"},
        {"action": "copy", "path": "dir/a.txt", "to_path": "../outside-copy"},
        {"action": "move", "path": "../outside.txt", "to_path": "stolen.txt"},
        {"action": "delete", "path": "../outside.txt"},
    ],
)
def test_files_outside_the_root_are_refused_and_nothing_touched(
    ws: Workspace, tmp_path: Path, payload: dict
) -> None:
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    with pytest.raises(FileSkillError) as info:
        run_files(ws, payload, LIMITS)
    assert info.value.rejected is True
    assert info.value.code == "path_outside_workspace"
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before
    assert (tmp_path / "outside.txt").read_text() == "outside"


def test_files_unknown_action(ws: Workspace) -> None:
    with pytest.raises(FileSkillError) as info:
        run_files(ws, {"action": "chmod", "path": "x"}, LIMITS)
    assert info.value.code == "invalid_action"
