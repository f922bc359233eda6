"""How many jobs a worker claims ahead of its idle children (pure)."""

from __future__ import annotations

from queues.runner.pacing import MAX_AHEAD, Pacer


def test_a_fixed_prefetch_is_kept_whatever_the_jobs_take():
    pacer = Pacer(concurrency=2, fixed=7)
    pacer.finished(30.0)
    assert pacer.ahead() == 7


def test_before_any_job_finished_one_round_is_claimed_ahead():
    assert Pacer(concurrency=3).ahead() == 3


def test_quick_jobs_are_claimed_far_ahead_within_the_cap():
    pacer = Pacer(concurrency=2)
    for _ in range(20):
        pacer.finished(0.0002)
    assert pacer.ahead() == MAX_AHEAD


def test_long_jobs_are_not_claimed_ahead_at_all():
    pacer = Pacer(concurrency=4)
    for _ in range(5):
        pacer.finished(5.0)
    assert pacer.ahead() == 0
    assert pacer.room(idle=0, backlog=0) == 0, "no job waits here while another worker may be free"
    assert pacer.room(idle=2, backlog=0) == 2, "but every idle child gets one"


def test_nothing_is_claimed_while_the_backlog_covers_the_idle_children_and_half_the_target():
    pacer = Pacer(concurrency=2, fixed=100)
    assert pacer.room(idle=1, backlog=60) == 0
    assert pacer.room(idle=1, backlog=40) == 61


def test_slow_claims_make_the_backlog_deeper():
    fast, slow = Pacer(concurrency=2), Pacer(concurrency=2)
    for pacer, claim_seconds in ((fast, 0.001), (slow, 0.05)):
        pacer.claimed(claim_seconds)
        pacer.finished(0.01)
    assert (fast.ahead(), slow.ahead()) == (10, 40)
