"""The ``braincore`` command as a person uses it (issue 16): usage errors name the subcommand, ``--json`` ends
stdout with exactly one JSON line for every command and kind, ``--out`` writes what its help says, a saved run
can be plotted again with a chosen subset of neurons, ``regions`` and ``configs`` describe what they list,
silent phases show a heartbeat, ``--help`` does not load PyTorch, and Ctrl-C stops a run with exit code 130, a
one-line message and (for a training) a checkpoint that the next run resumes."""
import io
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from ctrl_c import needs_sigint

from braincore.cli import main
from braincore.progress import Heartbeat

ROOT = Path(__file__).resolve().parent.parent

SMALL_NET = """\
kind: assembly
name: small
dt: 0.1 ms
duration: 100 ms
seed: 3
populations:
  exc: {model: lif, size: 30, params: {tau_m: 20 ms, v_th: -50 mV, t_ref: 2 ms}}
  inh: {model: lif, size: 10, params: {tau_m: 10 ms, v_th: -50 mV}}
projections:
  - {pre: exc, post: inh, connector: {type: fixed_probability, p: 0.3}, weight: 1.0 mV}
  - {pre: inh, post: exc, connector: {type: fixed_probability, p: 0.3}, weight: -1.0 mV}
inputs:
  - {name: drive, type: poisson, target: exc, rate: 20 Hz, weight: 3 mV, sources: 40}
  - {name: drive_inh, type: poisson, target: inh, rate: 20 Hz, weight: 3 mV, sources: 40}
monitors:
  - {name: exc_spikes, type: spikes, target: exc}
  - {name: inh_spikes, type: spikes, target: inh}
  - {name: exc_v, type: state, target: exc, variables: [v], neurons: [0, 1, 2]}
  - {name: exc_rate, type: rate, target: exc, bin: 5 ms}
"""


def _small_classifier(epochs: int = 1, name: str = "tiny_patterns") -> str:
    """The bundled spike-pattern classifier, small (or long: many epochs)."""
    text = (ROOT / "configs" / "perception" / "spike_patterns.yaml").read_text()
    text = re.sub(r"train: \d+, test: \d+", "train: 300, test: 100", text)
    text = text.replace("name: spike_patterns", f"name: {name}")
    text = re.sub(r"epochs: \d+", f"epochs: {epochs}", text)
    return re.sub(r"validation: \d+", "validation: 50", text)


def _json_lines(out: str) -> list:
    found = []
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                found.append(json.loads(line))
            except ValueError:
                pass
    return found


def _one_final_json(out: str) -> dict:
    """stdout must end with its only JSON line."""
    found = _json_lines(out)
    assert len(found) == 1, f"{len(found)} JSON lines on stdout:\n{out[-2000:]}"
    assert json.loads(out.strip().splitlines()[-1]) == found[0]
    return found[0]


# ------------------------------------------------------------------------------------------ usage
@pytest.mark.parametrize("argv, usage, reason", [
    (["run", "--bogus"], "usage: braincore run ", "unrecognized arguments: --bogus"),
    (["plot"], "usage: braincore plot ", "say what to plot"),
    (["plot", "neuron"], "usage: braincore plot neuron ", "the following arguments are required: model"),
    (["plot", "neuron", "lif", "--bogus", "1"], "usage: braincore plot neuron ", "unrecognized arguments: --bogus 1"),
    (["plot", "run"], "usage: braincore plot run ", "required: npz"),
    (["plot", "run", "x.npz", "--neurons", "9:3"], "usage: braincore plot run ", "give N"),
    (["validate"], "usage: braincore validate ", "required: config"),
    (["models", "--bogus"], "usage: braincore models ", "unrecognized arguments: --bogus"),
    (["bogus"], "usage: braincore ", "invalid choice: 'bogus'"),
])
def test_a_bad_argument_prints_the_subcommands_own_usage(capsys, argv, usage, reason):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(usage), captured.err
    assert reason in captured.err.strip().splitlines()[-1], captured.err
    assert captured.out == ""
    assert main(argv + ["--json"]) == 2                 # (`plot --json`: plot itself has no --json)
    captured = capsys.readouterr()
    failure = _one_final_json(captured.out)
    assert failure["ok"] is False and failure["error"] in captured.err.strip().splitlines()[-1]


def test_help_exits_zero_in_process(capsys):
    assert main(["--help"]) == 0
    assert "configs" in capsys.readouterr().out
    assert main(["plot", "run", "--help"]) == 0
    assert "--neurons" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------ --json, --out
def test_json_is_one_final_line_for_every_kind_and_out_holds_the_summary(tmp_path, capsys):
    net = tmp_path / "small.yaml"
    net.write_text(SMALL_NET)
    task = tmp_path / "tiny.yaml"
    task.write_text(_small_classifier())
    for config in (net, task, "lif_family"):
        out = tmp_path / f"out_{Path(str(config)).stem}"
        assert main(["run", str(config), "--out", str(out), "--json", "--no-plot"]) == 0, capsys.readouterr().err
        summary = _one_final_json(capsys.readouterr().out)
        assert summary["ok"] is True
        written = out / f"{Path(str(config)).stem}.json"          # what --out's help promises
        assert Path(summary["summary_json"]) == written
        assert json.loads(written.read_text()) == {k: v for k, v in summary.items() if k != "summary_json"}
    # a task that prints its own JSON line keeps it without --json
    assert main(["run", str(task), "--out", str(tmp_path / "again"), "--no-plot"]) == 0
    assert len(_json_lines(capsys.readouterr().out)) == 1
    # errors: one JSON line too
    assert main(["run", str(tmp_path / "nope.yaml"), "--json"]) == 1
    assert _one_final_json(capsys.readouterr().out)["ok"] is False
    for argv in (["validate", str(net)], ["models"], ["configs"], ["graph", str(net)]):
        assert main(argv + ["--json"]) == 0
        assert _one_final_json(capsys.readouterr().out)["ok"] is True


def test_out_may_name_a_folder_for_plots(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    folder = tmp_path / "plots"
    folder.mkdir()
    assert main(["plot", "neuron", "lif", "--duration", "50 ms", "--out", str(folder)]) == 0
    assert (folder / "lif.png").is_file()
    net = tmp_path / "small.yaml"
    net.write_text(SMALL_NET)
    assert main(["graph", str(net), "--out", str(folder) + "/"]) == 0
    assert (folder / "small_graph.png").is_file()


def test_the_default_output_folder_is_ignored_by_git():
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and a checkout")
    done = subprocess.run(["git", "check-ignore", "-q", "braincore_out/coba.npz"], cwd=ROOT)
    assert done.returncode == 0, "braincore_out/ (the default --out) is not in .gitignore"


# ------------------------------------------------------------------------------------------ plot run
@pytest.fixture
def saved_run(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    net = tmp_path / "small.yaml"
    net.write_text(SMALL_NET)
    assert main(["run", str(net), "--out", str(tmp_path / "out"), "--json"]) == 0
    summary = _one_final_json(capsys.readouterr().out)
    return Path(summary["npz"])


def _titles(monkeypatch) -> list:
    """Capture the title of every figure saved."""
    import matplotlib.figure

    titles = []
    real = matplotlib.figure.Figure.savefig

    def spy(fig, *args, **kwargs):
        titles.append(fig.axes[0].get_title())
        return real(fig, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", spy)
    return titles


def test_plot_run_replots_a_saved_run_with_a_chosen_subset(saved_run, tmp_path, capsys, monkeypatch):
    titles = _titles(monkeypatch)
    png = tmp_path / "again.png"
    assert main(["plot", "run", str(saved_run), "--neurons", "5:15", "--out", str(png), "--json"]) == 0
    captured = capsys.readouterr()
    summary = _one_final_json(captured.out)
    assert png.is_file() and png.stat().st_size > 10_000
    assert summary["raster"]["exc_spikes"] == {"first": 5, "last": 14, "of": 30}
    assert summary["raster"]["inh_spikes"] == {"first": 5, "last": 9, "of": 10}
    assert summary["state_monitors"] == ["exc_v"] and summary["rate_monitors"] == ["exc_rate"]
    assert summary["t_end_ms"] == pytest.approx(100.0)
    assert "showing a subset of neurons: exc_spikes 5-14 of 30; inh_spikes 5-9 of 10" in titles[-1]
    assert "exc_spikes 5-14 of 30" in captured.out
    # all neurons: the title says nothing of a subset; `plot FILE.npz` is the same command
    assert main(["plot", str(saved_run), "--neurons", "all"]) == 0
    assert "subset" not in titles[-1]
    assert (saved_run.parent / f"{saved_run.stem}_plot.png").is_file()
    # the raster `braincore run` drew says so too when it shows a subset (default: the first 400)
    from braincore.viz import DEFAULT_RASTER_NEURONS

    assert DEFAULT_RASTER_NEURONS == 400


def test_the_run_raster_title_says_when_it_shows_a_subset(tmp_path, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    titles = _titles(monkeypatch)
    import braincore.viz as viz

    monkeypatch.setattr(viz.plot_raster, "__kwdefaults__", {**viz.plot_raster.__kwdefaults__, "max_neurons": 8})
    net = tmp_path / "small.yaml"
    net.write_text(SMALL_NET)
    assert main(["run", str(net), "--out", str(tmp_path / "out")]) == 0
    assert "showing a subset of neurons: exc 0-7 of 30; inh 0-7 of 10" in titles[-1]


def test_plot_run_reports_bad_files_and_trials(saved_run, tmp_path, capsys):
    assert main(["plot", "run", str(saved_run), "--trial", "3"]) == 1
    assert "the run has 1 trial(s)" in capsys.readouterr().err
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file at all")
    assert main(["plot", "run", str(junk)]) == 1
    assert "junk.npz: not a" in capsys.readouterr().err
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, weights=np.zeros(3))
    assert main(["plot", "run", str(foreign)]) == 1
    assert "not a braincore run recording" in capsys.readouterr().err
    assert main(["plot", "run", str(tmp_path / "missing.npz")]) == 1
    assert "no such file" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ listings
def test_regions_lists_units_and_descriptions(capsys):
    assert main(["regions", "--json"]) == 0
    out = capsys.readouterr().out
    regions = _one_final_json(out)["regions"]
    if "basal_ganglia" not in regions:
        pytest.skip("the regions package is not installed (entry points)")
    tau = regions["basal_ganglia"]["params"]["tau_msn"]
    assert (tau["value"], tau["unit"], tau["description"]) == ("20", "ms", "membrane time constants")
    assert regions["basal_ganglia"]["params"]["k_diffuse"]["description"] == "in-degrees, per channel"
    assert regions["prefrontal"]["params"]["J_ee"]["unit"] == "nA"
    assert "summed weights" in regions["prefrontal"]["params"]["J_ee"]["description"]
    assert re.search(r"tau_msn\s+=\s+20 ms\s+membrane time constants", out)


def test_configs_lists_every_bundled_config_with_a_description(capsys):
    assert main(["configs", "--json"]) == 0
    out = capsys.readouterr().out
    listed = _one_final_json(out)["configs"]
    bundled = {p.relative_to(ROOT / "configs").with_suffix("").as_posix() for p in (ROOT / "configs").rglob("*.yaml")}
    assert set(listed) == bundled
    assert listed["coba"]["kind"] == "assembly"
    assert listed["coba"]["description"].startswith("COBA benchmark network (Vogels & Abbott 2005")
    assert listed["gallery"]["description"] == "The bundled demo (`braincore run` with no arguments)"
    assert all(row["description"] for row in listed.values())
    assert sum(1 for line in out.splitlines() if line.startswith("  ")) == len(bundled)


def test_quick_commands_do_not_load_pytorch():
    code = ("import sys, io, contextlib\nfrom braincore.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    assert main(['--help']) == 0 and main(['run', '--help']) == 0 and main(['configs']) == 0\n"
            "print(sorted(m for m in ('torch', 'matplotlib', 'networkx', 'numpy', 'sympy') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("argv", [["models"], ["regions"]], ids=lambda argv: " ".join(argv))
def test_models_and_regions_do_not_load_pytorch(argv):
    """Listing the models and regions needs their definitions and parameter records, not tensors (issue 16: under
    a second)."""
    code = ("import sys, io, contextlib\nimport braincore.cli\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    assert braincore.cli.main({argv!r}) == 0\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.returncode == 0, done.stderr


def test_validating_any_bundled_config_does_not_load_pytorch():
    """Every bundled config (configs/, all kinds: assemblies, galleries, trainings, tasks, distributed runs)
    validates without PyTorch or matplotlib (issue 16: under a second): the task modules import them where they
    run, and what validation reads -- schemas, parameter records, the choices of the training, the region
    builders, the distributed engine's checks -- imports without them; a user model (cobahh.yaml, qif.yaml)
    evaluates its initial values with Python numbers. One interpreter validates them all, checking after each
    (a module once imported is imported for all, so the check after the last covers every config's imports)."""
    names = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "configs").rglob("*.yaml"))
    assert len(names) >= 30
    code = ("import sys, io, contextlib\nimport braincore.cli\n"
            f"for name in {names!r}:\n"
            "    with contextlib.redirect_stdout(io.StringIO()):\n"
            "        assert braincore.cli.main(['validate', name]) == 0, name + ' is not valid'\n"
            "    loaded = [m for m in ('torch', 'matplotlib') if m in sys.modules]\n"
            "    assert not loaded, f'validate {name} imported {loaded}'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_choices_named_without_pytorch_are_those_implemented():
    """braincore.choices repeats the surrogate names for the schemas; the training modules import its tuples."""
    from braincore import choices
    from braincore.surrogate import SURROGATES
    from braincore.training import losses, models, trainer

    assert tuple(SURROGATES) == choices.SURROGATE_NAMES
    assert (models.LAYER_KINDS, models.READOUT_KINDS) == (choices.LAYER_KINDS, choices.READOUT_KINDS)
    assert (losses.LOSS_KINDS, losses.REDUCTIONS, trainer.OPTIMIZERS, trainer.SCHEDULES) == \
        (choices.LOSS_KINDS, choices.REDUCTIONS, choices.OPTIMIZERS, choices.SCHEDULES)


def test_a_model_instance_is_a_torch_module_of_its_class():
    """Model classes are defined without PyTorch; each instance is a ``torch.nn.Module`` of a subclass made once per
    class, with the class's name, that copies as an instance of the class."""
    import copy

    import torch

    from braincore.neurons import LIF, NeuronModel

    cell = LIF(3, tau_m="10 ms")
    assert isinstance(cell, LIF) and isinstance(cell, NeuronModel) and isinstance(cell, torch.nn.Module)
    assert type(cell) is type(LIF(2)) and type(cell).__name__ == "LIF" and type(cell).__module__ == LIF.__module__
    spikes, state = cell(torch.full((1, 3), 0.3))
    other = copy.deepcopy(cell)
    assert type(other) is type(cell) and other.params == cell.params
    assert torch.equal(other(torch.full((1, 3), 0.3), state)[1].v, cell(torch.full((1, 3), 0.3), state)[1].v)


# ------------------------------------------------------------------------------------------ heartbeat
def test_the_heartbeat_speaks_only_when_nothing_else_does():
    stream = io.StringIO()
    with Heartbeat("building net", quiet=0.3, every=0.4, stream=stream) as beat:
        time.sleep(0.8)
        assert re.search(r"^building net\.\.\. \d s \(Ctrl-C stops\)$", stream.getvalue(), flags=re.M)
        before = stream.getvalue().count("\n")
        for _ in range(8):                          # output keeps it quiet
            print("working on it", file=sys.stderr)
            time.sleep(0.1)
        assert stream.getvalue().count("\n") == before
        beat.phase = "evaluating"
        time.sleep(0.6)
    assert "evaluating... " in stream.getvalue()


def test_the_heartbeat_holds_json_lines_back():
    out = io.StringIO()
    real = sys.stdout
    sys.stdout = out
    try:
        with Heartbeat(hold_json=True, stream=io.StringIO()) as beat:
            print("text")
            print('{"a": 1}')
            print("{not json}")
    finally:
        sys.stdout = real
    assert out.getvalue() == "text\n{not json}\n" and beat.held_json == ['{"a": 1}']


# ------------------------------------------------------------------------------------------ Ctrl-C
def _start(args, cwd, stderr_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "braincore", *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=open(stderr_path, "w"), text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _wait_for(proc, marker: str, timeout: float = 120.0) -> list:
    """stdout lines up to the first containing ``marker``."""
    lines: "queue.Queue" = queue.Queue()

    def pump():
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=deadline - time.monotonic())
        except queue.Empty:
            break
        if line is None:
            break
        seen.append(line)
        if marker in line:
            proc._lines = lines  # the rest, for the caller
            return seen
    proc.kill()
    pytest.fail(f"{marker!r} never appeared on stdout:\n{''.join(seen)[-2000:]}")


def _rest(proc) -> list:
    """The stdout lines after the marker, once the process has ended."""
    rest = []
    while True:
        try:
            line = proc._lines.get(timeout=10)
        except queue.Empty:
            break
        if line is None:
            break
        rest.append(line)
    return rest


def _interrupt(proc, stderr_path) -> tuple:
    start = time.monotonic()
    proc.send_signal(signal.SIGINT)
    try:
        code = proc.wait(timeout=90)  # a guard against a hang, generous for a loaded machine (no timing is compared)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("Ctrl-C did not stop the run (waited 90 s)")
    return code, time.monotonic() - start, Path(stderr_path).read_text()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_stops_a_training_with_a_checkpoint_and_the_rerun_resumes(tmp_path):
    (tmp_path / "long.yaml").write_text(_small_classifier(epochs=500, name="long_patterns"))
    args = ["run", "long.yaml", "--out", "out"]
    proc = _start(args, tmp_path, tmp_path / "err1.txt")
    _wait_for(proc, "epoch 1/500")
    code, seconds, err = _interrupt(proc, tmp_path / "err1.txt")
    assert code == 130, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert re.match(r"braincore run: interrupted at epoch \d+/500, batch \d+/\d+ \(step \d+\) after [\d.]+ s; "
                    r"checkpoint written to out/long_patterns\.ckpt; resume with: braincore run long\.yaml --out out$",
                    last), last
    assert (tmp_path / "out" / "long_patterns.ckpt").is_file()

    proc = _start(args, tmp_path, tmp_path / "err2.txt")                 # the same command again resumes
    seen = _wait_for(proc, "resumed from out/long_patterns.ckpt at epoch")
    code, _, err = _interrupt(proc, tmp_path / "err2.txt")
    assert code == 130 and "Traceback" not in err, err
    assert not any(line.startswith("epoch 1/500") for line in seen)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_stops_a_long_simulation_within_seconds(tmp_path):
    text = SMALL_NET.replace("duration: 100 ms", "duration: 100000 ms").replace("size: 30", "size: 2000")
    text = "\n".join(line for line in text.splitlines() if "type: state" not in line and "type: rate" not in line)
    (tmp_path / "long.yaml").write_text(text + "\n")
    proc = _start(["run", "long.yaml", "--out", "out", "--json"], tmp_path, tmp_path / "err.txt")
    _wait_for(proc, "built small")
    time.sleep(1.0)                                                      # inside the simulation loop
    code, seconds, err = _interrupt(proc, tmp_path / "err.txt")
    rest = _rest(proc)
    assert code == 130 and "Traceback" not in err, err
    assert re.search(r"braincore run: interrupted after [\d.]+ s; this assembly run keeps no checkpoint", err), err
    failure = json.loads(rest[-1])
    assert failure["ok"] is False and failure["interrupted"] is True


@needs_sigint
def test_the_native_engine_sees_ctrl_c_between_chunks_of_steps():
    """A run without a progress bar is still cut into calls of at most CHUNK_STEPS steps into C, so Ctrl-C stops
    it at the end of the current chunk rather than after the whole run."""
    native = pytest.importorskip("braincore.native")
    try:
        native.load_library("float64")
    except native.NativeUnavailable as err:
        pytest.skip(f"native engine unavailable: {err}")
    from braincore.assembly_config import assembly_from_text
    from braincore.native.engine import CHUNK_STEPS
    from braincore.simulator import Simulator

    text = SMALL_NET.replace("size: 30", "size: 3000")
    # no monitors: nothing (a filling spike buffer) makes the C loop return early on its own
    text = text[:text.index("monitors:")]
    sim = Simulator(assembly_from_text(text + "backend: native\n", "net.yaml"))
    assert sim.monitors == []
    sim.run(sim.dt)       # the generated kernel is compiled (or loaded) before the clock starts: a cold cache
    assert sim.engine == "native"             # would otherwise take the signal while compiling
    total = 1_000_000                                                   # 100 s of 0.1 ms steps
    at_signal = {}

    def press_ctrl_c():
        time.sleep(0.5)
        at_signal["step"] = sim.step_count
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=press_ctrl_c, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        sim.run(total * sim.dt)                                         # no progress bar
    assert 1 < sim.step_count < total + 1
    assert sim.step_count - at_signal["step"] <= CHUNK_STEPS
