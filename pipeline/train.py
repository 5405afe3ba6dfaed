"""Compatibility entry point: the training code lives in :mod:`pipeline.training`."""

from .training import LOG_SCHEMA, SELECT_METRICS, NonFiniteLoss, lr_at, train_model, validate

__all__ = ["LOG_SCHEMA", "NonFiniteLoss", "SELECT_METRICS", "lr_at", "train_model", "validate"]
