"""LNCLIP-DF pipeline: the importable logic behind the Snakemake workflow.

One sub-package per stage of the workflow, over a shared core that imports no stage:

* :mod:`.core`: config and settings, results layout, table contracts, files, shards, codecs, video,
  logs, provenance, checksums and markers;
* :mod:`.workflow`: what Snakemake needs besides the stages (rule params, code keys, planning
  warnings, guard, job sizes, the job harness);
* stages: :mod:`.fetch`, :mod:`.datasets`, :mod:`.faces`, :mod:`.model`, :mod:`.training`,
  :mod:`.evaluation`, :mod:`.report`, :mod:`.predict`, :mod:`.serve`, :mod:`.export`.

A stage's package hands on its public names lazily (:func:`lazy_exports`): importing it costs nothing,
and a workflow job runs, and records, only the modules it uses. ``python -m pipeline --help`` lists the
command-line verbs.
"""

__version__ = "0.1.0"


def lazy_exports(package: str, exports: dict[str, str]):
    """``__getattr__`` and ``__dir__`` for a package that hands on ``name -> module`` of its own
    modules, importing a module only when one of its names is first used."""
    import importlib
    import sys

    def __getattr__(name: str):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__():
        return sorted(exports)

    return __getattr__, __dir__
