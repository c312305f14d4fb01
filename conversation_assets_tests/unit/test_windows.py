"""Window slicing: pure arithmetic, no I/O."""

import itertools
from datetime import UTC, date, datetime

import pytest

from conversation_assets.dixa.endpoints import CONVERSATION_EXPORT
from conversation_assets.dixa.windows import DAY_MS, Window, format_ms, request_windows, to_ms

JAN_1 = to_ms(date(2024, 1, 1))


def covered(windows: list[Window]) -> tuple[int, int]:
    return windows[0].start_ms, windows[-1].end_ms


@pytest.mark.parametrize("batch_days", [1, 7, 31])
def test_windows_are_consecutive_and_never_span_more_than_the_batch(batch_days: int) -> None:
    end = JAN_1 + 92 * DAY_MS
    windows = list(request_windows(JAN_1, end, batch_days))
    assert covered(windows) == (JAN_1, end)
    for left, right in itertools.pairwise(windows):
        assert left.end_ms == right.start_ms
    for window in windows:
        params = CONVERSATION_EXPORT.query_params(window)
        assert params["updated_before"] - params["updated_after"] <= batch_days * DAY_MS
        assert params["updated_before"] - params["updated_after"] <= 31 * DAY_MS


def test_seven_day_batches_leave_a_partial_last_window() -> None:
    windows = list(request_windows(JAN_1, JAN_1 + 10 * DAY_MS, 7))
    assert len(windows) == 2
    assert windows[1].end_ms - windows[1].start_ms == 3 * DAY_MS + 1


def test_a_thirty_day_month_is_one_request_at_the_default_batch() -> None:
    april = to_ms(date(2024, 4, 1))
    assert len(list(request_windows(april, to_ms(date(2024, 5, 1)), 31))) == 1


def test_query_params_reach_one_ms_before_the_window_for_either_bound_semantics() -> None:
    window = Window(JAN_1, JAN_1 + DAY_MS)
    params = CONVERSATION_EXPORT.query_params(window)
    assert params == {"updated_after": JAN_1 - 1, "updated_before": JAN_1 + DAY_MS}


def test_windows_stop_at_now() -> None:
    now = JAN_1 + 5 * DAY_MS + 123
    windows = list(request_windows(JAN_1, JAN_1 + 31 * DAY_MS, 31, now_ms=now))
    assert covered(windows) == (JAN_1, now)


def test_a_range_that_starts_after_now_has_no_windows() -> None:
    assert list(request_windows(JAN_1, JAN_1 + DAY_MS, 31, now_ms=JAN_1 - 1)) == []


@pytest.mark.parametrize("batch_days", [0, 32])
def test_batch_size_outside_1_to_31_is_refused(batch_days: int) -> None:
    with pytest.raises(ValueError, match="1-31"):
        list(request_windows(JAN_1, JAN_1 + DAY_MS, batch_days))


def test_to_ms_is_exact_for_dates_and_datetimes() -> None:
    assert to_ms(date(1970, 1, 2)) == DAY_MS
    assert to_ms(datetime(2024, 1, 1, 0, 0, 0, 1000, tzinfo=UTC)) == JAN_1 + 1
    assert format_ms(JAN_1 + 1) == "2024-01-01T00:00:00.001Z"


def test_a_window_contains_its_start_and_not_its_end() -> None:
    window = Window(1_000, 2_000)
    assert 1_000 in window and 1_999 in window
    assert 999 not in window and 2_000 not in window
    assert None not in window and "1500" not in window
