"""IDX reader/writer (braincore.data.idx) and the MNIST-shaped dataset loader (braincore.data.datasets)."""
import gzip
import hashlib

import numpy as np
import pytest
import torch

from braincore.data import (
    ENV_VAR,
    IDX_TYPES,
    Dataset,
    DatasetError,
    IDXError,
    default_data_root,
    datasets,
    find_idx_file,
    load_dataset,
    load_idx_dataset,
    parse_idx,
    read_idx,
    resolve_data_dir,
    train_validation_split,
    write_idx,
)

CODES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.int16, 0x0C: np.int32, 0x0D: np.float32, 0x0E: np.float64}


def _sample(dtype, shape=(3, 4, 5), seed=0):
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt.kind == "f":
        a = rng.standard_normal(shape).astype(dt)
        flat = a.reshape(-1)
        flat[:4] = [np.inf, -np.inf, np.finfo(dt).max, np.finfo(dt).tiny]
        return a
    info = np.iinfo(dt)
    a = rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dt)
    flat = a.reshape(-1)
    flat[:2] = [info.min, info.max]
    return a


# ----------------------------------------------------------------------------------------------- IDX format


def test_type_table_matches_spec():
    assert {c: np.dtype(t) for c, t in CODES.items()} == {c: d.newbyteorder("=") for c, d in IDX_TYPES.items()}


@pytest.mark.parametrize("use_gzip", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("code", sorted(CODES), ids=[np.dtype(CODES[c]).name for c in sorted(CODES)])
def test_round_trip_every_type(tmp_path, code, use_gzip):
    a = _sample(CODES[code])
    path = write_idx(tmp_path / "a.idx", a, gzip=use_gzip)
    raw = path.read_bytes()
    assert (raw[:2] == b"\x1f\x8b") == use_gzip
    header = (gzip.decompress(raw) if use_gzip else raw)[:4]
    assert header == bytes([0, 0, code, 3])
    b = read_idx(path)
    assert b.dtype == a.dtype and b.dtype.isnative and b.shape == a.shape
    np.testing.assert_array_equal(b, a)
    assert b.flags.writeable and b.flags.c_contiguous
    b[...] = 0  # a private copy, not a view of the file buffer


@pytest.mark.parametrize("shape", [(), (0,), (0, 28, 28), (7,), (2, 1, 3, 1)])
def test_round_trip_shapes(tmp_path, shape):
    a = np.arange(int(np.prod(shape)), dtype=np.int16).reshape(shape) - 3
    b = read_idx(write_idx(tmp_path / "s", a))
    assert b.shape == shape
    np.testing.assert_array_equal(b, a)


def test_exact_bytes_big_endian(tmp_path):
    path = write_idx(tmp_path / "x", np.array([[1, 258, -2]], dtype=np.int32))
    assert path.read_bytes() == (
        b"\x00\x00\x0c\x02" + b"\x00\x00\x00\x01\x00\x00\x00\x03"
        + b"\x00\x00\x00\x01" + b"\x00\x00\x01\x02" + b"\xff\xff\xff\xfe"
    )
    # byte order of the input does not matter; torch tensors are accepted
    big = np.array([1.5, -2.0], dtype=">f8")
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "b", big)), big)
    t = torch.arange(6, dtype=torch.uint8).reshape(2, 3)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "t", t)), t.numpy())


def test_gzip_detected_by_magic_not_suffix(tmp_path):
    a = _sample(np.uint8, (4, 6))
    write_idx(tmp_path / "really-gzip", a, gzip=True)
    write_idx(tmp_path / "really-plain.gz", a, gzip=False)
    np.testing.assert_array_equal(read_idx(tmp_path / "really-gzip"), a)
    np.testing.assert_array_equal(read_idx(str(tmp_path / "really-plain.gz")), a)
    # deterministic gzip output (mtime 0)
    first, second = write_idx(tmp_path / "g1", a, gzip=True), write_idx(tmp_path / "g2", a, gzip=True)
    assert first.read_bytes() == second.read_bytes()


def test_parse_idx_from_bytes():
    data = b"\x00\x00\x08\x01\x00\x00\x00\x03\x07\x08\x09"
    np.testing.assert_array_equal(parse_idx(data), [7, 8, 9])
    with pytest.raises(IDXError, match="<bytes>"):
        parse_idx(data[:-1])


def _write(tmp_path, name, data, compress=False):
    p = tmp_path / name
    p.write_bytes(gzip.compress(data) if compress else data)
    return p


@pytest.mark.parametrize(
    "data, pattern",
    [
        (b"", r"empty file"),
        (b"\x00\x00", r"truncated header"),
        (b"\x00\x01\x08\x01\x00\x00\x00\x01\x00", r"bad magic.*00 01"),
        (b"PK\x03\x04" + b"\x00" * 8, r"bad magic"),
        (b"\x00\x00\x0a\x01\x00\x00\x00\x01\x00", r"unknown type code 0x0A"),
        (b"\x00\x00\x07\x01\x00\x00\x00\x01\x00", r"unknown type code 0x07"),
        (b"\x00\x00\x08\x03\x00\x00\x00\x02\x00\x00", r"truncated header.*3 dimension.*16 header bytes, got 10"),
        (b"\x00\x00\x0b\x02\x00\x00\x00\x02\x00\x00\x00\x03" + b"\x00" * 11,
         r"truncated data.*expected 12 data bytes.*got 11"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x02\x01\x02\x03", r"trailing data.*expected 2 data bytes.*got 3"),
    ],
    ids=["empty", "short", "magic", "zip", "code0A", "code07", "dims", "truncated", "trailing"],
)
@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_errors(tmp_path, data, pattern, compress):
    path = _write(tmp_path, "bad-file-idx", data, compress)
    with pytest.raises(IDXError, match=pattern) as info:
        read_idx(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_gzip_errors_and_missing_file(tmp_path):
    good = gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x04" + bytes(range(4)) * 50)
    p = _write(tmp_path, "cut.gz", good[: len(good) // 2])
    with pytest.raises(IDXError, match=r"cut\.gz.*(corrupt|truncated) gzip"):
        read_idx(p)
    p = _write(tmp_path, "garbage.gz", b"\x1f\x8b" + b"\xff" * 30)
    with pytest.raises(IDXError, match="gzip"):
        read_idx(p)
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope")


@pytest.mark.parametrize("dtype", [np.int64, np.uint16, np.float16, np.bool_, np.complex64])
def test_write_rejects_unsupported_dtype(tmp_path, dtype):
    with pytest.raises(TypeError, match="no IDX type code"):
        write_idx(tmp_path / "x", np.zeros(3, dtype=dtype))


# ----------------------------------------------------------------------------------------------- datasets


def _make_dataset(root, n_train=20, n_test=8, size=28, compress=False, dotted=False, seed=0):
    """Write a tiny MNIST-shaped dataset; returns {split: (images, labels)}."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, prefix, n in (("train", "train", n_train), ("test", "t10k", n_test)):
        images = rng.integers(0, 256, size=(n, size, size), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        sep = "." if dotted else "-"
        suffix = ".gz" if compress else ""
        write_idx(root / f"{prefix}-images{sep}idx3-ubyte{suffix}", images, gzip=compress)
        write_idx(root / f"{prefix}-labels{sep}idx1-ubyte{suffix}", labels, gzip=compress)
        out[split] = (images, labels)
    return out


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize("dotted", [False, True], ids=["dash", "dotted"])
def test_load_synthetic(tmp_path, compress, dotted):
    ref = _make_dataset(tmp_path / "mnist", compress=compress, dotted=dotted)
    for split, n in (("train", 20), ("test", 8)):
        images, labels = load_idx_dataset(tmp_path / "mnist", split)
        assert images.shape == (n, 28, 28) and images.dtype == np.uint8
        assert labels.shape == (n,) and labels.dtype == np.int64
        np.testing.assert_array_equal(images, ref[split][0])
        np.testing.assert_array_equal(labels, ref[split][1])
    ti, tl = load_idx_dataset(tmp_path / "mnist", "test", as_torch=True)
    assert ti.dtype == torch.uint8 and tl.dtype == torch.int64 and ti.shape == (8, 28, 28)
    assert torch.equal(tl, torch.from_numpy(ref["test"][1].astype(np.int64)))


def test_load_dataset_dataclass(tmp_path):
    _make_dataset(tmp_path / "mnist", n_train=20)
    ds = load_dataset("train", tmp_path)  # parent folder with mnist/ inside
    assert isinstance(ds, Dataset)
    assert (ds.name, ds.split, len(ds), ds.image_shape, ds.num_classes) == ("mnist", "train", 20, (28, 28), 10)


def test_load_errors(tmp_path):
    d = tmp_path / "d"
    _make_dataset(d)
    with pytest.raises(ValueError, match="split"):
        load_idx_dataset(d, "validation")
    # images / labels count mismatch
    write_idx(d / "t10k-labels-idx1-ubyte", np.zeros(7, np.uint8))
    with pytest.raises(DatasetError, match=r"8 images.*7 labels"):
        load_idx_dataset(d, "test")
    # label out of range
    write_idx(d / "t10k-labels-idx1-ubyte", np.array([0, 1, 2, 3, 4, 5, 6, 10], np.uint8))
    with pytest.raises(DatasetError, match=r"out of range 0\.\.9.*10 at index 7"):
        load_idx_dataset(d, "test")
    assert load_idx_dataset(d, "test", num_classes=11)[1].max() == 10
    write_idx(d / "t10k-labels-idx1-ubyte", np.array([0, 1, 2, 3, 4, 5, 6, -1], np.int8))
    with pytest.raises(DatasetError, match="out of range"):
        load_idx_dataset(d, "test", num_classes=None)
    # wrong rank / dtype of images
    write_idx(d / "train-images-idx3-ubyte", np.zeros((20, 784), np.uint8))
    with pytest.raises(DatasetError, match="uint8 images"):
        load_idx_dataset(d, "train")
    write_idx(d / "train-images-idx3-ubyte", np.zeros((20, 28, 28), np.float32))
    with pytest.raises(DatasetError, match="uint8 images"):
        load_idx_dataset(d, "train")
    # missing file: the message lists the names tried
    (d / "train-images-idx3-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match=r"train-images-idx3-ubyte\.gz.*train-images\.idx3-ubyte"):
        load_idx_dataset(d, "train")
    # a malformed file surfaces as IDXError
    (d / "t10k-images-idx3-ubyte").write_bytes(b"\x00\x00\x08")
    with pytest.raises(IDXError, match="t10k-images"):
        load_idx_dataset(d, "test")


def test_find_idx_file_prefers_plain(tmp_path):
    a = np.zeros(3, np.uint8)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", a, gzip=True)
    assert find_idx_file(tmp_path, "train", "labels").name == "train-labels-idx1-ubyte.gz"
    write_idx(tmp_path / "train-labels-idx1-ubyte", a)
    assert find_idx_file(tmp_path, "train", "labels").name == "train-labels-idx1-ubyte"
    with pytest.raises(ValueError, match="kind"):
        find_idx_file(tmp_path, "train", "pixels")


# ----------------------------------------------------------------------------------------------- resolution


@pytest.fixture
def no_defaults(monkeypatch, tmp_path):
    """No $BRAINCORE_DATA and an empty shared data root."""
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setattr(datasets, "default_data_root", lambda: tmp_path / "no-shared")


def test_resolve_explicit(tmp_path, no_defaults):
    _make_dataset(tmp_path / "root" / "mnist", n_train=3, n_test=2)
    assert resolve_data_dir(tmp_path / "root" / "mnist") == (tmp_path / "root" / "mnist").resolve()
    assert resolve_data_dir(str(tmp_path / "root")) == (tmp_path / "root" / "mnist").resolve()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_data_dir(tmp_path / "missing")


def test_resolve_env(tmp_path, monkeypatch, no_defaults):
    _make_dataset(tmp_path / "root" / "mnist", n_train=3, n_test=2)
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "root"))
    assert resolve_data_dir() == (tmp_path / "root" / "mnist").resolve()
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "root" / "mnist"))  # the dataset folder itself
    assert resolve_data_dir() == (tmp_path / "root" / "mnist").resolve()
    assert len(load_dataset("test")) == 2
    # an explicit argument wins over the environment
    _make_dataset(tmp_path / "other", n_train=4, n_test=1)
    assert resolve_data_dir(tmp_path / "other") == (tmp_path / "other").resolve()
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match=ENV_VAR):
        resolve_data_dir()


def test_resolve_shared_default_and_not_found(tmp_path, monkeypatch, no_defaults):
    with pytest.raises(FileNotFoundError) as info:
        resolve_data_dir(name="fashion")
    msg = str(info.value)
    assert ENV_VAR in msg and str(tmp_path / "no-shared" / "fashion") in msg and "download" in msg
    (tmp_path / "no-shared" / "fashion").mkdir(parents=True)
    assert resolve_data_dir(name="fashion") == (tmp_path / "no-shared" / "fashion").resolve()


def test_default_data_root_is_next_to_repo():
    import braincore

    repo = __import__("pathlib").Path(braincore.__file__).resolve().parent.parent
    assert default_data_root() == repo.parent / "shared" / "data"


# ----------------------------------------------------------------------------------------------- splits


def test_split_deterministic_and_disjoint():
    tr, va = train_validation_split(100, 0.2, seed=3)
    tr2, va2 = train_validation_split(100, 0.2, seed=3)
    np.testing.assert_array_equal(tr, tr2)
    np.testing.assert_array_equal(va, va2)
    assert len(tr) == 80 and len(va) == 20 and tr.dtype == va.dtype == np.int64
    assert not set(tr) & set(va)
    np.testing.assert_array_equal(np.sort(np.concatenate([tr, va])), np.arange(100))
    assert np.all(np.diff(tr) > 0) and np.all(np.diff(va) > 0)
    assert not np.array_equal(train_validation_split(100, 0.2, seed=4)[1], va)
    # pinned values: numpy's default_rng (PCG64) permutation is stable across versions and platforms
    np.testing.assert_array_equal(train_validation_split(10, 3, seed=0)[1], [2, 4, 6])


def test_split_sizes_and_errors():
    assert [len(x) for x in train_validation_split(10, 0)] == [10, 0]
    assert [len(x) for x in train_validation_split(10, 10)] == [0, 10]
    assert [len(x) for x in train_validation_split(60000, 5000)] == [55000, 5000]
    assert [len(x) for x in train_validation_split(7, 0.5)] == [3, 4]  # round(3.5) == 4
    for bad in (-1, 11, 1.5, -0.1):
        with pytest.raises(ValueError):
            train_validation_split(10, bad)
    with pytest.raises(TypeError):
        train_validation_split(10, True)


# ----------------------------------------------------------------------------------------------- real MNIST


@pytest.fixture(scope="module")
def real_mnist():
    path = default_data_root() / "mnist"
    if not (path / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"MNIST not found under {path}")
    return path


def test_real_mnist(real_mnist):
    images, labels = load_idx_dataset(real_mnist, "train")
    assert images.shape == (60000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (60000,) and labels.dtype == np.int64
    counts = np.bincount(labels, minlength=10)
    assert len(counts) == 10 and counts.min() > 0 and counts.sum() == 60000
    assert counts[:3].tolist() == [5923, 6742, 5958]
    assert images.max() == 255 and images.min() == 0
    t_images, t_labels = load_idx_dataset(real_mnist, "test")
    assert t_images.shape == (10000, 28, 28) and t_labels.shape == (10000,)
    assert set(np.unique(t_labels).tolist()) == set(range(10))

    raw = gzip.decompress((real_mnist / "train-labels-idx1-ubyte.gz").read_bytes())
    assert hashlib.md5(raw).hexdigest() == "a25bea736e30d166cdddb491f175f624"
    np.testing.assert_array_equal(parse_idx(raw), labels)


def test_real_mnist_writer_reproduces_original(real_mnist, tmp_path):
    raw = gzip.decompress((real_mnist / "t10k-labels-idx1-ubyte.gz").read_bytes())
    out = write_idx(tmp_path / "labels", read_idx(real_mnist / "t10k-labels-idx1-ubyte.gz"))
    assert out.read_bytes() == raw
    assert hashlib.md5(raw).hexdigest() == "27ae3e4e09519cfbb04c329615203637"
