"""The worker pool and RewardScorer with real processes: timeouts, crashes, exceptions, threads, strays.

The misbehaving graders below are registered by decorator; worker processes import them from this module.
Run: pytest tests/integration/test_grade_pool.py    (about 20 s on 2 cores)
"""
import ctypes
import os
import signal
import subprocess
import threading
import time

import pytest
from pydantic import BaseModel, ConfigDict, Field

from graders import Grade, Sample, grader
from graders.rewards import RewardScorer, RewardTerm

TIMEOUT = 1.0
SLACK = 0.5
PID_FILE_FIELD = "pid_file"


@grader("test_sleeps_forever", description="sleeps forever on 'hang', after starting a grandchild process")
def sleeps_forever(sample: Sample, params) -> Grade:
    if sample.completion == "hang":
        child = subprocess.Popen(["sleep", "600"])
        with open(sample.reference[PID_FILE_FIELD], "w") as f:
            f.write(str(child.pid))
        time.sleep(10_000)
    return Grade(1.0, correct=True)


@grader("test_segfaults", description="crashes the interpreter on 'crash'")
def segfaults(sample: Sample, params) -> Grade:
    if sample.completion == "crash":
        ctypes.string_at(0)
    return Grade(1.0, correct=True)


@grader("test_raises", description="raises on 'raise'")
def raises(sample: Sample, params) -> Grade:
    if sample.completion == "raise":
        raise ValueError("model output broke me")
    return Grade(1.0, correct=True)


@grader("test_hogs_memory", description="allocates 8 GiB on 'hog'")
def hogs_memory(sample: Sample, params) -> Grade:
    if sample.completion == "hog":
        bytearray(8 * 2**30)
    return Grade(1.0, correct=True)


@grader("test_slow_length", description="sleeps 0.1 s per character, then scores the completion's length")
def slow_length(sample: Sample, params) -> Grade:
    time.sleep(len(sample.completion) / 10)
    return Grade(float(len(sample.completion)))


@grader("test_async", description="an async grader: sleeps 0.3 s per sample, concurrently")
async def async_sleeper(sample: Sample, params) -> Grade:
    import asyncio

    await asyncio.sleep(0.3)
    return Grade(float(len(sample.completion)))


class OwnLimit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    timeout_s: float = Field(1.0, description="The grader's own time limit per sample.")


@grader("test_own_limit", params=OwnLimit, description="sleeps 1.5 s; has its own timeout_s")
def own_limit(sample: Sample, params: OwnLimit) -> Grade:
    time.sleep(1.5)
    return Grade(1.0)


@pytest.fixture(scope="module")
def scorer():
    with RewardScorer(workers=2, timeout_s=TIMEOUT) as s:
        yield s


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie is dead for our purposes
        return f.read().split(")")[-1].split()[0] != "Z"


def _timed(scorer, terms, samples):
    start = time.monotonic()
    rewards = scorer.score(terms, samples)
    return rewards, time.monotonic() - start


def test_stuck_sample_is_killed_alone_and_its_grandchild_too(scorer, tmp_path):
    pid_file = tmp_path / "child.pid"
    scorer.score([RewardTerm(grader="test_sleeps_forever")], [Sample("warm", {"n": i}) for i in range(2)])
    samples = [Sample("ok", {"n": i}) for i in range(6)]
    samples.insert(2, Sample("hang", {PID_FILE_FIELD: str(pid_file)}))
    rewards, seconds = _timed(scorer, [RewardTerm(grader="test_sleeps_forever")], samples)
    assert rewards[2].errors == {"test_sleeps_forever": "timeout"} and rewards[2].score == 0.0
    assert rewards[2].correct is False
    assert all(r.score == 1.0 and not r.errors for i, r in enumerate(rewards) if i != 2)
    assert seconds < TIMEOUT + SLACK
    grandchild = int(pid_file.read_text())
    time.sleep(0.1)
    assert not _alive(grandchild), "the stuck grader's subprocess survived the timeout"


def test_segfault_and_exception_are_isolated(scorer):
    samples = [Sample("crash"), Sample("fine"), Sample("raise"), Sample("fine too")]
    crash = scorer.score([RewardTerm(grader="test_segfaults")], samples[:2])
    assert crash[0].errors["test_segfaults"].startswith("worker_crashed: signal 11")
    assert crash[1].score == 1.0
    raised = scorer.score([RewardTerm(grader="test_raises")], samples[2:])
    assert raised[0].errors["test_raises"] == "grader_exception: ValueError: model output broke me"
    assert raised[1].score == 1.0


def test_memory_blow_up_is_an_error_not_a_dead_machine(scorer):
    rewards = scorer.score([RewardTerm(grader="test_hogs_memory")], [Sample("hog"), Sample("fine")])
    assert rewards[0].errors == {"test_hogs_memory": "grader_exception: MemoryError: "}
    assert rewards[1].score == 1.0


def test_pool_is_healthy_after_failures_and_timeouts_are_not_cached(scorer, tmp_path):
    term = RewardTerm(grader="test_sleeps_forever")
    hang = Sample("hang", {PID_FILE_FIELD: str(tmp_path / "pid")})
    for _ in range(2):  # graded again (not served from the cache), timed out again
        [reward], seconds = _timed(scorer, [term], [hang])
        assert reward.errors == {"test_sleeps_forever": "timeout"} and seconds < TIMEOUT + SLACK
    rewards = scorer.score([RewardTerm(grader="math")], [Sample(f"\\boxed{{{i}}}", {"answer": str(i)})
                                                         for i in range(20)])
    assert all(r.correct for r in rewards)


def test_a_grader_with_its_own_limit_gets_it_on_top_of_the_pool_timeout(scorer):
    [reward] = scorer.score([RewardTerm(grader="test_own_limit")], [Sample("slow")])
    assert reward.score == 1.0 and not reward.errors  # 1.5 s < pool 1.0 s + own 1.0 s


def test_an_interrupted_call_leaves_no_stale_results(scorer):
    term = RewardTerm(grader="test_slow_length")
    scorer.score([term], [Sample("1"), Sample("2")])  # both workers import the grader
    previous = signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
    signal.setitimer(signal.ITIMER_REAL, 0.2)
    try:
        with pytest.raises(KeyboardInterrupt):
            scorer.score([term], [Sample("x" * 9)])  # still running (0.9 s) when the next call starts
    finally:
        signal.signal(signal.SIGALRM, previous)
    [reward] = scorer.score([term], [Sample("x" * 3)])  # on the other worker, done first
    assert reward.score == 3.0
    time.sleep(0.8)  # the interrupted job's late result is dropped, and its worker free again
    assert [r.score for r in scorer.score([term], [Sample("y"), Sample("z")])] == [1.0, 1.0]


def test_score_from_a_thread(scorer):
    out = []
    thread = threading.Thread(target=lambda: out.append(scorer.score(
        [RewardTerm(grader="math")], [Sample("\\boxed{\\frac{\\sqrt{8}}{2}}", {"answer": "\\sqrt{2}"})])))
    thread.start()
    thread.join(timeout=30)
    assert out and out[0][0].correct is True


def test_async_grader_awaits_a_batch_concurrently(scorer):
    scorer.score([RewardTerm(grader="test_async")], [Sample("warm-up")])
    samples = [Sample("x" * i) for i in range(1, 9)]
    rewards, seconds = _timed(scorer, [RewardTerm(grader="test_async")], samples)
    assert [r.score for r in rewards] == [float(i) for i in range(1, 9)]
    assert seconds < 1.2, "8 samples of 0.3 s each were not awaited concurrently"


def test_mixing_gates_and_duplicate_terms(scorer):
    terms = [RewardTerm(grader="format", gate=True), RewardTerm(grader="math"),
             RewardTerm(grader="length", weight=0.5, params={"target": 10, "ramp": 10}),
             RewardTerm(grader="length", weight=1.0, params={"target": 1000})]
    good = Sample("<think>2+2</think> \\boxed{4}", {"answer": "4"})
    no_think = Sample("\\boxed{4}", {"answer": "4"})
    rewards = scorer.score(terms, [good, no_think])
    assert rewards[0].terms == {"format": 1.0, "math": 1.0, "length#2": -1.0, "length#3": -0.0}
    assert rewards[0].score == pytest.approx(1.0 + 1.0 - 0.5)
    assert rewards[0].metrics["format/tag:think"] == 1.0 and rewards[0].correct is True
    assert rewards[1].score == 0.0 and rewards[1].correct is True  # gate failed: only the gate counts


def test_cache_grades_repeated_answers_once(scorer):
    term = RewardTerm(grader="math")
    samples = [Sample(f"  \\boxed{{{i % 3}}}  ", {"answer": "1", "id": "cache-test"}) for i in range(30)]
    before = len(scorer._cache)
    rewards = scorer.score([term], samples)
    assert len(scorer._cache) - before == 3
    assert [r.correct for r in rewards] == [i % 3 == 1 for i in range(30)]


def test_close_leaves_no_process():
    s = RewardScorer(workers=2, timeout_s=TIMEOUT)
    s.score([RewardTerm(grader="number")], [Sample("42", {"answer": "42"})])
    pids = [w.process.pid for w in s.pool._workers]
    s.close()
    time.sleep(0.1)
    assert not any(_alive(p) for p in pids)


@pytest.mark.slow
@pytest.mark.parametrize("grader,completion,reference,error", [
    ("math", "The answer is $\\boxed{9^{9^{9^9}}}$", {"answer": "1"}, "timeout"),
    ("math", "$" + "\\frac{1}{2}+" * 100_000 + "1$", {"answer": "1"}, "completion_too_long"),
    ("math", "\\boxed{" + "(" * 10_000 + "1" + ")" * 10_000 + "}", {"answer": "1"}, "too_deeply_nested"),
    ("regex", "a" * 40 + "b", {}, "timeout"),
])
def test_pathological_inputs_return_in_time(scorer, grader, completion, reference, error):
    params = {"pattern": "^(a+)+$"} if grader == "regex" else {}
    [reward], seconds = _timed(scorer, [RewardTerm(grader=grader, params=params)], [Sample(completion, reference)])
    assert reward.score == 0.0 and reward.errors == {grader: error}
    assert seconds < TIMEOUT + SLACK
