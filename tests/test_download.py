import json
from pathlib import Path
import logging
import stat
import zipfile

import pytest

from pipeline.fetch import archives
from pipeline.fetch import credentials
from pipeline.fetch import datasets
from pipeline.fetch import kaggle
from pipeline.core import markers


def make_zip(path, members: dict, symlink: str | None = None):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return path


def test_safe_extract_extracts_a_normal_archive(tmp_path):
    z = make_zip(tmp_path / "a.zip", {"FaceForensics++_C23/original/000.mp4": b"x", "csv/meta.csv": b"a,b\n"})
    names = archives.safe_extract(z, tmp_path / "out")
    assert sorted(names) == ["FaceForensics++_C23/original/000.mp4", "csv/meta.csv"]
    assert (tmp_path / "out/FaceForensics++_C23/original/000.mp4").read_bytes() == b"x"


@pytest.mark.parametrize("members, symlink, match", [
    ({"../evil.txt": b"x", "ok.txt": b"y"}, None, "outside"),
    ({"/abs/evil.txt": b"x"}, None, "outside"),
    ({"ok.txt": b"y"}, "link", "symbolic link"),
])
def test_safe_extract_refuses_escapes_and_writes_nothing(tmp_path, members, symlink, match):
    z = make_zip(tmp_path / "bad.zip", members, symlink)
    out = tmp_path / "out"
    with pytest.raises(archives.DownloadError, match=match):
        archives.safe_extract(z, out)
    assert not (tmp_path / "evil.txt").exists()
    assert not out.exists() or not any(out.iterdir())


def test_safe_extract_names_a_corrupt_archive(tmp_path):
    bad = tmp_path / "broken.zip"
    bad.write_bytes(b"PK\x03\x04 definitely not a zip")
    with pytest.raises(archives.DownloadError, match="broken.zip is not a valid zip"):
        archives.safe_extract(bad, tmp_path / "out")


def test_path_source_missing_tells_the_user_what_to_do(tmp_path):
    with pytest.raises(archives.DownloadError, match=r"datasets\.cdf\.source\.path: .* does not exist.*set"):
        datasets.fetch_dataset("cdf", {"path": str(tmp_path / "nope")}, tmp_path / "d", tmp_path / "m.done")
    assert not (tmp_path / "m.done").exists()


def test_path_source_writes_a_listing_marker(tmp_path):
    tree = tmp_path / "tree"
    (tree / "a").mkdir(parents=True)
    (tree / "a" / "v.mp4").write_bytes(b"1234")
    info = datasets.fetch_dataset("x", {"path": str(tree)}, tmp_path / "d", tmp_path / "m.done")
    assert info["file_count"] == 1 and info["bytes"] == 4
    assert json.loads((tmp_path / "m.done").read_text())["listing_sha256"] == info["listing_sha256"]
    (tree / "a" / "v.mp4").write_bytes(b"12345")
    assert markers.listing_digest(tree)[2] != info["listing_sha256"]


def test_kaggle_credentials_detection(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    assert not credentials.kaggle_credentials_present(env={}, home=home)
    assert credentials.kaggle_credentials_present(env={"KAGGLE_USERNAME": "u", "KAGGLE_KEY": "k"}, home=home)
    assert not credentials.kaggle_credentials_present(env={"KAGGLE_USERNAME": "u"}, home=home)
    (home / ".config" / "kaggle").mkdir(parents=True)
    (home / ".config" / "kaggle" / "kaggle.json").write_text("{}")
    assert credentials.kaggle_credentials_present(env={}, home=home)


def test_kaggle_without_credentials_says_how_to_set_them(tmp_path, monkeypatch):
    for var in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "KAGGLE_CONFIG_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    with pytest.raises(archives.DownloadError, match="KAGGLE_USERNAME and KAGGLE_KEY"):
        datasets.fetch_dataset("ff", {"kaggle": "xdxd003/ff-c23"}, tmp_path / "d", tmp_path / "m.done")


class FakeKaggleApi:
    """A local stand-in for KaggleApi: writes the archive the real client would write."""

    def __init__(self, members):
        self.members, self.calls = members, []

    def dataset_download_files(self, slug, path, unzip, quiet):
        self.calls.append((slug, path, unzip))
        make_zip(f"{path}/{slug.split('/')[1]}.zip", self.members)


def test_fetch_kaggle_extracts_checksums_and_removes_the_archive(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", "s3cr3t-key-value")
    api = FakeKaggleApi({"FaceForensics++_C23/original/000.mp4": b"v", "csv/x.csv": b"c"})
    with caplog.at_level(logging.DEBUG):
        info = kaggle.fetch_kaggle("xdxd003/ff-c23", tmp_path / "ds", api=api)
    assert api.calls == [("xdxd003/ff-c23", str(tmp_path / "ds"), False)]
    assert (tmp_path / "ds/FaceForensics++_C23/original/000.mp4").read_bytes() == b"v"
    assert not (tmp_path / "ds/ff-c23.zip").exists()
    assert len(info["archive_sha256"]) == 64 and info["members"] == 2
    assert "s3cr3t-key-value" not in caplog.text and "s3cr3t-key-value" not in json.dumps(info)


# ---------------------------------------------------------------------------- tar archives, truncation


def make_tar(path, members: dict, special: dict | None = None, mode: str = "w"):
    """A tar with regular ``members`` (name -> bytes) and ``special`` ones (name -> (type, link))."""
    import io
    import tarfile

    with tarfile.open(path, mode) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, (kind, link) in (special or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, link
            tf.addfile(info)
    return path


@pytest.mark.parametrize("mode", ["w", "w:gz"])
@pytest.mark.parametrize("members, special, match", [
    ({"ok.txt": b"y", "../evil.txt": b"x"}, None, r"'\.\./evil\.txt' would be written outside"),
    ({"ok.txt": b"y", "/tmp/abs-evil.txt": b"x"}, None, r"'/tmp/abs-evil\.txt' would be written outside"),
    ({"d/ok.txt": b"y", "d/../../evil.txt": b"x"}, None, "would be written outside"),
    ({"ok.txt": b"y"}, {"up": (b"2", "../../evil.txt")}, r"'up' is a symbolic link"),
    ({"ok.txt": b"y"}, {"passwd": (b"2", "/etc/passwd")}, r"'passwd' is a symbolic link"),
    ({"ok.txt": b"y"}, {"hard": (b"1", "/etc/passwd")}, r"'hard' is a hard link"),
    ({"ok.txt": b"y"}, {"tty": (b"3", "")}, r"'tty' is a device or fifo"),
])
def test_tar_escapes_links_and_devices_are_refused_and_nothing_is_written(tmp_path, mode, members, special, match):
    archive = make_tar(tmp_path / "bad.tar", members, special, mode)
    out = tmp_path / "dest" / "out"
    with pytest.raises(archives.DownloadError, match=match):
        archives.safe_extract(archive, out)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == ["bad.tar"]


def test_zip_member_climbing_out_of_a_folder_is_refused(tmp_path):
    z = make_zip(tmp_path / "bad.zip", {"d/ok.txt": b"y", "d/../../evil.txt": b"x"})
    with pytest.raises(archives.DownloadError, match=r"'d/\.\./\.\./evil\.txt' would be written outside"):
        archives.safe_extract(z, tmp_path / "dest" / "out")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["bad.zip"]


def _tar_cut_between_members(path):
    import tarfile

    with tarfile.open(path) as tf:
        second = tf.getmembers()[1]
    return path.read_bytes()[:second.offset]  # the first member whole, then nothing: no error from tarfile


@pytest.mark.parametrize("kind, cut", [
    ("zip", lambda p: p.read_bytes()[: p.stat().st_size * 2 // 3]),
    ("tar", lambda p: p.read_bytes()[: p.stat().st_size // 3]),
    ("tar", _tar_cut_between_members),
    ("tar.gz", lambda p: p.read_bytes()[: p.stat().st_size * 2 // 3]),
])
def test_truncated_archive_is_detected_deleted_and_fetched_again(tmp_path, kind, cut):
    """Through the Kaggle fetch (client replaced by a writer of the archive's bytes): a cut-short
    archive of any kind is refused before anything is extracted and deleted, so the next run fetches
    it again and then extracts it whole."""
    members = {"FaceForensics++_C23/original/000.mp4": b"v" * 4000, "FaceForensics++_C23/original/001.mp4": b"w" * 3000,
               "csv/meta.csv": b"a,b\n"}
    src = tmp_path / f"whole.{kind}"
    if kind == "zip":
        make_zip(src, members)
    else:
        make_tar(src, members, mode="w:gz" if kind == "tar.gz" else "w")
    whole = src.read_bytes()
    served = {"data": cut(src)}

    class Client:
        calls = 0

        def dataset_download_files(self, slug, path, unzip, quiet):
            Client.calls += 1
            (Path(path) / f"{slug.split('/')[1]}.{kind}").write_bytes(served["data"])

    dest = tmp_path / "resources" / "ffpp"
    with pytest.raises(archives.CorruptArchive, match=r"ff\.(zip|tar|tar\.gz) is not a (valid zip|complete tar) "
                                                      r"archive .*truncated.*deleted: run the workflow again"):
        kaggle.fetch_kaggle("someone/ff", dest, api=Client())
    assert list(dest.iterdir()) == []  # nothing extracted, the bad archive gone
    served["data"] = whole
    info = kaggle.fetch_kaggle("someone/ff", dest, api=Client())
    assert Client.calls == 2 and info["members"] == 3
    assert (dest / "FaceForensics++_C23/original/001.mp4").read_bytes() == b"w" * 3000
