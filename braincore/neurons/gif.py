"""Generalized integrate-and-fire neuron, GIF (Mensi et al. 2012; Pozzorini et al. 2015), deterministic threshold.

Mensi, Naud, Pozzorini, Avermann, Petersen & Gerstner (2012), "Parameter extraction and classification of three
cortical neuron types reveals two distinct adaptation mechanisms", J. Neurophysiol. 107(6):1756-1775;
Pozzorini, Mensi, Hagens, Naud, Koch & Gerstner (2015), "Automated high-throughput characterization of single
neurons by means of simplified spiking models", PLoS Comput. Biol. 11(6):e1004275. NEST implements the same
model as ``gif_psc_exp``; the equations, parameter names and the per-step scheme follow it.

Equations (two spike-triggered currents ``eta_k``, two threshold kernels ``gamma_k``)::

    C dV/dt          = -g_L (V - E_L) - eta_1 - eta_2 + I
    tau_eta_k   d eta_k/dt   = -eta_k                        k = 1, 2
    tau_gamma_k d gamma_k/dt = -gamma_k                      k = 1, 2
    V_T = V_T_star + gamma_1 + gamma_2                       the moving threshold
    if V > V_T:  spike, V <- V_reset, eta_k <- eta_k + q_eta_k, gamma_k <- gamma_k + q_gamma_k,
                 refractory for t_ref (V clamped at V_reset; eta_k and gamma_k keep decaying)

Canonical units: ``C`` pF; ``g_L`` nS; ``E_L``, ``V_reset``, ``V_T_star``, ``gamma_k``, ``q_gamma_k`` mV;
``tau_*`` and ``t_ref`` ms; ``eta_k``, ``q_eta_k`` and the input ``I`` nA. The parser rescales the terms
(``nS * mV = 1e-3 nA``, ``nA / pF = 1000 mV/ms``), so the equations are written in their physical form.

Threshold: the papers' model fires stochastically with the escape rate
``lambda(t) = lambda_0 exp((V - V_T)/Delta_V)``. Here the threshold is deterministic, ``V > V_T``: the limit
``Delta_V -> 0`` of the escape rate (zero below ``V_T``, infinite above). Escape noise is left out because
(1) the definition system and both engines are deterministic: spike-for-spike agreement of the PyTorch and the
native engine (and of a Brian2 reference) needs no shared random stream; (2) gradient training passes a
surrogate derivative through a hard threshold (:mod:`braincore.surrogate`), while the stochastic model would be
trained by its likelihood, a different method. ``Delta_V`` and ``lambda_0`` are therefore not parameters.

Integration: ``exponential_euler`` (default), ``euler``, ``rk4``. ``exponential_euler`` integrates ``V`` exactly
over a step with the input and the currents ``eta_k`` held at their values at the start of the step, and the
``eta_k`` and ``gamma_k`` exactly (pure decays, ``x <- x exp(-dt/tau)``): the membrane update is NEST's
``gif_psc_exp`` one (``V <- P30 (I - stc) + P33 V + P31 E_L`` with ``stc`` the sum of the ``eta_k`` at the start
of the step). One difference in the schedule: NEST compares the updated ``V`` with the threshold at the start of
the step, braincore (like Brian2) with the threshold of the updated ``gamma_k`` (the step convention of
:mod:`braincore.neurons.base`). Its
error comes only from holding ``eta_k`` over the step: first order in ``dt``, at most about
``sum_k |eta_k| dt / (2 tau_eta_k g_L)`` in ``V`` (``tests/test_gif.py``). ``exact`` is not offered: ``V`` is
coupled to the integrated ``eta_k``, and braincore's ``exact`` covers uncoupled equations only
(:mod:`braincore.equations.integrate`).

Spike-triggered jumps are applied at the spike, before the refractory period (NEST's convention). The GIF
toolbox of Pozzorini et al. applies them after it; NEST's documentation gives the conversion
``q_toolbox = q_NEST (1 - exp(-t_ref/tau))``.

Defaults are the fitted values used by NEST's example ``gif_population.py`` ("parameters extracted by fitting the
model to experimental data", Mensi et al. 2012): ``C`` 83.1 pF, ``g_L`` 3.7 nS, ``E_L`` -67 mV, ``V_reset``
-36.7 mV, ``V_T_star`` -39.6 mV, ``t_ref`` 4 ms, ``q_eta`` (56.7, -6.9) pA with ``tau_eta`` (57.8, 218.2) ms,
``q_gamma`` (11.7, 1.8) mV with ``tau_gamma`` (53.8, 640) ms (``tau_m = C/g_L`` = 22.5 ms). The state starts at
rest, ``V = E_L``, all kernels zero. Defined once, as equations (:data:`GIF_DEFINITION`); the PyTorch step, the
native C step and the training layers (:class:`braincore.training.DefinedLayer`) are generated from it.
"""
from __future__ import annotations

from ..equations import NeuronDefinition
from ..params import _any_le, _any_lt
from .defined import define_model, pure_step

GIF_DEFINITION = NeuronDefinition(
    name="gif",
    params={
        "C": (83.1, "capacitance", "membrane capacitance"),
        "g_L": (3.7, "conductance", "leak conductance"),
        "E_L": (-67.0, "voltage", "leak reversal (resting) potential"),
        "V_reset": (-36.7, "voltage", "reset potential"),
        "V_T_star": (-39.6, "voltage", "baseline threshold"),
        "t_ref": (4.0, "time", "absolute refractory period (V clamped at V_reset)"),
        "q_eta_1": (0.0567, "current", "jump of the spike-triggered current eta_1 at a spike"),
        "tau_eta_1": (57.8, "time", "decay time constant of eta_1"),
        "q_eta_2": (-0.0069, "current", "jump of the spike-triggered current eta_2 at a spike"),
        "tau_eta_2": (218.2, "time", "decay time constant of eta_2"),
        "q_gamma_1": (11.7, "voltage", "jump of the threshold kernel gamma_1 at a spike"),
        "tau_gamma_1": (53.8, "time", "decay time constant of gamma_1"),
        "q_gamma_2": (1.8, "voltage", "jump of the threshold kernel gamma_2 at a spike"),
        "tau_gamma_2": (640.0, "time", "decay time constant of gamma_2"),
    },
    state={"v": ("voltage", "E_L"), "eta_1": ("current", "0"), "eta_2": ("current", "0"),
           "gamma_1": ("voltage", "0"), "gamma_2": ("voltage", "0")},
    equations=("dv/dt = (-g_L*(v - E_L) - eta_1 - eta_2 + I) / C",
               "deta_1/dt = -eta_1 / tau_eta_1",
               "deta_2/dt = -eta_2 / tau_eta_2",
               "dgamma_1/dt = -gamma_1 / tau_gamma_1",
               "dgamma_2/dt = -gamma_2 / tau_gamma_2"),
    threshold="v > V_T_star + gamma_1 + gamma_2",
    reset=("v = V_reset", "eta_1 = eta_1 + q_eta_1", "eta_2 = eta_2 + q_eta_2",
           "gamma_1 = gamma_1 + q_gamma_1", "gamma_2 = gamma_2 + q_gamma_2"),
    refractory="t_ref", clamped=("v",),
    methods=("exponential_euler", "euler", "rk4"),
    input_unit="nA",
    doc="Generalized integrate-and-fire neuron (Mensi et al. 2012; Pozzorini et al. 2015), deterministic "
        "threshold.",
)


def _check(self) -> list[str]:
    problems = [f"{name} must be > 0, got {getattr(self, name)}"
                for name in ("C", "g_L", "tau_eta_1", "tau_eta_2", "tau_gamma_1", "tau_gamma_2")
                if _any_le(getattr(self, name), 0.0)]
    if _any_lt(self.t_ref, 0.0):
        problems.append(f"t_ref must be >= 0 ms, got {self.t_ref}")
    return problems


GIF = define_model(GIF_DEFINITION, "GIF", check=_check, doc="""Generalized integrate-and-fire neuron with two
spike-triggered currents and a moving threshold (deterministic). Equations, units, method and defaults: see
:mod:`braincore.neurons.gif`.

    >>> import torch
    >>> cells = GIF(3)
    >>> spikes, state = cells(torch.full((1, 3), 0.2))   # one 0.1 ms step under 0.2 nA
""")
GIFParams, GIFState = GIF.params_cls, GIF.state_cls
gif_step = pure_step(GIF)
