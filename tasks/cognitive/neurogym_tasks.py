"""NeuroGym tasks for braincore's agents and brain-region models (``kind: neurogym`` configs).

NeuroGym (Molano-Mazon et al. 2022, "NeuroGym: An open resource for developing and sharing neuroscience tasks") is
the field's shared collection of cognitive tasks as gymnasium environments: perceptual decision making, delayed
match-to-sample, context-dependent decisions, go/no-go, interval timing, ... A ``neurogym`` config runs three
things, each optional:

- ``tasks``: for each NeuroGym task id (optionally with the env's keyword arguments, e.g. ``dt``), an adaptive
  spiking recurrent network (``srnn``, Yin, Corradi & Bohté 2021) and/or a non-spiking recurrent network of the same
  hidden size (``rnn``: GRU by default), trained by the same code with the task's ground truth (``training:
  supervised``) or by reinforcement from the task's own rewards (``training: reinforcement``, advantage
  actor-critic); each is scored on ``evaluation.trials`` held-out trials (fixed seed) with the task's performance
  measure (``final``: the decision at the decision period; ``steps``: the fraction of decision-period steps with
  the right action) next to chance (the best constant action). Models, losses and measures:
  :mod:`tasks.cognitive.agents` and :mod:`tasks.cognitive.trials`.
- ``psychometric``: accuracy and reaction time against coherence of each model trained on the named task
  (PerceptualDecisionMaking-v0, best in its reaction-time variant: ``reaction_time: true``), as a PNG.
- ``regions``: the models that solve the tasks by construction, on NeuroGym trials scored the same way: the
  decision attractor of :mod:`tasks.decision.two_afc` (Wang 2002) on PerceptualDecisionMaking-v0 (with its
  psychometric and chronometric curves as a PNG) and the prefrontal working memory of
  :mod:`tasks.memory.working_memory` on DelayMatchSample-v0 (:mod:`tasks.cognitive.regions`).

neurogym is not a dependency of braincore (its pins would downgrade gymnasium): install it with ``pip install
--no-deps neurogym`` and its light dependencies ``loguru pydantic-settings tomlkit natsort``; it is imported only
when a config runs, and a clear error names that command when it is missing. Validating a config imports neither
neurogym nor PyTorch; task ids are checked against the ids of neurogym 2.3.1 and the env's keyword arguments when
the env is made (errors name the file, line and key).

Outputs under ``<out>/<name>/``: one checkpoint per (task, model), written atomically every ``checkpoint_every``
steps and at the end (a rerun resumes exactly or skips finished training; a checkpoint of another configuration is
refused), ``learning_curves.png``, ``psychometric_<model>.png``, ``attractor_psychometric.png``, and
``<out>/<name>.json`` (everything); the run prints a table and ends with a JSON line.
"""
from __future__ import annotations

import difflib
import json
import re
import time
from pathlib import Path
from typing import Any, Optional

from braincore.config import (AnyMapping, Document, Flag, Integer, Kind, ListOf, Quantity, Record, Spec, Text,
                              register_kind)
from tasks.common import (OutputName, config_error, config_key, filled_record, number, remember_document, run_setup,
                          seed_problem)
from tasks.cognitive.trials import KNOWN_TASKS, MEASURES, NeurogymMissing
from tasks.decision import two_afc
from tasks.memory import working_memory

MODEL_CHOICES = ("srnn", "rnn", "both")
TRAINING = ("supervised", "reinforcement")



def _task_id_problem(value: Any) -> Optional[str]:
    if not isinstance(value, str):
        return f"expected a NeuroGym task id such as 'PerceptualDecisionMaking-v0', got {value!r}"
    if value not in KNOWN_TASKS:
        near = difflib.get_close_matches(value, KNOWN_TASKS, n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        return f"unknown NeuroGym task {value!r}{hint} (expected one of: {', '.join(KNOWN_TASKS)})"
    return None


TASK_ENTRY = Record({
    "id": Text(required=True, doc="a NeuroGym task id (neurogym.envs.registration.all_envs())"),
    "kwargs": AnyMapping(default={}, doc="keyword arguments of the env (dt in ms, timing, ...)"),
    "label": OutputName(None, doc="names the row and its files (default: the id)"),
    "measure": Text("final", choices=MEASURES, doc="final: the decision; steps: decision-period steps right"),
    "period": Text(None, doc="the decision period (default: 'decision', else the task's last period)"),
    "reaction_time": Flag(False, doc="the ReactionTime variant: answer from stimulus onset (supervised only)"),
})


class TaskSpec(Spec):
    """A task entry: a NeuroGym id, or a mapping with ``id`` and options (:data:`TASK_ENTRY`)."""

    description = "a NeuroGym task id or a mapping with keys " + ", ".join(TASK_ENTRY.fields)

    def check(self, value: Any, doc: Document, path: tuple, problems: list) -> Any:
        if isinstance(value, str):
            value = {"id": value}
            where = path
        else:
            where = path + ("id",)
        entry = TASK_ENTRY.check(value, doc, path, problems)
        if entry is None:
            return None
        if entry.get("id") is not None:
            message = _task_id_problem(entry["id"])
            if message:
                problems.append(doc.problem(where, message))
                return None
        entry["label"] = entry.get("label") or entry["id"]
        return entry


def _circuit_field(schema: Record, fixed: tuple, doc: str) -> AnyMapping:
    """Overrides of another task kind's config (two_afc, delayed_match), checked by that kind's schema at their
    own lines; ``fixed`` keys are set from the NeuroGym trials."""

    def check(value, doc_: Document, path, problems) -> dict:
        for key in fixed:
            if key in value:
                problems.append(doc_.problem(path + (key,), "set from the NeuroGym trials; leave it out"))
        checked = schema.check({"kind": "-", **{k: v for k, v in value.items() if k not in fixed}}, doc_, path,
                               problems) or {}
        return {k: checked[k] for k in value if k in checked and k not in fixed}

    return AnyMapping(check, default={}, doc=doc)


NETWORK = filled_record({
    "hidden": Integer(64, minimum=1, doc="recurrent units (both models)"),
    "tau_m": number(5.0, exclusive_minimum=0.0, doc="SRNN membrane time constant, in steps (learnable)"),
    "tau_adapt": number(20.0, exclusive_minimum=0.0, doc="SRNN adaptation time constant, in steps (learnable)"),
    "readout_tau": number(2.0, exclusive_minimum=0.0, doc="SRNN leaky read-out time constant, in steps"),
    "cell": Text("gru", choices=("gru", "tanh"), doc="the non-spiking RNN: GRU or Elman tanh"),
})

OPTIMIZATION = filled_record({
    "steps": Integer(1000, minimum=1, doc="optimiser steps per task and model"),
    "batch": Integer(32, minimum=1, doc="trials per step"),
    "lr": number(3e-3, exclusive_minimum=0.0, doc="Adam learning rate"),
    "decision_weight": number(1.0, minimum=0.0, doc="supervised: loss weight of decision-period steps"),
    "gamma": number(0.99, minimum=0.0, doc="reinforcement: discount per step"),
    "value_coef": number(0.5, minimum=0.0, doc="reinforcement: weight of the critic's loss"),
    "entropy_coef": number(0.01, minimum=0.0, doc="reinforcement: weight of the entropy bonus"),
    "log_every": Integer(50, minimum=1, doc="steps per learning-curve point"),
})

EVALUATION = filled_record({
    "trials": Integer(500, minimum=1, doc="held-out trials per task"),
    "seed": Integer(12345, minimum=0, doc="seeds the held-out trials (the same for every model)"),
})

PSYCHOMETRIC = Record({
    "task": Text(required=True, doc="the label (or id) of an entry of tasks whose trials take 'coh'"),
    "coherences": ListOf(number(None, minimum=0.0), min_items=2, default=[0.0, 3.2, 6.4, 12.8, 25.6, 51.2],
                         doc="in percent, as NeuroGym's coh"),
    "trials": Integer(200, minimum=1, doc="per coherence"),
    "bound": number(0.0, minimum=0.0, doc="a decision also needs this share of the choice probability"),
})

DECISION_REGION = Record({
    "task": Text("PerceptualDecisionMaking-v0", doc="a NeuroGym id with coh and two choices"),
    "kwargs": AnyMapping(default={}, doc="keyword arguments of the env"),
    "trials": Integer(200, minimum=1),
    "stimulus_ms": Quantity("time", None, exclusive_minimum=0.0, doc="default: the task's stimulus period"),
    "circuit": _circuit_field(two_afc.SCHEMA, ("kind", "coherences", "trials", "name", "seed"),
                              "two_afc settings (network, stimulus, threshold, batch, dt, backend ...)"),
}, default=None)

MEMORY_REGION = Record({
    "task": Text("DelayMatchSample-v0", doc="a NeuroGym id with sample_theta, test_theta (delayed match)"),
    "kwargs": AnyMapping(default={}, doc="keyword arguments of the env"),
    "trials": Integer(200, minimum=1),
    "circuit": _circuit_field(working_memory.SCHEMA,
                              ("kind", "name", "seed", "fixation", "delay1", "delay2", "trials_per_pair"),
                              "delayed_match settings (network, cue, readout, memory_rate, dt, backend ...)"),
}, default=None)

SCHEMA = Record({
    "kind": Text(required=True),
    "name": OutputName("neurogym", doc="names the output folder <out>/<name>/ and <out>/<name>.json"),
    "seed": Integer(0, minimum=0),
    "threads": Integer(1, minimum=1, doc="PyTorch threads"),
    "tasks": ListOf(TaskSpec(), default=[], doc="NeuroGym task ids (or mappings with id, kwargs, measure ...)"),
    "model": Text("both", choices=MODEL_CHOICES, doc="srnn, rnn, or both (side by side)"),
    "training": Text("supervised", choices=TRAINING),
    "network": NETWORK,
    "optimization": OPTIMIZATION,
    "evaluation": EVALUATION,
    "psychometric": Record(PSYCHOMETRIC.fields, default=None),
    "regions": Record({"decision": DECISION_REGION, "working_memory": MEMORY_REGION}, default=None),
    "checkpoint_every": Integer(500, minimum=1, doc="optimiser steps between checkpoints"),
    "resume": Flag(True),
    "progress": Flag(True),
})


def _semantic_check(config: dict, doc: Document, problems: list) -> None:
    remember_document(config, doc)
    seed_problem(config, doc, problems)
    tasks = config.get("tasks") or []
    labels = [t["label"] for t in tasks if t]
    for i, label in enumerate(labels):
        if labels.index(label) != i:
            problems.append(doc.problem(("tasks", i), f"two tasks labelled {label!r}: give one a 'label'"))
    for i, t in enumerate(tasks):
        if t and t.get("reaction_time") and config.get("training") == "reinforcement":
            problems.append(doc.problem(("tasks", i, "reaction_time"), "the reaction-time variant is for "
                                                                        "training: supervised only"))
    psy = config.get("psychometric")
    if psy and psy.get("task") is not None:
        names = {t["label"] for t in tasks if t} | {t["id"] for t in tasks if t}
        if psy["task"] not in names:
            problems.append(doc.problem(("psychometric", "task"), f"not a task of this config (expected one of: "
                                                                  f"{', '.join(sorted(names)) or 'none listed'})"))
    regions = config.get("regions") or {}
    for key in ("decision", "working_memory"):
        if regions.get(key) and regions[key].get("task") is not None:
            message = _task_id_problem(regions[key]["task"])
            if message:
                problems.append(doc.problem(("regions", key, "task"), message))
    if config.get("tasks") == [] and "regions" in config and config["regions"] is None:
        problems.append(doc.problem(("tasks",), "nothing to run: list tasks, or set regions"))


# ------------------------------------------------------------------------------------------ the runner
def _file_label(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def _env_factory(config: dict, path: tuple, task_id: str, kwargs: dict):
    """A function making the task's env; the env is made once now so that bad ``kwargs`` are reported at their
    key (file, line) before anything trains."""
    from tasks.cognitive.trials import make_env

    try:
        make_env(task_id, kwargs, seed=0)
    except NeurogymMissing:
        raise
    except Exception as err:  # noqa: BLE001 - neurogym raises TypeError, ValueError, ... for bad arguments
        raise config_error(config, path, f"neurogym could not make {task_id!r} with {kwargs!r}: "
                                         f"{type(err).__name__}: {err}") from err
    return lambda: make_env(task_id, kwargs)


def _train_one(config: dict, index: int, entry: dict, model: str, folder: Path, progress: bool) -> dict:
    """Train (or resume, or reload) one model on one task and evaluate it."""
    from braincore.checkpoint import save_checkpoint
    from tasks.cognitive.agents import AgentSpec, RecurrentAgent, TaskSetup, Trainer, TrainSettings, evaluate
    from tasks.cognitive.trials import n_actions
    from tasks.common import load_resumable, progress_bar, safe_points

    make = _env_factory(config, ("tasks", index, "kwargs"), entry["id"], entry["kwargs"])
    env = make()
    net, opt = config["network"], config["optimization"]
    spec = AgentSpec(model, int(env.observation_space.shape[0]), n_actions(env), hidden=net["hidden"],
                     tau_m=net["tau_m"], tau_adapt=net["tau_adapt"], readout_tau=net["readout_tau"],
                     cell=net["cell"], seed=config["seed"] * 7919 + index)
    task = TaskSetup(make, entry["period"], entry["measure"], entry["reaction_time"])
    settings = TrainSettings(steps=opt["steps"], batch=opt["batch"], lr=opt["lr"],
                             decision_weight=opt["decision_weight"], gamma=opt["gamma"], value_coef=opt["value_coef"],
                             entropy_coef=opt["entropy_coef"], log_every=opt["log_every"], seed=config["seed"],
                             task_index=index)
    agent = RecurrentAgent(spec)
    trainer = Trainer(agent, task, settings, config["training"])
    path = folder / f"{_file_label(entry['label'])}_{model}.ckpt"
    key = config_key(config, ("seed", "training", "network", "optimization"), task=entry, model=model)
    state = load_resumable(path, key, config["resume"])
    if state is not None:
        trainer.load_state(state)
    start = time.perf_counter()
    train_s = float(state.get("train_s", 0.0)) if state else 0.0

    def save(result: Optional[dict] = None) -> None:
        save_checkpoint(path, {**trainer.state(), "config_key": key, "train_s": train_s + time.perf_counter() - start,
                               "result": result})

    with safe_points(path, save) as points, \
            progress_bar(opt["steps"], f"{entry['label']} {model}", progress, unit="step",
                         initial=trainer.step) as bar:
        while trainer.step < opt["steps"]:
            out = trainer.train_step()
            bar.update(1)
            bar.set_postfix(loss=f"{out['loss']:.3f}", perf=f"{out['perf']:.2f}", refresh=False)
            if trainer.step % config["checkpoint_every"] == 0 and trainer.step < opt["steps"]:
                save()
            points.stop(f"step {trainer.step} of {entry['label']} ({model})")
    if state is not None and state.get("result") and state["step"] == opt["steps"]:
        result = state["result"]
    else:
        result = evaluate(agent, task, config["evaluation"]["trials"], config["evaluation"]["seed"])
        result.update({"task": entry["label"], "id": entry["id"], "model": model, "measure": entry["measure"],
                       "training": config["training"], "steps": opt["steps"],
                       "train_s": round(train_s + time.perf_counter() - start, 1),
                       "parameters": int(sum(p.numel() for p in agent.parameters())),
                       "final_train_loss": trainer.history[-1]["loss"] if trainer.history else None})
        if config["training"] == "reinforcement" and trainer.history:
            result["final_train_reward"] = trainer.history[-1]["reward"]
        save(result)
    result["history"] = trainer.history
    result["_agent"], result["_task"] = agent, task
    return result


def _psychometric(config: dict, results: list, folder: Path, no_plot: bool) -> list:
    from tasks.cognitive.agents import psychometric

    psy = config["psychometric"]
    out = []
    for r in results:
        if psy["task"] not in (r["task"], r["id"]):
            continue
        curves = psychometric(r["_agent"], r["_task"], psy["coherences"], psy["trials"],
                              config["evaluation"]["seed"] + 1, psy["bound"])
        entry = {"task": r["task"], "model": r["model"], **curves, "png": None}
        if not no_plot:
            entry["png"] = _plot_psychometric(curves["rows"], folder / f"psychometric_{r['model']}.png",
                                              f"{r['model'].upper()} on {r['task']} ({psy['trials']} trials per "
                                              f"coherence)")
        out.append(entry)
    return out


def _plot_psychometric(rows: list, path: Path, title: str, percent: bool = True) -> Optional[str]:
    """Accuracy (with the Weibull fit of :func:`tasks.decision.two_afc.weibull_fit`) and reaction time against
    coherence, one PNG drawn by :func:`tasks.decision.two_afc.plot_curves`; ``percent``: the rows' coherences are
    in percent (NeuroGym's ``coh``), else fractions."""
    import numpy as np

    c = np.array([r["coherence"] for r in rows]) / (100.0 if percent else 1.0)
    acc = np.array([r["accuracy"] for r in rows])
    rts = np.array([np.nan if r["rt_ms"] is None else r["rt_ms"] for r in rows])
    trials = np.array([r["trials"] for r in rows], dtype=float)
    alpha, beta = two_afc.weibull_fit(c, acc, trials)
    return two_afc.plot_curves(list(c), acc, rts, [r["rt_sd_ms"] for r in rows], alpha, beta, path,
                               int(trials.mean()), title=title)


def _plot_learning(results: list, path: Path) -> Optional[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    tasks = list(dict.fromkeys(r["task"] for r in results))
    cols = min(4, len(tasks))
    rows = (len(tasks) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    for ax, task in zip(axes.flat, tasks):
        for r in results:
            if r["task"] == task and r["history"]:
                steps = [h["step"] for h in r["history"]]
                ax.plot(steps, [h["perf"] for h in r["history"]], label=f"{r['model']} ({r['perf']:.2f})")
                ax.axhline(r["chance"], color="grey", lw=0.8, ls=":")
        ax.set_title(task, fontsize=8)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("step", fontsize=7)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, loc="lower right")
    for ax in list(axes.flat)[len(tasks):]:
        ax.axis("off")
    fig.suptitle("training-batch performance (held-out perf in the legend; dotted: chance)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def _regions(config: dict, folder: Path, progress: bool, no_plot: bool) -> list:
    import numpy as np

    from tasks.cognitive import regions as reg
    from tasks.cognitive.trials import make_env
    from tasks.common import progress_bar

    out = []
    settings = config["regions"] or {}
    dec = settings.get("decision")
    if dec:
        _env_factory(config, ("regions", "decision", "kwargs"), dec["task"], dec["kwargs"])
        env = make_env(dec["task"], dec["kwargs"])
        with progress_bar(dec["trials"], "decision attractor", progress, unit="trial") as bar:
            r = reg.decision_attractor(env, dec["trials"], config["seed"], dec["circuit"], dec["stimulus_ms"], bar)
        r["png"] = None
        if not no_plot:
            n = int(np.mean([row["trials"] for row in r["rows"]]))
            r["png"] = _plot_psychometric(r["rows"], folder / "attractor_psychometric.png",
                                          f"decision attractor (Wang 2002) on {dec['task']}, {n} trials per "
                                          f"coherence", percent=False)
        out.append(r)
    wm = settings.get("working_memory")
    if wm:
        _env_factory(config, ("regions", "working_memory", "kwargs"), wm["task"], wm["kwargs"])
        env = make_env(wm["task"], wm["kwargs"])
        with progress_bar(wm["trials"], "working memory", progress, unit="trial") as bar:
            out.append(reg.working_memory_dms(env, wm["trials"], config["seed"], wm["circuit"], bar))
    return out


def format_table(results: list, regions: list) -> str:
    """Markdown tables: ``task | measure | SRNN | RNN | chance`` for the trained agents, then ``task | region model |
    measure | perf | chance`` for the region models."""
    parts = []
    models = [m for m in ("srnn", "rnn") if any(r["model"] == m for r in results)]
    if results:
        lines = ["| task | measure | " + " | ".join(m.upper() for m in models) + " | chance |",
                 "|" + " --- |" * (3 + len(models))]
        for task in dict.fromkeys(r["task"] for r in results):
            row = {r["model"]: r for r in results if r["task"] == task}
            first = next(iter(row.values()))
            cells = [f"{row[m]['perf']:.3f}" if m in row else "-" for m in models]
            lines.append(f"| {task} | {first['measure']} | " + " | ".join(cells) + f" | {first['chance']:.3f} |")
        parts.append("\n".join(lines))
    if regions:
        lines = ["| task | region model | measure | perf | chance |", "| --- | --- | --- | --- | --- |"]
        lines += [f"| {r['task']} | {r['model']} | {r['measure']} | {r['perf']:.3f} | {r['chance']:.3f} |"
                  for r in regions]
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def run(config: dict, options: dict) -> dict:
    from tasks.cognitive.trials import import_neurogym

    start = time.perf_counter()
    out_dir, progress = run_setup(config, options)
    folder = out_dir / config["name"]
    folder.mkdir(parents=True, exist_ok=True)
    no_plot = bool(options.get("no_plot"))
    import_neurogym()  # the clear error, before anything else
    models = ["srnn", "rnn"] if config["model"] == "both" else [config["model"]]
    net = config["network"]
    if config["tasks"]:
        print(f"neurogym: {len(config['tasks'])} task(s) x {', '.join(models)} (hidden {net['hidden']}, "
              f"{config['training']}, {config['optimization']['steps']} steps of {config['optimization']['batch']} "
              f"trials), evaluation on {config['evaluation']['trials']} held-out trials")
    results = []
    for i, entry in enumerate(config["tasks"]):
        for model in models:
            r = _train_one(config, i, entry, model, folder, progress)
            print(f"  {entry['label']:<42} {model:<4}: perf {r['perf']:.3f} ({r['measure']}; chance "
                  f"{r['chance']:.3f}), {r['train_s']:.0f} s", flush=True)
            results.append(r)
    psy = _psychometric(config, results, folder, no_plot) if config.get("psychometric") else []
    regions = _regions(config, folder, progress, no_plot) if config.get("regions") else []
    for r in regions:
        print(f"  {r['task']:<42} {r['model']}: perf {r['perf']:.3f} (chance {r['chance']:.3f})", flush=True)
    table = format_table(results, regions)
    print(table)
    curves = _plot_learning(results, folder / "learning_curves.png") if results and not no_plot else None
    public = [{k: v for k, v in r.items() if not k.startswith("_")} for r in results]
    summary = {"task": "neurogym", "name": config["name"], "training": config["training"],
               "results": [{k: v for k, v in r.items() if k != "history"} for r in public],
               "psychometric": psy, "regions": regions, "table": table, "learning_curves_png": curves,
               "wall_s": round(time.perf_counter() - start, 1)}
    with open(out_dir / f"{config['name']}.json", "w") as handle:
        json.dump({**summary, "histories": {f"{r['task']}/{r['model']}": r["history"] for r in public}}, handle,
                  indent=1)
    print(json.dumps(summary))
    return summary


KIND = register_kind(Kind("neurogym", SCHEMA, run, _semantic_check,
                          "NeuroGym tasks (Molano-Mazon et al. 2022): spiking and non-spiking recurrent agents "
                          "(supervised or reinforcement) and brain-region models, with psychometric curves"))
