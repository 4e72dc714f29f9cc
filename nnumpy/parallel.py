"""Running independent tasks in worker processes, with failures that reach the caller.

:func:`run_parallel` is a small process pool built for training runs:

* each worker is a spawned process with one BLAS and one Numba thread (the workers share
  the cores) that ignores Ctrl-C: the parent alone handles it;
* the first task that raises stops every worker at once and its exception
  is raised in the parent, with the worker's traceback as its cause;
* a worker that dies (killed, out of memory, crashed) raises
  :class:`WorkerDied` naming the task, never a hang;
* an exception that cannot be pickled arrives as a RuntimeError carrying
  its type and message.

(``concurrent.futures.ProcessPoolExecutor`` in Python 3.11 can miss a
worker that dies right after it was started and then wait forever, and
``multiprocessing.Pool`` waits forever for the task of any dead worker.)
"""
from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import pickle
import signal
import threading
import traceback
from multiprocessing.connection import wait

__all__ = ["run_parallel", "WorkerDied"]

_BLAS_THREADS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


class WorkerDied(RuntimeError):
    """A worker process ended without returning its task's result."""


class _RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker (set as its ``__cause__``)."""

    def __str__(self):
        return "\n" + self.args[0]


def _sendable(exc):
    """``exc`` if it survives pickling, else a RuntimeError with its type and message."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:                     # pickling can fail in many ways (PicklingError, TypeError, ...)
        return RuntimeError(f"{type(exc).__name__}: {exc} (raised in a worker process; the exception "
                            f"itself could not be sent back)")


def _worker(conn, fn):
    """A worker process: receive ``(index, args)``, send back ``(index, True,
    fn(*args))`` or ``(index, False, (exception, traceback text))``; stop on None."""
    while True:
        task = conn.recv()
        if task is None:
            return
        index, args = task
        try:
            reply = (index, True, fn(*args))
            conn.send(reply)
        except BaseException as e:       # every failure goes back to the parent, which decides
            conn.send((index, False, (_sendable(e), traceback.format_exc())))


@contextlib.contextmanager
def _spawning():
    """While worker processes are started: one BLAS and Numba thread each, and Ctrl-C
    ignored.  A process started with SIGINT ignored keeps ignoring it
    (Python installs its KeyboardInterrupt handler only where SIGINT is at
    its default), so Ctrl-C reaches the parent alone: no traceback from
    every worker."""
    saved = {k: os.environ.get(k) for k in _BLAS_THREADS}
    os.environ.update({k: "1" for k in _BLAS_THREADS})
    in_main = threading.current_thread() is threading.main_thread()
    old_handler = signal.signal(signal.SIGINT, signal.SIG_IGN) if in_main else None
    try:
        yield
    finally:
        if in_main:
            signal.signal(signal.SIGINT, old_handler)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_parallel(fn, tasks, jobs, on_result, name=lambda task: "a task"):
    """Run ``fn(*task)`` for every task of ``tasks`` in ``min(jobs, len(tasks))``
    spawned worker processes, calling ``on_result(result)`` in this process
    as each one finishes (in order of completion).

    ``fn`` must be importable by name (a module-level function).  The first
    task that raises stops every worker and its exception is raised here;
    Ctrl-C (KeyboardInterrupt) does the same.  A worker that dies raises
    :class:`WorkerDied` naming the task (``name(task)``).  No worker outlives the call.
    """
    tasks = list(enumerate(tasks))
    if not tasks:
        return
    ctx = mp.get_context("spawn")
    workers, done = [], False                      # (process, connection)
    try:
        with _spawning():
            for _ in range(min(int(jobs), len(tasks))):
                here, there = ctx.Pipe()
                process = ctx.Process(target=_worker, args=(there, fn), daemon=True)
                process.start()
                there.close()
                workers.append((process, here))
        todo = iter(tasks)
        busy = {}                                  # connection -> (process, task index)

        def give(process, conn):                   # the next task, or None: stop
            task = next(todo, None)
            conn.send(task)
            if task is not None:
                busy[conn] = (process, task[0])

        for process, conn in workers:
            give(process, conn)
        while busy:
            wait(list(busy) + [process.sentinel for process, _ in busy.values()])
            for conn, (process, index) in list(busy.items()):
                if conn.poll():
                    try:
                        _, ok, payload = conn.recv()
                    except EOFError:               # the worker ended without a reply
                        ok = None
                    if ok:
                        del busy[conn]
                        on_result(payload)
                        give(process, conn)
                        continue
                    if ok is False:
                        exc, text = payload
                        raise exc from _RemoteTraceback(text)
                elif process.is_alive():
                    continue
                process.join()
                raise WorkerDied(f"a worker process died while running {name(tasks[index][1])} (exit code "
                                 f"{process.exitcode}: killed, out of memory or crashed?)")
        done = True
    finally:
        for process, conn in workers:
            if not done:
                process.terminate()
            process.join()
            conn.close()
