"""pipeline.report: the HTML holds the right numbers, is self-contained, and renders in a browser."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from pipeline.core import tables
from pipeline.evaluation.benchmark import evaluate_model
from pipeline.evaluation.metrics import evaluate_scores, jsonable
from pipeline.report import DEMO_TEXT, build_report, slug
from pipeline.report.published import rows_for

MODELS = {"LNCLIP-DF": 0.35, "linear probe <baseline>": 0.12}  # name -> separation of fake scores
BENCHES = {"CDFv2": ("Celeb-synthesis",), "FF++ & DFD": ("DF", "F2F")}  # name -> fake methods


def _scores(seed: int, sep: float, methods, n_real=30, n_fake=25, frames=4) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for method, label, n in [("real", 0, n_real)] + [(m, 1, n_fake) for m in methods]:
        for i in range(n):
            vid = f"{method}/{i:03d}"
            base = rng.normal(0.4 + sep * label, 0.15)
            for f in range(frames):
                rows.append(
                    {
                        "dataset": "D",
                        "video_id": vid,
                        "key": tables.sample_key(vid, f),
                        "frame_idx": f * 10,
                        "label": label,
                        "method": method,
                        "p_fake": float(np.clip(base + rng.normal(0, 0.05), 0, 1)),
                    }
                )
    return tables.conform(pl.DataFrame(rows), tables.SCORES, "scores")


def _frames_of(scores: pl.DataFrame) -> pl.DataFrame:
    fr = scores.select("dataset", "video_id", "label", "method", "frame_idx", "key").with_columns(
        pl.lit("test").alias("split")
    )
    lost = pl.DataFrame(
        {"dataset": ["D"], "video_id": ["real/lost"], "label": [0], "method": ["real"], "frame_idx": [None],
         "key": [None], "split": ["test"], "status": ["decode_error"]}
    )
    return tables.conform(pl.concat([fr, lost], how="diagonal_relaxed"), tables.FRAMES, "frames")


def _train_log(seed: int, epochs=4, steps_per_epoch=50) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for e in range(epochs):
        for s in range(steps_per_epoch):
            step = e * steps_per_epoch + s
            rows.append({"kind": "train", "epoch": e, "step": step, "loss": float(0.7 * np.exp(-step / 80) + rng.normal(0, 0.02)),
                         "lr": 1e-4 * (1 + np.cos(np.pi * s / steps_per_epoch)) / 2, "video_auroc": None})
        rows.append({"kind": "val", "epoch": e, "step": (e + 1) * steps_per_epoch, "loss": 0.5 - 0.05 * e, "lr": None,
                     "video_auroc": 0.7 + 0.05 * e + 0.01 * seed})
    return pl.DataFrame(rows, infer_schema_length=None)


def make_inputs(root: Path) -> dict:
    evaluations, expected = [], {}
    for mi, (model, sep) in enumerate(MODELS.items()):
        for bi, (bench, methods) in enumerate(BENCHES.items()):
            sc = _scores(seed=10 * mi + bi, sep=sep, methods=methods)
            d = root / "eval" / f"m{mi}" / f"b{bi}"
            res = evaluate_model(sc, d / "scores.parquet", d / "metrics.json", frames=_frames_of(sc), bootstrap=200,
                                 seed=0, extra_meta={"model": model, "benchmark": bench})
            expected[(model, bench)] = res
            evaluations.append({"model": model, "benchmark": bench, "metrics_path": str(d / "metrics.json"),
                                "scores_path": str(d / "scores.parquet")})
    datasets = []
    for name, videos in (("ffpp", 1000), ("cdf", 518)):
        stats = {"dataset": name, "videos": videos, "videos_by_split": {"test": videos},
                 "videos_by_label": {"real": 178, "fake": videos - 178}, "videos_by_method": {"real": 178},
                 "unreadable_videos": 3, "frames_sampled": 32 * videos, "faces": 32 * videos - 74,
                 "failures": {"no_face": 70, "decode_error": 3, "read_failed": 4}, "videos_without_crops": 5}
        if name == "cdf":
            del stats["failures"]["read_failed"], stats["videos_by_method"]  # tolerant of missing keys
        p = root / "data" / name / "stats.json"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(stats))
        datasets.append({"name": name, "stats_path": str(p), "checksums": {"archive.zip": "ab" * 32}})
    trainings = []
    for mi, model in enumerate(MODELS):
        p = root / "models" / f"m{mi}" / "train_log.parquet"
        p.parent.mkdir(parents=True, exist_ok=True)
        _train_log(mi).write_parquet(p)
        trainings.append({"model": model, "log_path": str(p), "config": {"lr": 1e-4, "epochs": 4}})
    provenance = {"config": {"seed": 0, "benchmarks": list(BENCHES)}, "code_version": "abc1234 (dirty)",
                  "packages": {"numpy": np.__version__, "polars": pl.__version__}}
    return {"evaluations": evaluations, "datasets": datasets, "trainings": trainings, "provenance": provenance,
            "expected": expected, "robustness": make_robustness(root),
            "published": rows_for(list(BENCHES), {"CDFv2": "CDFv2"})}


ROBUST = {"jpeg": [80, 40, 10], "blur": [1, 3]}


def make_robustness(root: Path) -> list[dict]:
    """evaluate_robustness-shaped results on CDFv2: the separation shrinks as the strength grows."""
    out = []
    for mi, (model, sep) in enumerate(MODELS.items()):
        points = []
        for kind, strengths in ROBUST.items():
            for k, s in enumerate(strengths):
                sc = _scores(seed=100 + 10 * mi + k, sep=sep / (k + 2), methods=BENCHES["CDFv2"])
                points.append({"kind": kind, "strength": float(s), "benchmark": f"CDFv2@{kind}={s:g}",
                               **evaluate_scores(sc, bootstrap=50, seed=0)})
        p = root / "robust" / f"m{mi}.json"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(jsonable({"model": model, "benchmark": "CDFv2", "points": points})))
        out.append({"model": model, "benchmark": "CDFv2", "path": str(p)})
    return out


class _Cells(HTMLParser):
    """Collects the text of every element with data-model plus data-benchmark / data-mean, and svg/figure tags."""

    def __init__(self):
        super().__init__()
        self.cells, self.means, self.figures, self.stack, self.attrs_of = {}, {}, [], [], {}
        self.svgs = 0
        self.refs = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for k in ("src", "href"):
            if k in a:
                self.refs.append(a[k])
        if tag == "svg":
            self.svgs += 1
        if tag == "figure":
            self.figures.append(a)
        if tag == "td" and "data-model" in a:
            self.stack.append([a, ""])

    def handle_endtag(self, tag):
        if tag == "td" and self.stack:
            a, text = self.stack.pop()
            if "data-benchmark" in a:
                self.cells[(a["data-model"], a["data-benchmark"])] = (a.get("data-value"), text)
                self.attrs_of[(a["data-model"], a["data-benchmark"])] = a
            elif "data-mean" in a:
                self.means[a["data-model"]] = (a["data-mean"], text)
                self.attrs_of[(a["data-model"], "mean")] = a

    def handle_data(self, data):
        if self.stack:
            self.stack[-1][1] += data


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    inp = make_inputs(root)
    out = root / "report.html"
    summary = build_report(out, evaluations=inp["evaluations"], datasets=inp["datasets"], trainings=inp["trainings"],
                           provenance=inp["provenance"], title="LNCLIP-DF <test>", demo=True,
                           robustness=inp["robustness"], published=inp["published"], out_csv=root / "metrics.csv")
    return {"root": root, "inp": inp, "out": out, "html": out.read_text(encoding="utf-8"), "summary": summary,
            "csv": root / "metrics.csv"}


def test_auroc_table_values_and_mean(built):
    p = _Cells()
    p.feed(built["html"])
    exp = built["inp"]["expected"]
    assert len(p.cells) == len(MODELS) * len(BENCHES)
    for model in MODELS:
        vals = []
        for bench in BENCHES:
            a = exp[(model, bench)]["video"]["auroc"]
            vals.append(a)
            value, text = p.cells[(model, bench)]
            assert float(value) == pytest.approx(100 * a, abs=1e-4)
            assert text.startswith(f"{100 * a:.2f}")
            lo, hi = exp[(model, bench)]["video"]["auroc_ci"]
            assert f"[{100 * lo:.2f}, {100 * hi:.2f}]" in text
        mean_value, mean_text = p.means[model]
        assert float(mean_value) == pytest.approx(100 * np.mean(vals), abs=1e-4)
        assert mean_text.strip().removesuffix("\u25b2best") == f"{100 * np.mean(vals):.2f}"
    # the better-separated model wins on every benchmark in this synthetic set: it alone is marked
    # best in every column and in the mean (the mean column is not bold by itself)
    assert all(float(p.cells[("LNCLIP-DF", b)][0]) > float(p.cells[("linear probe <baseline>", b)][0]) for b in BENCHES)
    for col in list(BENCHES) + ["mean"]:
        assert "best" in p.attrs_of[("LNCLIP-DF", col)].get("class", "").split()
        assert "best" not in p.attrs_of[("linear probe <baseline>", col)].get("class", "").split()
    assert built["html"].count("&#9650;best</span>") == len(BENCHES) + 1


def test_in_domain_benchmark_is_marked_and_left_out_of_the_mean(built, tmp_path):
    inp = built["inp"]
    first = next(iter(BENCHES))
    evaluations = [dict(e, in_domain=e["benchmark"] == first) for e in inp["evaluations"]]
    out = tmp_path / "r.html"
    build_report(out, evaluations=evaluations, datasets=inp["datasets"], trainings=inp["trainings"],
                 provenance=inp["provenance"], title="t", demo=False)
    html = out.read_text(encoding="utf-8")
    p = _Cells()
    p.feed(html)
    for model in MODELS:
        cross = [inp["expected"][(model, b)]["video"]["auroc"] for b in BENCHES if b != first]
        assert float(p.means[model][0]) == pytest.approx(100 * np.mean(cross), abs=1e-4)
        assert "\u2020" in p.cells[(model, first)][1].split("[")[0]  # the dagger mark
    assert html.count('data-in-domain="1"') == len(MODELS)


def test_incomplete_benchmark_copy_is_flagged_beside_its_numbers(built, tmp_path):
    inp = built["inp"]
    first = next(iter(BENCHES))
    msg = "CDFv2 test: 512 of 518 videos found, missing: Celeb-real/id0_0000"
    evaluations = [dict(e, incomplete=msg if e["benchmark"] == first else None) for e in inp["evaluations"]]
    out = tmp_path / "r.html"
    build_report(out, evaluations=evaluations, datasets=inp["datasets"], trainings=inp["trainings"],
                 provenance=inp["provenance"], title="t", demo=False)
    html = out.read_text(encoding="utf-8")
    assert html.count("data-incomplete-benchmark=") == 1 and f'data-incomplete-benchmark="{first}"' in html
    assert "512 of 518 videos found" in html


def test_structure_escaping_and_self_contained(built):
    html = built["html"]
    assert html.count('id="demo-banner"') == 1 and DEMO_TEXT in html
    p = _Cells()
    p.feed(html)
    roc = [f for f in p.figures if f.get("class") == "roc"]
    assert sorted(f["id"] for f in roc) == sorted(f"roc-{slug(b)}" for b in BENCHES)
    for b in BENCHES:
        sec = re.search(rf'<section id="bench-{re.escape(slug(b))}".*?</section>', html, re.S).group(0)
        assert sec.count('<figure id="roc-') == 1 and sec.count("<svg") == 2  # ROC + histograms
        assert 'class="per-method"' in sec
    # every ROC figure and training figure is an inline svg; no resource is fetched from anywhere
    assert p.svgs == 2 * len(BENCHES) + len(MODELS) + 1  # + the robustness figure of CDFv2
    assert not [r for r in p.refs if not r.startswith("#")], p.refs
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html)
    assert "@import" not in html and "<link" not in html
    assert html.count("<script") == 1 and "<script>" in html  # one inline script (sorting), nothing loaded
    # ids unique over the page (SVG ids are prefixed per figure)
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids))
    # user-provided strings are escaped
    assert "LNCLIP-DF &lt;test&gt;" in html and "<test>" not in html
    assert "linear probe &lt;baseline&gt;" in html and "FF++ &amp; DFD" in html


def test_per_method_and_data_sections(built):
    html = built["html"]
    exp = built["inp"]["expected"]
    sec = re.search(r'<section id="bench-FF-DFD".*?</section>', html, re.S).group(0)
    for m in ("DF", "F2F"):
        cell = re.search(rf'<td data-model="LNCLIP-DF" data-method="{m}">([^<]*)<', sec).group(1)
        assert cell == f"{100 * exp[('LNCLIP-DF', 'FF++ & DFD')]['per_method'][m]['video']['auroc']:.2f}"
    # evaluation data: 81 videos in split (80 scored + 1 undecodable), 1 dropped
    row = re.search(r'<tr data-model="LNCLIP-DF"><td class="left">LNCLIP-DF</td>(.*?)</tr>', sec, re.S).group(1)
    assert re.findall(r"<td>([^<]*)</td>", row)[:3] == ["81", "80", "1"]
    # dataset statistics, including a dataset whose stats lack keys
    data = re.search(r'<table id="data-table">.*?</table>', html, re.S).group(0)
    ff = re.search(r'<tr data-dataset="ffpp">(.*?)</tr>', data, re.S).group(1)
    assert '<td data-key="videos">1,000</td>' in ff and '<td data-key="frames_sampled">32,000</td>' in ff
    assert '<td data-key="faces">31,926</td>' in ff and '<td data-key="no_face">70</td>' in ff
    assert '<td data-key="read_failed">4</td>' in ff and '<td data-key="videos_without_crops">5</td>' in ff
    cdf = re.search(r'<tr data-dataset="cdf">(.*?)</tr>', data, re.S).group(1)
    assert '<td data-key="read_failed">\u2014</td>' in cdf and '<td data-key="videos">518</td>' in cdf
    # training and provenance
    for m in MODELS:
        assert f'id="train-{slug(m)}"' in html
    tr = re.search(r'<section id="train-LNCLIP-DF".*?</section>', html, re.S).group(0)
    assert re.search(r"its val video AUROC \(%\)</th><td class=.left wrap.>85.00</td>", tr)  # 0.7 + 0.05 * 3, epoch 3
    assert re.search(r"evaluated checkpoint</th><td class=.left wrap.>adapter: epoch 3 \(selected by video_auroc", tr)
    assert re.search(r"epochs in the log</th><td class=.left wrap.>4 \(0\u20133\)</td>", tr)
    assert re.search(r"last step</th><td class=.left wrap.>199</td>", tr)
    assert "train-warning" not in tr
    assert 'class="experiment"' not in html  # training configs that name no ladder setting: no experiment section
    assert "abc1234 (dirty)" in html and "ab" * 32 in html and f"<td class=\"left\">{np.__version__}</td>" in html


def test_no_demo_banner_and_deterministic(built, tmp_path):
    inp = built["inp"]
    kw = dict(evaluations=inp["evaluations"], datasets=inp["datasets"], trainings=inp["trainings"],
              provenance=inp["provenance"], title="LNCLIP-DF <test>")
    build_report(tmp_path / "a.html", demo=False, **kw)
    build_report(tmp_path / "b.html", demo=False, **kw)
    a = (tmp_path / "a.html").read_text()
    assert "demo-banner" not in a and DEMO_TEXT not in a
    assert a == (tmp_path / "b.html").read_text()


def test_missing_benchmark_for_a_model(tmp_path, built):
    inp = built["inp"]
    evals = [e for e in inp["evaluations"] if not (e["model"] == "LNCLIP-DF" and e["benchmark"] == "CDFv2")]
    build_report(tmp_path / "r.html", evaluations=evals, datasets=[], trainings=[], provenance={}, title="t", demo=False)
    p = _Cells()
    p.feed((tmp_path / "r.html").read_text())
    assert p.cells[("LNCLIP-DF", "CDFv2")][0] == ""
    a = inp["expected"][("LNCLIP-DF", "FF++ & DFD")]["video"]["auroc"]
    assert p.means["LNCLIP-DF"][1].strip() == f"{100 * a:.2f}*"
    with pytest.raises(ValueError, match="two evaluations"):
        build_report(tmp_path / "x.html", evaluations=evals + evals[:1], datasets=[], trainings=[], provenance={},
                     title="t", demo=False)


# -------------------------------------------------------------------------------------- real browser

CHROMIUM = next((p for p in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")) if p and Path(p).exists()), None)
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", Path(__file__).resolve().parents[1] / "test-artifacts"))


def _chromium(args, tmp_path, timeout=120):
    """Headless Chromium with console messages on stderr and a network log in ``tmp_path/net.json``."""
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic",
           "--disable-dev-shm-usage", "--hide-scrollbars", f"--user-data-dir={tmp_path / 'chrome-profile'}",
           "--enable-logging=stderr", "--v=0", f"--log-net-log={tmp_path / 'net.json'}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def _console_errors(stderr: str) -> list[str]:
    """Console messages of the page (Chromium logs each as ``CONSOLE``): errors, warnings, exceptions."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def _page_requests(net_log: Path) -> list[str]:
    """URLs the page requested, other than its own file (the browser's own background requests,
    which have no page as initiator, are not the page's)."""
    d = json.loads(net_log.read_text())
    start = d["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    starts = [e.get("params") or {} for e in d["events"] if e["type"] == start]
    return [p["url"] for p in starts if "url" in p and p.get("initiator") != "not an origin"
            and not p["url"].startswith("file:")]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")
def test_browser_checks_catch_errors_and_requests(tmp_path):
    """The two checks below can fail: a page with a script error and an image from the network trips both."""
    page = tmp_path / "bad.html"
    page.write_text('<html><body><img src="http://127.0.0.1:9/x.png"><script>console.error("bad"); nope();</script>')
    r = _chromium(["--dump-dom", page.as_uri()], tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    errors = _console_errors(r.stderr)
    assert any('"bad"' in e for e in errors) and any("nope is not defined" in e for e in errors)
    assert _page_requests(tmp_path / "net.json") == ["http://127.0.0.1:9/x.png"]


HARNESS = """<html><body><pre id="out">waiting</pre>
<iframe id="f" src="{url}" style="width: 800px; height: 600px; border: 0"></iframe>
<script>
document.getElementById("f").addEventListener("load", function () {{
  var d = this.contentDocument, out = {{}};
  out.viewport = d.documentElement.clientWidth;
  out.metrics = Array.prototype.map.call(d.querySelectorAll("table.metrics"),
                                         function (t) {{ return t.getBoundingClientRect().right; }});
  var th = d.querySelector("#auroc-table th[data-sort-col='1'] button");
  var before = Array.prototype.map.call(d.querySelectorAll("#auroc-rows tr"), function (r) {{ return r.dataset.model; }});
  th.click(); th.click();  /* descending, then ascending */
  out.sorted = Array.prototype.map.call(d.querySelectorAll("#auroc-rows tr"), function (r) {{ return r.dataset.model; }});
  out.before = before;
  document.getElementById("out").textContent = JSON.stringify(out);
}});
</script></body></html>"""


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")
def test_report_in_headless_chromium(built, tmp_path):
    url = built["out"].resolve().as_uri()
    r = _chromium(["--dump-dom", url], tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert _console_errors(r.stderr) == [] and _page_requests(tmp_path / "net.json") == []
    dom = r.stdout
    p = _Cells()
    p.feed(dom)
    exp = built["inp"]["expected"]
    for (model, bench), res in exp.items():  # the headline table
        assert float(p.cells[(model, bench)][0]) == pytest.approx(100 * res["video"]["auroc"], abs=1e-4)
    for b in BENCHES:  # a ROC and a histogram figure per benchmark, each an inline svg
        sec = re.search(rf'<section id="bench-{re.escape(slug(b))}".*?</section>', dom, re.S).group(0)
        assert sec.count("<figure") == 2 and sec.count("<svg") == 2
    robust = re.search(r'<figure id="robust-CDFv2" class="robustness".*?</figure>', dom, re.S).group(0)
    assert robust.count("<svg") == 1 and "jpeg, blur" in robust
    assert DEMO_TEXT in dom

    # at 800 px: the metrics tables fit, and the headline sorts by a column (lowest first when ascending)
    harness = tmp_path / "harness.html"
    harness.write_text(HARNESS.format(url=url))
    r = _chromium(["--allow-file-access-from-files", "--virtual-time-budget=10000", "--window-size=1000,800",
                   "--dump-dom", harness.as_uri()], tmp_path)
    out = json.loads(unescape(re.search(r'<pre id="out">(.*?)</pre>', r.stdout, re.S).group(1)))
    assert out["viewport"] == 800 and out["metrics"] and max(out["metrics"]) <= 800, out
    first = next(iter(BENCHES))
    by_value = sorted(MODELS, key=lambda m: exp[(m, first)]["video"]["auroc"])
    assert out["sorted"] == by_value and out["before"] == list(MODELS)

    png = ARTIFACTS / "report.png"  # kept as a test artifact
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    r = _chromium([f"--screenshot={png}", "--window-size=1280,2400", url], tmp_path)
    assert r.returncode == 0 and png.exists(), r.stderr[-2000:]
    import matplotlib.image as mpimg

    img = mpimg.imread(png)[..., :3]
    assert img.shape[0] == 2400 and img.shape[1] == 1280
    # not blank: many distinct colours, a good share of non-white pixels, and the banner's yellow
    assert np.unique((img * 255).astype(np.uint8).reshape(-1, 3), axis=0).shape[0] > 50
    assert (img.min(axis=2) < 0.9).mean() > 0.03
    assert np.all(np.abs(img - np.array([1.0, 0xF3 / 255, 0xCD / 255])) < 0.02, axis=2).sum() > 1000


def test_degenerate_inputs_do_not_break_the_report(tmp_path):
    # one benchmark with only real videos (AUROC undefined), one with no scored frame at all
    sc = _scores(seed=1, sep=0.3, methods=())
    evaluate_model(sc, tmp_path / "a/scores.parquet", tmp_path / "a/metrics.json", frames=_frames_of(sc), bootstrap=20)
    empty = tables.empty(tables.SCORES)
    evaluate_model(empty, tmp_path / "b/scores.parquet", tmp_path / "b/metrics.json", frames=_frames_of(sc), bootstrap=20)
    data_b = json.loads((tmp_path / "b/metrics.json").read_text())["data"]
    assert data_b["videos_without_crops"] == 1 and data_b["videos_dropped"] == 31 and data_b["videos_scored"] == 0
    evals = [{"model": "m", "benchmark": b, "metrics_path": str(tmp_path / b / "metrics.json"),
              "scores_path": str(tmp_path / b / "scores.parquet")} for b in ("a", "b")]
    sums = tmp_path / "SHA256SUMS"
    sums.write_text("0123abcd  videos/x.mp4\n4567ef01 *videos/y.mp4\n")
    big_log = _train_log(0, epochs=20, steps_per_epoch=1000)  # 20,000 steps: drawn as bin means
    big_log.write_parquet(tmp_path / "log.parquet")
    out = tmp_path / "r.html"
    summary = build_report(
        out, evaluations=evals,
        datasets=[{"name": "x", "stats_path": str(tmp_path / "missing.json"), "checksums": str(sums)}],
        trainings=[{"model": "m", "log_path": str(tmp_path / "log.parquet"), "config": None},
                   {"model": "never-trained", "log_path": str(tmp_path / "nope.parquet"), "config": {}}],
        provenance={"code_version": None, "host": "node1"}, title="t", demo=False,
    )
    html = out.read_text()
    p = _Cells()
    p.feed(html)
    assert p.cells[("m", "a")][0] == "" and p.cells[("m", "b")][0] == ""
    assert p.means["m"][1].strip() == "\u2014"
    assert html.count("<!-- no curve: needs real and fake videos -->") == 2  # matplotlib keeps text as a comment
    assert html.count('<figure id="roc-') == 2
    assert "videos/y.mp4" in html and "4567ef01" in html and "stats missing" in html
    assert "Training log missing" in html and "node1" in html
    assert summary["bytes"] < 1_500_000  # a 20,000-step log does not blow up the page


def test_config_dump_has_no_yaml_aliases():
    from pipeline.report import dump_config as _dump_config

    shared = {}
    text = _dump_config({"a": {"options": shared}, "b": {"options": shared}})
    assert "&id" not in text and "*id" not in text
    assert text.count("options: {}") == 2


# ------------------------------------------------------------------ metrics.csv, published, training, data


def test_metrics_csv_values_equal_metrics_json(built):
    import csv

    with open(built["csv"], newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["model", "seed", "benchmark", "level", "method", "metric", "value"]
    assert {r["seed"] for r in rows} == {""}  # no model with seeds
    ev = {(e["model"], e["benchmark"]): json.loads(Path(e["metrics_path"]).read_text())
          for e in built["inp"]["evaluations"]}
    for r in built["inp"]["robustness"]:
        for p in json.loads(Path(r["path"]).read_text())["points"]:
            ev[(r["model"], p["benchmark"])] = p
    seen = set()
    for row in rows:
        m = ev[(row["model"], row["benchmark"])]
        group = m if row["method"] == "all" else m["per_method"][row["method"]]
        d, key = group[row["level"]], row["metric"]
        for suffix, i in (("_low", 0), ("_high", 1)):
            if key.endswith("_ci" + suffix):
                d, key = {key: d[key.removesuffix(suffix)][i]}, key
        want = d[key]
        assert (row["value"] == "") if want is None else float(row["value"]) == want, row
        seen.add((row["model"], row["benchmark"], row["level"], row["method"], row["metric"]))
    assert len(seen) == len(rows)  # one row per model x benchmark x level x method x metric
    # every numeric value of every metrics.json is a row (overall and per method, both levels)
    for (model, bench), m in ev.items():
        for method, group in [("all", m)] + list(m["per_method"].items()):
            for level in ("frame", "video"):
                for k, v in group[level].items():
                    if isinstance(v, (int, float)) or v is None:
                        assert (model, bench, level, method, k) in seen
                    elif k.endswith("_ci"):
                        assert (model, bench, level, method, k + "_low") in seen
    assert {r["benchmark"] for r in rows} >= {"CDFv2@jpeg=10", "CDFv2@blur=3"}


def test_published_numbers_beside_ours_and_marked(built):
    html = built["html"]
    rows = re.findall(r'<tr class="published" data-published="([^"]+)">(.*?)</tr>', html, re.S)
    assert [r[0] for r in rows] == ["linear probing", "LN-tuning", "LN-tuning + L2 norm", "full method", "LNCLIP-DF",
                                    "ForAda", "Effort", "ladder: linear probe", "ladder: LN", "ladder: LN + L2",
                                    "ladder: LN + L2 + UnAl", "ladder: LNCLIP-DF"]
    full = dict(rows)["full method"]
    assert 'data-published-benchmark="CDFv2" data-published-value="96.62">96.62<' in full
    assert 'data-published-benchmark="FF++ &amp; DFD" data-published-value="">' in full  # no published column
    assert "published: full method" in full and "arXiv 2503.19683" in full
    assert "arXiv 2508.06248 v1" in re.search(r'id="published-sources">(.*?)</p>', html, re.S).group(1)
    # the published rows are never marked best and are outside the sortable body
    body = re.search(r'<tbody id="auroc-rows">(.*?)</tbody>', html, re.S).group(1)
    assert "published" not in body and "best" not in "".join(r[1] for r in rows)


def test_published_columns_follow_adapters_and_overrides():
    from pipeline.report.published import columns_of

    cfg = {"datasets": {"c": {"adapter": "celebdf"}, "s": {"adapter": "deepspeak"}, "f": {"adapter": "ffpp"}},
           "benchmarks": {"cdf": {"dataset": "c"}, "ds1": {"dataset": "s"}, "ffpp": {"dataset": "f"}}}
    assert columns_of(cfg) == {"cdf": "CDFv2"}
    assert columns_of({**cfg, "report": {"published": {"ds1": "DSv1"}}}) == {"cdf": "CDFv2", "ds1": "DSv1"}


def test_training_shows_every_loss_term_checkpoint_and_chance_warning(tmp_path):
    rows = []
    for e in range(3):
        for s in range(20):
            step = e * 20 + s
            rows.append({"kind": "train", "epoch": e, "step": step, "loss": 1.0 - step / 100, "ce": 0.7 - step / 200,
                         "align": 0.3 + step / 1000, "unif": -1.0 - step / 100, "lr": 1e-3})
        rows.append({"kind": "val", "epoch": e, "step": (e + 1) * 20, "video_auroc": [0.62, 0.48, 0.55][e],
                     "frame_auroc": 0.5})
    pl.DataFrame(rows, infer_schema_length=None).write_parquet(tmp_path / "log.parquet")
    adapter = {"path": "results/models/m/adapter.safetensors", "sha256": "f" * 64,
               "meta": {"best_epoch": 1, "selected_by": "video_auroc"}}
    build_report(tmp_path / "r.html", evaluations=[], datasets=[], provenance={}, title="t", demo=False,
                 trainings=[{"model": "m", "log_path": str(tmp_path / "log.parquet"), "config": {}, "adapter": adapter}])
    html = (tmp_path / "r.html").read_text()
    sec = re.search(r'<section id="train-m".*?</section>', html, re.S).group(0)
    for name in ("total loss", "cross-entropy", "alignment", "uniformity"):  # a summary row and a panel each
        assert f"final train {name}</th>" in sec
    assert sec.count("<!-- total loss -->") + sec.count("<!-- cross-entropy -->") == 2  # panel titles
    assert sec.count("<!-- alignment -->") == 1 and sec.count("<!-- uniformity -->") == 1
    assert "<!-- learning rate -->" in sec and "<!-- validation AUROC -->" in sec
    assert "evaluated: epoch 1" in sec  # the star's legend, epoch numbered as in the log
    assert re.search(r"evaluated checkpoint</th><td class=.left wrap.>results/models/m/adapter.safetensors: epoch 1 "
                     r"\(selected by video_auroc\), sha256 ffffffffffffffff", sec)
    assert re.search("epochs in the log</th><td class=.left wrap.>3 \\(0\u20132\\)</td>", sec)
    warn = re.search(r'<div class="warning train-warning" role="alert">(.*?)</div>', sec, re.S).group(1)
    assert "48.00 %" in warn and "at or below chance" in warn


def test_data_statistics_add_up(built):
    html = built["html"]
    data = re.search(r'<table id="data-table">.*?</table>', html, re.S).group(0)
    ff = re.search(r'<tr data-dataset="ffpp">(.*?)</tr>', data, re.S).group(1)
    # 31,926 faces + 70 no_face + 4 read_failed = 32,000 sampled; the 3 undecodable videos apart
    assert '<td data-key="faces">31,926</td>' in ff and '<td data-key="not_decoded">3</td>' in ff
    assert 'data-key="decode_error"' not in data
    assert 'data-mismatch="ffpp"' not in html
    # cdf's stats do not add up (faces + failures = 16,502 + 70 of 16,576): shown, not hidden
    assert re.search(r'data-mismatch="cdf">cdf: faces \+ frames without a face = 16,572, not 16,576<', html)


def test_histogram_bins_spread_bunched_scores():
    from pipeline.report.figures import score_bins

    rng = np.random.default_rng(0)
    bunched = np.r_[rng.uniform(0.495, 0.5, 40), rng.uniform(0.5, 0.505, 40)]
    edges = score_bins(bunched)
    assert edges[0] == bunched.min() and edges[-1] == bunched.max() and 12 <= len(edges) - 1 <= 40
    counts, _ = np.histogram(bunched, edges)
    assert (counts > 0).sum() >= 10  # not one bin
    assert len(score_bins(np.full(5, 0.3))) > 2  # one value: a small window around it


def test_training_draws_each_validation_set(tmp_path):
    rows = [{"kind": "train", "epoch": e, "step": e * 5 + s, "loss": 0.5, "lr": 1e-3} for e in range(2) for s in range(5)]
    for e in range(2):
        rows += [{"kind": "val", "epoch": e, "step": 5 * (e + 1), "video_auroc": 0.7 + 0.1 * e},
                 {"kind": "val:ffpp/val", "epoch": e, "step": 5 * (e + 1), "video_auroc": 0.8},
                 {"kind": "val:cdf/val", "epoch": e, "step": 5 * (e + 1), "video_auroc": 0.6 + 0.2 * e}]
    pl.DataFrame(rows, infer_schema_length=None).write_parquet(tmp_path / "log.parquet")
    build_report(tmp_path / "r.html", evaluations=[], datasets=[], provenance={}, title="t", demo=False,
                 trainings=[{"model": "m", "log_path": str(tmp_path / "log.parquet"), "config": {}}])
    sec = re.search(r'<section id="train-m".*?</section>', (tmp_path / "r.html").read_text(), re.S).group(0)
    assert "<!-- ffpp/val video AUROC -->" in sec and "<!-- cdf/val video AUROC -->" in sec
    assert "<!-- video AUROC (mean) -->" in sec
    assert re.search(r"its val video AUROC \(%\)</th><td class=.left wrap.>80.00</td>", sec)  # the mean row of the best epoch
