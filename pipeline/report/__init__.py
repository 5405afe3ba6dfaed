"""Report stage: one self-contained ``report.html`` and the tidy ``metrics.csv`` beside it.

The page needs no network: figures are inline SVG made by matplotlib (text drawn as paths, so no font
is needed), CSS is inline, and the only script (sorting the headline table) is inline too. Everything
taken from inputs is escaped by Jinja's autoescape; only the SVG produced here is inserted as markup.

Stable hooks for tests and readers:
``#demo-banner`` (only for demo reports), ``table#auroc-table`` with ``td[data-model][data-benchmark]``
cells (``data-value`` = video AUROC in %), ``td.mean[data-model][data-mean]``, ``td.best`` for the
best of a column and ``tr.published`` rows; ``section#bench-{slug}`` per benchmark holding
``figure.roc`` / ``figure.hist`` and ``table.per-method`` / ``table.metrics``;
``section#robustness`` with ``figure.robustness[data-benchmark]``; ``table#data-table``
(``tr[data-dataset]``); ``section#train-{slug}`` per trained model (``.train-warning`` when its
checkpoint is at or below chance); ``section#provenance``. Benchmarks sharing real videos with a
model's training data: ``td[data-shares-reals]``, ``td.mean-wo[data-mean-wo]``, ``p#shared-note``;
published means ``td[data-published-mean]``. Experiment sections (when the models call for them):
``section#ablation`` (``tr[data-rung]``), ``section#data-fraction`` (``figure.fraction[data-metric]``,
``tr[data-group][data-fraction]``), ``section#paired-unpaired``, ``section#train-elsewhere``,
``section#clip-logreg``; their cells carry ``data-bench`` / ``data-auroc``, never the headline's
``data-benchmark`` / ``data-value``.

Modules: ``build`` (the page), ``headline``, ``benchmarks``, ``robust``, ``training``,
``datastats``, ``provenance_section``, ``experiments`` and ``data_experiments`` (its sections), ``figures`` (SVG), ``published`` (the papers'
numbers), ``tidy`` (``metrics.csv``), ``workflow`` (gathering a config's outputs).
"""

from .build import DEMO_TEXT, build_report
from .tidy import metric_rows, write_metrics_csv
from .util import dump_config, slug
from .workflow import report_from_workflow

__all__ = ["DEMO_TEXT", "build_report", "dump_config", "metric_rows", "report_from_workflow", "slug",
           "write_metrics_csv"]
