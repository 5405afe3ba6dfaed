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


class _LogLines:
    """A file-like object for tqdm that turns each refresh into one log line (no ``\\r`` in log files)."""

    def __init__(self, logger: logging.Logger):
        self.logger = logger
        self.last = None

    def write(self, text: str) -> None:
        line = text.strip("\r\n ")
        counts = line.split(" [", 1)[0]  # tqdm shows the last state again when it closes: said once
        if line and counts != self.last:
            self.logger.info(line)
            self.last = counts

    def flush(self) -> None:
        pass


def progress(iterable=None, *, total: int | None = None, desc: str, unit: str, logger: str = "pipeline.progress",
             log_interval: float = 30.0, **kwargs):
    """A tqdm progress bar with counts and rates.

    On a terminal it is the usual bar on stderr. Otherwise (a workflow job, whose stderr is its log
    file, or a redirected command) the counts are written as log lines through ``logger``
    (``faces test-00000.tar: 4/8 video (50%) [00:02<00:02, 1.90 video/s]``): at the start, at most
    every ``log_interval`` seconds, and at the end. Use it as tqdm: wrap an iterable, or
    call ``update(n)`` inside ``with progress(...) as bar:``.
    """
    from tqdm import tqdm

    unit = f" {unit}"  # "12.5 video/s"
    if sys.stderr.isatty():
        return tqdm(iterable, total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True, **kwargs)
    return tqdm(iterable, total=total, desc=desc, unit=unit, file=_LogLines(logging.getLogger(logger)),
                mininterval=log_interval, maxinterval=max(log_interval, 10.0),
                bar_format=LOG_BAR if total is not None or hasattr(iterable, "__len__") else LOG_COUNT, **kwargs)


# A progress line in a log: counts, elapsed<remaining and rate, without the bar itself.
LOG_COUNT = "{desc}: {n_fmt}{unit} [{elapsed}, {rate_fmt}{postfix}]"
LOG_BAR = "{desc}: {n_fmt}/{total_fmt}{unit} ({percentage:.0f}%) [{elapsed}<{remaining}, {rate_fmt}{postfix}]"
