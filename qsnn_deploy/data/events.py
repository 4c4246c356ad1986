"""Event-camera data: file readers, event -> frame integration, DVS128 Gesture, synthetic gestures.

Events are numpy structured arrays with the fields (the layout tonic's transforms consume)::

    x  int16   column, 0 .. width-1
    y  int16   row, 0 .. height-1
    t  int64   timestamp in microseconds (the file's own clock; not re-based to 0)
    p  int8    polarity, 0 (OFF, darker) or 1 (ON, brighter)

(:data:`EVENT_DTYPE`). A sensor size is always ``(width, height)`` in pixels.

Frames are event *counts*: ``frames[k, p, r, c]`` is the number of events of polarity ``p`` that
fell into time bin ``k`` and, after spatial downsampling, into pixel row ``r``, column ``c`` --
non-negative integers clipped to ``max_count`` so that they fit the integer network's
``input_bits`` (255 for 8-bit input). See :func:`events_to_frames`.

Readers (:func:`read_events`, chosen by the file suffix; in :mod:`.event_files`, re-exported here):

* ``.bin`` -- N-MNIST / N-Caltech101 5-byte records (``tonic.io.read_mnist_file``; a pure-numpy
  decoder, :func:`decode_nmnist`, gives the same result), 34 x 34 sensor;
* ``.aedat4`` -- iniVation AEDAT 4.0 (the ``aedat`` package, as ``tonic.io.read_aedat4`` uses it;
  the sensor size comes from the file's event-stream description);
* ``.dat`` -- Prophesee DAT (e.g. N-CARS; decoded here in numpy, see :func:`read_prophesee_dat`).

Every problem with a file raises :class:`~qsnn_deploy.data.idx.DatasetError` naming the file.
Nothing here downloads anything: :class:`DVSGesture` reads a local copy only.

tonic is imported lazily (only when a reader or :func:`events_to_frames` needs it): importing it
costs about 0.3 s on top of torch.
"""
from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch.utils.data

from .idx import DatasetError

from .event_files import (DVS128_SENSOR_SIZE, EVENT_DTYPE, EVENT_FORMATS, NMNIST_SENSOR_SIZE, _INT16_MAX,
                          _make_events, _tonic, decode_nmnist, read_events, read_prophesee_dat)

#: The 11 DVS128 Gesture classes, in label order (as tonic lists them).
GESTURE_CLASSES = (
    "Hand clapping", "Right hand wave", "Left hand wave", "Right arm cw", "Right arm ccw", "Left arm cw",
    "Left arm ccw", "Arm roll", "Air drums", "Air guitar", "Other gestures",
)
NUM_GESTURE_CLASSES = len(GESTURE_CLASSES)


# ----------------------------------------------------------------------------- frames
def _check_size(name: str, size) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be (width, height), got {size!r}") from None
    if not (0 < w <= _INT16_MAX and 0 < h <= _INT16_MAX):
        raise ValueError(f"{name} must be positive and at most {_INT16_MAX}, got {size!r}")
    return w, h


def events_to_frames(events: np.ndarray, sensor_size: tuple[int, int], bin_us: int = 5000,
                     duration_us: int = 1_000_000, out_size: tuple[int, int] = (32, 32),
                     max_count: int = 255, t_start: int | None = None) -> np.ndarray:
    """Integrate events into per-bin, per-polarity, per-pixel event counts.

    Time: the window is ``[t_start, t_start + duration_us)`` in microseconds (``t_start``
    defaults to the earliest event); bin ``k`` holds the events with
    ``t_start + k*bin_us <= t < t_start + (k+1)*bin_us``; events outside the window are dropped.
    ``T = duration_us // bin_us`` (200 for the DVS128 Gesture setting: 5 ms bins, 1 s).

    Space: an event at sensor pixel (x, y) of a ``sensor_size = (W, H)`` sensor is counted at
    ``(x * W_out // W, y * H_out // H)`` with ``out_size = (W_out, H_out)`` (integer arithmetic,
    so every output pixel pools the same source pixels on any platform).

    The counting is done by ``tonic.transforms.ToFrame`` (``time_window=bin_us``, fixed start and
    end time) on the downsampled events, in chunks of at most 32767 events (tonic accumulates in
    int16) summed in int64; tonic's ``Downsample`` is not used because its float factor floors some
    coordinates one pixel low for sizes that are not powers of two (e.g. 44 -> 30).

    Args:
        events: structured array with fields x, y, t, p (p in {0, 1}); any order.
        sensor_size: (width, height) of the sensor; every event must lie on it.
        bin_us, duration_us: bin length and window length in microseconds;
            ``duration_us`` must be a multiple of ``bin_us``.
        out_size: (width, height) of the frames.
        max_count: counts are clipped to ``[0, max_count]`` (255 fits ``input_bits=8``).
        t_start: window start in microseconds (default: the earliest event's timestamp).

    Returns:
        ``[T, 2, H_out, W_out]`` event counts, uint8 when ``max_count <= 255`` (uint16 up to
        65535, else int32); channel 0 is polarity 0 (OFF), channel 1 polarity 1 (ON).

    Raises:
        ValueError: bad arguments, events off the sensor, or polarities other than 0/1.
    """
    names = getattr(getattr(events, "dtype", None), "names", None) or ()
    missing = [f for f in ("x", "y", "t", "p") if f not in names]
    if missing:
        raise ValueError(f"events must be a structured array with fields x, y, t, p; missing {missing}")
    w, h = _check_size("sensor_size", sensor_size)
    wo, ho = _check_size("out_size", out_size)
    bin_us, duration_us, max_count = int(bin_us), int(duration_us), int(max_count)
    if bin_us <= 0 or duration_us <= 0 or duration_us % bin_us:
        raise ValueError(f"duration_us ({duration_us}) must be a positive multiple of bin_us ({bin_us})")
    if not 0 < max_count <= np.iinfo(np.int32).max:
        raise ValueError(f"max_count must be in [1, 2**31-1], got {max_count}")
    n_bins = duration_us // bin_us
    dtype = np.uint8 if max_count <= 0xFF else np.uint16 if max_count <= 0xFFFF else np.int32
    counts = np.zeros((n_bins, 2, ho, wo), dtype=np.int64)
    if len(events) == 0:
        return counts.astype(dtype)

    x = np.asarray(events["x"], dtype=np.int64)
    y = np.asarray(events["y"], dtype=np.int64)
    t = np.asarray(events["t"], dtype=np.int64)
    p = np.asarray(events["p"]).astype(np.int64)
    off = (x < 0) | (x >= w) | (y < 0) | (y >= h)
    if off.any():
        i = int(np.argmax(off))
        raise ValueError(f"event {i} at (x={x[i]}, y={y[i]}) lies outside the {w}x{h} sensor "
                         f"({int(off.sum())} such events)")
    if ((p != 0) & (p != 1)).any():
        raise ValueError(f"polarities must be 0 or 1, found {np.unique(p)[:8].tolist()}")
    t0 = int(t.min()) if t_start is None else int(t_start)
    rel = t - t0
    keep = (rel >= 0) & (rel < duration_us)
    if not keep.any():
        return counts.astype(dtype)
    rel, x, y, p = rel[keep], x[keep], y[keep], p[keep]
    if (np.diff(rel) < 0).any():  # ToFrame slices with searchsorted: time order needed
        order = np.argsort(rel, kind="stable")
        rel, x, y, p = rel[order], x[order], y[order], p[order]
    small = _make_events(x * wo // w, y * ho // h, rel, p)

    tonic = _tonic()
    to_frame = tonic.transforms.ToFrame(sensor_size=(wo, ho, 2), time_window=bin_us,
                                        start_time=0, end_time=duration_us)
    for s in range(0, len(small), _INT16_MAX):
        part = to_frame(small[s:s + _INT16_MAX])
        if part.shape != counts.shape:  # pragma: no cover - guards against a tonic behaviour change
            raise RuntimeError(f"tonic ToFrame returned {part.shape}, expected {counts.shape}")
        counts += part
    np.minimum(counts, max_count, out=counts)
    return counts.astype(dtype)


# ----------------------------------------------------------------------------- DVS128 Gesture
_DVSGESTURE_SPLITS = {True: "ibmGestureTrain", False: "ibmGestureTest"}
_DVSGESTURE_LAYOUT = """expected tonic's preprocessed DVS128 Gesture release, extracted (nothing is downloaded):
    <root>/DVSGesture/ibmGestureTrain/user01_fluorescent/0.npy ... 10.npy
    <root>/DVSGesture/ibmGestureTest/user24_fluorescent/0.npy ...
  (or the same split folders directly in <root>); each <label>.npy is an [N, 4] array with columns
  x, y, p, t (t in milliseconds), as in ibmGestureTrain.tar.gz / ibmGestureTest.tar.gz that
  tonic.datasets.DVSGesture downloads. The original IBM release (DvsGesture.tar.gz: AEDAT 3.1 +
  label CSVs) is not read directly."""


def _find_split_dir(root: Path, folder: str) -> Path | None:
    for base in (root / "DVSGesture", root):
        d = base / folder
        if d.is_dir() and next(d.rglob("*.npy"), None) is not None:
            return base
    return None


def _tonic_dvsgesture_class():
    """A tonic DVSGesture that reads an already-resolved local folder and can never download."""
    tonic = _tonic()
    import tonic.datasets  # noqa: F401

    class _LocalDVSGesture(tonic.datasets.DVSGesture):
        def __init__(self, location: Path, train: bool):
            self._location = str(location)
            super().__init__(save_to=str(location), train=train)

        @property
        def location_on_system(self) -> str:  # tonic would append the class name to save_to
            return self._location

        @location_on_system.setter
        def location_on_system(self, value) -> None:
            pass

        def _check_exists(self) -> bool:  # tonic also wants the .tar.gz and >= 100 files
            return next(Path(self._location, self.folder_name).rglob("*.npy"), None) is not None

        def download(self) -> None:
            raise DatasetError(f"{self._location}: DVS128 Gesture not found and downloads are disabled\n"
                               + _DVSGESTURE_LAYOUT)

    return _LocalDVSGesture


class DVSGesture(torch.utils.data.Dataset):
    """DVS128 Gesture (11 classes, 128 x 128 sensor) from a local folder, read through tonic.

    Each item is ``(frames, label)``: ``frames`` the uint8 event counts ``[T, 2, H, W]`` of
    :func:`events_to_frames` (default: 5 ms bins over the first 1 s after the recording's first
    event, plus ``offset_us``, downsampled to 32 x 32: ``[200, 2, 32, 32]``), ``label`` an int in
    0..10 (:data:`GESTURE_CLASSES`). Recordings are listed in sorted path order.

    Args:
        root: folder holding ``DVSGesture/ibmGestureTrain`` / ``ibmGestureTest`` (tonic's
            ``save_to``), or the split folders themselves.
        train: training (True) or test (False) split.
        bin_us, duration_us, out_size, max_count: see :func:`events_to_frames`.
        offset_us: start of the window after the first event, in microseconds.

    Raises:
        DatasetError: the folder or split is missing or malformed (the message shows the expected
            layout); tonic's download is disabled, so nothing is ever fetched.
    """

    sensor_size = DVS128_SENSOR_SIZE
    classes = GESTURE_CLASSES

    def __init__(self, root: str | os.PathLike, train: bool = True, bin_us: int = 5000,
                 duration_us: int = 1_000_000, out_size: tuple[int, int] = (32, 32), max_count: int = 255,
                 offset_us: int = 0):
        self.root = Path(root)
        self.train = bool(train)
        folder = _DVSGESTURE_SPLITS[self.train]
        base = _find_split_dir(self.root, folder)
        if base is None:
            raise DatasetError(f"{self.root}: no DVS128 Gesture {'train' if self.train else 'test'} split "
                               f"({folder}/ with .npy files) found\n" + _DVSGESTURE_LAYOUT)
        try:
            ds = _tonic_dvsgesture_class()(base, self.train)
        except DatasetError:
            raise
        except Exception as e:  # e.g. tonic parsing "user01_fluorescent" folder names
            raise DatasetError(f"{base / folder}: unexpected DVS128 Gesture layout ({type(e).__name__}: {e})\n"
                               + _DVSGESTURE_LAYOUT) from e
        order = sorted(range(len(ds.data)), key=lambda i: ds.data[i])  # os.walk order is not sorted
        for name in ("data", "targets", "users", "lighting"):
            setattr(ds, name, [getattr(ds, name)[i] for i in order])
        bad = [f for f, y in zip(ds.data, ds.targets) if not 0 <= y < NUM_GESTURE_CLASSES]
        if bad:
            raise DatasetError(f"{bad[0]}: label outside 0..{NUM_GESTURE_CLASSES - 1} ({len(bad)} files)")
        self._ds = ds
        self.files: list[str] = list(ds.data)
        self.targets: list[int] = [int(y) for y in ds.targets]
        self.users: list[int] = list(ds.users)
        self.lighting: list[str] = list(ds.lighting)
        self.frame_args = dict(bin_us=bin_us, duration_us=duration_us, out_size=out_size, max_count=max_count)
        self.offset_us = int(offset_us)

    def __len__(self) -> int:
        return len(self.files)

    def events(self, index: int) -> tuple[np.ndarray, int]:
        """The raw events of recording ``index`` (tonic's dtype: x, y, p, t in microseconds) and its label."""
        try:
            ev, label = self._ds[index]
        except Exception as e:
            raise DatasetError(f"{self.files[index]}: cannot read DVS128 Gesture recording "
                               f"({type(e).__name__}: {e})") from e
        return ev, int(label)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        ev, label = self.events(index)
        t_start = int(ev["t"].min()) + self.offset_us if len(ev) else None
        try:
            frames = events_to_frames(ev, self.sensor_size, t_start=t_start, **self.frame_args)
        except ValueError as e:
            raise DatasetError(f"{self.files[index]}: {e}") from e
        return frames, label


# ----------------------------------------------------------------------------- synthetic gestures
def synthetic_gesture_stream(label: int, n_events: int, seed: int | Sequence[int],
                             sensor_size: tuple[int, int] = DVS128_SENSOR_SIZE,
                             duration_us: int = 1_000_000) -> np.ndarray:
    """A deterministic synthetic gesture: a Gaussian blob of events crossing the sensor.

    The blob moves through the sensor centre along the direction at angle ``2*pi*label/11``
    (from ``centre - R*d`` to ``centre + R*d``, ``R = 0.3 * min(W, H)``) during ``duration_us``;
    events on its leading half are ON (p=1), on its trailing half OFF (p=0); 10% of the events are
    uniform background noise with random polarity. Same (label, n_events, seed, sizes) -> same
    stream.

    Args:
        label: class 0..10.
        n_events: number of events.
        seed: int or sequence of ints (``numpy.random.default_rng`` seed).
        sensor_size: (width, height).
        duration_us: stream length in microseconds; timestamps lie in ``[0, duration_us)``.

    Returns:
        :data:`EVENT_DTYPE` events sorted by time.
    """
    if not 0 <= int(label) < NUM_GESTURE_CLASSES:
        raise ValueError(f"label must be in 0..{NUM_GESTURE_CLASSES - 1}, got {label}")
    if int(n_events) < 0 or int(duration_us) <= 0:
        raise ValueError(f"n_events must be >= 0 and duration_us > 0, got {n_events}, {duration_us}")
    w, h = _check_size("sensor_size", sensor_size)
    n, duration_us = int(n_events), int(duration_us)
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, duration_us, size=n))
    angle = 2.0 * math.pi * int(label) / NUM_GESTURE_CLASSES
    d = np.array([math.cos(angle), math.sin(angle)])
    radius, sigma = 0.3 * min(w, h), max(0.06 * min(w, h), 0.5)
    centre = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
    pos = centre + ((t / duration_us) - 0.5)[:, None] * (2.0 * radius) * d
    offset = rng.normal(0.0, sigma, size=(n, 2))
    xy = pos + offset
    p = (offset @ d > 0).astype(np.int8)
    noise = rng.random(n) < 0.1
    k = int(noise.sum())
    xy[noise] = rng.uniform(0, 1, size=(k, 2)) * (w, h)
    p[noise] = rng.integers(0, 2, size=k)
    x = np.clip(np.floor(xy[:, 0]), 0, w - 1).astype(np.int64)
    y = np.clip(np.floor(xy[:, 1]), 0, h - 1).astype(np.int64)
    return _make_events(x, y, t, p)


class SyntheticGestures(torch.utils.data.Dataset):
    """``n`` deterministic synthetic gesture samples (11 classes) for smoke tests and training demos.

    Item ``i`` is ``(frames, label)`` like :class:`DVSGesture`: :func:`events_to_frames` of
    ``synthetic_gesture_stream(label, n_events, seed=(seed, i))`` on a 128 x 128 sensor (uint8
    counts ``[200, 2, 32, 32]`` by default). Labels are balanced (``i % 11``) and shuffled by
    ``seed``; everything is a pure function of (n, seed, arguments, i).
    """

    sensor_size = DVS128_SENSOR_SIZE
    classes = GESTURE_CLASSES

    def __init__(self, n: int, seed: int = 0, n_events: int = 2000, bin_us: int = 5000,
                 duration_us: int = 1_000_000, out_size: tuple[int, int] = (32, 32), max_count: int = 255):
        if int(n) < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        self.n, self.seed, self.n_events, self.duration_us = int(n), int(seed), int(n_events), int(duration_us)
        labels = np.arange(self.n) % NUM_GESTURE_CLASSES
        self.targets: list[int] = [int(v) for v in np.random.default_rng(self.seed).permutation(labels)]
        self.frame_args = dict(bin_us=bin_us, duration_us=duration_us, out_size=out_size, max_count=max_count)

    def __len__(self) -> int:
        return self.n

    def events(self, index: int) -> tuple[np.ndarray, int]:
        """The synthetic event stream of item ``index`` and its label."""
        if not -self.n <= index < self.n:
            raise IndexError(f"index {index} out of range for {self.n} samples")
        index %= self.n
        label = self.targets[index]
        ev = synthetic_gesture_stream(label, self.n_events, seed=(self.seed, index), sensor_size=self.sensor_size,
                                      duration_us=self.duration_us)
        return ev, label

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        ev, label = self.events(index)
        return events_to_frames(ev, self.sensor_size, t_start=0, **self.frame_args), label


__all__ = ["EVENT_DTYPE", "EVENT_FORMATS", "NMNIST_SENSOR_SIZE", "DVS128_SENSOR_SIZE", "GESTURE_CLASSES",
           "NUM_GESTURE_CLASSES", "decode_nmnist", "read_prophesee_dat", "read_events", "events_to_frames", "DVSGesture",
           "synthetic_gesture_stream", "SyntheticGestures"]
