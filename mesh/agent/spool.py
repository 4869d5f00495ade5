"""The local spool: task output and results kept (memory + one file per task) until acked.

Output chunks are numbered per task from 1. A chunk stays until the hub acks its seq
(OutputAck); a result stays until ResultAck, when the task's file is removed. After a restart
the files are read back, so nothing unacknowledged is lost with the agent process.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger("cortex_agent.spool")

TASK_ID = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
COMPACT_BYTES = 1024 * 1024  # rewrite a task's file once acked output makes it this large


@dataclass
class Chunk:
    seq: int
    stream: int  # mesh_pb2.STDOUT / STDERR
    data: bytes


@dataclass
class TaskRecord:
    """What the agent still owes the hub for one task."""

    task_id: str
    last_seq: int = 0
    acked_seq: int = 0
    chunks: list[Chunk] = field(default_factory=list)
    result: dict[str, Any] | None = None
    process: dict[str, Any] | None = None  # {"pid", "create_time"} of a running shell task

    @property
    def finished(self) -> bool:
        return self.result is not None


class Spool:
    """Per-task output and results not yet acknowledged by the hub."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.records: dict[str, TaskRecord] = {}

    # ------------------------------------------------------------------ persistence
    def _file(self, task_id: str) -> Path:
        return self.directory / f"{task_id}.jsonl"

    def _append(self, task_id: str, entry: dict[str, Any]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self._file(task_id), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, (json.dumps(entry, separators=(",", ":")) + "\n").encode())
        finally:
            os.close(fd)

    def load(self) -> list[TaskRecord]:
        """Read back what a previous run left; returns the records."""
        if not self.directory.is_dir():
            return []
        for path in sorted(self.directory.glob("*.jsonl")):
            task_id = path.stem
            if not TASK_ID.match(task_id):
                continue
            record = TaskRecord(task_id)
            for line in path.read_text().splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:
                    logger.warning("spool %s: skipping a damaged line", path.name)
                    continue
                kind = entry.get("t")
                if kind == "out":
                    chunk = Chunk(entry["seq"], entry["s"], base64.b64decode(entry["d"]))
                    record.chunks.append(chunk)
                    record.last_seq = max(record.last_seq, chunk.seq)
                elif kind == "ack":
                    record.acked_seq = max(record.acked_seq, int(entry["seq"]))
                elif kind == "result":
                    record.result = entry["r"]
                    record.process = None
                elif kind == "proc":
                    record.process = entry["p"]
            record.chunks = [c for c in record.chunks if c.seq > record.acked_seq]
            record.last_seq = max(record.last_seq, record.acked_seq)
            self.records[task_id] = record
        return list(self.records.values())

    # ------------------------------------------------------------------ writes
    def has(self, task_id: str) -> bool:
        return task_id in self.records

    def begin(self, task_id: str) -> TaskRecord:
        """Start tracking a task (idempotent)."""
        if not TASK_ID.match(task_id):
            raise ValueError("invalid task id")
        record = self.records.get(task_id)
        if record is None:
            record = self.records[task_id] = TaskRecord(task_id)
            self._append(task_id, {"t": "begin"})
        return record

    def process_started(self, task_id: str, pid: int, create_time: float) -> None:
        """Remember the task's process, so a restarted agent can end what it left behind."""
        record = self.records[task_id]
        record.process = {"pid": pid, "create_time": create_time}
        self._append(task_id, {"t": "proc", "p": record.process})

    def add_output(self, task_id: str, stream: int, data: bytes) -> Chunk:
        """Number and keep one output chunk; returns it."""
        record = self.records[task_id]
        record.last_seq += 1
        chunk = Chunk(record.last_seq, stream, data)
        record.chunks.append(chunk)
        self._append(
            task_id,
            {"t": "out", "seq": chunk.seq, "s": stream, "d": base64.b64encode(data).decode()},
        )
        return chunk

    def ack_output(self, task_id: str, seq: int) -> None:
        """The hub stored every chunk up to seq: drop them (and compact a large file)."""
        record = self.records.get(task_id)
        if record is None or seq <= record.acked_seq:
            return
        record.acked_seq = seq
        record.chunks = [c for c in record.chunks if c.seq > seq]
        self._append(task_id, {"t": "ack", "seq": seq})
        path = self._file(task_id)
        if path.stat().st_size > COMPACT_BYTES:
            self._compact(record)

    def _compact(self, record: TaskRecord) -> None:
        """Rewrite the task's file with only what is still owed (atomic replace)."""
        entries: list[dict[str, Any]] = [{"t": "begin"}, {"t": "ack", "seq": record.acked_seq}]
        if record.process:
            entries.append({"t": "proc", "p": record.process})
        entries += [
            {"t": "out", "seq": c.seq, "s": c.stream, "d": base64.b64encode(c.data).decode()}
            for c in record.chunks
        ]
        if record.result is not None:
            entries.append({"t": "result", "r": record.result})
        path = self._file(record.task_id)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.writelines(json.dumps(e, separators=(",", ":")) + "\n" for e in entries)
        os.replace(tmp, path)

    def set_result(self, task_id: str, result: dict[str, Any]) -> None:
        """Keep the task's result (a TaskResult as a dict) until the hub acks it."""
        record = self.records[task_id]
        record.result = {**result, "last_seq": record.last_seq}
        record.process = None
        self._append(task_id, {"t": "result", "r": record.result})

    def forget(self, task_id: str) -> None:
        """ResultAck (or the hub abandoned the task): nothing more is owed."""
        self.records.pop(task_id, None)
        with contextlib.suppress(FileNotFoundError):
            self._file(task_id).unlink()

    def pending(self, task_id: str) -> list[Chunk]:
        """Chunks not yet acked, in seq order."""
        record = self.records.get(task_id)
        return list(record.chunks) if record else []
