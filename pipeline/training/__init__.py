"""Training of one model entry, split by concern: :mod:`.loop` (the epochs), :mod:`.step` (one
sync-free optimiser step), :mod:`.state` (resumable checkpoints), :mod:`.loader` (persistent
loaders), :mod:`.records` (the log), :mod:`.engine` (precision, attention, compile, intervals) and
:mod:`.schedule` (the learning rate)."""

from .loop import SELECT_METRICS, read_val_sets, train_model, validate, validate_sets
from .records import LOG_SCHEMA, NonFiniteLoss
from .schedule import lr_at

__all__ = ["LOG_SCHEMA", "NonFiniteLoss", "SELECT_METRICS", "lr_at", "read_val_sets", "train_model", "validate", "validate_sets"]
