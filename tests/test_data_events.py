"""Event-camera data: readers on the real samples in ../shared/data/events, malformed files,
event -> frame counts against an independent numpy count, DVS128 Gesture from a local folder
(never downloading), synthetic gestures."""
from __future__ import annotations

import socket
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from conftest import missing_data

from qsnn_deploy.data import (DVS128_SENSOR_SIZE, EVENT_DTYPE, DatasetError, DVSGesture, SyntheticGestures,
                              decode_nmnist, default_data_dir, events_to_frames, read_events,
                              synthetic_gesture_stream)

import tonic  # in the test extra (with aedat): CI must run these tests, not skip them
import tonic.io
import tonic.transforms

EVENTS = default_data_dir("events")
NMNIST, AEDAT4, NCARS = "sample_nmnist.bin", "sample.aedat4", "sample_ncars.dat"


def real(name: str) -> Path:
    path = EVENTS / name
    if not path.is_file():
        missing_data(f"real event sample {path} is absent")
    return path


def reference_frames(ev, sensor_size, bin_us=5000, duration_us=1_000_000, out_size=(32, 32), max_count=255,
                     t_start=None) -> np.ndarray:
    """Independent count: np.add.at over (bin, p, y, x) with integer downsampling, then clip."""
    (w, h), (wo, ho) = sensor_size, out_size
    t = ev["t"].astype(np.int64)
    t0 = int(t.min()) if t_start is None else t_start
    keep = (t >= t0) & (t < t0 + duration_us)
    out = np.zeros((duration_us // bin_us, 2, ho, wo), dtype=np.int64)
    np.add.at(out, ((t[keep] - t0) // bin_us, ev["p"][keep].astype(np.int64),
                    ev["y"][keep].astype(np.int64) * ho // h, ev["x"][keep].astype(np.int64) * wo // w), 1)
    return np.minimum(out, max_count)


def dat_header_end(data: bytes) -> int:
    """Offset of the event-type byte of a Prophesee DAT file (after its '%' header lines)."""
    pos = 0
    while data[pos:pos + 1] == b"%":
        pos = data.index(b"\n", pos) + 1
    return pos


def random_stream(rng, n, size, duration_us=1_200_000, sort=True) -> np.ndarray:
    ev = np.empty(n, dtype=EVENT_DTYPE)
    ev["x"], ev["y"] = rng.integers(0, size[0], n), rng.integers(0, size[1], n)
    ev["t"] = rng.integers(0, duration_us, n) + 17
    ev["p"] = rng.integers(0, 2, n)
    return np.sort(ev, order="t", kind="stable") if sort else ev


def no_network(monkeypatch):
    """Any attempt to reach the network (or tonic's downloader) fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args[:2]}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    import tonic.dataset
    import tonic.download_utils
    monkeypatch.setattr(tonic.download_utils, "download_and_extract_archive", refuse)
    monkeypatch.setattr(tonic.dataset, "download_and_extract_archive", refuse)


# ----------------------------------------------------------------------------- real recordings
def check_stream(ev, size):
    assert ev.dtype == EVENT_DTYPE
    assert ev["x"].min() >= 0 and ev["x"].max() < size[0]
    assert ev["y"].min() >= 0 and ev["y"].max() < size[1]
    assert np.all(np.diff(ev["t"]) >= 0), "timestamps must be non-decreasing"
    assert set(np.unique(ev["p"]).tolist()) == {0, 1}, "both polarities"


def test_nmnist_sample():
    ev, size = read_events(real(NMNIST))
    assert size == (34, 34) and len(ev) == 4325
    check_stream(ev, size)


def test_nmnist_tonic_reader_equals_numpy_decoder(tmp_path):
    path = real(NMNIST)
    ours = decode_nmnist(path.read_bytes())
    theirs = tonic.io.read_mnist_file(str(path), dtype=EVENT_DTYPE)
    read, _ = read_events(path)
    for f in "xytp":
        assert np.array_equal(ours[f], theirs[f]), f
        assert np.array_equal(read[f], ours[f]), f
    # a timestamp-overflow marker (y == 240) adds 2**13 us to later events, in both decoders
    recs = [(1, 2, 0x80 | 0x01, 0x02, 0x03), (0, 240, 0, 0, 0), (5, 6, 0x00, 0x00, 0x09)]
    f = tmp_path / "ovf.bin"
    f.write_bytes(bytes(b for r in recs for b in r))
    ours = decode_nmnist(f.read_bytes())
    theirs = tonic.io.read_mnist_file(str(f), dtype=EVENT_DTYPE)
    assert ours.tolist() == [(1, 2, 0x010203, 1), (5, 6, 9 + 8192, 0)]
    assert ours.tolist() == theirs.tolist() == read_events(f)[0].tolist()


def test_aedat4_sample():
    path = real(AEDAT4)
    ev, size = read_events(path)
    assert size == (320, 240)
    check_stream(ev, size)
    span_s = (int(ev["t"][-1]) - int(ev["t"][0])) / 1e6
    assert 0.58 < span_s < 0.60, span_s
    theirs = tonic.io.read_aedat4(str(path))
    assert len(theirs) == len(ev) > 100_000
    assert np.array_equal(ev["t"], theirs["t"].astype(np.int64))
    assert np.array_equal(ev["x"], theirs["x"]) and np.array_equal(ev["y"], theirs["y"])
    assert np.array_equal(ev["p"], theirs["p"].astype(np.int8))


def test_ncars_sample():
    path = real(NCARS)
    ev, size = read_events(path)
    data = path.read_bytes()
    body = len(data) - dat_header_end(data) - 2  # 1 byte event type, 1 byte event size
    assert len(ev) == body // 8 == 2009
    check_stream(ev, size)
    assert size == (int(ev["x"].max()) + 1, int(ev["y"].max()) + 1)  # no size in the N-CARS header
    assert size[0] <= 120 and size[1] <= 100  # N-CARS samples are crops of at most 120 x 100
    assert ev["t"][0] >= 0 and ev["t"][-1] < 100_000  # N-CARS samples last 100 ms
    import expelliarmus  # a dependency of tonic: an independent Prophesee DAT decoder

    theirs = expelliarmus.Wizard(encoding="dat").read(str(path))
    for f in "xytp":
        assert np.array_equal(ev[f], theirs[f].astype(ev[f].dtype)), f


def test_real_samples_to_frames():
    for name in (NMNIST, AEDAT4, NCARS):
        ev, size = read_events(real(name))
        frames = events_to_frames(ev, size)
        assert frames.shape == (200, 2, 32, 32) and frames.dtype == np.uint8
        assert np.array_equal(frames, reference_frames(ev, size)), name
    ev, size = read_events(real(NMNIST))  # 0.31 s of events: all of them land in the 1 s window
    assert int(events_to_frames(ev, size).sum()) == len(ev)


# ----------------------------------------------------------------------------- malformed files
def expect_error(path, *words):
    with pytest.raises(DatasetError) as info:
        read_events(path)
    msg = str(info.value)
    assert str(path) in msg, msg
    for w in words:
        assert w in msg, msg


def test_unknown_suffix_and_missing_file(tmp_path):
    f = tmp_path / "events.csv"
    f.write_text("x,y,t,p\n")
    expect_error(f, "unknown event file suffix", ".aedat4")
    expect_error(tmp_path / "nothing.bin", "not found")
    expect_error(tmp_path / "nothing.aedat4", "not found")


def test_truncated_or_malformed_nmnist(tmp_path):
    data = real(NMNIST).read_bytes()
    f = tmp_path / "cut.bin"
    f.write_bytes(data[:-3])
    expect_error(f, "truncated", "5-byte")
    f.write_bytes(b"")
    expect_error(f, "empty")
    f.write_bytes(bytes([200, 3, 0, 0, 1]) * 4)  # x = 200 on a 34 x 34 sensor
    expect_error(f, "outside the 34x34 sensor")


def test_truncated_or_malformed_aedat4(tmp_path):
    data = real(AEDAT4).read_bytes()
    f = tmp_path / "cut.aedat4"
    for cut in (5000, len(data) // 2):
        f.write_bytes(data[:cut])
        expect_error(f, "AEDAT4")
    f.write_bytes(b"this is not an aedat file at all")
    expect_error(f, "AEDAT4")


def test_truncated_or_malformed_dat(tmp_path):
    data = real(NCARS).read_bytes()
    start = dat_header_end(data)  # event type byte
    f = tmp_path / "cut.dat"
    f.write_bytes(data[:-3])
    expect_error(f, "truncated", "8-byte")
    f.write_bytes(data[:start + 1])
    expect_error(f, "truncated")
    f.write_bytes(data[start:])
    expect_error(f, "no '%' header")
    f.write_bytes(data[:start] + bytes([0x42, 8]) + data[start + 2:])
    expect_error(f, "event type 0x42")
    f.write_bytes(data[:start] + bytes([0x00, 12]) + data[start + 2:])
    expect_error(f, "event size 12")
    bad = bytearray(data)
    bad[start + 2 + 7] = 0x70  # polarity nibble 7 in the first record
    f.write_bytes(bytes(bad))
    expect_error(f, "polarity")


def test_dat_header_size(tmp_path):
    recs = np.array([[10, 5 | (7 << 14) | (1 << 28)], [20, 639 | (479 << 14)]], dtype="<u4")
    f = tmp_path / "gen4.dat"
    f.write_bytes(b"% Date 2020-01-01\n% Width 640\n% Height 480\n" + bytes([0x0C, 8]) + recs.tobytes())
    ev, size = read_events(f)
    assert size == (640, 480) and ev.tolist() == [(5, 7, 10, 1), (639, 479, 20, 0)]
    f.write_bytes(b"% Width 64\n% Height 48\n" + bytes([0x0C, 8]) + recs.tobytes())
    expect_error(f, "outside the 64x48 sensor")


# ----------------------------------------------------------------------------- frames
@pytest.mark.parametrize("sensor, out", [((128, 128), (32, 32)), ((34, 34), (32, 32)), ((320, 240), (32, 32)),
                                         ((44, 30), (30, 20))])
def test_frames_equal_independent_count(sensor, out):
    rng = np.random.default_rng(sensor[0])
    for sort in (True, False):
        ev = random_stream(rng, 30_000, sensor, sort=sort)
        frames = events_to_frames(ev, sensor, out_size=out)
        assert frames.shape == (200, 2, out[1], out[0]) and frames.dtype == np.uint8
        assert np.array_equal(frames, reference_frames(ev, sensor, out_size=out))
        t0 = int(ev["t"].min()) + 123_457  # an explicit window start; earlier events are dropped
        frames = events_to_frames(ev, sensor, out_size=out, bin_us=1000, duration_us=50_000, t_start=t0)
        assert frames.shape == (50, 2, out[1], out[0])
        assert np.array_equal(frames, reference_frames(ev, sensor, 1000, 50_000, out, t_start=t0))


def test_synthetic_gestures_to_frames_exact():
    for label in range(11):
        ev = synthetic_gesture_stream(label, 5000, seed=label)
        ref = reference_frames(ev, DVS128_SENSOR_SIZE)
        assert np.array_equal(events_to_frames(ev, DVS128_SENSOR_SIZE), ref)
        assert int(ref.sum()) == 5000


def test_frames_match_tonic_where_tonic_is_exact():
    ev = synthetic_gesture_stream(3, 20_000, seed=1)
    small = tonic.transforms.Downsample(sensor_size=(128, 128, 2), target_size=(32, 32))(ev)  # exact for 128->32
    theirs = tonic.transforms.ToFrame(sensor_size=(32, 32, 2), time_window=5000, start_time=0,
                                      end_time=1_000_000)(small)
    assert np.array_equal(events_to_frames(ev, (128, 128), t_start=0), theirs)


def test_counts_clipped_and_no_int16_wrap():
    n = 40_000  # more events in one (bin, polarity, pixel) than tonic's int16 frames hold
    ev = np.zeros(n, dtype=EVENT_DTYPE)
    ev["x"], ev["y"], ev["t"], ev["p"] = 7, 9, np.arange(n) % 4000, 1
    ev = np.concatenate([ev, np.array([(0, 0, 6000, 0)] * 3, dtype=EVENT_DTYPE)])
    frames = events_to_frames(ev, (128, 128))
    assert frames.dtype == np.uint8 and frames[0, 1, 2, 1] == 255 and frames[1, 0, 0, 0] == 3
    assert int(frames.sum()) == 258
    assert events_to_frames(ev, (128, 128), max_count=2)[1, 0, 0, 0] == 2
    wide = events_to_frames(ev, (128, 128), max_count=65535)
    assert wide.dtype == np.uint16 and wide[0, 1, 2, 1] == n
    assert np.array_equal(wide, reference_frames(ev, (128, 128), max_count=65535))


def test_frames_edge_cases():
    empty = np.empty(0, dtype=EVENT_DTYPE)
    assert np.array_equal(events_to_frames(empty, (128, 128)), np.zeros((200, 2, 32, 32), np.uint8))
    ev = synthetic_gesture_stream(0, 100, seed=0)
    assert events_to_frames(ev, (128, 128), t_start=10**7).sum() == 0  # window after all events
    with pytest.raises(ValueError, match="multiple of bin_us"):
        events_to_frames(ev, (128, 128), bin_us=3000)
    with pytest.raises(ValueError, match="outside the 64x64 sensor"):
        events_to_frames(ev, (64, 64))
    bad = ev.copy()
    bad["p"][0] = 2
    with pytest.raises(ValueError, match="polarities"):
        events_to_frames(bad, (128, 128))
    with pytest.raises(ValueError, match="fields"):
        events_to_frames(np.zeros((5, 4)), (128, 128))


# ----------------------------------------------------------------------------- DVS128 Gesture
def test_dvsgesture_missing_never_downloads(tmp_path, monkeypatch):
    no_network(monkeypatch)
    for train in (True, False):
        with pytest.raises(DatasetError) as info:
            DVSGesture(tmp_path, train=train)
        msg = str(info.value)
        assert str(tmp_path) in msg and "ibmGestureTrain/user01_fluorescent/0.npy" in msg, msg
        assert "nothing is downloaded" in msg
    assert list(tmp_path.iterdir()) == []  # nothing created either
    with pytest.raises(DatasetError):
        DVSGesture(tmp_path / "does-not-exist")


def test_dvsgesture_local_folder(tmp_path, monkeypatch):
    """tonic's preprocessed layout: [N, 4] int arrays (x, y, p, t in ms) named <label>.npy."""
    no_network(monkeypatch)
    streams = {}
    for user, light in (("user02", "led"), ("user01", "fluorescent")):
        for label in (4, 0, 10):
            ev = synthetic_gesture_stream(label, 3000, seed=(int(user[4:]), label), duration_us=1_500_000)
            ev["t"] = ev["t"] // 1000 * 1000 + 250_000  # ms precision, as in tonic's release
            d = tmp_path / "DVSGesture" / "ibmGestureTrain" / f"{user}_{light}"
            d.mkdir(parents=True, exist_ok=True)
            np.save(d / f"{label}.npy", np.stack([ev["x"], ev["y"], ev["p"], ev["t"] // 1000], axis=1).astype(np.int64))
            streams[(int(user[4:]), label)] = ev
    ds = DVSGesture(tmp_path, train=True)
    assert len(ds) == 6
    assert [(u, y) for u, y in zip(ds.users, ds.targets)] == [(1, 0), (1, 10), (1, 4), (2, 0), (2, 10), (2, 4)]
    for i in range(len(ds)):
        frames, label = ds[i]
        assert frames.shape == (200, 2, 32, 32) and frames.dtype == np.uint8 and label == ds.targets[i]
        ev = streams[(ds.users[i], label)]
        assert np.array_equal(frames, reference_frames(ev, (128, 128)))
    later = DVSGesture(tmp_path / "DVSGesture", train=True, offset_us=300_000)  # split folders directly in root
    ev = streams[(later.users[0], later.targets[0])]
    assert np.array_equal(later[0][0], reference_frames(ev, (128, 128), t_start=int(ev["t"].min()) + 300_000))
    with pytest.raises(DatasetError, match="ibmGestureTest"):
        DVSGesture(tmp_path, train=False)


# ----------------------------------------------------------------------------- synthetic gestures
def test_synthetic_stream_deterministic_and_valid():
    a = synthetic_gesture_stream(5, 4000, seed=7)
    assert a.dtype == EVENT_DTYPE and len(a) == 4000
    assert np.array_equal(a, synthetic_gesture_stream(5, 4000, seed=7))
    assert not np.array_equal(a, synthetic_gesture_stream(5, 4000, seed=8))
    assert not np.array_equal(a, synthetic_gesture_stream(6, 4000, seed=7))
    check_stream(a, (128, 128))
    assert a["t"].min() >= 0 and a["t"].max() < 1_000_000
    # the blob moves along the label's direction: the mean position drifts that way
    for label in (0, 3, 8):
        ev = synthetic_gesture_stream(label, 6000, seed=1)
        first, last = ev[:2000], ev[-2000:]
        drift = np.array([last["x"].mean() - first["x"].mean(), last["y"].mean() - first["y"].mean()])
        ang = 2 * np.pi * label / 11
        assert drift @ np.array([np.cos(ang), np.sin(ang)]) > 0.8 * np.linalg.norm(drift) > 0
    with pytest.raises(ValueError):
        synthetic_gesture_stream(11, 10, seed=0)


def test_synthetic_dataset_deterministic():
    a, b, c = SyntheticGestures(22, seed=3), SyntheticGestures(22, seed=3), SyntheticGestures(22, seed=4)
    assert a.targets == b.targets and sorted(a.targets) == sorted(list(range(11)) * 2)
    assert a.targets != c.targets
    for i in (0, 5, 21):
        (fa, ya), (fb, yb) = a[i], b[i]
        assert fa.shape == (200, 2, 32, 32) and fa.dtype == np.uint8 and ya == yb == a.targets[i]
        assert np.array_equal(fa, fb)
        assert int(fa.sum()) == a.n_events
    assert not np.array_equal(a[0][0], c[0][0])
    import torch

    x, y = next(iter(torch.utils.data.DataLoader(a, batch_size=4)))
    assert x.shape == (4, 200, 2, 32, 32) and x.dtype == torch.uint8 and y.tolist() == a.targets[:4]
