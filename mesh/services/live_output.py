"""Live `task.output` frames for watchers: a node's new output, coalesced.

One frame per run of one stream per task per batch: `first_seq`..`seq` are the chunks it
covers, `data` their newest bytes (at most LIVE_FRAME_LIMIT per task per batch, so a flood
cannot drown a watcher: the newest output is what a terminal shows), `skipped` the bytes of
those chunks left out at the front and `truncated` whether any were. The full output stays
available over REST.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mesh import events

#: Most output bytes live frames carry per task per batch (the newest ones).
LIVE_FRAME_LIMIT = 64 * 1024
#: Most live frames per task per batch (one per run of one stream); older runs fold into them.
LIVE_FRAMES_PER_BATCH = 8


def live_frames(task_id: str, chunks: Sequence[tuple[int, str, bytes]]) -> list[dict[str, Any]]:
    """Coalesce (seq, stream, data) chunks of one task into `task.output` frames, oldest first.

    One frame per run of one stream, carrying the newest bytes: LIVE_FRAME_LIMIT in all, given
    to the newest runs first; a run left without room (or past LIVE_FRAMES_PER_BATCH) folds
    into the next frame as skipped bytes, so every seq is covered by exactly one frame.
    """
    runs: list[_Run] = []
    _add_runs(runs, chunks)
    return _frames(task_id, runs)


class _Run:
    """Chunks of one stream in a row: seqs, size, and (at least) their newest LIVE_FRAME_LIMIT
    bytes; a frame never carries more of a run, so older parts need not be kept."""

    __slots__ = ("first", "kept", "last", "parts", "size", "stream")

    def __init__(self, seq: int, stream: str) -> None:
        self.first = self.last = seq
        self.stream = stream
        self.parts: list[bytes] = []
        self.size = self.kept = 0


def _add_runs(runs: list[_Run], chunks: Sequence[tuple[int, str, bytes]]) -> None:
    for seq, stream, data in chunks:
        if not runs or runs[-1].stream != stream:
            runs.append(_Run(seq, stream))
        run = runs[-1]
        run.last = seq
        run.parts.append(data)
        run.size += len(data)
        run.kept += len(data)
        while run.kept - len(run.parts[0]) >= LIVE_FRAME_LIMIT:
            run.kept -= len(run.parts.pop(0))


def _frames(task_id: str, runs: list[_Run]) -> list[dict[str, Any]]:
    budget = LIVE_FRAME_LIMIT
    frames: list[dict[str, Any]] = []
    for run in reversed(runs):
        if frames and (budget <= 0 or len(frames) == LIVE_FRAMES_PER_BATCH):
            frames[-1].update(first_seq=run.first, truncated=True)
            frames[-1]["skipped"] += run.size
            continue
        data = _newest(run.parts, budget)
        budget -= len(data)
        frames.append(
            {
                "type": events.TASK_OUTPUT,
                "seq": run.last,
                "first_seq": run.first,
                "task_id": task_id,
                "stream": run.stream,
                "data": data.decode("utf-8", "replace"),
                "truncated": len(data) < run.size,
                "skipped": run.size - len(data),
            }
        )
    frames.reverse()
    return frames


class LiveNews:
    """New output of a node's tasks not yet sent to watchers, coalesced across batches.

    A flood stores a batch every few chunks; a frame per batch would cost more than the batch.
    The caller takes the frames at most every so often (`take`), each covering everything
    since the previous take exactly as `live_frames` covers one bigger batch. Only what a
    frame can carry is kept: the newest bytes of each run, and the sizes of the rest.
    """

    __slots__ = ("runs",)

    def __init__(self) -> None:
        self.runs: dict[str, list[_Run]] = {}

    def __bool__(self) -> bool:
        return bool(self.runs)

    def add(self, news: dict[str, list[tuple[int, str, bytes]]]) -> None:
        for task_id, chunks in news.items():
            runs = self.runs.setdefault(task_id, [])
            _add_runs(runs, chunks)
            if len(runs) > LIVE_FRAMES_PER_BATCH + 1:  # the oldest fold into one whatever comes
                folded = runs[0]
                for run in runs[1 : len(runs) - LIVE_FRAMES_PER_BATCH]:
                    folded.size += run.size
                folded.parts, folded.kept = [], 0
                del runs[1 : len(runs) - LIVE_FRAMES_PER_BATCH]

    def take(self) -> list[dict[str, Any]]:
        """The frames of everything added since the last take, oldest first per task."""
        frames = [f for task_id, runs in self.runs.items() for f in _frames(task_id, runs)]
        self.runs = {}
        return frames


def _newest(parts: list[bytes], limit: int) -> bytes:
    """The last `limit` bytes of the joined parts (joining only what is needed), starting on a
    UTF-8 character boundary when cut."""
    taken: list[bytes] = []
    size = 0
    for part in reversed(parts):
        taken.append(part)
        size += len(part)
        if size >= limit:
            break
    data = b"".join(reversed(taken))
    if len(data) <= limit:
        return data
    data = data[len(data) - limit :]
    start = 0
    while start < 3 and start < len(data) and 0x80 <= data[start] < 0xC0:
        start += 1  # a continuation byte: the character began in the skipped part
    return data[start:]
