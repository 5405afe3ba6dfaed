"""Shards are untrusted files: both readers (training's random access, evaluation's stream) refuse a
shard with a planted member, a link, a device, or a shard cut short, naming the shard."""

from __future__ import annotations

import io
import json
import tarfile

import numpy as np
import polars as pl
import pytest
import torch
import webdataset as wds
from PIL import Image

from pipeline.core import codec
from pipeline.model.inputs import ShardCrops, shard_dataset
from pipeline.core.shards import ShardError, index_members
from pipeline.core.tables import sample_key


def _png(seed: int) -> bytes:
    rgb = np.random.default_rng(seed).integers(0, 256, (24, 24, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def good_shard(path, n=4, crop_codec="png"):
    """A shard as the faces stage writes it (``TarWriter``, ``mtime=0``) and its frames table."""
    rows = []
    with open(path, "wb") as fh:
        writer = wds.TarWriter(fh, mtime=0, encoder=False)
        for i in range(n):
            video_id = f"DF/{i:03d}_{i + 1:03d}"
            key = sample_key(video_id, 8 * i)
            info = {"video_id": video_id, "frame_idx": 8 * i, "label": i % 2}
            crop = _png(i) if crop_codec == "png" else codec.encode(codec.decode(_png(i), key), crop_codec)
            writer.write({"__key__": key, crop_codec: crop, "json": json.dumps(info).encode()})
            rows.append({"shard": str(path), "key": key, "label": i % 2, "video_id": video_id})
        writer.close()
    return path, pl.DataFrame(rows)


def read_both(shard, frames):
    """Every crop through the evaluation stream and through training's random access."""
    streamed = [s["key"] for s in shard_dataset([shard], None, train=False, image_size=16, seed=0, epoch=0,
                                                augment=None)]
    crops = ShardCrops(frames, image_size=16, augment=None, seed=0)
    return streamed, [crops[i]["key"] for i in range(len(crops))]


def test_a_good_shard_is_read_whole_by_both_readers(tmp_path):
    shard, frames = good_shard(tmp_path / "s.tar")
    members = index_members(shard)
    assert sorted(members) == sorted(f"{k}.{e}" for k in frames["key"] for e in ("png", "json"))
    data = shard.read_bytes()
    offset, size = members[f"{frames['key'][0]}.png"]
    assert data[offset:offset + size] == _png(0)
    streamed, random_access = read_both(shard, frames)
    assert streamed == random_access == frames["key"].to_list()



def test_workers_forked_after_the_parent_read_get_every_crop_intact(tmp_path):
    """Loader workers forked after the main process opened a shard share its descriptor; reads must
    not depend on the shared file offset (two workers racing on seek + read got each other's bytes)."""
    from pipeline.training.loader import eval_loader

    shard, frames = good_shard(tmp_path / "s.tar", n=64)
    crops = ShardCrops(frames, image_size=24, augment=None, seed=0)
    expected = torch.stack([crops[i]["pixel_values"] for i in range(len(crops))])  # the parent opens the shard
    for _ in range(3):
        loader = eval_loader(crops, batch_size=2, workers=2)
        got = torch.cat([b["pixel_values"] for b in loader])
        assert torch.equal(got, expected)
        del loader

def test_qoi_and_png_shards_give_the_same_pixels_through_both_readers(tmp_path):
    pixels = {}
    for crop_codec in codec.CODECS:
        shard, frames = good_shard(tmp_path / f"{crop_codec}.tar", crop_codec=crop_codec)
        assert all(name.endswith((f".{crop_codec}", ".json")) for name in index_members(shard))
        streamed = shard_dataset([shard], None, train=False, image_size=16, seed=0, epoch=0, augment=None)
        crops = ShardCrops(frames, image_size=16, augment=None, seed=0)
        pixels[crop_codec] = ([s["pixel_values"] for s in streamed], [c["pixel_values"] for c in crops])
    for qoi_read, png_read in zip(pixels["qoi"], pixels["png"]):  # streamed, then random access
        assert len(qoi_read) == 4 and all(torch.equal(x, y) for x, y in zip(qoi_read, png_read))


def _planted(tmp_path, add):
    """A good shard with one more member appended by ``add(tar)``."""
    shard, frames = good_shard(tmp_path / "bad.tar")
    with tarfile.open(shard, "a") as tar:
        add(tar)
    return shard, frames


def _file(name: str, data: bytes = b"x"):
    def add(tar):
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return add


def _special(name: str, kind: bytes, target: str = ""):
    def add(tar):
        info = tarfile.TarInfo(name)
        info.type, info.linkname = kind, target
        tar.addfile(info)
    return add


@pytest.mark.parametrize("add, what", [
    (_file("evil.py", b"import os"), r"unexpected member 'evil\.py'"),
    (_file("a__f000001.png.exe"), r"unexpected member 'a__f000001\.png\.exe'"),
    (_file("../outside.png"), r"unexpected member '\.\./outside\.png'"),
    (_file("sub/dir.png"), r"unexpected member 'sub/dir\.png'"),
    (_special("link__f000001.png", tarfile.SYMTYPE, "/etc/passwd"), "is a symbolic link"),
    (_special("hard__f000001.png", tarfile.LNKTYPE, "DF-000_001__f000000.png"), "is a hard link"),
    (_special("dev__f000001.png", tarfile.CHRTYPE), "is a device or fifo"),
    (_special("fifo__f000001.png", tarfile.FIFOTYPE), "is a device or fifo"),
    (_special("folder", tarfile.DIRTYPE), "is not a regular file"),
])
def test_planted_members_are_refused_naming_the_shard(tmp_path, add, what):
    shard, frames = _planted(tmp_path, add)
    for read in (index_members, lambda s: read_both(s, frames)):
        with pytest.raises(ShardError, match=rf"shard {shard}: .*{what}.*Refusing to read it: delete it and its "
                                             r"\.parquet and run the workflow again"):
            read(shard)


def _member_end(shard, k: int) -> int:
    with tarfile.open(shard) as tar:
        m = tar.getmembers()[k]
    return m.offset_data + -(-m.size // 512) * 512


@pytest.mark.parametrize("cut, why", [
    (lambda shard: _member_end(shard, 3) - 100, r"inside|past the end|unexpected end"),  # inside a member's data
    (lambda shard: _member_end(shard, 3), "no end-of-archive marker"),  # between members: a reader stops early
    (lambda shard: _member_end(shard, 7), "no end-of-archive marker"),  # after the last member
    (lambda shard: 700, r"inside|past the end|unexpected end"),
    (lambda shard: 0, "empty file"),
])
def test_a_truncated_shard_is_reported_not_half_read(tmp_path, cut, why):
    shard, frames = good_shard(tmp_path / "cut.tar")
    data = shard.read_bytes()
    shard.write_bytes(data[:cut(shard)])
    for read in (index_members, lambda s: read_both(s, frames)):
        with pytest.raises(ShardError, match=rf"shard {shard} is truncated \(.*({why}).*\): it was cut short"):
            read(shard)


def test_an_empty_shard_is_complete(tmp_path):
    """A chunk whose videos gave no crop writes a shard with no member: valid, nothing to read."""
    shard, _ = good_shard(tmp_path / "empty.tar", n=0)
    assert index_members(shard) == {}
    assert list(shard_dataset([shard], None, train=False, image_size=16, seed=0, epoch=0, augment=None)) == []
