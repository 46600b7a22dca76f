"""The code that runs inside a sandbox: a zygote that forks a fresh tester and candidate for every job.

It runs under any python3 >= 3.8 with the standard library only: the host sends this file's source over the
worker's stdin at start-up (see `BOOTSTRAP`), so nothing of rlvr has to exist inside the sandbox.

Per job the zygote, which never reads a job itself, forks two processes:
  C, the candidate: closes every inherited descriptor, sends stdout/stderr into a pipe the zygote counts, waits
     for the program, applies the job's limits and runs the model's code. It was forked before the job was read,
     so no test and no expected value was ever in its memory.
  T, the tester (trusted): reads the job from the host, sends the program to C, runs the checks by calling into
     C over a pipe (arguments and return values cross as tagged JSON of plain types: a value of any other type
     comes back as an opaque handle that equals only itself), and reports the verdict to the zygote over a pipe
     only T holds. An exit code, a printed line or a forged object in C cannot produce a pass.
Then the zygote forwards the verdict (or `timeout`, `output_limit`, ...), kills every other process it can see,
reaps them and wipes the scratch directories, so one job cannot affect the next.

What is covered: the three test kinds (assert, call, stdio; a call's `fn_name` may be a method of a LeetCode-style
`class Solution`, a call case may list `alternatives` that also pass, a stdio spec may set `ignore_case`, `abs_tol`
and `rel_tol` for its token comparison), per-case partial counts, limits (CPU, address space,
file size, open files, processes), a seccomp filter on C (sockets other than AF_UNIX, io_uring and foreign
syscall ABIs refused: no network even on the sandbox's own loopback), wall-clock timeout, output cap, clean-up
between jobs, oom_score_adj 1000 (the kernel's OOM killer picks sandboxed code first).
What is not covered: isolation itself (namespaces, read-only mounts, no network) is the backend's job; a handle
(non-plain value) supports identity and calls only, no attribute access; arguments cross by value, so a test that
checks in-place mutation of its arguments fails.
"""
import ast
import builtins
import json
import math
import os
import re
import resource
import select
import shutil
import signal
import struct
import sys
import time

# The host starts `python3 -I -S -c BOOTSTRAP` and writes this file's source (10-digit length first).
BOOTSTRAP = (
    "import os\n"
    "def r(n):\n"
    " b=b''\n"
    " while len(b)<n:\n"
    "  c=os.read(0,n-len(b))\n"
    "  if not c:raise SystemExit(3)\n"
    "  b+=c\n"
    " return b\n"
    "exec(compile(r(int(r(10))),'rlvr-zygote','exec'))\n"
)
MAX_FRAME = 64 << 20
PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP = 4, 36, 38, 22
SECCOMP_MODE_FILTER = 2
OUTPUT_HEAD = 2048


# ----------------------------------------------------------------------------------------------- framing
def read_exact(fd, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return bytes(buf)


def recv(fd, limit=MAX_FRAME):
    (n,) = struct.unpack(">I", read_exact(fd, 4))
    if n > limit:
        raise ValueError("frame of %d bytes exceeds the %d byte limit" % (n, limit))
    return json.loads(read_exact(fd, n))


def send(fd, obj):
    data = json.dumps(obj).encode()
    view = memoryview(struct.pack(">I", len(data)) + data)
    while view:
        view = view[os.write(fd, view):]


# ------------------------------------------------------------------------------------ plain-value codec
def encode(x, handle):
    """Tagged JSON for plain values; `handle(x)` turns anything else into a {"r": id} reference.

    Instances of subclasses of plain types (Counter, namedtuple, IntEnum...) are sent as their base type's value:
    the tester only ever sees plain values, so a subclass's own __eq__ never runs on the trusted side.
    """
    t = type(x)
    if x is None or t is bool or t is int or t is float or t is str:
        return x
    if t is list:
        return [encode(v, handle) for v in x]
    if t is tuple:
        return {"t": [encode(v, handle) for v in x]}
    if t is dict:
        return {"d": [[encode(k, handle), encode(v, handle)] for k, v in x.items()]}
    if t is set or t is frozenset:
        return {"s" if t is set else "fs": [encode(v, handle) for v in x]}
    if t is bytes:
        return {"b": x.hex()}
    if t is complex:
        return {"c": [x.real, x.imag]}
    for base, unwrap in UNWRAP:
        if isinstance(x, base):
            value = unwrap(x)
            return encode(value, handle) if type(value) is base else handle(x)
    return handle(x)


UNWRAP = (
    (int, int.__int__), (float, float.__float__), (str, str.__str__),
    (list, lambda x: list(list.__iter__(x))), (tuple, lambda x: tuple(tuple.__iter__(x))),
    (dict, lambda x: dict(dict.items(x))), (set, lambda x: set(set.__iter__(x))),
    (frozenset, lambda x: frozenset(frozenset.__iter__(x))),
)


def decode(x, resolve):
    if type(x) is list:
        return [decode(v, resolve) for v in x]
    if type(x) is not dict:
        return x
    if len(x) != 1:
        return resolve(x)
    (tag, v), = x.items()
    if tag == "t":
        return tuple(decode(i, resolve) for i in v)
    if tag == "d":
        return {decode(k, resolve): decode(i, resolve) for k, i in v}
    if tag == "s":
        return {decode(i, resolve) for i in v}
    if tag == "fs":
        return frozenset(decode(i, resolve) for i in v)
    if tag == "b":
        return bytes.fromhex(v)
    if tag == "c":
        return complex(v[0], v[1])
    return resolve(x)


# ------------------------------------------------------------------------------------------ processes
def prctl(option, value):
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)
    except (ImportError, OSError, AttributeError):
        pass


# seccomp: the candidate may create AF_UNIX sockets only (pipes, multiprocessing), and no io_uring; syscalls of a
# foreign ABI (i386 `int 0x80`, x32) kill the process. (arch, socket, io_uring_setup) per machine.
SECCOMP_ARCHES = {"x86_64": (0xC000003E, 41, 425), "aarch64": (0xC00000B7, 198, 425)}


def socket_filter():
    """The BPF program as bytes, or None on an architecture this table does not know."""
    arch = SECCOMP_ARCHES.get(os.uname().machine)
    if arch is None:
        return None
    audit_arch, nr_socket, nr_io_uring_setup = arch
    ld, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06
    allow, deny, kill = 0x7FFF0000, 0x00050000 | 13, 0x80000000  # ALLOW, ERRNO(EACCES), KILL_PROCESS
    program = [
        (ld, 0, 0, 4),                    # 0: A = arch
        (jeq, 1, 0, audit_arch),          # 1: native ABI -> 3
        (ret, 0, 0, kill),                # 2
        (ld, 0, 0, 0),                    # 3: A = syscall number
        (jge, 5, 0, 0x40000000),          # 4: x32 ABI -> deny
        (jeq, 4, 0, nr_io_uring_setup),   # 5: io_uring (can open sockets) -> deny
        (jeq, 0, 2, nr_socket),           # 6: socket -> 7, else allow
        (ld, 0, 0, 16),                   # 7: A = low word of the domain argument
        (jeq, 0, 1, 1),                   # 8: AF_UNIX -> allow, else deny
        (ret, 0, 0, allow),               # 9
        (ret, 0, 0, deny),                # 10
    ]
    return b"".join(struct.pack("HBBI", *instruction) for instruction in program)


def install_socket_filter(program):
    """Apply the filter to this process and its future children; False when the kernel refused."""
    if program is None:
        return False
    import ctypes

    class Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    prog = Prog(len(program) // 8, program)
    return libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) == 0


def keep_fds(mapping):
    """In a fresh child: put each source fd on its target number, then close every other descriptor."""
    import fcntl

    staged = {target: fcntl.fcntl(source, fcntl.F_DUPFD, max(mapping) + 1) for target, source in mapping.items()}
    for target, source in staged.items():
        os.dup2(source, target)
    top = max(mapping)
    for fd in range(top):
        if fd not in mapping:
            try:
                os.close(fd)
            except OSError:
                pass
    os.closerange(top + 1, 1 << 16)


def apply_limits(limits, config, cpu_only=False):
    cpu = int(math.ceil(limits["timeout_s"])) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if cpu_only:
        return
    memory = limits["memory_mb"] << 20
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    size = limits["file_size_mb"] << 20
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits["open_files"], limits["open_files"]))
    if config["limit_nproc"]:
        # Counted per user inside the sandbox's user namespace: its init, the zygote and the tester come first.
        nproc = limits["processes"] + 3
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))


# ------------------------------------------------------------------------------------------ candidate
def candidate_main(from_t, to_t, config):
    """C: waits for the program, then serves calls from T. Everything after `exec` is untrusted."""
    job = recv(from_t)
    os.chdir(config["workdir"])
    apply_limits(job["limits"], config)
    install_socket_filter(config["socket_filter"])  # `rlvr sandbox check` reports when it did not hold
    if job["kind"] == "stdio":
        return serve_stdio(job, from_t, to_t, config)
    code = compile_program(job["program"], to_t)
    if code is None:
        return
    namespace = {"__name__": "solution", "__builtins__": builtins}
    try:
        exec(code, namespace)
    except BaseException as exc:
        return send(to_t, {"load_error": error_name(exc), "detail": "%s: %s" % (type(exc).__name__, exc)})
    send(to_t, {"loaded": True})
    handles = []

    def handle(x):
        handles.append(x)
        return {"r": len(handles) - 1, "type": type(x).__name__}

    def resolve(ref):
        return handles[ref["r"]]

    while True:
        request = recv(from_t)
        try:
            target = request["target"]
            fn = global_or_method(namespace, target) if type(target) is str else resolve(target)
            value = fn(*decode(request["args"], resolve), **decode(request["kwargs"], resolve))
            reply = {"value": encode(value, handle)}
        except BaseException as exc:
            reply = {"raise": [type(exc).__name__, str(exc)[:300]]}
        send(to_t, reply)


def global_or_method(namespace, name):
    """A global of the program, else (LeetCode style, as APPS and LiveCodeBench call them) the method `name` of a
    fresh `Solution()` instance."""
    if name in namespace or "Solution" not in namespace:
        return namespace[name]
    return getattr(namespace["Solution"](), name)


def compile_program(program, to_t):
    """The code object, or None after telling T why the program does not compile."""
    try:
        return compile(program, "solution.py", "exec")
    except (SyntaxError, ValueError, OverflowError, RecursionError) as exc:
        send(to_t, {"load_error": "syntax_error", "detail": "%s: %s" % (type(exc).__name__, exc)})
    except MemoryError:
        send(to_t, {"load_error": "memory", "detail": "MemoryError while compiling"})
    return None


def error_name(exc):
    if isinstance(exc, MemoryError):
        return "memory"
    if isinstance(exc, RecursionError):
        return "recursion"
    if isinstance(exc, SystemExit):
        return "exited"
    return "runtime_error"


def serve_stdio(job, from_t, to_t, config):
    """C for stdio jobs: one fresh child per case (fork), stdin from a file, stdout read back with a cap."""
    code = compile_program(job["program"], to_t)
    if code is None:
        return
    send(to_t, {"loaded": True})
    cap = job["limits"]["output_kb"] << 10
    while True:
        request = recv(from_t)
        with open("stdin.txt", "w") as f:
            f.write(request["input"])
        out_r, out_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            keep_fds({0: os.open("stdin.txt", os.O_RDONLY), 1: out_w, 2: 2})
            run_main(code)
        os.close(out_w)
        out, over = bytearray(), False
        while True:
            chunk = os.read(out_r, 65536)
            if not chunk:
                break
            out += chunk
            if len(out) > cap:
                over = True
                os.kill(pid, signal.SIGKILL)
                break
        os.close(out_r)
        _, status = os.waitpid(pid, 0)
        send(to_t, {"stdout": out[:cap].decode("utf-8", "replace"), "status": exit_status(status),
                    "output_limit": over})


def run_main(code):
    sys.stdin = open(0, "r", closefd=False)
    sys.stdout = open(1, "w", closefd=False)
    status = 0
    try:
        exec(code, {"__name__": "__main__", "__builtins__": builtins})
    except SystemExit as exc:
        status = exc.code if type(exc.code) is int else (0 if exc.code is None else 1)
    except BaseException:
        status = 1
    try:
        sys.stdout.flush()
    except BaseException:
        status = status or 1
    os._exit(status)


def exit_status(status):
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


# ------------------------------------------------------------------------------------------ tester
class CandidateGone(BaseException):
    """The candidate died or broke the protocol; not an Exception, so test code cannot swallow it."""


class CandidateError(Exception):
    """An exception raised in the candidate whose type is not a builtin exception."""


class Remote:
    """A non-plain value that lives in the candidate. Equal only to itself; calling it calls into C."""

    __slots__ = ("link", "ref", "type_name")

    def __init__(self, link, ref, type_name):
        self.link, self.ref, self.type_name = link, ref, type_name

    def __call__(self, *args, **kwargs):
        return self.link.call({"r": self.ref}, args, kwargs)

    def __repr__(self):
        return "<candidate %s object>" % self.type_name


class RemoteFunction:
    """A global name of the candidate's program, seen from the tester."""

    def __init__(self, link, name):
        self.link, self.name = link, name

    def __call__(self, *args, **kwargs):
        return self.link.call(self.name, args, kwargs)

    def __repr__(self):
        return "<candidate function %s>" % self.name


class CandidateLink:
    def __init__(self, to_c, from_c):
        self.to_c, self.from_c = to_c, from_c
        self.memory_error = False

    def request(self, message):
        try:
            send(self.to_c, message)
            reply = recv(self.from_c)
        except (EOFError, OSError, ValueError, RecursionError) as exc:
            raise CandidateGone(type(exc).__name__)
        if type(reply) is not dict:
            raise CandidateGone("malformed reply")
        return reply

    def handle(self, x):
        if type(x) is Remote and x.link is self:
            return {"r": x.ref}
        raise TypeError("cannot send a %s to the candidate" % type(x).__name__)

    def resolve(self, ref):
        if type(ref.get("r")) is not int:
            raise CandidateGone("malformed reference")
        return Remote(self, ref["r"], str(ref.get("type", "object"))[:100])

    def call(self, target, args, kwargs):
        reply = self.request({"target": target, "args": encode(list(args), self.handle),
                              "kwargs": encode(dict(kwargs), self.handle)})
        if "raise" in reply:
            name, detail = str(reply["raise"][0]), str(reply["raise"][1])
            self.memory_error = self.memory_error or name == "MemoryError"
            cls = getattr(builtins, name, None)
            if isinstance(cls, type) and issubclass(cls, Exception):
                raise cls(detail)
            raise CandidateError("%s: %s" % (name, detail))
        try:
            return decode(reply["value"], self.resolve)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CandidateGone("malformed value: %s" % exc)


def tester_main(host_in, ctl, to_c, from_c):
    """T: reads one job, runs its checks against C, reports the verdict on `ctl`."""
    try:
        job = recv(host_in)
    except EOFError:
        return send(ctl, {"eof": True})
    limits = job["limits"]
    send(ctl, {"start": True, "timeout_s": limits["timeout_s"], "output_kb": limits["output_kb"]})
    link = CandidateLink(to_c, from_c)
    verdict = {"passed": False, "cases_passed": 0, "cases_total": 0, "error": None, "detail": ""}
    try:
        tests = job["tests"]
        loaded = link.request({"kind": tests["kind"], "program": job["program"], "limits": limits})
        if "load_error" in loaded:
            verdict.update(error=str(loaded["load_error"])[:40], detail=str(loaded.get("detail", ""))[:500])
        else:
            HARNESSES[tests["kind"]](tests, link, verdict)
    except (CandidateGone, EOFError) as exc:
        verdict.update(error="crashed", detail="the candidate process ended (%s)" % exc)
    except Exception as exc:
        verdict.update(error="harness_error", detail="%s: %s" % (type(exc).__name__, exc))
    if verdict["error"] is None and link.memory_error and verdict["cases_passed"] < verdict["cases_total"]:
        verdict["error"] = "memory"
    verdict["passed"] = verdict["error"] is None and 0 < verdict["cases_total"] == verdict["cases_passed"]
    if verdict["error"] is None and not verdict["passed"]:
        verdict["error"] = "wrong_answer"
    send(ctl, {"verdict": verdict})


def note_failure(verdict, exc):
    if not verdict["detail"]:
        verdict["detail"] = ("%s: %s" % (type(exc).__name__, exc))[:500]


def run_assert(tests, link, verdict):
    """HumanEval style when the test defines check(candidate), else MBPP style (each top-level assert a case)."""
    namespace = {"__name__": "__test__", "__builtins__": builtins}
    if tests.get("prompt"):
        exec(compile(tests["prompt"], "prompt.py", "exec"), namespace)
    tree = ast.parse(tests["test"])
    stdlib = getattr(sys, "stdlib_module_names", ())
    for name in {n.id for n in ast.walk(tree) if type(n) is ast.Name}:
        if name in namespace or hasattr(builtins, name):
            continue
        # A module the solution imported and the test uses (MBPP's `sys.getsizeof`): the tester's own copy.
        namespace[name] = __import__(name) if name in stdlib else RemoteFunction(link, name)
    entry_point = tests.get("entry_point")
    if entry_point:
        namespace[entry_point] = RemoteFunction(link, entry_point)
    humaneval = any(type(s) is ast.FunctionDef and s.name == "check" for s in tree.body)
    for stmt in tree.body:
        is_case = type(stmt) is ast.Assert and not humaneval
        verdict["cases_total"] += is_case
        try:
            exec(compile(ast.Module(body=[stmt], type_ignores=[]), "test.py", "exec"), namespace)
        except Exception as exc:
            if not is_case:
                raise
            note_failure(verdict, exc)
            continue
        verdict["cases_passed"] += is_case
    if humaneval:
        verdict["cases_total"] = 1
        try:
            namespace["check"](RemoteFunction(link, entry_point))
            verdict["cases_passed"] = 1
        except Exception as exc:
            note_failure(verdict, exc)


def same_value(got, expected):
    """Exact plain-type equality; JSON has no tuples, so a tuple matches a list (and a list a tuple)."""
    sequences = (list, tuple)
    if type(expected) is float:
        return type(got) in (int, float) and (got == expected or (got != got and expected != expected))
    if type(expected) in sequences:
        return (type(got) in sequences and len(got) == len(expected)
                and all(same_value(g, e) for g, e in zip(got, expected)))
    if type(expected) is dict:
        return (type(got) is dict and got.keys() == expected.keys()
                and all(same_value(got[k], expected[k]) for k in expected))
    return type(got) is type(expected) and got == expected


def run_call(tests, link, verdict):
    for case in tests["cases"]:
        verdict["cases_total"] += 1
        try:
            got = link.call(tests["fn_name"], case.get("args", []), case.get("kwargs", {}))
        except Exception as exc:
            note_failure(verdict, exc)
            continue
        if any(same_value(got, expected) for expected in [case["expected"], *case.get("alternatives", ())]):
            verdict["cases_passed"] += 1
        else:
            note_failure(verdict, AssertionError("got %r" % (got,)))


NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
INTEGER = re.compile(r"[+-]?\d+")


def same_output(got, expected, tests):
    """Equal token by token (whitespace-separated, so spacing and blank lines never matter); `ignore_case`:
    case-insensitive; with `abs_tol` or `rel_tol` set, two number tokens also match when
    |got - expected| <= abs_tol + rel_tol * |expected| (numpy.isclose's rule), except that two integers must be
    equal (a 10-digit answer is never "close enough")."""
    if tests.get("ignore_case"):
        got, expected = got.lower(), expected.lower()
    got, expected = got.split(), expected.split()
    if got == expected:
        return True
    if ("abs_tol" not in tests and "rel_tol" not in tests) or len(got) != len(expected):
        return False
    abs_tol, rel_tol = float(tests.get("abs_tol", 0.0)), float(tests.get("rel_tol", 0.0))
    return all(g == e or close_numbers(g, e, abs_tol, rel_tol) for g, e in zip(got, expected))


def close_numbers(got, expected, abs_tol, rel_tol):
    if not (NUMBER.fullmatch(got) and NUMBER.fullmatch(expected)):
        return False
    try:
        if INTEGER.fullmatch(got) and INTEGER.fullmatch(expected):
            return int(got) == int(expected)
        return abs(float(got) - float(expected)) <= abs_tol + rel_tol * abs(float(expected))
    except (ValueError, OverflowError):  # past int()'s digit limit
        return False


def run_stdio(tests, link, verdict):
    for case in tests["cases"]:
        verdict["cases_total"] += 1
        reply = link.request({"input": case.get("input", "")})
        if reply.get("output_limit"):
            verdict.update(error="output_limit", detail="the program printed past the output cap")
            return
        if reply.get("status") == 0 and same_output(str(reply.get("stdout")), case["output"], tests):
            verdict["cases_passed"] += 1
        else:
            note_failure(verdict, AssertionError("exit status %s" % reply.get("status")))


HARNESSES = {"assert": run_assert, "call": run_call, "stdio": run_stdio}


# ------------------------------------------------------------------------------------------ zygote
def fork_job(config):
    """Fork C and T for one job; returns their pids and the zygote's ends of the control and output pipes."""
    out_r, out_w = os.pipe()
    t2c_r, t2c_w = os.pipe()
    c2t_r, c2t_w = os.pipe()
    ctl_r, ctl_w = os.pipe()
    c = os.fork()
    if c == 0:
        try:
            if config["kill_scope"] == "group":
                os.setsid()
            keep_fds({0: os.open(os.devnull, os.O_RDONLY), 1: out_w, 2: out_w, 3: t2c_r, 4: c2t_w})
            candidate_main(3, 4, config)
        finally:
            os._exit(0)
    t = os.fork()
    if t == 0:
        try:
            if config["kill_scope"] == "group":
                os.setsid()
            keep_fds({0: 0, 3: ctl_w, 4: t2c_w, 5: c2t_r})
            apply_limits({"timeout_s": 3600}, config, cpu_only=True)
            tester_main(0, 3, 4, 5)
        finally:
            os._exit(0)
    for fd in (out_w, t2c_r, t2c_w, c2t_r, c2t_w, ctl_w):
        os.close(fd)
    return c, t, ctl_r, out_r


def supervise(ctl_r, out_r):
    """Wait for T's verdict while counting C's output; returns (message, error, output head)."""
    deadline, cap, head, total = None, None, bytearray(), 0
    watched = [ctl_r, out_r]
    while True:
        wait = None if deadline is None else deadline - time.monotonic()
        if wait is not None and wait <= 0:
            return None, "timeout", head
        ready, _, _ = select.select(watched, [], [], wait)
        if out_r in ready:
            chunk = os.read(out_r, 65536)
            if not chunk:
                watched.remove(out_r)
            total += len(chunk)
            head += chunk[: max(0, OUTPUT_HEAD - len(head))]
            if cap is not None and total > cap:
                return None, "output_limit", head
        if ctl_r in ready:
            try:
                message = recv(ctl_r, 1 << 20)
            except (EOFError, ValueError):
                return None, "harness_error", head
            if "start" in message:
                deadline = time.monotonic() + float(message["timeout_s"])
                cap = int(message["output_kb"]) << 10
            else:
                return message, None, head


def kill_all(config, pids):
    """Kill every process of the job (all but the zygote in a private PID namespace) and reap them."""
    statuses = {}
    for _ in range(100):
        targets = [-1] if config["kill_scope"] == "namespace" else [-p for p in pids] + pids + orphans()
        for target in targets:
            try:
                os.kill(target, signal.SIGKILL)
            except OSError:
                pass
        while True:
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            statuses[pid] = status
        if not (any_other_process() if config["kill_scope"] == "namespace" else orphans()):
            break
    return statuses


def orphans():
    mine = str(os.getpid())
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as f:
                    if f.read().rsplit(")", 1)[1].split()[1] == mine:
                        found.append(int(entry))
            except (OSError, IndexError):
                pass
    return found


def any_other_process():
    me = os.getpid()
    return any(p.isdigit() and int(p) not in (1, me) for p in os.listdir("/proc"))


def wipe(directories):
    def unlock(function, path, _):
        os.chmod(os.path.dirname(path), 0o700)
        os.chmod(path, 0o700)
        function(path)

    for directory in directories:
        for entry in os.listdir(directory):
            path = os.path.join(directory, entry)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, onerror=unlock)
            else:
                os.unlink(path)


def crash_reason(status):
    """Name why C ended, from its wait status, when T saw it disappear."""
    if status is None:
        return "crashed"
    if os.WIFSIGNALED(status):
        return {signal.SIGXCPU: "timeout", signal.SIGXFSZ: "file_size"}.get(os.WTERMSIG(status), "crashed")
    return "exited"


def run_job(config):
    """One job: fork, supervise, reply to the host, then clean up. False when the host has closed the channel."""
    os.makedirs(config["workdir"], exist_ok=True)
    started = time.monotonic()
    c, t, ctl_r, out_r = fork_job(config)
    message, error, head = supervise(ctl_r, out_r)
    statuses = None
    if message is None or "verdict" not in message or message["verdict"]["error"] == "crashed":
        statuses = kill_all(config, [c, t])  # the candidate's exit status names the error
    if message is not None and message.get("eof"):
        verdict = None
    else:
        verdict = message["verdict"] if message else {"passed": False, "cases_passed": 0, "cases_total": 0,
                                                     "error": error, "detail": ""}
        if verdict["error"] == "crashed":
            verdict["error"] = crash_reason(statuses.get(c))
        verdict["output"] = head.decode("utf-8", "replace")
        verdict["duration_s"] = time.monotonic() - started
        send(1, verdict)  # before the clean-up: the next job cannot start until it is done anyway
    if statuses is None:
        kill_all(config, [c, t])
    os.close(ctl_r)
    os.close(out_r)
    wipe(config["scratch"])
    return verdict is not None


def main():
    config = recv(0)
    config["socket_filter"] = socket_filter()
    prctl(PR_SET_DUMPABLE, 0)
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    try:  # if the host runs out of memory anyway, the kernel kills sandboxed code first, not the trainer
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("1000")
    except OSError:
        pass
    if hasattr(sys, "set_int_max_str_digits"):
        sys.set_int_max_str_digits(0)
    send(1, {"ready": True, "python": sys.version.split()[0], "socket_filter": config["socket_filter"] is not None})
    while run_job(config):
        pass


if __name__ == "__main__":
    main()
