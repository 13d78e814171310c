"""Recurrent agents for NeuroGym tasks, trained by the same code with the task's ground truth or by reinforcement.

Two networks of the same hidden size ``H`` read the trial's observations ``x_t [B, n_obs]`` (one step = the task's
``dt``, 100 ms by default) and give, at every step, logits over the task's ``A`` actions and a value estimate:

- ``srnn``: the adaptive spiking recurrent network of Yin, Corradi & Bohté 2021 (Nat. Mach. Intell. 3): one
  recurrent layer of adaptive LIF units (:class:`braincore.training.layers.ALIFLayer`, equations in
  :mod:`braincore.training.fused_alif`; the observations enter as input current ``I_t = W x_t + b``; ``u_t = beta
  v_{t-1} + I_t + V s_{t-1}``, ``s_t = H(u_t - theta_t)``, threshold ``theta_t = 1 + 1.8 a_t`` raised by the
  low-passed spikes ``a_t``; ``tau_m``, ``tau_adapt`` in steps, learnable per unit; multi-Gaussian surrogate) read
  by a leaky integrator ``y_t = alpha y_{t-1} + U s_t + c`` (:class:`~braincore.training.layers.LeakyReadout`,
  ``alpha = exp(-1 / readout_tau)``);
- ``rnn``: a non-spiking recurrent network: ``torch.nn.GRU`` (``cell: gru``, the default) or the Elman
  ``h_t = tanh(W x_t + V h_{t-1} + b)`` (``cell: tanh``), read by a linear layer ``y_t = U h_t + c``.

``y_t`` has ``A + 1`` entries: the action logits and the value ``V_t`` (used by reinforcement only).

**Supervised** (the usual way of NeuroGym, Molano-Mazon et al. 2022): cross-entropy between the logits of every
step and the ground-truth action ``gt_t`` (fixation included), averaged over the trials' steps with weight
``decision_weight`` on decision-period steps and 1 elsewhere.

**Reinforcement** (advantage actor-critic over whole trials): actions ``a_t ~ softmax(logits_t)`` are sampled at
every step and played in the task's own environment (``env.step``), which returns its rewards (correct answer,
fixation break, ...) and ends the trial (at a decision, or at its last step); returns ``G_t = r_t + gamma
G_{t+1}``; loss ``-mean(log pi(a_t) (G_t - V_t)) + value_coef mean((V_t - G_t)^2) - entropy_coef mean(H[pi_t])``
over the steps the trial lasted, gradients by backpropagation through time (the observations of a NeuroGym trial do
not depend on the actions, so one forward pass over the trial gives every step's policy).

Batches are whole trials (:mod:`tasks.cognitive.trials`), drawn from the task seeded by ``(seed, task, step)``, and
actions are sampled from a generator seeded the same way, so a run resumed from its checkpoint (model, optimiser,
step, learning curve) continues exactly as it would have. Adam, gradient norm clipped to 1.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np
import torch
from torch import nn

from braincore.training.layers import ALIFLayer, LeakyReadout
from tasks.cognitive.trials import TrialBatch, draw_trial, stack_trials, trial_batch, trial_scores

Tensor = torch.Tensor
MODELS = ("srnn", "rnn")


@dataclass
class AgentSpec:
    """What builds an agent: ``model`` (srnn or rnn), sizes and time constants (in steps)."""

    model: str
    n_obs: int
    n_actions: int
    hidden: int = 64
    tau_m: float = 5.0
    tau_adapt: float = 20.0
    readout_tau: float = 2.0
    cell: str = "gru"
    seed: int = 0


class RecurrentAgent(nn.Module):
    """``forward(ob [T, B, n_obs]) -> (logits [T, B, A], value [T, B], hidden activity [T, B, H])`` (module
    docstring)."""

    def __init__(self, spec: AgentSpec):
        super().__init__()
        if spec.model not in MODELS:
            raise ValueError(f"unknown model {spec.model!r} (expected one of {MODELS})")
        self.spec = spec
        with torch.random.fork_rng(devices=[]):  # nn.GRU / nn.Linear draw from the global generator: seed a copy
            torch.manual_seed(spec.seed)
            self._build(spec, torch.Generator().manual_seed(spec.seed))

    def _build(self, spec: AgentSpec, generator: torch.Generator) -> None:
        if spec.model == "srnn":
            self.core: nn.Module = ALIFLayer(spec.n_obs, spec.hidden, recurrent=True, tau_m=spec.tau_m,
                                             tau_adapt=spec.tau_adapt, generator=generator)
            self.readout: nn.Module = LeakyReadout(spec.hidden, spec.n_actions + 1, tau=spec.readout_tau)
        else:
            if spec.cell == "gru":
                self.core = nn.GRU(spec.n_obs, spec.hidden)
            elif spec.cell == "tanh":
                self.core = nn.RNN(spec.n_obs, spec.hidden, nonlinearity="tanh")
            else:
                raise ValueError(f"unknown cell {spec.cell!r} (expected gru or tanh)")
            self.readout = nn.Linear(spec.hidden, spec.n_actions + 1)

    def forward(self, ob: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        h = self.core(ob) if self.spec.model == "srnn" else self.core(ob)[0]
        out = self.readout(h)
        return out[..., :-1], out[..., -1], h


def step_seed(*keys: int) -> int:
    """A 31-bit seed from integer keys (``seed, task, step, ...``)."""
    return int(np.random.SeedSequence([int(k) for k in keys]).generate_state(1)[0] & 0x7FFFFFFF)


@dataclass
class TaskSetup:
    """One task as the trainers see it: a function giving a new env, the decision period, the measure and the
    reaction-time variant flag."""

    make_env: Callable[[], Any]
    period: Optional[str] = None
    measure: str = "final"
    reaction_time: bool = False


@dataclass
class TrainSettings:
    steps: int = 1000
    batch: int = 32
    lr: float = 3e-3
    decision_weight: float = 1.0
    gamma: float = 0.99
    value_coef: float = 0.5
    entropy_coef: float = 0.01
    log_every: int = 50
    seed: int = 0
    task_index: int = 0


def supervised_loss(logits: Tensor, batch: TrialBatch, decision_weight: float = 1.0) -> Tensor:
    """Mean cross-entropy of every real step's logits against its ground-truth action (weight ``decision_weight``
    in the decision period)."""
    T, B, A = logits.shape
    gt = torch.from_numpy(batch.gt).reshape(-1)
    ce = nn.functional.cross_entropy(logits.reshape(T * B, A), gt, reduction="none").reshape(T, B)
    weight = torch.from_numpy(batch.mask.astype(np.float32)) * \
        (1.0 + (decision_weight - 1.0) * torch.from_numpy(batch.decision.astype(np.float32)))
    return (ce * weight).sum() / weight.sum()


def play(envs: list, actions: np.ndarray, batch: TrialBatch) -> tuple[np.ndarray, np.ndarray]:
    """Play ``actions [T, B]`` in each trial's env (``envs[b]`` holds trial ``b``, started at its step 0) until the
    env ends the trial: its rewards ``[T, B]`` and the steps it lasted ``[T, B]`` (bool)."""
    T = batch.gt.shape[0]
    rewards = np.zeros((T, batch.size), dtype=np.float32)
    alive = np.zeros((T, batch.size), dtype=bool)
    for b, env in enumerate(envs):
        for t in range(int(batch.mask[:, b].sum())):
            _, reward, terminated, truncated, info = env.step(int(actions[t, b]))
            rewards[t, b], alive[t, b] = float(reward), True
            if info.get("new_trial") or terminated or truncated:
                break
    return rewards, alive


def discounted_returns(rewards: np.ndarray, gamma: float) -> np.ndarray:
    """``G_t = r_t + gamma G_{t+1}`` along axis 0 (``G_T = 0``)."""
    out = np.zeros_like(rewards)
    running = np.zeros(rewards.shape[1:], dtype=rewards.dtype)
    for t in range(rewards.shape[0] - 1, -1, -1):
        running = rewards[t] + gamma * running
        out[t] = running
    return out


def actor_critic_loss(logits: Tensor, value: Tensor, actions: Tensor, returns: Tensor, alive: Tensor,
                      value_coef: float, entropy_coef: float) -> Tensor:
    """The advantage actor-critic loss of the module docstring, averaged over the ``alive`` steps."""
    logp = torch.log_softmax(logits, dim=-1)
    chosen = logp.gather(-1, actions.unsqueeze(-1)).squeeze(-1)
    advantage = (returns - value).detach()
    n = alive.sum().clamp(min=1.0)
    policy = -(chosen * advantage * alive).sum() / n
    critic = (((value - returns) ** 2) * alive).sum() / n
    entropy = (-(logp.exp() * logp).sum(-1) * alive).sum() / n
    return policy + value_coef * critic - entropy_coef * entropy


class Trainer:
    """Trains one agent on one task (supervised or reinforcement), a step at a time; :meth:`state` /
    :meth:`load_state` for checkpoints."""

    def __init__(self, agent: RecurrentAgent, task: TaskSetup, settings: TrainSettings, mode: str = "supervised"):
        if mode not in ("supervised", "reinforcement"):
            raise ValueError(f"unknown training {mode!r} (expected supervised or reinforcement)")
        if mode == "reinforcement" and task.reaction_time:
            raise ValueError("the reaction-time variant is for supervised training only")
        self.agent, self.task, self.settings, self.mode = agent, task, settings, mode
        self.optimizer = torch.optim.Adam(agent.parameters(), lr=settings.lr)
        self.step = 0
        self.history: list[dict] = []
        self._window: list[tuple[float, float, float]] = []
        self.env = task.make_env()
        self.envs = [self.env] + [task.make_env() for _ in range(settings.batch - 1)] if mode == "reinforcement" \
            else [self.env]

    def _seed(self, *more: int) -> int:
        s = self.settings
        return step_seed(s.seed, s.task_index, self.step, *more)

    def train_step(self) -> dict:
        """One optimiser step on a new batch; returns ``loss``, ``perf`` (training batch, argmax actions) and
        ``reward`` (mean per trial, reinforcement only)."""
        s, agent = self.settings, self.agent
        agent.train()
        reward = float("nan")
        if self.mode == "supervised":
            self.env.seed(self._seed())
            batch = trial_batch(self.env, s.batch, self.task.period, self.task.reaction_time)
            logits, _, _ = agent(torch.from_numpy(batch.ob))
            loss = supervised_loss(logits, batch, s.decision_weight)
        else:
            trials = []
            for b, env in enumerate(self.envs):
                env.seed(self._seed(b))
                trials.append(draw_trial(env, self.task.period))
                env.t = env.t_ind = 0  # new_trial() alone does not rewind the env's clock
            batch = stack_trials(trials)
            logits, value, _ = agent(torch.from_numpy(batch.ob))
            T, B, A = logits.shape
            probs = torch.softmax(logits.detach(), dim=-1).reshape(T * B, A)
            generator = torch.Generator().manual_seed(self._seed(10 ** 6))
            actions = torch.multinomial(probs, 1, generator=generator).reshape(T, B)
            rewards, alive = play(self.envs, actions.numpy(), batch)
            returns = discounted_returns(rewards, s.gamma)
            loss = actor_critic_loss(logits, value, actions, torch.from_numpy(returns),
                                     torch.from_numpy(alive.astype(np.float32)), s.value_coef, s.entropy_coef)
            reward = float(rewards.sum(axis=0).mean())
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(agent.parameters(), 1.0)
        self.optimizer.step()
        perf = float(trial_scores(logits.detach().argmax(-1).numpy(), batch, self.task.measure).mean())
        self.step += 1
        value = loss.item()
        self._window.append((value, perf, reward))
        if self.step % s.log_every == 0 or self.step == s.steps:
            w = np.array(self._window)
            self.history.append({"step": self.step, "loss": round(float(w[:, 0].mean()), 4),
                                 "perf": round(float(w[:, 1].mean()), 4),
                                 "reward": None if np.isnan(w[:, 2]).all() else round(float(np.nanmean(w[:, 2])), 4)})
            self._window = []
        return {"loss": value, "perf": perf, "reward": reward}

    def state(self) -> dict:
        return {"model": self.agent.state_dict(), "optimizer": self.optimizer.state_dict(), "step": self.step,
                "history": self.history, "window": [list(w) for w in self._window]}

    def load_state(self, state: dict) -> None:
        self.agent.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step, self.history = int(state["step"]), list(state["history"])
        self._window = [tuple(w) for w in state.get("window", [])]


@torch.no_grad()
def predict(agent: RecurrentAgent, batch: TrialBatch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Greedy actions ``[T, B]``, action probabilities ``[T, B, A]`` and the hidden activity ``[T, B, H]``."""
    agent.eval()
    logits, _, h = agent(torch.from_numpy(batch.ob))
    return logits.argmax(-1).numpy(), torch.softmax(logits, -1).numpy(), h.numpy()


def evaluate(agent: RecurrentAgent, task: TaskSetup, trials: int, seed: int, batch: int = 100) -> dict:
    """Performance of the greedy agent on ``trials`` held-out trials of a fresh env seeded with ``seed``: ``perf``
    (mean score, :func:`~tasks.cognitive.trials.trial_scores`), ``chance`` (best constant action on the same trials),
    ``trials``, and the hidden units' mean activity per step (``rate``: spikes per unit and step for the SRNN)."""
    from tasks.cognitive.trials import chance_level

    env = task.make_env()
    env.seed(int(seed))
    scores, batches, activity = [], [], []
    done = 0
    while done < trials:
        b = trial_batch(env, min(batch, trials - done), task.period, task.reaction_time)
        actions, _, h = predict(agent, b)
        scores.append(trial_scores(actions, b, task.measure))
        activity.append(float(np.abs(h)[b.mask].mean()))
        batches.append(b)
        done += b.size
    n_act = agent.spec.n_actions
    return {"perf": round(float(np.concatenate(scores).mean()), 4),
            "chance": round(chance_level(batches, n_act, task.measure), 4), "trials": int(done),
            "rate": round(float(np.mean(activity)), 4)}


def psychometric(agent: RecurrentAgent, task: TaskSetup, coherences: list, trials: int, seed: int,
                 bound: float = 0.0) -> dict:
    """Accuracy and reaction time per coherence (``coh`` of the task's trials, percent): ``trials`` trials each.

    The decision is the first decision-period step at which the agent leaves fixation (argmax action not 0) *and*
    the winning choice holds at least ``bound`` of the choice probability ``max_k p_k / sum_k p_k`` (``k`` >= 1;
    ``bound`` 0: leaving fixation alone); its reaction time is that step's end minus stimulus onset, in ms
    (``(t - onset + 1) dt``). A trial with no such step takes its last step's action and has no reaction time."""
    env = task.make_env()
    dt = float(getattr(env, "dt", 1.0))
    rows = []
    for i, c in enumerate(coherences):
        env.seed(step_seed(seed, i))
        b = trial_batch(env, trials, task.period, task.reaction_time, coh=c)
        actions, probs, _ = predict(agent, b)
        choice = probs[..., 1:]
        share = choice.max(-1) / np.maximum(choice.sum(-1), 1e-12)
        committed = b.decision & (actions != 0) & (share >= bound)
        last = b.decision.shape[0] - 1 - np.argmax(b.decision[::-1], axis=0)
        decided = committed.any(axis=0)
        t = np.where(decided, np.argmax(committed, axis=0), last)
        cols = np.arange(b.size)
        correct = actions[t, cols] == b.gt[t, cols]
        rt = np.where(decided, (t - b.onset + 1) * dt, np.nan)
        rows.append({"coherence": float(c), "accuracy": float(correct.mean()),
                     "rt_ms": float(np.nanmean(rt)) if decided.any() else None,
                     "rt_sd_ms": float(np.nanstd(rt)) if decided.any() else None,
                     "decided": float(decided.mean()), "trials": int(b.size)})
    return {"rows": rows, "bound": bound, "dt_ms": dt}


__all__ = ["MODELS", "AgentSpec", "RecurrentAgent", "TaskSetup", "TrainSettings", "Trainer", "step_seed",
           "supervised_loss", "play", "discounted_returns", "actor_critic_loss", "predict", "evaluate",
           "psychometric"]
