"""Tests of ``regsim.parallel.run_tasks``: every task runs once, failures come back whole."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from regsim.errors import InputDataError
from regsim.parallel import CAN_FORK, run_tasks

forks = pytest.mark.skipif(not CAN_FORK, reason="tasks run in forked processes on Linux only")


def writer(path: Path, text: str):
    def task() -> None:
        path.write_text(f"{text} {os.getpid()}")

    return task


@pytest.mark.parametrize("workers", [1, 2, 3, 8])
def test_every_task_runs_once(tmp_path: Path, workers: int) -> None:
    tasks = [writer(tmp_path / f"{i}.txt", str(i)) for i in range(5)]
    run_tasks(tasks, workers)
    outputs = sorted(tmp_path.iterdir())
    assert [p.name for p in outputs] == [f"{i}.txt" for i in range(5)]
    texts = [p.read_text().split() for p in outputs]
    assert [t[0] for t in texts] == [str(i) for i in range(5)]
    pids = {int(t[1]) for t in texts}
    if workers == 1:
        assert pids == {os.getpid()}  # in this process, in order
    elif CAN_FORK:
        assert os.getpid() not in pids and len(pids) == 5  # a child per task
    else:
        assert pids == {os.getpid()}


@forks
def test_children_see_the_parents_memory_and_do_not_change_it(tmp_path: Path) -> None:
    state = {"table": list(range(1000))}

    def task(i: int):
        def run() -> None:
            state["table"].append(i)  # changes the child's copy only
            (tmp_path / f"{i}").write_text(str(len(state["table"])))

        return run

    run_tasks([task(i) for i in range(3)], 2)
    assert state["table"] == list(range(1000))
    assert {p.read_text() for p in tmp_path.iterdir()} == {"1001"}


@forks
def test_a_failure_is_raised_again_with_its_type_and_message(tmp_path: Path) -> None:
    def fail() -> None:
        raise InputDataError("metrics table: missing column(s) mcse")

    tasks = [writer(tmp_path / "a", "a"), fail, writer(tmp_path / "b", "b")]
    with pytest.raises(InputDataError, match=r"^metrics table: missing column\(s\) mcse$"):
        run_tasks(tasks, 2)
    assert (tmp_path / "a").exists()


@pytest.mark.parametrize("workers", [1, 2])
def test_the_first_failure_in_task_order_wins_and_later_tasks_do_not_start(
    tmp_path: Path, workers: int
) -> None:
    def fail(message: str):
        def run() -> None:
            raise ValueError(message)

        return run

    tasks = [fail("first"), fail("second"), *[writer(tmp_path / f"{i}", "") for i in range(6)]]
    with pytest.raises(ValueError, match="^first$"):
        run_tasks(tasks, workers)
    # With one or two workers the third task's turn comes only after a failure.
    assert not list(tmp_path.iterdir())


@forks
def test_other_exceptions_come_back_named_with_their_traceback_logged(tmp_path: Path) -> None:
    class Local(Exception):
        pass

    def fail() -> None:
        raise Local("not a built-in exception")

    log = logging.getLogger("regsim")
    handler = logging.FileHandler(tmp_path / "job.log")
    log.addHandler(handler)
    try:
        with pytest.raises(RuntimeError, match=r"^test_.+<locals>\.Local: not a built-in"):
            run_tasks([fail, fail], 2)
    finally:
        log.removeHandler(handler)
        handler.close()
    text = (tmp_path / "job.log").read_text()
    assert text.count("a worker process failed\nTraceback") == 2
    assert 'raise Local("not a built-in exception")' in text


@forks
def test_ctrl_c_in_a_child_comes_back_as_an_interrupt_with_nothing_logged(
    tmp_path: Path,
) -> None:
    def interrupted() -> None:
        raise KeyboardInterrupt

    log = logging.getLogger("regsim")
    handler = logging.FileHandler(tmp_path / "job.log")
    log.addHandler(handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            run_tasks([interrupted, lambda: None], 2)
    finally:
        log.removeHandler(handler)
        handler.close()
    assert (tmp_path / "job.log").read_text() == ""


@forks
def test_a_long_message_is_cut_not_lost() -> None:
    def fail() -> None:
        raise ValueError("x" * 100_000)  # more than a pipe holds

    with pytest.raises(ValueError, match=r"^x{800}$"):
        run_tasks([fail, lambda: None], 2)


@forks
def test_a_child_killed_by_a_signal_is_a_failure() -> None:
    def die() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    with pytest.raises(RuntimeError, match=f"killed by signal {int(signal.SIGKILL)}"):
        run_tasks([die, lambda: None], 2)


@forks
def test_a_child_leaving_with_a_status_is_a_failure() -> None:
    with pytest.raises(RuntimeError, match="exited with status 3"):
        run_tasks([lambda: os._exit(3), lambda: None], 2)


@forks
def test_forking_with_threads_running_still_works(tmp_path: Path) -> None:
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        run_tasks([writer(tmp_path / f"{i}", "") for i in range(3)], 2)
    finally:
        stop.set()
        thread.join()
    assert len(list(tmp_path.iterdir())) == 3


def test_workers_must_be_positive() -> None:
    with pytest.raises(ValueError, match="workers must be at least 1, got 0"):
        run_tasks([lambda: None], 0)


def test_without_fork_the_tasks_run_here_in_order(tmp_path: Path, monkeypatch) -> None:
    import regsim.parallel

    monkeypatch.setattr(regsim.parallel, "CAN_FORK", False)
    tasks = [writer(tmp_path / f"{i}", str(i)) for i in range(3)]
    run_tasks(tasks, 4)
    assert {p.read_text() for p in tmp_path.iterdir()} == {f"{i} {os.getpid()}" for i in range(3)}


@forks
def test_other_children_of_the_process_are_left_to_their_owner(tmp_path: Path) -> None:
    other = subprocess.Popen(["sh", "-c", "exit 7"])  # ends while the tasks run
    run_tasks([lambda: time.sleep(0.5), lambda: time.sleep(0.5)], 2)
    assert other.wait(timeout=10) == 7  # not reaped by run_tasks


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_a_task_that_follows_runs_after_its_own_in_a_child_of_this_process(
    tmp_path: Path, workers: int
) -> None:
    def first(i: int):
        def task() -> None:
            time.sleep(0.01 * (3 - i))  # finish out of order
            (tmp_path / f"first{i}").write_text(f"{os.getpid()} {os.getppid()}")

        return task

    def after(i: int):
        def task() -> None:
            # its own task has finished: its file is there
            assert (tmp_path / f"first{i}").exists()
            (tmp_path / f"then{i}").write_text(f"{os.getpid()} {os.getppid()}")

        return task

    run_tasks([first(i) for i in range(3)], workers, then=[after(0), None, after(2)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first0", "first1", "first2"] + [
        "then0",
        "then2",
    ]
    for i in (0, 2):
        task_pid, task_parent = map(int, (tmp_path / f"first{i}").read_text().split())
        then_pid, then_parent = map(int, (tmp_path / f"then{i}").read_text().split())
        if workers > 1 and CAN_FORK:
            # forked from this process, not from the process that ran its task
            assert then_parent == task_parent == os.getpid() != then_pid != task_pid
        else:
            assert then_pid == task_pid == os.getpid()


@forks
def test_a_failed_task_is_not_followed_and_the_first_in_order_is_raised(tmp_path: Path) -> None:
    def late_failure() -> None:
        time.sleep(0.2)
        raise InputDataError("the first went wrong")

    def fail() -> None:
        raise InputDataError("the second went wrong")  # first in time

    with pytest.raises(InputDataError, match="the first went wrong"):
        run_tasks(
            [late_failure, fail],
            2,
            then=[writer(tmp_path / "then0", "x"), writer(tmp_path / "then1", "y")],
        )
    assert list(tmp_path.iterdir()) == []


@forks
def test_a_failing_follow_up_is_raised_after_its_own_task_s_failure(tmp_path: Path) -> None:
    started = tmp_path / "follow-up started"

    def follow_up_fails() -> None:
        started.write_text("x")
        raise InputDataError("the follow-up of the first went wrong")

    def second_fails() -> None:
        # A failure stops tasks not yet started: the second fails only once the
        # follow-up has started, however slowly the children are forked.
        while not started.exists():
            time.sleep(0.005)
        raise InputDataError("the second went wrong")

    # the first task succeeds, its follow-up fails: that failure comes before the
    # second task's in the order of the tasks
    with pytest.raises(InputDataError, match="follow-up of the first"):
        run_tasks(
            [writer(tmp_path / "first", "x"), second_fails],
            2,
            then=[follow_up_fails, None],
        )
    assert (tmp_path / "first").exists()


def test_then_has_a_task_or_none_for_each_task() -> None:
    with pytest.raises(ValueError, match="then has 1 tasks for 2"):
        run_tasks([lambda: None, lambda: None], 2, then=[None])
