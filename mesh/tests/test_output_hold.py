"""Output past the cap held in hand instead of written and deleted; coalesced live frames."""

from __future__ import annotations

import random
from typing import Any

import pytest

from mesh import selectors, services
from mesh.models import Task, TaskOutputChunk, TaskStatus
from mesh.services.live_output import LIVE_FRAME_LIMIT, LIVE_FRAMES_PER_BATCH, LiveNews, live_frames
from mesh.services.output import OutputChunk, output_append_many, output_store_batch

pytestmark = pytest.mark.django_db


@pytest.fixture
def tid(user, make_node, grant) -> str:  # type: ignore[no-untyped-def]
    node, _ = make_node("n1")
    grant(user, node)
    task = services.task_dispatch(actor=user, node=node, kind="shell", payload={"command": "x"})
    Task.objects.filter(pk=task.pk).update(status=TaskStatus.DISPATCHED)
    return str(task.pk)


def _chunks(tid: str, first: int, last: int) -> list[OutputChunk]:
    return [OutputChunk(tid, s, "stdout", f"{s:09d}\n".encode()) for s in range(first, last + 1)]


def _state(tid: str) -> tuple[Any, ...]:
    task = Task.objects.get(pk=tid)
    seqs = list(TaskOutputChunk.objects.filter(task_id=tid).values_list("seq", "offset", "size"))
    counters = (task.last_seq, task.output_bytes, task.stored_bytes, task.dropped_bytes)
    return counters, seqs, selectors.task_text(task=task)


def test_held_chunks_are_neither_stored_nor_acked_and_end_as_without_holding(
    tid, settings, django_capture_on_commit_callbacks
):
    settings.MESH_OUTPUT_CAP_BYTES = 100  # 10-byte chunks: head 1-5, tail of 5 chunks
    first = output_store_batch(node_id="n1", chunks=_chunks(tid, 1, 8), hold=True)
    assert (first.acked, first.held) == ({tid: 8}, [])  # within the cap: all written
    # 9-14 push 6-8 and 9 out of the tail: those are dropped and acked, 10-14 held.
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        second = output_store_batch(node_id="n1", chunks=_chunks(tid, 9, 14), hold=True)
    assert second.acked == {tid: 9}
    assert [(c.seq, c.held) for c in second.held] == [(s, True) for s in range(10, 15)]
    assert len(callbacks) == 1  # the new chunks are announced, held or not
    assert _state(tid)[:2] == ((9, 90, 50, 40), [(s, (s - 1) * 10, 10) for s in range(1, 6)])
    # Held chunks come back first; 15-16 push out 10-11. A resent held seq counts once.
    third = output_store_batch(
        node_id="n1", chunks=[*second.held, *_chunks(tid, 14, 16)], hold=True
    )
    assert (third.acked, [c.seq for c in third.held]) == ({tid: 11}, [12, 13, 14, 15, 16])
    assert _state(tid)[0] == (11, 110, 50, 60)
    # Stored without holding (a pause, a result): the same as if nothing had been held.
    last = output_store_batch(node_id="n1", chunks=third.held, hold=False)
    assert (last.acked, last.held) == ({tid: 16}, [])
    held_way = _state(tid)

    TaskOutputChunk.objects.all().delete()
    Task.objects.filter(pk=tid).update(last_seq=0, output_bytes=0, stored_bytes=0, dropped_bytes=0)
    for start in (1, 9, 15):
        output_append_many(node_id="n1", chunks=_chunks(tid, start, min(start + 7, 16)))
    assert _state(tid) == held_way
    counters, rows, (stdout, _) = held_way
    assert counters == (16, 160, 100, 60)
    assert [seq for seq, _, _ in rows] == [1, 2, 3, 4, 5, 12, 13, 14, 15, 16]
    head = "".join(f"{i:09d}\n" for i in range(1, 6))
    assert stdout == head + selectors.dropped_marker(60) + "".join(
        f"{i:09d}\n" for i in range(12, 17)
    )


def test_holding_keeps_the_stored_tail_until_a_new_chunk_falls_out(tid, settings):
    settings.MESH_OUTPUT_CAP_BYTES = 100
    output_append_many(node_id="n1", chunks=_chunks(tid, 1, 10))  # at the cap exactly
    held = output_store_batch(node_id="n1", chunks=_chunks(tid, 11, 11), hold=True)
    # Chunk 6 would go, but 11 is held rather than written: nothing changes yet.
    assert (held.acked, [c.seq for c in held.held]) == ({tid: 10}, [11])
    assert _state(tid)[0] == (10, 100, 100, 0)
    assert TaskOutputChunk.objects.count() == 10


def test_batch_sends_one_coalesced_frame_per_stream_run(tid, django_capture_on_commit_callbacks):
    chunks = [
        OutputChunk(tid, 1, "stdout", b"a\n"),
        OutputChunk(tid, 2, "stdout", b"b\n"),
        OutputChunk(tid, 3, "stderr", b"oops\n"),
        OutputChunk(tid, 4, "stdout", b"c\n"),
    ]
    with django_capture_on_commit_callbacks(execute=False):
        stored = output_store_batch(node_id="n1", chunks=chunks, hold=False, announce=False)
    base = {"type": "task.output", "task_id": tid, "truncated": False, "skipped": 0}
    assert stored.frames == [
        {**base, "first_seq": 1, "seq": 2, "stream": "stdout", "data": "a\nb\n"},
        {**base, "first_seq": 3, "seq": 3, "stream": "stderr", "data": "oops\n"},
        {**base, "first_seq": 4, "seq": 4, "stream": "stdout", "data": "c\n"},
    ]
    assert stored.group == "mesh.console.n1"


def test_live_frames_carry_the_newest_bytes_within_the_limit():
    big = [(s, "stdout", bytes([0x30 + s]) * 40_000) for s in range(1, 4)]
    (frame,) = live_frames("t", big)
    assert (frame["first_seq"], frame["seq"], frame["truncated"]) == (1, 3, True)
    assert frame["data"] == "2" * (LIVE_FRAME_LIMIT - 40_000) + "3" * 40_000
    assert frame["skipped"] == 120_000 - LIVE_FRAME_LIMIT
    # A cut inside a UTF-8 character starts the data at the next character.
    text = ("é" * LIVE_FRAME_LIMIT).encode()  # two bytes each
    (frame,) = live_frames("t", [(1, "stdout", text + b"!")])  # the cut falls inside an é
    assert frame["data"] == "é" * (LIVE_FRAME_LIMIT // 2 - 1) + "!"
    assert frame["skipped"] == len(text) + 1 - (LIVE_FRAME_LIMIT - 1)


def test_runs_without_room_fold_into_the_next_frame():
    # Alternating streams: more runs than frames per batch; the oldest fold into the first.
    runs = [(s, "stdout" if s % 2 else "stderr", b"%d" % s) for s in range(1, 21)]
    frames = live_frames("t", runs)
    assert len(frames) == LIVE_FRAMES_PER_BATCH
    assert [(f["first_seq"], f["seq"]) for f in frames] == [(1, 13)] + [
        (s, s) for s in range(14, 21)
    ]
    skipped = sum(len(b"%d" % s) for s in range(1, 13))
    assert (frames[0]["data"], frames[0]["skipped"], frames[0]["truncated"]) == (
        "13",
        skipped,
        True,
    )
    # Past the byte budget, older runs fold the same way.
    flood = [(1, "stderr", b"e" * 10), (2, "stdout", b"o" * (LIVE_FRAME_LIMIT + 5))]
    (frame,) = live_frames("t", flood)
    assert (frame["first_seq"], frame["seq"], frame["stream"], frame["skipped"]) == (
        1,
        2,
        "stdout",
        15,
    )


def test_live_news_of_many_batches_frame_as_one_batch():
    """Frames taken from LiveNews after several adds are those of one batch of all chunks."""
    rng = random.Random(7)
    for _ in range(40):
        chunks = []
        for seq in range(1, rng.randint(2, 60)):
            size = rng.choice((1, 7, 500, 30_000, LIVE_FRAME_LIMIT + 3))
            stream = "stdout" if rng.random() < 0.7 else "stderr"
            chunks.append((seq, stream, bytes([0x41 + seq % 26]) * size))
        news = LiveNews()
        start = 0
        while start < len(chunks):
            end = start + rng.randint(1, 9)
            news.add({"t": chunks[start:end]})
            start = end
        assert news.take() == live_frames("t", chunks)
        assert not news and news.take() == []
