"""The training stage (``train``, ``features`` rules). :mod:`.kinds` decides, for every kind of model,
what it depends on, reads and runs: gradient training (:mod:`.loop` the epochs, :mod:`.step` one
sync-free optimiser step, :mod:`.state` resumable checkpoints, :mod:`.loader` persistent loaders,
:mod:`.sampling` the order of an epoch, :mod:`.records` the log, :mod:`.engine` precision and
compilation, :mod:`.schedule` the learning rate, :mod:`.optimizers`), the logistic-regression baseline
(:mod:`.logistic`) and released weights (:mod:`.released`, their files read as data by :mod:`.release_files`)."""

from pipeline import lazy_exports

_EXPORTS = {
    "settings": "kinds", "project": "kinds", "paths": "kinds", "inputs": "kinds", "runtime": "kinds", "make": "kinds",
    "SELECT_METRICS": "loop", "read_val_sets": "loop", "train_model": "loop", "validate": "loop",
    "validate_sets": "loop",
    "LOG_SCHEMA": "records", "NonFiniteLoss": "records", "write_log": "records",
    "lr_at": "schedule",
    "train_logistic": "logistic",
    "convert_released": "released",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
