"""Compatibility entry point: the training code lives in :mod:`pipeline.training`."""

from .training import LOG_SCHEMA, SELECT_METRICS, NonFiniteLoss, lr_at, read_val_sets, train_model, validate, validate_sets

__all__ = ["LOG_SCHEMA", "NonFiniteLoss", "SELECT_METRICS", "lr_at", "read_val_sets", "train_model", "validate", "validate_sets"]
