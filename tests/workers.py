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
