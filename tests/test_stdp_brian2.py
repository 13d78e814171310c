"""STDP weight trajectories against Brian2 on replayed spike trains (the independent-simulator check).

Ten independent synapses, each between its own presynaptic and postsynaptic spike generator, replay seeded
Poisson trains (20 Hz, 2 s, on the 0.1 ms grid, with some pre and post spikes forced into the same step). Brian2
runs the rules as written in its documentation (event-driven traces, ``on_pre`` before ``on_post`` in a step);
braincore runs :class:`~braincore.plasticity.STDP` / :class:`~braincore.plasticity.TripletSTDP` step by step as
the simulator does. Every recorded weight (each 1 ms) must agree to 1e-10: the only differences are rounding
(Brian2 decays a trace once per event gap, braincore once per step). Bounds are set far from the trajectories
(braincore clips once per step, Brian2 after each pathway; equal whenever no bound is reached).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from braincore.plasticity import STDP, SynapseView, TripletSTDP
from braincore.simulator import ProjectionRuntime

b2 = pytest.importorskip("brian2")
pytestmark = pytest.mark.reference

DT = 0.1  # ms
N, STEPS, RECORD_EVERY = 10, 20000, 10


def trains(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Boolean spike rasters [STEPS, N] for pre and post: 20 Hz Poisson, plus 5 coincident pre+post steps."""
    rng = np.random.default_rng(seed)
    pre = rng.random((STEPS, N)) < 20.0 * DT / 1000.0
    post = rng.random((STEPS, N)) < 20.0 * DT / 1000.0
    both = rng.integers(0, STEPS, (5, N))
    for j in range(N):
        pre[both[:, j], j] = post[both[:, j], j] = True
    return pre, post


def braincore_trajectory(rule, pre: np.ndarray, post: np.ndarray, w0: float) -> np.ndarray:
    proj = ProjectionRuntime("p", "a", "b", 0, N, N, torch.arange(N + 1), torch.arange(N),
                             torch.full((N,), w0, dtype=torch.float64), torch.ones(N, dtype=torch.long), 1)
    view = SynapseView(proj)
    state = rule.init_state(view, 1, "cpu", torch.float64)
    pre_t, post_t = torch.from_numpy(pre.astype(np.float64)), torch.from_numpy(post.astype(np.float64))
    out = []
    for k in range(STEPS):
        rule.step(view, state, pre_t[k:k + 1], post_t[k:k + 1], DT)
        if k % RECORD_EVERY == 0:  # after steps 0, 10, 20, ... as Brian2's monitor below
            out.append(view.weight.clone().numpy())
    return np.array(out)


def brian2_trajectory(model: str, on_pre: str, on_post: str, namespace: dict, pre: np.ndarray,
                      post: np.ndarray, w0: float) -> np.ndarray:
    b2.start_scope()
    b2.prefs.codegen.target = "numpy"
    b2.defaultclock.dt = DT * b2.ms
    steps_pre, idx_pre = np.nonzero(pre)
    steps_post, idx_post = np.nonzero(post)
    g_pre = b2.SpikeGeneratorGroup(N, idx_pre, steps_pre * DT * b2.ms)
    g_post = b2.SpikeGeneratorGroup(N, idx_post, steps_post * DT * b2.ms)
    syn = b2.Synapses(g_pre, g_post, model=model, on_pre=on_pre, on_post=on_post, namespace=namespace)
    syn.connect(j="i")
    syn.w = w0
    # record at the end of each step; Brian2's step k covers [k dt, (k+1) dt), its spikes are those at k dt
    mon = b2.StateMonitor(syn, "w", record=True, dt=RECORD_EVERY * DT * b2.ms, when="end")
    net = b2.Network(g_pre, g_post, syn, mon)
    net.run(STEPS * DT * b2.ms)
    return np.asarray(mon.w).T  # [samples, N], after steps 0, 10, 20, ...


PAIR_MODEL = """w : 1
dx/dt = -x / tau_plus : 1 (event-driven)
dy/dt = -y / tau_minus : 1 (event-driven)"""


@pytest.mark.parametrize("pairing", ["all_to_all", "nearest"])
def test_pair_stdp_weights_match_brian2(pairing):
    pre, post = trains(1)
    p = dict(tau_plus=16.8, tau_minus=33.7, A_plus=0.01, A_minus=0.0105)
    rule = STDP(tau_plus=f"{p['tau_plus']} ms", tau_minus=f"{p['tau_minus']} ms", A_plus=p["A_plus"],
                A_minus=p["A_minus"], pairing=pairing, w_min=-100.0, w_max=100.0)
    ours = braincore_trajectory(rule, pre, post, 1.0)
    bump = "x += 1" if pairing == "all_to_all" else "x = 1"
    bump_post = "y += 1" if pairing == "all_to_all" else "y = 1"
    theirs = brian2_trajectory(
        PAIR_MODEL, f"w = w - A_minus * y\n{bump}", f"w = w + A_plus * x\n{bump_post}",
        {"tau_plus": p["tau_plus"] * b2.ms, "tau_minus": p["tau_minus"] * b2.ms, "A_plus": p["A_plus"],
         "A_minus": p["A_minus"]}, pre, post, 1.0)
    assert ours.shape == theirs.shape == (STEPS // RECORD_EVERY, N)
    assert np.abs(ours - theirs).max() < 1e-10
    assert np.abs(ours[-1] - 1.0).max() > 1e-3  # the weights did move


TRIPLET_MODEL = """w : 1
dr1/dt = -r1 / tau_plus : 1 (event-driven)
dr2/dt = -r2 / tau_x : 1 (event-driven)
do1/dt = -o1 / tau_minus : 1 (event-driven)
do2/dt = -o2 / tau_y : 1 (event-driven)"""


def test_triplet_stdp_weights_match_brian2():
    pre, post = trains(2)
    rule = TripletSTDP(w_min=-100.0, w_max=100.0)  # Pfister & Gerstner's visual-cortex all-to-all defaults
    p = rule.params
    ours = braincore_trajectory(rule, pre, post, 1.0)
    ns = {"tau_plus": p.tau_plus * b2.ms, "tau_minus": p.tau_minus * b2.ms, "tau_x": p.tau_x * b2.ms,
          "tau_y": p.tau_y * b2.ms, "A2p": p.A2_plus, "A3p": p.A3_plus, "A2m": p.A2_minus, "A3m": p.A3_minus}
    theirs = brian2_trajectory(TRIPLET_MODEL,
                               "w = w - o1 * (A2m + A3m * r2)\nr1 += 1\nr2 += 1",
                               "w = w + r1 * (A2p + A3p * o2)\no1 += 1\no2 += 1", ns, pre, post, 1.0)
    assert ours.shape == theirs.shape == (STEPS // RECORD_EVERY, N)
    assert np.abs(ours - theirs).max() < 1e-10
    assert np.abs(ours[-1] - 1.0).max() > 1e-4
