"""Run tracking: console progress, JSONL, TensorBoard and MLflow behind one interface.

``build_tracker(run_dir, backends)`` returns a :class:`Tracker` that fans out to the chosen
backends on rank 0 and does nothing on other ranks. TensorBoard and MLflow are imported only
when their backend is built. :class:`ProgressBar` is the console display of the train loop.
"""

from audio_core.tracking.base import NullTracker, Tracker, TrackingError
from audio_core.tracking.factory import BACKENDS, build_tracker
from audio_core.tracking.fanout import FanOutTracker
from audio_core.tracking.jsonl import JsonlTracker
from audio_core.tracking.params import flatten_params
from audio_core.tracking.progress import ProgressBar

__all__ = [
    "BACKENDS",
    "FanOutTracker",
    "JsonlTracker",
    "NullTracker",
    "ProgressBar",
    "Tracker",
    "TrackingError",
    "build_tracker",
    "flatten_params",
]


def __getattr__(name: str):
    """Lazy access to the heavy backends: ``TensorBoardTracker``, ``MlflowTracker``."""
    if name == "TensorBoardTracker":
        from audio_core.tracking.tensorboard_backend import TensorBoardTracker

        return TensorBoardTracker
    if name == "MlflowTracker":
        from audio_core.tracking.mlflow_backend import MlflowTracker

        return MlflowTracker
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
