"""The ``assembly`` config kind: a spiking network (:class:`~braincore.graph.Assembly`) declared in YAML.

A full example (every key; all but ``kind`` and ``populations`` are optional)::

    kind: assembly
    name: cortex_with_bg              # default: the file name
    dt: 0.1 ms                        # run settings (ignored when this file is included by another)
    duration: 1 s
    seed: 1
    device: cpu                       # cpu, cuda, cuda:N, mps or auto
    dtype: float32                    # or float64
    backend: auto                     # auto (native C loop where supported, else torch), native or torch
    threads: 1                        # native engine threads: N or auto (default: $BRAINCORE_THREADS, else 1)
    batch: 1

    include:                          # sub-assemblies, each under a prefix
      bg: {file: regions/basal_ganglia.yaml}          # relative to this file
      v1: {file: region_ei.yaml, ports: {drive: exc}} # ports: add/redirect ports of the included copy

    populations:                      # name: {model, size, params, preset, method, init, region}
      exc:
        model: lif                    # a registered neuron model (braincore models)
        size: 3200
        params: {tau_m: 20 ms, v_th: -50 mV}
        init: {v: {dist: uniform, low: -65 mV, high: -50 mV}}
      inh: {model: izhikevich, preset: fast_spiking, size: 800, method: euler}
      qif1: {model: qif, size: 10, params: {v_reset: -70 mV}}   # a user model of the models: section below
      qif2:
        size: 10
        model:                        # or written inline (equal definitions share one class and C function)
          params: {tau: 10 ms, v_r: -65 mV, v_c: -50 mV, R: 100 MOhm, v_peak: 30 mV, v_reset: -70 mV}
          state: {v: {unit: mV, init: v_r}}     # or {v: mV} (initial value 0), or {v: -65 mV}
          equations: ["dv/dt = ((v - v_r)*(v - v_c)/(v_c - v_r) + R*I) / tau"]
          threshold: v >= v_peak
          reset: [v = v_reset]
          refractory: 1 ms
          method: rk4

    models:                           # user models written as equations (keys: braincore.neurons.defined.user_model)
      qif: {params: ..., state: ..., equations: [...], threshold: ..., reset: [...], refractory: 1 ms}

    projections:                      # a list; pre/post name a population, a port (bg.in) or bg.<population>
      - name: ee                      # default "pre->post"
        pre: exc
        post: exc
        connector: {type: fixed_probability, p: 0.02}
        weight: {dist: normal, mean: 0.5 nS, std: 0.1 nS}   # number, quantity or distribution (a magnitude)
        synapse: {type: conductance, tau: 5 ms, E_rev: 0 mV}
        delay: 1.5 ms                 # default: one time step
        sign: excitatory              # optional: excitatory | inhibitory
        storage: sparse               # auto (default) | dense | sparse
        plasticity: {rule: stdp}      # kept as written for the plasticity rules
      - {pre: exc, post: bg.in, connector: {type: fixed_indegree, k: 50}, weight: 0.2 nS,
         synapse: {type: conductance, tau: 5 ms, E_rev: 0 mV}}

    inputs:                           # name?, type, target and params (the params may also be written inline)
      - name: drive
        type: poisson                 # `sources` independent trains of `rate` per neuron, through a synapse
        target: exc
        params: {rate: 5 Hz, sources: 10, weight: 1 nS, synapse: {type: conductance, tau: 5 ms, E_rev: 0 mV}}
      - {type: poisson, target: inh, rate: 5 Hz, weight: 0.2 mV}      # instantaneous synapse: a jump in mV
      - {type: constant_current, target: exc, amplitude: 0.1 nA, start: 100 ms, stop: 200 ms}
      - {type: step_current, target: inh, amplitude: 2, start: 50 ms, stop: 60 ms, neurons: [0, 1]}
      - {type: time_varying_current, target: exc, values: [0, 0.1, 0.2]}   # one value per step (or an .npy)
      - {type: spike_file, target: exc, path: stimulus.npz, weight: 1 nS}  # arrays `times` (ms), `neurons`

    monitors:
      - {type: spikes, target: exc, max_spikes: 100000}
      - {type: state, target: inh, variables: [v, u], neurons: [0, 1, 2]}
      - {type: rate, target: bg.in, bin: 5 ms}

    ports:                            # this file's ports, for when another file includes it
      in: exc
      out: exc

    modulators:                       # neuromodulator channels (brain-wide, read by rules such as rstdp)
      dopamine: {tau: 200 ms, baseline: 0, value: 0}   # value: initial level; tasks set/pulse it from Python

Quantities take units (``20 ms``, ``0.5 nS``); bare numbers are canonical (ms, mV, nA, nS, Hz...). Weights are
in the unit the synapse and the post model imply (:func:`braincore.validation.weight_dimension`: mV for
``instantaneous``, nS for ``conductance``, the post model's input unit for ``exponential`` and ``alpha``). The
parameters of each input type are listed in :data:`braincore.validation.INPUT_PARAMS`; file names (an input's
``path``, a ``values`` .npy file, a ``file`` connector's ``path``) are relative to this file.

Includes are resolved relative to the including file; an included file is itself a ``kind: assembly`` (its run
settings are ignored; its populations, projections, inputs and monitors are copied under the prefix, and its
ports become ``prefix.port``). Include cycles are errors.

Validation reports every problem at once as ``file:line: key.path: message``; problems inside an included
file name that file and line. A user model's problems (unknown key or symbol, unit mismatch, a state variable never
updated, a parameter that divides and is zero, an unknown method) point at the key inside the model mapping
(``populations.qif2.model.equations[0]``, or ``models.qif.equations[0]`` for a named model). Running a config hands the
validated :class:`~braincore.graph.Assembly` to
``braincore.simulator.run_assembly(assembly, options)``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Union


from .config import (AnyMapping, ConfigProblems, Document, Integer, Kind, ListOf, Problem, Quantity, Record, Spec,
                     Text, Threads, load_file, load_text, register_kind, validate)
from .errors import ConfigError
from .graph import Assembly
from .validation import Issue, OutputName


class Value(Spec):
    """A number, a quantity string or a distribution mapping (checked against its dimension later)."""

    def __init__(self, default: Any = None, doc: str = ""):
        self.default, self.doc = default, doc
        self.description = "a number, a quantity such as '0.5 nS', or a distribution {dist: normal, mean, std}"

    def check(self, value, doc, path, problems):
        if isinstance(value, bool) or not isinstance(value, (int, float, str, Mapping)):
            problems.append(doc.problem(path, f"expected {self.description}, got {value!r}"))
            return None
        return dict(value) if isinstance(value, Mapping) else value


class MappingOrList(Spec):
    """A mapping, or a non-empty list of mappings (checked by their consumer), kept as written."""

    def __init__(self, default: Any = None, doc: str = ""):
        self.default, self.doc = default, doc
        self.description = "a mapping or a list of mappings"

    def check(self, value, doc, path, problems):
        if isinstance(value, Mapping):
            return dict(value)
        if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            return [dict(v) for v in value]
        problems.append(doc.problem(path, f"expected {self.description}, got {value!r}"))
        return None


def _name_ok(name: Any, doc: Document, path: tuple, problems: list, what: str) -> bool:
    if not isinstance(name, str) or not name:
        problems.append(doc.problem(path, f"{what} names must be strings, got {name!r}"))
        return False
    if "." in name:
        problems.append(doc.problem(path, f"{what} name {name!r} may not contain '.' (dots separate include "
                                          f"prefixes from names)"))
        return False
    if "/" in name or "\\" in name or "\0" in name:
        problems.append(doc.problem(path, f"{what} name {name!r} may not contain a path separator ('/' or '\\')"))
        return False
    return True


class ModelRef(Spec):
    """A population's model: a registered name (``lif``), the name of an entry of the file's ``models:`` section,
    or a user model written inline as a mapping (checked by :func:`braincore.validation.check_population`)."""

    def __init__(self, required: bool = False, doc: str = ""):
        self.required, self.doc, self.default = required, doc, None
        self.description = "a model name or a mapping {equations: [...], params: {...}, state: {...}, ...}"

    def check(self, value, doc, path, problems):
        if isinstance(value, str):
            return value
        if isinstance(value, Mapping):
            return dict(value)
        problems.append(doc.problem(path, f"expected {self.description}, got {value!r}"))
        return None


class _Absolute(tuple):
    """A key path from the top of the document (not relative to the item), for provenance remaps."""


POPULATION = Record({
    "model": ModelRef(required=True, doc="a registered model name, a name under models:, or a user model mapping"),
    "size": Integer(required=True, doc="number of neurons"),
    "params": AnyMapping(default=None, doc="parameter overrides, units allowed"),
    "preset": Text(doc="a named parameter set of the model"),
    "method": Text(doc="integration method"),
    "init": AnyMapping(default=None, doc="initial state: variable -> value or distribution"),
    "region": Text(doc="region label (default: the include prefix)"),
})


def _check_populations(value: Mapping, doc: Document, path: tuple, problems: list) -> dict:
    out = {}
    for name, spec in value.items():
        if _name_ok(name, doc, path + (name,), problems, "population"):
            out[name] = POPULATION.check(spec, doc, path + (name,), problems)
    return out


def _check_models(value: Mapping, doc: Document, path: tuple, problems: list) -> dict:
    """Named user models: each a mapping (its keys and equations are checked by the validation of the
    populations, and here once for models no population uses)."""
    from .neurons import MODELS

    out = {}
    for name, spec in value.items():
        if not _name_ok(name, doc, path + (name,), problems, "model"):
            continue
        if name in MODELS:
            problems.append(doc.problem(path + (name,), f"{name!r} is a built-in model; give the user model "
                                                        f"another name"))
            continue
        if not isinstance(spec, Mapping):
            problems.append(doc.problem(path + (name,), f"expected a user model mapping {{equations: [...], "
                                                        f"params: {{...}}, state: {{...}}, ...}}, got {spec!r}"))
            continue
        out[name] = dict(spec)
    return out


PROJECTION = Record({
    "name": Text(doc="default 'pre->post'"),
    "pre": Text(required=True), "post": Text(required=True),
    "connector": AnyMapping(doc="{type: fixed_probability, p: 0.02} etc."),
    "weight": Value(), "synapse": AnyMapping(doc="{type: exponential, tau: 5 ms} etc."),
    "delay": Value(), "sign": Text(), "storage": Text("auto"),
    "plasticity": MappingOrList(doc="a rule {rule: stdp, ...} or a list of rules, kept as written"),
})


def _check_input(value: Mapping, doc: Document, path: tuple, problems: list) -> dict:
    """``name``, ``type``, ``target`` and ``params``; any other key is a parameter written inline."""
    out = dict(value)
    for key in ("type", "target"):
        if key not in value:
            problems.append(doc.problem(path, f"missing required key {key!r}"))
            out[key] = None
    for key in ("name", "type", "target"):
        if value.get(key) is not None and not isinstance(value[key], str):
            problems.append(doc.problem(path + (key,), f"expected a string, got {value[key]!r}"))
            out[key] = None
    if value.get("params") is not None and not isinstance(value["params"], Mapping):
        problems.append(doc.problem(path + ("params",), f"expected a mapping, got {value['params']!r}"))
        out["params"] = None
    inline = [k for k in value if k not in ("name", "type", "target", "params")]
    for key in inline:
        if isinstance(value.get("params"), Mapping) and key in value["params"]:
            problems.append(doc.problem(path + (key,), "given twice, inline and in params"))
    return out


MONITOR = Record({
    "name": OutputName(), "type": Text(required=True), "target": Text(required=True),
    "variables": ListOf(Text(), default=None), "neurons": ListOf(Integer(), default=None),
    "max_spikes": Integer(), "bin": Quantity("time"),
})

INCLUDE = Record({"file": Text(doc="path relative to this file"),
                  "region": Text(doc="a registered region type (braincore.region_types), instead of a file"),
                  "params": AnyMapping(default=None, doc="the region type's parameters"),
                  "ports": AnyMapping(default=None, doc="{port: population of the included file}")})


def _check_includes(value: Mapping, doc: Document, path: tuple, problems: list) -> dict:
    out = {}
    for prefix, spec in value.items():
        if _name_ok(prefix, doc, path + (prefix,), problems, "include prefix"):
            out[prefix] = INCLUDE.check(spec, doc, path + (prefix,), problems)
    return out


def _check_ports(value: Mapping, doc: Document, path: tuple, problems: list) -> dict:
    out = {}
    for port, target in value.items():
        if not _name_ok(port, doc, path + (port,), problems, "port"):
            continue
        if not isinstance(target, str):
            problems.append(doc.problem(path + (port,), f"expected a population name, got {target!r}"))
            continue
        out[port] = target
    return out


SCHEMA = Record({
    "kind": Text(required=True),
    "name": OutputName(doc="default: the file name; names the output files <out>/<name>.npz and _raster.png"),
    "description": Text(),
    # range checks of the run settings are the Assembly's (so that each problem is reported once)
    "dt": Quantity("time", 0.1), "duration": Quantity("time", 1000.0), "seed": Integer(0),
    "device": Text("cpu"), "dtype": Text("float32"), "batch": Integer(1),
    "backend": Text("auto", doc="auto, native (C loop on the CPU) or torch"),
    "threads": Threads(),
    "populations": AnyMapping(_check_populations, default=None),
    "projections": ListOf(PROJECTION, default=None),
    "inputs": ListOf(AnyMapping(_check_input), default=None),
    "monitors": ListOf(MONITOR, default=None),
    "include": AnyMapping(_check_includes, default=None),
    "ports": AnyMapping(_check_ports, default=None),
    "modulators": AnyMapping(default=None, doc="neuromodulator channels: name -> {tau, baseline, value}"),
    "models": AnyMapping(_check_models, default=None,
                         doc="user models written as equations, by name, for populations to use (model: name)"),
})

RUN_KEYS = ("duration", "dt", "seed", "device", "dtype", "batch", "backend", "threads")


# ------------------------------------------------------------------------------------------ building
#: the deepest chain of included files (a includes b includes c ...)
MAX_INCLUDE_DEPTH = 32


def _include_problem(err: ConfigError, doc: Document, where: tuple, name: str) -> list[Problem]:
    """The problems of an included file that cannot be read: located in that file when they have a line, else
    at the ``include`` key of the including file (``cannot include 'x.png': ...``)."""
    if isinstance(err, ConfigProblems):
        return list(err.problems)
    return [doc.problem(where, f"cannot include {name!r}: {err}")]


def _build(config: dict, doc: Document, problems: list, stack: tuple) -> tuple[Assembly, dict]:
    """The assembly of one (schema-checked) document, with includes; ``provenance`` maps ``(kind, name)`` of
    each item to ``(document, key path)`` so that the Assembly's issues can be pointed at their lines."""
    base = Path(doc.file).parent
    assembly = Assembly(config.get("name") or Path(doc.file).stem)
    assembly.set_run(**{k: config[k] for k in RUN_KEYS if config.get(k) is not None})
    prov: dict = {}
    for prefix, inc in (config.get("include") or {}).items():
        if not inc:
            continue
        if (inc.get("file") is None) == (inc.get("region") is None):
            problems.append(doc.problem(("include", prefix), "give either 'file' (a region file) or 'region' (a "
                                                             "region type), not both or neither"))
            continue
        if inc.get("region") is not None:
            _include_region(assembly, prefix, inc, doc, problems, prov)
            continue
        if inc.get("params") is not None:
            problems.append(doc.problem(("include", prefix, "params"), "'params' belongs to a region type "
                                                                       "(region: ...); a file takes none"))
        where = ("include", prefix, "file")
        path = (base / inc["file"]).resolve()
        if path in stack:
            chain = " -> ".join(p.name for p in stack[stack.index(path):] + (path,))
            problems.append(doc.problem(where, f"include cycle: {chain}"))
            continue
        if len(stack) > MAX_INCLUDE_DEPTH:
            problems.append(doc.problem(where, f"includes nested more than {MAX_INCLUDE_DEPTH} files deep "
                                               f"({stack[0].name} -> ... -> {path.name})"))
            continue
        if path.is_dir():
            problems.append(doc.problem(where, f"{inc['file']!r} is a folder, not a config file ({path})"))
            continue
        if not path.is_file():
            problems.append(doc.problem(where, f"no such file {inc['file']!r} (looked for {path})"))
            continue
        try:
            sub_doc = load_file(base / inc["file"])  # named as the including file names it
        except ConfigError as err:  # unreadable, binary, too large, bad YAML
            problems.extend(_include_problem(err, doc, where, inc["file"]))
            continue
        data = sub_doc.data
        if data is None:
            problems.append(doc.problem(where, f"{inc['file']!r} is empty (expected a 'kind: assembly' config)"))
            continue
        if not isinstance(data, Mapping) or data.get("kind") != "assembly":
            kind = data.get("kind") if isinstance(data, Mapping) else None
            problems.append(doc.problem(where, f"{inc['file']!r} is not a 'kind: assembly' config "
                                               f"(kind: {kind!r})"))
            continue
        problems.extend(sub_doc.duplicates)
        sub_config = SCHEMA.check(data, sub_doc, (), problems)
        if sub_config is None:
            continue
        sub, sub_prov = _build(sub_config, sub_doc, problems, stack + (path,))
        assembly.include(sub, prefix, ports=inc.get("ports"))
        for (kind, name), place in sub_prov.items():
            prov[(kind, f"{prefix}.{name}")] = place
        for port in inc.get("ports") or {}:
            prov[("port", f"{prefix}.{port}")] = (doc, ("include", prefix, "ports", port))
        prov[("include", prefix)] = (doc, ("include", prefix))

    models = config.get("models") or {}
    used: set = set()
    for name, p in (config.get("populations") or {}).items():
        if p is None:
            continue
        model, remap = p.get("model"), {}
        if isinstance(model, str) and model in models:
            # a named user model: the population holds its mapping; its problems point at models.<name>
            used.add(model)
            remap = {"model": _Absolute(("models", model))}
            model = {"name": model, **models[model]}
        assembly.add_population(name, model, p.get("size"), p.get("params"), preset=p.get("preset"),
                                method=p.get("method"), init=p.get("init"), region=p.get("region"))
        prov[("population", name)] = (doc, ("populations", name), remap)
    from .validation import user_model_issues

    for name in models:
        if name not in used:  # checked once here (a used one is checked with its populations)
            for path, message in user_model_issues({"name": name, **models[name]}):
                problems.append(doc.problem(("models", name) + path, message))
    for port, target in (config.get("ports") or {}).items():
        assembly.add_port(port, target)
        prov[("port", port)] = (doc, ("ports", port))

    named: dict = {}
    for i, s in enumerate(config.get("projections") or []):
        if s is None or s.get("pre") is None or s.get("post") is None:
            continue
        if s.get("name") is not None:
            if s["name"] in named:
                problems.append(doc.problem(("projections", i, "name"), f"duplicate projection name "
                                                                         f"{s['name']!r} (also projections"
                                                                         f"[{named[s['name']]}])"))
                continue
            named[s["name"]] = i
        connector = s.get("connector")
        if isinstance(connector, Mapping) and connector.get("type") == "file" and \
                isinstance(connector.get("path"), str):
            connector = {**connector, "path": _relative_to(base, connector["path"])}
        spec = assembly.add_projection(s["pre"], s["post"], connector, s.get("weight"), s.get("synapse"),
                                       s.get("delay"), name=s.get("name"), sign=s.get("sign"),
                                       storage=s.get("storage") or "auto", plasticity=s.get("plasticity"))
        prov[("projection", spec.name)] = (doc, ("projections", i))

    for kind, items, names in (("input", config.get("inputs") or [], {}),
                               ("monitor", config.get("monitors") or [], {})):
        for i, s in enumerate(items):
            if s is None or s.get("type") is None or s.get("target") is None:
                continue
            if s.get("name") is not None:
                if s["name"] in names:
                    problems.append(doc.problem((kind + "s", i, "name"), f"duplicate {kind} name {s['name']!r} "
                                                                         f"(also {kind}s[{names[s['name']]}])"))
                    continue
                names[s["name"]] = i
            remap: dict = {}
            if kind == "input":
                nested = dict(s.get("params") or {})
                remap = {k: ("params", k) for k in nested}
                params = {**nested, **{k: v for k, v in s.items() if k not in ("name", "type", "target", "params")}}
                for key in ("path", "values"):
                    if isinstance(params.get(key), str):
                        params[key] = _relative_to(base, params[key])
                spec = assembly.add_input(s.get("name"), s["type"], s["target"], params)
            else:
                spec = assembly.add_monitor(s.get("name"), s["type"], s["target"], s.get("variables"),
                                            neurons=s.get("neurons"), max_spikes=s.get("max_spikes"),
                                            bin=s.get("bin"))
            prov[(kind, spec.name)] = (doc, (kind + "s", i), remap)
    for name, spec in (config.get("modulators") or {}).items():
        if not isinstance(spec, Mapping):
            problems.append(doc.problem(("modulators", name), f"expected a mapping such as {{tau: 200 ms, "
                                                              f"baseline: 0}}, got {spec!r}"))
            continue
        unknown = [k for k in spec if k not in ("tau", "baseline", "value")]
        for key in unknown:
            problems.append(doc.problem(("modulators", name, key), "unknown key (expected one of: tau, baseline, "
                                                                   "value)"))
        if not unknown:
            assembly.add_modulator(name, **spec)
            prov[("modulator", name)] = (doc, ("modulators", name), {})
    return assembly, prov


def _include_region(assembly: Assembly, prefix: str, inc: dict, doc: Document, problems: list,
                    prov: dict) -> None:
    """Build a region type with its parameters and include it under ``prefix`` (problems point at the include)."""
    from .region_types import build_region

    try:
        sub = build_region(inc["region"], inc.get("params"))
    except ConfigError as err:
        for key, message in (err.items or [((), str(err))]):
            key_path = (key,) if isinstance(key, str) else tuple(key or ())
            problems.append(doc.problem(("include", prefix) + key_path, message))
        return
    assembly.include(sub, prefix, ports=inc.get("ports"))
    for kind, name in _items_of(sub):
        prov[(kind, f"{prefix}.{name}")] = (doc, ("include", prefix))
    for port in inc.get("ports") or {}:
        prov[("port", f"{prefix}.{port}")] = (doc, ("include", prefix, "ports", port))
    prov[("include", prefix)] = (doc, ("include", prefix))


def _items_of(sub: Assembly) -> list:
    """``(kind, name)`` of every item of an assembly built in Python (issues inside it point at its include)."""
    out = [("population", p.name) for p in sub.populations()]
    out += [("projection", p.name) for p in sub.projections()]
    out += [("input", i.name) for i in sub.inputs] + [("monitor", m.name) for m in sub.monitors]
    out += [("port", port) for port in sub._ports] + [("modulator", m) for m in sub.modulators]
    return out


def _relative_to(base: Path, name: str) -> str:
    """A file name relative to the config's folder, made absolute (kept as written when that is no file)."""
    path = Path(name)
    if path.is_absolute():
        return name
    return str((base / path).resolve())


def _locate(issue: Issue, prov: dict, doc: Document) -> Problem:
    if issue.kind in ("run", "assembly", "resources"):
        return doc.problem(issue.path, issue.message)
    place = prov.get((issue.kind, issue.name))
    if place is None:
        return doc.problem((), str(issue))
    where_doc, keypath, *rest = place
    path = tuple(issue.path)
    remap = rest[0] if rest else {}
    if path and path[0] in remap:
        if isinstance(remap[path[0]], _Absolute):
            return where_doc.problem(tuple(remap[path[0]]) + path[1:], issue.message)
        path = remap[path[0]] + path[1:]
    return where_doc.problem(keypath + path, issue.message)


def _covered(problem: Problem, reported: dict) -> bool:
    """Whether a schema problem already covers this key path (the value failed there and is ``None``)."""
    paths = reported.get(problem.file, ())
    return any(problem.keypath[:len(p)] == p for p in paths)


def _reported_paths(problems: list) -> dict:
    out: dict = {}
    for p in problems:
        path = tuple(p.keypath)
        if p.message.startswith("missing required key "):
            key = p.message.split("'")[1] if "'" in p.message else None
            path = path + (key,) if key else path
        out.setdefault(p.file, []).append(path)
    return out


def _semantic_check(config: dict, doc: Document, problems: list) -> None:
    """Build the assembly (includes resolved) and point each of its issues at its file, line and key path."""
    found: list[Problem] = []  # the file's duplicate keys are among ``problems`` already (validate)
    top = Path(doc.file).resolve() if Path(doc.file).is_file() else Path(doc.file).absolute()
    assembly, prov = _build(config, doc, found, (top,))
    reported = _reported_paths(problems + found)
    for issue in assembly.issues():
        problem = _locate(issue, prov, doc)
        if not _covered(problem, reported):
            found.append(problem)
    seen = {str(p) for p in problems}
    for problem in found:
        if str(problem) not in seen:
            seen.add(str(problem))
            problems.append(problem)
    config["_assembly"] = assembly


def run_assembly_config(config: dict, options: dict) -> dict:
    """The kind's runner: hand the validated assembly to ``braincore.simulator.run_assembly``."""
    assembly = config["_assembly"]
    try:
        from .simulator import run_assembly
    except ImportError as err:
        if getattr(err, "name", None) not in (None, "braincore.simulator"):
            raise
        raise ConfigError("simulator not available: braincore.simulator.run_assembly is missing; "
                          "`braincore validate` and `braincore graph` work without it") from None
    result = run_assembly(assembly, options)
    if not isinstance(result, Mapping):
        return {"kind": "assembly", "result": result}
    return {"kind": "assembly", **result}


# ------------------------------------------------------------------------------------------ entry points
def assembly_from_document(doc: Document) -> Assembly:
    """The validated assembly of a loaded document; :class:`ConfigProblems` lists every problem."""
    kind, config = validate(doc)
    if "_assembly" not in config:  # task kinds whose config holds an assembly (e.g. cbgt_selection) pass
        raise ConfigError(f"{doc.file}: a {kind.name!r} config, not an assembly (kind: assembly)")
    return config["_assembly"]


def load_assembly(path: Union[str, Path]) -> Assembly:
    """Load, compose and validate a ``kind: assembly`` YAML file: ``a = load_assembly("net.yaml")``. The path is
    resolved as the ``braincore`` command resolves it (the current folder, then the bundled configs by name)."""
    from .config import resolve_config_path

    return assembly_from_document(load_file(resolve_config_path(path)))


def assembly_from_text(text: str, file: str = "<string>") -> Assembly:
    """Like :func:`load_assembly` for YAML text (includes are relative to ``file``'s folder)."""
    return assembly_from_document(load_text(text, file))


register_kind(Kind("assembly", SCHEMA, run_assembly_config, _semantic_check,
                   "a spiking network of populations and projections (braincore.graph.Assembly)"))

__all__ = ["SCHEMA", "load_assembly", "assembly_from_text", "assembly_from_document", "run_assembly_config"]
