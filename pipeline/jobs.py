"""What a workflow job asks of the machine: CPUs, GPUs, memory, runtime, and its environment.

The rules size themselves from the config's ``resources:`` section (and, for CPUs, from the loader
workers and face threads the config already sets), so a cluster profile holds only site settings.
Memory and runtime grow with the attempt: a job killed for running out of memory or time is
resubmitted (``--retries``) with ``attempt`` times its first request.

Compute jobs (faces, train, evaluate) never reach the internet: :func:`offline_job` switches the
Hugging Face libraries to offline mode and points ``TORCH_HOME`` at the weights the download rules
fetched. A model that asks for ``devices: N > 1`` is trained by ``N`` processes that
:func:`launch_distributed` starts through ``torchrun`` inside the job.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# First-attempt size of a rule the config's `resources:` section does not mention.
DEFAULT_SIZE = {"mem_mb": 4000, "runtime": 60}
# Where torch.hub (face-alignment's weights) keeps its files, relative to the working directory.
TORCH_HOME = "resources/torch"


def job_size(config: dict, rule: str, attempt: int = 1) -> dict:
    """``mem_mb`` and ``runtime`` (minutes) of one attempt of ``rule``: attempt x the configured size."""
    size = {**DEFAULT_SIZE, **config.get("resources", {}).get(rule, {})}
    return {key: int(size[key]) * max(1, int(attempt)) for key in ("mem_mb", "runtime")}


def cpus_per_device(workers: int) -> int:
    """CPUs per GPU of a job feeding the GPU with ``workers`` loader processes (at least one)."""
    return max(1, int(workers))


def devices(model_cfg: dict) -> int:
    """GPUs a model's training job uses (``devices:`` of its entry, default 1)."""
    return int(model_cfg.get("devices", 1))


def offline_job(root: str | Path = ".") -> dict:
    """Set the environment of a compute job: no hub access, torch.hub weights under ``resources/``.

    Call it before anything imports ``huggingface_hub``/``transformers`` (they read it at import).
    Returns what was set."""
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TORCH_HOME": str(Path(root).resolve() / TORCH_HOME)}
    os.environ.update(env)
    return env


def in_distributed_launch() -> bool:
    """True inside a process that torchrun started (it sets LOCAL_RANK and WORLD_SIZE)."""
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def torchrun_command(script: str | Path, nproc: int) -> list[str]:
    """``torchrun --standalone --nproc-per-node N script`` with this interpreter (the job's environment)."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", str(script)]


def launch_distributed(script: str | Path, nproc: int) -> bool:
    """Run ``script`` as ``nproc`` torchrun processes, unless one process is enough or we are one of them.

    Returns True when it launched (and the processes succeeded: a failure raises), so the caller stops;
    False when the caller should do the work itself."""
    if nproc <= 1 or in_distributed_launch():
        return False
    subprocess.run(torchrun_command(script, nproc), check=True)
    return True
