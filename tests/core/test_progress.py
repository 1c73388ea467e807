"""What a run's progress bar says beside it: the count, then the time left at the pace so far."""

from __future__ import annotations

import pytest

from lmwidgets.core.progress import batch_progress


@pytest.mark.parametrize(
    ("done", "total", "seconds", "text"),
    [
        (0, 10, 0.0, "0 of 10 batches"),  # no pace yet: no guess
        (3, 10, 12.0, "3 of 10 batches · about 28 s left"),
        (1, 10, 0.01, "1 of 10 batches · about 1 s left"),  # never "0 s"
        (1, 4, 100.0, "1 of 4 batches · about 5 min left"),
        (1, 50, 120.0, "1 of 50 batches · about 1 h 38 min left"),
        (1, 31, 120.0, "1 of 31 batches · about 1 h left"),
        (10, 10, 40.0, "10 of 10 batches"),  # finished: nothing left to guess
        (0, 1, 0.0, "0 of 1 batch"),
    ],
)
def test_the_count_and_the_time_left(done, total, seconds, text):
    assert batch_progress(done, total, seconds) == text


def test_another_unit_is_named_in_its_plural():
    assert batch_progress(2, 5, 4.0, unit="item") == "2 of 5 items · about 6 s left"
