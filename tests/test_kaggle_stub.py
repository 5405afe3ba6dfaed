"""``fetch_kaggle`` through the REAL ``kaggle`` client (``api=None``) against a stub server on 127.0.0.1.

Nothing here reaches a real host: the stub listens on 127.0.0.1:7777, every kagglesdk endpoint is
pointed at it, and ``socket.getaddrinfo`` refuses to resolve any name but loopback ones (a test that
tried would fail at teardown).

What the real client (kaggle 2.2.4 / kagglesdk) does for ``dataset_download_files("xdxd003/ff-c23")``:

1. ``authenticate()``: with ``KAGGLE_USERNAME``/``KAGGLE_KEY`` set (and no ``KAGGLE_API_TOKEN`` or
   ``~/.kaggle/access_token``) it takes the legacy API key without any request.
2. ``POST {endpoint}/v1/datasets.DatasetApiService/DownloadDataset``, JSON body
   ``{"ownerSlug": "xdxd003", "datasetSlug": "ff-c23"}``, ``Authorization: Basic base64(user:key)``,
   streamed. Kaggle answers with a 302 to a signed storage URL; ``requests`` follows it as a GET and,
   the storage host being another host, drops the Authorization header. The final response's body is
   written to ``<path>/ff-c23.zip`` (size checked against Content-Length, mtime set from
   Last-Modified, a ``ff-c23.zip.kaggle-partial`` resume marker written while downloading and
   removed once complete). An HTTP error on either hop raises ``requests.HTTPError`` before any file
   is written; ``fetch_kaggle`` turns it into a ``DownloadError`` that names the dataset, the status
   and what to do.

Note on ``KAGGLE_API_ENVIRONMENT``: kagglesdk maps ``TEST`` to http://localhost:7777, but kaggle
2.2.4's ``KaggleApi.build_kaggle_client`` passes ``env=KaggleEnv.PROD`` explicitly unless its
import-time ``KaggleApi.args`` holds ``--local`` (``KAGGLE_API_ENVIRONMENT=LOCALHOST``, i.e.
http://localhost:80), so ``TEST`` alone is ignored by the CLI class. The fixture sets ``TEST`` anyway
and points every entry of kagglesdk's endpoint table (PROD included) at the TEST endpoint; the URL
paths are therefore the production ones (``/v1/...``, no ``/api`` prefix).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import random
import socket
import tarfile
import threading
import zipfile
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

pytest.importorskip("kagglesdk")
pytest.importorskip("requests")

from pipeline.fetch import archives  # noqa: E402
from pipeline.fetch import datasets  # noqa: E402
from pipeline.fetch import kaggle  # noqa: E402

HOST, PORT = "127.0.0.1", 7777
SLUG = "xdxd003/ff-c23"
USER = "tester"
KEY = "kgl-7f3c9a1e5b2d48c6a0e9f1d3b7c5a2e4"  # secret-looking; must never surface
API_PATH = "/v1/datasets.DatasetApiService/DownloadDataset"
COMPETITION_PATH = "/v1/competitions.CompetitionApiService/DownloadDataFiles"
COMPETITION = "deepfake-detection-challenge"
STORAGE_PATH = "/storage/datasets/xdxd003/ff-c23/ff-c23.zip"
SIGNED_QUERY = "?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Expires=600&X-Goog-Signature=0123abcd"
# Kaggle redirects to another host (storage.googleapis.com); 127.0.0.1 is "another host" than the
# "localhost" API endpoint, so requests treats the hop exactly like the real cross-host redirect.
STORAGE_URL = f"http://{HOST}:{PORT}{STORAGE_PATH}{SIGNED_QUERY}"

FFPP_MEMBERS = {
    "FaceForensics++_C23/original/000.mp4": b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8,
    "FaceForensics++_C23/Deepfakes/000_003.mp4": b"\x00\x00\x00\x18ftypisom" + bytes(range(255, -1, -1)) * 8,
    "csv/FF++_Metadata.csv": b"File Path,Label,Frame Count,Width,Height,Codec,File Size(MB)\n"
                             b"original/000.mp4,REAL,396,640,480,h264,0.01\n"
                             b"Deepfakes/000_003.mp4,FAKE,396,640,480,h264,0.01\n",
}


def make_zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=(2024, 5, 1, 12, 0, 0)), data)
    return buf.getvalue()


# --------------------------------------------------------------------------------------------
# the stub


class StubKaggle:
    """What the stub serves (set per test) and what it saw."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        self.archive = b""
        self.api_error: tuple[int, str, bytes] | None = None  # (status, content type, body)
        self.storage_error: int | None = None
        self.storage_path = STORAGE_PATH
        self.cut_after: int | None = None  # next full GET: send only this many bytes, then drop the connection
        self.down = False  # after the cut: drop every storage connection without an answer
        self.sent: list[tuple[str | None, int, int]] = []  # (Range header, status, body bytes) per storage GET

    def storage_url(self) -> str:
        return f"http://{HOST}:{PORT}{self.storage_path}{SIGNED_QUERY}"

    def record(self, handler, body: bytes) -> None:
        with self.lock:
            self.requests.append({"method": handler.command, "path": handler.path,
                                  "headers": {k.lower(): v for k, v in handler.headers.items()},
                                  "body": body})


def make_handler(stub: StubKaggle):
    class Handler(BaseHTTPRequestHandler):
        timeout = 10  # a response the client abandons (it resumes with a ranged request) cannot block

        def log_message(self, fmt, *args):  # keep the server quiet (stderr is under test)
            pass

        def send(self, status, body=b"", headers=()):
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            stub.record(self, body)
            if self.path not in (API_PATH, COMPETITION_PATH):
                return self.send(404, b'{"code": 404, "message": "no such RPC"}',
                                 [("Content-Type", "application/json")])
            if stub.api_error is not None:
                status, ctype, payload = stub.api_error
                return self.send(status, payload, [("Content-Type", ctype)])
            return self.send(302, headers=[("Location", stub.storage_url())])

        def do_GET(self):
            stub.record(self, b"")
            if self.path.split("?")[0] != stub.storage_path:
                return self.send(404, b"not found", [("Content-Type", "text/plain")])
            if stub.storage_error is not None:
                return self.send(stub.storage_error, b"<Error><Code>AccessDenied</Code></Error>",
                                 [("Content-Type", "application/xml")])
            if stub.down:  # an outage: the connection drops before any answer
                self.close_connection = True
                return None
            data, etag = stub.archive, '"' + hashlib.md5(stub.archive).hexdigest() + '"'
            headers = [("Content-Type", "application/octet-stream"),
                       ("Last-Modified", formatdate(1714564800, usegmt=True)), ("ETag", etag),
                       ("Accept-Ranges", "bytes")]
            ranged = self.headers.get("Range")
            if ranged and self.headers.get("If-Range", etag) == etag:  # resume: the rest of the file
                start = int(ranged.removeprefix("bytes=").split("-")[0])
                stub.sent.append((ranged, 206, len(data) - start))
                return self.send(206, data[start:], headers + [
                    ("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")])
            if stub.cut_after is not None:  # announce the whole file, send part of it, drop the line
                cut, stub.cut_after, stub.down = stub.cut_after, None, True
                self.send_response(200)
                for k, v in headers + [("Content-Length", str(len(data)))]:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data[:cut])
                self.wfile.flush()
                stub.sent.append((None, 200, cut))
                self.close_connection = True
                return None
            stub.sent.append((None, 200, len(data)))
            return self.send(200, data, headers)

    return Handler


@pytest.fixture
def stub():
    state = StubKaggle()
    try:
        server = ThreadingHTTPServer((HOST, PORT), make_handler(state))
    except OSError as exc:
        pytest.skip(f"cannot run the Kaggle stub: {HOST}:{PORT} is busy or unavailable ({exc}); "
                    "kagglesdk's TEST endpoint is fixed at port 7777")
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def kaggle_env(stub, tmp_path, monkeypatch):
    """Credentials in the environment, a throwaway HOME, every endpoint on the stub, no real host."""
    home = tmp_path / "home"
    config = tmp_path / "kaggle-config"
    home.mkdir()
    config.mkdir()
    for var in ("KAGGLE_API_TOKEN", "KAGGLE_KERNEL_RUN_TYPE", "KAGGLE_DATA_PROXY_URL", "KAGGLE_API_V1_TOKEN",
                "KAGGLE_IAP_TOKEN", "VERBOSE", "VERBOSE_OUTPUT", "NETRC", "XDG_CONFIG_HOME",
                "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy",
                "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    monkeypatch.setenv("no_proxy", "localhost,127.0.0.1")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(config))
    monkeypatch.setenv("KAGGLE_API_ENVIRONMENT", "TEST")
    monkeypatch.setenv("KAGGLE_USERNAME", USER)
    monkeypatch.setenv("KAGGLE_KEY", KEY)

    # No real host, ever: loopback names only, and "localhost" pinned to the IPv4 loopback the stub
    # listens on (so a stranger on [::1]:7777 cannot answer instead).
    real_getaddrinfo = socket.getaddrinfo
    refused: list[str] = []

    def loopback_only(host, port, family=0, type=0, proto=0, flags=0):
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name in ("localhost", HOST):
            return real_getaddrinfo(HOST, port, socket.AF_INET, type, proto, flags)
        refused.append(name)
        raise socket.gaierror(socket.EAI_NONAME, f"test: refusing to resolve non-loopback host {name!r}")

    monkeypatch.setattr(socket, "getaddrinfo", loopback_only)

    # Importing kaggle runs KaggleApi() + authenticate() and fixes class attributes from the
    # environment; do it (if not done yet) under the patched environment, then pin them anyway.
    from kaggle.api.kaggle_api_extended import KaggleApi
    from kagglesdk import kaggle_env as sdk_env

    monkeypatch.setattr(KaggleApi, "config_dir", str(config))
    monkeypatch.setattr(KaggleApi, "config", str(config / "kaggle.json"))
    monkeypatch.setattr(KaggleApi, "args", [])  # the default: PROD env, not verbose
    test_endpoint = sdk_env.get_endpoint(sdk_env.KaggleEnv.TEST)
    assert test_endpoint == f"http://localhost:{PORT}"
    for env in sdk_env.KaggleEnv:
        monkeypatch.setitem(sdk_env._env_to_endpoint, env, test_endpoint)

    yield tmp_path
    assert not refused, f"the client tried to reach non-loopback hosts: {refused}"


def assert_no_secret(*texts: str) -> None:
    basic = base64.b64encode(f"{USER}:{KEY}".encode()).decode()
    for text in texts:
        assert KEY not in text
        assert basic not in text


def all_log_text(caplog) -> str:
    return caplog.text + "\n".join(r.getMessage() for r in caplog.records)


# --------------------------------------------------------------------------------------------


def test_real_client_downloads_extracts_and_hides_the_key(kaggle_env, stub, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    stub.archive = make_zip(FFPP_MEMBERS)
    dest = kaggle_env / "resources" / "ffpp"

    info = kaggle.fetch_kaggle(SLUG, dest)

    # the requests the real client made
    assert [(r["method"], r["path"]) for r in stub.requests] == [
        ("POST", API_PATH), ("GET", STORAGE_PATH + SIGNED_QUERY)]
    api_call, storage_get = stub.requests
    assert api_call["headers"]["host"] == f"localhost:{PORT}"
    assert api_call["headers"]["content-type"] == "application/json"
    assert json.loads(api_call["body"]) == {"ownerSlug": "xdxd003", "datasetSlug": "ff-c23"}
    scheme, _, token = api_call["headers"]["authorization"].partition(" ")
    assert scheme == "Basic" and base64.b64decode(token).decode() == f"{USER}:{KEY}"
    # the signed storage URL is on another host: the credentials do not follow the redirect
    assert "authorization" not in storage_get["headers"]
    assert "range" not in storage_get["headers"]  # a fresh download, not a resume

    # extracted tree, archive gone, resume marker gone, checksum of what was served
    for name, data in FFPP_MEMBERS.items():
        assert (dest / name).read_bytes() == data
    assert not (dest / "ff-c23.zip").exists()
    assert not (dest / "ff-c23.zip.kaggle-partial").exists()
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()) == sorted(FFPP_MEMBERS)
    assert info == {"kind": "kaggle", "kaggle": SLUG, "members": len(FFPP_MEMBERS),
                    "archive_sha256": hashlib.sha256(stub.archive).hexdigest()}

    # the key is nowhere: not in what was printed, logged or returned, nor in any file left behind
    out, err = capsys.readouterr()
    assert f"Dataset URL: https://www.kaggle.com/datasets/{SLUG}" in out  # quiet=False went through
    assert_no_secret(out, err, all_log_text(caplog), json.dumps(info))
    for path in kaggle_env.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path


def test_real_client_path_traversal_member_is_refused(kaggle_env, stub, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    stub.archive = make_zip({"FaceForensics++_C23/original/000.mp4": b"video", "../evil.txt": b"pwned"})
    root = kaggle_env / "resources"
    dest = root / "ffpp"
    root.mkdir()
    (root / "keep.txt").write_text("a sibling of dest that must stay as it is")
    before = {p for p in kaggle_env.rglob("*")}

    with pytest.raises(archives.DownloadError) as excinfo:
        kaggle.fetch_kaggle(SLUG, dest)

    assert "'../evil.txt'" in str(excinfo.value) and "outside" in str(excinfo.value)
    assert [(r["method"], r["path"].split("?")[0]) for r in stub.requests] == [
        ("POST", API_PATH), ("GET", STORAGE_PATH)]
    # nothing outside dest: no evil.txt anywhere, and the only new paths are dest and its content
    assert not any(p.name == "evil.txt" for p in kaggle_env.rglob("*"))
    new = {p for p in kaggle_env.rglob("*")} - before
    assert all(p == dest or p.is_relative_to(dest) for p in new), new
    assert (root / "keep.txt").read_text() == "a sibling of dest that must stay as it is"
    # inside dest: the refused archive stays (fetch_kaggle removes it only after a good extraction),
    # and none of its members were extracted (every member is checked before anything is written)
    assert sorted(p.name for p in dest.iterdir()) == ["ff-c23.zip"]
    assert (dest / "ff-c23.zip").read_bytes() == stub.archive
    out, err = capsys.readouterr()
    assert_no_secret(out, err, all_log_text(caplog), str(excinfo.value))


@pytest.mark.parametrize("where, status, ctype, body", [
    ("api", 403, "text/html", b"<html>Forbidden</html>"),                               # terms not accepted
    ("api", 404, "application/json", b'{"code": 404, "message": "Dataset not found"}'),  # no such dataset
    ("storage", 403, None, None),                                                        # signed URL expired
], ids=["api-403", "api-404-json", "storage-403"])
def test_real_client_http_error_is_explained_and_leaves_no_archive(kaggle_env, stub, capsys, caplog,
                                                                    where, status, ctype, body):
    requests = pytest.importorskip("requests")
    caplog.set_level(logging.DEBUG)
    stub.archive = make_zip(FFPP_MEMBERS)
    if where == "api":
        stub.api_error = (status, ctype, body)
    else:
        stub.storage_error = status
    dest = kaggle_env / "resources" / "ffpp"

    # fetch_kaggle explains the real client's requests.HTTPError: dataset, status, what to do
    with pytest.raises(archives.DownloadError) as excinfo:
        kaggle.fetch_kaggle(SLUG, dest)

    err = excinfo.value
    assert isinstance(err.__cause__, requests.HTTPError)
    assert err.__cause__.response.status_code == status
    assert SLUG in str(err) and f"HTTP {status}" in str(err)
    assert ("terms" in str(err)) if status == 403 else ("slug" in str(err))
    if ctype == "application/json":
        # kagglesdk raises with the server's JSON "message" as the whole text (no status in it)
        assert "Dataset not found" in str(err)
    expected = [("POST", API_PATH)] + ([("GET", STORAGE_PATH)] if where == "storage" else [])
    assert [(r["method"], r["path"].split("?")[0]) for r in stub.requests] == expected
    # the error comes from the RPC call itself, before download_file: nothing is written
    assert dest.is_dir() and list(dest.iterdir()) == []
    out, errtext = capsys.readouterr()
    assert_no_secret(out, errtext, all_log_text(caplog), str(err))


# --------------------------------------------------------------------------------------------
# real life: interruptions, competitions, broken and malicious archives


def big_archive() -> bytes:
    """A zip larger than the client's 1 MiB write chunk, so an interruption leaves a partial file."""
    rng = random.Random(5)
    members = dict(FFPP_MEMBERS)
    members["FaceForensics++_C23/original/001.mp4"] = bytes(rng.getrandbits(8) for _ in range(1_600_000))
    return make_zip(members)


@pytest.fixture
def no_backoff(monkeypatch):
    """The client waits 2, 4, 8... s between retries; the test need not."""
    import sys

    from kaggle.api.kaggle_api_extended import KaggleApi  # noqa: F401  (``kaggle.api`` is an object)

    monkeypatch.setattr(sys.modules["kaggle.api.kaggle_api_extended"].time, "sleep", lambda seconds: None)


def test_interrupted_download_resumes_with_a_ranged_request(kaggle_env, stub, no_backoff, capsys, caplog):
    stub.archive = big_archive()
    total = len(stub.archive)
    dest = kaggle_env / "resources" / "ffpp"
    stub.cut_after = 1_300_000  # the line drops after 1.3 MB, and stays down for the client's retries

    with pytest.raises(archives.DownloadError, match=r"interrupted .*partial archive is kept: run the workflow "
                                                     r"again to resume"):
        kaggle.fetch_kaggle(SLUG, dest)
    partial = dest / "ff-c23.zip"
    kept = partial.stat().st_size
    assert 0 < kept < total and (dest / "ff-c23.zip.kaggle-partial").is_file()
    assert partial.read_bytes() == stub.archive[:kept]
    first = list(stub.sent)
    assert first[0] == (None, 200, 1_300_000)

    stub.down = False  # the line is back: the same call again resumes
    stub.sent.clear()
    info = kaggle.fetch_kaggle(SLUG, dest)

    resumed = [s for s in stub.sent if s[1] == 206]
    assert resumed == [(f"bytes={kept}-", 206, total - kept)]  # only the missing bytes were fetched
    assert total - kept < total and info["archive_sha256"] == hashlib.sha256(stub.archive).hexdigest()
    assert (dest / "FaceForensics++_C23/original/000.mp4").read_bytes() == FFPP_MEMBERS[
        "FaceForensics++_C23/original/000.mp4"]
    assert not partial.exists() and not (dest / "ff-c23.zip.kaggle-partial").exists()
    out, err = capsys.readouterr()
    assert f"Resuming from {kept} bytes" in out
    assert_no_secret(out, err, all_log_text(caplog))


def test_competition_download_feeds_the_dfdc_adapter(kaggle_env, stub):
    from pipeline.datasets import index

    stub.storage_path = f"/storage/competitions/{COMPETITION}/{COMPETITION}.zip"
    stub.archive = make_zip({"test/videos/aaqaifqrwn.mp4": b"v1", "test/videos/aayfryxljh.mp4": b"v2",
                             "test/labels.csv": b"filename,label\naaqaifqrwn.mp4,1\naayfryxljh.mp4,0\n"})
    dest = kaggle_env / "resources" / "dfdc"
    marker = kaggle_env / "dfdc.done"

    info = datasets.fetch_dataset("dfdc", {"kaggle_competition": COMPETITION}, dest, marker)

    api_call = stub.requests[0]
    assert (api_call["method"], api_call["path"]) == ("POST", COMPETITION_PATH)
    assert json.loads(api_call["body"]) == {"competitionName": COMPETITION}
    assert info["kind"] == "kaggle_competition" and info["kaggle"] == COMPETITION and info["members"] == 3
    assert json.loads(marker.read_text())["file_count"] == 3 and not (dest / f"{COMPETITION}.zip").exists()
    df = index.list_videos("dfdc", "dfdc", dest, {})
    assert dict(zip(df["video_id"], df["label"])) == {"test/aaqaifqrwn": 1, "test/aayfryxljh": 0}


def test_truncated_archive_is_detected_deleted_and_fetched_again(kaggle_env, stub):
    whole = make_zip(FFPP_MEMBERS)
    stub.archive = whole[: len(whole) * 2 // 3]  # a storage object cut short (its size is what is announced)
    dest = kaggle_env / "resources" / "ffpp"

    with pytest.raises(archives.CorruptArchive, match=r"not a valid zip archive .*truncated.*deleted: run the "
                                                      r"workflow again"):
        kaggle.fetch_kaggle(SLUG, dest)
    assert list(dest.iterdir()) == []  # nothing extracted, the bad archive gone (else "up to date" forever)

    stub.archive = whole
    info = kaggle.fetch_kaggle(SLUG, dest)
    assert info["archive_sha256"] == hashlib.sha256(whole).hexdigest()
    assert (dest / "csv/FF++_Metadata.csv").read_bytes() == FFPP_MEMBERS["csv/FF++_Metadata.csv"]


def make_tar(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_tar_with_dotdot_member_is_refused(kaggle_env, stub):
    stub.storage_path = f"/storage/competitions/{COMPETITION}/{COMPETITION}.tar.gz"
    stub.archive = make_tar({"test/labels.csv": b"filename,label\n", "../evil.txt": b"pwned"})
    dest = kaggle_env / "resources" / "dfdc"

    with pytest.raises(archives.DownloadError, match=r"member '\.\./evil\.txt' would be written outside"):
        kaggle.fetch_kaggle(COMPETITION, dest, competition=True)
    assert not any(p.name == "evil.txt" for p in kaggle_env.rglob("*"))
    assert [p.name for p in dest.iterdir()] == [f"{COMPETITION}.gz"]  # named after the URL's last suffix

    stub.archive = make_tar({"test/labels.csv": b"filename,label\n", "test/videos/a.mp4": b"v"})
    (dest / f"{COMPETITION}.gz").unlink()
    info = kaggle.fetch_kaggle(COMPETITION, dest, competition=True)
    assert info["members"] == 2 and (dest / "test/videos/a.mp4").read_bytes() == b"v"


def test_free_space_is_checked_before_download_and_before_extraction(kaggle_env, stub, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**12, 10**12 - 5 * 10**9, 5 * 10**9))
    dest = kaggle_env / "resources" / "ffpp"
    with pytest.raises(archives.DownloadError, match=r"'xdxd003/ff-c23' \(archive \+ files\) needs 34.0 GB free"
                                                     r" in .*only 5.0 GB are free"):
        kaggle.fetch_kaggle(SLUG, dest)
    assert stub.requests == []  # refused before any request
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**12, 10**12 - 1000, 1000))
    stub.archive = make_zip(FFPP_MEMBERS)
    with pytest.raises(archives.DownloadError, match=r"extracting ff-c23-other.zip \(3 files\) needs"):
        kaggle.fetch_kaggle("xdxd003/ff-c23-other", dest, api=_ArchiveWriter(stub.archive))
    assert sorted(p.name for p in dest.iterdir()) == ["ff-c23-other.zip"]


class _ArchiveWriter:
    def __init__(self, data):
        self.data = data

    def dataset_download_files(self, slug, path, unzip, quiet):
        (Path(path) / f"{slug.split('/')[1]}.zip").write_bytes(self.data)
