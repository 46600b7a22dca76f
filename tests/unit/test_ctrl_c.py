"""Ctrl-C must stop a command even when it lands in a finalizer, where Python drops exceptions (a run plotting its
curves with matplotlib met this: it trained on, deaf to Ctrl-C, since the handler ignores later ones)."""
import subprocess
import sys
import textwrap

from engine_helpers import REPO, with_ctrl_c

LOST_IN_A_FINALIZER = textwrap.dedent("""
    import signal, sys, time, weakref
    from engine.train_cli import stop_on_ctrl_c

    STEP = 3600

    stop_on_ctrl_c()
    class Plot: pass
    plot = Plot()
    # Ctrl-C arrives while the callback runs: the handler raises inside it, where Python drops the exception
    ref = weakref.ref(plot, lambda _: signal.raise_signal(signal.SIGINT))
    try:
        del plot
        print("dropped, training on", flush=True)
        time.sleep(STEP)  # a training step, blocked in one call (the re-sent Ctrl-C must cut it short)
        print("never stopped")
    except KeyboardInterrupt:
        print("stopped")
""")


def run(script: str, ignore_sigint: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300,
                          preexec_fn=with_ctrl_c(ignored=ignore_sigint))


def test_a_ctrl_c_dropped_in_a_finalizer_is_delivered_again():
    done = run(LOST_IN_A_FINALIZER)
    assert done.stdout.splitlines() == ["dropped, training on", "stopped"], done.stderr
    assert "Exception ignored" not in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_other_exceptions_in_finalizers_are_still_reported():
    done = run(LOST_IN_A_FINALIZER.replace("signal.raise_signal(signal.SIGINT)", "1 / 0")
               .replace("STEP = 3600", "STEP = 0.1"))
    assert done.stdout.splitlines() == ["dropped, training on", "never stopped"], done.stderr
    assert "Exception ignored" in done.stderr and "ZeroDivisionError" in done.stderr


def test_a_background_job_keeps_ignoring_ctrl_c():
    done = run(LOST_IN_A_FINALIZER.replace("STEP = 3600", "STEP = 0.5"), ignore_sigint=True)
    assert done.stdout.splitlines() == ["dropped, training on", "never stopped"], done.stderr
