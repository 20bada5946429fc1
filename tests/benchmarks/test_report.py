"""How bench.md and the summary screen print target values: a fraction as a percentage."""

from __future__ import annotations

import pytest

from milmer.benchmarks.formatting import format_value


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (1, "fraction", "100.0 %"),  # was printed as '1'
        (0.975, "fraction", "97.5 %"),
        (2.3141, "x", "2.31x"),
        (8.25, "ms", "8.2 ms"),
        (1536.0, "MB", "1,536.0 MB"),
        (None, "fraction", "-"),
        (0.123456, None, "0.123"),  # rows saved before units existed
    ],
)
def test_format_value(value, unit, text):
    assert format_value(value, unit) == text
