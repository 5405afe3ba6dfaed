"""LNCLIP-DF pipeline: the importable logic behind the Snakemake workflow.

Each stage is a module with plain functions, callable without Snakemake:
``datasets``/``index`` (videos.parquet), ``faces`` (crops into WebDataset shards), ``manifest``
(frames/pairs/stats), ``model``/``losses``/``data``/``train`` (LNCLIP-DF), ``predict``/``evaluate``/
``metrics`` (scores and metrics), ``report`` (report.html). ``python -m pipeline --help`` lists the
command-line verbs.
"""

__version__ = "0.1.0"
