"""`rlvr train --nnodes 2` as two machines run it, simulated by two launcher processes on this one (127.0.0.1 only;
both "nodes" share the disk, as nodes share a filesystem in a real cluster). Real `rlvr` subprocesses on the tiny
model; no mocks.

What proves the two launchers trained one run together: the final weights equal, tensor for tensor, those of a
single-machine `--nproc 2` run with the same seed, and differ from a 1-process run's (each rank samples its own
share of the prompts with its own seed, and the gradients are averaged across ranks)."""
import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from engine_helpers import marked_processes, run_cli, start_cli


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_two_nodes(log_dir: Path, marker: str, *args: str) -> list[subprocess.Popen]:
    """`rlvr train --nnodes 2 --node-rank R ... ARGS` for R = 0 and 1, each as a terminal's job; node R's stdout and
    stderr go to `log_dir`/nodeR/, its processes carry the marker `marker`-R."""
    port, procs = str(free_port()), []
    for node in (0, 1):
        (log_dir / f"node{node}").mkdir(parents=True)
        procs.append(start_cli("train", "--nnodes", "2", "--node-rank", str(node), "--master-addr", "127.0.0.1",
                               "--master-port", port, *args, log_dir=log_dir / f"node{node}",
                               marker=f"{marker}-{node}"))
    return procs


def wait_all(procs: list[subprocess.Popen], timeout: float = 600) -> list[int]:
    deadline = time.monotonic() + timeout
    return [p.wait(timeout=max(1.0, deadline - time.monotonic())) for p in procs]


def output(log_dir: Path, node: int, stream: str = "stderr") -> str:
    return (log_dir / f"node{node}" / stream).read_text()


def kill_leftovers(marker: str, procs: list[subprocess.Popen]) -> None:
    for node in (0, 1):
        for pid in marked_processes(f"{marker}-{node}"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    for p in procs:
        p.wait()


def steps_of(run_dir: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def final_weights(run_dir: Path, step: int = 2) -> dict[str, torch.Tensor]:
    return load_file(run_dir / "checkpoints" / f"step-{step:06d}" / "hf" / "model.safetensors")


@pytest.mark.slow
def test_two_nodes_train_one_run_like_two_local_processes_and_resume(tiny_config, tmp_path):
    config = [*tiny_config, "train.zero_stage=2", "train.save_every=1", "train.keep_checkpoints=2"]
    for name, launch in (("two-procs", ["--nproc", "2"]), ("one-proc", [])):
        result = run_cli("train", *launch, *config, f"log.run_name={name}")
        assert result.returncode == 0, result.stderr[-3000:]
    runs, marker = tmp_path / "runs", uuid.uuid4().hex
    run_dir = runs / "two-nodes"

    procs = start_two_nodes(tmp_path / "run", marker, *config, "log.run_name=two-nodes")
    try:
        codes = wait_all(procs)
    finally:
        kill_leftovers(marker, procs)
    assert codes == [0, 0], output(tmp_path / "run", 0)[-3000:] + output(tmp_path / "run", 1)[-3000:]
    summary = json.loads(output(tmp_path / "run", 0, "stdout").strip().splitlines()[-1])  # global rank 0's
    assert summary["steps"] == 2 and summary["run_dir"] == str(run_dir)
    assert '"run_dir"' not in output(tmp_path / "run", 1, "stdout")  # rank 1 prints no summary
    assert sorted(p.name for p in runs.iterdir()) == ["one-proc", "two-nodes", "two-procs"]  # one run directory
    assert steps_of(run_dir) == [0, 1, 2]
    ckpt = run_dir / "checkpoints" / "step-000002"
    assert {p.name for p in ckpt.glob("rng-rank*.pt")} == {"rng-rank0.pt", "rng-rank1.pt"}
    assert {p.name for p in (ckpt / "ds" / "state").glob("zero_pp_rank_*_optim_states.pt")} == {
        "zero_pp_rank_0_mp_rank_00_optim_states.pt", "zero_pp_rank_1_mp_rank_00_optim_states.pt"}  # ZeRO-2 shards
    got, two_procs, one_proc = (final_weights(runs / name) for name in ("two-nodes", "two-procs", "one-proc"))
    for key, value in two_procs.items():
        torch.testing.assert_close(got[key], value, rtol=1e-5, atol=1e-7, msg=key)
    assert any(not torch.allclose(got[key], one_proc[key]) for key in got)  # (so the check above is not vacuous)
    expected = {r["step"]: r for r in map(json.loads, (runs / "two-procs" / "metrics.jsonl").open())}
    for row in map(json.loads, (run_dir / "metrics.jsonl").open()):
        if row["step"]:
            assert row["loss"] == pytest.approx(expected[row["step"]]["loss"], rel=1e-5, abs=1e-7), row["step"]
            assert row["reward/mean"] == expected[row["step"]]["reward/mean"], row["step"]

    # the run lost its last checkpoint (killed while writing it); both nodes resume from step 1
    (ckpt).rename(ckpt.with_name(ckpt.name + ".tmp"))
    procs = start_two_nodes(tmp_path / "resume", marker, "--resume", str(run_dir))
    try:
        codes = wait_all(procs)
    finally:
        kill_leftovers(marker, procs)
    assert codes == [0, 0], output(tmp_path / "resume", 0)[-3000:] + output(tmp_path / "resume", 1)[-3000:]
    assert steps_of(run_dir) == [0, 1, 2]
    got = final_weights(run_dir)
    for key, value in two_procs.items():
        torch.testing.assert_close(got[key], value, rtol=1e-5, atol=1e-7, msg=key)


@pytest.mark.slow
@pytest.mark.parametrize("stopped", [0, 1])
def test_ctrl_c_on_one_node_stops_it_and_the_other_loses_contact(tiny_config, tmp_path, stopped):
    run_dir, marker, other = tmp_path / "runs" / "tiny", uuid.uuid4().hex, 1 - stopped
    procs = start_two_nodes(tmp_path, marker, *tiny_config, "train.steps=100000", "train.save_every=1")
    try:
        deadline = time.monotonic() + 600
        while not (run_dir / "checkpoints" / "step-000001").is_dir():
            assert all(p.poll() is None for p in procs), output(tmp_path, 0)[-3000:] + output(tmp_path, 1)[-3000:]
            assert time.monotonic() < deadline, "no checkpoint within 10 minutes"
            time.sleep(0.1)
        os.killpg(procs[stopped].pid, signal.SIGINT)  # a terminal's Ctrl-C on that node
        assert procs[stopped].wait(timeout=300) == 130
        assert procs[other].wait(timeout=300) == 1  # its collectives fail once the peer is gone
        port = procs[0].args[procs[0].args.index("--master-port") + 1]
        for node, said in ((stopped, "\ninterrupted: the last checkpoint is"),
                           (other, "error: lost contact with the other ranks")):
            stderr = output(tmp_path, node)
            assert "Traceback" not in stderr, stderr[-3000:]
            assert said in stderr and f"{run_dir}/checkpoints/step-" in stderr, stderr[-3000:]
            assert (f"on every node (this is --node-rank {node} of 2):\n  rlvr train --nnodes 2 --node-rank {node} "
                    f"--master-addr 127.0.0.1 --master-port {port} --resume {run_dir}\n") in stderr
        deadline = time.monotonic() + 60  # orphans (the forkserver) notice their parent is gone, then exit
        while (marked_processes(f"{marker}-0") or marked_processes(f"{marker}-1")) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert marked_processes(f"{marker}-{stopped}") == {}
        assert marked_processes(f"{marker}-{other}") == {}
    finally:
        kill_leftovers(marker, procs)


@pytest.mark.slow
def test_nodes_started_with_different_configs_stop_naming_the_difference(tiny_config, tmp_path):
    marker, port = uuid.uuid4().hex, str(free_port())
    procs = []
    for node, lr in ((0, "0.01"), (1, "0.02")):
        (tmp_path / f"node{node}").mkdir()
        procs.append(start_cli("train", "--nnodes", "2", "--node-rank", str(node), "--master-addr", "127.0.0.1",
                               "--master-port", port, *tiny_config, f"train.lr={lr}",
                               log_dir=tmp_path / f"node{node}", marker=f"{marker}-{node}"))
    try:
        assert wait_all(procs) == [2, 2]
    finally:
        kill_leftovers(marker, procs)
    for node in (0, 1):
        stderr = output(tmp_path, node)
        assert "node 1 (rank 1, host " in stderr and "train.lr: 0.02 there, 0.01 on rank 0" in stderr, stderr[-3000:]
        assert "Traceback" not in stderr


@pytest.mark.parametrize("args, message", [
    (["--nnodes", "2"], "--nnodes 2 needs --master-addr HOST"),
    (["--nnodes", "2", "--node-rank", "2", "--master-addr", "127.0.0.1"],
     "--node-rank 2 is out of range: with --nnodes 2 it is 0 to 1."),
    (["--nnodes", "2", "--master-addr", "127.0.0.1", "--master-port", "70000"],
     "--master-port must be a TCP port number, 1 to 65535; got 70000."),
    (["--master-addr", "127.0.0.1"], "are for a run over several machines; add --nnodes N."),
    (["--nnodes", "0"], "--nnodes must be at least 1, got 0."),
    (["--nproc", "0"], "--nproc must be at least 1, got 0."),
    (["--nnodes", "2", "--master-addr", "127.0.0.1"], "--nnodes 2 needs log.run_name=NAME"),
], ids=["no-master-addr", "node-rank-range", "port-range", "addr-without-nnodes", "nnodes-0", "nproc-0",
        "no-run-name"])
def test_bad_node_flags_are_one_line_with_status_2(args, message):
    result = run_cli("train", *args, timeout=120)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
