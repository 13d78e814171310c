"""The parameter records of the published networks (:mod:`.desire_mlp`, :mod:`.diehl_cook`, :mod:`.spiking_pc`).

They live apart from the networks, which need PyTorch, so that the task configs built on them validate without it
(``braincore validate``: issue 16, start-up under a second); each network module re-exports its record.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from ..params import NeuronParams, param
from ..plasticity import desire_defaults as rule


@dataclass(frozen=True)
class DesireParams(NeuronParams):
    """Parameters of :class:`DesireMLP` (defaults: the authors' desire_pytorch.py, MNIST)."""

    n_in: Any = param(784, "dimensionless", "inputs (pixels)")
    hidden: Any = param((1600, 800), "choice", "hidden layer sizes (a list of positive integers)")
    n_out: Any = param(10, "dimensionless", "output neurons (classes)")
    steps: Any = param(20, "dimensionless", "time steps per sample (T)")
    v_th: Any = param(1.0, "dimensionless", "firing threshold (weights are in its units)")
    beta: Any = param(0.75, "dimensionless", "membrane and trace decay per step (1 - 2^-2)")
    theta_out: Any = param(rule.THETA_OUT, "dimensionless", "output desire threshold")
    theta_hid: Any = param(rule.THETA_HID, "dimensionless", "hidden desire threshold")
    error_margin: Any = param(rule.ERROR_MARGIN, "dimensionless", "spikes short of T that count as rate 1")
    lr: Any = param(rule.LEARNING_RATE, "dimensionless", "learning rate per sample (epoch 0)")
    lr_decay: Any = param(0.04, "dimensionless", "lr(epoch) = lr exp(-lr_decay epoch) lr_gamma^(milestones passed)")
    lr_milestones: Any = param((), "choice", "epochs (0-based) from which the lr is multiplied by lr_gamma once more "
                                             "(a step decay on top of the exponential one; the code: none)")
    lr_gamma: Any = param(0.1, "dimensionless", "factor applied at each of lr_milestones")
    dropout_in: Any = param(0.0, "dimensionless", "dropout probability of the input neurons")
    dropout_hid: Any = param(0.3, "dimensionless", "dropout probability of the hidden neurons")
    reduction: Any = param("sum", "choice", "batch updates: 'sum' (per-sample lr, as online) or 'mean'",
                           choices=("sum", "mean"))
    init_gain: Any = param(2.0, "dimensionless", "initial weights ~ N(0, init_gain / N_pre) (Kaiming: 2)")
    layer_delay: Any = param(0, "dimensionless", "steps a hidden layer's spikes take to reach the next layer "
                                                  "(the authors' code: 1)")

    def check(self) -> list[str]:
        problems = super().check()
        hid = self.hidden
        if isinstance(hid, (str, bytes)) or not isinstance(hid, Sequence) or \
                not all(isinstance(h, int) and not isinstance(h, bool) and h > 0 for h in hid):
            problems.append(f"hidden must be a list of positive integers, got {hid!r}")
        for name in ("n_in", "n_out", "steps"):
            v = getattr(self, name)
            if not (float(v) == int(v) and int(v) > 0):
                problems.append(f"{name} must be a positive integer, got {v!r}")
        if not float(self.v_th) > 0:
            problems.append(f"v_th must be > 0, got {self.v_th!r}")
        if not 0.0 <= float(self.beta) <= 1.0:
            problems.append(f"beta must be in [0, 1], got {self.beta!r}")
        ms = self.lr_milestones
        if isinstance(ms, (str, bytes)) or not isinstance(ms, Sequence) or \
                not all(isinstance(m, int) and not isinstance(m, bool) and m >= 0 for m in ms):
            problems.append(f"lr_milestones must be a list of epochs (integers >= 0), got {ms!r}")
        for name in ("theta_out", "theta_hid", "lr", "lr_decay", "lr_gamma", "error_margin", "init_gain"):
            if float(getattr(self, name)) < 0:
                problems.append(f"{name} must be >= 0, got {getattr(self, name)!r}")
        delay = self.layer_delay
        if isinstance(delay, bool) or not (float(delay) == int(delay) and 0 <= int(delay) < float(self.steps)):
            problems.append(f"layer_delay must be an integer number of steps in 0..steps-1, got {delay!r}")
        if float(self.steps) - float(self.error_margin) <= 0:
            problems.append(f"error_margin must be < steps ({self.steps!r}), got {self.error_margin!r}")
        for name in ("dropout_in", "dropout_hid"):
            if not 0.0 <= float(getattr(self, name)) < 1.0:
                problems.append(f"{name} must be in [0, 1), got {getattr(self, name)!r}")
        return problems

    @property
    def sizes(self) -> list[int]:
        return [int(self.n_in), *[int(h) for h in self.hidden], int(self.n_out)]


@dataclass(frozen=True)
class DiehlCookParams(NeuronParams):
    """Parameters of :class:`DiehlCookNetwork` (defaults: Diehl & Cook 2015, the authors' code)."""

    n_in: Any = param(784, "dimensionless", "inputs (pixels)")
    n_exc: Any = param(400, "dimensionless", "excitatory neurons (and as many inhibitory)")
    dt: Any = param(0.5, "time", "time step")
    v_rest_e: Any = param(-65.0, "voltage", "excitatory resting potential")
    v_reset_e: Any = param(-65.0, "voltage", "excitatory reset")
    v_th_e: Any = param(-72.0, "voltage", "excitatory threshold without theta (v_thresh_e - offset)")
    tau_e: Any = param(100.0, "time", "excitatory membrane time constant")
    E_exc_e: Any = param(0.0, "voltage", "excitatory reversal potential (excitatory neurons)")
    E_inh_e: Any = param(-100.0, "voltage", "inhibitory reversal potential (excitatory neurons)")
    tau_ge_e: Any = param(1.0, "time", "excitatory conductance decay (excitatory neurons)")
    tau_gi_e: Any = param(2.0, "time", "inhibitory conductance decay (excitatory neurons)")
    t_ref_e: Any = param(5.0, "time", "excitatory refractory period (membrane clamped)")
    t_hold: Any = param(5.0, "time", "the timer must exceed this to fire")
    timer_rate: Any = param(0.1, "dimensionless", "timer speed (ms per ms): 0.1 holds 50 ms after a spike")
    theta_init: Any = param(20.0, "voltage", "initial adaptive threshold theta")
    theta_plus: Any = param(0.05, "voltage", "theta increment per spike")
    tau_theta: Any = param(1e7, "time", "theta decay")
    v_rest_i: Any = param(-60.0, "voltage", "inhibitory resting potential")
    v_reset_i: Any = param(-45.0, "voltage", "inhibitory reset")
    v_th_i: Any = param(-40.0, "voltage", "inhibitory threshold")
    tau_i: Any = param(10.0, "time", "inhibitory membrane time constant")
    E_exc_i: Any = param(0.0, "voltage", "excitatory reversal potential (inhibitory neurons)")
    E_inh_i: Any = param(-85.0, "voltage", "inhibitory reversal potential (inhibitory neurons)")
    tau_ge_i: Any = param(1.0, "time", "excitatory conductance decay (inhibitory neurons)")
    tau_gi_i: Any = param(2.0, "time", "inhibitory conductance decay (inhibitory neurons)")
    t_ref_i: Any = param(2.0, "time", "inhibitory refractory period")
    w_ei: Any = param(10.4, "dimensionless", "excitatory -> inhibitory partner weight (leak units)")
    w_ie: Any = param(17.0, "dimensionless", "inhibitory -> other excitatory weight (leak units)")
    tau_pre: Any = param(20.0, "time", "presynaptic trace decay")
    tau_post1: Any = param(20.0, "time", "postsynaptic depression trace decay")
    tau_post2: Any = param(40.0, "time", "postsynaptic potentiation trace decay")
    nu_pre: Any = param(1e-4, "dimensionless", "depression rate")
    nu_post: Any = param(1e-2, "dimensionless", "potentiation rate")
    w_max: Any = param(1.0, "dimensionless", "upper weight bound")
    w_init_max: Any = param(0.3, "dimensionless", "initial weights ~ 0.3 (U(0, 1) + 0.01)")
    norm_total: Any = param(78.0, "dimensionless", "sum of each neuron's input weights (0: no normalisation)")


@dataclass(frozen=True)
class SpikingPCParams(NeuronParams):
    """Parameters of :class:`SpikingPCNetwork` (units allowed in configs; see the task docstring for which are
    the paper's and which were tuned on the validation split)."""

    dt: Any = param(1.0, "time", "integration step")
    steps: Any = param(50, "dimensionless", "settling window per sample, in steps (T)")
    learn_steps: Any = param(15, "dimensionless", "the last steps of the window that apply weight updates")
    read_steps: Any = param(15, "dimensionless", "the last steps whose label predictions are averaged")
    tau_m: Any = param(20.0, "time", "membrane time constant")
    tau_j: Any = param(10.0, "time", "error-correction current time constant")
    kappa_j: Any = param(0.0, "dimensionless", "current leak")
    gamma_m: Any = param(1.0, "dimensionless", "membrane leak")
    R_m: Any = param(20.0, "dimensionless", "membrane resistance (current -> voltage); R_m = tau_m/dt makes the "
                                            "rate of a unit close to its current (spikes per step)")
    v_thr: Any = param(1.0, "dimensionless", "spike threshold (voltage units of R_m j)")
    reset: Any = param("subtract", "choice", "after a spike: 'subtract' (v <- v - v_thr) or 'zero' (v <- 0)",
                       choices=("subtract", "zero"))
    j_bias: Any = param(0.0, "dimensionless", "constant bias current")
    t_ref: Any = param(0.0, "time", "absolute refractory period")
    tau_tr: Any = param(5.0, "time", "spike-trace time constant")
    input_rate: Any = param(1000.0, "frequency", "Poisson rate of a white (255) pixel")
    eta: Any = param(0.1, "dimensionless", "learning rate of the generative weights W (per update, times "
                                          "100 / fan-in)")
    eta_hidden: Any = param(100.0, "dimensionless", "multiplier of eta for the weights that predict hidden layers: "
                                                    "their error units carry beta times the error, so 1/beta")
    beta: Any = param(0.01, "dimensionless", "feedback gain: E starts at beta x (W^T or a random draw) and follows "
                                             "dE = beta dW^T")
    e_init: Any = param("random", "choice", "start of the error weights: 'random' (beta x an independent draw of "
                                            "W's law) or 'transpose' (beta W^T)",
                        choices=("random", "transpose"))
    w_init: Any = param(0.05, "dimensionless", "initial weights ~ N(0, w_init^2 / fan-in * 100)")
    apply: Any = param("step", "choice", "when weight changes take effect: 'step' (at each of the learn_steps, "
                                         "online) or 'window' (summed over them, applied at the window's end)",
                       choices=("step", "window"))
    w_clip: Any = param(0.0, "dimensionless", "max row norm of W after each update (0: none)")
    label_output: Any = param("softmax", "choice", "the label layer's prediction: 'linear' (W a; squared error) or "
                                                  "'softmax' (softmax(W a); its error y - mu is the cross-entropy "
                                                  "gradient)",
                              choices=("linear", "softmax"))
    input_code: Any = param("poisson", "choice", "input spikes: 'poisson' (the paper; probability = pixel x rate x dt "
                                                 "per step) or 'rate' (no spikes: the input trace is the "
                                                 "probability itself, a diagnostic)",
                            choices=("poisson", "rate"))
    rectify: Any = param("clip", "choice", "predictions of hidden (spiking) layers: 'clip' to [0, 1] spike per step "
                                           "(what a unit can fire), 'relu' max(0, .), or 'none'",
                         choices=("clip", "relu", "none"))
    feedforward: Any = param(1.0, "dimensionless", "1: a hidden unit's current is its bottom-up synaptic input "
                                                   "u = W a_below plus the error-correction current j; 0: j alone")
    value: Any = param("drive", "choice", "what a hidden unit's error unit compares with its prediction: 'drive' "
                                          "(the rate it is driven to, clip(u + j, 0, 1)) or 'rate' (its spike trace)",
                       choices=("drive", "rate"))

    def check(self) -> list[str]:
        problems = super().check()
        for name in ("steps", "learn_steps", "read_steps"):
            value = getattr(self, name)
            if float(value) != int(value) or int(value) < 0:
                problems.append(f"{name} must be a non-negative integer, got {value}")
        if int(self.steps) < 1:
            problems.append(f"steps must be >= 1, got {self.steps}")
        if int(self.learn_steps) > int(self.steps) or int(self.read_steps) > int(self.steps):
            problems.append("learn_steps and read_steps must be <= steps")
        if int(self.read_steps) < 1:
            problems.append("read_steps must be >= 1")
        for name in ("dt", "v_thr"):  # the time constants are checked by NeuronParams.check
            if float(getattr(self, name)) <= 0:
                problems.append(f"{name} must be > 0, got {getattr(self, name)}")
        if float(self.input_rate) * float(self.dt) / 1000.0 > 1.0:
            problems.append(f"input_rate x dt must be <= 1 spike per step, got {self.input_rate} Hz x {self.dt} ms")
        return problems


__all__ = ["DesireParams", "DiehlCookParams", "SpikingPCParams"]
