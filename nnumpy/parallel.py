"""Where a sweep's trials run: worker processes on this machine, or a Dask cluster.

Both are ``concurrent.futures`` executors, so one scheduling loop
(:mod:`nnumpy.sweeps`) serves both:

* :class:`LocalExecutor` (``nnumpy sweep --jobs N``): N spawned worker
  processes, each with one BLAS and one Numba thread (the workers share the
  cores), that ignore Ctrl-C (the parent alone handles it) and end when the
  parent dies, even by ``kill -9``.  A worker that dies while running a task
  (killed, out of memory, crashed) is replaced and the task is run again in
  the new one, up to ``max_failures`` times (as Dask's scheduler does); then
  the task's future holds :class:`WorkerDied`.  An exception raised by a task
  reaches its future with the worker's traceback as its ``__cause__``; one
  that cannot be pickled arrives as a RuntimeError carrying its type and
  message.
* :func:`connect` (``nnumpy sweep --scheduler tcp://HOST:PORT``): a
  ``dask.distributed`` client and its ``concurrent.futures`` executor
  (``Client.get_executor``).  A scheduler that cannot be reached is a
  :class:`ClusterError` within the connect timeout; workers that cannot import
  this version of nnumpy are one too, before anything is submitted.

(``concurrent.futures.ProcessPoolExecutor`` in Python 3.11 can miss a worker
that dies right after it was started and then wait forever, and it breaks the
whole pool when one worker dies; ``multiprocessing.Pool`` waits forever for
the task of a dead worker.)
"""
from __future__ import annotations

import collections
import concurrent.futures as cf
import contextlib
import multiprocessing as mp
import os
import pickle
import signal
import threading
import time
import traceback
from multiprocessing.connection import wait

__all__ = ["LocalExecutor", "WorkerDied", "ClusterError", "connect", "check_address"]

_BLAS_THREADS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


class WorkerDied(RuntimeError):
    """A worker process ended without returning its task's result (and so did its replacements)."""


class ClusterError(RuntimeError):
    """The Dask cluster cannot be used: the scheduler cannot be reached, or its workers cannot run nnumpy."""


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


def _watch_parent(parent):
    """End this worker when its parent is gone (``kill -9`` of the client leaves no orphan training on)."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(1)


def _worker(conn, parent):
    """A worker process: receive ``(fn, args, kwargs)``, send back ``(True, result)`` or
    ``(False, (exception, traceback text))``; stop on None or when the parent is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)      # (already ignored when started from the main thread)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        fn, args, kwargs = task
        try:
            reply = (True, fn(*args, **kwargs))
        except BaseException as e:       # every failure goes back to the parent, which decides
            reply = (False, (_sendable(e), traceback.format_exc()))
        try:
            conn.send(reply)
        except (pickle.PicklingError, TypeError, AttributeError) as e:      # an unpicklable result
            conn.send((False, (RuntimeError(f"the task's result could not be sent back: {e}"), "")))


@contextlib.contextmanager
def _spawning():
    """While a worker process is started: one BLAS and Numba thread, and (from
    the main thread) Ctrl-C ignored.  A process started with SIGINT ignored
    keeps ignoring it (Python installs its KeyboardInterrupt handler only
    where SIGINT is at its default), so Ctrl-C reaches the parent alone: no
    traceback from every worker."""
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


class _Task:
    __slots__ = ("future", "call", "failures")

    def __init__(self, future, call):
        self.future, self.call, self.failures = future, call, 0


class LocalExecutor(cf.Executor):
    """``jobs`` spawned worker processes behind the ``concurrent.futures.Executor`` interface.

    ``submit(fn, *args, **kwargs)`` returns a :class:`concurrent.futures.Future`;
    ``fn`` must be importable by name (a module-level function).  Tasks run in
    the order they were submitted.  A worker that dies while running a task is
    replaced and the task run again, up to ``max_failures`` times; after that
    its future holds :class:`WorkerDied`.  ``shutdown(cancel_futures=True)``
    (or leaving the ``with`` block by an exception) stops the workers at once;
    no worker outlives the executor or its parent process.
    """

    def __init__(self, jobs, max_failures=3):
        for name, v, low in (("jobs", jobs, 1), ("max_failures", max_failures, 0)):
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ValueError(f"LocalExecutor: {name} must be an integer >= {low}, got {v!r}")
        self.jobs, self.max_failures = jobs, max_failures
        self._ctx = mp.get_context("spawn")
        self._queue = collections.deque()
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = self._ctx.Pipe(duplex=False)
        self._closing = self._abort = False
        self._workers = [self._start() for _ in range(self.jobs)]     # [process, conn, task or None]
        self._thread = threading.Thread(target=self._manage, name="nnumpy-local-executor", daemon=True)
        self._thread.start()

    @property
    def slots(self):
        """How many tasks run at once."""
        return self.jobs

    def _start(self):
        here, there = self._ctx.Pipe()
        with _spawning():
            process = self._ctx.Process(target=_worker, args=(there, os.getpid()), daemon=True)
            process.start()
        there.close()
        return [process, here, None]

    def submit(self, fn, /, *args, **kwargs):
        future = cf.Future()
        with self._lock:
            if self._closing:
                raise RuntimeError("cannot submit a task after shutdown")
            self._queue.append(_Task(future, (fn, args, kwargs)))
        self._wake_w.send(None)
        return future

    def shutdown(self, wait=True, *, cancel_futures=False):
        with self._lock:
            if cancel_futures:
                while self._queue:
                    self._queue.popleft().future.cancel()
                self._abort = True
            self._closing = True
        with contextlib.suppress(OSError):
            self._wake_w.send(None)
        if wait or cancel_futures:
            self._thread.join()

    def __exit__(self, exc_type, exc, tb):
        self.shutdown(wait=True, cancel_futures=exc_type is not None)
        return False

    # -- the manager thread ----------------------------------------------------------------
    def _next_task(self):
        with self._lock:
            while self._queue:
                task = self._queue.popleft()
                if task.failures or task.future.set_running_or_notify_cancel():
                    return task
        return None

    def _manage(self):
        try:
            self._loop()
        finally:
            for process, conn, task in self._workers:
                if process.is_alive():
                    process.terminate() if self._abort else _send(conn, None)
                process.join()
                conn.close()
                if task is not None and not task.future.done():
                    task.future.set_exception(WorkerDied("the executor was shut down before the task finished"))

    def _loop(self):
        while True:
            if self._abort:
                return
            for w in self._workers:                   # give idle workers work
                while w[2] is None:
                    task = self._next_task()
                    if task is None:
                        break
                    try:
                        w[1].send(task.call)
                    except (pickle.PicklingError, AttributeError, TypeError) as e:    # (sent nothing)
                        task.future.set_exception(TypeError(f"the task cannot be sent to a worker process "
                                                            f"(its function and arguments must be picklable: "
                                                            f"a module-level function): {e}"))
                        continue
                    except (OSError, EOFError):       # a dead worker: found below, and the task rerun
                        pass
                    w[2] = task
            busy = [w for w in self._workers if w[2] is not None]
            if not busy and self._closing and not self._queue:
                return
            ready = wait([self._wake_r] + [w[1] for w in busy] + [w[0].sentinel for w in busy])
            if self._wake_r in ready:
                while self._wake_r.poll():
                    self._wake_r.recv()
            for i, w in enumerate(self._workers):
                process, conn, task = w
                if task is None:
                    continue
                reply = None
                if conn.poll():
                    try:
                        reply = conn.recv()
                    except (EOFError, OSError):           # ended without a (whole) reply
                        reply = None
                elif process.is_alive():
                    continue
                if reply is not None:
                    ok, payload = reply
                    w[2] = None
                    if ok:
                        task.future.set_result(payload)
                    else:
                        exc, text = payload
                        if text:
                            exc.__cause__ = _RemoteTraceback(text)
                        task.future.set_exception(exc)
                    continue
                process.join()
                conn.close()
                task.failures += 1
                code = process.exitcode
                self._workers[i] = self._start()              # a new worker in its place
                if task.failures > self.max_failures:
                    task.future.set_exception(WorkerDied(
                        f"a worker process died while running this task, {task.failures} time(s) (last exit "
                        f"code {code}: killed, out of memory or crashed?)"))
                else:
                    with self._lock:
                        self._queue.appendleft(task)         # run it again, first


def _send(conn, obj):
    with contextlib.suppress(OSError, EOFError):
        conn.send(obj)


# ---------------------------------------------------------------------------------------------
# Dask
# ---------------------------------------------------------------------------------------------
def worker_info():
    """What a Dask worker runs (compared with the client's before a sweep starts)."""
    import platform

    import numpy as np

    import nnumpy
    from .backend import available_backends
    return {"nnumpy": nnumpy.__version__, "numpy": np.__version__, "backends": list(available_backends()),
            "host": platform.node()}


#: the address schemes of Dask's communication layers that reach another machine
_SCHEMES = ("tcp",)


def check_address(address, what="scheduler"):
    """``(scheme, host, port)`` of a Dask scheduler's address ``tcp://HOST:PORT`` (the scheme may be left
    out: tcp); a ConfigError naming what is wrong otherwise."""
    from .runconfig import ConfigError
    like = "an address like tcp://HOST:PORT (Dask's scheduler prints it when it starts)"
    if not isinstance(address, str) or not address.strip():
        raise ConfigError(f"{what} must be {like}, got {address!r}")
    text = address.strip()
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "tcp", text
    if scheme not in _SCHEMES:
        raise ConfigError(f"{what} {address!r}: unknown scheme {scheme + '://'!r} (nnumpy reaches Dask "
                          f"schedulers over tcp://); expected {like}")
    host, colon, port = rest.rstrip("/").rpartition(":")
    if not colon or not host or "/" in host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{what} {address!r} has no valid host and port (1 to 65535); expected {like}")
    return scheme, host.strip("[]"), int(port)


def _reachable(address, timeout):
    """None when something accepts a TCP connection at ``address``, else why not (at once, for a refused
    connection or an unknown host: Dask itself retries those until its timeout)."""
    import socket
    scheme, host, port = check_address(address)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except socket.gaierror:
        return f"the host {host!r} is unknown"
    except ConnectionRefusedError:
        return f"nothing listens at {host}:{port} (connection refused): is the scheduler running there?"
    except (socket.timeout, TimeoutError):
        return f"no answer from {host}:{port} within {timeout:g} s"
    except OSError as e:
        return e.strerror or str(e)
    return None


def _probe(address, timeout):
    """None when a Dask scheduler answers at ``address`` within ``timeout`` seconds, else why not."""
    import asyncio

    from distributed.comm import connect as dask_connect

    async def knock():
        comm = await dask_connect(address, timeout=timeout)
        try:
            await comm.write({"op": "identity"})
            reply = await asyncio.wait_for(comm.read(), timeout)
        finally:
            await comm.close()
        if not isinstance(reply, dict) or reply.get("type") != "Scheduler":
            raise ConnectionError(f"what answers there is not a Dask scheduler ({str(reply)[:80]})")
    try:
        asyncio.run(asyncio.wait_for(knock(), timeout + 1))
    except Exception as e:                    # refused, timed out, a bad address, or not a scheduler
        text = str(e) or (f"no Dask scheduler answered within {timeout:g} s"
                          if isinstance(e, asyncio.TimeoutError) else type(e).__name__)
        if isinstance(e, (OSError, asyncio.TimeoutError, ValueError)):
            return text
        return "what answers there is not a Dask scheduler"
    return None


@contextlib.contextmanager
def connect(address, timeout=10.0, backend=None):
    """A ``dask.distributed`` client of the scheduler at ``address``: yields ``(client, executor)``.

    Raises :class:`ClusterError` when Dask is not installed, the scheduler
    cannot be reached within ``timeout`` seconds, or a worker cannot import
    this version of nnumpy (or lacks ``backend``).  The client is closed
    afterwards; the cluster keeps running.
    """
    try:
        import dask
        from distributed import Client
    except ImportError:
        raise ClusterError("--scheduler needs Dask on this machine: pip install \"nnumpy[distributed]\"") from None
    import asyncio

    import nnumpy
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 3600:
        raise ValueError(f"connect: timeout must be a number of seconds in (0, 3600], got {timeout!r}")
    t0 = time.monotonic()
    why = _reachable(address, timeout)
    if why is None:                           # (a Client that fails half-made complains at exit: ask first)
        why = _probe(address, max(0.1, timeout - (time.monotonic() - t0)))
    if why is None:
        try:
            with dask.config.set({"distributed.comm.timeouts.connect": f"{timeout}s"}):
                client = Client(address, timeout=timeout, set_as_default=False)
        except Exception as e:                # refused, timed out, or something else answered
            why = f"{type(e).__name__}: {e}"
    if why is not None:
        raise ClusterError(f"cannot reach the Dask scheduler at {address}: {why.splitlines()[0]} (after "
                           f"{time.monotonic() - t0:.1f} s; --connect-timeout {timeout:g})")
    try:
        try:
            infos = client.run(worker_info)
        except Exception as e:
            raise ClusterError(f"the workers of {address} cannot run nnumpy ({type(e).__name__}: {e}); install "
                               f"nnumpy {nnumpy.__version__} where they run") from None
        bad = {w: i["nnumpy"] for w, i in infos.items() if i["nnumpy"] != nnumpy.__version__}
        if bad:
            raise ClusterError(f"workers of {address} run another nnumpy than this one "
                               f"({nnumpy.__version__}): " + ", ".join(f"{w} has {v}" for w, v in bad.items()))
        if backend is not None:
            missing = [w for w, i in infos.items() if backend not in i["backends"]]
            if missing:
                raise ClusterError(f"workers of {address} cannot use the {backend} backend this sweep uses: "
                                   f"{', '.join(missing)} (install numba there, or set NNUMPY_BACKEND)")
        if not infos:
            try:
                client.wait_for_workers(1, timeout=timeout)
            except (TimeoutError, asyncio.TimeoutError, OSError) as e:     # (one class from Python 3.11 on)
                why = "" if isinstance(e, (TimeoutError, asyncio.TimeoutError)) else f" ({type(e).__name__}: {e})"
                raise ClusterError(f"the Dask scheduler at {address} has no workers (waited {timeout:g} s{why}); "
                                   f"start some: dask worker {address} --nthreads 1") from None
        yield client, client.get_executor(pure=False)
    finally:
        with contextlib.suppress(Exception):
            client.close(timeout=5)
