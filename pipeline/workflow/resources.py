"""What a workflow job asks of the machine: CPUs, GPUs, memory and runtime.

The rules size themselves from the config's ``resources:`` section (and, for CPUs, from the loader
workers and face threads the config already sets), so a cluster profile holds only site settings.
Memory and runtime grow with the attempt: a job killed for running out of memory or time is
resubmitted (``--retries``) with ``attempt`` times its first request.
"""

from __future__ import annotations

def job_size(config: dict, rule: str, attempt: int = 1) -> dict:
    """``mem_mb`` and ``runtime`` (minutes) of one attempt of ``rule``: attempt x the configured size
    (the schema gives every rule of the ``resources:`` section its default size)."""
    size = config["resources"][rule]
    return {key: int(size[key]) * max(1, int(attempt)) for key in ("mem_mb", "runtime")}


def cpus_per_device(workers: int) -> int:
    """CPUs per GPU of a job feeding the GPU with ``workers`` loader processes (at least one)."""
    return max(1, int(workers))

