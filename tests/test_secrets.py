"""Planted credentials never leak: a real ``snakemake`` run of the shipped config reaches the download
stage with fake Kaggle credentials (environment AND a kaggle.json) and a fake Hugging Face token,
against a stub on 127.0.0.1 that refuses both downloads. The run fails with its causes printed, and no
secret is in any file under the working directory (results, resources, logs, .snakemake), in the
console output, or in the exception text the jobs logged.

The job processes are other Python processes: a ``sitecustomize`` on their PYTHONPATH points the
Kaggle client's endpoint table at the stub and lets them resolve loopback names only, so nothing can
reach a real host.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from test_workflow import copy_workflow

pytestmark = pytest.mark.slow
pytest.importorskip("kagglesdk")

USER, KEY = "tester-7d41", "kgl-env-3f9c2a71e5b8d04c6a1e9f2d3b7c5a8e"
JSON_USER, JSON_KEY = "json-user-52ab", "kgl-json-9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b"
HF_TOKEN = "hf_FakeToken0123456789abcdefghijklmnopQR"
SECRETS = [KEY, JSON_KEY, HF_TOKEN, base64.b64encode(f"{USER}:{KEY}".encode()).decode(),
           base64.b64encode(f"{JSON_USER}:{JSON_KEY}".encode()).decode()]

SITECUSTOMIZE = '''
import os, socket

_endpoint = os.environ.get("LNCLIP_TEST_STUB")
if _endpoint:
    _real = socket.getaddrinfo

    def _loopback_only(host, port, family=0, type=0, proto=0, flags=0):
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in ("localhost", "127.0.0.1"):
            raise socket.gaierror(socket.EAI_NONAME, "test: refusing to resolve a non-loopback host")
        return _real("127.0.0.1", port, socket.AF_INET, type, proto, flags)

    socket.getaddrinfo = _loopback_only
    try:
        from kagglesdk import kaggle_env as _env
        for _kind in _env.KaggleEnv:
            _env._env_to_endpoint[_kind] = _endpoint
    except ImportError:
        pass
'''


@pytest.fixture
def refusing_stub():
    """Answers the Kaggle API with 403 (terms not accepted) and the hub with 401; records headers."""
    seen: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _answer(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append({"method": self.command, "path": self.path,
                         "authorization": self.headers.get("Authorization", "")})
            kaggle = self.path.startswith("/v1/")
            body = b"<html>Forbidden</html>" if kaggle else b'{"error": "Invalid credentials in Authorization header"}'
            self.send_response(403 if kaggle else 401)
            self.send_header("Content-Type", "text/html" if kaggle else "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_POST = do_HEAD = _answer

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_planted_secrets_appear_nowhere_after_a_failed_download(tmp_path, repo, refusing_stub):
    endpoint, seen = refusing_stub
    (tmp_path / "work").mkdir()
    work = copy_workflow(repo, tmp_path / "work")
    home, kaggle_dir, site = tmp_path / "home", tmp_path / "kaggle", tmp_path / "site"
    for d in (home, kaggle_dir, site):
        d.mkdir()
    (kaggle_dir / "kaggle.json").write_text(json.dumps({"username": JSON_USER, "key": JSON_KEY}))
    (kaggle_dir / "kaggle.json").chmod(0o600)
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("KAGGLE", "HF_", "HUGGING", "TRANSFORMERS_OFFLINE")) and "PROXY" not in k.upper()}
    env |= {"HOME": str(home), "KAGGLE_CONFIG_DIR": str(kaggle_dir), "KAGGLE_USERNAME": USER, "KAGGLE_KEY": KEY,
            "HF_TOKEN": HF_TOKEN, "HF_ENDPOINT": endpoint, "HF_HOME": str(tmp_path / "hf"),
            "LNCLIP_TEST_STUB": endpoint, "NO_PROXY": "localhost,127.0.0.1",
            "PYTHONPATH": os.pathsep.join([str(site), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    targets = ["resources/datasets/ffpp_c23.done", "resources/weights/clip_vit_l14.done"]
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", "--keep-going", *targets], cwd=work,
                          env=env, capture_output=True, text=True, timeout=600)
    console = proc.stdout + proc.stderr

    # the run got as far as the downloads, with the planted credentials, and failed with its causes
    assert proc.returncode != 0, console
    kaggle_calls = [r for r in seen if r["path"].startswith("/v1/")]
    hub_calls = [r for r in seen if not r["path"].startswith("/v1/")]
    assert kaggle_calls and hub_calls, (seen, console)
    assert kaggle_calls[0]["authorization"] == "Basic " + SECRETS[3]  # the environment's key was sent...
    assert any(r["authorization"] == f"Bearer {HF_TOKEN}" for r in hub_calls)  # ...and the hub token
    assert "Kaggle dataset 'xdxd003/ff-c23': download refused with HTTP 403" in console
    assert "openai/clip-vit-large-patch14" in console
    logs = {p.name: p.read_text() for p in (work / "logs" / "download").iterdir()}
    assert "HTTP 403" in logs["dataset-ffpp_c23.log"] and "Traceback" in logs["dataset-ffpp_c23.log"]
    assert not (work / targets[0]).exists() and not (work / targets[1]).exists()

    # ...and no secret anywhere: console, every file under the working directory, exception texts
    for secret in SECRETS:
        assert secret not in console
    files = [p for p in work.rglob("*") if p.is_file()]
    assert any(".snakemake" in p.parts for p in files) and any("logs" in p.parts for p in files)
    for path in files:
        data = path.read_bytes()
        for secret in SECRETS:
            assert secret.encode() not in data, (path, secret[:6])
