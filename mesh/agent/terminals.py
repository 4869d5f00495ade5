"""Interactive terminals on the node: one PTY per session, with flow control towards the hub.

Each session runs the node's shell on a new pseudo-terminal, as a session leader whose controlling
terminal is that PTY, in the workspace. So the tty itself turns a written Ctrl-C (`\\x03`) into
SIGINT for the foreground process group, and a resize (TIOCSWINSZ) into SIGWINCH.

Output is read in chunks numbered from 1 per session. Every chunk stays in memory until the hub
acknowledges it (TerminalAck, after it stored it): when more than `window_bytes` are unacked the
reader stops reading the PTY, so the program writing to it blocks in the kernel and the agent's
memory stays flat however fast it writes (`yes`). After a reconnect the unacked chunks are sent
again (the hub stores each seq once); an ended session keeps its exit until the hub confirms it.

Pure standard library (no Django): runs on the node's Python 3.9+.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import os
import signal
import struct
import sys
import termios
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .pb import mesh_pb2

logger = logging.getLogger("cortex_agent.terminals")

#: What a session id from the hub may look like (the hub's UUIDs).
MAX_SESSION_ID = 64
#: Bounds of a window size: a hub asking for more gets the bound.
MAX_COLS = 1000
MAX_ROWS = 500
#: Keystrokes waiting for a program that does not read stdin: beyond this they are dropped.
MAX_INPUT_BUFFER = 1024 * 1024
#: Input keys remembered per session (well above what the hub stores and may resend).
MAX_INPUT_KEYS = 4096
#: Seconds between SIGHUP and SIGKILL when a session is closed.
CLOSE_GRACE = 3.0


@dataclass
class TerminalLimits:
    """The node's local limits for terminals (agent_config.yaml `terminal:`)."""

    enabled: bool = True
    max_sessions: int = 8
    idle_timeout: float = 1800.0
    window_bytes: int = 1024 * 1024
    read_size: int = 64 * 1024


def utf8_split(data: bytes) -> tuple[bytes, bytes]:
    """Split off an incomplete UTF-8 sequence at the end, so chunks decode on their own."""
    end = len(data)
    for back in range(1, min(4, end) + 1):
        byte = data[end - back]
        if byte & 0xC0 != 0x80:  # a lead byte or ASCII
            need = 2 if byte & 0xE0 == 0xC0 else 3 if byte & 0xF0 == 0xE0 else 4
            if byte & 0x80 and byte & 0xF8 != 0xF8 and need > back:
                return data[: end - back], data[end - back :]
            return data, b""
    return data, b""


def exit_status(returncode: int | None) -> int:
    """A shell-style exit code: 128 + N for a death by signal N."""
    if returncode is None:
        return -1
    return 128 - returncode if returncode < 0 else returncode


def set_winsize(fd: int, rows: int, cols: int) -> None:
    """Tell the tty its size (the kernel signals SIGWINCH to its foreground group)."""
    rows = max(1, min(int(rows or 24), MAX_ROWS))
    cols = max(1, min(int(cols or 80), MAX_COLS))
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


#: Run in the child instead of a `preexec_fn`: Python code between fork and exec in a process
#: with gRPC's threads can crash the child (it did: SIGSEGV), so the child execs this first. It
#: makes the PTY (stdin) the controlling terminal of the new session, gives the shell default
#: signal handling (an ignored SIGINT or SIGHUP survives exec: an agent started under `nohup`,
#: or by a process that ignores Ctrl-C, would give shells where Ctrl-C and hang-up do nothing),
#: then becomes the shell.
TAKE_TERMINAL = (
    "import fcntl, os, signal, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0);"
    " [signal.signal(s, signal.SIG_DFL) for s in (signal.SIGINT, signal.SIGHUP, signal.SIGQUIT,"
    " signal.SIGTERM, signal.SIGPIPE, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU)];"
    " signal.pthread_sigmask(signal.SIG_SETMASK, []);"
    " os.execvp(sys.argv[1], sys.argv[1:])"
)


@dataclass
class Terminal:
    """One live or ended session."""

    session_id: str
    master: int = -1
    proc: asyncio.subprocess.Process | None = None
    started: float = field(default_factory=time.monotonic)
    last_input: float = field(default_factory=time.monotonic)
    seq: int = 0
    unacked: deque[mesh_pb2.NodeMessage] = field(default_factory=deque)
    unacked_bytes: int = 0
    reading: bool = False
    eof: bool = False
    partial: bytes = b""
    pending_input: bytearray = field(default_factory=bytearray)
    #: Keys of the inputs (and resizes) applied lately: the hub resends after a reconnect, and
    #: two of its processes may race; each key is applied once.
    keys: OrderedDict[str, None] = field(default_factory=OrderedDict)
    writing: bool = False
    exit_message: mesh_pb2.NodeMessage | None = None
    waiter: asyncio.Task[None] | None = None
    killer: asyncio.TimerHandle | None = None


class TerminalManager:
    """Opens, feeds and ends the node's terminal sessions; every message goes out via `send`."""

    def __init__(
        self, limits: TerminalLimits, send: Callable[[mesh_pb2.NodeMessage], None]
    ) -> None:
        self.limits = limits
        self.send = send
        self.sessions: dict[str, Terminal] = {}
        self._sweeper: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ hub -> agent
    async def open(
        self,
        message: mesh_pb2.TerminalOpen,
        *,
        refusal: tuple[str, str] | None,
        program: str,
        cwd: Path,
        env: dict[str, str],
    ) -> None:
        """Start a session (once per id); a refusal is answered with TerminalExit at once."""
        session_id = message.session_id
        if not session_id or len(session_id) > MAX_SESSION_ID:
            logger.warning("ignoring a terminal with an invalid id")
            return
        known = self.sessions.get(session_id)
        if known is not None:  # a repeated open (after a reconnect): say what is known
            if known.exit_message is None:
                self.send(self._opened(known))
            else:
                self.send(known.exit_message)
            return
        if refusal is None and not self.limits.enabled:
            refusal = ("terminals_disabled", "Terminals are disabled in this node's configuration.")
        live = sum(1 for t in self.sessions.values() if t.exit_message is None)
        if refusal is None and live >= self.limits.max_sessions:
            refusal = ("too_many_terminals", "This node has its maximum of open terminals.")
        if refusal is not None:
            self._refuse(session_id, *refusal)
            return
        terminal = Terminal(session_id)
        self.sessions[session_id] = terminal
        try:
            await self._spawn(terminal, message, program=program, cwd=cwd, env=env)
        except OSError as exc:
            logger.warning("terminal %s could not start: %s", session_id, exc)
            self._close_fd(terminal)
            del self.sessions[session_id]
            self._refuse(session_id, "terminal_start_failed", "The shell could not be started.")
            return
        self.send(self._opened(terminal))
        self._start_reading(terminal)
        terminal.waiter = asyncio.ensure_future(self._wait(terminal))
        if self._sweeper is None:
            self._sweeper = asyncio.ensure_future(self._sweep())

    def input(self, session_id: str, data: bytes, key: str = "") -> None:
        """Type into a session (Ctrl-C is the byte 0x03: the tty makes it SIGINT); an input
        whose key was applied already is a resend and is ignored."""
        terminal = self.sessions.get(session_id)
        if terminal is None or terminal.exit_message is not None or terminal.master < 0:
            return
        if not _first_time(terminal, key):
            return
        terminal.last_input = time.monotonic()
        if len(terminal.pending_input) + len(data) > MAX_INPUT_BUFFER:
            logger.warning("terminal %s: input not read by the program; dropped", session_id)
            return
        terminal.pending_input += data
        self._write(terminal)

    def resize(self, session_id: str, rows: int, cols: int, key: str = "") -> None:
        terminal = self.sessions.get(session_id)
        if terminal is None or terminal.master < 0 or not _first_time(terminal, key):
            return
        with contextlib.suppress(OSError):
            set_winsize(terminal.master, rows, cols)

    def ack(self, session_id: str, seq: int, final: bool = False) -> None:
        """The hub stored every chunk up to `seq`; `final`: it has the exit too, forget it."""
        terminal = self.sessions.get(session_id)
        if terminal is None:
            return
        while terminal.unacked and terminal.unacked[0].terminal_output.seq <= seq:
            terminal.unacked_bytes -= len(terminal.unacked.popleft().terminal_output.data)
        if final and terminal.exit_message is not None:
            del self.sessions[session_id]
            return
        idle = not terminal.reading and not terminal.eof and terminal.exit_message is None
        if idle and terminal.unacked_bytes < self.limits.window_bytes:
            self._start_reading(terminal)

    def close(self, session_id: str) -> None:
        """End a session: SIGHUP to its process group, SIGKILL after a grace period."""
        terminal = self.sessions.get(session_id)
        if terminal is None:
            return
        if terminal.exit_message is not None:
            self.send(terminal.exit_message)
            return
        self._hangup(terminal)

    def close_all(self) -> int:
        """Hang up every live session (the policy no longer allows terminals)."""
        live = [t for t in self.sessions.values() if t.exit_message is None]
        for terminal in live:
            self._hangup(terminal)
        return len(live)

    # ------------------------------------------------------------------ reconnects
    def held(self) -> list[str]:
        """Sessions the hub must hear about (Hello): live ones and unconfirmed exits."""
        return list(self.sessions)

    def resend(self) -> list[mesh_pb2.NodeMessage]:
        """What a new stream must carry first: every session's state and unacked output."""
        out: list[mesh_pb2.NodeMessage] = []
        for terminal in self.sessions.values():
            if terminal.exit_message is None:
                out.append(self._opened(terminal))
            out.extend(terminal.unacked)
            if terminal.exit_message is not None:
                out.append(terminal.exit_message)
        return out

    async def stop_all(self, timeout: float = 5.0) -> None:
        """Agent shutdown: hang up every session and wait for the shells to end."""
        waiters = []
        for terminal in list(self.sessions.values()):
            if terminal.exit_message is None:
                self._hangup(terminal)
                if terminal.waiter is not None:
                    waiters.append(terminal.waiter)
        if waiters:
            await asyncio.wait(waiters, timeout=timeout)
        for terminal in list(self.sessions.values()):
            if terminal.proc is not None and terminal.proc.returncode is None:
                with contextlib.suppress(OSError):
                    os.killpg(terminal.proc.pid, signal.SIGKILL)
            self._close_fd(terminal)
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None

    # ------------------------------------------------------------------ internals
    def _opened(self, terminal: Terminal) -> mesh_pb2.NodeMessage:
        pid = terminal.proc.pid if terminal.proc is not None else 0
        return mesh_pb2.NodeMessage(
            terminal_opened=mesh_pb2.TerminalOpened(session_id=terminal.session_id, pid=pid)
        )

    def _refuse(self, session_id: str, code: str, text: str) -> None:
        logger.info("terminal %s refused: %s", session_id, code)
        self.send(
            mesh_pb2.NodeMessage(
                terminal_exit=mesh_pb2.TerminalExit(
                    session_id=session_id, exit_code=-1, error_code=code, error_message=text
                )
            )
        )

    async def _spawn(
        self,
        terminal: Terminal,
        message: mesh_pb2.TerminalOpen,
        *,
        program: str,
        cwd: Path,
        env: dict[str, str],
    ) -> None:
        master, slave = os.openpty()
        terminal.master = master
        try:
            set_winsize(slave, message.rows, message.cols)
            os.set_blocking(master, False)
            terminal.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-I",
                "-S",
                "-c",
                TAKE_TERMINAL,
                program,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                cwd=str(cwd),
                env={**env, "TERM": "xterm-256color"},
                start_new_session=True,
            )
        finally:
            os.close(slave)

    def _start_reading(self, terminal: Terminal) -> None:
        if terminal.reading or terminal.master < 0:
            return
        asyncio.get_running_loop().add_reader(terminal.master, self._readable, terminal)
        terminal.reading = True

    def _stop_reading(self, terminal: Terminal) -> None:
        if terminal.reading:
            asyncio.get_running_loop().remove_reader(terminal.master)
            terminal.reading = False

    def _readable(self, terminal: Terminal) -> None:
        # A PTY read gives at most a few KB: gather what is there into one chunk (one message,
        # one stored row) of at most read_size, so one chunk never overshoots the window by more.
        data = b""
        while len(data) < self.limits.read_size and not terminal.eof:
            more = self._read(terminal, self.limits.read_size - len(data))
            if not more:
                break
            data += more
        if data:
            self._emit(terminal, data)
        if terminal.eof:
            self._stop_reading(terminal)
        elif terminal.unacked_bytes >= self.limits.window_bytes:
            self._stop_reading(terminal)  # the hub is behind: the program blocks on its tty

    def _read(self, terminal: Terminal, size: int = 0) -> bytes:
        try:
            data = os.read(terminal.master, size or self.limits.read_size)
        except BlockingIOError:
            return b""
        except OSError as exc:  # EIO: every slave end is closed
            if exc.errno not in (errno.EIO, errno.EBADF):
                logger.warning("terminal %s read failed: %s", terminal.session_id, exc)
            terminal.eof = True
            return b""
        if not data:
            terminal.eof = True
        return data

    def _emit(self, terminal: Terminal, data: bytes, *, final: bool = False) -> None:
        complete, terminal.partial = utf8_split(terminal.partial + data)
        if final:
            complete, terminal.partial = complete + terminal.partial, b""
        if not complete:
            return
        terminal.seq += 1
        message = mesh_pb2.NodeMessage(
            terminal_output=mesh_pb2.TerminalOutput(
                session_id=terminal.session_id,
                seq=terminal.seq,
                data=complete,
                at=time.monotonic() - terminal.started,
            )
        )
        terminal.unacked.append(message)
        terminal.unacked_bytes += len(complete)
        self.send(message)

    def _write(self, terminal: Terminal) -> None:
        loop = asyncio.get_running_loop()
        while terminal.pending_input:
            try:
                written = os.write(terminal.master, terminal.pending_input)
            except BlockingIOError:
                break
            except OSError:
                terminal.pending_input.clear()
                break
            del terminal.pending_input[:written]
        if terminal.pending_input and not terminal.writing:
            loop.add_writer(terminal.master, self._write, terminal)
            terminal.writing = True
        elif not terminal.pending_input and terminal.writing:
            loop.remove_writer(terminal.master)
            terminal.writing = False

    def _hangup(self, terminal: Terminal) -> None:
        proc = terminal.proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGHUP)
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGCONT)
        if terminal.killer is None:
            terminal.killer = asyncio.get_running_loop().call_later(
                CLOSE_GRACE, self._kill, terminal
            )

    @staticmethod
    def _kill(terminal: Terminal) -> None:
        if terminal.proc is not None and terminal.proc.returncode is None:
            with contextlib.suppress(OSError):
                os.killpg(terminal.proc.pid, signal.SIGKILL)

    async def _wait(self, terminal: Terminal) -> None:
        """When the shell ends: pass on what it wrote last, end its group, report the exit."""
        assert terminal.proc is not None  # noqa: S101  # set by _spawn
        code = await terminal.proc.wait()
        if terminal.killer is not None:
            terminal.killer.cancel()
        self._stop_reading(terminal)
        # What the shell wrote before it ended is in the tty's buffer: bounded, read past the
        # window so the exit follows the last output.
        for _ in range(64):
            data = self._read(terminal)
            if not data:
                break
            self._emit(terminal, data)
        self._emit(terminal, b"", final=True)
        with contextlib.suppress(OSError):  # background jobs die with their terminal
            os.killpg(terminal.proc.pid, signal.SIGHUP)
        self._close_fd(terminal)
        terminal.exit_message = mesh_pb2.NodeMessage(
            terminal_exit=mesh_pb2.TerminalExit(
                session_id=terminal.session_id, exit_code=exit_status(code), last_seq=terminal.seq
            )
        )
        self.send(terminal.exit_message)

    def _close_fd(self, terminal: Terminal) -> None:
        if terminal.master < 0:
            return
        self._stop_reading(terminal)
        if terminal.writing:
            asyncio.get_running_loop().remove_writer(terminal.master)
            terminal.writing = False
        with contextlib.suppress(OSError):
            os.close(terminal.master)
        terminal.master = -1

    async def _sweep(self) -> None:
        """Hang up sessions nobody typed into for `idle_timeout` seconds."""
        interval = max(0.2, min(self.limits.idle_timeout / 4, 30.0))
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for terminal in list(self.sessions.values()):
                idle = now - terminal.last_input
                if terminal.exit_message is None and idle >= self.limits.idle_timeout:
                    logger.info("terminal %s idle for %.0f s: closing", terminal.session_id, idle)
                    self._hangup(terminal)


def _first_time(terminal: Terminal, key: str) -> bool:
    """Whether an input's key is new (and note it); input without a key always is."""
    if not key:
        return True
    if key in terminal.keys:
        return False
    terminal.keys[key] = None
    if len(terminal.keys) > MAX_INPUT_KEYS:
        terminal.keys.popitem(last=False)
    return True


def stats_of(manager: TerminalManager) -> dict[str, Any]:
    """Counts for logs and tests."""
    live = [t for t in manager.sessions.values() if t.exit_message is None]
    return {"live": len(live), "unacked_bytes": sum(t.unacked_bytes for t in live)}
