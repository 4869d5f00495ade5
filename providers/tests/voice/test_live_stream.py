"""Streaming through a real `manage.py serve` (ASGI): audio leaves before synthesis is done."""

from __future__ import annotations

import time

import httpx

TEXT = " ".join(f"This is sentence number {n} of a long spoken answer." for n in range(1, 31))


def test_first_chunk_arrives_long_before_the_audio_is_complete(live_hub):
    live_hub.manage(
        "shell",
        "-c",
        "from accounts.models import User; "
        "User.objects.create_user(email='voice@example.com', password='correct horse battery')",
    )
    token = live_hub.manage("create_api_token", "voice@example.com").strip()
    headers = {"Authorization": f"Bearer {token}"}
    arrivals: list[tuple[float, int]] = []
    with httpx.Client(base_url=live_hub.http_url, timeout=60) as client:
        started = time.monotonic()
        with client.stream(
            "POST", "/api/v1/speech/?stream=true", json={"text": TEXT}, headers=headers
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"] == "audio/L16;rate=22050;channels=1"
            assert response.headers["x-sample-rate"] == "22050"
            assert "content-length" not in response.headers
            for chunk in response.iter_raw():
                arrivals.append((time.monotonic() - started, len(chunk)))
                assert time.monotonic() - started < 60
    first_at, total_at = arrivals[0][0], arrivals[-1][0]
    audio_bytes = sum(size for _, size in arrivals)
    assert audio_bytes // 2 // 22050 > 40  # over 40 s of speech
    assert len(arrivals) > 10
    # 30 sentences are synthesised one by one; the first ones are on the wire meanwhile.
    assert first_at < total_at / 3, (first_at, total_at)
    assert "This is sentence" not in live_hub.log()
