"""Functions that spawned worker processes run in the tests of parallel
execution (a module of its own, so that a spawned process can import them)."""
import os
import time

from nnumpy.datasets import DownloadError


def sleep_then(seconds, value):
    time.sleep(seconds)
    return value


def fail_after(seconds):
    time.sleep(seconds)
    raise DownloadError("x.gz", [("http://127.0.0.1:9/x.gz", "HTTP 404 Not Found")], dataset="mnist")


class Unpicklable(Exception):
    def __init__(self):
        super().__init__("carries a lambda")
        self.callback = lambda: None


def fail_unpicklably(seconds):
    time.sleep(seconds)
    raise Unpicklable()


def die(seconds):
    time.sleep(seconds)
    os._exit(3)


def call(fn, *args):
    """Run ``fn(*args)``: lets one pool run tasks of different functions."""
    return fn(*args)


def die_first(marker, times, value):
    """Kill the worker process on the first ``times`` calls (counted in the file ``marker``), then return."""
    with open(marker, "a+") as f:
        f.seek(0)
        tries = len(f.read())
        f.write("x")
    if tries < times:
        os._exit(9)
    return value


class FailingTrial:
    """nnumpy.trials.run_trial, but the trial ``trial_id`` raises (each call's trial id is appended to
    the file ``log``)."""

    def __init__(self, trial_id, log):
        self.trial_id, self.log = trial_id, log

    def __call__(self, trial, data):
        from nnumpy.trials import run_trial
        with open(self.log, "a") as f:
            f.write(trial["id"] + "\n")
        if trial["id"] == self.trial_id:
            raise RuntimeError(f"trial {trial['id']} failed on purpose")
        return run_trial(trial, data)
