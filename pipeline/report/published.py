"""The papers' published video-level AUROC (%), shown beside ours and marked as published.

All numbers are for models trained on FaceForensics++ c23 and tested cross-dataset, video level.
The ablation of arXiv 2503.19683 ("Unlocking the Hidden Potential of CLIP in Generalizable Deepfake
Detection", ablation of the adaptation strategy) is quoted second-hand and rounded as quoted: treat
it as approximate. arXiv 2508.06248 v1 ("Deepfake Detection that Generalizes Across Benchmarks",
LNCLIP-DF results) gives one decimal; its ablation ladder (cross-dataset mean and Celeb-DF v2) and the
means of its comparison with other methods are quoted second-hand too (table numbers not verified).

A row's ``mean`` is the paper's own mean over the paper's own cross-dataset benchmark set, never ours;
``rung`` ties a row to a step of the ablation ladder (``RUNGS``), for the report's ablation section.

Columns: ``CDFv2`` Celeb-DF v2, ``DFD`` DeepFakeDetection, ``DFDC`` DFDC test, ``FFIW`` FFIW-10K,
``DSv1`` DeepSpeak v1.
"""

from __future__ import annotations

ABLATION = "arXiv 2503.19683, ablation"
LNCLIP_DF = "arXiv 2508.06248 v1"
LADDER = "arXiv 2508.06248, ablation"
SOURCES = {
    ABLATION: "arXiv 2503.19683 (Unlocking the Hidden Potential of CLIP in Generalizable Deepfake Detection), "
              "ablation of the adaptation strategy; quoted second-hand, approximate",
    LNCLIP_DF: "arXiv 2508.06248 v1 (Deepfake Detection that Generalizes Across Benchmarks), LNCLIP-DF results and "
               "the comparison with other methods; the means (over the paper's own cross-dataset benchmark set: "
               "LNCLIP-DF 94.2, ForAda 91.5, Effort 90.6) quoted second-hand, table not verified",
    LADDER: "arXiv 2508.06248 (Deepfake Detection that Generalizes Across Benchmarks), ablation from linear probing "
            "to LNCLIP-DF: the paper's cross-dataset mean and Celeb-DF v2; quoted second-hand, table not verified",
}
DIGITS = {ABLATION: 2, LNCLIP_DF: 1, LADDER: 1}  # decimals as published

# The ablation ladder: each step adds one part of the method (README "The report").
RUNGS = ("linear probe", "LN", "LN+L2", "LN+L2+UnAl", "LNCLIP-DF")

PUBLISHED = [
    {"row": "linear probing", "source": ABLATION, "rung": "linear probe",
     "values": {"CDFv2": 78.13, "DFD": 88.15, "DFDC": 73.62, "FFIW": 79.28, "DSv1": 63.65}},
    {"row": "LN-tuning", "source": ABLATION, "rung": "LN",
     "values": {"CDFv2": 94.88, "DFD": 96.83, "DFDC": 86.41, "FFIW": 92.24, "DSv1": 83.57}},
    {"row": "LN-tuning + L2 norm", "source": ABLATION, "rung": "LN+L2",
     "values": {"CDFv2": 96.21, "DFD": 98.18, "DFDC": 87.82, "FFIW": 92.72, "DSv1": 88.81}},
    {"row": "full method", "source": ABLATION, "rung": "LNCLIP-DF",
     "values": {"CDFv2": 96.62, "DFD": 98.00, "DFDC": 87.15, "FFIW": 91.52, "DSv1": 92.01}},
    {"row": "LNCLIP-DF", "source": LNCLIP_DF, "mean": 94.2,
     "values": {"CDFv2": 96.5, "DFD": 97.3, "DFDC": 87.0, "FFIW": 93.5}},
    {"row": "ForAda", "source": LNCLIP_DF, "mean": 91.5, "values": {}},
    {"row": "Effort", "source": LNCLIP_DF, "mean": 90.6, "values": {}},
    {"row": "ladder: linear probe", "source": LADDER, "rung": "linear probe", "mean": 76.1, "values": {"CDFv2": 78.8}},
    {"row": "ladder: LN", "source": LADDER, "rung": "LN", "mean": 90.8, "values": {"CDFv2": 93.1}},
    {"row": "ladder: LN + L2", "source": LADDER, "rung": "LN+L2", "mean": 91.8, "values": {"CDFv2": 94.5}},
    {"row": "ladder: LN + L2 + UnAl", "source": LADDER, "rung": "LN+L2+UnAl", "mean": 92.1, "values": {"CDFv2": 94.3}},
    {"row": "ladder: LNCLIP-DF", "source": LADDER, "rung": "LNCLIP-DF", "mean": 92.8, "values": {"CDFv2": 96.5}},
]
COLUMNS = ("CDFv2", "DFD", "DFDC", "FFIW", "DSv1")

# A benchmark matches a published column by its dataset's adapter unless report.published says otherwise.
BY_ADAPTER = {"celebdf": "CDFv2", "dfd": "DFD", "dfdc": "DFDC", "ffiw": "FFIW"}


def columns_of(config: dict) -> dict[str, str]:
    """Benchmark name -> published column, for the benchmarks of ``config`` that have one."""
    override = (config.get("report") or {}).get("published") or {}
    out = {}
    for name, bench in config["benchmarks"].items():
        adapter = config["datasets"][bench["dataset"]]["adapter"]
        col = override.get(name, BY_ADAPTER.get(adapter))
        if col in COLUMNS:
            out[name] = col
    return out


def _row(entry: dict, values: dict) -> dict:
    return {"row": entry["row"], "source": entry["source"], "source_text": SOURCES[entry["source"]],
            "values": values, "mean": entry.get("mean"), "rung": entry.get("rung"),
            "digits": DIGITS[entry["source"]]}


def rows_for(benchmarks: list[str], columns: dict[str, str]) -> list[dict]:
    """Published rows with a value for at least one of ``benchmarks`` or a mean of the paper's, when
    at least one of ``benchmarks`` is one of the papers' test sets (none otherwise, as for the demo):
    ``{row, source, source_text, values, mean, rung, digits}`` with ``values`` keyed by our benchmark
    names (None where the paper has no number)."""
    out = []
    if not any(columns.get(b) in COLUMNS for b in benchmarks):
        return out
    for entry in PUBLISHED:
        values = {b: entry["values"].get(columns.get(b)) for b in benchmarks}
        if any(v is not None for v in values.values()) or entry.get("mean") is not None:
            out.append(_row(entry, values))
    return out


def for_rung(rung: str) -> list[dict]:
    """The published rows of one ladder rung (both papers), with ``values`` keyed by column."""
    return [_row(e, dict(e["values"])) for e in PUBLISHED if e.get("rung") == rung]
