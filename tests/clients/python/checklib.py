"""Small helpers shared by the Python client checks.

Every check prints what it verified, stops at the first failure with what was
expected and what came back, and bounds every wait (saying what it waited for).
"""

import os
import signal
import sys
import time
import traceback


class CheckFailed(Exception):
    pass


class Check:
    def __init__(self, name, total_timeout_s=300):
        self.name = name
        self.current = "start-up"
        self.passed = 0
        self.total_timeout_s = total_timeout_s

    # -- reporting -------------------------------------------------------
    def step(self, what):
        self.current = what
        print(f"[{self.name}] -- {what}", flush=True)

    def ok(self, what):
        self.passed += 1
        print(f"[{self.name}] ok: {what}", flush=True)

    def note(self, what):
        print(f"[{self.name}] note: {what}", flush=True)

    def fail(self, what):
        raise CheckFailed(what)

    # -- assertions ------------------------------------------------------
    def eq(self, what, got, want):
        if got != want:
            if isinstance(got, list) and isinstance(want, list):
                i = next((i for i, (g, w) in enumerate(zip(got, want)) if g != w), min(len(got), len(want)))
                self.fail(f"{what}: expected {len(want)} items, got {len(got)}; first difference at "
                          f"index {i}: expected {want[i] if i < len(want) else '(nothing)'!r}, "
                          f"got {got[i] if i < len(got) else '(nothing)'!r}")
            self.fail(f"{what}: expected {want!r}, got {got!r}")
        shown = repr(want)
        if len(shown) > 240:
            shown = f"{shown[:240]}... ({len(shown)} characters)"
        self.ok(f"{what} = {shown}")
        return got

    def true(self, what, cond, detail=""):
        if not cond:
            self.fail(f"{what}{': ' + detail if detail else ''}")
        self.ok(what)

    def wait_until(self, what, fn, timeout_s=15.0, interval_s=0.1):
        """Polls fn() until it returns a truthy value; returns that value.

        fn may raise; the last exception or value is reported on timeout."""
        deadline = time.monotonic() + timeout_s
        last = None
        while True:
            try:
                value = fn()
                if value:
                    return value
                last = value
            except CheckFailed:
                raise
            except Exception as e:  # noqa: BLE001 - reported on timeout
                last = f"{type(e).__name__}: {e}"
            if time.monotonic() >= deadline:
                self.fail(f"timed out after {timeout_s:.0f}s waiting for {what} (last: {last!r})")
            time.sleep(interval_s)

    # -- running ---------------------------------------------------------
    def run(self, body):
        def on_alarm(signum, frame):
            print(f"[{self.name}] FAIL: whole check exceeded {self.total_timeout_s}s "
                  f"while at step: {self.current}", flush=True)
            os._exit(1)

        signal.signal(signal.SIGALRM, on_alarm)
        signal.alarm(self.total_timeout_s)
        code = 0
        try:
            body(self)
            print(f"[{self.name}] PASS ({self.passed} assertions)", flush=True)
        except CheckFailed as e:
            print(f"[{self.name}] FAIL at step '{self.current}': {e}", flush=True)
            code = 1
        except Exception:  # noqa: BLE001
            print(f"[{self.name}] FAIL at step '{self.current}' with an unexpected exception:",
                  flush=True)
            traceback.print_exc()
            sys.stderr.flush()
            code = 1
        signal.alarm(0)
        sys.stdout.flush()
        sys.stderr.flush()
        # Client libraries may leave non-daemon threads behind; don't let them
        # keep the process (and CI) waiting.
        os._exit(code)
