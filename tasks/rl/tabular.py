"""Exact values of tabular environments (gymnasium toy-text: FrozenLake, CliffWalking, Taxi) with a time limit.

gymnasium's toy-text environments expose their model ``P[s][a] = [(p, s', r, terminated), ...]``. With a time
limit of ``H`` steps the value of a policy is the finite-horizon expectation (backward induction, ``V_0 = 0``)::

    V_k(s) = sum_{s'} p(s' | s, a) [r + (1 - term) V_{k-1}(s')]           a = pi(s)        (policy)
    V*_k(s) = max_a sum_{s'} p(s' | s, a) [r + (1 - term) V*_{k-1}(s')]                     (optimum)

undiscounted (the return an evaluation episode measures), ``k = H`` at the start. For FrozenLake the value is
the probability of reaching the goal within ``H`` steps: 1 on the deterministic 4x4 lake, about 0.74 on the
slippery one (H = 100). These give an agent's *learned* policy's exact score, free of evaluation noise.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def _model(env) -> "tuple[dict, int, int]":
    base = env.unwrapped
    if not hasattr(base, "P"):
        raise ValueError(f"{base} has no transition model P (not a toy-text environment)")
    return base.P, int(base.observation_space.n), int(base.action_space.n)


def _backup(P: dict, n_states: int, n_actions: int, v: np.ndarray) -> np.ndarray:
    q = np.zeros((n_states, n_actions))
    for s in range(n_states):
        for a in range(n_actions):
            q[s, a] = sum(p * (r + (0.0 if term else v[s2])) for p, s2, r, term in P[s][a])
    return q


def optimal_values(env, horizon: int) -> np.ndarray:
    """``V*_H(s)`` for every state: the best expected undiscounted return within ``horizon`` steps."""
    P, n_s, n_a = _model(env)
    v = np.zeros(n_s)
    for _ in range(horizon):
        v = _backup(P, n_s, n_a, v).max(axis=1)
    return v


def policy_values(env, policy: Sequence[int], horizon: int) -> np.ndarray:
    """``V^pi_H(s)`` of a deterministic stationary policy (one action per state)."""
    P, n_s, n_a = _model(env)
    pi = np.asarray(policy, dtype=np.int64)
    if pi.shape != (n_s,) or pi.min() < 0 or pi.max() >= n_a:
        raise ValueError(f"policy must give one action in 0..{n_a - 1} for each of the {n_s} states")
    v = np.zeros(n_s)
    for _ in range(horizon):
        v = _backup(P, n_s, n_a, v)[np.arange(n_s), pi]
    return v


def greedy_policy(env, values: np.ndarray) -> np.ndarray:
    """The stationary policy greedy with respect to ``values`` (e.g. ``optimal_values(env, H - 1)``)."""
    P, n_s, n_a = _model(env)
    return _backup(P, n_s, n_a, np.asarray(values, dtype=float)).argmax(axis=1)
