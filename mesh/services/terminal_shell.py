"""The AI's persistent shell: one terminal session per (chat session, node), command by command.

`cd` and exported variables persist between calls because every command is typed into the same
shell. Each command line is checked against the node's policy first, exactly as a one-shot task
is (denied: refused; sensitive: only when the call was confirmed), and audited. Its output and
exit code are framed by a random marker made for that command alone: the line typed carries the
marker split in two printf arguments, so only the shell's own printf output contains it whole,
and a command cannot print it by accident (it does not know it).
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from accounts.context import TOOL_CONTEXT, AuditContext
from accounts.services import audit_record, audit_refusal
from cortex.errors import Unavailable
from mesh.models import OPEN_TERMINAL_STATUSES, Node, TerminalSession
from mesh.selectors.terminals import terminal_text_after
from mesh.services import terminals
from mesh.services.tasks import CommandNotAllowed, _check_command, _require_confirmation

#: How often the output is looked at while a command runs.
POLL = 0.05
#: Most output returned to the model per command (the recording keeps everything).
MAX_OUTPUT = 64 * 1024
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
# Quiet shell for a program: no echo, no prompts, no bracketed-paste codes.
_SETUP = (
    "stty -echo 2>/dev/null; PS1=''; PS2=''; PROMPT_COMMAND=''; "
    "bind 'set enable-bracketed-paste off' 2>/dev/null; "
)


class ShellStartTimeout(Unavailable):
    code = "terminal_not_ready"


@dataclass
class ShellResult:
    session_id: str
    output: str
    exit_code: int | None
    timed_out: bool = False
    ended: bool = False  # the shell itself ended (`exit`): the next call starts a new one


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _marked(marker: str, tag: str) -> str:
    """A printf that prints `\\n<marker>:<tag>` without the typed line containing the marker."""
    half = len(marker) // 2
    return f"printf '\\n%s%s:{tag}\\n' {marker[:half]} {marker[half:]}"


def _framed(command: str, marker: str) -> str:
    begin = _marked(marker, "b")
    end = f"printf '\\n%s%s:e:%s\\n' {marker[: len(marker) // 2]} {marker[len(marker) // 2 :]}"
    return f'{begin}; {command}\n__cortex_rc=$?; {end} "$__cortex_rc"\n'


def _text_after(session: TerminalSession, after_seq: int) -> tuple[str, int]:
    return terminal_text_after(session_id=session.pk, after_seq=after_seq)


def _wait_for(
    session: TerminalSession, after_seq: int, pattern: re.Pattern[str], deadline: float
) -> tuple[str, re.Match[str] | None, bool]:
    """Collect output after `after_seq` until `pattern` matches, the shell ends or the deadline."""
    text, last = "", after_seq
    while True:
        more, last = _text_after(session, last)
        text += more
        found = pattern.search(text)
        if found is not None:
            return text, found, False
        session.refresh_from_db(fields=["status"])
        if session.status not in OPEN_TERMINAL_STATUSES:
            more, last = _text_after(session, last)
            return text + more, pattern.search(text + more), True
        if time.monotonic() >= deadline:
            return text, None, False
        time.sleep(POLL)


def _clean(text: str) -> str:
    return _ANSI.sub("", text).replace("\r\n", "\n").replace("\r", "")


def _type(session: TerminalSession, data: str) -> None:
    terminals.terminal_type(node_id=session.node.node_id, session_id=str(session.pk), data=data)


def _shell_for(*, actor: Any, node: Node, chat_session_id: int, cwd: str) -> TerminalSession:
    """The chat session's open shell on the node, or a new one (ready, quiet, in `cwd`)."""
    found = (
        TerminalSession.objects.select_related("node")
        .filter(
            node=node,
            user=actor,
            chat_session_id=chat_session_id,
            status__in=OPEN_TERMINAL_STATUSES,
            close_requested_at__isnull=True,
        )
        .order_by("-created_at")
        .first()
    )
    if found is not None:
        return found
    session = terminals.terminal_open(
        actor=actor,
        node_id=node.node_id,
        cols=200,
        rows=50,
        audit_context=TOOL_CONTEXT,
        chat_session_id=chat_session_id,
    )
    session = TerminalSession.objects.select_related("node").get(pk=session.pk)
    marker = secrets.token_hex(8)
    setup = _SETUP + (f"cd -- {_quote(cwd)}; " if cwd else "") + _marked(marker, "ready") + "\n"
    _type(session, setup)
    _, ready, _ = _wait_for(
        session, 0, re.compile(re.escape(marker) + ":ready"), time.monotonic() + 30
    )
    if ready is None:
        raise ShellStartTimeout("The node's shell did not start in time.")
    return session


def shell_run(
    *,
    actor: Any,
    node: Node,
    chat_session_id: int,
    command: str,
    timeout: float,
    confirmed: bool = False,
    cwd: str = "",
    audit_context: AuditContext = TOOL_CONTEXT,
) -> ShellResult:
    """Check, audit and type one command into the chat session's shell; wait for its end.

    Raises CommandNotAllowed or ConfirmationRequired (nothing typed), or the refusals of
    `terminals.terminal_open` when a new shell is needed. A command still running at the
    deadline gets Ctrl-C and the result says `timed_out`.
    """
    try:
        checked = _check_command(node, command)
    except CommandNotAllowed as exc:
        audit_refusal(
            actor=actor,
            action="terminal.command_refused",
            reason=exc.code,
            target_type="node",
            target_id=node.node_id,
            audit_context=audit_context,
            details={"node_id": node.node_id, "command": command[:1000]},
        )
        raise
    if checked["sensitive"] and not confirmed:
        _require_confirmation(checked)
    session = _shell_for(actor=actor, node=node, chat_session_id=chat_session_id, cwd=cwd)
    audit_record(
        actor=actor,
        action="terminal.command",
        target_type="terminal",
        target_id=str(session.pk),
        audit_context=audit_context,
        details={
            "node_id": node.node_id,
            "command": command[:4000],
            "sensitive": checked["sensitive"],
            "confirmed": bool(confirmed),
        },
    )
    session.refresh_from_db(fields=["last_seq"])
    start = session.last_seq
    marker = secrets.token_hex(8)
    _type(session, _framed(command, marker))
    pattern = re.compile(
        "\n" + re.escape(marker) + r":b\r?\n(.*?)\r?\n" + re.escape(marker) + r":e:(\d+)", re.S
    )
    text, found, ended = _wait_for(session, start, pattern, time.monotonic() + float(timeout))
    if found is not None:
        output = _clean(found.group(1))
        return ShellResult(str(session.pk), output[-MAX_OUTPUT:], int(found.group(2)))
    begun = text.split(f"{marker}:b", 1)
    partial = _clean(begun[1] if len(begun) == 2 else "").lstrip("\n")
    if ended:
        session.refresh_from_db(fields=["exit_code", "status"])
        return ShellResult(str(session.pk), partial[-MAX_OUTPUT:], session.exit_code, ended=True)
    _type(session, "\x03")
    return ShellResult(str(session.pk), partial[-MAX_OUTPUT:], None, timed_out=True)


def shell_close(
    *,
    actor: Any,
    chat_session_id: int,
    nodes: list[Node] | None = None,
    audit_context: AuditContext | None = None,
) -> int:
    """Hang up the chat session's shells on `nodes` (None: on every node), when the chat ends
    (archived, deleted) or leaves a node; each close is audited. Returns how many."""
    sessions = TerminalSession.objects.select_related("node").filter(
        chat_session_id=chat_session_id,
        status__in=OPEN_TERMINAL_STATUSES,
        close_requested_at__isnull=True,
    )
    if nodes is not None:
        sessions = sessions.filter(node__in=nodes)
    context = audit_context or AuditContext.system("chat_ended")
    count = 0
    for session in sessions:
        terminals.terminal_close(actor=actor, session=session, audit_context=context)
        count += 1
    return count
