"""Dopamine: VTA/SNc neurons and the reward-prediction-error signal on the ``dopamine`` modulator channel.

Region type ``dopamine``, and the task-side hook :class:`RewardPredictionError`.

**Anatomy.** A population ``da`` of midbrain dopamine neurons (VTA and SNc pars compacta) firing tonically at a
few Hz (pacemaking, ``eta`` >= 1), and the brain-wide neuromodulator channel ``channel`` (default ``dopamine``),
which the region declares (:meth:`braincore.graph.Assembly.add_modulator`): extracellular dopamine ``M`` with
decay ``tau`` and resting level ``baseline``::

    dM/dt = -(M - baseline) / tau + release(t)            (Izhikevich 2007: tau = 200 ms)

The SNc projects to the dorsal striatum, where corticostriatal synapses onto D1 and D2 MSNs learn with opposite
signs (``rstdp`` with ``receptor: d1`` / ``d2``, :mod:`braincore.plasticity.three_factor`):
``dw/dt = eta * s * (M - baseline) * c`` with ``s = +1`` (D1) or ``-1`` (D2) and ``c`` the synapse's STDP
eligibility trace; a dopamine burst strengthens the eligible D1 (Go) synapses and weakens the D2 (NoGo) ones, a
dip does the opposite (Shen et al. 2008; Frank 2005).

**The reward prediction error** is computed at the end of each trial by a small Python hook that the task
calls, :class:`RewardPredictionError` (a Rescorla-Wagner / TD(0) critic per state or state-action ``key``)::

    delta = r - V(key)          V(key) <- V(key) + alpha * delta          M <- M + gain * delta   (a phasic pulse)

so a better-than-expected outcome is a burst, a worse one a dip, an expected one nothing (Schultz, Dayan &
Montague 1997). The spiking ``da`` population shows the tonic activity (its rate is not read by the critic;
phasic bursts are not modelled as spikes).

**Ports.** ``out`` (``da``; e.g. for a projection to a striatal interneuron model), ``in`` (``da``: inhibitory
input from the striatum or the RMTg, or excitation from the PPN).

**Parameters** (units allowed): ``n`` (20), ``tau_m`` (20 ms), ``eta`` (1.05: pacemaking at a few Hz),
``channel`` (``dopamine``), ``tau`` (200 ms, decay of the channel), ``baseline`` (0), ``background_sources``
(100), ``background_J`` (0.5 mV), ``monitors`` (true).

References: Schultz, Dayan & Montague 1997, Science 275:1593 (dopamine neurons report a reward prediction
error); Izhikevich 2007, Cereb Cortex 17:2443 (dopamine-modulated STDP, tau = 200 ms); Shen, Flajolet, Greengard
& Surmeier 2008, Science 321:848 (opposite plasticity at D1 and D2 synapses); Frank 2005, J Cogn Neurosci 17:51
(Go/NoGo learning in the basal ganglia); Fremaux & Gerstner 2016, Front Neural Circuits 9:85 (three-factor rules).
"""
from __future__ import annotations

from typing import Any, Hashable

from braincore.graph import Assembly
from braincore.region_types import register_region

from ._params import INIT_V, THETA, Checker, drive, lif, rate_for


def dopamine(n: int = 20, tau_m: Any = "20 ms", eta: float = 1.05, channel: str = "dopamine", tau: Any = "200 ms",
             baseline: float = 0.0, background_sources: int = 100, background_J: Any = "0.5 mV",
             monitors: bool = True) -> Assembly:
    """VTA/SNc dopamine neurons and the declared ``dopamine`` modulator channel (see the module docstring:
    anatomy, the RPE hook, ports, parameters, references)."""
    check = Checker("dopamine")
    n = check.integer("n", n, 1)
    tau_m_ms = check.quantity("tau_m", tau_m, "time", positive=True)
    eta = check.quantity("eta", eta, "dimensionless", minimum=0.0)
    if not isinstance(channel, str) or not channel or "." in channel:
        check.fail("channel", f"expected a channel name without dots such as 'dopamine', got {channel!r}")
    tau_ms = check.quantity("tau", tau, "time", positive=True)
    baseline = check.quantity("baseline", baseline, "dimensionless")
    sources = check.integer("background_sources", background_sources, 1)
    bg_J = check.quantity("background_J", background_J, "voltage", positive=True, maximum=THETA)
    monitors = check.flag("monitors", monitors)
    check.done()

    a = Assembly(name="dopamine")
    a.add_population("da", "lif", n, lif(tau_m_ms), init=INIT_V)
    drive(a, "pacemaking", "da", rate_for(eta * THETA, bg_J, sources, tau_m_ms), bg_J, sources)
    a.add_modulator(channel, tau=f"{tau_ms:g} ms", baseline=baseline)
    a.add_port("out", "da")
    a.add_port("in", "da")
    if monitors:
        a.add_monitor("spikes_da", "spikes", "da")
    return a


class RewardPredictionError:
    """The critic a task calls once per trial: ``delta = r - V(key)``, ``V(key) += alpha * delta``, and a phasic
    dopamine pulse ``gain * delta`` on ``channel`` of ``sim.modulators`` (see the module docstring).

    ``learning_rate`` (alpha, 0..1), ``gain`` (modulator units per unit of reward), ``initial`` (V of an unseen
    key). ``values`` holds V per key; ``history`` the ``(key, reward, delta)`` of every call.
    """

    def __init__(self, learning_rate: float = 0.1, gain: float = 1.0, channel: str = "dopamine",
                 initial: float = 0.0):
        check = Checker("RewardPredictionError")
        check.quantity("learning_rate", learning_rate, "dimensionless", minimum=0.0, maximum=1.0)
        check.quantity("gain", gain, "dimensionless")
        if not isinstance(channel, str) or not channel:
            check.fail("channel", f"expected a channel name, got {channel!r}")
        check.done()
        self.learning_rate, self.gain, self.channel = float(learning_rate), float(gain), channel
        self.initial = float(initial)
        self.values: dict = {}
        self.history: list = []

    def expected(self, key: Hashable = None) -> float:
        return self.values.get(key, self.initial)

    def __call__(self, sim, reward: float, key: Hashable = None) -> float:
        """Compute the RPE of ``reward`` in state ``key``, update V, pulse the channel of ``sim`` (a Simulator;
        ``None`` only updates V); returns ``delta``."""
        delta = float(reward) - self.expected(key)
        self.values[key] = self.expected(key) + self.learning_rate * delta
        if sim is not None and delta != 0.0:
            sim.modulators.pulse(self.channel, self.gain * delta)
        self.history.append((key, float(reward), delta))
        return delta


class TDCritic:
    """A temporal-difference critic over feature vectors whose error is the dopamine signal of a batch of trials.

    The value is linear in the features ``phi`` (for an agent, the intensities of its sensory population: one-hot
    states give a table), ``V(s) = w . phi(s)``, and each transition ``(s, r, s')`` of trial ``b`` gives the TD(0)
    error (Sutton 1988; Schultz, Dayan & Montague 1997)::

        delta_b = r_b + gamma (1 - term_b) V(s'_b) - V(s_b)
        e_b <- gamma lambda e_b + phi(s_b)                                      (e_b = phi(s_b) for lambda = 0)
        w <- w + alpha sum_b delta_b e_b / (phi(s_b) . phi(s_b))             (normalised LMS: alpha is a fraction)

with ``lambda = trace_decay`` (TD(lambda) with accumulating eligibility traces, Sutton 1988; Sutton & Barto 2018,
sec. 12.2: the error of a step also corrects the values of the states visited before it, in proportion to their
decayed trace); a trial's trace restarts with its episode (:meth:`end_episodes`).

    The weights start at ``initial`` (see :meth:`__init__`). ``term_b`` marks a terminal ``s'`` (its value is 0); a
    time-limit truncation is not terminal: pass the true
    last observation as ``s'`` and ``term_b = 0``. :meth:`release` sets the ``[B]`` values ``gain * delta`` on
    the modulator ``channel`` of a simulator (the phasic dopamine of each trial), which three-factor rules read.
    The update is a product of the error and the presynaptic activity, the local "TD-LTP" form of Fremaux,
    Sprekeler & Gerstner 2013 (PLoS Comput Biol 9:e1003024) in rate form.
    """

    def __init__(self, features: int, learning_rate: float = 0.1, gamma: float = 0.99, gain: float = 1.0,
                 channel: str = "dopamine", initial: float = 0.0, trace_decay: float = 0.0):
        check = Checker("TDCritic")
        features = check.integer("features", features, 1)
        check.quantity("learning_rate", learning_rate, "dimensionless", minimum=0.0, maximum=1.0)
        check.quantity("gamma", gamma, "dimensionless", minimum=0.0, maximum=1.0)
        check.quantity("trace_decay", trace_decay, "dimensionless", minimum=0.0, maximum=1.0)
        check.quantity("gain", gain, "dimensionless")
        if not isinstance(channel, str) or not channel:
            check.fail("channel", f"expected a channel name, got {channel!r}")
        check.done()
        import torch

        # ``initial``: the prediction of an unvisited state (one-hot features: V(s) = initial until visited). An
        # optimistic value (the largest return) makes every unvisited state look better than it is, so the first
        # visits bring negative errors and the agent tries what it has not tried: optimism under uncertainty
        # (Sutton & Barto 2018, sec. 2.6), a tonic expectation of reward in dopamine terms.
        self.weight = torch.full((features,), float(initial), dtype=torch.float64)
        self.learning_rate, self.gamma, self.gain, self.channel = float(learning_rate), float(gamma), float(gain), \
            channel
        self.trace_decay = float(trace_decay)
        self.traces = None  # [B, F], made at the first transition (lambda > 0)

    def value(self, phi):
        """``V = phi w`` for features ``phi [B, F]`` -> ``[B]``."""
        return phi.to(self.weight.dtype) @ self.weight

    def error(self, phi, reward, phi_next, terminated, learn: bool = True):
        """The TD errors ``[B]`` of a batch of transitions (and, if ``learn``, the critic's update)."""
        import torch

        phi = phi.to(self.weight.dtype)
        reward = torch.as_tensor(reward, dtype=self.weight.dtype)
        live = 1.0 - torch.as_tensor(terminated, dtype=self.weight.dtype)
        delta = reward + self.gamma * live * self.value(phi_next) - self.value(phi)
        if learn:
            norm = (phi * phi).sum(dim=1).clamp_min(1e-12)
            eligible = phi
            if self.trace_decay > 0:
                if self.traces is None or self.traces.shape != phi.shape:
                    self.traces = torch.zeros_like(phi)
                self.traces.mul_(self.gamma * self.trace_decay).add_(phi)
                eligible = self.traces
            self.weight += self.learning_rate * ((delta / norm)[:, None] * eligible).sum(dim=0)
        return delta

    def end_episodes(self, done) -> None:
        """Restart the eligibility traces of the trials whose episode ended (``done [B]`` booleans)."""
        if self.traces is not None:
            import torch

            self.traces[torch.as_tensor(done, dtype=torch.bool)] = 0.0

    def release(self, sim, delta) -> None:
        """Set the channel to ``gain * delta`` (one value per trial) in ``sim.modulators``."""
        sim.modulators.set(self.channel, self.gain * delta)

    def state_dict(self) -> dict:
        out = {"weight": self.weight.clone()}
        if self.traces is not None:
            out["traces"] = self.traces.clone()
        return out

    def load_state_dict(self, state: dict) -> None:
        self.weight.copy_(state["weight"])
        self.traces = state["traces"].clone() if "traces" in state else None


register_region("dopamine", dopamine, "VTA/SNc dopamine neurons; declares the dopamine modulator channel that a "
                                      "per-trial reward-prediction-error hook (RewardPredictionError) pulses")

__all__ = ["dopamine", "RewardPredictionError", "TDCritic"]
