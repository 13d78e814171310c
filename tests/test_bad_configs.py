"""Nothing a user types crashes braincore: broken configs at every nesting level end in a located problem
(``file:line: key.path: message``), never in a traceback, and ``braincore validate`` refuses everything that
``braincore run`` would refuse. Also: numbers must be finite (NaN never, infinity only where it means something),
output names stay inside the output folder, resource bombs are refused before anything is allocated, and a run
whose numbers blow up stops with a :class:`NumericalError` naming the population, the steps and the likely cause."""
from __future__ import annotations

import math
import re
import textwrap

import numpy as np
import pytest
import torch

from braincore.cli import main
from braincore.config import ConfigProblems, load_text, validate
from braincore.errors import ConfigError, NumericalError
from braincore.graph import Assembly
from braincore.units import UnitError, parse_quantity

# ------------------------------------------------------------------------------------------ the base assembly
BASE = """\
kind: assembly
name: {name}
dt: {dt}
duration: {duration}
batch: {batch}
populations:
  exc:
    model: lif
    size: {size}
    params: {{tau_m: {tau_m}, R_m: {R_m}}}
    init: {{v: {init_v}}}
projections:
  - name: ee
    pre: exc
    post: exc
    connector: {{type: {connector}}}
    weight: {weight}
    synapse: {{type: exponential, tau: {syn_tau}}}
    delay: {delay}
    storage: {storage}
inputs:
  - {{type: constant_current, target: exc, amplitude: {amplitude}}}
monitors:
  - {{name: {monitor}, type: {monitor_type}, target: exc{monitor_extra}}}
modulators:
  dopamine: {{tau: {mod_tau}, baseline: {baseline}}}
"""
DEFAULTS = dict(name="net", dt="0.1 ms", duration="20 ms", batch=1, size=20, tau_m="20 ms", R_m="100 MOhm",
                init_v="-65 mV", connector="all_to_all", weight="0.01 nA", syn_tau="5 ms", delay="1 ms",
                storage="auto", amplitude="0.1 nA", monitor="spikes", monitor_type="spikes", monitor_extra="",
                mod_tau="200 ms", baseline=0)
#: the line of each key of BASE (1-based)
LINE = {key: i + 1 for i, text in enumerate(BASE.splitlines()) for key in re.findall(r"\{(\w+)\}", text)}


def text_of(**changes) -> str:
    return BASE.format(**{**DEFAULTS, **changes})


def problems_of(text: str, file: str = "bad.yaml") -> str:
    """The located problems of a config (a test fails when it validates or raises anything else)."""
    with pytest.raises(ConfigProblems) as err:
        validate(load_text(text, file))
    return str(err.value)


def test_the_base_config_is_valid():
    kind, config = validate(load_text(text_of(), "good.yaml"))
    assert kind.name == "assembly" and config["_assembly"].population("exc").size == 20


# (changes, the key of BASE whose line the problem names, the key path printed, words of the message)
ASSEMBLY_CASES = {
    "nan_tau_m": (dict(tau_m=".nan"), "tau_m", "populations.exc.params.tau_m", "NaN"),
    "inf_R_m": (dict(R_m=".inf"), "R_m", "populations.exc.params.R_m", "finite"),
    "overflowing_R_m": (dict(R_m="'1e400 MOhm'"), "R_m", "populations.exc.params.R_m", "overflows"),
    "nan_amplitude": (dict(amplitude=".nan"), "amplitude", "inputs[0].amplitude", "NaN"),
    "inf_duration": (dict(duration=".inf"), "duration", "duration", "finite"),
    "huge_duration": (dict(duration="1e308"), "duration", "duration", "limit"),
    "dt_longer_than_duration": (dict(dt="50 ms", delay="60 ms"), "dt", "dt", "longer than the duration"),
    "delay_below_one_step": (dict(delay="0.04 ms"), "delay", "projections[0].delay", "shorter than one time step"),
    "uniform_delay_below_one_step": (dict(delay="{dist: uniform, low: 0.01 ms, high: 2 ms}"), "delay",
                                     "projections[0].delay.low", "shorter than one time step"),
    "inf_delay": (dict(delay=".inf"), "delay", "projections[0].delay", "finite"),
    "dense_with_per_synapse_delays": (dict(storage="dense", delay="{dist: uniform, low: 1 ms, high: 3 ms}"),
                                      "storage", "projections[0].storage", "one delay"),
    "nan_weight": (dict(weight=".nan"), "weight", "projections[0].weight", "finite"),
    "inf_synapse_tau": (dict(syn_tau=".inf"), "syn_tau", "projections[0].synapse.tau", "finite"),
    "nan_initial_value": (dict(init_v=".nan"), "init_v", "populations.exc.init.v", "NaN"),
    "nan_initial_distribution": (dict(init_v="{dist: normal, mean: -65 mV, std: .nan}"), "init_v",
                                 "populations.exc.init.v.std", "NaN"),
    "inf_modulator_tau": (dict(mod_tau=".inf"), "mod_tau", "modulators.dopamine.tau", "leave tau out"),
    "nan_modulator_baseline": (dict(baseline=".nan"), "baseline", "modulators.dopamine.baseline", "finite"),
    "inf_rate_bin": (dict(monitor_type="rate", monitor_extra=", bin: .inf"), "monitor", "monitors[0].bin",
                     "finite"),
    "name_with_parent_folder": (dict(name="../escape"), "name", "name", "path separator"),
    "absolute_name": (dict(name="/tmp/escape"), "name", "name", "absolute"),
    "dotdot_name": (dict(name=".."), "name", "name", "'..'"),
    "monitor_name_with_separator": (dict(monitor="a/b"), "monitor", "monitors[0].name", "path separator"),
    "population_of_1e12_neurons": (dict(size=10 ** 12, connector="one_to_one"), "size", "populations.exc.size",
                                   "estimated memory"),
    "all_to_all_bomb": (dict(size=200_000), "connector", "projections[0].connector", "all_to_all synapses"),
    "state_monitor_bomb": (dict(monitor_type="state", duration="1e7 ms", size=1000, monitor_extra=", variables: [v]"),
                           "monitor", "monitors[0].variables", "estimated memory"),
    "batch_bomb": (dict(batch=10 ** 9, size=100), "batch", None, "estimated memory"),
}


@pytest.mark.parametrize("case", sorted(ASSEMBLY_CASES))
def test_bad_assembly_values_are_located(case, monkeypatch):
    monkeypatch.setenv("BRAINCORE_MEMORY_LIMIT", "8GB")
    changes, key, path, words = ASSEMBLY_CASES[case]
    message = problems_of(text_of(**changes))
    located = [line for line in message.splitlines() if words in line]
    assert located, message
    if path is None:  # the memory of the whole batch: named at the largest item
        assert all(re.match(r"bad\.yaml:\d+: \S+: ", line) for line in located), message
    else:
        assert any(line.startswith(f"bad.yaml:{LINE[key]}: {path}: ") for line in located), message


def test_validate_and_run_agree_on_every_bad_assembly(tmp_path, capsys, monkeypatch):
    """``braincore validate`` and ``braincore run`` both refuse each bad case, with the same located problem and
    exit status 1, and nothing is written: the run never starts."""
    monkeypatch.setenv("BRAINCORE_MEMORY_LIMIT", "8GB")
    out = tmp_path / "out"
    for case, (changes, key, path, words) in sorted(ASSEMBLY_CASES.items()):
        file = tmp_path / f"{case}.yaml"
        file.write_text(text_of(**changes))
        reports = {}
        for command in ("validate", "run"):
            assert main([command, str(file), "--out", str(out)] if command == "run" else [command, str(file)]) == 1, \
                (case, command)
            captured = capsys.readouterr()
            assert "Traceback" not in captured.err, (case, command, captured.err)
            text = (captured.out + captured.err).replace(f"braincore {command}: error: ", "")
            reports[command] = {line for line in text.splitlines() if line.startswith(str(file)) and words in line}
            if path is not None:
                assert any(f"{file}:{LINE[key]}: {path}: " in line for line in text.splitlines()), (case, command,
                                                                                                     text)
        assert reports["validate"] and reports["run"] and reports["run"] <= reports["validate"], (case, reports)
    assert not out.exists() or not any(out.iterdir())


def test_problems_at_deeper_levels_name_their_key(tmp_path):
    # a named user model's parameter, a plasticity rule's parameter, an include prefix, an inline input's value
    text = textwrap.dedent("""\
        kind: assembly
        models:
          q:
            params: {tau: 10 ms, v_r: -65 mV, k: .nan}
            state: {v: {unit: mV, init: v_r}}
            equations: ["dv/dt = k * (v_r - v) / tau"]
            threshold: v > 0*mV
            reset: [v = v_r]
        populations:
          a: {model: q, size: 4}
          b: {model: lif, size: 4}
        projections:
          - {pre: b, post: b, connector: {type: all_to_all}, weight: 0.1 mV,
             plasticity: {rule: stdp, A_plus: .inf}}
        inputs:
          - {type: time_varying_current, target: b, values: [0.1, .nan, 0.2]}
          - {type: time_varying_current, target: b, values: [[0.1, 0.2], [0.1, 0.3]]}
        include:
          x/y: {region: cortex}
        """)
    message = problems_of(text, "deep.yaml")
    assert "deep.yaml:4: models.q.params.k: expected a finite number, got nan" in message
    assert "populations.a" not in message  # reported once, where the value is
    assert re.search(r"deep\.yaml:14: projections\[0\]\.plasticity\S*: .*(finite|inf)", message), message
    assert re.search(r"deep\.yaml:16: inputs\[0\]\.values: .*finite", message), message
    assert re.search(r"deep\.yaml:17: inputs\[1\]\.values: rows of 2 values, but the input drives 4", message), message
    assert re.search(r"deep\.yaml:19: include\.x/y: .*path separator", message), message


def test_input_files_are_checked_by_validate(tmp_path):
    np.savez(tmp_path / "no_times.npz", neurons=np.array([0, 1]))
    np.savez(tmp_path / "bad_index.npz", times=np.array([1.0, 2.0]), neurons=np.array([0, 9]))
    np.save(tmp_path / "wide.npy", np.zeros((5, 3)))
    (tmp_path / "text.npy").write_text("not an array")
    text = textwrap.dedent("""\
        kind: assembly
        populations:
          a: {model: lif, size: 4}
        inputs:
          - {type: spike_file, target: a, path: no_times.npz, weight: 1 mV}
          - {type: spike_file, target: a, path: bad_index.npz, weight: 1 mV}
          - {type: time_varying_current, target: a, values: wide.npy}
          - {type: time_varying_current, target: a, values: text.npy}
        """)
    file = tmp_path / "files.yaml"
    file.write_text(text)
    message = problems_of(text, str(file))
    assert f"{file}:5: inputs[0].path: " in message and "missing 'times'" in message
    assert f"{file}:6: inputs[1].path: " in message and "0..3" in message
    assert f"{file}:7: inputs[2].values: " in message and "3 columns" in message
    assert f"{file}:8: inputs[3].values: " in message and "cannot read" in message


def test_memory_limit_can_be_overridden_and_is_checked(monkeypatch):
    text = text_of(size=30_000)  # 9e8 all-to-all synapses: about 58 GB
    monkeypatch.setenv("BRAINCORE_MEMORY_LIMIT", "8GB")
    message = problems_of(text)
    assert re.search(r"estimated memory \d+(\.\d+)? GB for projection 'ee' \(9e\+08 all_to_all synapses "
                      r"\(30000 x 30000 neurons\)\) exceeds the limit 8 GB \(BRAINCORE_MEMORY_LIMIT=8GB\)", message), \
        message
    monkeypatch.setenv("BRAINCORE_MEMORY_LIMIT", "1TB")
    validate(load_text(text, "big.yaml"))  # fine with more memory (nothing is allocated by validate)
    monkeypatch.setenv("BRAINCORE_MEMORY_LIMIT", "lots")
    assert "bad.yaml:1: (top level): BRAINCORE_MEMORY_LIMIT='lots' is not a memory size" in problems_of(text)


def test_default_memory_limit_is_a_share_of_this_machine(monkeypatch):
    from braincore.validation import memory_limit, physical_memory

    monkeypatch.delenv("BRAINCORE_MEMORY_LIMIT", raising=False)
    limit, how = memory_limit()
    machine = physical_memory()
    if machine is None:
        assert limit == 16e9
    else:
        assert limit == pytest.approx(0.8 * machine) and "80 %" in how


def test_a_seed_beyond_64_bits_and_a_missing_gpu_are_refused():
    message = problems_of(text_of().replace("batch: 1", "batch: 1\nseed: 100000000000000000000000"))
    assert re.search(r"bad\.yaml:6: seed: expected an integer from 0", message), message
    if not torch.cuda.is_available():
        message = problems_of(text_of().replace("batch: 1", "batch: 1\ndevice: cuda"))
        assert "bad.yaml:6: device: device 'cuda' is not available" in message, message


# ------------------------------------------------------------------------------------------ numbers
def test_parse_quantity_refuses_nan_and_infinity():
    for value in (math.nan, math.inf, -math.inf, "1e400 ms", "-1e309", 10 ** 400):
        with pytest.raises(UnitError, match="finite"):
            parse_quantity(value, "time")
    assert parse_quantity(math.inf, "time", allow_inf=True) == math.inf
    with pytest.raises(UnitError, match="NaN"):
        parse_quantity(math.nan, "time", allow_inf=True)


def test_infinity_stays_allowed_where_it_means_no_decay():
    from braincore.networks.diehl_cook import DiehlCookParams, diehl_cook_assembly
    from braincore.plasticity.homeostasis import diehl_cook_threshold_params
    from braincore.simulator import Simulator

    # Diehl & Cook's test phase: theta frozen with tau_theta = inf
    frozen = diehl_cook_assembly(DiehlCookParams.from_mapping({"n_exc": 4}), learn=False, steps=10)
    assert frozen.validate() == []
    Simulator(frozen).run(2.0)
    # alif with tau_a = inf (diehl_cook_threshold_params(frozen=True)), and an unbounded w_max
    a = Assembly("alif")
    a.add_population("n", "alif", 3, diehl_cook_threshold_params(frozen=True, v_th="-52 mV"))
    a.add_population("m", "lif", 3)
    a.add_projection("m", "n", {"type": "all_to_all"}, "0.1 mV",
                     plasticity={"rule": "synaptic_scaling", "w_max": math.inf})
    assert a.validate() == [], a.validate()
    # but NaN never, and infinity not for a parameter without that meaning
    b = Assembly("bad")
    b.add_population("n", "alif", 3, {"tau_a": math.nan, "R_m": math.inf})
    problems = "\n".join(b.validate())
    assert "tau_a" in problems and "NaN" in problems and "R_m" in problems
    with pytest.raises(ConfigError, match="tau_a"):
        Simulator(b)


# ------------------------------------------------------------------------------------------ task kinds
def test_task_names_stay_in_the_output_folder():
    for kind in ("diehl_cook", "desire_bp", "predictive_coding", "two_afc", "delayed_match", "associative_recall"):
        message = problems_of(f"kind: {kind}\nname: ../../etc/x\n", "task.yaml")
        assert "task.yaml:2: name: " in message and "path separator" in message, (kind, message)
    message = problems_of("kind: neuron_gallery\noutput: ../x.png\npanels: [{model: lif}]\n", "g.yaml")
    assert "g.yaml:2: output: " in message and "'..'" in message
    validate(load_text("kind: neuron_gallery\noutput: plots/x.png\npanels: [{model: lif}]\n", "g.yaml"))


SPIKE_PATTERNS = """\
kind: spiking_classifier
data:
  source: spike_patterns
  patterns: {{train: 50, test: 20, classes: 2, channels: 8, steps: 10}}
encoder: {{kind: spikes}}
network:
  layers: [{{size: {size}}}]
training: {{epochs: 1, batch: 8, validation: {validation}}}
"""


def test_validation_split_larger_than_the_data_is_located_by_validate_and_run(tmp_path, capsys):
    validate(load_text(SPIKE_PATTERNS.format(size=16, validation=10), "sp.yaml"))
    message = problems_of(SPIKE_PATTERNS.format(size=16, validation=50), "sp.yaml")
    assert "sp.yaml:8: training.validation: holds out 50 samples for validation, but data.patterns.train has 50" \
        in message
    # when validate cannot read the data, the run checks it at its start, at the same line
    from tasks.common import check_split_at_run

    kind, config = validate(load_text(SPIKE_PATTERNS.format(size=16, validation=30), "sp.yaml"))
    with pytest.raises(ConfigProblems, match=r"sp\.yaml:8: training\.validation: holds out 30 samples"):
        check_split_at_run(config, 20, "the training split")


def test_layer_sizes_that_cannot_fit_are_refused(monkeypatch):
    monkeypatch.setenv("BRAINCORE_MEMORY_LIMIT", "8GB")
    message = problems_of(SPIKE_PATTERNS.format(size=10 ** 8, validation=10), "sp.yaml")
    assert "sp.yaml:7: network.layers: estimated memory" in message and "exceeds the limit 8 GB" in message


def test_diehl_cook_checks_against_the_data_and_memory(monkeypatch):
    from tasks.common import idx_shape

    monkeypatch.setenv("BRAINCORE_MEMORY_LIMIT", "8GB")
    message = problems_of("kind: diehl_cook\nnetwork: {n_exc: 100000, tau_e: .nan}\n", "dc.yaml")
    assert "dc.yaml:2: network.tau_e: " in message and "NaN" in message
    message = problems_of("kind: diehl_cook\nnetwork: {n_exc: 100000}\n", "dc.yaml")
    assert "dc.yaml:2: network: estimated memory" in message
    if idx_shape({"name": "mnist"}) is not None:
        message = problems_of("kind: diehl_cook\ntraining: {validation: 60000}\n", "dc.yaml")
        assert "dc.yaml:2: training.validation: holds out 60000 samples" in message


def test_predictive_coding_split_classes_are_labels():
    message = problems_of("kind: predictive_coding\nmode: split\nsplit: {tasks: [[0, 1], [2, 12]]}\n", "pc.yaml")
    assert "pc.yaml:3: split.tasks[1][1]: class 12 is not a label (0..9)" in message


RL_LOCAL = """\
kind: rl_agent
env: {{id: FrozenLake-v1, kwargs: {{is_slippery: false}}}}
agent: local
dt: 1 ms
populations:
  ctx: {{model: lif, size: 16}}
  d1: {{model: lif, size: 8}}
projections:
  - {{pre: ctx, post: d1, connector: {{type: all_to_all}}, weight: 0.5 mV,
     plasticity: {{rule: rstdp, modulator: dopamine}}}}
inputs:
  - {{name: observation, type: poisson, target: ctx, rate: 0 Hz, weight: 2 mV}}
modulators:
  {modulator}: {{tau: 5 ms}}
local:
  observation: {{input: {observation_input}, population: {observation_population}}}
  actions: {actions}
  exploration: {{input: none}}
  efference: {{input: none}}
  critic: {{gamma: {critic_gamma}}}
  num_envs: {num_envs}
"""
RL_DEFAULTS = dict(modulator="dopamine", observation_input="observation", observation_population="ctx",
                   actions="d1", critic_gamma=0.9, num_envs=4)


def rl_text(**changes) -> str:
    return RL_LOCAL.format(**{**RL_DEFAULTS, **changes})


def test_rl_local_section_names_are_checked_by_validate(monkeypatch):
    pytest.importorskip("gymnasium")
    validate(load_text(rl_text(), "rl.yaml"))
    cases = {
        "observation_population": ("nope", "rl.yaml:16: local.observation.population: no population 'nope'"),
        "actions": ("gpi", "rl.yaml:17: local.actions: no population 'gpi'"),
        "observation_input": ("cue", "rl.yaml:16: local.observation.input: no Poisson input named 'cue'"),
        # the channel the agent releases dopamine on (local.dopamine.channel, default 'dopamine') is undeclared
        "modulator": ("serotonin", "rl.yaml:15: local.dopamine.channel: the assembly declares no modulator "
                                   "'dopamine'"),
        "critic_gamma": (1.5, "rl.yaml:20: local.critic.gamma: a discount factor must be in [0, 1], got 1.5"),
        "num_envs": (10 ** 9, "rl.yaml:21: local.num_envs: estimated memory"),
    }
    monkeypatch.setenv("BRAINCORE_MEMORY_LIMIT", "8GB")
    for key, (value, expected) in cases.items():
        message = problems_of(rl_text(**{key: value}), "rl.yaml")
        assert expected in message, (key, message)
    validate(load_text(rl_text(actions="ctx"), "rl.yaml"))  # 16 cells for FrozenLake's 4 actions: fine
    message = problems_of(rl_text(actions="ctx", observation_population="d1"), "rl.yaml")
    assert "rl.yaml:16: local.observation.input: input 'observation' targets 'ctx', not the observation population" \
        in message, message


def test_rl_gradient_discount_above_one_is_refused():
    pytest.importorskip("gymnasium")
    text = "kind: rl_agent\nenv: {id: CartPole-v1}\ngradient: {gamma: 1.01, gae_lambda: 2}\n"
    message = problems_of(text, "pg.yaml")
    assert "pg.yaml:3: gradient.gamma: a discount factor must be in [0, 1], got 1.01" in message
    assert "pg.yaml:3: gradient.gae_lambda: the GAE weight must be in [0, 1], got 2" in message


# ------------------------------------------------------------------------------------------ numerical blow-up
DIVERGING = """\
kind: assembly
name: diverging
dt: 0.1 ms
duration: 300 ms
backend: {backend}
populations:
  g:
    size: 5
    model:
      params: {{tau: 1 ms}}
      state: {{v: {{unit: mV, init: 1 mV}}}}
      equations: ["dv/dt = v / tau"]
      method: euler
monitors:
  - {{name: s, type: spikes, target: g}}
"""


def _native_available() -> bool:
    from braincore.networks.diehl_cook import native_available

    return native_available() is None


@pytest.mark.parametrize("backend", ["torch", "native"])
def test_a_blow_up_stops_the_run_naming_population_steps_and_cause(backend):
    from braincore.simulator import Simulator

    if backend == "native" and not _native_available():
        pytest.skip("native engine unavailable")
    kind, config = validate(load_text(DIVERGING.format(backend=backend), "div.yaml"))
    sim = Simulator(config["_assembly"])
    with pytest.raises(NumericalError) as err:
        sim.run()
    message = str(err.value)
    # float32 overflows after ~900 steps: found at the first check (step 1000 on torch, the run's end natively)
    last = 1000 if backend == "torch" else 3000
    assert f"between step 0 and step {last}" in message, message
    assert "population 'g': state variable 'v' became infinite" in message
    assert "dt = 0.1 ms too large" in message and "'euler'" in message
    assert err.value.step == last and isinstance(err.value, ConfigError)


def test_a_blow_up_is_a_located_cli_error_not_a_traceback(tmp_path, capsys):
    file = tmp_path / "div.yaml"
    file.write_text(DIVERGING.format(backend="torch"))
    assert main(["validate", str(file)]) == 0  # valid: it only blows up when run
    capsys.readouterr()
    assert main(["run", str(file), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "blew up between step 0 and step 1000" in err


def test_non_finite_weights_are_reported_with_their_projection():
    from braincore.simulator import Simulator

    a = Assembly("w")
    a.add_population("a", "lif", 3)
    a.add_population("b", "lif", 3)
    a.add_projection("a", "b", {"type": "all_to_all"}, "0.1 mV", name="ab", storage="sparse")
    a.set_run(backend="torch")
    sim = Simulator(a)
    sim.run(5.0)
    sim.projections[0].weight[1] = float("nan")
    with pytest.raises(NumericalError, match=r"projection 'ab': weights became NaN \(1 of 9 values\)"):
        sim.run(5.0)


def test_finite_runs_are_not_disturbed():
    from braincore.simulator import Simulator

    kind, config = validate(load_text(text_of(duration="250 ms"), "good.yaml"))
    sim = Simulator(config["_assembly"])
    sim.run()
    assert sim.step_count == 2500 and sim._finite_step == 2500


def test_what_the_native_backend_cannot_run_is_refused_by_validate():
    text = textwrap.dedent("""\
        kind: assembly
        backend: native
        device: {device}
        populations:
          a: {{model: lif, size: 4}}
        projections:
          - {{pre: a, post: a, connector: {{type: all_to_all}}, weight: 0.1 mV, storage: dense,
             plasticity: {{rule: stdp}}}}
        """)
    message = problems_of(text.format(device="cpu"), "native.yaml")
    assert "native.yaml:7: projections[0].storage: backend native: plasticity on dense storage" in message
    if torch.cuda.is_available():
        message = problems_of(text.format(device="cuda"), "native.yaml")
        assert "native.yaml:2: backend: the native engine runs on the CPU" in message
