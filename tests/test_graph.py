"""Assemblies: the networkx description, its validation, composition of sub-assemblies, YAML and the CLI."""
import json
import textwrap
from pathlib import Path

import networkx as nx
import pytest

from braincore.assembly_config import assembly_from_text, load_assembly
from braincore.cli import main
from braincore.config import ConfigProblems, bundled_config_dir, load_config
from braincore.graph import Assembly, AssemblyError, PopulationSpec, ProjectionSpec
from braincore.synapses.connectors import expected_synapses
from braincore.errors import ConfigError

AMPA = {"type": "conductance", "tau": "5 ms", "E_rev": "0 mV"}
GABA = {"type": "conductance", "tau": "10 ms", "E_rev": "-80 mV"}

EI_YAML = """\
kind: assembly
name: ei
dt: 0.1 ms
duration: 200 ms
seed: 3
populations:
  exc: {model: lif, size: 80, params: {tau_m: 20 ms}, init: {v: {dist: uniform, low: -65 mV, high: -50 mV}}}
  inh: {model: izhikevich, preset: fast_spiking, size: 20}
projections:
  - {name: ee, pre: exc, post: exc, connector: {type: fixed_probability, p: 0.1}, weight: 0.5 nS,
     synapse: {type: conductance, tau: 5 ms, E_rev: 0 mV}, delay: 1 ms, sign: excitatory}
  - {pre: exc, post: inh, connector: {type: fixed_indegree, k: 10}, weight: 2, synapse: {type: exponential, tau: 2 ms}}
  - {pre: inh, post: exc, connector: {type: all_to_all}, weight: {dist: uniform, low: 0.1 mV, high: 0.3 mV},
     synapse: {type: instantaneous}, sign: inhibitory}
inputs:
  - {name: drive, type: poisson, target: exc, params: {rate: 10 Hz, sources: 5, weight: 1 nS,
                                                       synapse: {type: conductance, tau: 5 ms, E_rev: 0 mV}}}
monitors:
  - {name: spikes, type: spikes, target: exc, max_spikes: 1000}
  - {name: v, type: state, target: inh, variables: [v, u], neurons: [0, 1]}
ports: {in: exc, out: exc}
"""


def ei_python() -> Assembly:
    a = Assembly("ei")
    a.set_run(dt="0.1 ms", duration="200 ms", seed=3)
    a.add_population("exc", "lif", 80, params={"tau_m": "20 ms"},
                     init={"v": {"dist": "uniform", "low": "-65 mV", "high": "-50 mV"}})
    a.add_population("inh", "izhikevich", 20, preset="fast_spiking")
    a.add_port("in", "exc")
    a.add_port("out", "exc")
    a.add_projection("exc", "exc", connector={"type": "fixed_probability", "p": 0.1}, weight="0.5 nS",
                     synapse=AMPA, delay="1 ms", name="ee", sign="excitatory")
    a.add_projection("exc", "inh", connector={"type": "fixed_indegree", "k": 10}, weight=2,
                     synapse={"type": "exponential", "tau": "2 ms"})
    a.add_projection("inh", "exc", {"type": "all_to_all"}, {"dist": "uniform", "low": "0.1 mV", "high": "0.3 mV"},
                     {"type": "instantaneous"}, sign="inhibitory")
    a.add_input("drive", "poisson", "exc", rate="10 Hz", sources=5, weight="1 nS", synapse=AMPA)
    a.add_monitor("spikes", "spikes", "exc", max_spikes=1000)
    a.add_monitor("v", "state", "inh", ["v", "u"], neurons=[0, 1])
    return a


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


# ------------------------------------------------------------------------------------------ the description
def test_python_and_yaml_assemblies_are_equal_and_round_trip():
    a, b = ei_python(), assembly_from_text(EI_YAML, "ei.yaml")
    assert a.validate() == []
    assert a == b
    assert a.to_dict() == b.to_dict()
    again = Assembly.from_dict(b.to_dict())
    assert again == b and again.to_dict() == b.to_dict()
    # specs are frozen dataclasses with raw values; run settings canonical
    exc = b.population("exc")
    assert isinstance(exc, PopulationSpec) and exc.params == {"tau_m": "20 ms"} and exc.size == 80
    assert b.population("in") is exc  # a port resolves to its population
    assert b.run.dt == 0.1 and b.run.duration == 200.0 and b.run.seed == 3
    with pytest.raises(Exception):
        exc.size = 3  # frozen
    names = [p.name for p in b.projections()]
    assert names == ["ee", "exc->inh", "inh->exc"]
    assert all(isinstance(p, ProjectionSpec) for p in b.projections())
    assert b.inputs[0].params["sources"] == 5 and b.monitors[1].variables == ["v", "u"]


def test_networkx_algorithms_work_on_the_graph():
    a = ei_python()
    a.add_population("thalamus", "lif", 10)
    a.add_population("cortex", "lif", 10)
    a.add_projection("thalamus", "inh", {"type": "fixed_probability", "p": 0.5}, "1 mV", name="t_i")
    a.add_projection("inh", "cortex", {"type": "fixed_probability", "p": 0.5}, "1 mV", name="i_c")
    a.add_projection("inh", "cortex", {"type": "fixed_probability", "p": 0.1}, "2 mV", name="i_c_2")
    g = a.graph
    assert isinstance(g, nx.MultiDiGraph) and isinstance(g, nx.DiGraph)
    assert nx.shortest_path(g, "thalamus", "cortex") == ["thalamus", "inh", "cortex"]
    assert g.number_of_edges("inh", "cortex") == 2  # two projections join the same pair
    assert set(g["inh"]["cortex"]) == {"i_c", "i_c_2"}
    assert g.in_degree("cortex") == 2 and g.out_degree("exc") == 2
    assert g.nodes["exc"]["kind"] == "population" and g.nodes["exc"]["spec"].model == "lif"
    assert g.edges["exc", "exc", "ee"]["spec"].sign == "excitatory"
    assert nx.has_path(g, "exc", "inh") and not nx.has_path(g, "cortex", "exc")
    assert ["exc"] in [sorted(c) for c in nx.simple_cycles(g)]  # the recurrent exc -> exc edge
    assert a.validate() == []


def test_summary_counts_expected_synapses():
    a = Assembly("counts")
    a.add_population("a", "lif", 100)
    a.add_population("b", "lif", 50)
    a.add_population("c", "lif", 50)
    conn = {
        "fp": ("a", "b", {"type": "fixed_probability", "p": 0.1}, 0.1 * 100 * 50),
        "ki": ("a", "b", {"type": "fixed_indegree", "k": 7}, 7 * 50),
        "ko": ("a", "b", {"type": "fixed_outdegree", "k": 3}, 3 * 100),
        "all": ("a", "b", {"type": "all_to_all"}, 100 * 50),
        "self": ("a", "a", {"type": "all_to_all", "allow_self": False}, 100 * 99),
        "one": ("b", "c", {"type": "one_to_one"}, 50),
        "tot": ("a", "c", {"type": "fixed_total", "n": 123}, 123),
        "list": ("b", "c", {"type": "explicit", "pre": [0, 1, 2], "post": [3, 4, 5]}, 3),
    }
    for name, (pre, post, connector, _) in conn.items():
        a.add_projection(pre, post, connector, "1 mV", name=name)
    assert a.validate() == []
    s = a.summary()
    assert s["neurons"] == 200 and s["n_populations"] == 3 and s["n_projections"] == len(conn)
    counts = {row["name"]: row["expected_synapses"] for row in s["projections"]}
    assert counts == {name: pytest.approx(c[3]) for name, c in conn.items()}
    assert s["synapses"] == pytest.approx(sum(c[3] for c in conn.values())) and s["synapses_complete"]
    row = s["projections"][0]
    assert (row["pre"], row["post"], row["connector"], row["synapse"], row["delay"]) == \
        ("a", "b", "fixed_probability", "instantaneous", "1 step")
    assert expected_synapses({"type": "file", "path": "x.npz"}, 3, 3) is None


# ------------------------------------------------------------------------------------------ validation
def test_python_validation_reports_every_problem_naming_items():
    a = Assembly("bad")
    a.set_run(dt=0, duration="-5 ms")
    a.add_population("exc", "lif", 0, params={"tau_m": "-1 ms", "v_th": "3 nS"})
    a.add_population("inh", "lfi", 10)
    a.add_population("izh", "izhikevich", 10)
    a.add_population("exc", "lif", 5)  # duplicate
    a.add_projection("exc", "inhh", {"type": "fixed_probability", "p": 0.1}, "1 nS", AMPA, name="to_nowhere")
    a.add_projection("exc", "izh", {"type": "fixed_probability", "p": 0.1}, "1 nS", AMPA, name="cond_izh")
    a.add_projection("izh", "izh", {"type": "all_to_all"}, 1.0, {"type": "alpha"}, delay="-1 ms", name="no_tau")
    a.add_projection("izh", "izh", {"type": "one_to_one"}, "1 mV", {"type": "instantaneous"}, name="no_tau")
    a.add_input(None, "poisson", "izh", rate="5 Hz")
    a.add_monitor("m", "state", "izh", ["v", "w"])
    problems = a.validate()
    expected = [
        "run: dt: must be > 0 ms",
        "run: duration: must be > 0 ms",
        "population 'exc': duplicate population name",
        "population 'exc': size: size must be a positive integer, got 0",
        "population 'exc': params.tau_m: LIFParams: tau_m must be > 0",
        "population 'exc': params.v_th: parameter 'v_th': '3 nS' is a conductance",
        "population 'inh': model: unknown neuron model 'lfi' (did you mean 'lif'?)",
        "projection 'to_nowhere': post: unknown population or port 'inhh'; did you mean 'inh'?",
        "projection 'cond_izh': synapse.type: conductance synapses are unsupported onto izhikevich",
        "projection 'no_tau': synapse.tau: missing 'tau' (alpha synapses need tau)",
        "projection 'no_tau': delay: delay must be > 0 ms",
        "projection 'no_tau': name: duplicate projection name",
        "input 'poisson:izh': a poisson input needs 'weight'",
        "monitor 'm': variables[1]: izhikevich has no state variable 'w'",
    ]
    for text in expected:
        assert any(p.startswith(text) for p in problems), (text, problems)
    assert len(problems) == len(expected), problems
    with pytest.raises(AssemblyError) as info:
        a.check()
    assert isinstance(info.value, ConfigError) and len(info.value.issues) == len(expected)
    assert "to_nowhere" in str(info.value)


def test_yaml_with_many_mistakes_reports_each_with_file_line_and_key(tmp_path):
    path = write(tmp_path, "bad.yaml", """\
        kind: assembly
        dt: 0 ms
        populations:
          exc: {model: lif, size: 100, params: {tau_m: 20 mV}}
          inh: {model: lfi, size: 25}
          izh: {model: izhikevich, size: -3}
        projections:
          - {pre: exc, post: inhh, connector: {type: fixed_probability, p: 0.1}, weight: 1 nS,
             synapse: {type: conductance, tau: 5 ms, E_rev: 0 mV}}
          - pre: exc
            post: izh
            connector: {type: fixed_probability, p: 1.5}
            weight: 1 nS
            synapse: {type: exponential}
            delay: 0 ms
          - {pre: exc, post: exc, connector: {type: random}, weight: 1 mV, synapse: {type: instantaneous},
             storage: dens}
        inputs:
          - {type: poisson, target: exc, params: {rate: 5 mV, weight: 1 mV}}
          - {type: constant_curent, target: nobody, amplitude: 1 nA}
        monitors:
          - {type: state, target: exc, variables: [v, w], bin: 5 ms}
        ports: {out: exh}
        """)
    with pytest.raises(ConfigProblems) as info:
        load_config(path)
    text = [str(p) for p in info.value.problems]
    f = str(path)
    expected = [
        (f"{f}:2: dt:", "must be > 0 ms"),
        (f"{f}:4: populations.exc.params.tau_m:", "expected a time"),
        (f"{f}:5: populations.inh.model:", "did you mean 'lif'"),
        (f"{f}:6: populations.izh.size:", "positive integer, got -3"),
        (f"{f}:8: projections[0].post:", "unknown population or port 'inhh'; did you mean 'inh'"),
        (f"{f}:12: projections[1].connector.p:", "p must be a number in [0, 1], got 1.5"),
        (f"{f}:14: projections[1].synapse.tau:", "missing 'tau'"),
        (f"{f}:13: projections[1].weight:", "expected a dimensionless"),  # izhikevich input is dimensionless
        (f"{f}:15: projections[1].delay:", "must be > 0 ms"),
        (f"{f}:16: projections[2].connector.type:", "unknown connector type 'random'"),
        (f"{f}:17: projections[2].storage:", "did you mean 'dense'"),
        (f"{f}:19: inputs[0].params.rate:", "expected a frequency"),
        (f"{f}:20: inputs[1].target:", "unknown population or port 'nobody'"),
        (f"{f}:20: inputs[1].type:", "did you mean 'constant_current'"),
        (f"{f}:22: monitors[0].variables[1]:", "lif has no state variable 'w'"),
        (f"{f}:22: monitors[0].bin:", "only rate monitors take a bin"),
        (f"{f}:23: ports.out:", "unknown population 'exh'"),
    ]
    for where, what in expected:
        assert any(t.startswith(where) and what in t for t in text), (where, what, text)
    assert len(text) == len(expected), text


def test_connector_checks_name_the_option():
    a = Assembly()
    a.add_population("x", "lif", 10)
    a.add_projection("x", "x", {"type": "fixed_probability", "p": 2}, "1 mV", name="bad_p")
    a.add_projection("x", "x", {"type": "fixed_indegree"}, "1 mV", name="no_k")
    problems = a.validate()
    assert any(p.startswith("projection 'bad_p': connector.p:") for p in problems), problems
    assert any(p.startswith("projection 'no_k': connector") and "'k'" in p for p in problems), problems


def test_duplicates_in_yaml_are_reported(tmp_path):
    path = write(tmp_path, "dup.yaml", """\
        kind: assembly
        populations:
          a: {model: lif, size: 5}
          a: {model: lif, size: 6}
        projections:
          - {name: p, pre: a, post: a, connector: {type: all_to_all}, weight: 1 mV}
          - {name: p, pre: a, post: a, connector: {type: all_to_all}, weight: 2 mV}
        """)
    with pytest.raises(ConfigProblems) as info:
        load_config(path)
    text = [str(p) for p in info.value.problems]
    assert any(t.startswith(f"{path}:4: populations.a: duplicate key") for t in text), text
    assert any(t.startswith(f"{path}:7: projections[1].name: duplicate projection name 'p'") for t in text), text


# ------------------------------------------------------------------------------------------ composition
REGION = """\
    kind: assembly
    name: region
    dt: 0.5 ms
    populations:
      exc: {model: lif, size: 40}
      inh: {model: lif, size: 10}
    projections:
      - {name: ei, pre: exc, post: inh, connector: {type: fixed_probability, p: 0.2}, weight: 1 nS,
         synapse: {type: conductance, tau: 5 ms, E_rev: 0 mV}}
      - {name: ie, pre: inh, post: exc, connector: {type: fixed_probability, p: 0.2}, weight: 2 nS,
         synapse: {type: conductance, tau: 10 ms, E_rev: -80 mV}, sign: inhibitory}
    inputs:
      - {name: bg, type: poisson, target: in, params: {rate: 5 Hz, weight: 0.5 mV}}
    monitors:
      - {name: spikes, type: spikes, target: out}
    ports: {in: exc, out: exc}
    """


def test_region_included_twice_gets_qualified_names_and_ports_resolve(tmp_path):
    (tmp_path / "regions").mkdir()
    write(tmp_path / "regions", "ei.yaml", REGION)
    path = write(tmp_path, "two.yaml", """\
        kind: assembly
        name: two
        dt: 0.1 ms
        include:
          a: {file: regions/ei.yaml}
          b: {file: regions/ei.yaml, ports: {interneurons: inh}}
        populations:
          thalamus: {model: lif, size: 20}
        projections:
          - {name: t_a, pre: thalamus, post: a.in, connector: {type: fixed_indegree, k: 5}, weight: 1 mV}
          - {name: a_b, pre: a.out, post: b.in, connector: {type: fixed_indegree, k: 4}, weight: 1 mV}
          - {name: a_bi, pre: a.exc, post: b.interneurons, connector: {type: one_to_one}, weight: 1 mV}
        monitors:
          - {name: b_inh, type: state, target: b.interneurons, variables: [v]}
        ports: {out: b.out}
        """)
    with pytest.raises(ConfigProblems) as info:  # one_to_one a.exc (40) -> b.inh (10)
        load_config(path)
    assert [str(p) for p in info.value.problems] == [
        f"{path}:12: projections[2].connector: one_to_one needs populations of one size, got a.exc (40) -> b.inh (10)"]
    path.write_text(path.read_text().replace("{type: one_to_one}", "{type: all_to_all}"))
    a = load_assembly(path)
    assert [p.name for p in a.populations()] == ["a.exc", "a.inh", "b.exc", "b.inh", "thalamus"]
    assert a.population("a.exc").region == "a" and a.population("thalamus").region is None
    assert a.regions == {"a": ["a.exc", "a.inh"], "b": ["b.exc", "b.inh"]}
    assert a.aliases == {"a.in": "a.exc", "a.out": "a.exc", "b.in": "b.exc", "b.out": "b.exc",
                         "b.interneurons": "b.inh"}
    assert a.ports == {"out": "b.exc"}
    p = a.projection("a_b")
    assert (p.pre, p.post) == ("a.exc", "b.exc")
    assert (a.projection("a_bi").pre, a.projection("a_bi").post) == ("a.exc", "b.inh")
    assert (a.projection("b.ie").pre, a.projection("b.ie").post) == ("b.inh", "b.exc")
    assert [i.name for i in a.inputs] == ["a.bg", "b.bg"] and a.inputs[1].target == "b.exc"
    assert [m.target for m in a.monitors] == ["a.exc", "b.exc", "b.inh"]
    assert a.run.dt == 0.1  # the included file's dt is ignored
    assert nx.shortest_path(a.graph, "thalamus", "b.inh") == ["thalamus", "a.exc", "b.inh"]
    assert a.summary()["projections"][-1]["expected_synapses"] == 40 * 10

    # the same composition in Python
    region = assembly_from_text(textwrap.dedent(REGION), "region.yaml")
    b = Assembly("two", dt=0.1)
    b.include(region, "a")
    b.include(region, "b", ports={"interneurons": "inh"})
    b.add_population("thalamus", "lif", 20)
    b.add_port("out", "b.out")
    b.add_projection("thalamus", "a.in", {"type": "fixed_indegree", "k": 5}, "1 mV", name="t_a")
    b.add_projection("a.out", "b.in", {"type": "fixed_indegree", "k": 4}, "1 mV", name="a_b")
    b.add_projection("a.exc", "b.interneurons", {"type": "all_to_all"}, "1 mV", name="a_bi")
    b.add_monitor("b_inh", "state", "b.interneurons", ["v"])
    assert b.validate() == []
    assert b.to_dict()["populations"] == a.to_dict()["populations"]
    assert b.to_dict()["projections"] == a.to_dict()["projections"]
    assert b == Assembly.from_dict(b.to_dict())


def test_include_with_connect_and_nested_prefixes():
    region = assembly_from_text(textwrap.dedent(REGION), "region.yaml")
    column = Assembly("column")
    column.include(region, "l4")
    column.include(region, "l23", connect=[{"pre": "l4.out", "post": "l23.in",
                                           "connector": {"type": "fixed_indegree", "k": 3}, "weight": "1 mV"}])
    column.add_port("in", "l4.in")
    brain = Assembly("brain").include(column, "v1")
    assert "v1.l23.exc" in brain.graph and brain.population("v1.in").name == "v1.l4.exc"
    assert brain.population("v1.l23.exc").region == "v1.l23"
    assert brain.regions["v1"] == ["v1.l4.exc", "v1.l4.inh", "v1.l23.exc", "v1.l23.inh"]
    assert brain.projection("v1.l4.out->l23.in").post == "v1.l23.exc"
    assert brain.validate() == []


def test_include_cycles_and_errors_inside_included_files(tmp_path):
    write(tmp_path, "a.yaml", """\
        kind: assembly
        include: {b: {file: b.yaml}}
        populations: {x: {model: lif, size: 3}}
        """)
    b = write(tmp_path, "b.yaml", """\
        kind: assembly
        include:
          a: {file: a.yaml}
        populations: {y: {model: lif, size: 3}}
        """)
    with pytest.raises(ConfigProblems) as info:
        load_config(tmp_path / "a.yaml")
    text = [str(p) for p in info.value.problems]
    assert any(t.startswith(f"{b}:3: include.a.file: include cycle: a.yaml -> b.yaml -> a.yaml") for t in text), text

    region = write(tmp_path, "region.yaml", """\
        kind: assembly
        populations:
          e: {model: lif, size: 3, params: {tau_m: 1 mV}}
        ports: {in: e}
        """)
    top = write(tmp_path, "top.yaml", """\
        kind: assembly
        include:
          r1: {file: region.yaml}
          r2: {file: region.yaml}
          r3: {file: missing.yaml}
        projections:
          - {pre: r1.in, post: r2.nope, connector: {type: all_to_all}, weight: 1 mV}
        """)
    with pytest.raises(ConfigProblems) as info:
        load_config(top)
    text = [str(p) for p in info.value.problems]
    # in the included file, reported once although it is included twice
    assert any(t.startswith(f"{region}:3: populations.e.params.tau_m:") for t in text), text
    assert sum("tau_m" in t for t in text) == 1
    assert any(t.startswith(f"{top}:5: include.r3.file: no such file 'missing.yaml'") for t in text), text
    assert any(t.startswith(f"{top}:7: projections[0].post: unknown population or port 'r2.nope'") for t in text)
    assert len(text) == 3, text


def test_bundled_examples_validate_and_compose():
    examples = bundled_config_dir() / "examples"
    region = load_assembly(examples / "region_ei.yaml")
    assert region.ports == {"in": "exc", "out": "exc"}
    two = load_assembly(examples / "two_regions.yaml")
    assert set(two.regions) == {"v1", "v2"}
    assert nx.has_path(two.graph, "v1.exc", "v2.exc") and nx.has_path(two.graph, "v2.exc", "v1.exc")
    assert len(two.populations()) == 2 * len(region.populations())


# ------------------------------------------------------------------------------------------ command line
def test_cli_validate_and_graph(tmp_path, capsys):
    path = tmp_path / "ei.yaml"
    path.write_text(EI_YAML)
    assert main(["validate", str(path)]) == 0
    assert "valid assembly config" in capsys.readouterr().out
    png = tmp_path / "graph.png"
    assert main(["graph", str(path), "--out", str(png), "--json"]) == 0
    out = capsys.readouterr().out
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["ok"] and summary["neurons"] == 100 and summary["n_projections"] == 3
    assert summary["projections"][0]["expected_synapses"] == pytest.approx(0.1 * 80 * 80)
    assert summary["synapses"] == pytest.approx(640 + 10 * 20 + 20 * 80)
    assert "exc -> inh" in out and "fixed_indegree" in out and "neurons: 100" in out
    assert png.is_file() and png.stat().st_size > 10_000 and summary["png"] == str(png)

    bad = tmp_path / "bad.yaml"
    bad.write_text(EI_YAML.replace("size: 80", "size: 0").replace("model: izhikevich", "model: izh"))
    assert main(["graph", str(bad)]) == 1
    captured = capsys.readouterr()
    assert f"{bad}:7: populations.exc.size:" in captured.out
    assert f"{bad}:8: populations.inh.model:" in captured.out
    assert captured.err.strip().splitlines()[-1].startswith("braincore graph: error: 2 problem(s)")


def test_cli_graph_on_bundled_example(tmp_path, capsys):
    png = tmp_path / "two.png"
    assert main(["graph", "examples/two_regions.yaml", "--out", str(png)]) == 0
    out = capsys.readouterr().out
    assert "v1.exc -> v2.exc" in out and png.is_file()


def test_run_hands_the_assembly_to_the_simulator(tmp_path, capsys, monkeypatch):
    path = tmp_path / "ei.yaml"
    path.write_text(EI_YAML.replace("duration: 200 ms", "duration: 20 ms"))
    import sys

    monkeypatch.setitem(sys.modules, "braincore.simulator", None)  # as before the simulator existed
    assert main(["run", str(path), "--out", str(tmp_path), "--no-plot"]) == 1
    assert "simulator not available" in capsys.readouterr().err
    monkeypatch.undo()
    pytest.importorskip("braincore.simulator")
    assert main(["run", str(path), "--out", str(tmp_path), "--no-plot", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["ok"] and summary["kind"] == "assembly" and summary["simulated_ms"] == pytest.approx(20.0)
