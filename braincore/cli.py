"""The ``braincore`` command.

    braincore run [CONFIG] [--out DIR] [--seed N] [--no-plot] [--json]   run a config (default: the bundled demo)
                  [--env ENV_ID]                 an agent config (kind rl_agent) on another environment
    braincore validate CONFIG [--json]             list every problem in a config; exit 1 if any
    braincore configs [--json]                     the bundled configs, one line each
    braincore plot neuron MODEL [--preset P] [--current I] [--duration T] [--dt DT] [--out PNG] [--json]
    braincore plot run FILE.npz [--neurons N|A:B|all] [--trial K] [--bin MS] [--out PNG] [--json]
    braincore models [--json]                      the neuron models, their parameters with units and presets
    braincore regions [--json]                     the region types YAML can include, their parameters with units
    braincore graph CONFIG [--out PNG] [--json]    an assembly's populations, projections and synapse counts

``braincore plot FILE.npz`` is short for ``braincore plot run FILE.npz``. With ``--json`` stdout ends with
exactly one JSON line, ``{"ok": true, ...}`` or ``{"ok": false, "error": ...}``, whatever the command and
whatever a config's runner prints. Exit codes: 0 done; 1 an error, said in one line on stderr (``validate``
first lists each problem on its own line, ``file:line: key: message``); 2 a usage error, with the usage of the
command that was mistyped; 130 stopped by Ctrl-C (one line on stderr: where it stopped, what was saved, how to
resume). Phases that print nothing for a few seconds (building a large network) show a status on stderr.

Start-up is kept short: this module imports only the standard library, and each command imports what it needs
(PyTorch only where networks are built or run: ``--help``, ``configs``, ``models``, ``regions`` and ``validate`` of
any bundled config -- assemblies, galleries, trainings, tasks, distributed runs -- never load it; the task modules
import it in their runners).
"""
from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
import time
from pathlib import Path
from typing import Any, NoReturn, Optional, Sequence

from .errors import ConfigError
from .progress import Heartbeat

DEFAULT_CONFIG = "gallery.yaml"
DEFAULT_OUT = "braincore_out"

#: exit code of a run stopped by Ctrl-C (128 + SIGINT, as shells report it)
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """A mistyped command line; ``parser`` is the (sub)command whose usage to show."""

    def __init__(self, parser: argparse.ArgumentParser, message: str):
        super().__init__(message)
        self.parser, self.message = parser, message


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises :class:`UsageError` instead of exiting, so that ``main`` prints the usage of
    the subcommand at fault, the one-line reason and (with ``--json``) the JSON line."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(self, message)


def parse_neurons(text: str):
    """``--neurons``: ``N`` (the first N of each population), ``A:B`` (neurons A to B-1 of each) or ``all``, as
    :func:`braincore.viz.plot_run` takes it (``N``, ``(A, B)``, ``"all"``)."""
    text = str(text).strip().lower()
    if text == "all":
        return "all"
    try:
        if ":" in text:
            lo, hi = text.split(":", 1)
            lo_i, hi_i = int(lo or 0), int(hi)
            if 0 <= lo_i < hi_i:
                return (lo_i, hi_i)
        elif int(text) >= 1:
            return int(text)
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"give N (the first N of each population, N >= 1), A:B (neurons A to B-1, "
                                     f"A < B) or all; got {text!r}")


def _parser() -> tuple[_Parser, dict]:
    """The parser and every (sub)command's parser by name (``"plot run"`` for nested ones)."""
    from . import __version__

    parser = _Parser(prog="braincore", description="braincore: a brain-inspired cognitive engine",
                     epilog="`braincore COMMAND --help` describes a command. --json: the last line on stdout is "
                            "one JSON summary. Exit codes: 0 done, 1 error, 2 usage error, 130 Ctrl-C.")
    parser.add_argument("--version", action="version", version=f"braincore {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subs: dict = {"": parser}

    def json_flag(p):
        p.add_argument("--json", action="store_true", help="end stdout with one JSON summary line")

    run = sub.add_parser("run", help="run a config (default: the bundled demo)",
                         description="Run a config: a simulation, a training, a task. Ctrl-C stops it (exit "
                                     "130) and says how to resume where the run keeps a checkpoint.")
    run.add_argument("config", nargs="?", default=DEFAULT_CONFIG,
                     help=f"YAML file, or the name of a bundled config (`braincore configs`; default: "
                          f"{DEFAULT_CONFIG})")
    run.add_argument("--out", default=DEFAULT_OUT,
                     help=f"folder for everything the run writes: the summary (<config>.json), plots (PNG), "
                          f"recordings (npz) and checkpoints (default: {DEFAULT_OUT})")
    run.add_argument("--no-plot", action="store_true", help="do not write PNG files")
    run.add_argument("--seed", type=int, default=None,
                     help="override the config's seed (repeat a run over seeds without editing the YAML)")
    run.add_argument("--env", default=None, metavar="ENV_ID",
                     help="an agent config (kind rl_agent) on another gymnasium environment: its env.id, "
                          "checked like the config's own before anything runs")
    json_flag(run)
    subs["run"] = run

    val = sub.add_parser("validate", help="check a config and list every problem",
                         description="Check a config; list every problem as file:line: key: message (exit 1).")
    val.add_argument("config", help="YAML file, or the name of a bundled config")
    json_flag(val)
    subs["validate"] = val

    configs = sub.add_parser("configs", help="list the bundled configs",
                             description="The bundled configs: name (what `braincore run NAME` takes), kind and "
                                         "a one-line description.")
    json_flag(configs)
    subs["configs"] = configs

    plot = sub.add_parser("plot", help="plot a neuron model, or a saved run again",
                          description="Plot a neuron model's voltage trace (plot neuron MODEL), or a run saved by "
                                      "`braincore run` again (plot run FILE.npz, or plot FILE.npz).")
    plot_sub = plot.add_subparsers(dest="what", metavar="WHAT", parser_class=_Parser)
    subs["plot"] = plot
    neuron = plot_sub.add_parser("neuron", help="voltage trace of one neuron model under a step current",
                                 description="Voltage trace of one neuron model under a step current, as a PNG.")
    neuron.add_argument("model", help="model name (`braincore models`), e.g. lif, alif, izhikevich, adex, hh")
    neuron.add_argument("--preset", help="a named parameter set, e.g. regular_spiking")
    neuron.add_argument("--current", default=None,
                        help="step amplitude in the model's input unit, units allowed ('0.3 nA'); default per model")
    neuron.add_argument("--duration", default="300 ms", help="simulated time (default 300 ms)")
    neuron.add_argument("--dt", default="0.1 ms", help="time step (default 0.1 ms)")
    neuron.add_argument("--onset", default="20 ms", help="current onset (default 20 ms)")
    neuron.add_argument("--method", default=None, help="integration method (default: the model's)")
    neuron.add_argument("--out", default=None,
                        help="PNG file to write, or a folder to write MODEL[_PRESET].png into (default "
                             "MODEL[_PRESET].png here)")
    json_flag(neuron)
    subs["plot neuron"] = neuron
    replot = plot_sub.add_parser("run", help="plot a saved run (the .npz of `braincore run`) again",
                                 description="Plot a run saved by `braincore run` again from its .npz: spike "
                                             "raster, population rates and state traces.")
    replot.add_argument("npz", help="the .npz that `braincore run` wrote (e.g. braincore_out/coba.npz)")
    replot.add_argument("--neurons", type=parse_neurons, default=None,
                        help="which neurons of each population the raster shows: N (the first N), A:B (A to "
                             "B-1) or all (default: the first 400; the title says when it is a subset)")
    replot.add_argument("--trial", type=int, default=0, help="which trial of a batched run (default 0)")
    replot.add_argument("--bin", type=float, default=5.0, help="population-rate bin in ms (default 5)")
    replot.add_argument("--out", default=None,
                        help="PNG file to write, or a folder to write NAME_plot.png into (default: NAME_plot.png "
                             "beside the npz)")
    json_flag(replot)
    subs["plot run"] = replot

    graph = sub.add_parser("graph", help="summarise an assembly config: populations, projections, synapses",
                           description="Summarise an assembly config: populations, projections, expected synapse "
                                       "counts; --out also draws the region graph.")
    graph.add_argument("config", help="a kind: assembly YAML file, or the name of a bundled config")
    graph.add_argument("--out", default=None,
                       help="also draw the region graph to this PNG (or into this folder, as NAME_graph.png)")
    json_flag(graph)
    subs["graph"] = graph

    models = sub.add_parser("models", help="list neuron models, parameters, units and presets",
                            description="Every neuron model: its parameters with defaults, units and meaning, "
                                        "methods and presets.")
    json_flag(models)
    subs["models"] = models

    regions = sub.add_parser("regions", help="list region types with their parameters, units and meaning",
                             description="Every region type YAML can include (include: {x: {region: TYPE, params: "
                                         "{...}}}): its parameters with defaults, units and meaning.")
    json_flag(regions)
    subs["regions"] = regions
    return parser, subs


def _png_path(out: Optional[str], default_name: str, default_dir: Path = Path(".")) -> Path:
    """Where ``--out`` says a PNG goes: the file given, or ``default_name`` inside a folder given (an existing
    folder, or one written with a trailing slash), or ``default_dir / default_name``."""
    if out is None:
        return default_dir / default_name
    path = Path(out)
    if path.is_dir() or out.endswith(("/", "\\")):
        return path / default_name
    return path


# ------------------------------------------------------------------------------------------ run
def _starting_phase(kind, config: dict) -> str:
    """What the first silent phase of a run is, for the heartbeat."""
    assembly = config.get("_assembly")
    if assembly is not None:
        try:
            summary = assembly.summary()
            synapses = summary["synapses"]
            return (f"building {assembly.name or 'the network'}: {summary['neurons']:,} neurons, "
                    f"~{synapses:,.0f} synapses" + ("" if summary["synapses_complete"] else "+"))
        except Exception:  # a summary is only a courtesy here
            return f"building {assembly.name or 'the network'}"
    return f"running {kind.name}"


def _resume_command(args: argparse.Namespace) -> str:
    parts = ["braincore", "run", args.config, "--out", args.out]
    if args.seed is not None:
        parts += ["--seed", str(args.seed)]
    if getattr(args, "env", None) is not None:
        parts += ["--env", args.env]
    return " ".join(shlex.quote(p) for p in parts)


class _RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during ``braincore run``, with the one-line message and the checkpoint (if any)."""

    def __init__(self, message: str, checkpoint: Optional[str]):
        super().__init__(message)
        self.message, self.checkpoint = message, checkpoint


def _interrupt_message(err: KeyboardInterrupt, args: argparse.Namespace, kind, config: dict,
                       seconds: float) -> _RunInterrupted:
    again = _resume_command(args)
    where = getattr(err, "where", None)
    if where is not None:  # a Trainer stopped at a safe point (braincore.progress.TrainingInterrupted)
        ckpt = getattr(err, "checkpoint", None)
        if ckpt is not None and config.get("resume", True):
            return _RunInterrupted(f"interrupted at {where} after {seconds:.1f} s; checkpoint written to {ckpt}; "
                                   f"resume with: {again}", str(ckpt))
        return _RunInterrupted(f"interrupted at {where} after {seconds:.1f} s; {err}; run again with: {again}",
                               str(ckpt) if ckpt else None)
    if "resume" in getattr(kind.schema, "fields", {}):  # a task that checkpoints at intervals
        out = Path(args.out)
        ckpts = sorted(out.glob("*.ckpt"), key=lambda p: p.stat().st_mtime) if out.is_dir() else []
        if not ckpts:
            return _RunInterrupted(f"interrupted after {seconds:.1f} s, before the first checkpoint; start again "
                                   f"with: {again}", None)
        last = ckpts[-1]
        age = time.time() - last.stat().st_mtime
        if not config.get("resume", True):
            return _RunInterrupted(f"interrupted after {seconds:.1f} s; the last checkpoint is {last} (written "
                                   f"{age:.0f} s ago), but the config says resume: false, so a rerun starts "
                                   f"afresh: {again}", str(last))
        return _RunInterrupted(f"interrupted after {seconds:.1f} s; the last checkpoint is {last} (written "
                               f"{age:.0f} s ago); resume from it with: {again}", str(last))
    return _RunInterrupted(f"interrupted after {seconds:.1f} s; this {kind.name} run keeps no checkpoint, so nothing "
                           f"is resumable; start again with: {again}", None)


def _with_env(path: Path, env_id: str) -> tuple:
    """The config at ``path`` with its ``env.id`` replaced by ``env_id`` (its ``env.kwargs`` and evaluation target
    dropped, and its encoder's ``obs_low``/``obs_high`` replaced by ``range: auto``: they belong to the config's own
    environment),
    validated as a whole, so that an environment whose spaces the agent cannot take is reported before anything
    runs."""
    from .config import load_file, validate

    doc = load_file(path)
    data = doc.data if isinstance(doc.data, dict) else {}
    if data.get("kind") != "rl_agent":
        raise ConfigError(f"{path}: --env applies to agent configs (kind: rl_agent), not to kind "
                          f"{data.get('kind')!r}")
    if not isinstance(env_id, str) or not env_id.strip():
        raise ConfigError("--env: expected a gymnasium environment id such as CartPole-v1")
    data["env"] = {"id": env_id.strip()}
    evaluation = data.get("evaluation")
    if isinstance(evaluation, dict) and evaluation.pop("target", None) is not None:
        print(f"--env {env_id}: the config's evaluation target is its own environment's; none is set", flush=True)
    encoder = data.get("encoder")
    if isinstance(encoder, dict) and ("obs_low" in encoder or "obs_high" in encoder):
        # ranges written for the config's own environment: the space's bounds where finite, estimated elsewhere
        encoder.pop("obs_low", None)
        encoder.pop("obs_high", None)
        encoder["range"] = "auto"
        print(f"--env {env_id}: the config's obs_low/obs_high are its own environment's; observation ranges: "
              f"auto (the space's bounds where finite, estimated online elsewhere)", flush=True)
    return validate(doc)


def _cmd_run(args: argparse.Namespace, beat: Heartbeat) -> dict:
    from .config import load_config, resolve_config_path
    from .launch_env import environment_world_size

    path = resolve_config_path(args.config)
    beat.phase = f"loading {path}"
    if getattr(args, "env", None) is not None:
        kind, config = _with_env(path, args.env)
    else:
        kind, config = load_config(path)
    if args.seed is not None:
        if "seed" not in kind.schema.fields:
            raise ConfigError(f"{path}: a {kind.name} config has no seed to override")
        if args.seed < 0:
            raise ConfigError(f"--seed must be >= 0, got {args.seed}")
        config["seed"] = args.seed
        if config.get("_assembly") is not None:  # kinds that hold a built assembly read its run settings
            config["_assembly"].set_run(seed=args.seed)
    runner = kind.runner
    if kind.name == "assembly" and environment_world_size() > 1:  # under torchrun: one share per rank
        from .distributed import run_assembly_distributed as runner
    print(f"braincore run {path} ({kind.name})" + (f", seed {args.seed}" if args.seed is not None else ""),
          flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    beat.phase = _starting_phase(kind, config)
    start = time.perf_counter()
    try:
        result = runner(config, {"out": args.out, "no_plot": args.no_plot})
    except KeyboardInterrupt as err:
        raise _interrupt_message(err, args, kind, config, time.perf_counter() - start) from None
    summary = {"config": str(path), **result}
    written = out / f"{path.stem}.json"
    written.write_text(json.dumps({"ok": True, **summary}, default=_json_default, indent=1) + "\n")
    print(f"wrote {written}")
    if isinstance(result.get("npz"), str):
        print(f"plot it again, choosing the neurons: braincore plot run {shlex.quote(result['npz'])} "
              f"--neurons 0:1000")
    return {**summary, "summary_json": str(written)}


# ------------------------------------------------------------------------------------------ validate, configs
def _cmd_validate(args: argparse.Namespace, beat: Heartbeat) -> dict:
    from .config import ConfigProblems, load_config, resolve_config_path

    path = resolve_config_path(args.config)
    try:
        kind, _ = load_config(path)
    except ConfigProblems as err:
        for problem in err.problems:
            print(problem)
        raise ConfigError(f"{len(err.problems)} problem(s) in {path}") from None
    print(f"{path}: valid {kind.name} config")
    return {"config": str(path), "kind": kind.name, "valid": True}


def _first_sentence(comment: str, limit: int = 110) -> str:
    """The first sentence of a config's leading comment: a full stop outside brackets ends it, and so does a
    colon after the first 40 characters."""
    depth, end = 0, len(comment)
    for i, ch in enumerate(comment):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(0, depth - 1)
        elif depth == 0 and (ch == "." or (ch == ":" and i >= 40)) and \
                (i + 1 == len(comment) or comment[i + 1] == " ") and \
                not re.search(r"(\bet al|\be\.g|\bi\.e|\bvs|\b[A-Z])$", comment[:i]):
            end = i
            break
    text = comment[:end].strip()
    return text if len(text) <= limit else text[:limit - 3].rstrip() + "..."


def _describe_config(path: Path) -> dict:
    """``{"kind", "description"}`` of a config file from its text (no YAML parse, no imports)."""
    lines = path.read_text(errors="replace").splitlines()
    comment: list[str] = []
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("#"):
            body = stripped.lstrip("#").strip()
            if not body and comment:
                break
            if body:
                comment.append(body)
        elif stripped:
            break
    match = next((re.match(r"^kind:\s*([\w-]+)", line) for line in lines if line.startswith("kind:")), None)
    return {"kind": match.group(1) if match else "?", "description": _first_sentence(" ".join(comment))}


def _config_paths(result: Any) -> list[Path]:
    """The config files among what ``bundled_configs()`` returned (paths, or mappings/pairs holding paths)."""
    items = result.values() if isinstance(result, dict) else result
    paths = []
    for item in items:
        candidates = item if isinstance(item, (tuple, list)) else [item]
        for c in candidates:
            if isinstance(c, (str, Path)) and str(c).endswith((".yaml", ".yml")) and Path(c).is_file():
                paths.append(Path(c))
                break
    return paths


def bundled_config_files() -> tuple[Path, list[Path]]:
    """The bundled config folder and its config files (``braincore.config.bundled_configs()`` where that
    exists, else every ``*.yaml`` under :func:`braincore.config.bundled_config_dir`)."""
    from . import config as config_module

    root = config_module.bundled_config_dir()
    listing = getattr(config_module, "bundled_configs", None)
    paths = _config_paths(listing()) if callable(listing) else []
    if not paths:
        paths = sorted(p for p in root.rglob("*.yaml") if p.is_file())
    return root, sorted(paths)


def _cmd_configs(args: argparse.Namespace, beat: Heartbeat) -> dict:
    root, paths = bundled_config_files()
    rows = {}
    for path in paths:
        try:
            name = path.resolve().relative_to(root.resolve()).with_suffix("").as_posix()
        except ValueError:
            name = path.stem
        rows[name] = {**_describe_config(path), "path": str(path)}
    if not rows:
        print(f"no bundled configs in {root}")
        return {"configs": {}, "folder": str(root)}
    width = max(len(n) for n in rows)
    kind_width = max(len(r["kind"]) for r in rows.values())
    print(f"bundled configs in {root} (run one: braincore run NAME):")
    for name, row in rows.items():
        print(f"  {name:<{width}}  {row['kind']:<{kind_width}}  {row['description']}")
    return {"configs": rows, "folder": str(root)}


# ------------------------------------------------------------------------------------------ plot
#: a step amplitude that makes each model fire, in its input unit
DEFAULT_CURRENTS = {"if": 0.5, "lif": 0.3, "alif": 0.4, "izhikevich": 10.0, "adex": 0.8, "hh": 10.0}


def _cmd_plot_neuron(args: argparse.Namespace, beat: Heartbeat) -> dict:
    import numpy as np

    from .gallery import simulate_panel, summarise
    from .neurons import get_model
    from .units import dimension_of, parse_quantity

    cls = get_model(args.model)
    current = args.current if args.current is not None else DEFAULT_CURRENTS.get(cls.name, 1.0)
    panel = {"model": args.model, "preset": args.preset, "params": {}, "method": args.method,
             "current": parse_quantity(current, dimension_of(cls.input_unit))}
    if args.preset and args.preset not in cls.presets:
        cls.from_preset(args.preset, 1)  # raises with the list of presets
    dt, duration = parse_quantity(args.dt, "time"), parse_quantity(args.duration, "time")
    onset = parse_quantity(args.onset, "time")
    if dt <= 0 or duration <= 0:
        raise ConfigError("--dt and --duration must be > 0")
    result = simulate_panel(panel, dt, duration, onset, duration)
    stats = summarise(result, onset, duration)
    from .viz import plot_trace

    out = _png_path(args.out, f"{cls.name}{'_' + args.preset if args.preset else ''}.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    drive = np.where(result.t >= onset, panel["current"], 0.0)
    title = f"{cls.name}{' (' + args.preset + ')' if args.preset else ''}: {panel['current']:g} {cls.input_unit}"
    plot_trace(result, out, title=title, stimulus=(onset, duration), current=drive, unit=cls.input_unit)
    print(f"{title}: {stats['spikes']} spikes, {stats['rate_hz']:.1f} Hz; wrote {out}")
    return {"model": cls.name, "preset": args.preset, "current": panel["current"], "png": str(out), **stats}


def _cmd_plot_run(args: argparse.Namespace, beat: Heartbeat) -> dict:
    from .viz import plot_run

    npz = Path(args.npz)
    if not npz.is_file():
        raise ConfigError(f"{npz}: no such file (give the .npz that `braincore run` wrote, e.g. "
                          f"{DEFAULT_OUT}/coba.npz)")
    out = _png_path(args.out, f"{npz.stem}_plot.png", npz.parent)
    png, summary = plot_run(npz, out, trial=args.trial, neurons=args.neurons, bin_ms=args.bin)
    rows = []
    for label, s in summary["raster"].items():
        part = "all" if s["last"] - s["first"] + 1 == s["of"] else f"{s['first']}-{s['last']}"
        rows.append(f"{label} {part} of {s['of']:,}")
    shown = f"; raster: {', '.join(rows)}" if rows else ""
    print(f"{npz}: {summary['t_end_ms']:g} ms, trial {summary['trial']} of {summary['trials']}{shown}; wrote {png}")
    return summary


# ------------------------------------------------------------------------------------------ listings
def _cmd_models(args: argparse.Namespace, beat: Heartbeat) -> dict:
    from .neurons import MODELS

    seen: dict[str, Any] = {}
    for key, cls in sorted(MODELS.items()):
        if cls.name in seen:
            continue
        rows = cls.params_cls.describe()
        seen[cls.name] = {"input_unit": cls.input_unit, "methods": list(cls.methods),
                          "presets": list(cls.presets), "params": {r[0]: {"default": r[1], "unit": r[2]} for r in rows}}
        doc = (cls.__doc__ or "").strip().splitlines()[0]
        print(f"{cls.name}: {doc}")
        print(f"  input: {cls.input_unit}; methods: {', '.join(cls.methods)}"
              + (f"; presets: {', '.join(cls.presets)}" if cls.presets else ""))
        for name, default, unit, text in rows:
            unit = "" if unit in ("1", "choice") else f" {unit}"
            print(f"    {name:<10} = {default!s:>8}{unit:<8} {text}")
    return {"models": seen}


_QUANTITY = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-zµΩ/^*0-9 ]*?)\s*$")


def _value_and_unit(default: Any) -> tuple[str, str]:
    """A region parameter's default split for display: ``"20 ms"`` -> ``("20", "ms")``; ``3`` -> ``("3", "")``;
    ``None`` -> ``("(derived)", "")``; other text as it is."""
    if default is None:
        return "(derived)", ""
    if isinstance(default, bool):
        return str(default).lower(), ""
    if isinstance(default, (int, float)):
        return f"{default:g}" if isinstance(default, float) else str(default), ""
    if isinstance(default, str):
        match = _QUANTITY.match(default)
        if match and match.group(2):
            return match.group(1), match.group(2)
        return repr(default), ""
    return repr(default), ""


def _strip_default(text: str, default: Any) -> str:
    """``text`` without a leading restatement of the default or of its unit (``"20 ms, every projection"`` ->
    ``"every projection"``): the listing shows both in their own columns."""
    value, unit = _value_and_unit(default)
    plain = value.strip("'")
    candidates = [c for c in (f"{value} {unit}".strip(), plain, unit,
                              str(default).lower() if isinstance(default, bool) else None) if c]
    text = text.strip()
    if re.fullmatch(r"``[\w.-]+``|[-+]?\d+(\.\d*)?(\s*[A-Za-z]+)?|true|false", text):
        return ""  # a bare value: the default as the docstring states it (a wrapper may have another)
    for c in sorted(set(candidates), key=len, reverse=True):
        for form in (c, f"``{c}``"):
            if text == form:
                return ""
            for sep in (", ", ": ", "; ", " "):
                if text.startswith(form + sep) and (sep != " " or not text[len(form) + 1:][:1].isdigit()):
                    return text[len(form) + len(sep):].strip()
    return text


def _bracketed(text: str) -> tuple[str, str]:
    """``"(a (b) c), rest"`` -> ``("a (b) c", ", rest")``; text not starting with ``(`` -> ``("", text)``."""
    if not text.startswith("("):
        return "", text
    depth = 0
    for i, ch in enumerate(text):
        depth += ch in "(["
        depth -= ch in ")]"
        if depth == 0:
            return text[1:i], text[i + 1:]
    return text[1:], ""


def _parameter_notes(doc: str, params: dict) -> dict[str, str]:
    """What a region's docstring says about each of its parameters ``params`` (name -> default), read from its
    ``Parameters`` section: cut into clauses at ``;`` outside brackets and at list items; in a clause, each
    ``name`` gets its own bracket (without the default and unit, which the listing shows), the clause's lead-in
    (``membrane time constants ``tau_msn`` (20 ms)``) and a tail after a colon (``(>= 1): cell counts``). A
    name without a bracket takes the next one when that starts with its default (``n_stn``, ``n_gpi`` (20 per
    channel)). What cannot be read that way stays empty rather than guessed."""
    match = re.search(r"\**Parameters\**[^\n:]*?(?:\([^)]*\))?\s*:\s*(.*?)(?:\n\s*\n|\Z)", doc, flags=re.S)
    if not match:
        return {}
    text = " ".join(line.strip() for line in match.group(1).splitlines())
    clauses, depth, current = [], 0, ""
    for ch in text:
        depth += ch in "(["
        depth = max(0, depth - (ch in ")]"))
        if ch == ";" and depth == 0:
            clauses.append(current)
            current = ""
        else:
            current += ch
    clauses.append(current)
    clauses = [part for c in clauses for part in re.split(r"(?:^|\s)- (?=``)", c)]
    notes: dict[str, str] = {}
    for clause in clauses:
        anchors = [m for m in re.finditer(r"``(\w+)``", clause) if m.group(1) in params]
        if not anchors:
            continue
        lead = clause[:anchors[0].start()].strip(" ,.:-")
        entries = []
        for i, m in enumerate(anchors):
            after = clause[m.end():anchors[i + 1].start() if i + 1 < len(anchors) else len(clause)].strip()
            bracket, rest = _bracketed(after)
            entries.append([m.group(1), bracket, rest.strip(" ,.")])
        tail = ""
        last_rest = entries[-1][2]
        if last_rest.startswith(":"):
            tail, entries[-1][2] = last_rest.lstrip(": ").strip(), ""
        for i, (name, bracket, rest) in enumerate(entries):
            default = params[name]
            if not bracket:
                value = _value_and_unit(default)[0].strip("'")
                later = next((b for _, b, _ in entries[i + 1:] if b), "")
                if later and value and re.match(re.escape(value) + r"\b", later):
                    bracket = later
            own = _strip_default(bracket, default) if bracket else ""
            if i + 1 < len(entries) and not rest.startswith(":"):
                rest = ""  # words joining two names ("``rate`` (Hz) of ``weight``") say nothing alone
            rest = rest.lstrip(": ").strip()
            parts = [p for p in (lead, tail, own, rest) if p]
            note = ", ".join(dict.fromkeys(parts))
            note = re.sub(r":func:`(\w+)`", r"\1()", note).replace("``", "")
            notes.setdefault(name, re.sub(r"\s+", " ", note).strip())
    return notes


def _cmd_regions(args: argparse.Namespace, beat: Heartbeat) -> dict:
    import inspect

    from .region_types import region_types

    out: dict[str, Any] = {}
    for name, region in sorted(region_types().items()):
        params = region.parameters()
        build = getattr(region.build, "func", region.build)  # functools.partial: the function it wraps
        notes = _parameter_notes(inspect.getdoc(build) or "", params)
        module = inspect.getmodule(build)
        if len(notes) < len(params) and module is not None and module.__doc__:
            notes = {**_parameter_notes(module.__doc__, params), **notes}
        rows = {}
        print(f"{name}: {region.description}")
        for key, default in params.items():
            value, unit = _value_and_unit(default)
            note = notes.get(key, "")
            rows[key] = {"default": default if isinstance(default, (int, float, str, bool, type(None))) else
                         repr(default), "value": value, "unit": unit, "description": note}
            print(f"    {key:<19} = {value:>11} {unit:<5} {note}".rstrip())
        out[name] = {"description": region.description, "params": rows}
    if not out:
        print("no region types registered")
    return {"regions": out}


def _count(value: Optional[float]) -> str:
    if value is None:
        return "?"
    return f"{value:,.0f}" if value >= 1 or value == 0 else f"{value:.3g}"


def _cmd_graph(args: argparse.Namespace, beat: Heartbeat) -> dict:
    from .assembly_config import load_assembly
    from .config import ConfigProblems, resolve_config_path

    path = resolve_config_path(args.config)
    try:
        assembly = load_assembly(path)
    except ConfigProblems as err:
        for problem in err.problems:
            print(problem)
        raise ConfigError(f"{len(err.problems)} problem(s) in {path}") from None
    summary = assembly.summary()
    print(f"{assembly.name} ({path})")
    pops = summary["populations"]
    width = max([len(n) for n in pops] + [10])
    print(f"populations ({summary['n_populations']}):")
    for name, row in pops.items():
        region = f"  [{row['region']}]" if row["region"] else ""
        print(f"  {name:<{width}}  {row['model']:<12} {row['size']:>9,}{region}")
    print(f"neurons: {summary['neurons']:,}")
    print(f"projections ({summary['n_projections']}):")
    arrows = [f"{r['pre']} -> {r['post']}" for r in summary["projections"]]
    aw = max([len(a) for a in arrows] + [10])
    for arrow, row in zip(arrows, summary["projections"]):
        delay = row["delay"] if isinstance(row["delay"], str) else (
            f"{row['delay']:g} ms" if isinstance(row["delay"], (int, float)) else "distributed")
        print(f"  {arrow:<{aw}}  {row['connector'] or '?':<18} {_count(row['expected_synapses']):>12} synapses  "
              f"{row['synapse'] or '?':<13} delay {delay:<8} {row['name']}")
    approx = "" if summary["synapses_complete"] else " (at least; some counts are not computable)"
    print(f"totals: {summary['n_populations']} populations, {summary['neurons']:,} neurons, "
          f"{summary['n_projections']} projections, {_count(summary['synapses'])} expected synapses{approx}, "
          f"{summary['inputs']} inputs, {summary['monitors']} monitors")
    out: dict[str, Any] = {"config": str(path), **summary}
    if args.out:
        from .viz import plot_assembly_graph

        png = _png_path(args.out, f"{assembly.name or path.stem}_graph.png")
        png.parent.mkdir(parents=True, exist_ok=True)
        plot_assembly_graph(assembly, png)
        print(f"wrote {png}")
        out["png"] = str(png)
    return out


# ------------------------------------------------------------------------------------------ main
COMMANDS = {"run": _cmd_run, "validate": _cmd_validate, "configs": _cmd_configs, "models": _cmd_models,
            "graph": _cmd_graph, "regions": _cmd_regions, "plot neuron": _cmd_plot_neuron,
            "plot run": _cmd_plot_run}


def _json_default(value: Any) -> Any:
    """JSON for what summaries hold besides plain values: numpy/torch scalars and arrays, paths."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def _print_json(payload: dict) -> None:
    print(json.dumps(payload, default=_json_default), flush=True)


def _normalise_argv(argv: list[str]) -> list[str]:
    """``plot FILE.npz`` -> ``plot run FILE.npz``."""
    if len(argv) >= 2 and argv[0] == "plot" and argv[1] not in ("neuron", "run") and not argv[1].startswith("-") \
            and argv[1].endswith(".npz"):
        return ["plot", "run", *argv[1:]]
    return argv


def _command_name(args: argparse.Namespace) -> str:
    return f"plot {args.what}" if args.command == "plot" and getattr(args, "what", None) else str(args.command)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the ``braincore`` command line ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    argv = _normalise_argv(list(sys.argv[1:] if argv is None else argv))
    wants_json = "--json" in argv
    try:
        return _main(argv, wants_json)
    except KeyboardInterrupt:  # before or after a command (imports, argument parsing)
        print("braincore: interrupted", file=sys.stderr, flush=True)
        if wants_json:
            _print_json({"ok": False, "error": "interrupted", "interrupted": True})
        return EXIT_INTERRUPTED


def _main(argv: list[str], wants_json: bool) -> int:
    parser, subs = _parser()
    try:
        args, extras = parser.parse_known_args(argv)
        name = _command_name(args) if args.command else ""
        if extras:
            subs.get(name, parser).error(f"unrecognized arguments: {' '.join(extras)}")
        if args.command == "plot" and not getattr(args, "what", None):
            subs["plot"].error("say what to plot: `plot neuron MODEL` (a model's voltage trace) or `plot run "
                               "FILE.npz` (a saved run)")
    except UsageError as err:
        print(err.parser.format_usage().rstrip(), file=sys.stderr)
        print(f"{err.parser.prog}: error: {err.message}", file=sys.stderr, flush=True)
        if wants_json:
            _print_json({"ok": False, "error": err.message, "usage": True})
        return 2
    except SystemExit as done:  # --help, --version
        return int(done.code or 0)
    if args.command is None:
        parser.print_help()
        return 0
    handler = COMMANDS[name]
    with Heartbeat(f"braincore {name}", hold_json=bool(getattr(args, "json", False))) as beat:
        try:
            summary = handler(args, beat)
        except _RunInterrupted as err:
            sys.stdout.flush()
            beat.new_line()
            print(f"braincore {name}: {err.message}", file=sys.stderr, flush=True)
            failure: Optional[dict] = {"ok": False, "error": "interrupted", "interrupted": True,
                                       "message": err.message, "checkpoint": err.checkpoint}
            code = EXIT_INTERRUPTED
        except KeyboardInterrupt:
            beat.new_line()
            print(f"braincore {name}: interrupted", file=sys.stderr, flush=True)
            failure, code = {"ok": False, "error": "interrupted", "interrupted": True}, EXIT_INTERRUPTED
        except (ConfigError, ValueError, ImportError, OSError) as err:
            lines = str(err).splitlines() or [type(err).__name__]
            beat.new_line()
            for line in lines[:-1]:
                print(line, file=sys.stderr)
            print(f"braincore {name}: error: {lines[-1]}", file=sys.stderr, flush=True)
            failure, code = {"ok": False, "error": lines[-1]}, 1
        else:
            failure, code = None, 0
    if getattr(args, "json", False):
        _print_json(failure if failure is not None else {"ok": True, **summary})
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
