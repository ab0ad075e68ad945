"""Repeated failures: the first of a kind at once, then one line per window with the count."""

from __future__ import annotations

import logging

from miner_server.ratelog import RepeatedFailures, failure_kind


def test_one_line_per_kind_per_window(caplog):
    now = [0.0]
    logger = logging.getLogger("test.ratelog")
    failures = RepeatedFailures(logger, window_s=30.0, clock=lambda: now[0])
    caplog.set_level(logging.WARNING, logger="test.ratelog")
    for _ in range(100):
        failures.report("a", "upstream down")
        now[0] += 0.1
    failures.report("b", "other failure")
    assert [r.getMessage() for r in caplog.records] == ["upstream down", "other failure"]
    now[0] = 31.0
    failures.report("a", "upstream down")
    assert caplog.records[-1].getMessage() == (
        "upstream down (and 99 more like it in the last 31 s)"
    )
    failures.report("a", "upstream down")
    assert len(caplog.records) == 3


def test_kinds_follow_the_cause_chain_not_the_message():
    def chained(message: str) -> BaseException:
        try:
            try:
                raise ConnectionRefusedError(message)
            except OSError as inner:
                raise RuntimeError(message) from inner
        except RuntimeError as outer:
            return outer

    assert failure_kind("POST /x", chained("port 1")) == failure_kind("POST /x", chained("port 2"))
    assert failure_kind("POST /x", chained("a")) == "POST /x RuntimeError<ConnectionRefusedError"
    assert failure_kind("POST /x", ValueError()) != failure_kind("POST /y", ValueError())
