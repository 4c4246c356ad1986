"""Event-camera files -> event arrays: :func:`read_events` (chosen by the file suffix) and its three readers.

Events are numpy structured arrays (:data:`EVENT_DTYPE`): ``x``, ``y`` int16 pixel column and row,
``t`` int64 timestamp [µs] (the file's own clock), ``p`` int8 polarity 0/1. A sensor size is always
``(width, height)`` in pixels.

* ``.bin`` -- N-MNIST / N-Caltech101 5-byte records (``tonic.io.read_mnist_file``; a pure-numpy
  decoder, :func:`decode_nmnist`, gives the same result), 34 x 34 sensor;
* ``.aedat4`` -- iniVation AEDAT 4.0 (the ``aedat`` package, as ``tonic.io.read_aedat4`` uses it;
  the sensor size comes from the file's event-stream description);
* ``.dat`` -- Prophesee DAT (e.g. N-CARS; decoded here in numpy, see :func:`read_prophesee_dat`).

Every problem with a file raises :class:`~qsnn_deploy.data.idx.DatasetError` naming the file. Re-exported
by :mod:`qsnn_deploy.data.events` (frames and datasets).
"""
from __future__ import annotations

import io
import os
import re
from pathlib import Path

import numpy as np

from .idx import DatasetError

#: The structured dtype of every event array this module returns.
EVENT_DTYPE = np.dtype([("x", "<i2"), ("y", "<i2"), ("t", "<i8"), ("p", "i1")])
#: Sensor sizes (width, height).
NMNIST_SENSOR_SIZE = (34, 34)
DVS128_SENSOR_SIZE = (128, 128)
#: Suffix -> format name, for :func:`read_events`.
EVENT_FORMATS = {".bin": "N-MNIST", ".aedat4": "AEDAT4", ".dat": "Prophesee DAT"}

_NMNIST_RECORD = 5
_NMNIST_OVERFLOW_Y = 240          # a record with y == 240 marks a timestamp overflow, not an event
_NMNIST_OVERFLOW_US = 1 << 13     # ... which adds 2**13 us to every later timestamp (as tonic does)
_DAT_EVENT_TYPES = {0x00: "Event2D", 0x0C: "EventCD"}  # both 8 bytes: uint32 t, uint32 packed x|y|p
_INT16_MAX = np.iinfo(np.int16).max


def _tonic():
    try:
        import tonic  # noqa: F401  (slow-ish import: numba, scipy)
        import tonic.io
        import tonic.transforms
    except ImportError as e:  # pragma: no cover - tonic is a declared dependency of the events extra
        raise ImportError("event data needs tonic: pip install 'qsnn-deploy[events]' "
                          f"(with the constraints file) ({e})") from e
    return tonic


def _make_events(x, y, t, p) -> np.ndarray:
    ev = np.empty(len(t), dtype=EVENT_DTYPE)
    ev["x"], ev["y"], ev["t"], ev["p"] = x, y, t, p
    return ev


def _check_coordinates(ev: np.ndarray, size: tuple[int, int], path, what: str) -> None:
    if len(ev) == 0:
        return
    w, h = size
    bad = (ev["x"] < 0) | (ev["x"] >= w) | (ev["y"] < 0) | (ev["y"] >= h)
    if bad.any():
        i = int(np.argmax(bad))
        raise DatasetError(f"{path}: event {i} at (x={int(ev['x'][i])}, y={int(ev['y'][i])}) lies outside the "
                           f"{w}x{h} sensor ({int(bad.sum())} such events); not a valid {what} file?")


# ----------------------------------------------------------------------------- N-MNIST
def decode_nmnist(data: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
    """Decode N-MNIST ``.bin`` bytes (pure numpy; the reference for ``tonic.io.read_mnist_file``).

    Each event is 5 bytes ``b0..b4``: ``x = b0``, ``y = b1``, ``p = b2 >> 7``,
    ``t = ((b2 & 0x7F) << 16) | (b3 << 8) | b4`` microseconds. A record with ``y == 240`` is a
    timestamp-overflow marker (not an event): it adds 2**13 us to the timestamps of all later
    records (the convention of the original N-MNIST Matlab reader, which tonic follows).

    Raises:
        ValueError: the length is not a multiple of 5 bytes.
    """
    raw = np.frombuffer(bytes(data) if not isinstance(data, np.ndarray) else data.tobytes(), dtype=np.uint8)
    if raw.size % _NMNIST_RECORD:
        raise ValueError(f"{raw.size} bytes is not a whole number of {_NMNIST_RECORD}-byte records")
    rec = raw.reshape(-1, _NMNIST_RECORD).astype(np.int64)
    overflow = rec[:, 1] == _NMNIST_OVERFLOW_Y
    t = ((rec[:, 2] & 0x7F) << 16) | (rec[:, 3] << 8) | rec[:, 4]
    t = t + np.cumsum(overflow) * _NMNIST_OVERFLOW_US
    keep = ~overflow
    return _make_events(rec[keep, 0], rec[keep, 1], t[keep], rec[keep, 2] >> 7)


def _read_nmnist(path: Path) -> tuple[np.ndarray, tuple[int, int]]:
    data = path.read_bytes()
    if not data:
        raise DatasetError(f"{path}: empty file (an N-MNIST .bin file holds 5-byte event records)")
    if len(data) % _NMNIST_RECORD:
        raise DatasetError(f"{path}: truncated N-MNIST file: {len(data)} bytes is not a whole number of "
                           f"{_NMNIST_RECORD}-byte event records ({len(data) % _NMNIST_RECORD} bytes left over)")
    tonic = _tonic()
    ev = tonic.io.read_mnist_file(io.BytesIO(data), dtype=EVENT_DTYPE, is_stream=True)
    _check_coordinates(ev, NMNIST_SENSOR_SIZE, path, "N-MNIST")
    return ev, NMNIST_SENSOR_SIZE


# ----------------------------------------------------------------------------- AEDAT4
def _read_aedat4(path: Path) -> tuple[np.ndarray, tuple[int, int]]:
    try:
        import aedat
    except ImportError:
        raise DatasetError(f"{path}: reading AEDAT4 files needs the 'aedat' package "
                           "(pip install 'qsnn-deploy[events]' with the constraints file)") from None
    try:
        decoder = aedat.Decoder(str(path))
        streams = decoder.id_to_stream()
        ids = sorted(i for i, s in streams.items() if s.get("type") == "events")
        if not ids:
            raise DatasetError(f"{path}: the AEDAT4 file has no event stream (streams: "
                               f"{ {i: s.get('type') for i, s in streams.items()} })")
        sid = ids[0]  # the lowest-numbered event stream, as tonic.io.read_aedat4 picks it
        width, height = int(streams[sid]["width"]), int(streams[sid]["height"])
        packets = [packet["events"] for packet in decoder if packet["stream_id"] == sid]
    except DatasetError:
        raise
    except Exception as e:  # the Rust decoder raises RuntimeError("failed to fill whole buffer"), ...
        raise DatasetError(f"{path}: cannot decode AEDAT4 file ({type(e).__name__}: {e})") from e
    if width <= 0 or height <= 0 or width > _INT16_MAX or height > _INT16_MAX:
        raise DatasetError(f"{path}: implausible sensor size {width}x{height} in the AEDAT4 stream description")
    if packets:
        raw = np.concatenate(packets)
        names = raw.dtype.names
        p = raw["p"] if "p" in names else raw["on"]
        if raw["t"].size and int(raw["t"].max()) > np.iinfo(np.int64).max:
            raise DatasetError(f"{path}: timestamps beyond int64")
        ev = _make_events(raw["x"].astype(np.int64), raw["y"].astype(np.int64), raw["t"].astype(np.int64),
                          p.astype(np.int8))
    else:
        ev = np.empty(0, dtype=EVENT_DTYPE)
    _check_coordinates(ev, (width, height), path, "AEDAT4")
    return ev, (width, height)


# ----------------------------------------------------------------------------- Prophesee DAT
def read_prophesee_dat(path: str | os.PathLike) -> tuple[np.ndarray, tuple[int, int] | None]:
    """Decode a Prophesee ``.dat`` file (N-CARS, ATIS / Metavision CD events).

    Layout: ASCII header lines that start with ``%`` (e.g. ``% Version 2``, optionally
    ``% Width 640`` / ``% Height 480`` or ``% geometry 640x480``), then 1 byte event type
    (0x00 Event2D or 0x0C EventCD) and 1 byte event size (8), then 8-byte little-endian records:
    uint32 timestamp (us), uint32 packed ``x = bits 0-13, y = bits 14-27, p = bits 28-31``.

    Returns:
        (events, (width, height)) with the size from the header, or None when the header has none.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except OSError as e:
        raise DatasetError(f"{path}: cannot read ({e})") from e
    pos, header = 0, []
    while pos < len(data) and data[pos:pos + 1] == b"%":
        end = data.find(b"\n", pos)
        if end < 0:
            raise DatasetError(f"{path}: truncated Prophesee DAT header (no end of line after byte {pos})")
        header.append(data[pos + 1:end].decode("ascii", errors="replace").strip())
        pos = end + 1
    if not header:
        raise DatasetError(f"{path}: not a Prophesee DAT file (no '%' header lines at the start)")
    if len(data) - pos < 2:
        raise DatasetError(f"{path}: truncated Prophesee DAT file (no event type / size bytes after the header)")
    ev_type, ev_size = data[pos], data[pos + 1]
    pos += 2
    if ev_type not in _DAT_EVENT_TYPES:
        raise DatasetError(f"{path}: unsupported Prophesee DAT event type 0x{ev_type:02X} "
                           f"(supported: {', '.join(f'0x{k:02X} {v}' for k, v in _DAT_EVENT_TYPES.items())})")
    if ev_size != 8:
        raise DatasetError(f"{path}: Prophesee DAT event size {ev_size}, expected 8 bytes")
    body = len(data) - pos
    if body % 8:
        raise DatasetError(f"{path}: truncated Prophesee DAT file: {body} bytes of events is not a whole number "
                           f"of 8-byte records ({body % 8} bytes left over)")
    rec = np.frombuffer(data, dtype="<u4", offset=pos).reshape(-1, 2).astype(np.int64)
    packed = rec[:, 1]
    x, y, p = packed & 0x3FFF, (packed >> 14) & 0x3FFF, packed >> 28
    if (p > 1).any():
        i = int(np.argmax(p > 1))
        raise DatasetError(f"{path}: event {i} has polarity field {int(p[i])} (expected 0 or 1); malformed DAT data")
    size = None
    fields: dict[str, str] = {}
    for line in header:
        parts = line.split(None, 1)
        if len(parts) == 2:
            fields[parts[0].lower()] = parts[1].strip()
    try:
        if "width" in fields and "height" in fields:
            size = (int(fields["width"]), int(fields["height"]))
        elif "geometry" in fields:
            m = re.fullmatch(r"(\d+)\s*x\s*(\d+)", fields["geometry"])
            size = (int(m.group(1)), int(m.group(2))) if m else None
    except ValueError:
        raise DatasetError(f"{path}: unreadable sensor size in the DAT header: {fields}") from None
    return _make_events(x, y, rec[:, 0], p), size


def _read_dat(path: Path) -> tuple[np.ndarray, tuple[int, int]]:
    ev, size = read_prophesee_dat(path)
    if size is None:
        if len(ev) == 0:
            raise DatasetError(f"{path}: no events and no sensor size in the header")
        size = (int(ev["x"].max()) + 1, int(ev["y"].max()) + 1)
    _check_coordinates(ev, size, path, "Prophesee DAT")
    return ev, size


_READERS = {".bin": _read_nmnist, ".aedat4": _read_aedat4, ".dat": _read_dat}


def read_events(path: str | os.PathLike) -> tuple[np.ndarray, tuple[int, int]]:
    """Read an event-camera recording.

    The format follows the suffix: ``.bin`` N-MNIST, ``.aedat4`` iniVation AEDAT 4.0,
    ``.dat`` Prophesee DAT (N-CARS).

    Returns:
        ``(events, (width, height))``: events as :data:`EVENT_DTYPE` (x, y int16 pixels; t int64
        microseconds on the file's clock, in file order -- time order for these formats; p int8
        0/1); the sensor size is 34 x 34 for N-MNIST, the event stream's size for AEDAT4, and for
        DAT the header's size or, without one, (max x + 1, max y + 1) -- N-CARS samples are crops
        of at most 120 x 100 and carry no size, so pass ``(120, 100)`` to
        :func:`events_to_frames` for a fixed frame size.

    Raises:
        DatasetError: unknown suffix, missing, empty, truncated or malformed file, missing reader
            package; the message names the file and the problem.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    reader = _READERS.get(suffix)
    if reader is None:
        known = ", ".join(f"{s} ({n})" for s, n in EVENT_FORMATS.items())
        raise DatasetError(f"{path}: unknown event file suffix {path.suffix!r}; supported: {known}")
    if not path.is_file():
        raise DatasetError(f"{path}: file not found" if not path.exists() else f"{path}: not a file")
    return reader(path)
