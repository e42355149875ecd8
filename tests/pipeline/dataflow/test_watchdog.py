"""The stall watchdog: fails the watched thread with what Ray cannot place (no Ray)."""
from __future__ import annotations

import threading
import time

import pytest

from pipeline.dataflow.watchdog import StallError, Watchdog, diagnose
from pipeline.records.failures import explain

HEAD = {"ip": "127.0.0.1", "id": "ab" * 28, "head": True, "total": {"CPU": 1.0},
        "available": {"CPU": 0.75}}
WORKER = {"ip": "127.0.0.1", "id": "cd" * 28, "head": False, "total": {"CPU": 1.0, "GPU": 1.0},
          "available": {"CPU": 0.75, "GPU": 0.0}}


def test_a_request_no_node_has_free_names_nodes_and_fix():
    text = diagnose([HEAD, WORKER], [({"CPU": 1.0}, 1)])
    assert "Ray cannot place {CPU: 1} x1 on any node" in text
    assert "head 127.0.0.1 abababab free {CPU: 0.75} of {CPU: 1}" in text
    assert "worker 127.0.0.1 cdcdcdcd free {CPU: 0.75, GPU: 0} of {CPU: 1, GPU: 1}" in text
    assert "no single node has it free" in text


def test_a_request_no_node_is_big_enough_for():
    text = diagnose([HEAD], [({"CPU": 0.25, "GPU": 1.0}, 1)])
    assert "no node is big enough for {CPU: 0.25, GPU: 1}" in text and "--num-gpus" in text


def test_nothing_pending_still_says_something():
    assert "nothing waiting" in diagnose([HEAD], [])


def test_stall_fails_the_watched_thread_and_stops():
    errors: list[BaseException] = []
    started = threading.Event()

    def stuck() -> None:
        started.set()
        try:
            while True:
                time.sleep(0.01)
        except StallError as exc:
            errors.append(exc)

    t = threading.Thread(target=stuck)
    t.start()
    started.wait()
    dog = Watchdog(lambda: 0, timeout_s=0.5, explain=lambda: "Ray cannot place {CPU: 1}",
                   target=t.ident, poll_s=0.05).start()
    t.join(timeout=10)
    dog.stop()
    assert not t.is_alive() and len(errors) == 1
    assert str(errors[0]) == "no block moved for 0.5 s; Ray cannot place {CPU: 1}"
    failure = explain(errors[0])
    assert failure.kind == "StallError" and failure.message.startswith("no block moved")
    assert "fix the cause" in failure.advice()


def test_moving_progress_never_trips_and_stop_ends_watching():
    counter = iter(range(10**9))
    dog = Watchdog(lambda: next(counter), timeout_s=0.2, explain=lambda: "x", poll_s=0.02).start()
    time.sleep(0.6)
    dog.stop()
    assert dog.reason is None


def test_zero_timeout_is_off():
    dog = Watchdog(lambda: 0, timeout_s=0, explain=lambda: "x").start()
    assert dog._thread is None
    dog.stop()


def test_probe_failure_is_reported_not_raised():
    box: list[BaseException] = []

    def stuck() -> None:
        try:
            for _ in range(3000):
                time.sleep(0.01)
        except StallError as exc:
            box.append(exc)

    def broken() -> str:
        raise ConnectionError("gcs gone")

    t = threading.Thread(target=stuck)
    t.start()
    dog = Watchdog(lambda: 0, timeout_s=0.2, explain=broken, target=t.ident, poll_s=0.02).start()
    t.join(timeout=10)
    dog.stop()
    assert box and "could not be read: ConnectionError: gcs gone" in str(box[0])


@pytest.mark.parametrize("value", [0, 30.5])
def test_setting_is_in_the_run_config(value):
    from pipeline.config import RunConfig

    c = RunConfig(inputs=["x"], output="o", tasks=["ner"], demo_model=True, stall_timeout_s=value)
    assert c.stall_timeout_s == value
    assert RunConfig(inputs=["x"], output="o", tasks=["ner"], demo_model=True).stall_timeout_s == 600
