"""Running independent tasks of one job in forked worker processes.

A job that draws several figures pays matplotlib's and pandas' import (about a second)
once: the parent process imports and reads what every task needs, then each task runs in
a child forked from it, which starts with all of that already in memory. Up to
``workers`` children run at once (the job's threads); each exits when its task is done,
so a child's memory is returned before the next one starts.

Forking is used on Linux only, where it is Python's default way of starting worker
processes; macOS's system libraries (e.g. the Accelerate BLAS numpy may use there) are
not safe to use in a forked child, and Windows has no ``fork``. Elsewhere, or when one
worker is asked for, the tasks run one after the other in the calling process, with the
same results.

A worker that does several things in turn gives each one's memory back before the next
(:func:`give_back_memory`).
"""

from __future__ import annotations

import builtins
import ctypes
import json
import logging
import os
import selectors
import signal
import sys
import warnings
from collections.abc import Callable, Sequence

from regsim.errors import RegsimError

__all__ = ["CAN_FORK", "give_back_memory", "run_tasks"]

#: Whether :func:`run_tasks` runs tasks in forked processes (Linux) or in turn.
CAN_FORK = sys.platform.startswith("linux") and hasattr(os, "fork")

logger = logging.getLogger("regsim.parallel")


def run_tasks(
    tasks: Sequence[Callable[[], None]],
    workers: int,
    then: Sequence[Callable[[], None] | None] | None = None,
) -> None:
    """Run every task, each in a forked child process, at most ``workers`` at a time.

    Parameters
    ----------
    tasks : sequence of callables
        Independent tasks taking no arguments; what they return is ignored, so each writes
        its own output. In a child a task sees the parent's memory as it was at the fork.
    workers : int
        Children running at once (at least 1). With 1, a single task and nothing to
        follow it, or where :data:`CAN_FORK` is false, the tasks run in this process, in
        order, each followed by its task of ``then``.
    then : sequence of callables or None, optional
        A task to run after each of ``tasks`` has succeeded (None for none), before the
        tasks not yet started: in a child forked from this process (not from the one that
        ran the first), e.g. the PNG of a figure whose PDF the first wrote, drawn without
        the memory the figure took; or in this process where the tasks run here.

    Raises
    ------
    Exception
        The exception of the first task (in the order of ``tasks``, a task before the one
        it follows) that failed, raised again here once every started child has
        finished; tasks not yet started when a task fails are not started. A child's
        exception comes back as its class and message: Python's built-in exceptions and
        ``regsim.errors`` as themselves, others as a :class:`RuntimeError` naming the
        class (the child logs their traceback); a child that dies without one (e.g.
        killed) as a RuntimeError. A child stopped by Ctrl-C logs nothing, and comes
        back as a KeyboardInterrupt.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    follow = list(then) if then is not None else [None] * len(tasks)
    if len(follow) != len(tasks):
        raise ValueError(f"then has {len(follow)} tasks for {len(tasks)}")
    if workers == 1 or len(tasks) + sum(f is not None for f in follow) <= 1 or not CAN_FORK:
        for task, after in zip(tasks, follow, strict=True):
            task()
            if after is not None:
                after()
        return
    _run_forked(tasks, follow, workers)


def _run_forked(
    tasks: Sequence[Callable[[], None]],
    then: Sequence[Callable[[], None] | None],
    workers: int,
) -> None:
    # Each child's pipe reaches end of file when the child exits; only then is that child
    # waited for, by its pid, so that other children of this process are left alone.
    # A task is known by (index, 0), the task it is followed by as (index, 1).
    selector = selectors.DefaultSelector()
    running: dict[int, tuple[tuple[int, int], int, bytearray]] = {}  # fd -> (key, pid, report)
    failures: dict[tuple[int, int], BaseException] = {}
    ready: list[tuple[tuple[int, int], Callable[[], None]]] = []  # follow-ups, first out first
    pending = iter(enumerate(tasks))
    try:
        while True:
            while len(running) < workers and not failures:
                if ready:
                    key, task = ready.pop(0)
                else:
                    started = next(pending, None)
                    if started is None:
                        break
                    key, task = (started[0], 0), started[1]
                pid, reader = _fork(task)
                running[reader] = (key, pid, bytearray())
                selector.register(reader, selectors.EVENT_READ)
            if not running:
                break
            for selected, _ in selector.select():
                key, pid, report = running[selected.fd]
                chunk = os.read(selected.fd, 65536)
                if chunk:
                    report += chunk
                    continue
                selector.unregister(selected.fd)
                os.close(selected.fd)
                del running[selected.fd]
                _, status = os.waitpid(pid, 0)
                error = _outcome(bytes(report), status)
                if error is not None:
                    failures[key] = error
                elif key[1] == 0 and then[key[0]] is not None:
                    ready.append(((key[0], 1), then[key[0]]))
    finally:
        # Only reached with children left if this process is interrupted (e.g. Ctrl-C):
        # stop them rather than leave them writing after the job has ended.
        for reader, (_, pid, _) in running.items():
            os.kill(pid, signal.SIGTERM)
            os.waitpid(pid, 0)
            os.close(reader)
        selector.close()
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
    except KeyboardInterrupt:
        # Ctrl-C reaches every process of the job, this one too: the parent, interrupted
        # as well, says so once (regsim.workflow.log_to); a traceback here would be noise.
        code = _INTERRUPTED
    except BaseException as error:  # noqa: BLE001 - every failure goes to the parent
        code = 1
        if not isinstance(error, RegsimError):  # a bug, not bad input: keep where it was
            logger.exception("a worker process failed")
        _send(writer, error)
    finally:
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os._exit(code)


#: Longest message a child sends: it becomes one line of the job's error.
_MAX_MESSAGE = 800
#: Exit status of a child stopped by Ctrl-C (128 + SIGINT, as a shell reports it).
_INTERRUPTED = 128 + int(signal.SIGINT)


def _send(writer: int, error: BaseException) -> None:
    """Write the exception's class and message (as JSON, never pickled) to the pipe."""
    kind = type(error)
    report = {"module": kind.__module__, "name": kind.__qualname__, "message": str(error)}
    report["message"] = report["message"][:_MAX_MESSAGE]
    with os.fdopen(writer, "w", encoding="utf-8") as pipe:
        json.dump(report, pipe, ensure_ascii=True)


def _rebuild(report: dict[str, str]) -> BaseException:
    """The exception a child reported: its own class for Python's built-in exceptions
    and regsim's errors (so a bad-input error still reads as one line), else a
    RuntimeError naming the class."""
    home = {"builtins": builtins, RegsimError.__module__: sys.modules[RegsimError.__module__]}
    kind = getattr(home.get(report["module"]), report["name"], None)
    if isinstance(kind, type) and issubclass(kind, Exception):
        try:
            return kind(report["message"])
        except Exception:  # noqa: BLE001 - a class that needs other arguments
            pass
    return RuntimeError(f"{report['name']}: {report['message']}")


def _outcome(report: bytes, status: int) -> BaseException | None:
    """The exception a finished child reported, or one describing how it ended."""
    if report:
        return _rebuild(json.loads(report.decode("utf-8")))
    code = os.waitstatus_to_exitcode(status)
    if code == _INTERRUPTED:
        return KeyboardInterrupt()
    if code != 0:
        how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
        return RuntimeError(f"a worker process {how}")
    return None


def give_back_memory() -> None:
    """Return freed heap memory to the system (glibc), so that a job holds one thing at
    a time: one fit of a large cell (``regsim.cells``), one figure of a cell's fits
    (``regsim.paper``).

    glibc raises its mmap threshold as large blocks are freed, so the blocks of the next
    fit come from the heap and the previous fit's freed memory stays with the process;
    ``malloc_trim`` gives it back. Elsewhere nothing is done.
    """
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _load_libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


_LIBC = _load_libc() if sys.platform.startswith("linux") else None
