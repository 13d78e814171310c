"""Brain-region models that solve NeuroGym tasks by construction, scored as the trained agents are.

**Decision attractor on PerceptualDecisionMaking-v0** (Wang 2002, Neuron 36:955; the circuit of
:mod:`tasks.decision.two_afc`): each NeuroGym trial gives a coherence ``coh`` (percent) and a correct side (the
ground-truth action ``g`` in 1..2 at the decision period); the circuit's pool ``g - 1`` receives Poisson inputs of
``mu0 (1 + c)`` and the other pool ``mu0 (1 - c)`` per source, ``c = coh / 100`` (Wang's coherence, the same
fraction of coherently moving dots as the task's), for the task's stimulus period (or ``stimulus_ms``), after the
two_afc config's spontaneous ``onset``. The circuit's choice is its winning pool (:func:`tasks.decision.two_afc.decide`:
the first pool whose smoothed rate crosses the threshold, else the higher late rate), i.e. action ``pool + 1``;
the trial is correct when that equals the ground truth at the decision (the ``final`` measure of
:mod:`tasks.cognitive.trials`), and the reaction time is the crossing time after stimulus onset.

**Prefrontal working memory on DelayMatchSample-v0** (Compte et al. 2000; Brunel & Wang 2001; the circuit and
protocol of :mod:`tasks.memory.working_memory`, with one pool per sample direction, ``dim_ring`` of them): the
trial's sample direction ``sample_theta`` cues its pool for the task's sample period, the memory is held through
the task's delay (no distractor: its rate is 0), and at test the item held (the pool with the highest rate over the
last ``readout`` ms, if at least ``memory_rate``; else a coin flip) is compared with the trial's test direction:
"match" (action 1) when they are the same item, else "non-match" (action 2); correct when it equals the ground
truth at the decision.

Trials of one condition (coherence and side; sample item) run in parallel on the simulator's batch dimension.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Optional

import numpy as np

from tasks.cognitive.trials import draw_trial
from tasks.decision import two_afc
from tasks.memory import working_memory


def schema_defaults(schema: Any) -> dict:
    """The default config of a task kind's schema (every field's default)."""
    return {name: spec.default for name, spec in schema.fields.items()}


def majority(answers: np.ndarray) -> float:
    """Chance as for the agents (:func:`tasks.cognitive.trials.chance_level`): the frequency of the most common
    answer."""
    _, counts = np.unique(answers, return_counts=True)
    return round(float(counts.max() / counts.sum()), 4)


def period_ms(env: Any, name: str) -> float:
    """The duration of the current trial's period ``name`` in ms."""
    return float(env.end_ind[name] - env.start_ind[name]) * float(env.dt)


def decision_attractor(env: Any, trials: int, seed: int, overrides: Optional[dict] = None,
                       stimulus_ms: Optional[float] = None, progress: Any = None) -> dict:
    """``trials`` NeuroGym trials of ``env`` (PerceptualDecisionMaking) decided by the two_afc circuit (module
    docstring): overall ``perf`` and per coherence ``accuracy``, reaction time (mean, SD, ms) and ``decided``."""
    config = {**schema_defaults(two_afc.SCHEMA), "progress": False, **(overrides or {})}
    env.seed(int(seed))
    groups: dict = defaultdict(list)
    for _ in range(trials):
        trial = draw_trial(env)
        answer = int(trial.gt[trial.decision][0])
        duration = stimulus_ms if stimulus_ms is not None else period_ms(env, "stimulus")
        groups[(float(trial.info["coh"]), answer, duration)].append(answer)
    assembly = None
    per_coh: dict = defaultdict(lambda: {"hits": [], "rt": [], "decided": []})
    engine = None
    for i, ((coh, answer, duration), members) in enumerate(sorted(groups.items())):
        cfg = {**config, "stimulus": {**config["stimulus"], "duration": duration}}
        assembly = two_afc.decision_assembly(cfg["network"], cfg["stimulus"], dt=cfg["dt"], bin_ms=cfg["bin"],
                                             backend=cfg["backend"], device=cfg["device"])
        r = two_afc.run_trials(assembly, coh / 100.0, answer - 1, len(members), seed * 1000 + i, cfg)
        engine = r["engine"]
        per_coh[coh]["hits"].append(r["hits"])
        per_coh[coh]["rt"].append(r["rt"])
        per_coh[coh]["decided"].append(r["decided"])
        if progress is not None:
            progress.update(len(members))
    rows, hits_all = [], []
    for coh in sorted(per_coh):
        hits = np.concatenate(per_coh[coh]["hits"])
        rt = np.concatenate(per_coh[coh]["rt"])
        dec = np.concatenate(per_coh[coh]["decided"])
        hits_all.append(hits)
        rows.append({"coherence": coh / 100.0, "accuracy": float(hits.mean()),
                     "rt_ms": float(np.nanmean(rt)) if dec.any() else None,
                     "rt_sd_ms": float(np.nanstd(rt)) if dec.any() else None,
                     "decided": float(dec.mean()), "trials": int(hits.size)})
    hits = np.concatenate(hits_all)
    answers = np.array([a for members in groups.values() for a in members])
    return {"task": env.spec.id if getattr(env, "spec", None) else type(env).__name__, "model": "decision attractor",
            "measure": "final", "perf": round(float(hits.mean()), 4), "chance": majority(answers),
            "trials": int(hits.size), "rows": rows, "engine": engine}


def working_memory_dms(env: Any, trials: int, seed: int, overrides: Optional[dict] = None,
                       progress: Any = None) -> dict:
    """``trials`` NeuroGym DelayMatchSample trials answered by the prefrontal working memory (module docstring)."""
    thetas = np.asarray(env.theta, dtype=float)
    pools = len(thetas)
    config = {**schema_defaults(working_memory.SCHEMA), **(overrides or {})}
    config["network"] = {**config.get("network", {}), "pools": pools}
    rng = np.random.default_rng(seed)
    env.seed(int(seed))
    groups: dict = defaultdict(list)
    for _ in range(trials):
        trial = draw_trial(env)
        sample = int(np.argmin(np.abs(np.angle(np.exp(1j * (thetas - trial.info["sample_theta"]))))))
        test = int(np.argmin(np.abs(np.angle(np.exp(1j * (thetas - trial.info["test_theta"]))))))
        timing = (period_ms(env, "fixation"), period_ms(env, "sample"), period_ms(env, "delay"))
        groups[(sample, timing)].append((test, int(trial.gt[trial.decision][0])))
    n_read = max(1, int(round(config["readout"] / config["bin"])))
    correct, survived, engine = [], [], None
    for i, ((sample, (fixation, sample_ms, delay)), members) in enumerate(sorted(groups.items())):
        cfg = {**config, "fixation": fixation, "cue": {**config["cue"], "duration": sample_ms},
               "delay1": delay / 2.0, "distractor": {**config["distractor"], "rate": 0.0, "duration": 0.0},
               "delay2": delay / 2.0}
        assembly = working_memory.task_assembly(cfg["network"], cfg)
        r = working_memory.run_pair(assembly, pools, sample, (sample + 1) % pools, len(members), seed * 1000 + i,
                                    cfg)
        engine = r["engine"]
        rates, marks = r["rates"], r["marks"]
        late = rates[:, marks["test"] - n_read:marks["test"]].mean(axis=1)  # [K, B]
        memory = np.where(late.max(axis=0) >= cfg["memory_rate"], late.argmax(axis=0), -1)
        tests = np.array([m[0] for m in members])
        answers = np.array([m[1] for m in members])
        says_match = np.where(memory >= 0, memory == tests, rng.random(len(members)) < 0.5)
        action = np.where(says_match, 1, 2)
        correct.append(action == answers)
        survived.append(memory == sample)
        if progress is not None:
            progress.update(len(members))
    correct = np.concatenate(correct)
    answers = np.array([m[1] for members in groups.values() for m in members])
    return {"task": env.spec.id if getattr(env, "spec", None) else type(env).__name__,
            "model": "prefrontal working memory", "measure": "final", "perf": round(float(correct.mean()), 4),
            "chance": majority(answers), "trials": int(correct.size),
            "memory_held": round(float(np.concatenate(survived).mean()), 4), "engine": engine}


__all__ = ["schema_defaults", "majority", "period_ms", "decision_attractor", "working_memory_dms"]
