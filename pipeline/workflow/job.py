"""The harness every workflow script runs its job in.

::

    with job(snakemake, compute=True) as sm:
        train(...)

* the job's messages go to its log file (and the console);
* a compute job (faces, features, train, evaluate, robustness) never reaches the internet: the Hugging
  Face libraries are switched to offline mode and ``TORCH_HOME`` points at the face-alignment weights
  the download rule fetched; torch uses the job's ``threads``;
* when the job succeeds it records the ``pipeline`` modules it imported (:mod:`.codekeys`), which the
  next plan keys its ``code`` param on.

A model that asks for ``devices: N > 1`` is trained by ``N`` processes that :func:`launch_distributed`
starts through ``torchrun`` inside the job.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

from pipeline.core import layout, logs
from pipeline.workflow import codekeys


def offline(root: str | Path = ".") -> dict:
    """Set a compute job's environment: no hub access, torch.hub files under ``resources/``.

    Call it before anything imports ``huggingface_hub``/``transformers`` (they read it at import).
    Returns what was set."""
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TORCH_HOME": str(Path(root).resolve() / layout.FACE_WEIGHTS)}
    os.environ.update(env)
    return env


@contextlib.contextmanager
def job(snakemake, *, compute: bool = False):
    """Run one job of the workflow (see the module docstring); yields ``snakemake``."""
    if compute:
        offline()
    logs.setup(snakemake.log[0])
    if compute:
        import torch

        torch.set_num_threads(max(1, int(snakemake.threads)))
    yield snakemake
    key = getattr(snakemake.params, "code", None)
    if key is not None:
        root = Path(snakemake.scriptdir).resolve().parents[1]  # workflow/scripts -> the checkout
        codekeys.write_record(layout.code_record(snakemake.log[0]), key, root)


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
