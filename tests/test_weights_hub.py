"""``fetch_weights`` with ``{"hub": ...}`` through the real huggingface_hub client, against a stub hub.

No network: a ``ThreadingHTTPServer`` on 127.0.0.1 plays the Hugging Face hub (``HF_ENDPOINT``), and
``socket.getaddrinfo`` is guarded so that only ``127.0.0.1``/``localhost`` resolve; any other lookup
fails the test. The stub serves a real tiny CLIP checkpoint (``save_random_backbone``).

What ``snapshot_download(repo_id, local_dir=dest, allow_patterns=[...])`` asks of the hub
(huggingface_hub 2.4, read from ``_snapshot_download.py`` / ``file_download.py`` / ``hf_api.py``):

1. ``GET  /api/models/{repo}/revision/main``: JSON model info; only ``sha`` (the commit) is used.
2. ``GET  /api/models/{repo}/tree/{sha}?recursive=true&expand=false``: JSON list of the repo's files
   (``path``, ``size``, ``oid``, ``lfs`` {``oid`` = sha256, ``size``, ``pointerSize``}; pages follow a
   ``Link: rel="next"`` header). The listing is cached in ``dest/.cache/huggingface/trees/{sha}.json``;
   ``allow_patterns`` is applied to it on the client side.
3. For each allowed file, ``HEAD /{repo}/resolve/{sha}/{file}`` (no redirects followed off the hub): needs
   ``X-Repo-Commit`` and an ``ETag`` (git blob sha1) + ``Content-Length``; an LFS file answers
   ``302`` with ``Location`` (the CDN), ``X-Linked-Etag`` (its sha256) and ``X-Linked-Size``.
4. ``GET`` of the resolve URL, or of the CDN ``Location`` for LFS files (there without the
   ``Authorization`` header: the stub's CDN is ``localhost``, another origin than ``127.0.0.1``).

A second run asks only (1): the tree listing comes from the local cache and every file whose
``dest/.cache/huggingface/download/*.metadata`` records the same commit is kept as is.

Besides, once per process (and at most once a day, cached in ``$HF_HOME/.agent_harnesses.json``) the
client asks ``GET {HF_ENDPOINT}/api/agent-harnesses`` (AI-agent detection for its terminal output);
the stub answers it with an empty registry and the request logs below leave it out.
"""

from __future__ import annotations

import hashlib
import json
import random
import socket
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

REPO_ID = "openai/clip-vit-large-patch14"
ALLOWED = ["config.json", "model.safetensors", "preprocessor_config.json"]
FAKE_TOKEN = "hf_stubTokenThatMustNeverBePrinted0123456789"
AGENT_REGISTRY = "/api/agent-harnesses"
TINY = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=32,
            patch_size=8)


# --------------------------------------------------------------------------------------------
# the served checkpoint


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """A real tiny CLIP (config.json + model.safetensors) plus files the hub repo also lists."""
    from pipeline.model.detector import save_random_backbone

    src = save_random_backbone(tmp_path_factory.mktemp("hubsrc") / "src", dict(TINY), seed=0)
    (src / "preprocessor_config.json").write_text(json.dumps({
        "crop_size": {"height": 32, "width": 32}, "do_center_crop": True, "do_normalize": True,
        "do_resize": True, "image_mean": [0.48145466, 0.4578275, 0.40821073],
        "image_processor_type": "CLIPImageProcessor", "image_std": [0.26862954, 0.26130258, 0.27577711],
        "resample": 3, "size": {"shortest_edge": 32}}, indent=2) + "\n")
    (src / "pytorch_model.bin").write_bytes(random.Random(0).randbytes(4096))  # must never be fetched
    (src / "README.md").write_text("---\nlicense: mit\n---\n# stub of openai/clip-vit-large-patch14\n")
    assert sorted(p.name for p in src.iterdir()) == sorted(ALLOWED + ["pytorch_model.bin", "README.md"])
    return src


def _git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


# --------------------------------------------------------------------------------------------
# the stub hub


class StubHub:
    """The hub's answers for one model repo; ``deny`` = (status, X-Error-Code or None) for every request."""

    LFS = (".safetensors", ".bin")

    def __init__(self, root: Path, repo_id: str):
        self.repo_id = repo_id
        self.files = {p.name: p.read_bytes() for p in sorted(root.iterdir()) if p.is_file()}
        self.sha = hashlib.sha1(b"stub commit of " + repo_id.encode()).hexdigest()
        self.deny: tuple[int, str | None] | None = None
        self.log: list[dict] = []
        self.lock = threading.Lock()
        self.port = 0

    def is_lfs(self, name: str) -> bool:
        return name.endswith(self.LFS)

    def sha256(self, name: str) -> str:
        return hashlib.sha256(self.files[name]).hexdigest()

    def tree(self) -> list[dict]:
        out = []
        for name, data in self.files.items():
            entry = {"type": "file", "path": name, "size": len(data), "oid": _git_blob_sha1(data)}
            if self.is_lfs(name):
                entry["lfs"] = {"oid": self.sha256(name), "size": len(data), "pointerSize": 134}
            out.append(entry)
        return out

    def info(self) -> dict:
        return {"_id": "stub", "id": self.repo_id, "modelId": self.repo_id, "sha": self.sha, "private": False,
                "gated": False, "disabled": False, "library_name": "transformers", "tags": ["clip"],
                "lastModified": "2024-01-01T00:00:00.000Z", "createdAt": "2022-03-03T00:00:00.000Z",
                "siblings": [{"rfilename": name} for name in self.files]}

    def requests(self, method: str | None = None) -> list[str]:
        """The download's requests, without the client's once-a-process agent-harness registry fetch."""
        with self.lock:
            return [f"{r['method']} {r['path']}" for r in self.log
                    if method in (None, r["method"]) and r["path"] != AGENT_REGISTRY]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):
        self._serve(head=False)

    def do_HEAD(self):
        self._serve(head=True)

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, head: bool = False,
              length: int | None = None):
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        if not head and body:
            self.wfile.write(body)

    def _json(self, status: int, payload, head: bool, headers: dict | None = None):
        self._send(status, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})},
                   head=head)

    def _serve(self, head: bool):
        hub = self.server.hub
        path = unquote(urlsplit(self.path).path)
        with hub.lock:
            hub.log.append({"method": self.command, "path": path, "query": urlsplit(self.path).query,
                            "host": self.headers.get("Host"), "auth": self.headers.get("Authorization")})
        repo = hub.repo_id
        commit = {"X-Repo-Commit": hub.sha}
        if path == AGENT_REGISTRY:  # huggingface_hub's telemetry helper, see the module docstring
            return self._json(200, {"standardEnvVars": [], "harnesses": {}}, head)
        if path.startswith("/cdn/"):  # the "CDN" for LFS files, reached as http://localhost:PORT
            by_sha = {hub.sha256(n): n for n in hub.files if hub.is_lfs(n)}
            name = by_sha.get(path[len("/cdn/"):])
            if name is None:
                return self._send(404, b"no such object", head=head)
            data = hub.files[name]
            return self._send(200, data, {"ETag": f'"{hub.sha256(name)}"',
                                          "Content-Type": "application/octet-stream"}, head=head)
        if not (path.startswith(f"/api/models/{repo}/") or path.startswith(f"/{repo}/resolve/")):
            return self._json(401, {"error": "Repository not found"}, head,
                              {"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"})
        if hub.deny is not None:
            status, code = hub.deny
            headers = {"X-Error-Code": code, "X-Error-Message": f"stub says {code}"} if code else {}
            if code == "GatedRepo":
                headers["X-Error-Message"] = (f"Access to model {repo} is restricted. You must have access to it "
                                              "and be authenticated to access it. Please log in.")
            return self._json(status, {"error": headers.get("X-Error-Message", "Not Found")}, head, headers)
        if path.startswith(f"/api/models/{repo}/revision/"):
            if path.rsplit("/", 1)[1] not in ("main", hub.sha):
                return self._json(404, {"error": "Invalid rev id"}, head, {"X-Error-Code": "RevisionNotFound"})
            return self._json(200, hub.info(), head)
        if path == f"/api/models/{repo}/tree/{hub.sha}":
            return self._json(200, hub.tree(), head)
        if path.startswith(f"/{repo}/resolve/"):
            revision, _, name = path[len(f"/{repo}/resolve/"):].partition("/")
            if revision not in ("main", hub.sha):
                return self._json(404, {"error": "Invalid rev id"}, head, {"X-Error-Code": "RevisionNotFound"})
            if name not in hub.files:
                return self._json(404, {"error": "Entry not found"}, head,
                                  {"X-Error-Code": "EntryNotFound", **commit})
            data = hub.files[name]
            if hub.is_lfs(name):  # like the hub: a redirect to another host, metadata in X-Linked-*
                return self._send(302, b"", {**commit, "Location": f"http://localhost:{hub.port}/cdn/{hub.sha256(name)}",
                                             "X-Linked-Etag": f'"{hub.sha256(name)}"',
                                             "X-Linked-Size": str(len(data)), "ETag": f'"{_git_blob_sha1(data)}"'},
                                  head=head)
            return self._send(200, data, {**commit, "ETag": f'"{_git_blob_sha1(data)}"',
                                          "Content-Type": "text/plain; charset=utf-8"}, head=head)
        return self._json(404, {"error": "Not Found"}, head)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def server_bind(self):  # skip HTTPServer's getfqdn(): no name lookups at all
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


# --------------------------------------------------------------------------------------------
# fixtures: no network, the client pointed at the stub


@pytest.fixture
def no_network(monkeypatch):
    """Only 127.0.0.1/localhost resolve; any other lookup is recorded, refused, and fails the test."""
    real = socket.getaddrinfo
    blocked: list[str] = []

    def guarded(host, port, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        if name in ("127.0.0.1", "localhost"):
            return real("127.0.0.1", port, *args, **kwargs)  # IPv4 loopback only: where the stub listens
        blocked.append(str(name))
        raise socket.gaierror(socket.EAI_NONAME, f"test guard: lookup of {name!r} refused (no network)")

    monkeypatch.setattr(socket, "getaddrinfo", guarded)
    yield blocked
    assert not blocked, f"the test tried to reach other hosts: {blocked}"


@pytest.fixture
def hub(source, no_network, monkeypatch, tmp_path):
    """The stub hub on a free port, and huggingface_hub configured for it (online, tmp caches, a token)."""
    import huggingface_hub
    from huggingface_hub import constants

    stub = StubHub(source, REPO_ID)
    server = _Server(("127.0.0.1", 0), _Handler)
    server.hub = stub
    stub.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="stub-hub", daemon=True)
    thread.start()

    endpoint = f"http://127.0.0.1:{stub.port}"
    home = tmp_path / "hf_home"
    env = {"HF_ENDPOINT": endpoint, "HF_HUB_OFFLINE": "0", "HF_HOME": str(home),
           "HF_HUB_CACHE": str(home / "hub"), "HF_XET_CACHE": str(home / "xet"), "HF_TOKEN": FAKE_TOKEN,
           "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for key in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy",
                "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(key, raising=False)
    # constants.py reads these once, at import (the suite's conftest has already set HF_HUB_OFFLINE=1).
    for attr, value in {"ENDPOINT": endpoint,
                        "HUGGINGFACE_CO_URL_TEMPLATE": endpoint + "/{repo_id}/resolve/{revision}/{filename}",
                        "HF_HUB_OFFLINE": False, "HF_HOME": str(home), "HF_HUB_CACHE": str(home / "hub"),
                        "HF_XET_CACHE": str(home / "xet"), "HF_TOKEN_PATH": str(home / "token"),
                        "HF_STORED_TOKENS_PATH": str(home / "stored_tokens"),
                        "AGENT_HARNESSES_PATH": str(home / ".agent_harnesses.json")}.items():
        monkeypatch.setattr(constants, attr, value)
    huggingface_hub.close_session()  # a fresh httpx client (none built with another env's proxies)
    yield stub
    huggingface_hub.close_session()
    server.shutdown()
    server.server_close()
    thread.join(5)


def _downloaded(dest: Path) -> list[str]:
    """Files in dest, without the client's own bookkeeping under dest/.cache/huggingface."""
    return sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*")
                  if p.is_file() and p.relative_to(dest).parts[0] != ".cache")


def _pooler(model_dir: Path):
    import torch

    from pipeline.model.detector import load_backbone

    model = load_backbone(model_dir).eval()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return model(pixel_values=x).pooler_output


# --------------------------------------------------------------------------------------------
# tests


def test_hub_download_fetches_only_allowed_files(hub, source, tmp_path):
    from pipeline.core.markers import read_marker
    from pipeline.fetch.weights import fetch_weights

    dest, marker = tmp_path / "weights" / "clip", tmp_path / "weights" / "clip.done"
    info = fetch_weights("clip", {"hub": REPO_ID}, dest, marker)

    assert _downloaded(dest) == ALLOWED  # no pytorch_model.bin, no README.md
    for name in ALLOWED:
        assert (dest / name).read_bytes() == hub.files[name], name
    served = hashlib.sha256((source / "model.safetensors").read_bytes()).hexdigest()
    assert read_marker(marker) == info
    assert info["kind"] == "hub" and info["hub"] == REPO_ID and info["weights"] == "clip"
    assert info["dir"] == str(dest)
    assert info["files"] == {"model.safetensors": served}

    # What the client asked for (huggingface_hub's exact sequence of calls is its own): the files
    # allowed and nothing else, each from this revision.
    sha = hub.sha
    wanted = {f"/{REPO_ID}/resolve/{sha}/{n}" for n in ALLOWED}
    asked = {r["path"] for r in hub.log if "/resolve/" in r["path"]}
    assert asked <= wanted and {p.rsplit("/", 1)[1] for p in asked} >= {"config.json", "preprocessor_config.json"}
    assert f"GET /cdn/{hub.sha256('model.safetensors')}" in hub.requests("GET")
    # The token goes to the hub, never to the CDN host.
    for r in (r for r in hub.log if r["path"] != AGENT_REGISTRY):
        expected = None if r["path"].startswith("/cdn/") else f"Bearer {FAKE_TOKEN}"
        assert r["auth"] == expected, r
    assert {r["host"] for r in hub.log if r["path"].startswith("/cdn/")} == {f"localhost:{hub.port}"}

    import torch

    assert torch.equal(_pooler(dest), _pooler(source))


def test_hub_download_is_idempotent(hub, tmp_path):
    from pipeline.core.markers import read_marker
    from pipeline.fetch.weights import fetch_weights

    dest, marker = tmp_path / "clip", tmp_path / "clip.done"
    first = fetch_weights("clip", {"hub": REPO_ID}, dest, marker)
    n_first = len(hub.requests())
    stamps = {name: (dest / name).stat().st_mtime_ns for name in ALLOWED}

    second = fetch_weights("clip", {"hub": REPO_ID}, dest, marker)

    assert second == first == read_marker(marker)
    assert _downloaded(dest) == ALLOWED
    # No network at all: the files of the recorded fetch are there with their checksums (even when
    # Snakemake deleted the marker before running the job again).
    assert hub.requests()[n_first:] == []
    assert {name: (dest / name).stat().st_mtime_ns for name in ALLOWED} == stamps
    marker.unlink()
    assert fetch_weights("clip", {"hub": REPO_ID}, dest, marker) == first and hub.requests()[n_first:] == []
    # a file that no longer matches the record: the hub client is asked again
    (dest / "model.safetensors").unlink()
    assert fetch_weights("clip", {"hub": REPO_ID}, dest, marker) == first
    assert len(hub.requests()) > n_first and _downloaded(dest) == ALLOWED


@pytest.mark.parametrize(
    "deny, kind",
    [((401, "GatedRepo"), "gated"),  # gated, no (or no accepted) token: what the hub answers
     ((403, "GatedRepo"), "gated"),  # gated, token of a user who has not accepted the licence
     ((401, "RepoNotFound"), "missing"),  # missing or private: the hub answers 401 RepoNotFound
     ((404, None), "unreachable")],  # a bare 404 (e.g. a mirror without the repo)
    ids=["gated-401", "gated-403", "missing-401", "bare-404"])
def test_hub_refusal_names_the_repo(hub, tmp_path, deny, kind, capsys, caplog):
    from pipeline.fetch.archives import DownloadError
    from pipeline.fetch.weights import fetch_weights

    hub.deny = deny
    dest, marker = tmp_path / "clip", tmp_path / "clip.done"
    with caplog.at_level("DEBUG"):
        with pytest.raises(DownloadError) as excinfo:
            fetch_weights("clip", {"hub": REPO_ID}, dest, marker)

    message = str(excinfo.value)
    assert REPO_ID in message and "weights.clip" in message
    assert f"HTTP {deny[0]}" in message
    if kind == "gated":
        assert "licence" in message and "HF_TOKEN" in message
        assert f"http://127.0.0.1:{hub.port}/{REPO_ID}" in message  # the model's page on this endpoint
    elif kind == "missing":
        assert "check the id" in message and "HF_TOKEN" in message
    else:
        assert "weights.clip.path" in message
    assert not marker.exists()
    assert not dest.exists() or not list(dest.rglob("*.safetensors"))
    assert not [r for r in hub.requests() if "/resolve/" in r or "/cdn/" in r]  # no file was fetched
    sent = [r["auth"] for r in hub.log if r["path"] != AGENT_REGISTRY]
    assert sent and set(sent) == {f"Bearer {FAKE_TOKEN}"}  # the token was sent ...
    out = capsys.readouterr()
    shown = message + repr(excinfo.value.__cause__) + out.out + out.err + caplog.text
    assert FAKE_TOKEN not in shown and FAKE_TOKEN[3:15] not in shown  # ... and never shown


def test_hub_download_of_listed_files_fetches_only_those(hub, source, tmp_path):
    """A weights entry with ``files`` (a published checkpoint such as the LNCLIP-DF release's
    model.ckpt) fetches exactly those files, checksums them in the marker, and names a file the repo lacks."""
    from pipeline.fetch.archives import DownloadError
    from pipeline.fetch.weights import fetch_weights

    dest, marker = tmp_path / "weights" / "rel", tmp_path / "weights" / "rel.done"
    info = fetch_weights("rel", {"hub": REPO_ID, "files": ["pytorch_model.bin"]}, dest, marker)
    assert _downloaded(dest) == ["pytorch_model.bin"]
    assert info["files"] == {"pytorch_model.bin": hashlib.sha256((source / "pytorch_model.bin").read_bytes()).hexdigest()}
    with pytest.raises(DownloadError, match=r"weights\.rel2\.files: model\.ckpt not found in .*rel2"):
        fetch_weights("rel2", {"hub": REPO_ID, "files": ["model.ckpt"]}, tmp_path / "rel2", tmp_path / "rel2.done")
