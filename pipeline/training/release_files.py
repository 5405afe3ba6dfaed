"""The files of published checkpoints, read as data only.

* :func:`release_layout` tells which layout a weights folder (or the files a weights entry lists)
  holds: a GenD ``save_pretrained`` folder (``config.json`` + safetensors), a PyTorch Lightning
  checkpoint (a ``torch.save`` zip such as the LNCLIP-DF release's ``model.ckpt``) or a TorchScript
  archive (``model.torchscript``).
* :func:`read_lightning` loads a ``torch.save`` checkpoint with torch's ``weights_only`` unpickler.
  Every class or function its pickle names beyond tensors and plain containers (a run's config
  object, an enum member, or a payload) is replaced by an inert :class:`Opaque` stand-in that keeps
  the pickle's arguments and state: no such class is imported and nothing is called. Names from
  ``os``, ``posix``, ``nt`` or ``sys`` (which torch refuses anyway) refuse the file.
* :func:`read_torchscript` loads a TorchScript archive (TorchScript's own format: its loader rebuilds
  TorchScript types only, never Python objects) and returns its tensors.
"""

from __future__ import annotations

import logging
import pickle
import zipfile
from pathlib import Path

import torch

log = logging.getLogger("pipeline.released")

LAYOUTS = ("gend", "lightning", "torchscript")
BLOCKED_MODULES = ("os", "posix", "nt", "sys")  # modules whose functions run commands or exit


class ReleasedError(ValueError):
    """A published checkpoint that cannot be read, or does not map onto the detector."""


class Opaque:
    """Stands in for a class or function a checkpoint's pickle names (``name``): built from the
    pickle's arguments (``args``) and state (``state``), which it keeps; it never runs anything."""

    name = "?"

    def __new__(cls, *args, **kwargs):
        self = super().__new__(cls)
        self.args, self.state = args, None
        return self

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        self.state = state

    def __repr__(self):
        return f"<{self.name}{self.args!r}, not loaded>"


def fields(obj) -> dict:
    """The fields of a config as pickled: a dict itself, or an :class:`Opaque` object's state
    (``__dict__``, as pydantic pickles one); else ``{}``."""
    if isinstance(obj, Opaque):
        obj = obj.state[0] if isinstance(obj.state, tuple) else obj.state
        if isinstance(obj, dict) and isinstance(obj.get("__dict__"), dict):
            obj = obj["__dict__"]
    return obj if isinstance(obj, dict) else {}


def plain(value):
    """A pickled enum member (an :class:`Opaque` built as ``Enum(value)``) as its value; else ``value``."""
    return value.args[0] if isinstance(value, Opaque) and len(value.args) == 1 else value


def _zip_names(path: Path) -> list[str]:
    try:
        with zipfile.ZipFile(path) as z:
            return z.namelist()
    except (OSError, zipfile.BadZipFile):
        return []


def file_layout(path) -> str | None:
    """``torchscript`` (a ``torch.jit.save`` archive), ``lightning`` (a ``torch.save`` zip) or None."""
    names = _zip_names(Path(path))
    if any("/code/" in n or n.endswith("/constants.pkl") for n in names):
        return "torchscript"
    if any(n.endswith("/data.pkl") for n in names):
        return "lightning"
    return None


def release_layout(folder, files=None) -> tuple[str, Path]:
    """``(layout, source)`` of a published model's folder: ``("gend", folder)`` for a GenD
    ``save_pretrained`` folder, else the one checkpoint file among ``files`` (the weights entry's
    list; default: the folder's files) with its layout. Raises :class:`ReleasedError` naming what was
    found when there is no checkpoint or more than one."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ReleasedError(f"{folder}: no such folder of published weights")
    names = list(files) if files else sorted(p.name for p in folder.iterdir() if p.is_file() and p.name[0] != ".")
    if "config.json" in names:
        return "gend", folder
    found = {name: file_layout(folder / name) for name in names}
    checkpoints = [name for name, layout in found.items() if layout]
    if len(checkpoints) != 1:
        what = "no" if not checkpoints else "more than one"
        raise ReleasedError(f"{folder}: {what} checkpoint among {names or 'no files'} (a GenD folder has config.json; "
                            "a Lightning checkpoint or TorchScript archive is a torch zip file); list the one to "
                            "use in the weights entry, e.g. files: [model.ckpt] or files: [model.torchscript]")
    return found[checkpoints[0]], folder / checkpoints[0]


def _first_line(err: Exception) -> str:
    text = str(err)
    return text.split("WeightsUnpickler error:", 1)[-1].strip().splitlines()[0] if text else type(err).__name__


def read_lightning(path) -> tuple[dict, list[str]]:
    """``(checkpoint dict, names the pickle refers to that were replaced by stand-ins)`` of a
    ``torch.save`` checkpoint holding a dict with a ``state_dict``, read as data only."""
    path = Path(path)
    try:
        unsafe = sorted(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
    except (OSError, RuntimeError, ValueError, pickle.UnpicklingError) as err:
        raise ReleasedError(f"{path}: not a checkpoint written by torch.save ({_first_line(err)})") from None
    blocked = [name for name in unsafe if name.split(".")[0] in BLOCKED_MODULES]
    if blocked:
        raise ReleasedError(f"{path}: refused: its pickle calls {', '.join(blocked)}, which a checkpoint of weights "
                            "never needs (a payload); nothing in it was run. Use the file as published")
    stand_ins = [(type(name, (Opaque,), {"name": name}), name) for name in unsafe]
    try:
        with torch.serialization.safe_globals(stand_ins):
            ckpt = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
    except (RuntimeError, pickle.UnpicklingError) as err:
        raise ReleasedError(f"{path}: cannot be read as data only: {_first_line(err)}") from None
    state = ckpt.get("state_dict") if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or not all(isinstance(t, torch.Tensor) for t in state.values()):
        keys = sorted(map(str, ckpt))[:8] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ReleasedError(f"{path}: not a Lightning checkpoint (a dict whose 'state_dict' maps names to "
                            f"tensors); found {keys}")
    if unsafe:
        log.info("%s: kept as inert stand-ins, not imported: %s", path.name, ", ".join(unsafe))
    return ckpt, unsafe


def read_torchscript(path) -> tuple[dict[str, torch.Tensor], torch.jit.ScriptModule]:
    """``(tensors by name, module)`` of a TorchScript archive, on the CPU."""
    try:
        module = torch.jit.load(str(path), map_location="cpu")
    except RuntimeError as err:
        raise ReleasedError(f"{path}: not a TorchScript archive ({_first_line(err)})") from None
    return dict(module.state_dict()), module
