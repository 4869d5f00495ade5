"""mesh/services/file_push.py: `file_push_check_length` refuses a body too large for any allowed
file before it is read, with the 413 code."""

from __future__ import annotations

import pytest

from mesh.services.file_push import MULTIPART_SLACK, FilePushTooLarge, file_push_check_length


def test_file_push_check_length_allows_the_limit_plus_multipart_slack(settings) -> None:  # type: ignore[no-untyped-def]
    settings.MESH_FILE_PUSH_MAX_BYTES = 1000
    file_push_check_length(content_length=0)
    file_push_check_length(content_length=1000 + MULTIPART_SLACK)
    with pytest.raises(FilePushTooLarge) as caught:
        file_push_check_length(content_length=1001 + MULTIPART_SLACK)
    assert caught.value.code == "file_too_large"
    assert caught.value.http_status == 413
    assert "1000 bytes" in caught.value.message
