"""What the model reads back from tasks: long output clipped, bulky payloads left to the UI."""

from __future__ import annotations

from tools.task_render import _for_model, clip, task_block


def test_clip_keeps_head_and_tail() -> None:
    text = "a" * 10 + "b" * 100 + "c" * 10
    assert (
        clip(text, head=10, tail=10)
        == "a" * 10 + "\n[... 100 characters cut for the model ...]\n" + "c" * 10
    )
    assert clip("short", head=10, tail=10) == "short"


def test_screenshots_stay_out_of_the_model_text() -> None:
    result = {
        "url": "https://x.org/",
        "screenshot_png_base64": "A" * 5000,
        "items": [{"image": "B"}],
    }
    assert _for_model(result) == {
        "url": "https://x.org/",
        "screenshot_png_base64": "[5000 characters of screenshot_png_base64, shown to the user]",
        "items": [{"image": "B"}],
    }


def test_task_block_of_a_failed_running_and_structured_task() -> None:
    item = {
        "task_id": "t1",
        "node_id": "dev",
        "status": "failed",
        "exit_code": 2,
        "error_code": "",
        "error_message": "",
        "stdout": "",
        "stderr": "no such file\n",
        "result": None,
    }
    assert task_block(item) == "[dev] task t1: failed, exit code 2\nstderr:\nno such file"
    running = item | {"status": "running", "exit_code": None, "stderr": "", "result": {"n": 1}}
    assert task_block(running) == (
        '[dev] task t1: running\n{\n "n": 1\n}\n'
        "(still running: call mesh_wait_tasks with this task id for the rest)"
    )
    lost = item | {
        "status": "lost",
        "exit_code": None,
        "stderr": "",
        "error_code": "node_gone",
        "error_message": "the node went away",
    }
    assert task_block(lost) == "[dev] task t1: lost, node_gone\nerror: the node went away"
