"""NeuroGym trials as arrays, batched whole, and the task's performance measure (no PyTorch here).

NeuroGym (Molano-Mazon et al. 2022, "NeuroGym: An open resource for developing and sharing neuroscience tasks")
writes each task as a ``TrialEnv``: ``env.new_trial(**kwargs)`` draws a trial (its conditions in ``env.trial``,
e.g. ``coh`` and ``ground_truth``) and builds its observations ``env.ob [T, n_obs]`` and the ground-truth action of
every time step ``env.gt [T]`` (0 = fixate), one step being ``env.dt`` ms; ``env.start_ind[p]`` / ``env.end_ind[p]``
bound each period ``p`` (``fixation``, ``stimulus``, ``delay``, ``decision``, ...) in steps. Anything with this
interface works here (the tests use a small fake one), so nothing in this module imports neurogym.

**Batches** (:func:`trial_batch`): ``B`` whole trials, all starting on the batch's first step, each padded at its
*end* with silent steps (observation 0, target 0, ``mask`` False) to the longest trial of the batch: ``ob [T, B,
n_obs]`` (float32), ``gt [T, B]`` (int64), ``mask [T, B]`` (the trial's own steps) and ``decision [T, B]`` (the steps
of its decision period). The network starts every trial from rest (no state carried between trials) and is causal,
so what it does during a trial does not depend on the other trials of the batch or on the padding after it (padding
before a trial would: it looks like the fixation-off of a decision period).

**Performance** (:func:`trial_scores`; the measure of NeuroGym's examples and of Molano-Mazon et al.):

- ``final``: the trial's decision is the network's action at the first step of the decision period where it leaves
  fixation (argmax != 0), or, if it never does, its action at the period's last step; the trial is correct (score
  1) when that action equals the ground truth at that step. A perfect predictor scores 1; one that always fixates
  scores 0 on every trial whose answer is not "fixate" (a no-go trial's answer is).
- ``steps``: the fraction of decision-period steps whose action equals the ground truth (tasks without one final
  choice: timing, reaching).

A task's *chance* (:func:`chance_level`) is the best score of a constant action on the same trials (the majority
answer: 0.5 for two balanced choices), so it is defined for both measures.

**Reaction-time variant** (``reaction_time``): as :class:`neurogym.wrappers.ReactionTime` does to a trial, the
decision period starts one step after stimulus onset, the ground truth of the stimulus period (after its first
step) becomes the trial's answer, and the trial ends with the stimulus.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

#: the install command named when neurogym is missing (its pins would downgrade gymnasium)
INSTALL = "pip install --no-deps neurogym && pip install loguru pydantic-settings tomlkit natsort"

#: NeuroGym 2.3.1 task ids with discrete actions and per-step ground truth (``neurogym.envs.registration.all_envs``
#: less the ones without ``ob``/``gt`` (Bandit, DawTwoStep, EconomicDecisionMaking, Null), with continuous actions
#: (ReachingDelayResponse, SpatialSuppressMotion) or required arguments (AnnubesEnv))
KNOWN_TASKS = (
    "AntiReach-v0", "ContextDecisionMaking-v0", "DelayComparison-v0", "DelayMatchCategory-v0", "DelayMatchSample-v0",
    "DelayMatchSampleDistractor1D-v0", "DelayPairedAssociation-v0", "DualDelayMatchSample-v0", "GoNogo-v0",
    "HierarchicalReasoning-v0", "IntervalDiscrimination-v0", "MotorTiming-v0", "MultiSensoryIntegration-v0",
    "OneTwoThreeGo-v0", "PerceptualDecisionMaking-v0", "PerceptualDecisionMakingDelayResponse-v0",
    "PostDecisionWager-v0", "ProbabilisticReasoning-v0", "PulseDecisionMaking-v0", "Reaching1D-v0",
    "Reaching1DWithSelfDistraction-v0", "ReadySetGo-v0", "ToneDetection-v0",
)
MEASURES = ("final", "steps")


class NeurogymMissing(ImportError):
    """neurogym is not installed (it is an optional, separately installed package)."""


def import_neurogym() -> Any:
    """The ``neurogym`` module, or :class:`NeurogymMissing` naming the install command."""
    try:
        import neurogym
    except ImportError as err:
        raise NeurogymMissing(f"the neurogym config kind needs the neurogym package, which is not installed ({err}). "
                              f"Install it without its dependencies (its pins would downgrade gymnasium): "
                              f"{INSTALL}") from err
    return neurogym


def make_env(task_id: str, kwargs: Optional[dict] = None, seed: Optional[int] = None) -> Any:
    """``neurogym.make(task_id, **kwargs).unwrapped`` (the TrialEnv itself), seeded when ``seed`` is given."""
    import warnings

    ngym = import_neurogym()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gymnasium's metadata warning about render_modes
        env = ngym.make(task_id, **(kwargs or {})).unwrapped
    if seed is not None:
        env.seed(int(seed))
    return env


def decision_period(env: Any, period: Optional[str] = None) -> str:
    """The name of the trial's decision period: ``period`` if given, else ``decision`` when the task has one,
    else its last period (the one that ends last, ties: the one that starts last)."""
    if period is not None:
        if period not in env.start_ind:
            raise KeyError(f"the task has no period {period!r} (it has: {', '.join(env.start_ind)})")
        return period
    if "decision" in env.start_ind:
        return "decision"
    return max(env.start_ind, key=lambda p: (env.end_ind[p], env.start_ind[p]))


@dataclass
class Trial:
    """One trial as arrays: ``ob [T, n_obs]``, ``gt [T]``, ``decision [T]`` (bool) and the env's ``info``."""

    ob: np.ndarray
    gt: np.ndarray
    decision: np.ndarray
    info: dict = field(default_factory=dict)
    stimulus_start: int = 0


def draw_trial(env: Any, period: Optional[str] = None, reaction_time: bool = False, **conditions: Any) -> Trial:
    """A new trial of ``env`` (``conditions`` fix some of its variables, e.g. ``coh=12.8``) as a :class:`Trial`;
    ``reaction_time``: the variant of :class:`neurogym.wrappers.ReactionTime` (module docstring)."""
    info = env.new_trial(**conditions)
    ob = np.asarray(env.ob, dtype=np.float32).reshape(len(env.ob), -1)
    gt = np.asarray(env.gt).astype(np.int64).reshape(len(env.gt))
    name = decision_period(env, period)
    start, end = int(env.start_ind[name]), int(env.end_ind[name])
    stim = int(env.start_ind.get("stimulus", start))
    if reaction_time:
        if "stimulus" not in env.start_ind:
            raise KeyError("the reaction-time variant needs a 'stimulus' period")
        answer = gt[start]
        s0, s1 = int(env.start_ind["stimulus"]), int(env.end_ind["stimulus"])
        gt = gt.copy()
        gt[s0 + 1:s1] = answer
        ob, gt = ob[:s1], gt[:s1]
        start, end = s0 + 1, s1
    decision = np.zeros(len(gt), dtype=bool)
    decision[start:end] = True
    return Trial(ob, gt, decision, dict(info) if isinstance(info, dict) else {}, stim)


@dataclass
class TrialBatch:
    """``B`` trials from step 0, padded at their end to ``T`` steps (module docstring)."""

    ob: np.ndarray        # [T, B, n_obs] float32
    gt: np.ndarray        # [T, B] int64
    mask: np.ndarray      # [T, B] bool: the trial's own steps
    decision: np.ndarray  # [T, B] bool: its decision period
    infos: list           # B dicts: the trials' conditions
    onset: np.ndarray     # [B] int: the batch step of each trial's stimulus onset

    @property
    def size(self) -> int:
        return self.gt.shape[1]


def stack_trials(trials: list) -> TrialBatch:
    """Stack ``trials`` on axis 1, each padded at its end to the longest."""
    T = max(len(t.gt) for t in trials)
    B, n_obs = len(trials), trials[0].ob.shape[1]
    ob = np.zeros((T, B, n_obs), dtype=np.float32)
    gt = np.zeros((T, B), dtype=np.int64)
    mask = np.zeros((T, B), dtype=bool)
    decision = np.zeros((T, B), dtype=bool)
    onset = np.zeros(B, dtype=np.int64)
    for b, t in enumerate(trials):
        n = len(t.gt)
        ob[:n, b], gt[:n, b], mask[:n, b], decision[:n, b] = t.ob, t.gt, True, t.decision
        onset[b] = t.stimulus_start
    return TrialBatch(ob, gt, mask, decision, [t.info for t in trials], onset)


def trial_batch(env: Any, batch: int, period: Optional[str] = None, reaction_time: bool = False,
                **conditions: Any) -> TrialBatch:
    """``batch`` new trials of ``env`` (:func:`draw_trial`), stacked (:func:`stack_trials`)."""
    return stack_trials([draw_trial(env, period, reaction_time, **conditions) for _ in range(batch)])


def decision_steps(actions: np.ndarray, batch: TrialBatch) -> np.ndarray:
    """The batch step of each trial's decision (``[B]``): the first decision-period step whose action is not 0
    (fixate), else the period's last step."""
    period = batch.decision
    leaves = period & (actions != 0)
    last = period.shape[0] - 1 - np.argmax(period[::-1], axis=0)
    return np.where(leaves.any(axis=0), np.argmax(leaves, axis=0), last)


def trial_scores(actions: np.ndarray, batch: TrialBatch, measure: str = "final") -> np.ndarray:
    """Per-trial performance ``[B]`` of ``actions [T, B]`` (module docstring: ``final`` 0/1, ``steps`` a
    fraction)."""
    actions = np.asarray(actions)
    if actions.shape != batch.gt.shape:
        raise ValueError(f"actions must be [T, B] = {batch.gt.shape}, got {actions.shape}")
    if measure == "final":
        t = decision_steps(actions, batch)
        cols = np.arange(batch.size)
        return (actions[t, cols] == batch.gt[t, cols]).astype(float)
    if measure == "steps":
        hits = (actions == batch.gt) & batch.decision
        return hits.sum(axis=0) / np.maximum(batch.decision.sum(axis=0), 1)
    raise ValueError(f"unknown measure {measure!r} (expected one of {MEASURES})")


def chance_level(batches: list, n_actions: int, measure: str = "final") -> float:
    """The best mean score of a constant action over ``batches`` (the majority answer)."""
    best = 0.0
    for a in range(n_actions):
        scores = np.concatenate([trial_scores(np.full_like(b.gt, a), b, measure) for b in batches])
        best = max(best, float(scores.mean()))
    return best


def n_actions(env: Any) -> int:
    """The number of discrete actions of ``env`` (``action_space.n``)."""
    n = getattr(getattr(env, "action_space", None), "n", None)
    if n is None:
        raise ValueError(f"{type(env).__name__}: only tasks with discrete actions are supported")
    return int(n)


__all__ = ["INSTALL", "KNOWN_TASKS", "MEASURES", "NeurogymMissing", "import_neurogym", "make_env", "decision_period",
           "Trial", "draw_trial", "TrialBatch", "stack_trials", "trial_batch", "decision_steps", "trial_scores",
           "chance_level", "n_actions"]
