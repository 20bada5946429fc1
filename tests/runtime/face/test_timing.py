"""The video container's facts about time: creation_time tags, the timeline's lead, the format."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from milmer.runtime.face.timing import parse_creation_time


@pytest.mark.parametrize(
    "tag, expected",
    [
        ("2024-05-01T10:00:05.000000Z", datetime(2024, 5, 1, 10, 0, 5, tzinfo=timezone.utc)),  # FFmpeg's MP4/MOV form
        ("2024-05-01T12:00:05+02:00", datetime(2024, 5, 1, 10, 0, 5, tzinfo=timezone.utc)),
        ("2024-05-01 10:00:05", datetime(2024, 5, 1, 10, 0, 5, tzinfo=timezone.utc)),  # no zone: UTC, as MP4's spec says
        ("1904-01-01T00:00:00.000000Z", None),  # MP4's zero date: no stamp
        ("1970-01-01T00:00:00Z", None),
        ("yesterday", None),
        ("", None),
        (None, None),
    ],
)
def test_creation_time_tags(tag, expected):
    assert parse_creation_time(tag) == expected
