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
import socket
import threading
import zipfile
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

pytest.importorskip("kagglesdk")
pytest.importorskip("requests")

from pipeline import download  # noqa: E402

HOST, PORT = "127.0.0.1", 7777
SLUG = "xdxd003/ff-c23"
USER = "tester"
KEY = "kgl-7f3c9a1e5b2d48c6a0e9f1d3b7c5a2e4"  # secret-looking; must never surface
API_PATH = "/v1/datasets.DatasetApiService/DownloadDataset"
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

    def record(self, handler, body: bytes) -> None:
        with self.lock:
            self.requests.append({"method": handler.command, "path": handler.path,
                                  "headers": {k.lower(): v for k, v in handler.headers.items()},
                                  "body": body})


def make_handler(stub: StubKaggle):
    class Handler(BaseHTTPRequestHandler):
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
            if self.path != API_PATH:
                return self.send(404, b'{"code": 404, "message": "no such RPC"}',
                                 [("Content-Type", "application/json")])
            if stub.api_error is not None:
                status, ctype, payload = stub.api_error
                return self.send(status, payload, [("Content-Type", ctype)])
            return self.send(302, headers=[("Location", STORAGE_URL)])

        def do_GET(self):
            stub.record(self, b"")
            if self.path.split("?")[0] != STORAGE_PATH:
                return self.send(404, b"not found", [("Content-Type", "text/plain")])
            if stub.storage_error is not None:
                return self.send(stub.storage_error, b"<Error><Code>AccessDenied</Code></Error>",
                                 [("Content-Type", "application/xml")])
            data = stub.archive
            return self.send(200, data, [
                ("Content-Type", "application/zip"),
                ("Last-Modified", formatdate(1714564800, usegmt=True)),
                ("ETag", '"' + hashlib.md5(data).hexdigest() + '"'),
                ("Accept-Ranges", "bytes"),
            ])

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

    info = download.fetch_kaggle(SLUG, dest)

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

    with pytest.raises(download.DownloadError) as excinfo:
        download.fetch_kaggle(SLUG, dest)

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
    with pytest.raises(download.DownloadError) as excinfo:
        download.fetch_kaggle(SLUG, dest)

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
