"""A full disk or a permission error while a stage writes its output: no partial file under the final
name (an earlier output stays as it was), no temporary file left, and a message naming the output and
what to do. Each stage's real writer runs; only the lowest-level write is made to fail, after it has
written part of its bytes (as a disk that fills up mid-file does)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import polars as pl
import pytest
import torch

from pipeline import faces
from pipeline.core import files, tables
from pipeline.core.files import OutputError, replacing, write_json
from pipeline.model.detector import write_adapter

FULL = (errno.ENOSPC, "the disk is full: free space there")
DENIED = (errno.EACCES, "permission denied: make that folder writable for you")


def fail_after_partial_write(monkeypatch, owner, name: str, err: tuple[int, str]):
    """Make ``owner.name`` write a few bytes to its target file, then raise ``err``."""
    real = getattr(owner, name)

    def broken(*args, **kwargs):
        target = next((a for a in args if isinstance(a, (str, os.PathLike))), None)
        if target is not None:  # Path.write_* (self is the target) or DataFrame.write_parquet(file)
            with open(target, "wb") as fh:
                fh.write(b"PARTIAL")
        else:  # TarWriter.close: the tar is complete on disk, then its last flush fails
            real(*args, **kwargs)
        raise OSError(err[0], os.strerror(err[0]))
    monkeypatch.setattr(owner, name, broken)


def _metrics(path):
    write_json(path, {"video_auroc": 0.5})


def _index(path):
    tables.write_parquet(pl.DataFrame({"video_id": ["a"], "label": [1]}), path, tables.VIDEOS, "videos")


def _adapter(path):
    write_adapter({"head.weight": torch.ones(2, 4)}, {"ln_tuning": True, "l2_norm": True}, path, {"seed": 0})


def _faces(path):
    videos = tables.conform(pl.DataFrame([{"video_id": "v", "path": "/nonexistent/v.mp4", "label": 0}]),
                            tables.VIDEOS, "videos")
    faces.extract_chunk(videos, path, path.with_suffix(".parquet"))


def _tar_writer():
    import webdataset

    return webdataset.TarWriter


WRITERS = {  # stage -> (write the output, (object, method) of the low-level write that fails)
    "evaluate metrics.json": (_metrics, lambda: (Path, "write_text")),
    "index videos.parquet": (_index, lambda: (pl.DataFrame, "write_parquet")),
    "train adapter.safetensors": (_adapter, lambda: (Path, "write_bytes")),
    "faces shard tar": (_faces, lambda: (_tar_writer(), "close")),
}


@pytest.mark.parametrize("err", [FULL, DENIED], ids=["ENOSPC", "EACCES"])
@pytest.mark.parametrize("stage", list(WRITERS))
def test_failed_write_leaves_no_partial_output_and_names_the_path(tmp_path, monkeypatch, stage, err):
    write, low_level = WRITERS[stage]
    out = tmp_path / "results" / "out.bin"
    write(out)  # an earlier, complete output
    before = sorted((p.name, p.read_bytes()) for p in out.parent.iterdir())
    fail_after_partial_write(monkeypatch, *low_level(), err)
    with pytest.raises(OutputError) as caught:
        write(out)
    monkeypatch.undo()
    msg = str(caught.value)
    assert f"cannot write {out}: {err[1]}" in msg and "run the workflow again" in msg, msg
    assert caught.value.errno == err[0]
    # the earlier output is untouched (never a partial one) and no temporary file is left
    assert sorted((p.name, p.read_bytes()) for p in out.parent.iterdir()) == before


def test_unwritable_results_folder_is_named(tmp_path, monkeypatch):
    target = tmp_path / "results" / "ds" / "videos.parquet"
    real_mkdir = Path.mkdir

    def denied(self, *args, **kwargs):
        if self == target.parent:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", denied)
    with pytest.raises(OutputError, match=rf"cannot write {target}: permission denied: make that folder writable"):
        _index(target)
    assert not target.parent.exists()


def test_errors_of_inputs_read_inside_the_block_are_not_relabelled(tmp_path):
    """Only failures to write the output are re-said; a missing or unreadable input keeps its own error."""
    out = tmp_path / "out.json"
    with pytest.raises(FileNotFoundError) as missing:
        with replacing(out):
            (tmp_path / "missing-input.json").read_text()
    assert not isinstance(missing.value, OutputError)
    other = str(tmp_path / "input.parquet")
    with pytest.raises(PermissionError) as denied:
        with replacing(out):
            raise PermissionError(errno.EACCES, "Permission denied", other)
    assert not isinstance(denied.value, OutputError) and denied.value.filename == other
    assert not out.exists() and not (tmp_path / "out.json.tmp").exists()


def test_the_message_is_what_a_failed_job_prints(tmp_path, monkeypatch):
    """The job's log line (the exception's text) carries the errno and says nothing was written."""
    out = tmp_path / "m.json"
    fail_after_partial_write(monkeypatch, Path, "write_text", FULL)
    with pytest.raises(OutputError) as caught:
        files.write_json(out, {"a": 1})
    assert str(caught.value) == (f"[Errno {errno.ENOSPC}] cannot write {out}: the disk is full: free space there (or "
                                 "point results/ at a larger disk), then run the workflow again. Nothing was written "
                                 f"under that name ({os.strerror(errno.ENOSPC)})")
    assert list(tmp_path.iterdir()) == []
