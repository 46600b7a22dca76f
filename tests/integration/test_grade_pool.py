"""The worker pool and RewardScorer with real processes: CPU and wall limits, crashes, exceptions, threads, strays.

The misbehaving graders below are registered by decorator; worker processes import them from this module.
Some tests saturate every core with busy-loop processes of their own (always stopped): time limits are CPU
time, so a loaded machine must not time out healthy samples. No test assumes an idle machine: wall-clock
bounds are generous ("was cut", "well under a minute"); tight bounds are on CPU seconds.
Run: pytest tests/integration/test_grade_pool.py    (about a minute on 2 cores)
"""
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager

import pytest
from pydantic import BaseModel, ConfigDict, Field

from graders import Grade, Sample, grader
from graders.monitors import reward_hacking_metrics
from graders.rewards import RewardScorer, RewardTerm, mix

TIMEOUT = 1.0  # CPU seconds per sample
SLACK = 0.5  # a CPU hog is cut within TIMEOUT + SLACK seconds of CPU
WALL_FACTOR = 30.0  # `scorer`: a CPU hog is cut by CPU time unless the machine gives it under 1/30 of a core
QUICK_WALL_FACTOR = 3.0  # `quick_backstop`: sleeping samples are cut after 3 s of wall-clock time (no floor)
GENEROUS_S = 60.0  # wall-clock bound for "it came back": loose enough for any loaded machine
PID_FILE_FIELD = "pid_file"
BUSY_LOOP = "while :; do :; done"


@grader("test_sleeps_forever", description="sleeps forever on 'hang', after starting a grandchild process")
def sleeps_forever(sample: Sample, params) -> Grade:
    if sample.completion == "hang":
        child = subprocess.Popen(["sleep", "600"])
        with open(sample.reference[PID_FILE_FIELD], "w") as f:
            f.write(str(child.pid))
        time.sleep(10_000)
    return Grade(1.0, correct=True)


def _burn(seconds: float) -> None:
    start = time.process_time()
    while time.process_time() - start < seconds:
        pass


def _write_pid(sample: Sample, pid: int) -> None:
    with open(sample.reference[PID_FILE_FIELD], "w") as f:
        f.write(str(pid))


@grader("test_burns_cpu", description="'ok': burns 0.5 s of CPU; 'spin': burns CPU forever; 'child' / "
        "'setsid_child': waits on a grandchild that burns CPU forever; 'reaped_children': runs short CPU-burning "
        "children one after another, forever")
def burns_cpu(sample: Sample, params) -> Grade:
    mode = sample.completion
    if mode == "spin":
        while True:
            pass
    if mode in ("child", "setsid_child"):
        child = subprocess.Popen(["sh", "-c", BUSY_LOOP], start_new_session=mode == "setsid_child")
        _write_pid(sample, child.pid)
        child.wait()
    if mode == "reaped_children":
        while True:  # each child's CPU reaches the worker's counters only once it is reaped
            subprocess.run([sys.executable, "-c", "import time\nt = time.process_time()\n"
                            "while time.process_time() - t < 0.2: pass"])
    _burn(0.5)
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
    timeout_s: float = Field(4.0, description="The grader's own wall-clock limit per sample.")
    sleep_s: float = Field(0.0, description="Seconds to sleep.")
    cpu_s: float = Field(0.0, description="CPU seconds to burn in a child process (as a sandbox would).")


@grader("test_own_limit", params=OwnLimit, description="like the code grader: has its own timeout_s; "
        "burns cpu_s in a child process, then sleeps sleep_s")
def own_limit(sample: Sample, params: OwnLimit) -> Grade:
    if params.cpu_s:
        subprocess.run([sys.executable, "-c", f"import time\nt = time.process_time()\n"
                        f"while time.process_time() - t < {params.cpu_s}: pass"], check=True)
    time.sleep(params.sleep_s)
    return Grade(1.0)


@pytest.fixture(scope="module")
def scorer():
    with RewardScorer(workers=2, timeout_s=TIMEOUT, wall_factor=WALL_FACTOR) as s:
        yield s


@pytest.fixture(scope="module")
def quick_backstop():
    with RewardScorer(workers=2, timeout_s=TIMEOUT, wall_factor=QUICK_WALL_FACTOR, wall_min_s=0.0) as s:
        yield s


@contextmanager
def saturated_cores(per_core: int = 2):
    """`per_core` busy-loop processes per usable core, always stopped on the way out."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    loops = []
    try:
        for _ in range(per_core * cores):
            loops.append(subprocess.Popen(["sh", "-c", BUSY_LOOP]))
        yield len(loops)
    finally:
        for p in loops:
            p.kill()
        for p in loops:
            p.wait()


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


def test_stuck_sample_is_killed_alone_and_its_grandchild_too(quick_backstop, tmp_path):
    pid_file = tmp_path / "child.pid"
    term = RewardTerm(grader="test_sleeps_forever")
    quick_backstop.score([term], [Sample("warm", {"n": i}) for i in range(2)])
    samples = [Sample("ok", {"n": i}) for i in range(6)]
    samples.insert(2, Sample("hang", {PID_FILE_FIELD: str(pid_file)}))
    with saturated_cores():  # the healthy samples beside it must not time out on a busy machine
        rewards, seconds = _timed(quick_backstop, [term], samples)
    assert rewards[2].errors == {"test_sleeps_forever": "timeout_wall"} and rewards[2].score == 0.0
    assert rewards[2].correct is False
    assert all(r.score == 1.0 and not r.errors for i, r in enumerate(rewards) if i != 2)
    assert rewards[2].metrics["test_sleeps_forever/wall_s"] >= TIMEOUT * QUICK_WALL_FACTOR
    assert rewards[2].metrics["test_sleeps_forever/cpu_s"] < TIMEOUT  # it slept: cut by the backstop
    assert seconds < GENEROUS_S
    grandchild = int(pid_file.read_text())
    time.sleep(0.1)
    assert not _alive(grandchild), "the stuck grader's subprocess survived the timeout"


def test_healthy_samples_beside_a_cpu_hog_never_time_out_on_saturated_cores(scorer):
    term = RewardTerm(grader="test_burns_cpu")
    scorer.score([term], [Sample("warm", {"n": i}) for i in range(2)])
    samples = [Sample("ok", {"n": i}) for i in range(4)]  # 0.5 s of CPU each: over a second of wall-clock here
    samples.insert(1, Sample("spin"))
    with saturated_cores():
        rewards, seconds = _timed(scorer, [term], samples)
    assert [r.errors for i, r in enumerate(rewards) if i != 1] == [{}] * 4, "a healthy sample timed out"
    assert all(r.score == 1.0 for i, r in enumerate(rewards) if i != 1)
    assert rewards[1].errors == {"test_burns_cpu": "timeout_cpu"} and rewards[1].correct is False
    assert TIMEOUT <= rewards[1].metrics["test_burns_cpu/cpu_s"] <= TIMEOUT + SLACK
    assert seconds < GENEROUS_S


@pytest.mark.parametrize("mode", ["child", "setsid_child", "reaped_children"])
def test_cpu_burnt_by_a_grandchild_counts_toward_its_job(scorer, tmp_path, mode):
    pid_file = tmp_path / "child.pid"
    try:
        [reward], seconds = _timed(scorer, [RewardTerm(grader="test_burns_cpu")],
                                   [Sample(mode, {PID_FILE_FIELD: str(pid_file)})])
        assert reward.errors == {"test_burns_cpu": "timeout_cpu"}, "the grandchild's CPU time was not counted"
        assert TIMEOUT <= reward.metrics["test_burns_cpu/cpu_s"] <= TIMEOUT + SLACK
        assert seconds < GENEROUS_S
        if mode != "reaped_children":
            time.sleep(0.1)
            assert not _alive(int(pid_file.read_text())), "the CPU-burning grandchild survived the timeout"
    finally:  # never leave a busy loop behind, whatever happened
        if pid_file.exists() and _alive(int(pid_file.read_text())):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)


def test_both_kinds_of_timeout_are_transient_and_monitored():
    terms = [RewardTerm(grader="math")]
    for error in ("timeout_cpu", "timeout_wall"):
        reward = mix(terms, [Grade(0.0, error=error)])
        assert reward.correct is False and reward.errors == {"math": error}
    rewards = [mix(terms, [Grade(0.0, error=e)]) for e in ("timeout_cpu", "timeout_wall", "hedging")]
    rewards.append(mix(terms, [Grade(1.0, correct=True)]))
    metrics = reward_hacking_metrics(rewards, completion_lengths=[1, 2, 3, 4], group_size=2)
    assert metrics["hack/timeout_rate"] == 0.5 and metrics["hack/error_rate"] == 0.75


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


def test_pool_is_healthy_after_failures_and_timeouts_are_not_cached(quick_backstop, tmp_path):
    term = RewardTerm(grader="test_sleeps_forever")
    hang = Sample("hang", {PID_FILE_FIELD: str(tmp_path / "pid")})
    for _ in range(2):  # graded again (not served from the cache), timed out again
        [reward], seconds = _timed(quick_backstop, [term], [hang])
        assert reward.errors == {"test_sleeps_forever": "timeout_wall"} and seconds < GENEROUS_S
    rewards = quick_backstop.score([RewardTerm(grader="math")], [Sample(f"\\boxed{{{i}}}", {"answer": str(i)})
                                                                 for i in range(20)])
    assert all(r.correct for r in rewards)


def test_a_grader_with_its_own_limit_gets_it_on_top_of_the_wall_backstop(quick_backstop):
    term = RewardTerm(grader="test_own_limit", params={"sleep_s": 3.5})
    [reward] = quick_backstop.score([term], [Sample("slow")])
    assert reward.score == 1.0 and not reward.errors  # 3.5 s < backstop 3 s + own 4 s


def test_a_grader_with_its_own_limit_is_not_cut_by_the_pools_cpu_limit(scorer):
    # the code grader's programs run in sandbox processes, under the sandbox's own limits
    [reward] = scorer.score([RewardTerm(grader="test_own_limit", params={"cpu_s": 1.5})], [Sample("busy")])
    assert reward.score == 1.0 and not reward.errors  # 1.5 s of CPU > pool 1.0 s: not counted


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
    assert seconds < 8 * 0.3, "8 samples of 0.3 s each were not awaited concurrently"


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
    assert (s.pool.wall_limit(1.0), s.pool.wall_limit(10.0)) == (30.0, 100.0)  # default backstop: 10x, >= 30 s
    s.score([RewardTerm(grader="number")], [Sample("42", {"answer": "42"})])
    pids = [w.process.pid for w in s.pool._workers]
    s.close()
    time.sleep(0.1)
    assert not any(_alive(p) for p in pids)


@pytest.mark.slow
@pytest.mark.parametrize("grader,completion,reference,error", [
    ("math", "The answer is $\\boxed{9^{9^{9^9}}}$", {"answer": "1"}, "timeout_cpu"),
    ("math", "$" + "\\frac{1}{2}+" * 100_000 + "1$", {"answer": "1"}, "completion_too_long"),
    ("math", "\\boxed{" + "(" * 10_000 + "1" + ")" * 10_000 + "}", {"answer": "1"}, "too_deeply_nested"),
    ("regex", "a" * 40 + "b", {}, "timeout_cpu"),
])
def test_pathological_inputs_return_in_time(scorer, grader, completion, reference, error):
    params = {"pattern": "^(a+)+$"} if grader == "regex" else {}
    [reward], seconds = _timed(scorer, [RewardTerm(grader=grader, params=params)], [Sample(completion, reference)])
    assert reward.score == 0.0 and reward.errors == {grader: error}
    if error == "timeout_cpu":
        assert reward.metrics[f"{grader}/cpu_s"] <= TIMEOUT + SLACK
    assert seconds < GENEROUS_S
