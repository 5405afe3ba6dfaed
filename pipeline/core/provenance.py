"""Provenance for the report and the metrics: package versions, code version, the machine and device."""

from __future__ import annotations

import importlib.metadata
import subprocess
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]


def package_versions(names=("torch", "transformers", "snakemake", "webdataset", "polars", "pyarrow",
                            "numpy", "opencv-python", "dlib-bin", "scikit-learn", "scikit-image")) -> dict:
    """Installed versions of the packages that shape the results (None when absent)."""
    out = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_revision(cwd: Path | str | None = None) -> str | None:
    """``git describe --always --dirty`` of the checkout, or None outside git."""
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=cwd or PACKAGE_DIR,
                             capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; else ``platform.processor()``)."""
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def device_description(device=None) -> str:
    """What computed on ``device``: ``cuda: <GPU model>`` for a GPU, else ``cpu: <CPU model>``."""
    kind = str(device if device is not None else "cpu")
    if kind.startswith("cuda"):
        import torch

        return f"cuda: {torch.cuda.get_device_name(torch.device(kind))}"
    if kind.startswith("mps"):
        return "mps: Apple GPU"
    return f"cpu: {cpu_model()}"


def host_provenance() -> dict:
    """Python, platform and CPU/GPU of the machine that runs this, for the report's provenance."""
    import platform

    out = {"python": f"{platform.python_implementation()} {platform.python_version()}",
           "platform": platform.platform(), "cpu": cpu_model()}
    try:
        import torch

        if torch.cuda.is_available():
            out["gpu"] = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
    except ImportError:
        pass
    return out
