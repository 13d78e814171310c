"""The ``braincore`` command.

    braincore run [CONFIG] [--out DIR] [--json] [--seed N]   run a config (default: the bundled demo)
    braincore validate CONFIG [--json]              list every problem in a config; exit 1 if any
    braincore plot neuron MODEL [--preset P] [--current I] [--duration T] [--dt DT] [--out FILE]
    braincore models [--json]                       the neuron models, their parameters and presets
    braincore regions [--json]                      the region types YAML can include, with their parameters
    braincore graph CONFIG [--out PNG] [--json]     an assembly's populations, projections and synapse counts

``--json`` makes the last printed line a JSON summary. Any error exits non-zero with a one-line reason
(``validate`` first lists each problem on its own line, ``file:line: key: message``).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

from .errors import ConfigError

DEFAULT_CONFIG = "gallery.yaml"


def _parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="braincore", description="braincore: a brain-inspired cognitive engine")
    parser.add_argument("--version", action="version", version=f"braincore {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="run a config (default: the bundled demo)")
    run.add_argument("config", nargs="?", default=DEFAULT_CONFIG,
                     help=f"YAML file, or the name of a bundled config (default: {DEFAULT_CONFIG})")
    run.add_argument("--out", default="braincore_out", help="folder for outputs (PNG, JSON); default braincore_out")
    run.add_argument("--no-plot", action="store_true", help="do not write PNG files")
    run.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    run.add_argument("--seed", type=int, default=None,
                     help="override the config's seed (repeat a run over seeds without editing the YAML)")

    val = sub.add_parser("validate", help="check a config and list every problem")
    val.add_argument("config")
    val.add_argument("--json", action="store_true", help="print a JSON summary as the last line")

    plot = sub.add_parser("plot", help="plot a neuron model's voltage trace")
    plot_sub = plot.add_subparsers(dest="what", metavar="WHAT")
    neuron = plot_sub.add_parser("neuron", help="voltage trace of one neuron model under a step current")
    neuron.add_argument("model", help="model name, e.g. lif, alif, izhikevich, adex, hh")
    neuron.add_argument("--preset", help="a named parameter set, e.g. regular_spiking")
    neuron.add_argument("--current", default=None,
                        help="step amplitude in the model's input unit, units allowed ('0.3 nA'); default per model")
    neuron.add_argument("--duration", default="300 ms", help="simulated time (default 300 ms)")
    neuron.add_argument("--dt", default="0.1 ms", help="time step (default 0.1 ms)")
    neuron.add_argument("--onset", default="20 ms", help="current onset (default 20 ms)")
    neuron.add_argument("--method", default=None, help="integration method (default: the model's)")
    neuron.add_argument("--out", default=None, help="PNG path (default MODEL[_PRESET].png)")
    neuron.add_argument("--json", action="store_true", help="print a JSON summary as the last line")

    graph = sub.add_parser("graph", help="summarise an assembly config: populations, projections, synapses")
    graph.add_argument("config", help="a kind: assembly YAML file, or the name of a bundled config")
    graph.add_argument("--out", default=None, help="also draw the region graph to this PNG")
    graph.add_argument("--json", action="store_true", help="print a JSON summary as the last line")

    models = sub.add_parser("models", help="list neuron models, parameters, units and presets")
    models.add_argument("--json", action="store_true", help="print a JSON summary as the last line")

    regions = sub.add_parser("regions", help="list region types (include: {x: {region: TYPE, params: {...}}})")
    regions.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    return parser


def _cmd_regions(args: argparse.Namespace) -> dict:
    from .region_types import region_types

    out: dict[str, Any] = {}
    for name, region in sorted(region_types().items()):
        params = region.parameters()
        out[name] = {"description": region.description, "params": {k: repr(v) for k, v in params.items()}}
        print(f"{name}: {region.description}")
        for key, default in params.items():
            print(f"    {key:<16} = {default!r}")
    if not out:
        print("no region types registered")
    return {"regions": out}


def _cmd_run(args: argparse.Namespace) -> dict:
    from .config import load_config, resolve_config_path
    from .launch_env import environment_world_size

    path = resolve_config_path(args.config)
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
    print(f"braincore run {path} ({kind.name})" + (f", seed {args.seed}" if args.seed is not None else ""))
    return {"config": str(path), **runner(config, {"out": args.out, "no_plot": args.no_plot})}


def _cmd_validate(args: argparse.Namespace) -> dict:
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


#: a step amplitude that makes each model fire, in its input unit
DEFAULT_CURRENTS = {"if": 0.5, "lif": 0.3, "alif": 0.4, "izhikevich": 10.0, "adex": 0.8, "hh": 10.0}


def _cmd_plot_neuron(args: argparse.Namespace) -> dict:
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

    out = Path(args.out or f"{cls.name}{'_' + args.preset if args.preset else ''}.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    drive = np.where(result.t >= onset, panel["current"], 0.0)
    title = f"{cls.name}{' (' + args.preset + ')' if args.preset else ''}: {panel['current']:g} {cls.input_unit}"
    plot_trace(result, out, title=title, stimulus=(onset, duration), current=drive, unit=cls.input_unit)
    print(f"{title}: {stats['spikes']} spikes, {stats['rate_hz']:.1f} Hz; wrote {out}")
    return {"model": cls.name, "preset": args.preset, "current": panel["current"], "png": str(out), **stats}


def _cmd_models(args: argparse.Namespace) -> dict:
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


def _count(value: Optional[float]) -> str:
    if value is None:
        return "?"
    return f"{value:,.0f}" if value >= 1 or value == 0 else f"{value:.3g}"


def _cmd_graph(args: argparse.Namespace) -> dict:
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

        png = Path(args.out)
        png.parent.mkdir(parents=True, exist_ok=True)
        plot_assembly_graph(assembly, png)
        print(f"wrote {png}")
        out["png"] = str(png)
    return out


COMMANDS = {"run": _cmd_run, "validate": _cmd_validate, "models": _cmd_models, "graph": _cmd_graph,
            "regions": _cmd_regions}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "plot" and getattr(args, "what", None) != "neuron":
        parser.parse_args(["plot", "--help"])
    handler = _cmd_plot_neuron if args.command == "plot" else COMMANDS[args.command]
    try:
        summary = handler(args)
    except (ConfigError, ValueError, ImportError, OSError) as err:
        lines = str(err).splitlines() or [type(err).__name__]
        for line in lines[:-1]:
            print(line, file=sys.stderr)
        print(f"braincore {args.command}: error: {lines[-1]}", file=sys.stderr)
        if getattr(args, "json", False):
            print(json.dumps({"ok": False, "error": lines[-1]}))
        return 1
    if getattr(args, "json", False):
        print(json.dumps({"ok": True, **summary}, default=float))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
