"""Event data (issue 19): the SHD/SSC, N-MNIST, DVS128 Gesture (AEDAT 3.1 + labels csv) and event-.npz readers
(braincore.data.events), binning and augmentations (braincore.data.event_tensors) and the saccade converter
(braincore.data.saccade_events). Every file here is written byte by byte in its published format."""
import pickle
import struct
import sys

import numpy as np
import pytest
import torch

from braincore.data.event_tensors import (
    EventCollate,
    bin_events,
    channel_shift,
    collate_events,
    downsample_events,
    drop_events,
    random_time_stretch,
    time_jitter,
    time_stretch,
)
from braincore.data.events import (
    EVENT_DTYPE,
    DVSGestureDataset,
    EventFileError,
    EventNpzFolder,
    Events,
    NMNISTDataset,
    SHDDataset,
    cut_dvs_gesture,
    decode_nmnist,
    encode_nmnist,
    read_aedat31,
    read_dvs_gesture,
    read_dvs_gesture_labels,
    read_events_npz,
    read_nmnist_bin,
    write_events_npz,
    write_nmnist_bin,
    write_shd_h5,
)
from braincore.data.saccade_events import saccade_events, saccade_offsets, write_saccade_dataset
from braincore.errors import ConfigError

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


# ------------------------------------------------------------------------------------------------ the record


def test_events_record_converts_and_checks():
    ev = Events([1, 2.5], [3, 4], [0, 1], [1, 0], (5, 2, 2), label=np.int64(7))
    assert ev.t.dtype == np.float64 and ev.x.dtype == np.int32 and ev.p.dtype == np.int8
    assert len(ev) == 2 and ev.num_channels == 20 and ev.label == 7 and isinstance(ev.label, int)
    arr = ev.to_structured()
    assert arr.dtype == EVENT_DTYPE
    back = Events.from_structured(arr, (5, 2, 2), 7)
    assert np.array_equal(back.t, ev.t) and np.array_equal(back.y, ev.y)
    with pytest.raises(ValueError, match="differ in length"):
        Events([1, 2], [1], [1, 2], [0, 0])
    with pytest.raises(EventFileError, match="x outside 0..4"):
        Events([1], [5], [0], [0], (5, 2, 2)).check()


# ------------------------------------------------------------------------------------------------ SHD / SSC

SHD_TIMES = [np.array([0.0, 0.0125, 0.5], np.float32), np.array([0.25], np.float32), np.array([], np.float32)]
SHD_UNITS = [np.array([0, 699, 17], np.uint16), np.array([350], np.uint16), np.array([], np.uint16)]
SHD_LABELS = [3, 19, 0]


def _write_shd_raw(path, times=SHD_TIMES, units=SHD_UNITS, labels=SHD_LABELS, keys=True, skip=()):
    """The layout of Cramer et al. (2020)'s files, written with h5py directly."""
    h5py = pytest.importorskip("h5py")
    with h5py.File(path, "w") as f:
        g = f.create_group("spikes")
        if "times" not in skip:
            d = g.create_dataset("times", (len(times),), dtype=h5py.vlen_dtype(np.float32))
            for i, t in enumerate(times):
                d[i] = t
        if "units" not in skip:
            d = g.create_dataset("units", (len(units),), dtype=h5py.vlen_dtype(np.uint16))
            for i, u in enumerate(units):
                d[i] = u
        if "labels" not in skip:
            f.create_dataset("labels", data=np.asarray(labels, np.uint16))
        if keys:
            names = [f"english-{i}" for i in range(10)] + [f"german-{i}" for i in range(10)]
            f.create_group("extra").create_dataset("keys", data=np.array([n.encode() for n in names]))
    return path


def test_shd_reads_ragged_samples(tmp_path):
    path = _write_shd_raw(tmp_path / "shd_train.h5")
    with SHDDataset(path) as ds:
        assert len(ds) == 3 and ds.num_classes == 20
        assert ds.class_names is not None and ds.class_names[19] == "german-9"
        assert ds.sensor_size == (700, 1, 1)
        ev, label = ds[0]
        assert label == 3 and ev.label == 3 and ev.sensor_size == (700, 1, 1)
        assert np.allclose(ev.t, SHD_TIMES[0].astype(np.float64) * 1e6)
        assert ev.t[1] == pytest.approx(12500.0, abs=1e-3)  # 12.5 ms in µs
        assert ev.x.tolist() == [0, 699, 17] and ev.y.tolist() == [0, 0, 0] and ev.p.tolist() == [0, 0, 0]
        assert ds[-2][1] == 19 and ds[1][0].x.tolist() == [350]
        assert len(ds[2][0]) == 0
        with pytest.raises(IndexError):
            ds[3]
        clone = pickle.loads(pickle.dumps(ds))  # the open handle is dropped and reopened
        assert clone[1][0].t.tolist() == [250000.0]
        clone.close()
    assert [lab for _, lab in SHDDataset(path, n_units=700)] == SHD_LABELS


def test_shd_without_keys_and_writer(tmp_path):
    pytest.importorskip("h5py")
    ds = SHDDataset(write_shd_h5(tmp_path / "ssc.h5", SHD_TIMES, SHD_UNITS, SHD_LABELS))
    assert ds.class_names is None and ds.num_classes == 20  # max label + 1
    assert np.allclose(ds[0][0].t, SHD_TIMES[0] * 1e6)


@pytest.mark.parametrize("skip", ["times", "units", "labels"])
def test_shd_missing_dataset(tmp_path, skip):
    path = _write_shd_raw(tmp_path / "broken.h5", skip=(skip,))
    with pytest.raises(EventFileError) as err:
        SHDDataset(path)
    msg = str(err.value)
    assert str(path) in msg and "SHD/SSC HDF5" in msg and repr(("spikes/" if skip != "labels" else "") + skip) in msg


def test_shd_bad_files(tmp_path):
    pytest.importorskip("h5py")
    nm = tmp_path / "00001.bin"
    nm.write_bytes(bytes([1, 2, 0x80, 0, 5]))
    with pytest.raises(EventFileError, match="not readable as an SHD/SSC HDF5 file") as err:
        SHDDataset(nm)
    assert str(nm) in str(err.value) and "binary data" in str(err.value)
    with pytest.raises(EventFileError, match="no such file"):
        SHDDataset(tmp_path / "nope.h5")
    counts = _write_shd_raw(tmp_path / "counts.h5", labels=[1, 2])
    with pytest.raises(EventFileError, match="one entry per sample"):
        SHDDataset(counts)
    ragged = _write_shd_raw(tmp_path / "ragged.h5", units=[np.array([1, 2], np.uint16)] + SHD_UNITS[1:])
    with pytest.raises(EventFileError, match="sample 0 has 3 spike times but 2 units"):
        SHDDataset(ragged)[0]
    with pytest.raises(EventFileError, match="outside 0..99"):
        SHDDataset(_write_shd_raw(tmp_path / "ok.h5"), n_units=100)[0]


def test_shd_without_h5py_says_how_to_install(tmp_path, monkeypatch):
    path = tmp_path / "shd.h5"
    path.write_bytes(HDF5_MAGIC + bytes(64))
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(ImportError, match=r'pip install "braincore\[events\]"'):
        SHDDataset(path)


# ------------------------------------------------------------------------------------------------ N-MNIST

# (x, y, p, ts): 5-byte records, ts = ((b2 & 0x7F) << 16) | (b3 << 8) | b4
NMNIST_EVENTS = [(3, 7, 1, 0x012345), (33, 0, 0, 0), (0, 33, 1, 0x7FFFFF), (10, 20, 0, 300000)]


def _nmnist_bytes(events=NMNIST_EVENTS):
    out = bytearray()
    for x, y, p, ts in events:
        out += bytes([x, y, (p << 7) | (ts >> 16), (ts >> 8) & 0xFF, ts & 0xFF])
    return bytes(out)


def test_nmnist_decodes_records(tmp_path):
    raw = _nmnist_bytes()
    assert raw[:5] == bytes([3, 7, 0x81, 0x23, 0x45])
    path = tmp_path / "00007.bin"
    path.write_bytes(raw)
    ev = read_nmnist_bin(path, label=4)
    assert ev.sensor_size == (34, 34, 2) and ev.label == 4
    assert ev.x.tolist() == [3, 33, 0, 10] and ev.y.tolist() == [7, 0, 33, 20] and ev.p.tolist() == [1, 0, 1, 0]
    assert ev.t.tolist() == [0x012345, 0, 2**23 - 1, 300000]
    assert encode_nmnist(ev) == raw
    assert len(decode_nmnist(b"")) == 0
    write_nmnist_bin(tmp_path / "again.bin", ev)
    assert (tmp_path / "again.bin").read_bytes() == raw


def test_nmnist_bad_files(tmp_path):
    cut = tmp_path / "cut.bin"
    cut.write_bytes(_nmnist_bytes()[:-2])
    with pytest.raises(EventFileError) as err:
        read_nmnist_bin(cut)
    msg = str(err.value)
    assert str(cut) in msg and "not a multiple of 5" in msg and "N-MNIST .bin" in msg
    h5 = tmp_path / "shd_train.h5"
    h5.write_bytes(HDF5_MAGIC + bytes(92))  # 100 bytes: a multiple of 5, caught by its magic
    with pytest.raises(EventFileError, match="this is an HDF5 file, not an N-MNIST .bin") as err:
        read_nmnist_bin(h5)
    assert str(h5) in str(err.value)
    png = tmp_path / "digit.bin"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(7))
    with pytest.raises(EventFileError, match="a PNG image"):
        read_nmnist_bin(png)
    off = tmp_path / "off.bin"
    off.write_bytes(_nmnist_bytes([(40, 1, 0, 5)]))
    with pytest.raises(EventFileError, match="outside the 34x34 sensor"):
        read_nmnist_bin(off)
    assert read_nmnist_bin(off, sensor_size=(240, 180, 2)).x.tolist() == [40]
    with pytest.raises(EventFileError, match="no such file"):
        read_nmnist_bin(tmp_path / "missing.bin")
    with pytest.raises(EventFileError, match="is a folder"):
        read_nmnist_bin(tmp_path)


def test_nmnist_folder_layout(tmp_path):
    for split, digit, name, evs in [("Train", 0, "00002.bin", NMNIST_EVENTS[:1]), ("Train", 7, "00001.bin",
                                    NMNIST_EVENTS[1:3]), ("Train", 7, "00009.bin", []), ("Test", 3, "00001.bin",
                                                                                         NMNIST_EVENTS)]:
        d = tmp_path / split / str(digit)
        d.mkdir(parents=True, exist_ok=True)
        (d / name).write_bytes(_nmnist_bytes(evs))
    (tmp_path / "Train" / "README.txt").write_text("not a digit folder")
    ds = NMNISTDataset(tmp_path, "Train")
    assert len(ds) == 3 and ds.labels.tolist() == [0, 7, 7] and ds.num_classes == 8
    ev, label = ds[1]
    assert label == 7 and ev.label == 7 and ev.x.tolist() == [33, 0]
    assert len(ds[2][0]) == 0
    test = NMNISTDataset(tmp_path, "test")
    assert len(test) == 1 and test[0][1] == 3 and len(test[0][0]) == 4
    with pytest.raises(EventFileError, match="no Test/ folder"):
        NMNISTDataset(tmp_path / "Train", "Test")
    with pytest.raises(EventFileError, match="no such folder"):
        NMNISTDataset(tmp_path / "absent")
    (tmp_path / "Empty" / "Train").mkdir(parents=True)
    with pytest.raises(EventFileError, match="no <digit>/ folders"):
        NMNISTDataset(tmp_path / "Empty")


# ------------------------------------------------------------------------------------------------ DVS128 Gesture

AEDAT_HEADER = (b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n#Start-Time: 2017-01-01 00:00:00\r\n"
                b"#!END-HEADER\r\n")


def _packet(etype, events, *, size=8, tsoff=4, overflow=0, capacity=None, number=None):
    """One AEDAT 3.1 packet: 28-byte header + the events (uint32 data, int32 timestamp) for polarity."""
    body = b"".join(events)
    n = len(events)
    capacity = n if capacity is None else capacity
    number = n if number is None else number
    head = struct.pack("<hhiiiiii", etype, 1, size, tsoff, overflow, capacity, number, number)
    return head + body


def _pol(x, y, p, ts, valid=1):
    return struct.pack("<Ii", (x << 17) | (y << 2) | (p << 1) | valid, ts)


# (x, y, p, full t): the last two in a packet with eventTSOverflow = 1
GESTURE_EVENTS = [(5, 6, 1, 1000), (127, 0, 0, 1500), (0, 127, 1, 2000), (64, 32, 0, 2**31 + 10),
                  (1, 2, 1, 2**31 + 20)]


def _aedat_bytes():
    special = _packet(0, [struct.pack("<Ii", 0xDEADBEEF, 999), struct.pack("<Ii", 1, 1001)])
    first = _packet(1, [_pol(x, y, p, t) for x, y, p, t in GESTURE_EVENTS[:3]])
    imu = _packet(2, [bytes(range(36))], size=36)  # an IMU6 packet, skipped
    second = _packet(1, [_pol(x, y, p, t - 2**31) for x, y, p, t in GESTURE_EVENTS[3:]], overflow=1)
    return AEDAT_HEADER + special + first + imu + second


def test_aedat31_polarity_packets(tmp_path):
    path = tmp_path / "user01_fluorescent.aedat"
    path.write_bytes(_aedat_bytes())
    ev = read_aedat31(path)
    assert ev.sensor_size == (128, 128, 2)
    assert ev.x.tolist() == [e[0] for e in GESTURE_EVENTS] and ev.y.tolist() == [e[1] for e in GESTURE_EVENTS]
    assert ev.p.tolist() == [e[2] for e in GESTURE_EVENTS]
    assert ev.t.tolist() == [float(e[3]) for e in GESTURE_EVENTS]  # (overflow << 31) | timestamp
    # an invalid event (valid mark 0) is kept by default, dropped with valid_only
    path2 = tmp_path / "invalid.aedat"
    path2.write_bytes(AEDAT_HEADER + _packet(1, [_pol(1, 1, 1, 5), _pol(2, 2, 0, 6, valid=0)]))
    assert len(read_aedat31(path2)) == 2 and read_aedat31(path2, valid_only=True).x.tolist() == [1]
    # a header-only file has no events
    (tmp_path / "empty.aedat").write_bytes(AEDAT_HEADER)
    assert len(read_aedat31(tmp_path / "empty.aedat")) == 0


def test_dvs_gesture_labels_cut_recordings(tmp_path):
    path = tmp_path / "user01_fluorescent.aedat"
    path.write_bytes(_aedat_bytes())
    (tmp_path / "user01_fluorescent_labels.csv").write_text(
        "class,startTime_usec,endTime_usec\r\n1,1000,2000\r\n11,2000,2147483658\r\n4,2147483658,2147483700\r\n")
    table = read_dvs_gesture_labels(tmp_path / "user01_fluorescent_labels.csv")
    assert table.tolist() == [[1, 1000, 2000], [11, 2000, 2147483658], [4, 2147483658, 2147483700]]
    samples = read_dvs_gesture(path)
    assert [s.label for s in samples] == [0, 10, 3]
    assert [len(s) for s in samples] == [2, 1, 2]  # start <= t < end
    assert samples[0].t.tolist() == [0.0, 500.0]  # relative to startTime_usec
    assert samples[2].t.tolist() == [0.0, 10.0] and samples[2].x.tolist() == [64, 1]
    absolute = cut_dvs_gesture(read_aedat31(path), table, relative=False)
    assert absolute[1].t.tolist() == [2000.0]
    (tmp_path / "trials_to_train.txt").write_text("user01_fluorescent.aedat\n\n")
    ds = DVSGestureDataset(tmp_path, "train")
    assert len(ds) == 3 and ds.labels.tolist() == [0, 10, 3] and ds.num_classes == 11
    ev, label = ds[2]
    assert label == 3 and ev.x.tolist() == [64, 1]
    with pytest.raises(EventFileError, match="trials_to_test.txt"):
        DVSGestureDataset(tmp_path, "test")


@pytest.mark.parametrize("case,pattern", [
    ("aedat2", "AEDAT version 2.0 \\(jAER's big-endian AEDAT 2.0\\), not 3.1"),
    ("no_end", "no '#!END-HEADER' line"),
    ("binary_before_end", "the header ends .* before '#!END-HEADER'"),
    ("cut_header", "truncated packet header: packet 1 .* has 10 of 28 header bytes"),
    ("cut_payload", "truncated packet: packet 0 .* declares 3 events of 8 bytes"),
    ("pol_size", "eventSize 16 and eventTSOffset 12, not 8 and 4"),
    ("counts", "impossible header"),
    ("zip", "a zip archive"),
    ("offsensor", "x outside 0..127"),
])
def test_aedat31_bad_files(tmp_path, case, pattern):
    good = _packet(1, [_pol(1, 2, 1, 10), _pol(3, 4, 0, 20), _pol(5, 6, 1, 30)])
    data = {
        "aedat2": b"#!AER-DAT2.0\r\n# This is a raw AE data file\r\n" + bytes(16),
        "no_end": b"#!AER-DAT3.1\r\n#Format: RAW\r\n",
        "binary_before_end": b"#!AER-DAT3.1\r\n#Format: RAW\r\n" + good,
        "cut_header": AEDAT_HEADER + good + good[:10],
        "cut_payload": AEDAT_HEADER + good[:-3],
        "pol_size": AEDAT_HEADER + _packet(1, [bytes(16)], size=16, tsoff=12),
        "counts": AEDAT_HEADER + _packet(1, [_pol(1, 1, 1, 1)], number=2, capacity=1),
        "zip": b"PK\x03\x04" + bytes(60),
        "offsensor": AEDAT_HEADER + _packet(1, [_pol(200, 1, 1, 1)]),
    }[case]
    path = tmp_path / f"{case}.aedat"
    path.write_bytes(data)
    with pytest.raises(EventFileError, match=pattern) as err:
        read_aedat31(path)
    msg = str(err.value)
    assert str(path) in msg and ("AEDAT 3.1" in msg)


@pytest.mark.parametrize("text,pattern", [
    ("start,end\n1,2\n", "header 'start,end'"),
    ("class,startTime_usec,endTime_usec\n1,abc,5\n", "row 2 '1,abc,5' is not three integers"),
    ("class,startTime_usec,endTime_usec\n12,1,5\n", "class 12 outside 1..11"),
    ("class,startTime_usec,endTime_usec\n1,5,5\n", "endTime_usec 5 is not after"),
    ("", "an empty file"),
])
def test_dvs_gesture_bad_labels(tmp_path, text, pattern):
    path = tmp_path / "user02_led_labels.csv"
    path.write_text(text)
    with pytest.raises(EventFileError, match=pattern) as err:
        read_dvs_gesture_labels(path)
    assert str(path) in str(err.value)


# ------------------------------------------------------------------------------------------------ event .npz


def test_event_npz_round_trip_and_common_layout(tmp_path):
    ev = Events([10.0, 20.5, 30.0], [1, 2, 127], [0, 5, 127], [1, 0, 1], (128, 128, 2), label=6)
    back = read_events_npz(write_events_npz(tmp_path / "a.npz", ev))
    assert np.array_equal(back.t, ev.t) and np.array_equal(back.x, ev.x) and back.label == 6
    assert back.sensor_size == (128, 128, 2)
    # SpikingJelly's conversion: t, x, y, p only (integer µs), label from the folder
    d = tmp_path / "events_np" / "train" / "4"
    d.mkdir(parents=True)
    np.savez(d / "user01_fluorescent_0.npz", t=np.array([5, 6], np.int64), x=np.array([1, 2]), y=np.array([3, 4]),
             p=np.array([0, 1]))
    sj = read_events_npz(d / "user01_fluorescent_0.npz")
    assert sj.sensor_size == (128, 128, 2) and sj.label is None and sj.t.tolist() == [5.0, 6.0]
    folder = EventNpzFolder(tmp_path / "events_np" / "train")
    assert len(folder) == 1 and folder[0][1] == 4 and folder[0][0].y.tolist() == [3, 4]


def test_event_npz_bad_files(tmp_path):
    missing = tmp_path / "missing_p.npz"
    np.savez(missing, t=np.zeros(2), x=np.zeros(2), y=np.zeros(2))
    with pytest.raises(EventFileError, match="no array\\(s\\) 'p'") as err:
        read_events_npz(missing)
    assert str(missing) in str(err.value) and "event .npz" in str(err.value)
    unequal = tmp_path / "unequal.npz"
    np.savez(unequal, t=np.zeros(2), x=np.zeros(3), y=np.zeros(2), p=np.zeros(2))
    with pytest.raises(EventFileError, match="differ in length"):
        read_events_npz(unequal)
    objects = tmp_path / "objects.npz"
    np.savez(objects, t=np.array([[1.0]], dtype=object), x=np.zeros(1), y=np.zeros(1), p=np.zeros(1))
    with pytest.raises(EventFileError, match="pickled objects"):
        read_events_npz(objects)
    nm = tmp_path / "00001.npz"
    nm.write_bytes(_nmnist_bytes())
    with pytest.raises(EventFileError, match="not an .npz archive \\(it looks like binary data\\)"):
        read_events_npz(nm)
    cut = tmp_path / "cut.npz"
    cut.write_bytes(missing.read_bytes()[:60])
    with pytest.raises(EventFileError, match="not a readable .npz archive"):
        read_events_npz(cut)


# ------------------------------------------------------------------------------------------------ binning


def _small():
    # sensor W=3, H=2, P=2: channel = (p * 2 + y) * 3 + x
    return Events(t=[0, 999, 1000, 2500, 2500, 4999], x=[0, 0, 2, 1, 1, 2], y=[0, 0, 1, 0, 0, 1],
                  p=[0, 0, 1, 1, 1, 0], sensor_size=(3, 2, 2), label=2)


def test_bin_by_width_hand_counts():
    out = bin_events(_small(), bin_ms=1.0)
    assert out.shape == (5, 12) and out.dtype == np.float32
    expected = np.zeros((5, 12))
    expected[0, 0] = 2            # t 0, 999 at (x0, y0, p0)
    expected[1, (1 * 2 + 1) * 3 + 2] = 1  # t 1000 at (2, 1, 1)
    expected[2, (1 * 2 + 0) * 3 + 1] = 2  # t 2500 twice at (1, 0, 1)
    expected[4, (0 * 2 + 1) * 3 + 2] = 1  # t 4999 at (2, 1, 0)
    assert np.array_equal(out, expected)
    assert np.array_equal(bin_events(_small(), bin_ms=1.0, mode="binary"), np.minimum(expected, 1))
    fixed = bin_events(_small(), bin_ms=2.0, n_bins=2)  # [0, 2000), [2000, 4000); 4999 dropped
    assert fixed.shape == (2, 12) and fixed.sum() == 5 and fixed[0, 0] == 2 and fixed[1, 7] == 2
    assert bin_events(_small(), bin_ms=1.0, duration_us=3000).shape == (3, 12)
    late = bin_events(_small(), bin_ms=1.0, t_start_us=None, n_bins=1)
    assert late.sum() == 2


def test_bin_by_count_and_downsample():
    by_n = bin_events(_small(), n_bins=2)  # window [0, 4999] in two bins of 2499.5 µs
    assert by_n[0].sum() == 3 and by_n[1].sum() == 3 and by_n[1, 5] == 1  # 4999 lands in the last bin
    window = bin_events(_small(), n_bins=5, duration_us=5000)
    assert np.array_equal(window, bin_events(_small(), bin_ms=1.0))
    pooled = bin_events(_small(), bin_ms=5.0, downsample=2)  # 2x1 sensor x 2 polarities
    assert pooled.shape == (1, 4) and pooled[0].tolist() == [2, 1, 2, 1]
    shd = Events([0, 10, 20], [0, 1, 699], [0, 0, 0], [0, 0, 0], (700, 1, 1))
    assert downsample_events(shd, 10).sensor_size == (70, 1, 1)
    pooled = bin_events(shd, n_bins=1, downsample=10)
    assert pooled.shape == (1, 70) and pooled[0, 0] == 2 and pooled[0, 69] == 1
    with pytest.raises(ConfigError, match="n_bins .* or bin_ms"):
        bin_events(shd)
    with pytest.raises(ConfigError, match="x must lie in 0..2"):
        bin_events(Events([0], [3], [0], [0], (3, 2, 2)), n_bins=1)


def test_collate_time_major_with_padding():
    a = _small()
    b = Events([100.0], [1], [1], [0], (3, 2, 2))
    spikes, labels = collate_events([(a, 2), (b, 5)], bin_ms=1.0)
    assert spikes.shape == (5, 2, 12) and spikes.dtype == torch.float32
    assert labels.tolist() == [2, 5]
    assert torch.equal(spikes[:, 0], torch.from_numpy(bin_events(a, bin_ms=1.0)))
    assert spikes[0, 1, 4] == 1 and spikes[1:, 1].sum() == 0
    collate = pickle.loads(pickle.dumps(EventCollate(n_bins=4, mode="binary")))
    s, lab = collate([a, b.replace(label=1)])
    assert s.shape == (4, 2, 12) and lab.tolist() == [2, 1] and s.max() == 1
    with pytest.raises(ConfigError, match="mode"):
        EventCollate(n_bins=4, mode="rate")


# ------------------------------------------------------------------------------------------------ augmentations


def test_time_jitter_moments_and_determinism():
    n, sigma = 200_000, 50.0
    ev = Events(np.full(n, 1e6), np.zeros(n), np.zeros(n), np.zeros(n), (700, 1, 1))
    out = time_jitter(ev, sigma, np.random.default_rng(1))
    d = out.t - 1e6
    assert len(out) == n and np.all(np.diff(out.t) >= 0)
    assert abs(d.mean()) < 5 * sigma / np.sqrt(n)
    assert d.std() == pytest.approx(sigma, rel=0.01)
    again = time_jitter(ev, sigma, np.random.default_rng(1))
    assert np.array_equal(out.t, again.t)
    near_zero = Events(np.zeros(1000), np.zeros(1000), np.zeros(1000), np.zeros(1000), (700, 1, 1))
    kept = time_jitter(near_zero, 10.0, np.random.default_rng(2))
    assert 400 < len(kept) < 600 and kept.t.min() >= 0  # about half pushed below 0 and dropped


def test_channel_shift_drops_out_of_range():
    ev = Events(np.arange(700.0), np.arange(700), np.zeros(700), np.zeros(700), (700, 1, 1))
    seen = set()
    for seed in range(40):
        s = int(np.random.default_rng(seed).integers(-30, 31))
        out = channel_shift(ev, 30, np.random.default_rng(seed))
        seen.add(s)
        assert len(out) == 700 - abs(s)
        assert out.x.min() >= 0 and out.x.max() <= 699
        assert np.array_equal(out.x, out.t.astype(int) + s)  # t carries the original unit here
    assert min(seen) < 0 < max(seen) and all(-30 <= s <= 30 for s in seen)
    cam = Events([0, 1], [0, 0], [0, 33], [1, 1], (34, 34, 2))
    moved = channel_shift(cam, 0, np.random.default_rng(0), axis="y")
    assert moved.y.tolist() == [0, 33]


def test_drop_events_fraction_and_stretch():
    ev = Events(np.arange(1000.0), np.arange(1000) % 34, np.zeros(1000), np.zeros(1000))
    out = drop_events(ev, 0.25, np.random.default_rng(3))
    assert len(out) == 750 and np.all(np.diff(out.t) > 0) and np.isin(out.t, ev.t).all()
    assert len(drop_events(ev, 0.0, np.random.default_rng(3))) == 1000
    assert len(drop_events(ev, 1.0, np.random.default_rng(3))) == 0
    assert np.array_equal(time_stretch(ev, 1.5).t, ev.t * 1.5)
    r = random_time_stretch(ev, np.random.default_rng(4), 0.9, 1.1)
    factor = r.t[1] / ev.t[1]
    assert 0.9 <= factor < 1.1 and np.allclose(r.t, ev.t * factor)
    with pytest.raises(ConfigError):
        drop_events(ev, 1.5, np.random.default_rng(0))


# ------------------------------------------------------------------------------------------------ saccades


def _per_pixel(ev):
    pix = ev.y.astype(int) * 34 + ev.x
    return pix


def test_saccade_blank_image_is_silent():
    out = saccade_events(np.zeros((3, 28, 28), np.uint8), threshold=0.05, threshold_sigma=0.02,
                         rng=np.random.default_rng(0))
    assert len(out) == 3 and all(len(e) == 0 for e in out)


def test_saccade_offsets_trace_the_triangle():
    off = saccade_offsets(np.array([0, 50_000, 100_000, 200_000, 300_000.0]))
    assert np.allclose(off, [[1, 5], [2, 3], [3, 1], [5, 5], [1, 5]])


def test_saccade_bright_pixel_on_when_entering_off_when_leaving():
    img = np.zeros((28, 28), np.uint8)
    img[14, 14] = 255
    ev = saccade_events(img, threshold=0.2)[0]
    assert len(ev) > 0 and np.all(np.diff(ev.t) >= 0)
    assert ev.t.min() > 0 and ev.t.max() <= 300_000
    pix = _per_pixel(ev)
    # the pixel lit at t = 0: the image's (14, 14) at offset (1, 5) -> sensor x 15, y 19
    start = 19 * 34 + 15
    for q in np.unique(pix):
        mine = ev.p[pix == q]
        first = mine[0]
        assert first == (0 if q == start else 1)  # lit pixels first dim (OFF), dark ones first brighten (ON)
        assert (mine == 1).sum() == (mine == 0).sum()  # the path closes: as many ON as OFF per pixel
    assert start in set(pix.tolist())


def test_saccade_edge_and_threshold_monotonic():
    img = np.zeros((28, 28), np.uint8)
    img[:, 14:] = 200  # a vertical edge, bright to the right
    counts = [len(saccade_events(img, threshold=c)[0]) for c in (0.6, 0.3, 0.15)]
    assert counts[0] < counts[1] < counts[2]
    ev = saccade_events(img, threshold=0.3)[0]
    # the first saccade moves the image right (x offset 1 -> 3) and up (y offset 5 -> 1): away from the image's
    # own borders (rows 6..28, columns < 25), the edge leaves sensor columns 15 and 16, which go dark (OFF) ...
    inner = (ev.y >= 6) & (ev.y < 29) & (ev.x < 25)
    first = ev.select((ev.t < 100_000) & inner)
    assert len(first) and set(first.p.tolist()) == {0} and set(first.x.tolist()) == {15, 16}
    # ... and the third (offset (5, 5) -> (1, 5)) brings it back: columns 15..18 brighten (ON)
    third = ev.select((ev.t >= 200_000) & inner)
    assert len(third) and set(third.p.tolist()) == {1} and set(third.x.tolist()) <= {15, 16, 17, 18}
    assert 0 <= ev.t.min() and ev.t.max() <= 300_000
    noisy = saccade_events(img, threshold=0.3, threshold_sigma=0.05, rng=np.random.default_rng(5))[0]
    again = saccade_events(img, threshold=0.3, threshold_sigma=0.05, rng=np.random.default_rng(5))[0]
    assert np.array_equal(noisy.t, again.t) and len(noisy) != len(ev)


def test_saccade_bin_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    imgs = np.zeros((4, 28, 28), np.uint8)
    for i in range(4):
        r0, c0 = rng.integers(4, 16, size=2)
        imgs[i, r0:r0 + 8, c0:c0 + 6] = rng.integers(120, 256)
    labels = [3, 3, 8, 0]
    evs = saccade_events(imgs, labels)
    paths = write_saccade_dataset(tmp_path, evs)
    assert [p.parent.name for p in paths] == ["3", "3", "8", "0"] and paths[0].name == "00001.bin"
    ds = NMNISTDataset(tmp_path, "Train")
    assert len(ds) == 4 and sorted(ds.labels.tolist()) == sorted(labels)
    for path, ev in zip(paths, evs):
        back = read_nmnist_bin(path)
        assert np.array_equal(back.x, ev.x) and np.array_equal(back.y, ev.y) and np.array_equal(back.p, ev.p)
        assert np.array_equal(back.t, np.rint(ev.t))
    spikes, lab = collate_events(list(ds), bin_ms=10.0, n_bins=30, mode="binary")
    assert spikes.shape == (30, 4, 34 * 34 * 2) and sorted(lab.tolist()) == sorted(labels)
