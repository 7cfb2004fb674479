"""The log-in throttling schedule (identity.domain.login_throttle), pure."""

from datetime import UTC, datetime, timedelta

import pytest

from identity.domain.login_throttle import ThrottlePolicy, ThrottleState, after_success, record_failure, retry_after

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
POLICY = ThrottlePolicy(free_failures=5, max_delay_s=900, window_s=3600, window_cap=20, memory_s=24 * 3600)


def _fail(state: ThrottleState, now: datetime, times: int = 1) -> ThrottleState:
    for _ in range(times):
        state = record_failure(POLICY, state, now)
    return state


@pytest.mark.parametrize(
    ("failures", "delay"),
    [(1, 0), (4, 0), (5, 1), (6, 2), (7, 4), (10, 32), (14, 512), (15, 900), (40, 900), (10_000, 900)],
)
def test_the_delay_is_free_for_five_failures_then_doubles_up_to_fifteen_minutes(failures, delay):
    assert POLICY.delay_after(failures) == delay


def test_four_failures_cost_nothing_and_the_fifth_makes_the_next_attempt_wait():
    state = _fail(ThrottleState(), T0, 4)
    assert retry_after(state, T0) == 0
    state = _fail(state, T0)
    assert retry_after(state, T0) == 1
    assert retry_after(state, T0 + timedelta(seconds=1)) == 0


def test_retry_after_is_whole_seconds_rounded_up_and_at_least_one():
    state = ThrottleState(blocked_until=T0 + timedelta(seconds=2, milliseconds=100))
    assert retry_after(state, T0) == 3
    assert retry_after(ThrottleState(blocked_until=T0 + timedelta(milliseconds=1)), T0) == 1
    assert retry_after(ThrottleState(blocked_until=T0), T0) == 0


def test_the_hourly_cap_blocks_until_the_window_ends_and_never_longer():
    policy = ThrottlePolicy(free_failures=100, window_cap=20)  # no progressive delay: the cap alone
    state = ThrottleState()
    for minute in range(19):
        state = record_failure(policy, state, T0 + timedelta(minutes=minute))
    assert retry_after(state, T0 + timedelta(minutes=19)) == 0
    state = record_failure(policy, state, T0 + timedelta(minutes=19))  # the 20th within the hour
    assert state.blocked_until == T0 + timedelta(hours=1)
    assert retry_after(state, T0 + timedelta(minutes=19)) == 41 * 60
    assert retry_after(state, T0 + timedelta(hours=1)) == 0


def test_no_block_ever_lasts_longer_than_an_hour():
    state = ThrottleState()
    now = T0
    for _ in range(200):
        state = record_failure(POLICY, state, now)
        wait = retry_after(state, now)
        assert wait <= 3600
        now += timedelta(seconds=wait)


def test_a_new_window_starts_an_hour_after_the_previous_one():
    state = _fail(ThrottleState(), T0, 3)
    later = record_failure(POLICY, state, T0 + timedelta(hours=1, seconds=1))
    assert later.window_started_at == T0 + timedelta(hours=1, seconds=1)
    assert later.window_failures == 1
    assert later.consecutive_failures == 4  # consecutive failures outlive the window


def test_consecutive_failures_are_forgotten_after_a_quiet_day():
    state = _fail(ThrottleState(), T0, 4)
    assert record_failure(POLICY, state, T0 + timedelta(hours=24, seconds=1)).consecutive_failures == 1
    assert record_failure(POLICY, state, T0 + timedelta(hours=23)).consecutive_failures == 5


def test_success_lifts_the_delay_and_resets_the_count_but_not_the_hours_tally():
    state = _fail(ThrottleState(), T0, 6)
    assert retry_after(state, T0) == 2
    counted = record_failure(POLICY, state, T0 + timedelta(seconds=2))  # the attempt counted up front...
    reset = after_success(counted)  # ...was the right password
    assert retry_after(reset, T0 + timedelta(seconds=2)) == 0
    assert reset.consecutive_failures == 0
    assert reset.window_failures == 6  # the provisional failure is taken back, the real ones stay
    # someone who watches the member log in cannot start over with fresh attempts each time:
    assert retry_after(_fail(reset, T0 + timedelta(seconds=3), 5), T0 + timedelta(seconds=3)) == 1


def test_success_never_drives_the_hours_tally_below_zero():
    assert after_success(ThrottleState()).window_failures == 0
