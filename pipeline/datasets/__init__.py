"""The datasets stage (``index``, ``import_crops``, ``manifest``, ``subsets`` rules): a dataset's own layout ->
``videos.parquet`` (:mod:`.adapters`, :mod:`.index`), crops a dataset brings -> shards
(:mod:`.imports`), every shard table -> ``frames.parquet``, ``pairs.parquet``, ``stats.json``
(:mod:`.manifest`); paired and unpaired training subsets -> ``subsets.parquet`` (:mod:`.subsets`)."""

from pipeline import lazy_exports

_EXPORTS = {
    "build_index": "index", "list_videos": "index", "probe_videos": "index", "completeness": "index",
    "assign_chunks": "index",
    "import_chunk": "imports", "probe_frames": "imports",
    "build_manifest": "manifest", "build_pairs": "manifest", "data_stats": "manifest",
    "build_subsets": "subsets", "draw_split": "subsets", "select_training": "subsets",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
