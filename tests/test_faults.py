"""A full disk, a read-only filesystem or a permission error while a stage writes its output: no partial
file under the final name (an earlier output stays as it was, byte for byte), no temporary file left,
and a message naming the output and what to do.

The disk faults are real: each test mounts a small tmpfs, writes a complete earlier output on it, then
fills it with a filler file until the kernel answers ENOSPC (or leaves only half the output's size free,
so the writer fails mid-file, or remounts it read-only) and runs the stage's real writer again. What the
libraries raise there is not what a simulation would guess: polars raises ``ComputeError`` (Parquet) or
an ``OSError`` without ``errno`` (CSV), safetensors its own ``SafetensorError``, all with Rust's
``(os error 28)`` in the text; pyarrow, tarfile and Python's own writes an ``OSError`` with ``errno``.
Mounting needs root (CAP_SYS_ADMIN); CI runs as root.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import gc
import http.server
import io
import os
import re
import subprocess
import tempfile
import threading
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from PIL import Image

from pipeline.core import files, tables
from pipeline.core.files import OutputError, replacing, write_json
from pipeline.core.markers import write_marker
from pipeline.core.shards import write_shard

from test_train import toy  # noqa: F401  (the separable toy crops and a tiny backbone, for features)

FULL = "the disk is full: free space there"
READ_ONLY = "the filesystem is read-only: run from a writable working directory"
DENIED = "permission denied: make that folder writable for you"


class SmallDisk:
    """A tmpfs of a few MiB mounted at ``root``: fill it up for real, or make it read-only."""

    def __init__(self, root: Path):
        self.root = root
        self.filler = root / "filler.bin"

    def free(self) -> int:
        st = os.statvfs(self.root)
        return st.f_bavail * st.f_frsize

    def fill(self, leave: int = 0) -> None:
        """Write the filler until the kernel says ENOSPC, then give back ``leave`` bytes (whole pages)."""
        with open(self.filler, "wb", buffering=0) as fh:
            with pytest.raises(OSError) as full:
                while True:
                    fh.write(bytes(1 << 16))
        assert full.value.errno == errno.ENOSPC and self.free() == 0
        if leave:
            os.truncate(self.filler, self.filler.stat().st_size - leave)
            assert self.free() <= leave

    def read_only(self) -> None:
        subprocess.run(["mount", "-o", "remount,ro", str(self.root)], check=True)

    def files(self) -> dict[str, bytes]:
        """Every file but the filler, by path under the mount: what the writers left."""
        return {str(p.relative_to(self.root)): p.read_bytes()
                for p in sorted(self.root.rglob("*")) if p.is_file() and p != self.filler}


def _mount_tmpfs(root: Path, size: str) -> str | None:
    """Mount a tmpfs at ``root``; None, or why it cannot be mounted here."""
    if os.geteuid() != 0:
        return "not root"
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(root)],
                              capture_output=True, text=True)
    except FileNotFoundError:
        return "no mount command"
    return done.stderr.strip() or f"mount exited {done.returncode}" if done.returncode else None


@pytest.fixture
def disk():
    """An 8 MiB tmpfs, mode 0755 under a folder anyone may enter (pytest's own are root-only), so that a
    process running as ``nobody`` meets the folder's permissions, not its parents'."""
    root = Path(tempfile.mkdtemp(prefix="lnclip-disk-"))
    root.chmod(0o755)
    why = _mount_tmpfs(root, "8m")
    if why:
        root.rmdir()
        pytest.skip(f"needs root to mount a tmpfs (CAP_SYS_ADMIN) for the real full-disk tests: {why}")
    try:
        yield SmallDisk(root)
    finally:
        busy = subprocess.run(["umount", str(root)], capture_output=True, text=True)
        if busy.returncode:  # tensors and frames of a test may still map files of the disk
            gc.collect()
            busy = subprocess.run(["umount", str(root)], capture_output=True, text=True)
        if busy.returncode:  # a writer left a file open on it: unmount anyway, then say so
            subprocess.run(["umount", "--lazy", str(root)], check=True)
        root.rmdir()
        assert not busy.returncode, f"cannot unmount {root}: {busy.stderr.strip()}"


# --- every stage's writer; each takes (root, version, request) and returns the outputs it writes -----
# Version 1 writes other bytes than version 0, so an attempt that wrongly succeeded would show.


def _png(rng) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _table(root, v, request):  # index videos.parquet, manifest frames/pairs.parquet, scores.parquet
    n = 20_000
    df = pl.DataFrame({"dataset": "d", "video_id": [f"real/{v}-{i:06d}" for i in range(n)],
                       "path": [f"videos/{v}/{i:06d}.mp4" for i in range(n)], "label": [i % 2 for i in range(n)],
                       "frame_count": np.random.default_rng(v).integers(0, 10_000, n)})
    out = root / "index" / "videos.parquet"
    tables.write_parquet(df, out, tables.VIDEOS, "videos")
    return [out]


def _shard(root, v, request):  # faces / import: the tar of crops and its frames table
    tar, table = root / "faces" / "train-00000.tar", root / "faces" / "train-00000.parquet"
    rng = np.random.default_rng(v)
    with write_shard(tar, table) as shard:
        for i in range(40):
            key = tables.sample_key(f"real/{i:03d}", v)
            record = {"dataset": "d", "video_id": f"real/{i:03d}", "split": "train", "label": 0,
                      "method": "real", "frame_idx": v, "key": key, "status": "ok"}
            shard.add(record, _png(rng), {"video_id": f"real/{i:03d}", "frame_idx": v})
    return [tar, table]


def _features(root, v, request):  # features.parquet of a split
    from pipeline.model.features import extract_features

    data = request.getfixturevalue("toy")
    out = root / "features" / "split.parquet"
    extract_features(data["frames"], ["val", "train"][v], data["backbone"], out, batch_size=32)
    return [out]


def _adapter(root, v, request):  # train: adapter.safetensors (safetensors' bytes, written by Python)
    from pipeline.model.detector import write_adapter

    out = root / "models" / "adapter.safetensors"
    write_adapter({"head.weight": torch.full((2, 40_000), float(v))}, {"ln_tuning": True, "l2_norm": True}, out,
                  {"seed": v})
    return [out]


@functools.cache
def _trained(backbone_dir: Path):
    """A tiny detector after one AdamW step, and its optimiser (made once: its backbone is root's)."""
    from pipeline.model.detector import Detector, load_backbone

    torch.manual_seed(0)
    detector = Detector(load_backbone(backbone_dir), ln_tuning=True, l2_norm=True)
    params = list(detector.trainable_parameters().values())
    opt = torch.optim.AdamW(params)
    sum(p.sum() for p in params).backward()
    opt.step()
    return detector, opt


def _checkpoint(root, v, request):  # train: the resumable state (safetensors' Rust writer), its log, state.json
    from pipeline.training.state import save_state

    detector, opt = _trained(request.getfixturevalue("backbone_dir"))
    step = 2 + 2 * v
    work = root / "work"
    save_state(work, step=step, epochs_done=v, detector=detector, opt=opt, best={}, rows=_log_rows(500, v),
               slerp_gen=torch.Generator(), info={"cfg_hash": "h", "notes": [f"note {i}" for i in range(2_000)]})
    return [work / f"state-{step:08d}.safetensors", work / f"log-{step:08d}.parquet", work / "state.json"]


def _log_rows(n: int, v: int = 0) -> list[dict]:
    return [{"kind": "train", "epoch": 0, "step": i, "lr": 1e-4, "loss": (1.0 + v) / (i + 1)} for i in range(n)]


def _train_log(root, v, request):  # train: train_log.parquet
    from pipeline.training.records import write_log

    out = root / "models" / "train_log.parquet"
    write_log(_log_rows(20_000 + v), out)
    return [out]


def _metrics_json(root, v, request):  # evaluate metrics.json, robustness.json, stats.json, code records
    out = root / "eval" / "metrics.json"
    write_json(out, {"video_auroc": 0.5 + v / 10, "per_video": {f"v{i}": i * v / 7 for i in range(20_000)}})
    return [out]


def _marker(root, v, request):  # fetch: the .done marker with checksums
    out = root / "resources" / "data.done"
    write_marker(out, {"kind": "demo", "files": {f"f{i}": f"{i * (v + 1):064x}" for i in range(5_000)}})
    return [out]


def _metrics_csv(root, v, request):  # report: metrics.csv
    from pipeline.report.tidy import write_metrics_csv

    out = root / "report" / "metrics.csv"
    per_method = {f"method{i}": {"video": {"auroc": (i + v) / 1e4}} for i in range(5_000)}
    write_metrics_csv(out, [{"model": "m", "benchmark": "b", "metrics": {"video": {"auroc": 0.5}, "per_method": per_method}}],
                      [])
    return [out]


def _report(root, v, request):  # report: report.html
    from pipeline.report.build import build_report

    out = root / "report" / "report.html"
    build_report(out, evaluations=[], datasets=[], trainings=[], provenance={}, title=f"run {v}", demo=False)
    return [out]


def _predict(suffix):  # predict --out FILE.csv / FILE.json (polars' CSV writer, or JSON)
    def write(root, v, request):
        from pipeline.predict.output import write_table

        n = 10_000
        df = pl.DataFrame({"path": [f"clips/{v}/{i:05d}.mp4" for i in range(n)], "p_fake": [i / n for i in range(n)]})
        return [write_table(df, root / "predict" / f"scores{suffix}")]
    return write


@pytest.fixture
def weights_server():
    """A loopback stand-in for the face-alignment weight host, serving two files."""
    served = {"a.pth": b"A" * 300_000, "b.npy": np.random.default_rng(0).bytes(400_000)}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = served[self.path.strip("/")]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _face_weights(root, v, request):  # fetch: face-alignment weights (torch.hub's downloader) + marker
    from pipeline.fetch import face_weights

    base = request.getfixturevalue("weights_server")
    names = ["a.pth", "b.npy"][: v + 1]  # version 1 adds a file: its download meets the full disk
    request.getfixturevalue("monkeypatch").setattr(
        face_weights, "weight_urls", lambda detector="sfd", mirror=None: {n: f"{base}/{n}" for n in names})
    dest = root / "weights" / "face_alignment"
    face_weights.fetch_face_weights(dest, "sfd", root / "weights" / "face_alignment.done")
    return [face_weights.checkpoints_dir(dest) / n for n in names]


WRITERS = {
    "table parquet (index, manifest, scores)": _table,
    "faces shard tar + frames parquet": _shard,
    "features parquet": _features,
    "train adapter.safetensors": _adapter,
    "train checkpoint (safetensors state, log, state.json)": _checkpoint,
    "train_log.parquet": _train_log,
    "json (metrics, robustness, stats)": _metrics_json,
    "fetch marker": _marker,
    "report metrics.csv": _metrics_csv,
    "report.html": _report,
    "predict --out csv": _predict(".csv"),
    "predict --out json": _predict(".json"),
    "face-alignment weights download": _face_weights,
}


def _attempt(disk, write, request, fault: str):
    """Write version 0, break the disk, attempt version 1: (its error, the outputs it names, before)."""
    outputs = write(disk.root, 0, request)
    before = disk.files()
    if fault == "read-only":
        disk.read_only()
    else:
        disk.fill(leave=0 if fault == "full" else sum(len(before[str(p.relative_to(disk.root))]) for p in outputs) // 2)
    with pytest.raises(OutputError) as caught:
        write(disk.root, 1, request)
    return caught.value, outputs, before


@pytest.mark.parametrize("fault", ["full", "full mid-file", "read-only"])
@pytest.mark.parametrize("stage", list(WRITERS))
def test_a_real_full_disk_leaves_the_earlier_output_and_names_the_path(disk, request, stage, fault):
    err, outputs, before = _attempt(disk, WRITERS[stage], request, fault)
    assert_names_an_output(err, outputs, *((errno.EROFS, READ_ONLY) if fault == "read-only" else (errno.ENOSPC, FULL)))
    # the earlier outputs are byte-identical, nothing half-written, no temporary file left anywhere
    assert disk.files() == before


def assert_names_an_output(err: OutputError, outputs: list[Path], code: int, what: str) -> None:
    """``err`` says what to do about the output being written: one of ``outputs`` or a new one beside them."""
    msg = str(err)
    named = re.fullmatch(rf"\[Errno {code}\] cannot write (\S+): {what}.*, then run the same command again\. "
                         rf"Nothing was written under that name \(.+\)", msg)
    assert named and err.errno == code, msg
    assert Path(named[1]) in outputs or Path(named[1]).parent in {p.parent for p in outputs}, msg


@pytest.mark.parametrize("fits", [1, 2], ids=["room for the tensors", "room for the tensors and the log"])
def test_a_resumable_state_survives_a_full_disk_whole(disk, request, fits):
    """The disk fills after the new tensors (and log) were written: the checkpoint a resumed run loads
    is still the earlier complete one, and no new file of the failed save is left behind."""
    from pipeline.training.state import load_state

    outputs = _checkpoint(disk.root, 0, request)
    before = disk.files()
    # whole pages, and one more: safetensors needs it while it writes (state.json needs more than one)
    disk.fill(leave=sum(-(-p.stat().st_size // 4096) * 4096 for p in outputs[:fits]) + 4096)
    stopped = ["log-00000004.parquet", "state.json"][fits - 1]
    with pytest.raises(OutputError, match=f"cannot write {disk.root / 'work' / stopped}: {FULL}"):
        _checkpoint(disk.root, 1, request)
    assert disk.files() == before
    state = load_state(disk.root / "work", "h")
    assert (state["step"], state["rows"][1]["loss"]) == (2, 0.5)


def test_the_message_is_what_a_failed_job_prints(disk):
    """The job's log line (the exception's text) carries the errno and says nothing was written."""
    out = disk.root / "m.json"
    disk.fill()
    with pytest.raises(OutputError) as caught:
        files.write_json(out, {"a": 1})
    assert str(caught.value) == (f"[Errno {errno.ENOSPC}] cannot write {out}: the disk is full: free space there (or "
                                 "point results/ at a larger disk), then run the same command again. Nothing was "
                                 f"written under that name ({os.strerror(errno.ENOSPC)})")
    assert disk.files() == {}


def test_the_command_line_prints_the_message_not_a_traceback(disk, tmp_path, capsys):
    """``python -m pipeline VERB`` (here ``manifest``, inputs on a good disk) says what to do, exit status 1."""
    from pipeline.__main__ import main

    videos = tmp_path / "videos.parquet"
    tables.write_parquet(pl.DataFrame({"dataset": "d", "video_id": ["real/000"], "label": [0], "split": "train"}),
                         videos, tables.VIDEOS, "videos")
    shard = tmp_path / "s.parquet"
    tables.write_parquet(pl.DataFrame({"dataset": "d", "video_id": ["real/000"], "split": "train", "label": [0],
                                       "frame_idx": [0], "shard": "s.tar", "status": "no_face"}),
                         shard, tables.FRAMES, "frames")
    disk.fill()
    assert main(["manifest", "--videos", str(videos), "--out-dir", str(disk.root / "m"), str(shard)]) == 1
    err = capsys.readouterr().err
    assert f"python -m pipeline manifest: [Errno 28] cannot write {disk.root / 'm' / 'frames.parquet'}: {FULL}" in err
    assert "Traceback" not in err and disk.files() == {}


def test_the_fixture_really_fills_and_unmounts(tmp_path):
    """The disk the tests above use is a real filesystem that answers ENOSPC, and is gone afterwards."""
    root = tmp_path / "disk"
    root.mkdir()
    why = _mount_tmpfs(root, "1m")
    if why:
        pytest.skip(f"needs root to mount a tmpfs (CAP_SYS_ADMIN) for the real full-disk tests: {why}")
    try:
        disk = SmallDisk(root)
        disk.fill()
        with pytest.raises(OSError) as full:
            (root / "x").write_bytes(b"x")
        assert full.value.errno == errno.ENOSPC and disk.filler.stat().st_size > 900_000
    finally:
        subprocess.run(["umount", str(root)], check=True)
    assert not os.path.ismount(root) and list(root.iterdir()) == []


@contextlib.contextmanager
def as_nobody():
    """Run the block with effective uid ``nobody`` (root writes through any permission bits)."""
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)


# writers that read no input from the test's own (root-only) folders while they run
NOBODY_CAN_RUN = ["table parquet (index, manifest, scores)", "faces shard tar + frames parquet",
                  "train adapter.safetensors", "train checkpoint (safetensors state, log, state.json)", "train_log.parquet", "json (metrics, robustness, stats)",
                  "report metrics.csv", "predict --out csv", "predict --out json"]


@pytest.mark.parametrize("stage", NOBODY_CAN_RUN)
def test_a_folder_not_writable_leaves_the_earlier_output_and_names_the_path(disk, request, stage):
    """Real too: the earlier output is root's, the second attempt runs as ``nobody`` in root's 0755 folder."""
    outputs = WRITERS[stage](disk.root, 0, request)
    before = disk.files()
    with as_nobody(), pytest.raises(OutputError) as caught:
        WRITERS[stage](disk.root, 1, request)
    assert_names_an_output(caught.value, outputs, errno.EACCES, DENIED)
    assert disk.files() == before


def test_a_results_folder_that_cannot_be_made_is_named(disk):
    target = disk.root / "results" / "ds" / "videos.parquet"
    with as_nobody(), pytest.raises(OutputError, match=rf"cannot write {target}: {DENIED}"):
        tables.write_parquet(pl.DataFrame({"video_id": ["a"], "label": [1]}), target, tables.VIDEOS, "videos")
    assert not (disk.root / "results").exists()


def test_errors_of_inputs_read_inside_the_block_are_not_relabelled(tmp_path):
    """Only failures to write the output are re-said; a missing or unreadable input keeps its own error.

    The one case still injected: the errors are raised by hand, as a reader of an input would raise
    them, because this checks the rule that tells an input's error from the output's, not a fault."""
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
    with pytest.raises(pl.exceptions.ComputeError, match="os error 13"):  # a Rust-side read error of an input
        with replacing(out):
            raise pl.exceptions.ComputeError("Permission denied (os error 13): /data/input.parquet")
    assert not out.exists() and not (tmp_path / "out.json.tmp").exists()
