"""Running independent tasks of one job in forked worker processes.

A job that draws several figures pays matplotlib's and pandas' import (about a second)
once: the parent process imports and reads what every task needs, then each task runs in
a child forked from it, which starts with all of that already in memory. Up to
``workers`` children run at once (the job's threads); each exits when its task is done,
so a child's memory is returned before the next one starts.

Where ``fork`` does not exist (Windows) or one worker is asked for, the tasks run one
after the other in the calling process, with the same results.
"""

from __future__ import annotations

import logging
import os
import pickle
import signal
import sys
import warnings
from collections.abc import Callable, Sequence

__all__ = ["run_tasks"]


def run_tasks(tasks: Sequence[Callable[[], None]], workers: int) -> None:
    """Run every task, each in a forked child process, at most ``workers`` at a time.

    Parameters
    ----------
    tasks : sequence of callables
        Independent tasks taking no arguments; what they return is ignored, so each writes
        its own output. In a child a task sees the parent's memory as it was at the fork.
    workers : int
        Children running at once (at least 1). With 1, a single task, or no ``os.fork``,
        the tasks run in this process, in order.

    Raises
    ------
    Exception
        The exception of the first task (in the order of ``tasks``) that failed, raised
        again here once every started child has finished; tasks not yet started when a
        task fails are not started.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if workers == 1 or len(tasks) <= 1 or not hasattr(os, "fork"):
        for task in tasks:
            task()
        return
    _run_forked(tasks, workers)


def _run_forked(tasks: Sequence[Callable[[], None]], workers: int) -> None:
    running: dict[int, tuple[int, int]] = {}  # pid -> (task index, read end of its pipe)
    failures: dict[int, BaseException] = {}
    pending = iter(enumerate(tasks))
    try:
        while True:
            while len(running) < workers and not failures:
                started = next(pending, None)
                if started is None:
                    break
                index, task = started
                pid, reader = _fork(task)
                running[pid] = (index, reader)
            if not running:
                break
            pid, status = os.wait()
            if pid not in running:
                continue
            index, reader = running.pop(pid)
            error = _collect(reader, status)
            if error is not None:
                failures[index] = error
    finally:
        # Only reached with children left if this process is interrupted (e.g. Ctrl-C):
        # stop them rather than leave them writing after the job has ended.
        for pid, (_, reader) in running.items():
            os.kill(pid, signal.SIGTERM)
            os.waitpid(pid, 0)
            os.close(reader)
    if failures:
        raise failures[min(failures)]


def _fork(task: Callable[[], None]) -> tuple[int, int]:
    """Start ``task`` in a child; return its pid and the read end of its error pipe."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    reader, writer = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns that forking a process with threads may deadlock the child.
        # The only other threads here are the BLAS library's idle pool, which it
        # re-creates in a child itself (pthread_atfork); no lock is held across the fork.
        warnings.filterwarnings(
            "ignore", message=r".*multi-threaded.*fork", category=DeprecationWarning
        )
        pid = os.fork()
    if pid:
        os.close(writer)
        return pid, reader
    # The child: run the task, report any exception through the pipe, and leave without
    # running the parent's exit handlers (its open files and log handlers are shared).
    os.close(reader)
    code = 0
    try:
        task()
    except BaseException as error:  # noqa: BLE001 - every failure goes to the parent
        code = 1
        _send(writer, error)
    finally:
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os._exit(code)


#: Largest pickled exception a child sends whole: the parent reads the pipe only after the
#: child has exited, so what the child writes must fit in the pipe's buffer (64 KiB on
#: Linux, at least 4 KiB by POSIX).
_MAX_PAYLOAD = 4096


def _send(writer: int, error: BaseException) -> None:
    try:
        payload = pickle.dumps(error)
    except Exception:  # noqa: BLE001 - an exception that cannot be pickled
        payload = b""
    if not payload or len(payload) > _MAX_PAYLOAD:
        message = f"{type(error).__name__}: {error}"[:500]
        payload = pickle.dumps(RuntimeError(message))
    with os.fdopen(writer, "wb") as pipe:
        pipe.write(payload)


def _collect(reader: int, status: int) -> BaseException | None:
    """The exception a finished child reported, or one describing how it ended."""
    with os.fdopen(reader, "rb") as pipe:
        payload = pipe.read()
    if payload:
        return pickle.loads(payload)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
        return RuntimeError(f"a worker process {how}")
    return None
