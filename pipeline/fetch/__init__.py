"""The fetch stage (``download_*`` rules): datasets (:mod:`.datasets`: demo, a folder, Kaggle, another
entry's files), backbone weights (:mod:`.weights`) and face-alignment's weight files
(:mod:`.face_weights`) into ``resources/``, verified, and fetched again only when their source changed
or their files did (:mod:`.verify`)."""

from pipeline import lazy_exports

_EXPORTS = {
    "fetch_dataset": "datasets",
    "fetch_weights": "weights",
    "fetch_face_weights": "face_weights",
    "make_demo_dataset": "demo",
    "DownloadError": "archives", "CorruptArchive": "archives", "safe_extract": "archives",
    "kaggle_credentials_present": "credentials", "hub_token_present": "credentials",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
