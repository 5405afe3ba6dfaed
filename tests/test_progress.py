"""Progress of long jobs: a bar on a terminal, log lines with counts and rates in a job's log."""

from __future__ import annotations

import io
import logging
import re
import sys

from pipeline.core import logs


def test_log_lines_hold_counts_and_rates(caplog):
    caplog.set_level(logging.INFO, logger="pipeline.progress")
    assert list(logs.progress(range(3), desc="faces x.tar", unit="video", log_interval=0)) == [0, 1, 2]
    with logs.progress(total=5, desc="scoring", unit="crop", log_interval=3600) as bar:
        bar.update(2)
        bar.update(3)
    lines = [r.getMessage() for r in caplog.records if r.name == "pipeline.progress"]
    assert lines[0] == "faces x.tar: 0/3 video (0%) [00:00<?, ? video/s]"
    assert re.fullmatch(r"faces x\.tar: 3/3 video \(100%\) \[00:00<00:00, +[\d.]+ video/s\]", lines[3]), lines
    # a long interval: only the first and the last state, no line per update
    assert lines[4].startswith("scoring: 0/5 crop") and re.match(r"scoring: 5/5 crop \(100%\).* crop/s\]", lines[5])
    assert len(lines) == 6 and not any("\r" in line for line in lines)


def test_unknown_total_counts_without_a_percentage(caplog):
    caplog.set_level(logging.INFO, logger="pipeline.progress")
    list(logs.progress(iter(range(4)), desc="files", unit="file", log_interval=3600))
    last = [r.getMessage() for r in caplog.records if r.name == "pipeline.progress"][-1]
    assert re.fullmatch(r"files: 4 file \[00:00, +[\d.]+ file/s\]", last), last


def test_terminal_gets_a_bar(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty = Tty()
    monkeypatch.setattr(sys, "stderr", tty)
    list(logs.progress(range(4), desc="predict", unit="file"))
    text = tty.getvalue()
    assert "\r" in text and "predict: 100%" in text and "4/4" in text
