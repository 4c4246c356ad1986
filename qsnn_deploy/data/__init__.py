"""Datasets: MNIST / Fashion-MNIST idx readers (see :mod:`qsnn_deploy.data.idx`) and event-camera
data (see :mod:`qsnn_deploy.data.events`: N-MNIST / AEDAT4 / Prophesee DAT readers, event -> frame
counts, DVS128 Gesture from a local folder, synthetic gestures).

The event names are imported lazily (on first access), so ``import qsnn_deploy.data`` stays as
cheap as the idx readers; tonic itself is imported only when an event reader or
:func:`~qsnn_deploy.data.events.events_to_frames` runs.
"""
from .idx import (DatasetError, default_data_dir, find_dataset, fit_to_input, load_fashion_mnist, load_idx_dataset,
                  load_mnist, read_idx, resolve_idx_dir)

_EVENT_NAMES = ("read_events", "decode_nmnist", "read_prophesee_dat", "events_to_frames", "DVSGesture",
                "SyntheticGestures", "synthetic_gesture_stream", "EVENT_DTYPE", "EVENT_FORMATS",
                "NMNIST_SENSOR_SIZE", "DVS128_SENSOR_SIZE", "GESTURE_CLASSES", "NUM_GESTURE_CLASSES")

__all__ = ["DatasetError", "read_idx", "load_mnist", "load_fashion_mnist", "find_dataset", "load_idx_dataset",
           "default_data_dir", "resolve_idx_dir", "fit_to_input", *_EVENT_NAMES]


def __getattr__(name: str):
    if name in _EVENT_NAMES:
        from . import events

        return getattr(events, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_EVENT_NAMES))
