"""Exact values of tabular environments (gymnasium toy-text: FrozenLake, CliffWalking, Taxi) with a time limit.

gymnasium's toy-text environments expose their model ``P[s][a] = [(p, s', r, terminated), ...]``. With a time
limit of ``H`` steps the value of a policy is the finite-horizon expectation (backward induction, ``V_0 = 0``)::

    V_k(s) = sum_{s'} p(s' | s, a) [r + (1 - term) V_{k-1}(s')]           a = pi(s)        (policy)
    V*_k(s) = max_a sum_{s'} p(s' | s, a) [r + (1 - term) V*_{k-1}(s')]                     (optimum)

undiscounted (the return an evaluation episode measures), ``k = H`` at the start. For FrozenLake the value is
the probability of reaching the goal within ``H`` steps: 1 on the deterministic 4x4 lake, 0.7442 on the
slippery one (H = 100). ``V*`` may need a policy that depends on the steps left; an agent that sees only the state
(a spiking network without a clock) is bounded by the best *stationary* policy, found by
:func:`best_stationary_policy` (0.7402 on the slippery lake). These give an agent's *learned* policy's exact
score, free of evaluation noise.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def _model(env) -> "tuple[dict, int, int]":
    base = env.unwrapped
    if not hasattr(base, "P"):
        raise ValueError(f"{base} has no transition model P (not a toy-text environment)")
    return base.P, int(base.observation_space.n), int(base.action_space.n)


def _backup(P: dict, n_states: int, n_actions: int, v: np.ndarray, gamma: float = 1.0) -> np.ndarray:
    """``q[s, a] = sum_{s'} p (r + gamma (1 - term) v[s'])``."""
    q = np.zeros((n_states, n_actions))
    for s in range(n_states):
        for a in range(n_actions):
            q[s, a] = sum(p * (r + (0.0 if term else gamma * v[s2])) for p, s2, r, term in P[s][a])
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


def best_stationary_policy(env, horizon: int, gamma: float = 0.999) -> "tuple[np.ndarray, float]":
    """The best stationary deterministic policy for the ``horizon``-step undiscounted return from state 0, and
    its value: start from the policy greedy for the discounted problem (value iteration with ``gamma``), then
    change one state's action at a time while that raises ``V^pi_H(0)`` (coordinate ascent to a local optimum;
    on FrozenLake 4x4 no change of two states' actions improves it further, checked by exhaustive pair search)."""
    P, n_s, n_a = _model(env)
    v = np.zeros(n_s)
    for _ in range(20 * horizon):
        v_new = _backup(P, n_s, n_a, v, gamma).max(axis=1)
        if np.max(np.abs(v_new - v)) < 1e-12:
            break
        v = v_new
    policy = _backup(P, n_s, n_a, v, gamma).argmax(axis=1)
    value = policy_values(env, policy, horizon)[0]
    improved = True
    while improved:
        improved = False
        for s in range(n_s):
            for a in range(n_a):
                if a == policy[s]:
                    continue
                trial = policy.copy()
                trial[s] = a
                v_trial = policy_values(env, trial, horizon)[0]
                if v_trial > value + 1e-12:
                    policy, value, improved = trial, v_trial, True
    return policy, float(value)
