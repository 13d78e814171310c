"""Bad files never crash braincore: configs, included files, checkpoints, IDX data and input files that are
missing, binary, truncated, in a wrong encoding, huge, alias bombs, too deep, malicious or inconsistent each end
in the project's error type (:class:`braincore.errors.ConfigError` or a subclass) naming the file, and the CLI
prints one line and exits 1."""
import gzip
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from braincore import config as config_module
from braincore.checkpoint import load_checkpoint, read_torch_file, save_checkpoint
from braincore.cli import main
from braincore.config import (ConfigProblems, bundled_config_dir, bundled_configs, load_config, load_file,
                              load_text, resolve_config_path, validate)
from braincore.data import DataNotFoundError, DatasetError, IDXError, load_idx_dataset, read_idx, write_idx
from braincore.data.spikes import InputFileError, load_spike_file, load_values_file
from braincore.errors import CheckpointError, ConfigError
from braincore.graph import Assembly
from braincore.simulator import Simulator

REPO = Path(__file__).resolve().parent.parent
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4

GALLERY = """\
kind: neuron_gallery
duration: 20 ms
panels:
  - {model: lif, current: 0.3 nA}
"""

NETWORK = """\
kind: assembly
duration: 5 ms
populations:
  p: {model: lif, size: 4}
"""


def fails(call, error=ConfigError, *fragments):
    """Run ``call``; it must raise ``error`` (a ConfigError) whose message holds every fragment. Returns it."""
    assert issubclass(error, ConfigError)
    with pytest.raises(ConfigError) as info:
        call()
    assert isinstance(info.value, error), f"{type(info.value).__name__}: {info.value}"
    message = str(info.value)
    for fragment in fragments:
        assert str(fragment) in message, f"{fragment!r} not in {message!r}"
    return info.value


def write(path: Path, content) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------ config files
def test_binary_configs_are_refused_with_the_file_and_what_it_looks_like(tmp_path):
    png = write(tmp_path / "logo.png", PNG)
    fails(lambda: load_config(png), ConfigError, "logo.png", "not a YAML text file", "PNG image")
    ckpt = save_checkpoint(tmp_path / "run.yaml", {"x": torch.ones(2)})  # a checkpoint named like a config
    fails(lambda: load_config(ckpt), ConfigError, "run.yaml", "zip archive")
    nul = write(tmp_path / "nul.yaml", b"kind: x\n\x00\x01\x02")
    fails(lambda: load_config(nul), ConfigError, "nul.yaml", "binary data")


def test_wrong_encoding_names_file_line_and_byte(tmp_path):
    latin = write(tmp_path / "latin.yaml", "kind: neuron_gallery\ntitle: caf\xe9\n".encode("latin-1"))
    err = fails(lambda: load_config(latin), ConfigProblems, "latin.yaml:2:", "not UTF-8", "0xe9", "column 11")
    assert "codec" not in str(err)


def test_utf8_with_bom_and_utf16_with_bom_are_read(tmp_path):
    for encoding in ("utf-8-sig", "utf-16"):
        path = write(tmp_path / f"{encoding}.yaml", GALLERY.encode(encoding))
        kind, _ = load_config(path)
        assert kind.name == "neuron_gallery"


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_empty_config(tmp_path, text):
    path = write(tmp_path / "empty.yaml", text)
    fails(lambda: load_config(path), ConfigProblems, "empty.yaml", "empty config")


def test_huge_config_is_refused_with_size_and_limit(tmp_path):
    path = tmp_path / "huge.yaml"
    with open(path, "wb") as fh:
        fh.write(b"# padding\n" * (config_module.MAX_CONFIG_BYTES // 10 + 10))
    fails(lambda: load_config(path), ConfigError, "huge.yaml", "10.0 MB", "too large", "limit 10.0 MB")


def test_alias_bomb_is_refused_quickly_with_its_line(tmp_path):
    lines = ["kind: neuron_gallery", "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    path = write(tmp_path / "laughs.yaml", "\n".join(lines) + "\n")
    err = fails(lambda: load_config(path), ConfigProblems, "laughs.yaml:3:", "alias bomb", "from 32 written")
    # refused from a count, never built: a document of 10^9 values would exhaust the memory instead
    assert int(str(err).split("expand this document to ")[1].split(" ")[0].replace(",", "")) > 10 ** 9
    # a few aliases that add little are fine (the bundled CBGT loop uses '<<: *anchor' merges)
    kind, config = validate(load_text("kind: neuron_gallery\nduration: 20 ms\npanels:\n"
                                      "  - &p {model: lif, current: 0.3 nA}\n  - *p\n  - {<<: *p, model: alif}\n",
                                      "ok.yaml"))
    assert [p["model"] for p in config["panels"]] == ["lif", "lif", "alif"]


def test_aliases_that_nest_too_deep_are_refused():
    lines = ["l0: &l0 " + "[" * 60 + "]" * 60]
    lines += [f"l{i}: &l{i} " + "[" * 60 + f"*l{i - 1}" + "]" * 60 for i in range(1, 3)]
    fails(lambda: load_text("\n".join(lines) + "\n", "nest.yaml"), ConfigProblems, "nest.yaml:2:",
          "aliases nest this document")


def test_recursive_alias_is_refused():
    fails(lambda: load_text("kind: neuron_gallery\npanels: &p [*p]\n", "self.yaml"), ConfigProblems,
          "self.yaml:2:", "recursive alias *p")
    fails(lambda: load_text("a: &m {b: {c: *m}}\n", "self2.yaml"), ConfigProblems, "recursive alias *m")


@pytest.mark.parametrize("style", ["flow", "block"])
def test_deep_nesting_is_refused_with_a_line_not_a_recursion_error(tmp_path, style):
    depth = 3000
    if style == "flow":
        text = "kind: neuron_gallery\nx: " + "[" * depth + "]" * depth + "\n"
    else:
        text = "kind: neuron_gallery\n" + "".join("  " * i + f"k{i}:\n" for i in range(depth))
    path = write(tmp_path / "deep.yaml", text)
    err = fails(lambda: load_config(path), ConfigProblems, "deep.yaml:", "nested more than 100 levels")
    line = err.problems[0].line
    assert line == (2 if style == "flow" else 101)
    # 100 levels are still read
    ok = "x: " + "[" * 99 + "]" * 99 + "\n"
    assert load_text(ok, "ok.yaml").data["x"] is not None


def test_invalid_date_and_control_character_are_located():
    fails(lambda: load_text("kind: neuron_gallery\nwhen: 2024-13-45\n", "date.yaml"), ConfigProblems,
          "date.yaml:2:", "not a valid date")
    fails(lambda: load_text("kind: neuron_gallery\ntitle: a\x07b\n", "bell.yaml"), ConfigProblems,
          "bell.yaml:2:", "unacceptable character")


@pytest.mark.parametrize("text, line, message", [
    ("kind: x\na: !!int zz\n", 2, "cannot build a !!int value"),
    ("kind: x\na: !!float x\n", 2, "cannot build a !!float value"),
    ("kind: x\na: !!timestamp 99999-1-1\n", 2, "is not a valid date"),
    ("kind: x\na: !!bool maybe\n", 2, "cannot build a !!bool value"),
    ("kind: x\n? [a, b]\n: 1\n", 2, "found unhashable key"),
    ("kind: x\n[a]: 1\n", 2, "found unhashable key"),
    ("kind: x\na: !foo 1\n", 2, "could not determine a constructor for the tag '!foo'"),
    ("kind: x\na: &x 1\nb: &x 2\n", 3, "found duplicate anchor 'x'; first occurrence at line 2"),
    ("kind: x\n--- b\n", 2, "expected a single document in the stream at line 1, but found another document"),
    ("kind: x\na: *nope\n", 2, "found undefined alias 'nope'"),
])
def test_values_that_yaml_cannot_build_are_located(text, line, message):
    err = fails(lambda: load_text(text, "v.yaml"), ConfigProblems, message)
    assert [p.line for p in err.problems] == [line]


def test_unhashable_kind_is_a_problem_not_a_type_error():
    fails(lambda: validate(load_text("kind: [a, b]\n", "k.yaml")), ConfigProblems, "k.yaml:1:", "unknown kind")


def test_python_tags_are_refused_and_never_run(tmp_path):
    marker = tmp_path / "pwned"
    text = f"kind: !!python/object/apply:os.system ['touch {marker}']\n"
    fails(lambda: load_text(text, "evil.yaml"), ConfigProblems, "evil.yaml:1:", "python/object")
    assert not marker.exists()


@pytest.mark.parametrize("text, kind", [
    (GALLERY + "duration: 30 ms\n", "neuron_gallery"),
    (NETWORK + "duration: 30 ms\n", "assembly"),
    ("kind: distributed\nassembly: a.yaml\nassembly: b.yaml\n", "distributed"),
    ("kind: two_afc\nseed: 1\nseed: 2\n", "two_afc"),
])
def test_duplicate_keys_in_every_kind(text, kind, tmp_path):
    path = write(tmp_path / f"{kind}.yaml", text)
    err = fails(lambda: load_config(path), ConfigProblems, f"{kind}.yaml:", "duplicate key (also at line")
    dup = [p for p in err.problems if "duplicate key" in p.message]
    assert len(dup) == 1 and dup[0].line == len(text.splitlines())


def test_duplicate_keys_are_reported_with_the_other_problems():
    text = "kind: neuron_gallery\npanels:\n  - {model: lif, modle: x, current: 1, current: 2}\n"
    err = fails(lambda: validate(load_text(text, "both.yaml")), ConfigProblems)
    messages = [str(p) for p in err.problems]
    assert any("panels[0].current: duplicate key" in m for m in messages)
    assert any("panels[0].modle: unknown key" in m for m in messages)


def test_missing_config_and_folder(tmp_path):
    fails(lambda: load_config(tmp_path / "nope.yaml"), ConfigError, "nope.yaml", "no such config file")
    fails(lambda: load_file(tmp_path), ConfigError, str(tmp_path), "is a folder")


# ------------------------------------------------------------------------------------------ config paths
def test_config_paths_resolve_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bundled = bundled_config_dir()
    assert resolve_config_path("configs/lif_family.yaml") == bundled / "lif_family.yaml"
    assert resolve_config_path("configs/rl/cartpole.yaml") == bundled / "rl" / "cartpole.yaml"
    assert resolve_config_path("lif_family") == bundled / "lif_family.yaml"
    assert resolve_config_path("rl/cartpole") == bundled / "rl" / "cartpole.yaml"
    # a file relative to the current folder comes first; an absolute path is used as it is
    local = write(tmp_path / "configs" / "lif_family.yaml", GALLERY)
    assert resolve_config_path("configs/lif_family.yaml") == Path("configs/lif_family.yaml")
    assert resolve_config_path(str(local)) == local
    # nothing outside the bundled folder is reached through it
    fails(lambda: resolve_config_path("../pyproject.toml"), ConfigError, "no such config file")
    fails(lambda: resolve_config_path("configs/lif_famly.yaml"), ConfigError, "configs/lif_famly.yaml",
          "did you mean lif_family.yaml")
    fails(lambda: resolve_config_path(""), ConfigError, "no config file given")


def test_bundled_configs_lists_names_and_descriptions():
    listed = dict(bundled_configs())
    assert listed["lif_family.yaml"].startswith("The integrate-and-fire family under the same step current")
    assert "rl/cartpole.yaml" in listed and "gallery.yaml" in listed
    assert len(listed) == len(list(bundled_config_dir().rglob("*.yaml")))
    assert all("\n" not in d for d in listed.values())
    for name in listed:
        assert resolve_config_path(name).is_file()


def test_cli_validate_and_run_a_bundled_path_from_another_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "configs/lif_family.yaml"]) == 0
    assert "valid neuron_gallery config" in capsys.readouterr().out
    assert main(["run", "configs/lif_family.yaml", "--no-plot", "--out", str(tmp_path / "out")]) == 0


def test_the_installed_command_reads_a_bundled_path_outside_the_repository(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "braincore", "validate", "configs/lif_family.yaml"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "valid neuron_gallery config" in done.stdout


# ------------------------------------------------------------------------------------------ includes
def _top(tmp_path, target: str) -> Path:
    return write(tmp_path / "top.yaml", NETWORK + f"include:\n  sub: {{file: {target}}}\n")


def test_include_missing_binary_folder_and_empty_are_located(tmp_path):
    top = _top(tmp_path, "missing.yaml")
    fails(lambda: load_config(top), ConfigProblems, "top.yaml:6: include.sub.file: no such file 'missing.yaml'")
    write(tmp_path / "pic.png", PNG)
    top = _top(tmp_path, "pic.png")
    fails(lambda: load_config(top), ConfigProblems, "top.yaml:6: include.sub.file: cannot include 'pic.png'",
          "PNG image")
    (tmp_path / "folder").mkdir()
    top = _top(tmp_path, "folder")
    fails(lambda: load_config(top), ConfigProblems, "top.yaml:6:", "'folder' is a folder")
    write(tmp_path / "empty.yaml", "")
    top = _top(tmp_path, "empty.yaml")
    fails(lambda: load_config(top), ConfigProblems, "top.yaml:6:", "'empty.yaml' is empty")


def test_include_problems_inside_the_included_file_name_it(tmp_path):
    write(tmp_path / "sub.yaml", NETWORK + "populations:\n  q: {model: lif, size: 2}\n")  # duplicate key
    fails(lambda: load_config(_top(tmp_path, "sub.yaml")), ConfigProblems, "sub.yaml:5: populations: duplicate key")
    write(tmp_path / "sub.yaml", "kind: assembly\npopulations: [\n")
    fails(lambda: load_config(_top(tmp_path, "sub.yaml")), ConfigProblems, "sub.yaml:3:", "YAML syntax error")
    write(tmp_path / "sub.yaml", "x: " + "[" * 500 + "]" * 500 + "\n")
    fails(lambda: load_config(_top(tmp_path, "sub.yaml")), ConfigProblems, "sub.yaml:1:", "nested more than")


def test_include_loops_are_located(tmp_path):
    write(tmp_path / "a.yaml", NETWORK + "include:\n  b: {file: b.yaml}\n")
    write(tmp_path / "b.yaml", NETWORK + "include:\n  a: {file: a.yaml}\n")
    fails(lambda: load_config(tmp_path / "a.yaml"), ConfigProblems, "b.yaml:6: include.a.file: include cycle: "
                                                                    "a.yaml -> b.yaml -> a.yaml")
    write(tmp_path / "self.yaml", NETWORK + "include:\n  me: {file: self.yaml}\n")
    fails(lambda: load_config(tmp_path / "self.yaml"), ConfigProblems, "self.yaml:6:", "include cycle")


def test_include_chains_deeper_than_the_limit_are_located(tmp_path):
    from braincore.assembly_config import MAX_INCLUDE_DEPTH

    count = MAX_INCLUDE_DEPTH + 5
    for i in range(count):
        tail = f"include:\n  next: {{file: f{i + 1}.yaml}}\n" if i + 1 < count else ""
        write(tmp_path / f"f{i}.yaml", NETWORK + tail)
    fails(lambda: load_config(tmp_path / "f0.yaml"), ConfigProblems,
          f"f{MAX_INCLUDE_DEPTH}.yaml:6: include.next.file: includes nested more than {MAX_INCLUDE_DEPTH} files deep")
    # a chain within the limit builds
    write(tmp_path / "f5.yaml", NETWORK)
    kind, config = load_config(tmp_path / "f0.yaml")
    assert "next.next.next.next.next.p" in config["_assembly"].graph


# ------------------------------------------------------------------------------------------ checkpoints
def _good(tmp_path) -> Path:
    return save_checkpoint(tmp_path / "good.ckpt", {"simulator": {"step_count": 1}, "w": torch.ones(100)})


def test_truncated_empty_and_foreign_checkpoints(tmp_path):
    raw = _good(tmp_path).read_bytes()
    cases = {
        "truncated.ckpt": (raw[: len(raw) // 2], "truncated or corrupt zip archive"),
        "empty.ckpt": (b"", "empty file, 0 bytes"),
        "random.ckpt": (np.random.default_rng(0).bytes(4096), "not a braincore checkpoint"),
        "config.ckpt": (GALLERY.encode(), "a text file"),
        "picture.ckpt": (PNG, "PNG image"),
        "gz.ckpt": (gzip.compress(raw), "gzip"),
    }
    for name, (content, reason) in cases.items():
        path = write(tmp_path / name, content)
        fails(lambda: load_checkpoint(path), CheckpointError, name, reason, "delete it or choose another file")
    np.savez(tmp_path / "arrays.npz", a=np.ones(3))
    fails(lambda: load_checkpoint(tmp_path / "arrays.npz"), CheckpointError, "arrays.npz", ".npz archive")
    with open(tmp_path / "plain.pkl", "wb") as fh:
        pickle.dump({"a": 1}, fh)
    fails(lambda: load_checkpoint(tmp_path / "plain.pkl"), CheckpointError, "plain.pkl", "pickle")
    damaged = bytearray(raw)
    start = raw.index(b"data.pkl") + 60
    damaged[start:start + 40] = b"\xff" * 40
    path = write(tmp_path / "damaged.ckpt", bytes(damaged))
    fails(lambda: load_checkpoint(path), CheckpointError, "damaged.ckpt", "not a braincore checkpoint")
    fails(lambda: load_checkpoint(tmp_path / "none.ckpt"), CheckpointError, "none.ckpt", "no such checkpoint")
    fails(lambda: load_checkpoint(tmp_path), CheckpointError, "is a folder")


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("writer, reason", [("torch.save", "refused: the file holds pickled code or objects "
                                                           "(posix.system)"),
                                            ("torch.save legacy", "refused"),
                                            ("pickle 2", "refused"),
                                            ("pickle 4", "a plain Python pickle")])
def test_a_pickle_that_runs_code_is_refused_and_never_runs(tmp_path, writer, reason):
    marker = tmp_path / "pwned"
    payload = {"format_version": 1, "simulator": _Evil(marker)}
    path = tmp_path / "evil.ckpt"
    if writer.startswith("pickle"):
        with open(path, "wb") as fh:
            pickle.dump(payload, fh, protocol=int(writer[-1]))
    else:
        torch.save(payload, path, _use_new_zipfile_serialization=writer == "torch.save")
    assert not marker.exists()
    fails(lambda: load_checkpoint(path), CheckpointError, "evil.ckpt", reason)
    fails(lambda: Simulator(_network(3)).load(path), CheckpointError, "evil.ckpt", reason)
    assert not marker.exists()
    if writer.startswith("pickle"):  # the same file through plain pickle does run the command
        with open(path, "rb") as fh:
            pickle.load(fh)
        assert marker.exists()


def test_checkpoints_of_another_kind_or_format(tmp_path):
    torch.save(torch.ones(3), tmp_path / "tensor.pt")
    fails(lambda: load_checkpoint(tmp_path / "tensor.pt"), CheckpointError, "tensor.pt", "holding a Tensor")
    torch.save({"w": torch.ones(3)}, tmp_path / "nover.pt")
    fails(lambda: load_checkpoint(tmp_path / "nover.pt"), CheckpointError, "nover.pt", "without a format_version")
    torch.save({"format_version": 99}, tmp_path / "future.pt")
    fails(lambda: load_checkpoint(tmp_path / "future.pt"), CheckpointError, "future.pt", "of format 99")
    good = _good(tmp_path)
    fails(lambda: load_checkpoint(good, keys=("simulator", "model")), CheckpointError, "good.ckpt",
          "without 'model'", "it holds: format_version, simulator, w")
    assert load_checkpoint(good, keys=("simulator",))["simulator"] == {"step_count": 1}


def _network(size: int) -> Assembly:
    a = Assembly(name=f"net{size}")
    a.add_population("p", "lif", size)
    a.set_run(duration=1.0, dt=0.1, seed=1)
    return a


def test_simulator_load_of_another_network_or_a_foreign_checkpoint(tmp_path):
    sim = Simulator(_network(5))
    sim.run(1.0)
    path = sim.save(tmp_path / "sim.ckpt")
    assert Simulator(_network(5)).load(path).step_count == sim.step_count
    other = Assembly(name="other")
    other.add_population("q", "lif", 5)
    other.set_run(duration=1.0, dt=0.1, seed=1)
    fails(lambda: Simulator(other).load(path), CheckpointError, "sim.ckpt", "does not fit this assembly")
    trainer_like = save_checkpoint(tmp_path / "trainer.ckpt", {"model": {}, "optimizer": {}})
    fails(lambda: Simulator(_network(5)).load(trainer_like), CheckpointError, "trainer.ckpt", "without 'simulator'")
    write(tmp_path / "cut.ckpt", path.read_bytes()[:100])
    fails(lambda: Simulator(_network(5)).load(tmp_path / "cut.ckpt"), CheckpointError, "cut.ckpt", "truncated")


def test_trainer_resume_from_a_simulator_checkpoint(tmp_path):
    from braincore.training.trainer import Trainer

    sim = Simulator(_network(3))
    path = sim.save(tmp_path / "sim.ckpt")
    trainer = Trainer(torch.nn.Linear(2, 2), lambda *a: None, progress=False)
    fails(lambda: trainer.resume(path), CheckpointError, "sim.ckpt", "does not fit this model and trainer",
          "missing model")


def test_task_checkpoints_keep_the_config_key_check_and_say_how_to_start_over(tmp_path):
    from tasks.common import load_resumable

    path = save_checkpoint(tmp_path / "task.ckpt", {"config_key": "abc"})
    assert load_resumable(path, "abc", True)["config_key"] == "abc"
    fails(lambda: load_resumable(path, "xyz", True), ConfigError, "task.ckpt", "another configuration")
    write(path, b"")
    fails(lambda: load_resumable(path, "abc", True), CheckpointError, "task.ckpt", "choose another --out")


def test_read_torch_file_names_what_it_reads(tmp_path):
    path = write(tmp_path / "result.rank1.pt", b"garbage, not torch")
    fails(lambda: read_torch_file(path, "rank result", hint="rerun"), CheckpointError, "result.rank1.pt",
          "not a braincore rank result", "rerun")


# ------------------------------------------------------------------------------------------ IDX data
def _dataset(folder: Path, n_images=6, n_labels=6):
    folder.mkdir(parents=True, exist_ok=True)
    write_idx(folder / "train-images-idx3-ubyte", np.zeros((n_images, 4, 4), np.uint8))
    write_idx(folder / "train-labels-idx1-ubyte", np.zeros(n_labels, np.uint8))
    return folder


def test_idx_files_that_are_bad(tmp_path):
    good = write_idx(tmp_path / "good-idx3-ubyte", np.arange(48, dtype=np.uint8).reshape(3, 4, 4))
    raw = good.read_bytes()
    cases = {
        "truncated": (raw[:-5], "truncated data"),
        "header": (raw[:6], "truncated header"),
        "magic": (b"\x01\x02" + raw[2:], "bad magic"),
        "type": (raw[:2] + b"\x07" + raw[3:], "unknown type code"),
        "trailing": (raw + b"\x00", "trailing data"),
        "empty": (b"", "empty file"),
        "gz": (gzip.compress(raw)[:-10], "gzip"),
        "text": (b"hello\n", "bad magic"),
    }
    for name, (content, reason) in cases.items():
        path = write(tmp_path / f"{name}-idx3-ubyte", content)
        fails(lambda: read_idx(path), IDXError, path.name, reason)
    err = fails(lambda: read_idx(tmp_path / "none-idx3-ubyte"), IDXError, "none-idx3-ubyte", "no such IDX file")
    assert isinstance(err, FileNotFoundError)
    fails(lambda: read_idx(tmp_path), IDXError, "is a folder")


def test_idx_datasets_that_are_bad(tmp_path):
    fails(lambda: load_idx_dataset(_dataset(tmp_path / "a", 6, 5)), DatasetError, "6 images", "5 labels")
    folder = _dataset(tmp_path / "b")
    write_idx(folder / "train-images-idx3-ubyte", np.zeros(6, np.uint8))  # labels in the images slot
    fails(lambda: load_idx_dataset(folder), DatasetError, "train-images-idx3-ubyte", "uint8 images")
    (tmp_path / "c").mkdir()
    err = fails(lambda: load_idx_dataset(tmp_path / "c"), DataNotFoundError, str(tmp_path / "c"),
                "train-images-idx3-ubyte.gz")
    assert isinstance(err, FileNotFoundError)
    fails(lambda: load_idx_dataset(tmp_path / "nothing"), DataNotFoundError, "nothing", "no such data folder")
    folder = _dataset(tmp_path / "d")
    write(folder / "train-labels-idx1-ubyte", b"\x00\x00\x08\x01\x00\x00\x00\x09\x00")
    fails(lambda: load_idx_dataset(folder), IDXError, "train-labels-idx1-ubyte", "truncated data")


# ------------------------------------------------------------------------------------------ input files
def _spikes(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


def test_spike_files_that_are_bad(tmp_path):
    t, n = np.array([1.0, 2.0, 3.0]), np.array([0, 1, 2])
    cases = [
        (dict(neurons=n), "no array 'times' (it holds 'neurons')"),
        (dict(times=t), "no array 'neurons'"),
        (dict(times=t, neurons=n[:2]), "'times' has 3 entries but 'neurons' has 2"),
        (dict(times=np.array([1.0, -2.0, 3.0]), neurons=n), "must be >= 0 ms; negative: 1 of 3, the first -2.0 at "
                                                           "index 1"),
        (dict(times=np.array([1.0, np.nan, np.inf]), neurons=n), "must be finite"),
        (dict(times=np.array([1.0, 1e300, 3.0]), neurons=n), "must be <= 1e+12"),
        (dict(times=t, neurons=np.array([0, 3, 9])), "indices must be in 0..3 of population p (4 neurons); out of "
                                                    "range: 1 of 3, the first 9 at index 2"),
        (dict(times=t, neurons=np.array([0, -1, 2])), "out of range"),
        (dict(times=t, neurons=np.array([0, 2 ** 64 - 1, 1], dtype=np.uint64)), "out of range"),
        (dict(times=t, neurons=np.array([0.0, 1.5, 2.0])), "not integers"),
        (dict(times=t.reshape(3, 1), neurons=n), "must be 1-D"),
        (dict(times=np.array(["a", "b", "c"]), neurons=n), "must hold numbers"),
        (dict(times=np.array([1.0, None, 2.0], dtype=object), neurons=n), "holds Python objects"),
    ]
    for i, (arrays, reason) in enumerate(cases):
        path = _spikes(tmp_path / f"s{i}.npz", **arrays)
        fails(lambda: load_spike_file(path, 4, target="population p"), InputFileError, f"s{i}.npz", reason)
    good = _spikes(tmp_path / "good.npz", times=t, neurons=n.astype(np.float32), other=np.ones(2))
    times, neurons = load_spike_file(good, 4)
    assert times.dtype == np.float64 and neurons.dtype == np.int64 and neurons.tolist() == [0, 1, 2]
    raw = good.read_bytes()
    other = {
        "missing.npz": (None, "no such spike file"),
        "empty.npz": (b"", "empty spike file"),
        "text.npz": (b"times,neurons\n1,2\n", "not an .npz archive (it looks like a text file)"),
        "truncated.npz": (raw[: len(raw) // 2], "truncated or corrupt"),
    }
    for name, (content, reason) in other.items():
        if content is not None:
            write(tmp_path / name, content)
        fails(lambda: load_spike_file(tmp_path / name, 4), InputFileError, name, reason)
    np.save(tmp_path / "array.npy", t)
    fails(lambda: load_spike_file(tmp_path / "array.npy", 4), InputFileError, "array.npy", "NumPy .npy array")
    fails(lambda: load_spike_file(tmp_path, 4), InputFileError, "is a folder")


def test_value_files_that_are_bad(tmp_path):
    cases = [
        (np.ones((3, 2, 2)), "got shape (3, 2, 2)"),
        (np.zeros(0), "non-empty"),
        (np.ones((3, 3)), "3 columns, but the input has 4 target neuron(s)"),
        (np.array([0.0, np.nan]), "must be finite; 1 are not, the first nan at index 1"),
        (np.array(["x"]), "must be numbers"),
    ]
    for i, (array, reason) in enumerate(cases):
        np.save(tmp_path / f"v{i}.npy", array)
        fails(lambda: load_values_file(tmp_path / f"v{i}.npy", 4), InputFileError, f"v{i}.npy", reason)
    np.save(tmp_path / "obj.npy", np.array([1, None], dtype=object), allow_pickle=True)
    fails(lambda: load_values_file(tmp_path / "obj.npy", 4), InputFileError, "obj.npy", "Python objects")
    write(tmp_path / "cut.npy", (tmp_path / "v0.npy").read_bytes()[:90])
    fails(lambda: load_values_file(tmp_path / "cut.npy", 4), InputFileError, "cut.npy", "truncated or corrupt")
    _spikes(tmp_path / "z.npz", a=np.ones(2))
    fails(lambda: load_values_file(tmp_path / "z.npz", 4), InputFileError, "z.npz", "not an .npy array")
    np.save(tmp_path / "ok.npy", np.ones((5, 4)))
    assert load_values_file(tmp_path / "ok.npy", 4).shape == (5, 4)


def _replay(path: Path) -> Assembly:
    a = Assembly(name="replay")
    a.add_population("p", "lif", 4)
    a.add_input("file", "spike_file", "p", path=str(path), weight="1 mV")
    a.set_run(duration=5.0, dt=0.1, seed=1)
    return a


def test_the_simulator_reads_spike_files_through_the_checks(tmp_path):
    bad = _spikes(tmp_path / "bad.npz", times=np.array([1.0, 2.0]), neurons=np.array([0, 7]))
    # the assembly's validation reads the file first (a located ConfigError); the file checks are the same
    fails(lambda: Simulator(_replay(bad)), ConfigError, "bad.npz", "0..3")
    fails(lambda: Simulator(_replay(_spikes(tmp_path / "few.npz", times=np.ones(2)))), ConfigError,
          "few.npz", "'neurons'")
    good = _spikes(tmp_path / "good.npz", times=np.array([1.0, 1.04, 2.0]), neurons=np.array([0, 0, 3]))
    sim = Simulator(_replay(good))
    assert sim.inputs[0].spike_steps.tolist() == [10, 10, 20]


def test_the_simulator_reads_value_files_through_the_checks(tmp_path):
    np.save(tmp_path / "wide.npy", np.ones((10, 3)))
    a = Assembly(name="drive")
    a.add_population("p", "lif", 4)
    a.add_input("i", "time_varying_current", "p", values=str(tmp_path / "wide.npy"))
    a.set_run(duration=1.0, dt=0.1, seed=1)
    fails(lambda: Simulator(a), ConfigError, "wide.npy", "3 columns")


# ------------------------------------------------------------------------------------------ the CLI
def _one_line_error(capsys, command: str, *fragments):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"braincore {command}: error: ")
    assert "Traceback" not in err[0]
    for fragment in fragments:
        assert fragment in err[0], err[0]


def test_cli_prints_one_line_and_exits_1(tmp_path, capsys):
    png = write(tmp_path / "logo.png", PNG)
    assert main(["run", str(png)]) == 1
    _one_line_error(capsys, "run", "logo.png", "PNG image")
    assert main(["validate", str(png), "--json"]) == 1
    assert '"ok": false' in capsys.readouterr().out

    deep = write(tmp_path / "deep.yaml", "x: " + "[" * 5000 + "]" * 5000 + "\n")
    assert main(["run", str(deep)]) == 1
    _one_line_error(capsys, "run", "deep.yaml:1:", "nested more than 100 levels")

    latin = write(tmp_path / "latin.yaml", "kind: neuron_gallery\ntitle: \xe9\n".encode("latin-1"))
    assert main(["graph", str(latin)]) == 1
    captured = capsys.readouterr()
    assert "latin.yaml:2: not UTF-8 text" in captured.out
    assert captured.err.strip().splitlines()[-1] == f"braincore graph: error: 1 problem(s) in {latin}"

    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    bomb = write(tmp_path / "bomb.yaml", "\n".join(lines) + "\n")
    assert main(["validate", str(bomb)]) == 1
    assert "bomb.yaml:2: YAML aliases expand" in capsys.readouterr().out

    bad = _spikes(tmp_path / "stim.npz", times=np.array([1.0]), neurons=np.array([99]))
    net = write(tmp_path / "net.yaml", NETWORK + f"inputs:\n  - {{type: spike_file, target: p, path: {bad.name}, "
                                                 f"weight: 1 mV}}\n")
    assert main(["run", str(net), "--no-plot", "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("braincore run: error: ") and "stim.npz" in err[-1] and "0..3" in err[-1]
