"""The report's sections inferred from the models' settings (ablation ladder, data fraction, paired /
unpaired, trained elsewhere, logistic regression), the published rows' means and sources, and the
marking of benchmarks that share real videos with the training data (FaceShifter)."""

from __future__ import annotations

import copy
import json
import re
from html import unescape
from pathlib import Path

import numpy as np
import pytest
from test_report import CHROMIUM, _chromium, _console_errors, _frames_of, _page_requests, _scores, _train_log

from pipeline.evaluation.benchmark import evaluate_model
from pipeline.report import build_report
from pipeline.report.data_experiments import fraction_section
from pipeline.report.experiments import rung
from pipeline.report.published import PUBLISHED, rows_for
from pipeline.report.workflow import shares_reals

BASE = {"kind": "train", "weights": "clip", "ln_tuning": True, "l2_norm": True,
        "loss": {"label_smoothing": 0.1, "alignment": 0.1, "uniformity": 0.5}, "slerp": {"enabled": True, "expand_to": None},
        "optim": {"lr": 3e-4, "epochs": 4}, "seed": 1,
        "data": {"dataset": "ffpp", "train_split": "train", "val_split": "val", "fraction": 1.0, "order": "shuffle"}}
PLAIN = {"loss": {"label_smoothing": 0.0, "alignment": 0.0, "uniformity": 0.0}, "slerp": {"enabled": False}}


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


SETTINGS = {
    "linear_probe": _merge(BASE, {"ln_tuning": False, "l2_norm": False, **PLAIN}),
    "ln": _merge(BASE, {"l2_norm": False, **PLAIN}),
    "ln_50pct": _merge(BASE, {"l2_norm": False, **PLAIN, "data": {"fraction": 0.5}}),
    "ln_l2_unal": _merge(BASE, {"slerp": {"enabled": False}}),
    "lnclip_df": BASE,
    "lnclip_df_s2": _merge(BASE, {"seed": 2}),
    "lnclip_df_50pct": _merge(BASE, {"data": {"fraction": 0.5}}),
    "lnclip_df_25pct": _merge(BASE, {"data": {"fraction": 0.25}}),
    "lnclip_df_paired": _merge(BASE, {"data": {"subset": "paired"}}),
    "lnclip_df_unpaired": _merge(BASE, {"data": {"subset": "unpaired"}}),
    "lnclip_df_cdf": _merge(BASE, {"data": {"dataset": "cdf"}}),
    "logistic": _merge(BASE, {"kind": "logistic", "logistic": {"C": 1.0}}),
}
RUNGS = {"linear_probe": "linear probe", "ln": "LN", "ln_50pct": "LN", "ln_l2_unal": "LN+L2+UnAl",
         "lnclip_df": "LNCLIP-DF", "lnclip_df_s2": "LNCLIP-DF", "lnclip_df_50pct": "LNCLIP-DF",
         "lnclip_df_25pct": "LNCLIP-DF", "lnclip_df_paired": "LNCLIP-DF", "lnclip_df_unpaired": "LNCLIP-DF",
         "lnclip_df_cdf": "LNCLIP-DF", "logistic": None}
# benchmark -> (its dataset, fake methods); fsh is made from ffpp's download (FaceShifter beside FF++ c23)
BENCHES = {"ffpp": ("ffpp", ("DF", "F2F")), "fsh": ("fsh", ("FSh",)), "cdf": ("cdf", ("Celeb-synthesis",))}
DATASETS = {"ffpp": {"source": {"kaggle": "x/y"}}, "fsh": {"source": {"dataset": "ffpp"}}, "cdf": {"source": {"path": "c"}}}


def _evaluations(root) -> tuple[list[dict], dict]:
    evals, metrics = [], {}
    for mi, model in enumerate(SETTINGS):
        train_ds = SETTINGS[model]["data"]["dataset"]
        for bi, (bench, (ds, methods)) in enumerate(BENCHES.items()):
            sc = _scores(seed=100 * mi + bi, sep=0.05 + 0.03 * mi + 0.02 * bi, methods=methods, n_real=12, n_fake=10,
                         frames=2)
            d = root / "eval" / model / bench
            metrics[(model, bench)] = evaluate_model(sc, d / "scores.parquet", d / "metrics.json", frames=_frames_of(sc),
                                                     bootstrap=0, seed=0)
            evals.append({"model": model, "benchmark": bench, "metrics_path": str(d / "metrics.json"),
                          "scores_path": str(d / "scores.parquet"), "in_domain": ds == train_ds,
                          "shares_reals": shares_reals(DATASETS, ds, train_ds)})
    return evals, metrics


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("experiments")
    evals, metrics = _evaluations(root)
    trainings = []
    for mi, model in enumerate(m for m in SETTINGS if "paired" in m or m in ("lnclip_df", "lnclip_df_s2")):
        p = root / "models" / model / "train_log.parquet"
        p.parent.mkdir(parents=True, exist_ok=True)
        _train_log(mi, epochs=3, steps_per_epoch=10).write_parquet(p)
        trainings.append({"model": model, "log_path": str(p), "config": SETTINGS[model]})
    columns = {"cdf": "CDFv2"}
    out = root / "report.html"
    build_report(out, evaluations=evals, datasets=[], trainings=trainings, provenance={}, title="experiments",
                 demo=False, settings=SETTINGS, published_columns=columns, published=rows_for(list(BENCHES), columns))
    return {"root": root, "out": out, "html": out.read_text(encoding="utf-8"), "metrics": metrics, "evals": evals}


def _auroc(built, model, bench, key="auroc"):
    return built["metrics"][(model, bench)]["video"][key]


def _cross(built, model, key="auroc", without_shared=False):
    """The cross-dataset mean as the headline defines it: every benchmark but the training dataset's."""
    ds = SETTINGS[model]["data"]["dataset"]
    skip = {ds} | ({"fsh", "ffpp"} if without_shared and ds == "ffpp" else set())
    return float(np.mean([_auroc(built, model, b, key) for b in BENCHES if BENCHES[b][0] not in skip]))


def _section(html: str, sid: str) -> str:
    return re.search(rf'<section id="{sid}".*?</section>', html, re.S).group(0)


def test_rungs_are_identified_from_the_settings():
    assert {m: rung(s) for m, s in SETTINGS.items()} == RUNGS
    assert rung(_merge(BASE, {"slerp": {"enabled": False}, "loss": {"alignment": 0.0, "uniformity": 0.0}})) == "LN+L2"
    assert rung(_merge(BASE, {"ln_tuning": False})) is None  # L2 head and losses on a frozen backbone: no step
    assert rung({"kind": "released"}) is None and rung({"lr": 1e-3}) is None


def test_ablation_rows_our_means_and_both_papers(built):
    sec = _section(built["html"], "ablation")
    rows = re.findall(r'<tr data-rung="([^"]+)">(.*?)</tr>', sec, re.S)
    assert [r for r, _ in rows] == ["linear probe", "LN", "LN+L2+UnAl", "LNCLIP-DF"]  # no LN+L2 model: no row
    full = dict(rows)["LNCLIP-DF"]
    assert "lnclip_df, lnclip_df_s2</td>" in full  # the two seeds; not the fraction/subset/other-dataset models
    want = np.mean([_cross(built, "lnclip_df"), _cross(built, "lnclip_df_s2")])
    assert float(re.search(r'data-rung-mean="([^"]+)"', full).group(1)) == pytest.approx(100 * want, abs=1e-4)
    cdf = np.mean([_auroc(built, m, "cdf") for m in ("lnclip_df", "lnclip_df_s2")])
    assert re.search(r'data-rung-cdf="1">([^<]+)<', full).group(1) == f"{100 * cdf:.2f}"
    published = {(s, c): v for s, c, v in re.findall(
        r'data-source="([^"]+)" data-column="([^"]+)" data-published-value="([^"]+)"', full)}
    assert published == {("arXiv 2508.06248, ablation", "mean"): "92.8", ("arXiv 2508.06248, ablation", "CDFv2"): "96.5",
                         ("arXiv 2503.19683, ablation", "CDFv2"): "96.62"}
    lp = dict(rows)["linear probe"]
    assert 'data-published-value="76.1"' in lp and 'data-published-value="78.8"' in lp and 'data-published-value="78.13"' in lp
    assert dict(rows)["LN+L2+UnAl"].count("\u2014") == 1  # 2503.19683 has no such step
    sources = re.search(r'id="ablation-sources">(.*?)</p>', sec, re.S).group(1)
    assert "arXiv 2508.06248" in sources and "arXiv 2503.19683" in sources and "second-hand" in sources


def test_data_fraction_plots_and_table(built):
    sec = _section(built["html"], "data-fraction")
    assert sec.count('<figure id="fraction-') == 2 and sec.count("<svg") == 2
    assert 'data-metric="auroc"' in sec and 'data-metric="balanced_acc"' in sec
    assert sec.count("<!-- LNCLIP-DF -->") == 2 and sec.count("<!-- LN -->") == 2  # one line per group, both plots
    rows = re.findall(r'<tr data-group="([^"]+)" data-fraction="([^"]+)">(.*?)</tr>', sec, re.S)
    assert [(g, f) for g, f, _ in rows] == [("LN", "0.5"), ("LN", "1.0"), ("LNCLIP-DF", "0.25"), ("LNCLIP-DF", "0.5"),
                                            ("LNCLIP-DF", "1.0")]  # groups in the models' order, fractions rising
    one = rows[4][2]
    want = np.mean([_cross(built, "lnclip_df"), _cross(built, "lnclip_df_s2")])
    assert float(re.search(r'data-mean-auroc="([^"]+)"', one).group(1)) == pytest.approx(want, abs=1e-9)
    bacc = np.mean([_cross(built, m, "balanced_acc") for m in ("lnclip_df", "lnclip_df_s2")])
    assert float(re.search(r'data-mean-bacc="([^"]+)"', one).group(1)) == pytest.approx(bacc, abs=1e-9)
    cdf = np.mean([_auroc(built, m, "cdf") for m in ("lnclip_df", "lnclip_df_s2")])
    assert re.search(r'<td data-bench="cdf" data-auroc="([^"]+)"', one).group(1) == f"{100 * cdf:.6g}"


def test_data_fraction_points_are_the_plotted_means(built):
    ev = {(e["model"], e["benchmark"]): {**e, "metrics": json.loads(Path(e["metrics_path"]).read_text())}
          for e in built["evals"]}
    sec = fraction_section(SETTINGS, ev, list(BENCHES))
    full = next(g for g in sec["groups"] if g["label"] == "LNCLIP-DF")
    assert [p["fraction"] for p in full["points"]] == [0.25, 0.5, 1.0]
    assert [p["auroc"] for p in full["points"]] == pytest.approx(
        [_cross(built, "lnclip_df_25pct"), _cross(built, "lnclip_df_50pct"),
         np.mean([_cross(built, "lnclip_df"), _cross(built, "lnclip_df_s2")])])
    assert full["points"][2]["models"] == ["lnclip_df", "lnclip_df_s2"]


def test_paired_unpaired_curves_and_test_aurocs(built):
    sec = _section(built["html"], "paired-unpaired")
    assert sec.count("<figure") == 1 and sec.count("<svg") == 1
    for label in ("lnclip_df_paired (paired)", "lnclip_df_unpaired (unpaired)", "lnclip_df (all data)"):
        assert sec.count(f"<!-- {label} -->") == 2  # in the loss and in the validation panel's legend
    assert "<!-- train loss -->" in sec and "<!-- validation video AUROC -->" in sec
    rows = dict(re.findall(r'<tr data-model="([^"]+)" data-subset="([^"]+)">', sec))
    assert rows == {"lnclip_df": "all data", "lnclip_df_s2": "all data", "lnclip_df_paired": "paired",
                    "lnclip_df_unpaired": "unpaired"}
    row = re.search(r'<tr data-model="lnclip_df_paired".*?</tr>', sec, re.S).group(0)
    assert re.search(r'data-bench="cdf" data-auroc="([^"]+)"', row).group(1) == \
        f"{100 * _auroc(built, 'lnclip_df_paired', 'cdf'):.6g}"


def test_trained_elsewhere_table_marks_in_domain_cells(built):
    sec = _section(built["html"], "train-elsewhere")
    rows = re.findall(r'<tr data-model="([^"]+)" data-dataset="([^"]+)">(.*?)</tr>', sec, re.S)
    assert [(m, d) for m, d, _ in rows] == [("lnclip_df_cdf", "cdf"), ("lnclip_df", "ffpp"), ("lnclip_df_s2", "ffpp")]
    cdf_row, ff_row = rows[0][2], rows[1][2]
    assert re.search(r'data-bench="cdf" data-auroc="[^"]+" class="in-domain" data-in-domain="1">', cdf_row)
    assert re.search(r'data-bench="ffpp" data-auroc="[^"]+" class="in-domain"', ff_row)
    assert cdf_row.count('data-in-domain="1"') == 1 and "&Dagger;" not in cdf_row  # FaceShifter is not cdf's
    assert "&Dagger;" in re.search(r'data-bench="fsh".*?</td>', ff_row).group(0)


def test_logistic_accuracy_per_benchmark_and_method(built):
    sec = _section(built["html"], "clip-logreg")
    m = built["metrics"][("logistic", "ffpp")]
    for method, group in [("all", m), ("DF", m["per_method"]["DF"]), ("F2F", m["per_method"]["F2F"])]:
        row = re.search(rf'<tr data-benchmark="ffpp" data-method="{method}">(.*?)</tr>', sec, re.S).group(1)
        for level in ("frame", "video"):
            for key in ("acc", "balanced_acc"):
                cell = re.search(rf'data-key="{level}_{key}">([^<]+)<', row).group(1)
                assert cell == f"{100 * group[level][key]:.2f}"
    assert sec.count("<tr data-benchmark=") == 3 + 2 + 2  # ffpp: all + 2 methods; fsh, cdf: all + 1


def test_faceshifter_marked_counted_and_a_mean_without_it(built):
    html = built["html"]
    cell = re.search(r'<td data-model="lnclip_df" data-benchmark="fsh"[^>]*>([^<]*)', html).group(0)
    assert 'data-shares-reals="1"' in cell and "&Dagger;" in cell
    assert not re.search(r'data-model="lnclip_df_cdf" data-benchmark="fsh"[^>]*data-shares-reals', html)
    mean = float(re.search(r'data-model="lnclip_df" data-mean="([^"]+)"', html).group(1))
    assert mean == pytest.approx(100 * _cross(built, "lnclip_df"), abs=1e-4)  # FaceShifter counted, as in the papers
    wo = float(re.search(r'data-model="lnclip_df" data-mean-wo="([^"]+)"', html).group(1))
    assert wo == pytest.approx(100 * _auroc(built, "lnclip_df", "cdf"), abs=1e-4)  # only Celeb-DF is left
    note = re.search(r'<p class="note" id="shared-note">(.*?)</p>', html, re.S).group(1)
    assert note.startswith("<b>&Dagger;</b> fsh:") and "FaceShifter among their cross-dataset benchmarks" in note
    assert html.count('data-shares-reals="1"') == 11  # fsh for the 11 models trained on ffpp (the cdf one: not)


def test_published_rows_show_the_papers_means_with_sources(built):
    rows = dict(re.findall(r'<tr class="published" data-published="([^"]+)">(.*?)</tr>', built["html"], re.S))
    for name, mean in (("LNCLIP-DF", "94.2"), ("ForAda", "91.5"), ("Effort", "90.6"), ("ladder: LN", "90.8")):
        assert f'data-published-mean="{mean}"' in rows[name] and "the paper's benchmark set, not ours" in rows[name]
    assert 'data-published-mean' not in rows["full method"]  # 2503.19683's ablation gives no mean
    assert 'data-published-benchmark="cdf" data-published-value="93.1">93.1<' in rows["ladder: LN"]
    assert "arXiv 2508.06248, ablation" in rows["ladder: LN"] and "arXiv 2508.06248 v1" in rows["ForAda"]
    assert all(e["source"] and (e.get("mean") is not None or e["values"]) for e in PUBLISHED)


def test_sections_absent_without_their_models(tmp_path, built):
    evals = [dict(e, shares_reals=False) for e in built["evals"] if e["model"] in ("logistic", "lnclip_df_50pct")]
    build_report(tmp_path / "r.html", evaluations=evals, datasets=[], trainings=[], provenance={}, title="t",
                 demo=False, settings={m: SETTINGS[m] for m in ("logistic", "lnclip_df_50pct", "lnclip_df")})
    html = (tmp_path / "r.html").read_text()
    # lnclip_df has no evaluation nor training: not in the report; half of the data is no step of the ladder
    assert 'id="ablation"' not in html and 'id="ablation-table"' in built["html"]
    for sid in ("data-fraction", "paired-unpaired", "train-elsewhere", "shared-note"):
        assert f'id="{sid}"' not in html
    assert 'id="clip-logreg"' in html and "mean w/o" not in html


def test_fraction_without_a_cross_dataset_benchmark_says_so_instead_of_an_empty_plot(tmp_path, built):
    models = ("lnclip_df", "lnclip_df_50pct", "lnclip_df_25pct")
    evals = [dict(e, shares_reals=False) for e in built["evals"] if e["model"] in models and e["benchmark"] == "ffpp"]
    build_report(tmp_path / "r.html", evaluations=evals, datasets=[], trainings=[], provenance={}, title="t",
                 demo=False, settings={m: SETTINGS[m] for m in models})
    sec = _section((tmp_path / "r.html").read_text(), "data-fraction")
    assert "<svg" not in sec and 'id="fraction-no-plot"' in sec and "add a benchmark from another dataset" in sec
    assert sec.count("<tr data-group=") == 3  # the in-domain table stays
    assert 'id="fraction-no-plot"' not in _section(built["html"], "data-fraction")


HARNESS = """<html><body><pre id="out">waiting</pre>
<iframe id="f" src="{url}" style="width: 1200px; height: 900px; border: 0"></iframe>
<script>
document.getElementById("f").addEventListener("load", function () {{
  var d = this.contentDocument, out = {{}};
  ["ablation", "data-fraction", "paired-unpaired", "train-elsewhere", "clip-logreg"].forEach(function (id) {{
    var s = d.getElementById(id), r = s.getBoundingClientRect();
    var svgs = Array.prototype.map.call(s.querySelectorAll("svg"), function (v) {{
      var b = v.getBoundingClientRect(); return [b.width, b.height]; }});
    out[id] = {{height: r.height, width: r.width, svgs: svgs, rows: s.querySelectorAll("tbody tr").length,
               visible: d.defaultView.getComputedStyle(s).display !== "none"}};
  }});
  document.getElementById("out").textContent = JSON.stringify(out);
}});
</script></body></html>"""


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")
def test_sections_render_visibly_in_headless_chromium(built, tmp_path):
    url = built["out"].resolve().as_uri()
    harness = tmp_path / "harness.html"
    harness.write_text(HARNESS.format(url=url))
    r = _chromium(["--allow-file-access-from-files", "--virtual-time-budget=10000", "--window-size=1300,1000",
                   "--dump-dom", harness.as_uri()], tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert _console_errors(r.stderr) == [] and _page_requests(tmp_path / "net.json") == []
    out = json.loads(unescape(re.search(r'<pre id="out">(.*?)</pre>', r.stdout, re.S).group(1)))
    for sid, rows in (("ablation", 4), ("data-fraction", 5), ("paired-unpaired", 4), ("train-elsewhere", 3),
                      ("clip-logreg", 7)):
        assert out[sid]["visible"] and out[sid]["height"] > 100 and out[sid]["rows"] == rows, (sid, out[sid])
    for sid, n in (("data-fraction", 2), ("paired-unpaired", 1)):
        assert len(out[sid]["svgs"]) == n and all(w > 200 and h > 150 for w, h in out[sid]["svgs"]), out[sid]


def test_only_the_headline_has_model_benchmark_value_cells(built):
    """Readers of the page (and the workflow test) take td[data-benchmark][data-value] as the headline's cells."""
    cells = re.findall(r"<td ([^>]*data-benchmark=[^>]*data-value=[^>]*)>", built["html"])
    pairs = [(re.search(r'data-model="([^"]+)"', c).group(1), re.search(r'data-benchmark="([^"]+)"', c).group(1))
             for c in cells]
    assert sorted(pairs) == sorted((e["model"], e["benchmark"]) for e in built["evals"])


def test_the_ladder_keeps_the_models_alike_in_everything_but_its_steps():
    from pipeline.report.experiments import _ladder

    settings = {"lp": SETTINGS["linear_probe"], "full": BASE, "full_s2": SETTINGS["lnclip_df_s2"],
                "paired_order": _merge(BASE, {"data": {"order": "paired"}}), "expand": _merge(BASE, {"slerp": {"expand_to": 1024}}),
                "sgd": _merge(BASE, {"optim": {"name": "sgd"}}), "half": SETTINGS["lnclip_df_50pct"]}
    assert _ladder(settings) == {"lp": "linear probe", "full": "LNCLIP-DF", "full_s2": "LNCLIP-DF"}


def test_published_rows_only_beside_the_papers_test_sets_and_shared_reals_from_the_config():
    from pipeline.core.config import load

    assert rows_for(["demo", "demo_shift"], {}) == []  # the demo runs none of the papers' test sets
    rows = {r["row"]: r for r in rows_for(["ffpp_c23", "celebdf_v2"], {"celebdf_v2": "CDFv2"})}
    assert rows["ForAda"]["values"] == {"ffpp_c23": None, "celebdf_v2": None} and rows["ForAda"]["mean"] == 91.5
    assert rows["LNCLIP-DF"]["values"]["celebdf_v2"] == 96.5 and rows["LNCLIP-DF"]["mean"] == 94.2
    datasets = load("config.yaml")["datasets"]
    assert shares_reals(datasets, "ffpp_fsh", "ffpp_c23") and shares_reals(datasets, "ffpp_c23", "ffpp_fsh")
    assert shares_reals(datasets, "ffpp_c23", "ffpp_c23")
    assert not shares_reals(datasets, "celebdf_v2", "ffpp_c23") and not shares_reals(datasets, "dfd", "ffpp_c23")
