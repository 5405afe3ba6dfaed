"""The detector: backbone + LN-tuning + head (:mod:`.detector`), its losses (:mod:`.losses`), its input
(:mod:`.inputs`: crops from shards, augmentations, loaders) and the backbone's frozen features
(:mod:`.features`, for the frozen-backbone baseline)."""

from pipeline import lazy_exports

_EXPORTS = {
    "Detector": "detector", "BACKBONES": "detector", "CLIP_MEAN": "detector", "CLIP_STD": "detector",
    "IMAGENET_MEAN": "detector", "IMAGENET_STD": "detector", "family": "detector", "normalize": "detector",
    "quiet_transformers": "detector", "load_backbone": "detector", "save_random_backbone": "detector",
    "square_size": "detector", "save_adapter": "detector", "write_adapter": "detector",
    "read_adapter_meta": "detector", "load_detector": "detector", "pick_device": "detector",
    "autocast": "detector", "ADAPTER_FORMAT": "detector",
    "LossConfig": "losses", "total_loss": "losses", "alignment_loss": "losses", "uniformity_loss": "losses",
    "slerp": "losses", "slerp_augment": "losses", "slerp_expand": "losses",
    "to_uint8": "inputs", "Augmenter": "inputs", "DEFAULT_AUGMENT": "inputs", "ShardCrops": "inputs",
    "shard_dataset": "inputs", "collate": "inputs", "make_loader": "inputs", "derive_seed": "inputs",
    "epoch_order": "inputs",
    "split_crops": "features", "backbone_features": "features", "with_features": "features",
    "extract_features": "features", "read_features": "features", "head_scores": "features",
    "score_features_file": "features",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
