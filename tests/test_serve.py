"""``serve``: the JSON API and the page give the p(fake) ``predict`` gives the same file, bad uploads get
a clear answer and the service keeps serving.

A small workflow folder holds a tiny randomly initialised model (as in ``test_predict``) and demo
videos. The API tests talk to a real uvicorn server on 127.0.0.1; the browser test starts
``python -m pipeline serve`` and drives its page in headless Chromium over the DevTools protocol
(choosing files in the file input, clicking "Score" with the mouse, reading what the page shows).
"""

from __future__ import annotations

import base64
import io
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
import uvicorn
from PIL import Image

from pipeline.core import video
from pipeline.predict import predict_files, resolve_model
from pipeline.serve import ScoringService, create_app
from pipeline.serve import service as service_module
from test_report import ARTIFACTS, CHROMIUM
from model_folder import trained_model_folder

MODEL = "lnclip_df"
NOT_A_VIDEO = b"these are the minutes of the meeting, not a video\n" * 40


@pytest.fixture(scope="module")
def workflow(tmp_path_factory, repo, tiny_clip):
    """A workflow folder with a trained-looking model (the adapter training writes) and two demo videos;
    the model resolved as predict resolves it, and predict's results for the videos and a frame image."""
    work = tmp_path_factory.mktemp("serve")
    folder = trained_model_folder(work, repo, tiny_clip, MODEL, test_videos=1)
    L, ds = folder["L"], folder["videos"]

    files = {"fake": ds / "SBI/fake_0000.mp4", "real": ds / "real/real_0000.mp4", "image": work / "frame.png"}
    (frame,) = [f for _, f in video.read_frames(files["fake"], [3])]  # a whole frame: the faces stage aligns it
    cv2.imwrite(str(files["image"]), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    model_dir = (work / L.adapter(MODEL)).parent
    model = resolve_model(model_dir, cwd=work)
    assert model.config_path == work / "config.yaml" and model.notes == []
    kinds_of = {"fake": "video", "real": "video", "image": "image"}
    predicted = predict_files(model, [(files[k], kinds_of[k]) for k in files])
    assert [r.status for r in predicted] == ["ok"] * 3
    assert f"{predicted[0].p_fake:.4f}" != f"{predicted[1].p_fake:.4f}"  # a mix-up of files would show
    return {"work": work, "model_dir": model_dir, "model": model, "files": files,
            "predict": dict(zip(files, predicted))}


@pytest.fixture(scope="module")
def service(workflow):
    return ScoringService(workflow["model"])


@contextmanager
def running(app):
    """``app`` served by uvicorn on 127.0.0.1 (a free port) in a thread; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture(scope="module")
def url(service):
    with running(create_app(service, max_upload_bytes=5 * 10**6)) as base:
        yield base


def _post(url: str, *uploads: tuple[str, bytes], **params) -> httpx.Response:
    return httpx.post(f"{url}/predict", files=[("files", (name, data)) for name, data in uploads], params=params,
                      timeout=120)


def _upload(workflow, key: str) -> tuple[str, bytes]:
    path = workflow["files"][key]
    return path.name, path.read_bytes()


def test_api_answers_predicts_numbers(workflow, url):
    r = _post(url, *(_upload(workflow, k) for k in ("fake", "real", "image")))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == MODEL and [f["name"] for f in body["files"]] == ["fake_0000.mp4", "real_0000.mp4",
                                                                              "frame.png"]
    for got, want in zip(body["files"], workflow["predict"].values()):
        assert got["p_fake"] == want.p_fake  # to the last digit: the same code on the same crops
        assert [f["p_fake"] for f in got["frames"]] == [f["p_fake"] for f in want.frames]
        assert [f["frame_idx"] for f in got["frames"]] == [f["frame_idx"] for f in want.frames]
        assert (got["kind"], got["status"], got["frames_scored"], got["frames_sampled"]) == (
            want.kind, "ok", want.frames_scored, want.frames_sampled)
        assert set(got["seconds"]) == {"faces", "model", "total"} and got["seconds"]["total"] > 0
        assert all("crop" not in f for f in got["frames"])  # crops only when asked for
    assert body["files"][0]["frames_scored"] == 4 and body["files"][2]["frames_scored"] == 1


def test_api_gives_the_face_crops_when_asked(workflow, url):
    body = _post(url, _upload(workflow, "fake"), crops="true").json()
    (f,) = body["files"]
    assert f["p_fake"] == workflow["predict"]["fake"].p_fake
    size = workflow["model"].faces["crop"]["size"]
    for frame in f["frames"]:
        prefix, data = frame["crop"].split(",", 1)
        assert prefix == "data:image/png;base64" and frame["reason"] == "face cropped and scored"
        img = np.asarray(Image.open(io.BytesIO(base64.b64decode(data))))
        assert img.shape == (size, size, 3) and img.std() > 10  # a picture, not a blank square


def test_bad_uploads_get_a_clear_answer_and_the_service_keeps_serving(workflow, url, tmp_path):
    blank = io.BytesIO()
    Image.fromarray(np.full((120, 120, 3), 90, np.uint8)).save(blank, "PNG")
    r = _post(url, ("minutes.mp4", NOT_A_VIDEO), ("notes.txt", b"hello"), ("blank.png", blank.getvalue()))
    assert r.status_code == 200
    text, other, empty = r.json()["files"]
    assert (text["status"], text["p_fake"], text["message"]) == ("unreadable", None,
                                                                 "cannot be read as a video (cannot open video)")
    assert other["status"] == "unsupported" and ".mp4" in other["message"] and ".jpg" in other["message"]
    assert (empty["status"], empty["message"]) == ("no_face", "no face found in the image")
    assert empty["frames"] == [{"frame_idx": 0, "status": "no_face", "p_fake": None, "reason": "no face found"}]

    r = httpx.post(f"{url}/predict", data={"something": "else"}, timeout=30)  # no files at all
    assert r.status_code == 400 and "field 'files'" in r.json()["error"]
    r = httpx.post(f"{url}/predict", content=(b"x" * 100 for _ in range(3)), timeout=30)  # no size given
    assert r.status_code == 411 and "Content-Length" in r.json()["error"]

    r = _post(url, _upload(workflow, "real"))  # the service still scores, with predict's number
    assert r.status_code == 200 and r.json()["files"][0]["p_fake"] == workflow["predict"]["real"].p_fake


def test_too_large_uploads_are_refused_before_parsing(workflow, service):
    size = workflow["files"]["fake"].stat().st_size
    with running(create_app(service, max_upload_bytes=size // 2)) as small:
        r = _post(small, _upload(workflow, "fake"))
        assert r.status_code == 413
        assert f"over this service's limit of {size // 2 / 1e6:.1f} MB" in r.json()["error"]
        assert "--max-upload-mb" in r.json()["error"]
        assert httpx.get(f"{small}/info", timeout=30).json()["max_upload_bytes"] == size // 2
        r = _post(small, ("small.png", workflow["files"]["image"].read_bytes()[: size // 4]))
        assert r.status_code == 200 and r.json()["files"][0]["status"] == "unreadable"  # under the limit: scored


def test_a_failure_while_scoring_is_answered_and_the_next_upload_works(workflow, url, monkeypatch):
    real_score = service_module.score_file
    calls = []

    def broken_once(*args, **kw):
        calls.append(args[1])
        if len(calls) == 1:
            raise RuntimeError("backend exploded")
        return real_score(*args, **kw)

    monkeypatch.setattr(service_module, "score_file", broken_once)
    (f,) = _post(url, _upload(workflow, "fake")).json()["files"]
    assert f["status"] == "error" and f["p_fake"] is None
    assert f["message"].startswith("scoring failed (RuntimeError: backend exploded)")
    assert "Traceback" not in f["message"]
    (f,) = _post(url, _upload(workflow, "fake")).json()["files"]
    assert f["p_fake"] == workflow["predict"]["fake"].p_fake and len(calls) == 2


def test_the_server_answers_while_a_file_is_scored(workflow, url, monkeypatch):
    """Scoring runs in the worker thread: ``/info`` answers while an upload is being scored."""
    real_score, started, release = service_module.score_file, threading.Event(), threading.Event()

    def slow(*args, **kw):
        started.set()
        assert release.wait(60)
        return real_score(*args, **kw)

    monkeypatch.setattr(service_module, "score_file", slow)
    answers = []
    upload = threading.Thread(target=lambda: answers.append(_post(url, _upload(workflow, "real"))))
    upload.start()
    try:
        assert started.wait(60)
        info = httpx.get(f"{url}/info", timeout=10)  # would time out if scoring blocked the event loop
        assert info.status_code == 200 and info.json()["model"] == MODEL
        assert not answers  # the upload is still being scored
    finally:
        release.set()
        upload.join(120)
    assert answers[0].json()["files"][0]["p_fake"] == workflow["predict"]["real"].p_fake


def test_the_command_refuses_a_missing_model_without_a_traceback(workflow, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pipeline", "serve", "--model", str(tmp_path / "nope")],
                          cwd=workflow["work"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "no trained model at" in proc.stderr and "Traceback" not in proc.stderr



def test_the_command_says_which_extra_to_install(monkeypatch, capsys):
    import importlib.util

    from pipeline.__main__ import main

    real_find = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "uvicorn" else real_find(name, *a))
    assert main(["serve", "--model", "results/models/lnclip_df"]) == 2
    assert capsys.readouterr().err.strip() == 'serve: uvicorn not installed: the service needs the serve extra, pip ' \
                                              'install -e ".[serve]"'
    monkeypatch.undo()
    assert main(["serve", "--model", "x", "--max-upload-mb", "0"]) == 2
    assert capsys.readouterr().err.strip() == "serve: --max-upload-mb 0.0: give a size above 0"


def test_the_other_verbs_do_not_need_the_serve_extra():
    code = "import sys; from pipeline.__main__ import build_parser; build_parser(); " \
           "print(sorted(m for m in ('fastapi', 'uvicorn', 'starlette', 'python_multipart') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"

# ------------------------------------------------------------------------- the page in headless Chromium


class DevTools:
    """A minimal Chrome DevTools Protocol client over the page's websocket."""

    def __init__(self, ws_url: str):
        import websocket

        self.ws = websocket.create_connection(ws_url, timeout=120, suppress_origin=True)
        self.next_id, self.events = 0, []

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]
            self.events.append(msg)

    def js(self, expression: str):
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in r, r["exceptionDetails"]
        return r["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 180):
        """The value of ``expression`` once it is truthy (an error, as while the page loads, counts as false)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.js(f"(() => {{ try {{ return {expression}; }} catch (e) {{ return false; }} }})()")
            if value:
                return value
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {expression}; page: {self.js('document.body.innerText')}")

    def node(self, selector: str) -> int:
        root = self.call("DOM.getDocument")["root"]["nodeId"]
        node = self.call("DOM.querySelector", nodeId=root, selector=selector)["nodeId"]
        assert node, f"no {selector} on the page"
        return node

    def click(self, selector: str) -> None:
        """A left click with the mouse at the middle of ``selector``'s box."""
        quad = self.call("DOM.getBoxModel", nodeId=self.node(selector))["model"]["border"]
        x, y = sum(quad[0::2]) / 4, sum(quad[1::2]) / 4
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def page_errors(self) -> list:
        return [e for e in self.events if e.get("method") == "Runtime.exceptionThrown"
                or (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "warning"))]


SHOWN = """(() => {
  const files = Array.from(document.querySelectorAll('#results article')).map(a => {
    const score = a.querySelector('.score'), message = a.querySelector('.message'), timing = a.querySelector('.timing');
    return {name: a.dataset.name, status: a.dataset.status, shown: score.textContent,
            p_fake: score.dataset.pFake === undefined ? null : Number(score.dataset.pFake),
            message: message ? message.textContent : '', timing: timing ? timing.textContent : '',
            crops: Array.from(a.querySelectorAll('figure.crop')).map(
              f => [f.querySelector('img').naturalWidth, f.querySelector('figcaption').textContent]),
            missing: Array.from(a.querySelectorAll('.missing li')).map(li => li.textContent)};
  });
  return {state: document.body.dataset.state, status: document.getElementById('status').textContent,
          error: document.getElementById('error').textContent, files: files};
})()"""


def score_in_page(tools: DevTools, path: Path) -> dict:
    """Choose ``path`` in the page's file input, click Score, and wait for what the page then shows."""
    tools.call("DOM.setFileInputFiles", nodeId=tools.node("#files"), files=[str(path)])
    tools.click("#submit")
    tools.wait_for("document.body.dataset.state === 'idle' && (document.querySelectorAll('#results article')"
                   ".length > 0 || document.getElementById('error').textContent !== '')")
    return tools.js(SHOWN)


@contextmanager
def served_by_the_command(work: Path, model: str | Path):
    """``python -m pipeline serve --model MODEL`` run in the workflow folder ``work``, on a free port;
    yields its base URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tempfile.TemporaryFile("w+")  # the server's log (a pipe nobody reads could fill and block it)
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "serve", "--model", str(model), "--port", str(port)],
                            cwd=work, stdout=log, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            assert proc.poll() is None, log.seek(0) or log.read()
            try:
                with urllib.request.urlopen(f"{base}/info", timeout=5):
                    break
            except OSError:
                assert time.monotonic() < deadline, "the service did not start"
                time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


@contextmanager
def chromium_page(url: str, profile: Path):
    """Headless Chromium on ``url`` with a DevTools port; yields a :class:`DevTools` on that page."""
    proc = subprocess.Popen([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                             "--disable-background-networking", "--disable-component-update", "--disable-sync",
                             "--disable-dev-shm-usage", "--window-size=1100,1400", "--remote-debugging-port=0",
                             f"--user-data-dir={profile}", url], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 120
        while not (port_file.exists() and port_file.read_text().strip()):
            assert proc.poll() is None and time.monotonic() < deadline, "chromium did not start"
            time.sleep(0.2)
        port = port_file.read_text().split()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as r:
            (page,) = [t for t in json.load(r) if t["type"] == "page" and t["url"].startswith(url)]
        tools = DevTools(page["webSocketDebuggerUrl"])
        tools.call("Runtime.enable")
        yield tools
        tools.ws.close()
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")
def test_the_page_in_headless_chromium(workflow, tmp_path):
    text_file = tmp_path / "not_a_video.mp4"
    text_file.write_bytes(NOT_A_VIDEO)
    predicted = workflow["predict"]
    with served_by_the_command(workflow["work"], workflow["model_dir"]) as base, \
            chromium_page(f"{base}/", tmp_path / "profile") as tools:
        tools.wait_for("document.getElementById('model').textContent.startsWith('model lnclip_df')")
        assert tools.js("document.getElementById('files').accept").startswith(".3gp,.avi")

        shown = score_in_page(tools, workflow["files"]["fake"])
        assert shown["error"] == "" and shown["status"].startswith("scored 1 file in")
        (f,) = shown["files"]
        want = predicted["fake"]
        assert (f["name"], f["status"], f["shown"]) == ("fake_0000.mp4", "ok", f"{want.p_fake:.4f}")
        assert f["p_fake"] == want.p_fake  # the full number behind the shown one
        size = workflow["model"].faces["crop"]["size"]
        assert f["crops"] == [[size, f"frame {fr['frame_idx']}: {fr['p_fake']:.4f}"] for fr in want.frames]
        assert f["missing"] == [] and f["timing"].startswith("faces ") and "model " in f["timing"]
        ARTIFACTS.mkdir(parents=True, exist_ok=True)  # kept as a test artifact
        (ARTIFACTS / "serve.png").write_bytes(base64.b64decode(tools.call("Page.captureScreenshot")["data"]))

        shown = score_in_page(tools, text_file)
        (f,) = shown["files"]
        assert (f["name"], f["status"], f["shown"], f["p_fake"]) == ("not_a_video.mp4", "unreadable", "not scored",
                                                                     None)
        assert f["message"] == "cannot be read as a video (cannot open video)"
        assert f["missing"] == ["file: the file could not be decoded"]

        shown = score_in_page(tools, workflow["files"]["real"])  # the next upload still works
        (f,) = shown["files"]
        assert (f["name"], f["shown"], f["p_fake"]) == ("real_0000.mp4", f"{predicted['real'].p_fake:.4f}",
                                                        predicted["real"].p_fake)
        assert tools.page_errors() == []
