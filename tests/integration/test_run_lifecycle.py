"""A run's life outside the happy path, as a user lives it: Ctrl-C, restarting a run that never checkpointed,
resuming (what the logs and TensorBoard then show), evaluating a checkpoint, a task with no eval split, logs
that are not a terminal. Real `rlvr` subprocesses on the tiny model; no mocks."""
import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from engine_helpers import marked_processes, run_cli, start_cli


def steps_of(jsonl: Path) -> list[int]:
    return [json.loads(line)["step"] for line in jsonl.read_text().splitlines()]


def tensorboard(run_dir: Path, tag: str) -> tuple[list[int], list[float]]:
    """Steps and values of `tag` as TensorBoard's own reader shows them (every event file of the run, in order)."""
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    return [e.step for e in events.Scalars(tag)], [e.value for e in events.Scalars(tag)]


def lose_checkpoint(run_dir: Path, step: int) -> None:
    """The state a run killed while writing its checkpoint of `step` leaves: logs up to `step`, a `.tmp` dir."""
    final = run_dir / "checkpoints" / f"step-{step:06d}"
    final.rename(final.with_name(final.name + ".tmp"))


@pytest.mark.parametrize("nproc", [1, 2])
def test_ctrl_c_stops_with_a_resume_hint_and_leaves_no_process(tiny_config, tmp_path, nproc):
    run_dir, marker = tmp_path / "runs" / "tiny", uuid.uuid4().hex
    proc = start_cli("train", "--nproc", str(nproc), *tiny_config, "train.steps=100000", "train.save_every=1",
                     log_dir=tmp_path, marker=marker)
    try:
        deadline = time.monotonic() + 600
        while not (run_dir / "checkpoints" / "step-000001").is_dir():
            assert proc.poll() is None, (tmp_path / "stderr").read_text()[-3000:]
            assert time.monotonic() < deadline, "no checkpoint within 10 minutes"
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole foreground process group
        assert proc.wait(timeout=300) == 130  # (the run would train for hours if the signal were ignored)
        stderr = (tmp_path / "stderr").read_text()
        assert "Traceback" not in stderr, stderr[-3000:]
        assert f"the last checkpoint is {run_dir}/checkpoints/step-" in stderr
        assert f"rlvr train {'--nproc 2 ' if nproc == 2 else ''}--resume {run_dir}\n" in stderr
        deadline = time.monotonic() + 60  # orphans (the forkserver) notice their parent is gone, then exit
        while marked_processes(marker) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert marked_processes(marker) == {}
    finally:  # whatever happened, leave nothing running
        for pid in marked_processes(marker):  # the run itself included
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait()


def test_a_run_killed_before_its_first_checkpoint_restarts_or_resumes_in_place(tiny_config, tmp_path):
    run_dir = tmp_path / "runs" / "tiny"
    config = [*tiny_config, "log.tensorboard=true", "log.samples_per_step=2"]
    assert run_cli("train", *config).returncode == 0
    lose_checkpoint(run_dir, 2)

    again = run_cli("train", *config)  # the same command, the same run name
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"starting {run_dir} from scratch, in place" in again.stderr
    assert steps_of(run_dir / "metrics.jsonl") == [0, 1, 2]
    assert steps_of(run_dir / "samples.jsonl") == [1, 1, 2, 2]
    assert tensorboard(run_dir, "reward/mean")[0] == [1, 2]
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["step-000002"]  # the .tmp is gone

    lose_checkpoint(run_dir, 2)
    resumed = run_cli("train", "--resume", str(run_dir))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"starting {run_dir} from scratch, in place" in resumed.stderr
    assert steps_of(run_dir / "metrics.jsonl") == [0, 1, 2]
    assert steps_of(run_dir / "samples.jsonl") == [1, 1, 2, 2]
    assert tensorboard(run_dir, "eval/accuracy")[0] == [0, 2]
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["step-000002"]

    refused = run_cli("train", *config)  # a run with a complete checkpoint is only ever resumed
    assert refused.returncode == 2 and f"{run_dir} already holds a run" in refused.stderr


def test_resume_cuts_samples_and_tensorboard_back_to_the_checkpoint(tiny_config, tmp_path):
    run_dir = tmp_path / "runs" / "tiny"
    config = [*tiny_config, "train.steps=4", "train.save_every=2", "train.keep_checkpoints=5", "log.tensorboard=true",
              "log.samples_per_step=2"]
    assert run_cli("train", *config).returncode == 0
    lose_checkpoint(run_dir, 4)  # steps 3 and 4 are logged; the last complete checkpoint is step 2

    resumed = run_cli("train", "--resume", str(run_dir))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert steps_of(run_dir / "metrics.jsonl") == [0, 1, 2, 3, 4]
    assert steps_of(run_dir / "samples.jsonl") == [1, 1, 2, 2, 3, 3, 4, 4]
    steps, rewards = tensorboard(run_dir, "reward/mean")
    assert steps == [1, 2, 3, 4]
    assert rewards == pytest.approx([r["reward/mean"] for r in map(json.loads, (run_dir / "metrics.jsonl").open())
                                     if r["step"]])
    assert tensorboard(run_dir, "loss")[0] == [1, 2, 3, 4]
    assert tensorboard(run_dir, "eval/accuracy")[0] == [0, 4]
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["step-000002", "step-000004"]


def test_eval_says_which_config_it_used_and_finds_the_runs_from_any_checkpoint_path(tiny_config, tiny_model,
                                                                                  tmp_path):
    assert run_cli("train", *tiny_config, "tasks.0.label=sums", "train.steps=1", "eval.at_start=false").returncode == 0
    run_dir = tmp_path / "runs" / "tiny"
    ckpt = run_dir / "checkpoints" / "step-000001"
    for path in (f"{ckpt}/", str(ckpt / "hf")):  # (plain CKPT: test_train.py's test_eval_command_...)
        result = run_cli("eval", path, "eval.size=4")
        assert result.returncode == 0, result.stderr[-3000:]
        assert f"config {run_dir / 'config.yaml'}; tasks sums" in result.stderr, path
        assert "eval/sums/accuracy" in json.loads(result.stdout.strip().splitlines()[-1]), path
    plain = run_cli("eval", str(tiny_model), "eval.size=4")  # an HF directory that is not part of a run
    assert plain.returncode == 0, plain.stderr[-3000:]
    assert "config built-in default; tasks arithmetic" in plain.stderr


def test_a_run_without_eval_split_still_plots_its_curves(tiny_config, tmp_path):
    result = run_cli("train", *tiny_config, "tasks.0.params.eval_size=0")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "no task has an eval split" in result.stderr
    run_dir = tmp_path / "runs" / "tiny"
    assert not any("eval/accuracy" in row for row in map(json.loads, (run_dir / "metrics.jsonl").open()))
    assert (run_dir / "curves.png").stat().st_size > 10_000


def test_progress_off_a_terminal_is_one_plain_line_per_step(tiny_config):
    result = run_cli("train", *tiny_config, "log.progress=true")  # stderr is a pipe here, as in CI
    assert result.returncode == 0, result.stderr[-3000:]
    progress = [line for line in result.stderr.splitlines() if "reward" in line]
    assert [line.split()[:2] for line in progress] == [["step", "1/2"], ["step", "2/2"]], result.stderr
    assert "s/step" in progress[-1]
    assert "…" not in result.stderr and "━" not in result.stderr  # no frame of a live display


def on_a_small_disk(size: str, run_dir: Path, *args: str) -> subprocess.CompletedProcess:
    """`rlvr ARGS` with `run_dir`'s parent on a real tmpfs of `size`, mounted in a mount namespace of its own (gone
    when it ends); stdout ends with what the run's checkpoints directory then held."""
    script = ('mount -t tmpfs -o size="$0" tmpfs "$1" && shift && { "$@"; rc=$?; echo CHECKPOINTS; '
              f'ls -A {shlex.quote(str(run_dir / "checkpoints"))}; exit $rc; }}')
    return run_cli(*args, wrapper=("unshare", "--mount", "--propagation", "private", "sh", "-c", script, size,
                                   str(run_dir.parent)))


def can_mount_tmpfs() -> bool:
    """Whether this user may mount a tmpfs in a mount namespace of its own (root may)."""
    probe = ["unshare", "--mount", "--propagation", "private", "mount", "-t", "tmpfs", "-o", "size=4k", "tmpfs",
             str(Path.home())]
    return shutil.which("unshare") is not None and subprocess.run(probe, capture_output=True).returncode == 0


@pytest.mark.skipif(not can_mount_tmpfs(), reason="needs a tmpfs in a mount namespace (unshare --mount, as root)")
@pytest.mark.parametrize("size, kept", [("400k", None), ("1200k", "step-000001")])
def test_a_full_disk_stops_with_what_was_kept_and_how_to_go_on(tiny_config, tmp_path, size, kept):
    # a real full disk: the tiny run's files fit in `size`, its checkpoints (~700 KiB each) one or none
    run_dir = tmp_path / "runs" / "tiny"
    run_dir.parent.mkdir()
    result = on_a_small_disk(size, run_dir, "train", *tiny_config, "train.save_every=1", "train.keep_checkpoints=1")
    assert result.returncode == 2, result.stderr[-3000:]
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("error: the disk is full") and f"--resume {run_dir}" in error, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert (f"the last complete one, {kept}, is kept" if kept else "no checkpoint was complete yet") in error
    left = result.stdout.split("CHECKPOINTS\n")[-1].split()
    assert left == ([kept] if kept else [])  # the partial checkpoint is gone
