"""The isolation self-test behind `rlvr sandbox check`: real attacks on a real sandbox, one per property.

    from sandbox.check import run_checks
    for result in run_checks("bwrap"):
        print(result.name, result.ok, result.detail)

Each property runs hostile code in the sandbox (through the normal job path) and judges the result from the
host side where it can: a listening socket on the host's loopback, secret files in the host's home and working
directory, a host process to find and kill, files that must not appear on the host. The tests in
tests/sandbox/test_isolation.py run the same properties, per backend.

What is covered: no network (loopback included), no host file reads, no host writes, host processes invisible
and unkillable, fork bomb, memory bomb (one process and many), disk fill, infinite output, sleep past the timeout, background processes
and files gone after the job, and the pool still healthy afterwards.
What is not covered: kernel exploits, side channels, CPU starvation of neighbours.
"""
from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from sandbox import Job, Limits, Outcome, Sandbox, open_sandbox
from sandbox.base import worker_memory_mb

LIMITS = Limits(timeout_s=3.0, memory_mb=256, processes=16, output_kb=64, file_size_mb=16)
CONTAINED = "CONTAINED"


@dataclass
class CheckResult:
    name: str
    ok: bool
    detail: str


def probe(box: Sandbox, program: str, limits: Limits = LIMITS) -> tuple[Outcome, dict]:
    """Run `program` as a stdio job; it reports by printing one JSON object to stderr."""
    [outcome] = box.run([Job(program, {"kind": "stdio", "cases": [{"input": "", "output": CONTAINED}]}, limits)])
    lines = [line for line in outcome.output.splitlines() if line.startswith("{")]
    try:
        return outcome, json.loads(lines[-1]) if lines else {}
    except ValueError:
        return outcome, {}


def report(body: str) -> str:
    """Wrap attack code: it fills `leaks` (a list of strings); the wrapper reports and prints CONTAINED."""
    return ("import json, os, sys\nleaks = []\n" + body +
            "\nprint(json.dumps({'leaks': leaks}), file=sys.stderr)\nprint('CONTAINED' if not leaks else 'LEAK')\n")


def verdict(outcome: Outcome, facts: dict) -> tuple[bool, str]:
    leaks = facts.get("leaks")
    if leaks is None:
        return False, f"probe did not report (error {outcome.error}: {outcome.detail[:200]})"
    return (not leaks and outcome.passed), "; ".join(leaks) or "contained"


def check_network(box: Sandbox) -> tuple[bool, str]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    try:
        outcome, facts = probe(box, report(f"""
import socket
for host, port in [("127.0.0.1", {port}), ("1.1.1.1", 53), ("8.8.8.8", 53), ("172.17.0.1", 2375)]:
    try:
        socket.create_connection((host, port), timeout=0.5).close()
        leaks.append("connected to %s:%d" % (host, port))
    except OSError:
        pass
try:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    socket.create_connection(listener.getsockname(), timeout=0.5).close()
    leaks.append("talked to itself over the sandbox's own loopback")
except OSError:
    pass
try:
    names = [n for _, n in socket.if_nameindex() if n != "lo"]
    if names:
        leaks.append("interfaces %s" % names)
except OSError:
    pass
"""))
    finally:
        server.close()
    return verdict(outcome, facts)


def host_paths() -> list[Path]:
    """Places on the host that hold or could hold secrets: home, working directory, /tmp."""
    return [Path.home(), Path.cwd(), Path("/tmp")]


def check_host_reads(box: Sandbox) -> tuple[bool, str]:
    secret = secrets.token_hex(16)
    planted = []
    for directory in host_paths():
        path = directory / f".rlvr-check-secret-{secret[:8]}"
        try:
            path.write_text(secret)
            os.chmod(path, 0o644)
            planted.append(str(path))
        except OSError:
            continue
    try:
        outcome, facts = probe(box, report(f"""
for path in {planted!r} + ["/etc/shadow", "/root/.bash_history", "/var/run/docker.sock"]:
    try:
        with open(path) as f:
            data = f.read()
        leaks.append("read %s" % path)
    except OSError:
        pass
"""))
    finally:
        for path in planted:
            os.unlink(path)
    return verdict(outcome, facts)


def check_host_writes(box: Sandbox) -> tuple[bool, str]:
    tag = secrets.token_hex(6)
    targets = [f"/usr/rlvr-probe-{tag}", f"/etc/rlvr-probe-{tag}", f"/rlvr-probe-{tag}", f"/bin/rlvr-probe-{tag}"]
    targets += [str(d / f"rlvr-probe-{tag}") for d in (Path.home(), Path.cwd())]
    outcome, facts = probe(box, report(f"""
for path in {targets!r}:
    try:
        with open(path, "w") as f:
            f.write("x")
        if not path.startswith("/tmp"):
            leaks.append("wrote %s inside the sandbox" % path)
    except OSError:
        pass
"""))
    on_host = [t for t in targets if os.path.exists(t)]
    for path in on_host:
        os.unlink(path)
    ok, detail = verdict(outcome, facts)
    if on_host:
        return False, f"appeared on the host: {on_host}"
    return ok, detail


def check_host_processes(box: Sandbox) -> tuple[bool, str]:
    sleeper = subprocess.Popen(["sleep", "600"])
    try:
        outcome, facts = probe(box, report(f"""
import signal
mine = [p for p in os.listdir("/proc") if p.isdigit()]
if len(mine) > 12:
    leaks.append("%d processes visible" % len(mine))
for p in mine:
    try:
        with open("/proc/%s/cmdline" % p, "rb") as f:
            if b"sleep" in f.read():
                leaks.append("saw the host's sleep as pid %s" % p)
    except OSError:
        pass
for pid in ({sleeper.pid}, 1):
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
"""))
        time.sleep(0.2)
        alive = sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()
    ok, detail = verdict(outcome, facts)
    return (ok and alive), (detail if alive else "the host process was killed")


def check_fork_bomb(box: Sandbox) -> tuple[bool, str]:
    outcome, facts = probe(box, """
import json, os, sys, time
n = 0
try:
    while n < 5000:
        if os.fork() == 0:
            time.sleep(30)
            os._exit(0)
        n += 1
except OSError:
    pass
print(json.dumps({"forks": n}), file=sys.stderr)
""")
    forks = facts.get("forks")
    if forks is None:
        return False, f"probe did not report (error {outcome.error})"
    return forks < LIMITS.processes, f"{forks} forks succeeded, then fork failed (limit {LIMITS.processes} processes)"


def check_memory_bomb(box: Sandbox) -> tuple[bool, str]:
    outcome, facts = probe(box, report("""
chunks = []
try:
    for _ in range(64):
        chunks.append(bytearray(64 << 20))
    leaks.append("allocated %d MiB" % (64 * len(chunks)))
except MemoryError:
    print(json.dumps({"allocated_mb": 64 * len(chunks)}), file=sys.stderr)
chunks = None
"""))
    return verdict(outcome, facts)


def check_memory_across_processes(box: Sandbox) -> tuple[bool, str]:
    """Many processes each just under the per-process limit: only a per-worker cap (cgroup) stops the sum."""
    outcome, facts = probe(box, f"""
import json, os, select, sys, time
r, w = os.pipe()
pids = []
for _ in range({LIMITS.processes - 2}):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        chunks = []
        try:
            for _ in range({LIMITS.memory_mb // 32}):
                chunks.append(b"x" * (32 << 20))
        except MemoryError:
            pass
        os.write(w, ("%d %d\\n" % (os.getpid(), 32 * len(chunks))).encode())
        time.sleep(60)
        os._exit(0)
    pids.append(pid)
os.close(w)
time.sleep(4)
data = b""
while select.select([r], [], [], 0.1)[0]:
    chunk = os.read(r, 65536)
    if not chunk:
        break
    data += chunk
alive = {{pid for pid in pids if os.waitpid(pid, os.WNOHANG) == (0, 0)}}
held = sum(int(mb) for pid, mb in (line.split() for line in data.decode().splitlines()) if int(pid) in alive)
print(json.dumps({{"held_mb": held, "alive": len(alive), "started": len(pids)}}), file=sys.stderr)
""", LIMITS.model_copy(update={"timeout_s": 10.0}))
    held, cap = facts.get("held_mb"), worker_memory_mb(LIMITS)
    if held is None:
        return False, f"probe did not report (error {outcome.error})"
    detail = f"{facts['started']} processes held {held} MiB at once (worker cap {cap} MiB)"
    if held > cap:
        detail += "; no per-worker memory cap: run as root for a cgroup (bwrap) or use docker"
    return held <= cap, detail


def check_disk_fill(box: Sandbox) -> tuple[bool, str]:
    outcome, facts = probe(box, """
import json, os, sys
written = 0
for directory in ("/tmp", "/dev/shm", "."):
    i = 0
    while written < (4 << 30):
        try:
            with open(os.path.join(directory, "fill-%d" % i), "wb") as f:
                for _ in range(16):
                    f.write(b"x" * (1 << 20))
                    written += 1 << 20
        except OSError:
            break
        i += 1
print(json.dumps({"written_mb": written >> 20}), file=sys.stderr)
""", LIMITS.model_copy(update={"timeout_s": 20.0}))
    written = facts.get("written_mb")
    if written is None:
        return False, f"probe did not report (error {outcome.error})"
    return written < 2048, f"writes stopped after {written} MiB"


def check_output(box: Sandbox) -> tuple[bool, str]:
    started = time.monotonic()
    outcome, _ = probe(box, "while True:\n    print('x' * 4096)\n")
    took = time.monotonic() - started
    return outcome.error == "output_limit", f"error {outcome.error} after {took:.2f}s"


def check_timeout(box: Sandbox) -> tuple[bool, str]:
    started = time.monotonic()
    outcome, _ = probe(box, "import time\ntime.sleep(60)\n")
    took = time.monotonic() - started
    ok = outcome.error == "timeout" and took < LIMITS.timeout_s + 2
    return ok, f"error {outcome.error} after {took:.2f}s (timeout {LIMITS.timeout_s}s)"


def check_leftovers(box: Sandbox) -> tuple[bool, str]:
    first, facts = probe(box, """
import json, os, sys, time
r, w = os.pipe()
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.write(w, str(os.getpid()).encode())
        time.sleep(600)
    os._exit(0)
pid = int(os.read(r, 32))
for path in ("/tmp/leftover", "/dev/shm/leftover"):
    try:
        open(path, "w").write("x")
    except OSError:
        pass
print(json.dumps({"daemon": pid}), file=sys.stderr)
""")
    daemon = facts.get("daemon")
    if daemon is None:
        return False, f"first job did not report (error {first.error})"
    second, facts = probe(box, report(f"""
try:
    os.kill({daemon}, 0)
    leaks.append("background process {daemon} still alive")
except OSError:
    pass
for path in ("/tmp/leftover", "/dev/shm/leftover"):
    if os.path.exists(path):
        leaks.append("%s survived" % path)
"""))
    return verdict(second, facts)


def check_healthy(box: Sandbox) -> tuple[bool, str]:
    [outcome] = box.run([Job("def f(x):\n    return x * 2\n",
                             {"kind": "call", "fn_name": "f", "cases": [{"args": [21], "expected": 42}]}, LIMITS)])
    return outcome.passed, "a normal job still passes" if outcome.passed else f"error {outcome.error}"


CHECKS: dict[str, Callable[[Sandbox], tuple[bool, str]]] = {
    "no network (loopback included)": check_network,
    "no host file reads": check_host_reads,
    "no host file writes": check_host_writes,
    "host processes invisible and unkillable": check_host_processes,
    "fork bomb contained": check_fork_bomb,
    "memory bomb contained": check_memory_bomb,
    "memory bomb across processes contained": check_memory_across_processes,
    "disk fill contained": check_disk_fill,
    "infinite output capped": check_output,
    "sleep past the timeout killed": check_timeout,
    "background processes and files gone after the job": check_leftovers,
    "pool healthy afterwards": check_healthy,
}


def run_checks(backend: str, **options) -> list[CheckResult]:
    """Every property against one fresh single-worker pool of `backend`."""
    results = []
    with open_sandbox(backend, workers=1, limits=LIMITS, **options) as box:
        for name, check in CHECKS.items():
            try:
                ok, detail = check(box)
            except Exception as exc:  # a check that crashes is a failed property, reported, not raised
                ok, detail = False, f"check crashed: {type(exc).__name__}: {exc}"
            results.append(CheckResult(name, ok, detail))
    return results
