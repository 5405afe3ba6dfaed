"""Logging for workflow jobs and the command line: one format, to a file and/or stderr."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup(log_file: str | Path | None = None, level: int = logging.INFO) -> None:
    """Send ``pipeline.*`` (and warnings) to ``log_file`` when given, else to stderr.

    In a Snakemake job the log file is the rule's ``log:``; stderr is redirected there too, so
    tracebacks and library warnings land in the same file that ``--show-failed-logs`` prints.
    """
    handlers: list[logging.Handler] = []
    if log_file is not None:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        stream = open(log_file, "a", buffering=1)
        sys.stderr = stream
        handlers.append(logging.StreamHandler(stream))
    else:
        handlers.append(logging.StreamHandler(sys.stderr))
    logging.basicConfig(level=level, format=FORMAT, handlers=handlers, force=True)
    logging.captureWarnings(True)
