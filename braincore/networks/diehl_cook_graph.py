"""The Diehl & Cook (2015) network as an :class:`~braincore.graph.Assembly` (:func:`diehl_cook_assembly`) and its
excitatory neuron (:data:`EXCITATORY_MODEL`), apart from :mod:`.diehl_cook` (the network's engines, which need
PyTorch) so that validating a ``kind: diehl_cook`` config, which sizes the network's memory, does not import PyTorch;
:mod:`.diehl_cook` re-exports both.
"""
from __future__ import annotations

import math
from typing import Any, Optional

from .params import DiehlCookParams


#: The excitatory neuron as a user model: one definition, from which braincore generates the PyTorch step and the
#: native engine's C step. Defaults are the paper's; :func:`diehl_cook_assembly` sets them from the parameters.
EXCITATORY_MODEL: dict = {
    "name": "diehl_cook_exc",
    "params": {"v_rest": "-65 mV", "v_reset": "-65 mV", "v_th": "-72 mV", "tau": "100 ms", "g_L": "1 nS",
               "t_hold": "5 ms", "timer_rate": 0.1, "theta_plus": "0.05 mV", "tau_theta": "1e7 ms"},
    "state": {"v": {"unit": "mV", "init": "v_rest"}, "theta": "20 mV", "timer": {"unit": "ms",
                                                                                 "init": "t_hold + 1*ms"}},
    "equations": ["dv/dt = ((v_rest - v) + I/g_L) / tau",
                  "dtheta/dt = -theta / tau_theta",
                  "dtimer/dt = timer_rate"],
    "threshold": "v > v_th + theta and timer > t_hold",
    "reset": ["v = v_reset", "theta = theta + theta_plus", "timer = 0*ms"],
    "refractory": "5 ms",
    "method": "euler",
}


def _q(value: Any, unit: str) -> str:
    return f"{float(value)!r} {unit}"


def diehl_cook_assembly(params: Optional[DiehlCookParams] = None, *, learn: bool = True, steps: int = 700,
                        seed: int = 0, relays: bool = False) -> "Any":
    """The Diehl & Cook network as an :class:`~braincore.graph.Assembly` (see the module docstring).

    ``learn``: STDP, normalisation (on the last of every ``steps`` steps) and rising, decaying thresholds; without,
    the weights and ``theta`` stay as they are (the test phase). ``input`` is a population of Poisson sources
    (:mod:`braincore.neurons.poisson`; rates set with ``Simulator.set_poisson_rate("input", ...)``); with
    ``relays`` it is a population of relay neurons instead, which fire in every step where an input adds to them
    (the Poisson input ``pixels``, or a replayed spike file: the same spike trains, one membrane per input).
    Monitors ``exc_spikes`` and ``inh_spikes`` count spikes (no spike times are stored)."""
    from ..graph import Assembly

    p = params or DiehlCookParams()
    n_in, n_exc = int(p.n_in), int(p.n_exc)
    a = Assembly("diehl_cook", dt=_q(p.dt, "ms"), duration=_q(p.dt * steps, "ms"), seed=int(seed))
    if relays:  # a Poisson event lifts v by 1 mV, above the 0.5 mV threshold at once; no refractoriness
        a.add_population("input", "lif", n_in, {"tau_m": "20 ms", "R_m": "100 MOhm", "v_rest": "0 mV",
                                                "v_reset": "0 mV", "v_th": "0.5 mV", "t_ref": "0 ms"})
        a.add_input("pixels", "poisson", "input", rate="0 Hz", weight="1 mV")
    else:  # a spike in every step with a Poisson count >= 1, drawn without a membrane
        a.add_population("input", "poisson", n_in, {"rate": "0 Hz"})
    a.add_population("exc", EXCITATORY_MODEL, n_exc, {
        "v_rest": _q(p.v_rest_e, "mV"), "v_reset": _q(p.v_reset_e, "mV"), "v_th": _q(p.v_th_e, "mV"),
        "tau": _q(p.tau_e, "ms"), "t_ref": _q(p.t_ref_e, "ms"), "t_hold": _q(p.t_hold, "ms"),
        "timer_rate": float(p.timer_rate), "theta_plus": _q(p.theta_plus if learn else 0.0, "mV"),
        "tau_theta": _q(p.tau_theta, "ms") if learn else math.inf},
        init={"theta": _q(p.theta_init, "mV")})
    a.add_population("inh", "lif", n_exc, {
        "tau_m": _q(p.tau_i, "ms"), "R_m": "1000 MOhm", "v_rest": _q(p.v_rest_i, "mV"),
        "v_reset": _q(p.v_reset_i, "mV"), "v_th": _q(p.v_th_i, "mV"), "t_ref": _q(p.t_ref_i, "ms")},
        method="euler", init={"v": _q(p.v_rest_i, "mV")})
    excitatory = lambda tau: {"type": "conductance", "tau": _q(tau, "ms"), "E_rev": _q(p.E_exc_e, "mV")}  # noqa: E731
    rules = None
    if learn:
        rules = [{"rule": "triplet_stdp", "pairing": "nearest", "tau_plus": _q(p.tau_pre, "ms"),
                  "tau_minus": _q(p.tau_post1, "ms"), "tau_x": _q(p.tau_pre, "ms"), "tau_y": _q(p.tau_post2, "ms"),
                  "A2_plus": 0.0, "A3_plus": float(p.nu_post), "A2_minus": float(p.nu_pre), "A3_minus": 0.0,
                  "w_min": 0.0, "w_max": float(p.w_max)}]
        if float(p.norm_total) > 0:
            rules.append({"rule": "normalize", "total": float(p.norm_total), "every": int(steps)})
    a.add_projection("input", "exc", {"type": "all_to_all"},
                     {"dist": "uniform", "low": 0.01 * float(p.w_init_max), "high": 1.01 * float(p.w_init_max)},
                     excitatory(p.tau_ge_e), name="input_exc", sign="excitatory", storage="sparse",
                     plasticity=rules)
    a.add_projection("exc", "inh", {"type": "one_to_one"}, _q(p.w_ei, "nS"),
                     {"type": "conductance", "tau": _q(p.tau_ge_i, "ms"), "E_rev": _q(p.E_exc_i, "mV")},
                     name="exc_inh", sign="excitatory")
    a.add_projection("inh", "exc", {"type": "all_to_all", "allow_self": False}, _q(p.w_ie, "nS"),
                     {"type": "conductance", "tau": _q(p.tau_gi_e, "ms"), "E_rev": _q(p.E_inh_e, "mV")},
                     name="inh_exc", sign="inhibitory")
    a.add_monitor("exc_spikes", "spikes", "exc", max_spikes=0)
    a.add_monitor("inh_spikes", "spikes", "inh", max_spikes=0)
    return a
