"""Event data as users have it on disk: readers of the SHD/SSC, N-MNIST and DVS128 Gesture files into one
event record, :class:`Events`.

An :class:`Events` holds one sample (or one recording) as four 1-D arrays of equal length ``n``:

==========  ===========  ==================================================================================
field       dtype        meaning
==========  ===========  ==================================================================================
``t``       ``float64``  time of each event in **microseconds** (µs)
``x``       ``int32``    pixel column of a camera, or the channel (unit) of 1-D data such as SHD
``y``       ``int32``    pixel row of a camera; ``0`` for 1-D channel data
``p``       ``int8``     polarity: ``1`` = ON (brighter), ``0`` = OFF (darker); ``0`` for SHD/SSC
==========  ===========  ==================================================================================

plus ``sensor_size = (width, height, polarities)`` (``(700, 1, 1)`` for SHD/SSC, ``(34, 34, 2)`` for N-MNIST,
``(128, 128, 2)`` for DVS128 Gesture) and ``label`` (an ``int`` class index, or ``None`` where the format carries
none). :data:`EVENT_DTYPE` is the same record as a NumPy structured array (:meth:`Events.to_structured`).

The formats read here
---------------------

**SHD and SSC** (Spiking Heidelberg Digits, Spiking Speech Commands; Cramer, Stradmann, Schemmel & Zenke 2020,
"The Heidelberg spiking data sets for the systematic evaluation of spiking neural networks", IEEE TNNLS 33(7)):
one HDF5 file per split (``shd_train.h5``, ``shd_test.h5``, ``ssc_train.h5``, ``ssc_valid.h5``, ``ssc_test.h5``)
holding the datasets ``spikes/times`` (ragged: one variable-length float array per sample, spike times in
**seconds**), ``spikes/units`` (the matching variable-length integer arrays, channel 0..699 of the cochlea model)
and ``labels`` (one integer class per sample: 20 classes for SHD, 35 for SSC); optionally ``extra/keys`` (the
class names). Read by :class:`SHDDataset` (lazily, with ``h5py``: ``pip install "braincore[events]"``).

**N-MNIST** (Orchard, Jayawant, Cohen & Thakor 2015, "Converting static image datasets to spiking neuromorphic
datasets using saccades", Front. Neurosci. 9:437): one ``.bin`` file per sample in the folders
``Train/<digit>/<id>.bin`` and ``Test/<digit>/<id>.bin``; every event is 40 bits = 5 bytes, big-endian bit order::

    byte 0        x address (pixel column, 8 bits)
    byte 1        y address (pixel row, 8 bits)
    byte 2 bit 7  polarity (1 = ON, 0 = OFF)
    byte 2 bits 6..0, byte 3, byte 4
                  timestamp, 23 bits, microseconds: ts = ((b2 & 0x7F) << 16) | (b3 << 8) | b4

on a 34 x 34 sensor. Read by :func:`read_nmnist_bin` (one file) and :class:`NMNISTDataset` (the folder layout;
label = the folder name); :func:`write_nmnist_bin` writes the same format.

**DVS128 Gesture** (Amir et al. 2017, "A low power, fully event-based gesture recognition system", CVPR): one
AEDAT 3.1 recording per user and lighting condition (``user01_fluorescent.aedat``) with a companion
``user01_fluorescent_labels.csv`` (columns ``class,startTime_usec,endTime_usec``, classes 1..11) that cuts it
into labelled gestures; ``trials_to_train.txt`` / ``trials_to_test.txt`` list the recordings of each split. An
AEDAT 3.1 file is a text header (lines starting with ``#``; the first ``#!AER-DAT3.1``, the last
``#!END-HEADER\\r\\n``) followed by packets, each a 28-byte little-endian header::

    int16 eventType  int16 eventSource  int32 eventSize  int32 eventTSOffset
    int32 eventTSOverflow  int32 eventCapacity  int32 eventNumber  int32 eventValid

and ``eventCapacity * eventSize`` bytes of events (in files ``eventCapacity == eventNumber``). Polarity packets
(``eventType == 1``, ``eventSize == 8``) hold events of ``uint32 data, int32 timestamp``, decoded as
``x = (data >> 17) & 0x7FFF``, ``y = (data >> 2) & 0x7FFF``, ``polarity = (data >> 1) & 1``, valid mark
``data & 1``, and time ``(eventTSOverflow << 31) | timestamp`` µs; other packets (special events, IMU, frames)
are skipped. 128 x 128 sensor, 11 classes. Read by :func:`read_aedat31`, :func:`read_dvs_gesture_labels`,
:func:`cut_dvs_gesture`, :func:`read_dvs_gesture` and :class:`DVSGestureDataset`.

**Event .npz** (the common conversion, e.g. SpikingJelly's ``events_np/<split>/<label>/*.npz``): arrays ``t``,
``x``, ``y``, ``p`` of equal length (optionally ``label`` and ``sensor_size``), read by
:func:`read_events_npz` and :class:`EventNpzFolder`, written by :func:`write_events_npz`.

Every reader raises :class:`EventFileError` (a :class:`~braincore.errors.ConfigError`, hence a ``ValueError``)
naming the file and the format it expected when a file is missing, is something else (said from its first
bytes: an HDF5 file given as N-MNIST, a zip archive given as AEDAT...), or is cut short or inconsistent. Nothing
here downloads.
"""
from __future__ import annotations

import csv
import importlib
import io
import os
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, SupportsInt, Tuple, Union

import numpy as np
from numpy.typing import ArrayLike

from ..errors import ConfigError
from .files import check_regular_file, describe, read_head, sniff

__all__ = [
    "AEDAT_POLARITY_EVENT",
    "DVS_GESTURE_CLASSES",
    "DVS_GESTURE_SENSOR",
    "EVENT_DTYPE",
    "EventFileError",
    "EventNpzFolder",
    "Events",
    "DVSGestureDataset",
    "NMNISTDataset",
    "NMNIST_SENSOR",
    "SHDDataset",
    "SHD_SENSOR",
    "cut_dvs_gesture",
    "decode_nmnist",
    "encode_nmnist",
    "read_aedat31",
    "read_dvs_gesture",
    "read_dvs_gesture_labels",
    "read_events_npz",
    "read_nmnist_bin",
    "write_events_npz",
    "write_nmnist_bin",
    "write_shd_h5",
]

PathLike = Union[str, "os.PathLike[str]"]
SensorSize = Tuple[int, int, int]

#: The structured-array form of :class:`Events` (:meth:`Events.to_structured`): ``t`` µs, ``x``, ``y``, ``p``.
EVENT_DTYPE = np.dtype([("t", "<f8"), ("x", "<i4"), ("y", "<i4"), ("p", "i1")])

#: ``(width, height, polarities)`` of SHD/SSC: 700 cochlea channels, one row, no polarity.
SHD_SENSOR: SensorSize = (700, 1, 1)
#: ``(width, height, polarities)`` of N-MNIST (the ATIS sensor window the digits were recorded in).
NMNIST_SENSOR: SensorSize = (34, 34, 2)
#: ``(width, height, polarities)`` of the DVS128 camera of DVS128 Gesture.
DVS_GESTURE_SENSOR: SensorSize = (128, 128, 2)
#: the 11 DVS128 Gesture classes, index = the csv ``class`` minus 1
DVS_GESTURE_CLASSES = (
    "hand_clapping", "right_hand_wave", "left_hand_wave", "right_arm_clockwise", "right_arm_counter_clockwise",
    "left_arm_clockwise", "left_arm_counter_clockwise", "arm_roll", "air_drums", "air_guitar", "other_gestures",
)
#: AEDAT 3.1 ``eventType`` of polarity (DVS) events
AEDAT_POLARITY_EVENT = 1

_INSTALL_H5PY = ('h5py is needed to read HDF5 event files (SHD/SSC): pip install "braincore[events]" '
                 '(or pip install h5py)')
_SHD_FORMAT = ("an SHD/SSC HDF5 file (Cramer et al. 2020: datasets 'spikes/times' [seconds], 'spikes/units' and "
               "'labels')")
_NMNIST_FORMAT = "an N-MNIST .bin file (Orchard et al. 2015: 5-byte events x, y, polarity + 23-bit µs timestamp)"
_AEDAT_FORMAT = "an AEDAT 3.1 file (text header '#!AER-DAT3.1' ... '#!END-HEADER', then event packets)"
_LABELS_FORMAT = "a DVS128 Gesture labels .csv (columns class,startTime_usec,endTime_usec)"
_NPZ_FORMAT = "an event .npz archive (arrays 't' [µs], 'x', 'y', 'p'; optionally 'label', 'sensor_size')"


class EventFileError(ConfigError):
    """An event file (or folder) that cannot be read as the format asked for: missing, another kind of file,
    truncated, or inconsistent. The message names the file and the expected format. A
    :class:`~braincore.errors.ConfigError`, hence a ``ValueError``."""


# ----------------------------------------------------------------------------------------------------------------
# the event record


def _as_1d(values: Any, dtype: Any, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"Events.{name} must be 1-D, got shape {arr.shape}")
    return np.ascontiguousarray(arr, dtype=dtype)


def _sensor(size: Sequence[int]) -> SensorSize:
    vals = [int(v) for v in size]
    if len(vals) != 3 or min(vals) < 1:
        raise ValueError(f"sensor_size must be (width, height, polarities), each >= 1, got {tuple(size)!r}")
    return (vals[0], vals[1], vals[2])


@dataclass(init=False, eq=False)
class Events:
    """The events of one sample (or recording): ``t`` µs (``float64``), ``x``, ``y`` (``int32``), ``p``
    (``int8``, 1 = ON, 0 = OFF), all 1-D of the same length, plus ``sensor_size = (width, height, polarities)``
    and an optional integer ``label``. The arrays may be given as anything :func:`numpy.asarray` takes, in any
    numeric dtype: they are converted on construction (a ``ValueError`` when they are not 1-D or differ in
    length).

    ``len(events)`` is the number of events; :attr:`num_channels` = ``width * height * polarities`` is the size of
    the flattened channel axis of :func:`braincore.data.event_tensors.bin_events`.
    """

    t: np.ndarray
    x: np.ndarray
    y: np.ndarray
    p: np.ndarray
    sensor_size: SensorSize
    label: Optional[int]

    def __init__(self, t: ArrayLike, x: ArrayLike, y: ArrayLike, p: ArrayLike,
                 sensor_size: Sequence[int] = NMNIST_SENSOR, label: Optional[SupportsInt] = None):
        self.t = _as_1d(t, np.float64, "t")
        self.x = _as_1d(x, np.int32, "x")
        self.y = _as_1d(y, np.int32, "y")
        self.p = _as_1d(p, np.int8, "p")
        n = self.t.size
        if not (self.x.size == self.y.size == self.p.size == n):
            raise ValueError(f"Events arrays differ in length: t {n}, x {self.x.size}, y {self.y.size}, "
                             f"p {self.p.size}")
        self.sensor_size = _sensor(sensor_size)
        self.label = None if label is None else int(label)

    def __len__(self) -> int:
        return int(self.t.size)

    @property
    def num_channels(self) -> int:
        """``width * height * polarities``."""
        w, h, p = self.sensor_size
        return w * h * p

    @property
    def duration_us(self) -> float:
        """``max(t) - min(t)`` in µs (0 for fewer than two events)."""
        return float(self.t.max() - self.t.min()) if self.t.size > 1 else 0.0

    @classmethod
    def empty(cls, sensor_size: Sequence[int] = NMNIST_SENSOR, label: Optional[int] = None) -> "Events":
        """No events on a sensor of ``sensor_size``."""
        return cls(np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0), _sensor(sensor_size), label)

    def select(self, index: Any) -> "Events":
        """The events picked by ``index`` (a boolean mask, an integer index array or a slice), same sensor and
        label."""
        return Events(self.t[index], self.x[index], self.y[index], self.p[index], self.sensor_size, self.label)

    def sorted(self) -> "Events":
        """The events in time order (a stable sort: equal times keep their order)."""
        order = np.argsort(self.t, kind="stable")
        return self.select(order)

    def replace(self, **changes: Any) -> "Events":
        """A copy with some fields replaced, e.g. ``events.replace(t=events.t * 2)``."""
        values: Dict[str, Any] = {"t": self.t, "x": self.x, "y": self.y, "p": self.p, "sensor_size": self.sensor_size,
                  "label": self.label}
        values.update(changes)
        return Events(**values)

    def check(self, source: str = "events") -> "Events":
        """``self`` after checking that every ``x, y, p`` lies on the sensor and every ``t`` is finite; a
        ``ValueError`` (:class:`EventFileError`) naming ``source`` and the first bad event otherwise."""
        w, h, npol = self.sensor_size
        for name, arr, hi in (("x", self.x, w), ("y", self.y, h), ("p", self.p, npol)):
            bad = (arr < 0) | (arr >= hi)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise EventFileError(f"{source}: {int(bad.sum())} event(s) with {name} outside 0..{hi - 1} of the "
                                     f"{w}x{h}x{npol} sensor, the first {name}={int(arr[i])} at event {i}")
        bad = ~np.isfinite(self.t)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise EventFileError(f"{source}: {int(bad.sum())} event time(s) not finite, the first at event {i}")
        return self

    def to_structured(self) -> np.ndarray:
        """The events as a structured array of :data:`EVENT_DTYPE` (fields ``t``, ``x``, ``y``, ``p``)."""
        out = np.empty(len(self), dtype=EVENT_DTYPE)
        out["t"], out["x"], out["y"], out["p"] = self.t, self.x, self.y, self.p
        return out

    @classmethod
    def from_structured(cls, arr: np.ndarray, sensor_size: Sequence[int], label: Optional[int] = None) -> "Events":
        """Events from a structured array with fields ``t`` (µs), ``x``, ``p`` and optionally ``y`` (0 when
        absent, as in tonic's SHD records)."""
        names = arr.dtype.names or ()
        missing = [k for k in ("t", "x", "p") if k not in names]
        if missing:
            raise ValueError(f"structured array lacks field(s) {missing}; it has {list(names)}")
        y = arr["y"] if "y" in names else np.zeros(arr.shape[0], dtype=np.int32)
        return cls(arr["t"], arr["x"], y, arr["p"], _sensor(sensor_size), label)


# ----------------------------------------------------------------------------------------------------------------
# shared helpers


def _what_it_is(head: bytes) -> str:
    """What a file is, from its first bytes, for messages (:func:`~braincore.data.files.describe`, and the
    version of an AEDAT file)."""
    if head.startswith(b"#!AER-DAT"):
        version = head[2:].split(b"\n", 1)[0].strip().decode("ascii", "replace")
        return f"an AEDAT file ({version})"
    return describe(head)


def _checked_path(path: PathLike, what: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise EventFileError(f"{path}: no such file (expected {what})")
    bare = what.split(" ", 1)[1] if what.startswith(("a ", "an ")) else what  # check_regular_file adds "a"
    check_regular_file(path, bare, EventFileError)
    return path


def _read_all(path: Path, what: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as err:  # pragma: no cover - check_regular_file catches most
        raise EventFileError(f"{path}: cannot read {what} ({err.strerror or err})") from None


# ----------------------------------------------------------------------------------------------------------------
# SHD / SSC (HDF5)


def _import_h5py():
    try:
        h5py = importlib.import_module("h5py")  # optional dependency: the "events" extra
    except ImportError as err:
        raise ImportError(_INSTALL_H5PY) from err
    return h5py


class SHDDataset:
    """A split of the Spiking Heidelberg Digits or Spiking Speech Commands (Cramer et al. 2020), read lazily from
    its HDF5 file: ``len(ds)`` samples, ``ds[i] -> (Events, label)``.

    The file holds ``spikes/times`` (ragged: sample ``i`` is a float array of spike times in **seconds**),
    ``spikes/units`` (the matching integer channels, 0..699) and ``labels`` (integers); ``extra/keys``, when
    present, names the classes. Each sample becomes an :class:`Events` with ``t = times * 1e6`` µs (float64),
    ``x = units``, ``y = 0``, ``p = 0`` on the sensor ``(n_units, 1, 1)``, and its label.

    The file is opened read-only with ``h5py`` on construction (to check the layout and read the labels) and
    kept open; a sample's spikes are read only when it is indexed. A forked DataLoader worker reopens the file,
    and pickling the dataset drops the handle. :meth:`close` (or ``with SHDDataset(...) as ds``)
    closes it. The layout (the three datasets, equal counts) is checked on opening.

    Args:
        path: the ``.h5`` file (e.g. ``shd_train.h5``).
        n_units: the number of channels (700 for SHD and SSC); units at or above it raise an error.

    Raises:
        ImportError: ``h5py`` is not installed (``pip install "braincore[events]"``).
        EventFileError: a missing file, a file that is not HDF5 (said what it is), missing datasets, counts that
            differ; on access, a sample whose times and units differ in length or whose units are out of range.
    """

    def __init__(self, path: PathLike, n_units: int = 700):
        self.path = _checked_path(path, _SHD_FORMAT)
        self.n_units = int(n_units)
        if self.n_units < 1:
            raise ValueError(f"n_units must be >= 1, got {n_units}")
        self._file: Any = None
        self._pid: Optional[int] = None
        f = self._open()
        self._len = int(f["labels"].shape[0])
        self.labels = np.asarray(f["labels"][()]).astype(np.int64).reshape(-1)
        self.class_names: Optional[List[str]] = None
        if "extra" in f and isinstance(f["extra"], _import_h5py().Group) and "keys" in f["extra"]:
            keys = np.asarray(f["extra"]["keys"][()]).reshape(-1)
            self.class_names = [k.decode("utf-8", "replace") if isinstance(k, bytes) else str(k) for k in keys]

    @property
    def sensor_size(self) -> SensorSize:
        """``(n_units, 1, 1)``."""
        return (self.n_units, 1, 1)

    @property
    def num_classes(self) -> int:
        """The number of classes: ``len(extra/keys)`` when the file names them, else ``max(labels) + 1``."""
        if self.class_names:
            return len(self.class_names)
        return int(self.labels.max()) + 1 if self.labels.size else 0

    def _open(self):
        if self._file is not None and self._pid == os.getpid():
            return self._file
        h5py = _import_h5py()
        try:
            f = h5py.File(self.path, "r")
        except OSError as err:
            what = _what_it_is(read_head(self.path, 64))
            raise EventFileError(f"{self.path}: not readable as {_SHD_FORMAT}; it looks like {what} "
                                 f"(h5py: {err})") from None
        try:
            self._check_layout(f, h5py)
        except EventFileError:
            f.close()
            raise
        self._file, self._pid = f, os.getpid()
        return f

    def _check_layout(self, f, h5py) -> None:
        missing = []
        for name in ("spikes/times", "spikes/units", "labels"):
            obj = f.get(name)
            if not isinstance(obj, h5py.Dataset):
                missing.append(name)
        if missing:
            top = ", ".join(sorted(f.keys())) or "nothing"
            raise EventFileError(f"{self.path}: missing HDF5 dataset(s) {', '.join(map(repr, missing))} (the file "
                                 f"holds {top} at the top level); expected {_SHD_FORMAT}")
        n = {name: f[name].shape[0] if f[name].ndim else None for name in ("spikes/times", "spikes/units", "labels")}
        if None in n.values() or len(set(n.values())) != 1:
            raise EventFileError(f"{self.path}: 'spikes/times', 'spikes/units' and 'labels' must hold one entry per "
                                 f"sample, got {n['spikes/times']}, {n['spikes/units']} and {n['labels']} entries; "
                                 f"expected {_SHD_FORMAT}")

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, index: int) -> Tuple[Events, int]:
        i = int(index)
        if i < 0:
            i += self._len
        if not 0 <= i < self._len:
            raise IndexError(f"sample {index} out of range for {self._len} samples in {self.path}")
        f = self._open()
        times = np.asarray(f["spikes/times"][i], dtype=np.float64).reshape(-1)
        units = np.asarray(f["spikes/units"][i]).reshape(-1)
        if times.size != units.size:
            raise EventFileError(f"{self.path}: sample {i} has {times.size} spike times but {units.size} units; "
                                 f"expected {_SHD_FORMAT}")
        if units.size and (units.min() < 0 or units.max() >= self.n_units):
            raise EventFileError(f"{self.path}: sample {i} has units outside 0..{self.n_units - 1} "
                                 f"(min {units.min()}, max {units.max()}); pass n_units= for another channel count")
        label = int(self.labels[i])
        n = times.size
        ev = Events(times * 1e6, units, np.zeros(n, np.int32), np.zeros(n, np.int8), self.sensor_size, label)
        return ev, label

    def __iter__(self) -> Iterator[Tuple[Events, int]]:
        for i in range(self._len):
            yield self[i]

    def close(self) -> None:
        """Close the HDF5 file (it reopens on the next access)."""
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file, self._pid = None, None

    def __enter__(self) -> "SHDDataset":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_file"], state["_pid"] = None, None
        return state

    def __repr__(self) -> str:
        return f"SHDDataset({str(self.path)!r}, {self._len} samples, {self.num_classes} classes)"


def write_shd_h5(path: PathLike, times: Sequence[np.ndarray], units: Sequence[np.ndarray], labels: Sequence[int],
                 class_names: Optional[Sequence[str]] = None) -> Path:
    """Write samples in the SHD/SSC HDF5 layout (Cramer et al. 2020), readable by :class:`SHDDataset`.

    Args:
        path: the ``.h5`` file to create (overwritten).
        times: per sample, spike times in **seconds** (stored as variable-length float32 arrays,
            ``spikes/times``).
        units: per sample, the matching channels (variable-length uint16, ``spikes/units``).
        labels: one class per sample (uint16, ``labels``).
        class_names: optional names, stored as ``extra/keys``.
    """
    h5py = _import_h5py()
    if not (len(times) == len(units) == len(labels)):
        raise ValueError(f"times, units and labels differ in length: {len(times)}, {len(units)}, {len(labels)}")
    path = Path(path)
    with h5py.File(path, "w") as f:
        spikes = f.create_group("spikes")
        dt = spikes.create_dataset("times", (len(times),), dtype=h5py.vlen_dtype(np.float32))
        du = spikes.create_dataset("units", (len(units),), dtype=h5py.vlen_dtype(np.uint16))
        for i, (t, u) in enumerate(zip(times, units)):
            t, u = np.asarray(t, np.float32).reshape(-1), np.asarray(u, np.uint16).reshape(-1)
            if t.size != u.size:
                raise ValueError(f"sample {i}: {t.size} times but {u.size} units")
            dt[i], du[i] = t, u
        f.create_dataset("labels", data=np.asarray(labels, dtype=np.uint16))
        if class_names is not None:
            f.create_group("extra").create_dataset("keys", data=np.array([s.encode() for s in class_names]))
    return path


# ----------------------------------------------------------------------------------------------------------------
# N-MNIST (.bin)


def decode_nmnist(data: bytes, source: str = "<bytes>", sensor_size: Sequence[int] = NMNIST_SENSOR,
                  label: Optional[int] = None) -> Events:
    """Decode the bytes of an N-MNIST ``.bin`` file (5 bytes per event; see the module docstring) into
    :class:`Events` (``t`` µs as float64, on ``sensor_size``).

    Raises:
        EventFileError: a byte count that is not a multiple of 5 (a truncated record), or addresses outside
            ``sensor_size`` (not an N-MNIST file, or another sensor: pass ``sensor_size``, e.g. ``(240, 180, 2)``
            for N-Caltech101).
    """
    raw = np.frombuffer(data, dtype=np.uint8)
    if raw.size % 5:
        what = _what_it_is(bytes(raw[:64]))
        raise EventFileError(f"{source}: {raw.size} bytes is not a multiple of 5 (truncated record: "
                             f"{raw.size % 5} byte(s) left over; it looks like {what}); expected {_NMNIST_FORMAT}")
    rec = raw.reshape(-1, 5).astype(np.uint32)
    ts = ((rec[:, 2] & 0x7F) << 16) | (rec[:, 3] << 8) | rec[:, 4]
    ev = Events(ts.astype(np.float64), rec[:, 0], rec[:, 1], (rec[:, 2] >> 7).astype(np.int8),
                _sensor(sensor_size), label)
    w, h, _ = ev.sensor_size
    bad = (ev.x >= w) | (ev.y >= h)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise EventFileError(f"{source}: {int(bad.sum())} of {len(ev)} events lie outside the {w}x{h} sensor (the "
                             f"first x={int(ev.x[i])}, y={int(ev.y[i])} at event {i}); not {_NMNIST_FORMAT} "
                             f"(or pass sensor_size= for another sensor)")
    return ev


def read_nmnist_bin(path: PathLike, sensor_size: Sequence[int] = NMNIST_SENSOR,
                    label: Optional[int] = None) -> Events:
    """The events of one N-MNIST ``.bin`` file (Orchard et al. 2015), in file order (time order).

    Returns:
        :class:`Events` with ``t`` in µs (integers 0..2**23-1 as float64), ``x``, ``y`` in ``0..33``, ``p``
        1 = ON / 0 = OFF, ``sensor_size`` (default ``(34, 34, 2)``) and ``label``.

    Raises:
        EventFileError: a missing file or a folder, another kind of file (an HDF5 file, a zip archive, a PNG...:
            named from its first bytes), a byte count not a multiple of 5, or addresses outside the sensor.
    """
    path = _checked_path(path, _NMNIST_FORMAT)
    data = _read_all(path, _NMNIST_FORMAT)
    kind = sniff(data[:64]) if data else None
    if kind is not None and kind != "binary data":
        raise EventFileError(f"{path}: this is {kind}, not {_NMNIST_FORMAT}")
    return decode_nmnist(data, str(path), sensor_size, label)


def encode_nmnist(events: Events) -> bytes:
    """The N-MNIST ``.bin`` bytes of ``events`` (5 bytes per event, in the given order). ``t`` is rounded to
    whole µs and must lie in ``0..2**23-1`` (8.39 s); ``x``, ``y`` in ``0..255``; ``p`` 0 or 1 (else
    ``ValueError``)."""
    ts = np.rint(events.t).astype(np.int64)
    if ts.size and (ts.min() < 0 or ts.max() >= 1 << 23):
        raise ValueError(f"N-MNIST timestamps are 23-bit µs (0..{(1 << 23) - 1}); got {ts.min()}..{ts.max()}")
    for name, arr, hi in (("x", events.x, 256), ("y", events.y, 256), ("p", events.p, 2)):
        if arr.size and (arr.min() < 0 or arr.max() >= hi):
            raise ValueError(f"N-MNIST {name} must be in 0..{hi - 1}; got {arr.min()}..{arr.max()}")
    rec = np.empty((ts.size, 5), dtype=np.uint8)
    rec[:, 0] = events.x
    rec[:, 1] = events.y
    rec[:, 2] = (events.p.astype(np.int64) << 7) | (ts >> 16)
    rec[:, 3] = (ts >> 8) & 0xFF
    rec[:, 4] = ts & 0xFF
    return rec.tobytes()


def write_nmnist_bin(path: PathLike, events: Events) -> Path:
    """Write ``events`` as an N-MNIST ``.bin`` file (see :func:`encode_nmnist`); returns the path."""
    path = Path(path)
    data = encode_nmnist(events)
    with open(path, "wb") as fh:
        fh.write(data)
    return path


class NMNISTDataset:
    """One split of N-MNIST in its published folder layout, ``<root>/<split>/<digit>/<id>.bin`` (``split`` is
    ``"Train"`` or ``"Test"``; the label is the folder name ``0``..``9``): ``ds[i] -> (Events, label)``, files in
    sorted order (by digit, then name). Files are read on access.

    Args:
        root: the folder holding ``Train/`` and ``Test/`` (or the split folder itself).
        split: ``"Train"`` or ``"Test"`` (any case).
        sensor_size: the sensor (default 34 x 34 x 2).

    Raises:
        EventFileError: the root or split folder is missing, holds no ``<digit>/`` folders, or no ``.bin`` files.
    """

    def __init__(self, root: PathLike, split: str = "Train", sensor_size: Sequence[int] = NMNIST_SENSOR):
        root = Path(root)
        if not root.is_dir():
            raise EventFileError(f"{root}: no such folder (expected the N-MNIST folder with Train/<digit>/*.bin "
                                 f"and Test/<digit>/*.bin)")
        want = split.lower()
        if want not in ("train", "test"):
            raise ValueError(f"split must be 'Train' or 'Test', got {split!r}")
        folder = next((d for d in sorted(root.iterdir()) if d.is_dir() and d.name.lower() == want), None)
        if folder is None and root.name.lower() == want:
            folder = root
        if folder is None:
            have = ", ".join(sorted(d.name for d in root.iterdir() if d.is_dir())) or "no folders"
            raise EventFileError(f"{root}: no {split}/ folder (it holds {have}); expected the N-MNIST layout "
                                 f"{split}/<digit>/<id>.bin")
        self.root, self.split, self.sensor_size = folder, split, _sensor(sensor_size)
        self.files: List[Path] = []
        labels: List[int] = []
        digits = sorted((d for d in folder.iterdir() if d.is_dir() and d.name.isdigit()), key=lambda d: int(d.name))
        if not digits:
            raise EventFileError(f"{folder}: no <digit>/ folders; expected the N-MNIST layout "
                                 f"{folder.name}/<digit>/<id>.bin")
        for d in digits:
            files = sorted(p for p in d.iterdir() if p.suffix.lower() == ".bin" and p.is_file())
            self.files += files
            labels += [int(d.name)] * len(files)
        if not self.files:
            raise EventFileError(f"{folder}: no .bin files under the digit folders; expected {_NMNIST_FORMAT}")
        self.labels = np.asarray(labels, dtype=np.int64)

    @property
    def num_classes(self) -> int:
        """``max(label) + 1`` (10 for N-MNIST)."""
        return int(self.labels.max()) + 1

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> Tuple[Events, int]:
        label = int(self.labels[index])
        return read_nmnist_bin(self.files[index], self.sensor_size, label), label

    def __iter__(self) -> Iterator[Tuple[Events, int]]:
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        return f"NMNISTDataset({str(self.root)!r}, {len(self)} samples)"


# ----------------------------------------------------------------------------------------------------------------
# DVS128 Gesture (AEDAT 3.1 + labels csv)

_PACKET_HEADER = struct.Struct("<hhiiiiii")
_POLARITY_RECORD = np.dtype([("data", "<u4"), ("ts", "<i4")])
_MAX_HEADER = 1 << 20


def _aedat_header_end(data: bytes, path: Path) -> int:
    """The byte offset of the first packet, after checking the version line and the header's end."""
    if not data.startswith(b"#!AER-DAT"):
        raise EventFileError(f"{path}: no '#!AER-DAT' version line at the start (it looks like "
                             f"{_what_it_is(data[:64])}); expected {_AEDAT_FORMAT}")
    first = data[:64].split(b"\n", 1)[0].strip()
    m = re.match(rb"#!AER-DAT(\d+)\.(\d+)", first)
    version = m.group(1).decode() + "." + m.group(2).decode() if m else "?"
    if not m or m.group(1) != b"3":
        hint = " (jAER's big-endian AEDAT 2.0)" if version.startswith("2") else ""
        hint = " (AEDAT 4, read it with the 'aedat'/'dv' packages)" if version.startswith("4") else hint
        raise EventFileError(f"{path}: AEDAT version {version}{hint}, not 3.1; expected {_AEDAT_FORMAT}")
    pos = 0
    while True:
        if pos >= len(data) or pos > _MAX_HEADER:
            raise EventFileError(f"{path}: truncated header: no '#!END-HEADER' line; expected {_AEDAT_FORMAT}")
        if data[pos:pos + 1] != b"#":
            raise EventFileError(f"{path}: the header ends (a line without '#' at byte {pos}) before "
                                 f"'#!END-HEADER'; expected {_AEDAT_FORMAT}")
        nl = data.find(b"\n", pos, pos + _MAX_HEADER)
        if nl < 0:
            raise EventFileError(f"{path}: truncated header: no '#!END-HEADER' line; expected {_AEDAT_FORMAT}")
        line = data[pos:nl + 1]
        pos = nl + 1
        if line.startswith(b"#!END-HEADER"):
            return pos


def read_aedat31(path: PathLike, *, valid_only: bool = False,
                 sensor_size: Sequence[int] = DVS_GESTURE_SENSOR) -> Events:
    """The polarity events of an AEDAT 3.1 recording (the DVS128 Gesture files; Amir et al. 2017), in file order.

    Packets whose ``eventType`` is not 1 (polarity) are skipped; each polarity packet contributes its first
    ``eventNumber`` events (its payload is ``eventCapacity * eventSize`` bytes). ``t`` is the full timestamp
    ``(eventTSOverflow << 31) | timestamp`` in µs (the recording's own clock, not starting at 0).

    Args:
        path: the ``.aedat`` file.
        valid_only: keep only events whose valid mark (``data & 1``) is set; by default all are kept, as the
            common DVS128 Gesture readers do.
        sensor_size: the sensor (default 128 x 128 x 2); events outside it raise an error.

    Raises:
        EventFileError: a missing file, another kind of file or AEDAT version, a header without
            ``#!END-HEADER``, a packet header or payload cut short, inconsistent packet counts, polarity packets
            whose ``eventSize`` is not 8, or addresses outside the sensor.
    """
    path = _checked_path(path, _AEDAT_FORMAT)
    data = _read_all(path, _AEDAT_FORMAT)
    pos = _aedat_header_end(data, path)
    chunks: List[np.ndarray] = []
    overflows: List[int] = []
    n_bytes = len(data)
    k = 0
    while pos < n_bytes:
        if n_bytes - pos < _PACKET_HEADER.size:
            raise EventFileError(f"{path}: truncated packet header: packet {k} at byte {pos} has "
                                 f"{n_bytes - pos} of 28 header bytes; expected {_AEDAT_FORMAT}")
        etype, _src, esize, tsoff, tsover, capacity, number, valid = _PACKET_HEADER.unpack_from(data, pos)
        if esize < 1 or capacity < 0 or number < 0 or number > capacity or valid < 0 or valid > number \
                or not 0 <= tsoff <= esize - 4 or tsover < 0:
            raise EventFileError(f"{path}: packet {k} at byte {pos} has an impossible header (eventSize {esize}, "
                                 f"eventTSOffset {tsoff}, eventTSOverflow {tsover}, eventCapacity {capacity}, "
                                 f"eventNumber {number}, eventValid {valid}); expected {_AEDAT_FORMAT}")
        payload = capacity * esize
        start = pos + _PACKET_HEADER.size
        if n_bytes - start < payload:
            raise EventFileError(f"{path}: truncated packet: packet {k} at byte {pos} declares {capacity} events of "
                                 f"{esize} bytes ({payload} bytes) but only {n_bytes - start} remain; expected "
                                 f"{_AEDAT_FORMAT}")
        if etype == AEDAT_POLARITY_EVENT and number:
            if esize != 8 or tsoff != 4:
                raise EventFileError(f"{path}: polarity packet {k} at byte {pos} has eventSize {esize} and "
                                     f"eventTSOffset {tsoff}, not 8 and 4; expected {_AEDAT_FORMAT}")
            chunks.append(np.frombuffer(data, dtype=_POLARITY_RECORD, count=number, offset=start))
            overflows.append(tsover)
        pos = start + payload
        k += 1
    if chunks:
        rec = np.concatenate(chunks)
        over = np.repeat(np.asarray(overflows, dtype=np.int64), [c.size for c in chunks])
    else:
        rec = np.zeros(0, dtype=_POLARITY_RECORD)
        over = np.zeros(0, dtype=np.int64)
    d = rec["data"].astype(np.int64)
    if valid_only:
        keep = (d & 1).astype(bool)
        d, rec, over = d[keep], rec[keep], over[keep]
    t = (over << 31) | (rec["ts"].astype(np.int64) & 0x7FFFFFFF)
    ev = Events(t.astype(np.float64), (d >> 17) & 0x7FFF, (d >> 2) & 0x7FFF, ((d >> 1) & 1).astype(np.int8),
                _sensor(sensor_size))
    return ev.check(f"{path} (AEDAT 3.1)")


def read_dvs_gesture_labels(path: PathLike) -> np.ndarray:
    """The rows of a DVS128 Gesture ``*_labels.csv``: an ``int64 [n, 3]`` array of ``(class, startTime_usec,
    endTime_usec)`` with the csv's classes 1..11 (subtract 1 for a class index; :func:`cut_dvs_gesture` does).

    Raises:
        EventFileError: a missing file, another kind of file, a header other than
            ``class,startTime_usec,endTime_usec``, a row that is not three integers, a class outside 1..11, or an
            end time not after its start.
    """
    path = _checked_path(path, _LABELS_FORMAT)
    data = _read_all(path, _LABELS_FORMAT)
    kind = sniff(data[:64])
    if kind is not None:
        raise EventFileError(f"{path}: this is {kind}, not {_LABELS_FORMAT}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise EventFileError(f"{path}: not text (not UTF-8); expected {_LABELS_FORMAT}") from None
    rows = [r for r in csv.reader(io.StringIO(text)) if any(c.strip() for c in r)]
    if not rows:
        raise EventFileError(f"{path}: is an empty file; expected {_LABELS_FORMAT}")
    if [c.strip() for c in rows[0]] != ["class", "startTime_usec", "endTime_usec"]:
        raise EventFileError(f"{path}: header {','.join(rows[0])!r}; expected {_LABELS_FORMAT}")
    out = np.zeros((len(rows) - 1, 3), dtype=np.int64)
    for i, row in enumerate(rows[1:]):
        try:
            if len(row) != 3:
                raise ValueError
            out[i] = [int(c.strip()) for c in row]
        except ValueError:
            raise EventFileError(f"{path}: row {i + 2} {','.join(row)!r} is not three integers; expected "
                                 f"{_LABELS_FORMAT}") from None
        if not 1 <= out[i, 0] <= len(DVS_GESTURE_CLASSES):
            raise EventFileError(f"{path}: row {i + 2}: class {out[i, 0]} outside 1..{len(DVS_GESTURE_CLASSES)}")
        if out[i, 2] <= out[i, 1]:
            raise EventFileError(f"{path}: row {i + 2}: endTime_usec {out[i, 2]} is not after startTime_usec "
                                 f"{out[i, 1]}")
    return out


def cut_dvs_gesture(events: Events, labels: np.ndarray, *, relative: bool = True) -> List[Events]:
    """Cut a recording into its labelled gestures: for each row ``(class, start, end)`` of ``labels``
    (:func:`read_dvs_gesture_labels`), the events with ``start <= t < end`` µs, labelled ``class - 1`` (0..10,
    :data:`DVS_GESTURE_CLASSES`). With ``relative`` (default) their times are shifted by ``-start``, so each
    sample starts at 0 µs."""
    out = []
    for cls, start, end in np.asarray(labels, dtype=np.int64).reshape(-1, 3):
        mask = (events.t >= start) & (events.t < end)
        ev = events.select(mask)
        ev.label = int(cls) - 1
        if relative:
            ev.t = ev.t - float(start)
        out.append(ev)
    return out


def _labels_path_for(aedat: Path) -> Path:
    return aedat.with_name(aedat.stem + "_labels.csv")


def read_dvs_gesture(path: PathLike, labels_path: Optional[PathLike] = None, *,
                     relative: bool = True) -> List[Events]:
    """The labelled gestures of one DVS128 Gesture recording: :func:`read_aedat31` cut by its labels csv
    (default: ``<name>_labels.csv`` beside ``<name>.aedat``) with :func:`cut_dvs_gesture`."""
    path = Path(path)
    labels = read_dvs_gesture_labels(Path(labels_path) if labels_path is not None else _labels_path_for(path))
    return cut_dvs_gesture(read_aedat31(path), labels, relative=relative)


class DVSGestureDataset:
    """One split of DVS128 Gesture in its published layout: ``<root>/userNN_<lighting>.aedat`` with
    ``userNN_<lighting>_labels.csv`` beside each, and ``trials_to_train.txt`` / ``trials_to_test.txt`` listing the
    recordings of each split (one file name a line). ``ds[i] -> (Events, label)`` gives the ``i``-th gesture
    (times from 0 µs, label 0..10), reading a recording when first needed and keeping the last one in memory.

    Args:
        root: the ``DvsGesture`` folder.
        split: ``"train"`` or ``"test"``; or ``files``: the ``.aedat`` names to use instead of a trials list.

    Raises:
        EventFileError: a missing folder or trials list, a listed recording or labels file that is missing or
            malformed (labels are read on construction, events on access).
    """

    def __init__(self, root: PathLike, split: str = "train", files: Optional[Sequence[str]] = None):
        self.root = Path(root)
        if not self.root.is_dir():
            raise EventFileError(f"{self.root}: no such folder (expected the DvsGesture folder of .aedat "
                                 f"recordings, *_labels.csv files and trials_to_train.txt / trials_to_test.txt)")
        if files is None:
            if split not in ("train", "test"):
                raise ValueError(f"split must be 'train' or 'test', got {split!r}")
            trials = self.root / f"trials_to_{split}.txt"
            if not trials.is_file():
                raise EventFileError(f"{trials}: no such file (the DVS128 Gesture list of {split} recordings); "
                                     f"pass files=[...] to choose recordings yourself")
            files = [ln.strip() for ln in trials.read_text(encoding="utf-8", errors="replace").splitlines()
                     if ln.strip()]
        self.recordings = [self.root / name for name in files]
        self.index: List[Tuple[int, int]] = []
        self._labels: List[np.ndarray] = []
        for r, rec in enumerate(self.recordings):
            table = read_dvs_gesture_labels(_labels_path_for(rec))
            self._labels.append(table)
            self.index += [(r, j) for j in range(table.shape[0])]
        self.labels = np.asarray([self._labels[r][j, 0] - 1 for r, j in self.index], dtype=np.int64)
        self._cache: Tuple[int, Optional[List[Events]]] = (-1, None)
        self.sensor_size = DVS_GESTURE_SENSOR
        self.num_classes = len(DVS_GESTURE_CLASSES)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, index: int) -> Tuple[Events, int]:
        r, j = self.index[index]
        if self._cache[0] != r:
            self._cache = (r, cut_dvs_gesture(read_aedat31(self.recordings[r]), self._labels[r]))
        cuts = self._cache[1]
        assert cuts is not None
        return cuts[j], int(self.labels[index])

    def __repr__(self) -> str:
        return f"DVSGestureDataset({str(self.root)!r}, {len(self.recordings)} recordings, {len(self)} samples)"


# ----------------------------------------------------------------------------------------------------------------
# the common .npz conversion


def write_events_npz(path: PathLike, events: Events, *, compressed: bool = False) -> Path:
    """Save ``events`` as an ``.npz`` with arrays ``t`` (float64 µs), ``x``, ``y``, ``p``, ``sensor_size`` and,
    when set, ``label``; readable by :func:`read_events_npz`."""
    arrays: Dict[str, Any] = {"t": events.t, "x": events.x, "y": events.y, "p": events.p,
                              "sensor_size": np.asarray(events.sensor_size, dtype=np.int64)}
    if events.label is not None:
        arrays["label"] = np.asarray(events.label, dtype=np.int64)
    path = Path(path)
    with open(path, "wb") as fh:
        if compressed:
            np.savez_compressed(fh, **arrays)
        else:
            np.savez(fh, **arrays)
    return path


def read_events_npz(path: PathLike, sensor_size: Optional[Sequence[int]] = None,
                    label: Optional[int] = None) -> Events:
    """The events of an event ``.npz`` (arrays ``t`` in µs, ``x``, ``y``, ``p`` of equal length; optionally
    ``label`` and ``sensor_size``), as written by :func:`write_events_npz` or converters such as SpikingJelly's.

    ``sensor_size``: the file's own when it holds one, else this argument, else ``(128, 128, 2)`` (DVS128).
    ``label``: the file's ``label`` when present, else this argument. Nothing is unpickled.

    Raises:
        EventFileError: a missing file, not a zip/npz (said what it is), a corrupt archive, a missing array,
            arrays that hold objects, are not 1-D numbers or differ in length, or events outside the sensor.
    """
    path = _checked_path(path, _NPZ_FORMAT)
    head = read_head(path, 64)
    if not head.startswith(b"PK"):
        raise EventFileError(f"{path}: not an .npz archive (it looks like {_what_it_is(head)}); expected "
                             f"{_NPZ_FORMAT}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [k for k in ("t", "x", "y", "p") if k not in archive.files]
            if missing:
                holds = ", ".join(map(repr, archive.files)) or "no arrays"
                raise EventFileError(f"{path}: no array(s) {', '.join(map(repr, missing))} (it holds {holds}); "
                                     f"expected {_NPZ_FORMAT}")
            arrays = {k: archive[k] for k in archive.files if k in ("t", "x", "y", "p", "label", "sensor_size")}
    except EventFileError:
        raise
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as err:
        raise EventFileError(f"{path}: not a readable .npz archive (truncated, corrupt or holding pickled objects: "
                             f"{err}); expected {_NPZ_FORMAT}") from None
    lengths = {}
    for k in ("t", "x", "y", "p"):
        a = arrays[k]
        if a.ndim != 1 or (a.size and a.dtype.kind not in "iufb"):
            raise EventFileError(f"{path}: array {k!r} must be 1-D numbers, got shape {a.shape} of {a.dtype}; "
                                 f"expected {_NPZ_FORMAT}")
        lengths[k] = a.size
    if len(set(lengths.values())) != 1:
        raise EventFileError(f"{path}: arrays differ in length ({', '.join(f'{k} {n}' for k, n in lengths.items())})"
                             f"; expected {_NPZ_FORMAT}")
    size: Sequence[int] = DVS_GESTURE_SENSOR if sensor_size is None else sensor_size
    if "sensor_size" in arrays:
        size = [int(v) for v in np.asarray(arrays["sensor_size"]).reshape(-1)]
    if "label" in arrays:
        label = int(np.asarray(arrays["label"]).reshape(-1)[0])
    ev = Events(arrays["t"], arrays["x"], arrays["y"], arrays["p"].astype(np.int8), _sensor(size), label)
    return ev.check(f"{path} (event .npz)")


class EventNpzFolder:
    """A folder of event ``.npz`` files in class folders, ``<root>/<label>/<name>.npz`` (SpikingJelly's
    ``events_np/train/<label>/``): ``ds[i] -> (Events, label)``, label = the folder name (an integer) unless the
    file holds its own ``label``. Files are read on access (:func:`read_events_npz`).

    Raises:
        EventFileError: a missing folder, or no ``<integer>/*.npz`` files under it.
    """

    def __init__(self, root: PathLike, sensor_size: Sequence[int] = DVS_GESTURE_SENSOR):
        self.root = Path(root)
        if not self.root.is_dir():
            raise EventFileError(f"{self.root}: no such folder (expected <label>/<name>.npz files, {_NPZ_FORMAT})")
        self.sensor_size = _sensor(sensor_size)
        self.files: List[Path] = []
        labels: List[int] = []
        for d in sorted((d for d in self.root.iterdir() if d.is_dir() and d.name.isdigit()),
                        key=lambda d: int(d.name)):
            files = sorted(p for p in d.iterdir() if p.suffix == ".npz" and p.is_file())
            self.files += files
            labels += [int(d.name)] * len(files)
        if not self.files:
            raise EventFileError(f"{self.root}: no <label>/*.npz files (label folders are named by integers)")
        self.labels = np.asarray(labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> Tuple[Events, int]:
        ev = read_events_npz(self.files[index], self.sensor_size, int(self.labels[index]))
        return ev, ev.label if ev.label is not None else int(self.labels[index])
