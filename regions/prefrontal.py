"""Prefrontal cortex: working memory held by selective attractor populations (region type ``prefrontal``).

Anatomy (Brunel & Wang 2001; Wang 2002; a discrete multi-item reduction of the ring network of Compte, Brunel,
Goldman-Rakic & Wang 2000). A local circuit of a cortical area (dorsolateral prefrontal cortex, or parietal area
LIP for decisions) with ``N_E`` pyramidal cells and ``N_I`` interneurons:

- ``pools`` **selective excitatory pools** ``pool0 .. pool{K-1}`` of ``pool_size`` pyramidal cells each; the cells
  of a pool share a preferred stimulus (a cue location, an object, a motion direction);
- a **non-selective excitatory** population ``nonselective`` (``nonselective_size`` cells) with no preference;
- an **inhibitory** population ``inhibitory`` (``inhibitory_size`` fast-spiking interneurons) that every
  excitatory cell drives and that inhibits everyone: shared inhibition, hence competition between the pools.

All to all (no autapses): within a pool the excitatory weights are potentiated by ``w_plus`` > 1 (cells with the same
preference were often active together: Hebbian structure), from a pool to another pool and from the non-selective
cells to a pool they are depressed by ``w_minus`` < 1; every other connection has the relative weight 1. With the
default ``w_minus`` = 1 - f (w_plus - 1) / (1 - f), f = pool_size / N_E (Brunel & Wang 2001) the mean
excitatory weight onto a selective cell is the same as without structure, so the spontaneous state does not depend
on w_plus.

Equations. Leaky integrate-and-fire cells (braincore ``lif``, exact integration), for cell i:

    tau_m dv_i/dt = -(v_i - v_rest) + R_m (I_E,i + I_I,i)       spike when v_i >= v_th; v_i <- v_reset; t_ref
    dI_E/dt = -I_E / tau_nmda + sum_j w_ij J_E,post / N_E sum_spikes delta(t - t_j - d)
    dI_I/dt = -I_I / tau_gaba - J_I,post / N_I sum_spikes delta(t - t_j - d)

plus the background: ``background_rate`` (Hz, one Poisson train per cell, standing for the ~800 cortical inputs of
Wang 2002 lumped together) of voltage jumps of ``background_weight`` (AMPA is fast next to tau_m: a delta synapse).
Recurrent excitation is slow (``tau_nmda`` = 100 ms, NMDA-like, linear), which is what makes persistent states
stable and decisions integrate evidence over hundreds of ms (Wang 1999, 2002); inhibition is fast (``tau_gaba``).
``J_ee``, ``J_ei`` (E onto I), ``J_ie`` (I onto E), ``J_ii`` are the *summed* weights of a whole presynaptic
population (nA): a synapse carries J / N_pre (times w_plus or w_minus), so the mean field, and thus the behaviour,
does not change with the sizes (only the finite-size noise does). Delays: ``delay`` (0.5 ms) everywhere.

Cells (fixed, as in Wang 2002 with R_m = 1/g_L): pyramidal tau_m 20 ms, R_m 40 MOhm, v_rest -70 mV, v_th -50 mV,
v_reset -55 mV, t_ref 2 ms; interneurons tau_m 10 ms, R_m 50 MOhm, same potentials, t_ref 1 ms.

Behaviour (defaults, measured with 4 pools; ``tests/test_cognitive_tasks.py`` checks a smaller version): a
spontaneous state of ~3-4 Hz in every pool. A cue (a Poisson input onto one pool's port: 10 sources x 40 Hz of
0.5 mV jumps per cell for 300 ms) switches that pool to a persistent ~43 Hz state that outlasts the cue through the
delay, while the shared inhibition it recruits silences the other pools (~0 Hz). A distractor on another pool as
strong and as long as the cue is resisted; a cue three times stronger (120 Hz per source, 300 ms) **overwrites** the
memory (the new pool wins the competition and its inhibition silences the old one); a strong drive to the
interneurons (the ``inhibitory`` port: 2 kHz of 1 mV jumps per cell for 200 ms) **erases** it (every pool falls
back to the spontaneous state). With ``pools: 2`` and inputs mu0 (1 +- c) this is the decision circuit of
Wang (2002): attractor competition between the two pools (``tasks/decision/two_afc.py``).

Ports: ``pool0`` .. ``pool{K-1}`` (inputs and outputs of the selective pools), ``nonselective``, ``inhibitory``
(the erase signal), ``out`` (= ``pool0``, the common default).

References: Amit & Brunel (1997) Cereb. Cortex 7:237; Wang (1999) J. Neurosci. 19:9587; Compte, Brunel,
Goldman-Rakic & Wang (2000) Cereb. Cortex 10:910; Brunel & Wang (2001) J. Comput. Neurosci. 11:63; Wang (2001)
Trends Neurosci. 24:455; Wang (2002) Neuron 36:955.
"""
from __future__ import annotations

from typing import Any, Optional

from braincore.graph import Assembly
from braincore.errors import ConfigError
from braincore.region_types import register_region
from braincore.units import UnitError, parse_quantity

PYRAMIDAL = {"tau_m": "20 ms", "R_m": "40 MOhm", "v_rest": "-70 mV", "v_reset": "-55 mV", "v_th": "-50 mV",
             "t_ref": "2 ms"}
INTERNEURON = {"tau_m": "10 ms", "R_m": "50 MOhm", "v_rest": "-70 mV", "v_reset": "-55 mV", "v_th": "-50 mV",
               "t_ref": "1 ms"}


def _quantities(values: dict[str, tuple[Any, str, bool]]) -> dict[str, float]:
    """Parse ``{name: (value, dimension, strictly_positive)}``; ConfigError listing every bad one by name."""
    out, items = {}, []
    for name, (value, dimension, positive) in values.items():
        try:
            out[name] = parse_quantity(value, dimension)
        except (UnitError, TypeError, ValueError) as err:
            items.append((name, str(err)))
            continue
        if out[name] < 0 or (positive and out[name] == 0):
            items.append((name, f"must be {'>' if positive else '>='} 0, got {value!r}"))
    if items:
        raise ConfigError("\n".join(f"{k}: {m}" for k, m in items), items)
    return out


def _count(name: str, value: Any, minimum: int, items: list) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        items.append((name, f"expected an integer >= {minimum}, got {value!r}"))


def build(pools: int = 4, pool_size: int = 80, nonselective_size: int = 240, inhibitory_size: int = 100,
          w_plus: float = 4.5, w_minus: Optional[float] = None, J_ee: Any = "0.15 nA", J_ei: Any = "0.3 nA",
          J_ie: Any = "1.5 nA", J_ii: Any = "0.5 nA", tau_nmda: Any = "100 ms", tau_gaba: Any = "10 ms",
          delay: Any = "0.5 ms", background_rate: Any = "800 Hz", background_weight: Any = "1 mV",
          background_rate_inh: Any = "1200 Hz") -> Assembly:
    """Working memory by selective attractor pools with recurrent excitation and shared inhibition.

    Parameters (units allowed; bare numbers in ms, mV, nA, Hz):

    - ``pools`` (K >= 1), ``pool_size``, ``nonselective_size`` (>= 0), ``inhibitory_size`` (>= 1): cell counts;
    - ``w_plus`` (>= 1): relative weight within a pool; ``w_minus`` (0..1; default 1 - f (w_plus - 1) / (1 - f)):
      between pools and from the non-selective cells to a pool;
    - ``J_ee``, ``J_ei``, ``J_ie``, ``J_ii`` (nA): summed weights of a presynaptic population (E->E, E->I, I->E,
      I->I), split over its cells;
    - ``tau_nmda`` (slow recurrent excitation), ``tau_gaba`` (inhibition), ``delay`` (ms);
    - ``background_rate`` (Hz, one Poisson train per cell) of ``background_weight`` (mV) voltage jumps;
      ``background_rate_inh`` for the interneurons (default: the same).

    See the module docstring for the anatomy, equations, behaviour and references.
    """
    items: list = []
    _count("pools", pools, 1, items)
    _count("pool_size", pool_size, 1, items)
    _count("nonselective_size", nonselective_size, 0, items)
    _count("inhibitory_size", inhibitory_size, 1, items)
    if isinstance(w_plus, bool) or not isinstance(w_plus, (int, float)) or w_plus < 1:
        items.append(("w_plus", f"expected a number >= 1 (potentiated within-pool weight), got {w_plus!r}"))
    if w_minus is not None and (isinstance(w_minus, bool) or not isinstance(w_minus, (int, float))
                                or not 0 <= w_minus <= 1):
        items.append(("w_minus", f"expected a number in [0, 1] (or null for the balanced default), got {w_minus!r}"))
    try:
        q = _quantities({"J_ee": (J_ee, "current", False), "J_ei": (J_ei, "current", False),
                         "J_ie": (J_ie, "current", False), "J_ii": (J_ii, "current", False),
                         "tau_nmda": (tau_nmda, "time", True), "tau_gaba": (tau_gaba, "time", True),
                         "delay": (delay, "time", True), "background_rate": (background_rate, "frequency", False),
                         "background_weight": (background_weight, "voltage", False),
                         "background_rate_inh": (background_rate if background_rate_inh is None
                                                 else background_rate_inh, "frequency", False)})
    except ConfigError as err:
        items += err.items
    if items:
        raise ConfigError("\n".join(f"{k}: {m}" for k, m in items), items)
    n_sel = pools * pool_size
    n_e = n_sel + nonselective_size
    f = pool_size / n_e
    if w_minus is None:
        w_minus = 1.0 - f * (w_plus - 1.0) / (1.0 - f) if f < 1 else 1.0
        if w_minus < 0:
            message = (f"too large for these sizes: the balanced w_minus would be {w_minus:g} < 0 (give w_minus, "
                       f"or more non-selective cells)")
            raise ConfigError(f"w_plus: {message}", [("w_plus", message)])

    a = Assembly(name="prefrontal")
    pool_names = [f"pool{k}" for k in range(pools)]
    excitatory = list(pool_names) + (["nonselective"] if nonselective_size else [])
    for name in pool_names:
        a.add_population(name, "lif", pool_size, PYRAMIDAL, init={"v": {"dist": "uniform", "low": "-70 mV",
                                                                         "high": "-52 mV"}})
    if nonselective_size:
        a.add_population("nonselective", "lif", nonselective_size, PYRAMIDAL,
                         init={"v": {"dist": "uniform", "low": "-70 mV", "high": "-52 mV"}})
    a.add_population("inhibitory", "lif", inhibitory_size, INTERNEURON,
                     init={"v": {"dist": "uniform", "low": "-70 mV", "high": "-52 mV"}})
    nmda = {"type": "exponential", "tau": f"{q['tau_nmda']} ms"}
    gaba = {"type": "exponential", "tau": f"{q['tau_gaba']} ms"}
    d = f"{q['delay']} ms"
    all_to_all = {"type": "all_to_all", "allow_self": False}
    for pre in excitatory:
        for post in excitatory:
            if pre == post and pre != "nonselective":
                rel = w_plus
            elif post != "nonselective":
                rel = w_minus
            else:
                rel = 1.0
            w = rel * q["J_ee"] / n_e
            if w > 0:
                a.add_projection(pre, post, all_to_all, f"{w!r} nA", nmda, d, name=f"{pre}->{post}",
                                 sign="excitatory")
        a.add_projection(pre, "inhibitory", all_to_all, f"{q['J_ei'] / n_e!r} nA", nmda, d,
                         name=f"{pre}->inhibitory", sign="excitatory")
    for post in excitatory + ["inhibitory"]:
        J = q["J_ii"] if post == "inhibitory" else q["J_ie"]
        a.add_projection("inhibitory", post, all_to_all, f"{J / inhibitory_size!r} nA", gaba, d,
                         name=f"inhibitory->{post}", sign="inhibitory")
    for name in excitatory + ["inhibitory"]:
        rate = q["background_rate_inh"] if name == "inhibitory" else q["background_rate"]
        a.add_input(f"background_{name}", "poisson", name, rate=f"{rate!r} Hz",
                    weight=f"{q['background_weight']!r} mV")
    for name in pool_names + (["nonselective"] if nonselective_size else []) + ["inhibitory"]:
        a.add_port(name, name)
    a.add_port("out", "pool0")
    return a


def pool_rates(sim, prefix: str = "", monitor: str = "rate_{pool}") -> dict:
    """Rate-monitor traces ``{pool: [bins, B] Hz}`` of the monitors named by ``monitor`` (``{pool}`` = pool name)
    under ``prefix`` (the include prefix, e.g. ``"pfc."``)."""
    out = {}
    for m in sim.monitors:
        if m.name.startswith(prefix) and m.name[len(prefix):].startswith("rate_"):
            out[m.name[len(prefix) + 5:]] = sim.monitor(m.name)["rate_hz"]
    return out


register_region("prefrontal", build,
                "working memory: K selective attractor pools, non-selective cells, shared inhibition "
                "(Brunel & Wang 2001; Wang 2002)")
