"""A spiking predictive-coding network (spiking neural coding, SpNCN-style) and its backprop twin.

Paper: A. Ororbia, "Spiking neural predictive coding for continually learning from data streams",
Neurocomputing 2023 (arXiv:1908.08655). What the sources consulted establish, and what is chosen here, is in
the docstring of :mod:`tasks.perception.predictive_coding`; the update rules and error units are in
:mod:`braincore.plasticity.predictive_coding` (equations (1)-(6) there).

**Architecture** (``sizes = [n_in, h_1, ..., h_L, n_out]``): a chain of layers in which every layer predicts
the layer *below* it. The sensory input (``n_in`` Poisson spike trains, one per pixel) is clamped at the top,
the ``L`` hidden layers are LIF neurons, and the label layer (``n_out`` units) is at the bottom::

    x (Poisson, clamped)  --W_1-->  h_1 (LIF)  --W_2--> ... --W_L-->  h_L (LIF)  --W_out-->  y (label)
                          <--E_1--             <--E_2--               <--E_L--              error feedback

Each predicted layer ``k`` has a prediction ``mu_k = rect(u_k)`` of its activity, from the synaptic input
``u_k = W_k a_{k-1}`` of the predicting layer's spike trace ``a`` (``rect``: clipped to ``[0, 1]`` spike per
step, what a unit can fire; parameter ``rectify``), and error units ``e_k = x_k - mu_k`` comparing it with the
layer's own value ``x_k``; for the label layer ``e_y = y - mu_y`` while the label is clamped (training) and
``0`` while it is free (testing, where the prediction ``mu_y`` is the network's answer). The label layer
predicts class probabilities, ``mu_y = softmax(W_out a_L)`` (``label_output: softmax``; ``linear`` gives
``W_out a_L``), so that its error ``y - mu_y`` is the gradient of the cross-entropy: measured on split MNIST,
a squared-error label layer pushes the outputs of absent classes to zero and forgets most earlier tasks
(task-aware average 55 % vs 96-97 % with softmax).

**Why layer-wise tensor code, not an Assembly.** The learning rule needs each layer's error units ``e_k`` and
the transposed feedback ``E_k^T`` every step, computed between whole layers; the network has no synaptic delays,
no ring buffers and no per-synapse state, and it runs batches of samples as matrix products. The simulator's
event-driven projections and trace-based rules (:mod:`braincore.equations.rule`) do not express error units, so this
module keeps its own loop. Its neuron is not yet one of :mod:`braincore.neurons`' definitions either: the paper's
unit holds ``v`` at 0 while refractory (after a reset by subtraction), whereas a definition's refractory clamp
holds the value the reset left; expressing it needs a clamp-to-value option in the definitions (issue 15).

**LIF units** (the paper's form: an electrical current ``j`` integrating the error drive, a membrane potential
``v`` integrating the current; forward Euler with step ``dt``)::

    I = -e_k + e_{k+1} E_{k+1}^T                             error drive (eq. 3)
    j <- j + (dt / tau_j) (-kappa_j j + I)                   error-correction current
    v <- v + (dt / tau_m) (-gamma_m v + R_m (u_k + j + j_bias))   (held at 0 while refractory)
    s = [v > v_thr];  v <- v - v_thr where s (reset by subtraction; or to 0);  refractory for t_ref
    a <- a + (dt / tau_tr) (s - a)                           spike trace (eq. 6)

With ``R_m = tau_m / dt`` and subtraction the unit fires close to ``clip(u_k + j, 0, 1)`` spikes per step, so its
*value* -- the rate it is driven to -- is ``x_k = clip(u_k + j, 0, 1)`` (``value: drive``; ``value: rate``
uses the noisy spike trace ``a_k`` instead). With no label error ``j`` stays 0, ``x_k = mu_k`` and the network
computes a feed-forward pass in spikes; a clamped label makes the error ``e_y`` flow back through ``E`` into
``j``, which settles where ``e_k = e_{k+1} E_{k+1}^T`` restricted to units that can still move (the
predictive-coding equilibrium). With ``E = beta W^T`` and a small feedback gain ``beta`` this equilibrium error
is ``beta`` times backprop's error of the label layer's loss (cross-entropy with the softmax label layer,
``0.5 ||y - mu_y||^2`` with the linear one; Whittington & Bogacz 2017; Millidge, Tschantz & Buckley 2022), so the hidden
weights learn at ``eta / beta`` (``eta_hidden``). The
error weights start at ``beta W^T`` or a random draw times ``beta`` (``e_init``) and follow ``dE = beta dW^T``.
``feedforward: 0, value: rate, rectify: relu`` (the earlier form, in which ``j`` alone drives the membrane)
learned markedly worse: units had to charge ``j`` from zero to reach their predictions, the Hebbian rule read
the shortfall as error and shrank the predictions (90.6 % on MNIST, see the task).

**Settling and learning.** A sample is presented for ``steps`` steps (the settling window) from a reset state
(``j = v = a = 0``). While learning, every one of the last ``learn_steps`` steps applies the local updates
(eqs. 4-5) to all ``W`` and ``E`` at once, from that step's errors and presynaptic traces (online, as in the
paper, batch-averaged; the rate of ``W_k`` is ``eta * 100 / n_k``, ``n_k`` its fan-in, times ``eta_hidden``
for the weights that predict a hidden layer). The answer is the label prediction ``mu_y`` averaged over the
last ``read_steps``.

Batched (``[B, n]`` state), any device and dtype; ``state_dict``/``load_state_dict`` hold the weights and the
random generator (for exact resumption).
"""
from __future__ import annotations

from dataclasses import asdict
from typing import Any, Optional, Sequence

import torch

from ..devices import resolve_device
from ..errors import ConfigError
from .params import SpikingPCParams  # the record, importable without PyTorch
from ..plasticity import predictive_coding as pc

Tensor = torch.Tensor


def lif_step(j: Tensor, v: Tensor, ref: Tensor, drive: Tensor, *, dt: float, tau_j: float, kappa_j: float,
             tau_m: float, gamma_m: float, R_m: float, v_thr: float, t_ref: float, j_bias: float = 0.0,
             feed: Optional[Tensor] = None, subtract: bool = False) -> tuple:
    """One forward-Euler step of the LIF units (module docstring): returns ``(j, v, ref, spikes)``.

    ``j <- j + dt/tau_j (-kappa_j j + drive)``; while not refractory (``ref <= 0``)
    ``v <- v + dt/tau_m (-gamma_m v + R_m (j + j_bias + feed))`` (else ``v = 0``); ``s = [v > v_thr]``; where ``s``,
    ``v <- v - v_thr`` (``subtract``) or ``v <- 0``; ``ref`` is set to ``t_ref`` at a spike and counts down by
    ``dt``. ``feed`` (optional, ``[B, n]``): the bottom-up synaptic input. ``tau_j = inf`` holds ``j``."""
    j = j + (dt / tau_j) * (-kappa_j * j + drive)
    current = j + j_bias if feed is None else j + j_bias + feed
    v = torch.where(ref <= 0, v + (dt / tau_m) * (-gamma_m * v + R_m * current), torch.zeros_like(v))
    s = (v > v_thr).to(v.dtype)
    v = v - v_thr * s if subtract else v * (1.0 - s)
    if t_ref > 0:
        ref = torch.where(s > 0, torch.full_like(ref, t_ref), ref - dt)
    return j, v, ref, s


class SpikingPCNetwork:
    """The spiking predictive-coding network (see the module docstring). ``sizes = [n_in, h_1.., n_out]``."""

    def __init__(self, sizes: Sequence[int], params: Optional[SpikingPCParams] = None, seed: int = 0,
                 device: Any = "cpu", dtype: torch.dtype = torch.float32):
        sizes = [int(n) for n in sizes]
        if len(sizes) < 3 or min(sizes) < 1:
            raise ConfigError(f"sizes must be [n_in, hidden..., n_out] with at least one hidden layer, got {sizes}")
        self.p = params or SpikingPCParams()
        problems = self.p.check()
        if problems:
            raise ConfigError("; ".join(problems))
        self.sizes, self.device, self.dtype = sizes, resolve_device(device), dtype
        self.rng = torch.Generator(device=self.device).manual_seed(int(seed))
        self.eta_scale = 1.0  # a schedule's factor on eta (set by the task per epoch)
        init = torch.Generator().manual_seed(int(seed) + 7919)
        scale = float(self.p.w_init)
        # W[k] predicts layer k+1 from layer k (k = 0..L); E[k] carries layer k+1's errors back to layer k
        self.W = [(torch.randn(sizes[k + 1], sizes[k], generator=init, dtype=torch.float64)
                   * scale * (100.0 / sizes[k]) ** 0.5).to(self.device, dtype) for k in range(len(sizes) - 1)]
        # E[k] starts as beta W[k]^T ("transpose") or as beta times an independent draw of W's law ("random");
        # dE = beta dW^T keeps E - beta W^T constant, so a random start fades as W grows (Kolen-Pollack style)
        beta = float(self.p.beta)
        if self.p.e_init == "transpose":
            self.E = [w.t().clone() * beta for w in self.W]
        else:
            self.E = [(torch.randn(sizes[k + 1], sizes[k], generator=init, dtype=torch.float64).t()
                       * scale * (100.0 / sizes[k]) ** 0.5 * beta).to(self.device, dtype).contiguous()
                      for k in range(len(sizes) - 1)]

    # ------------------------------------------------------------------------------------------ dynamics
    @property
    def n_hidden_layers(self) -> int:
        return len(self.sizes) - 2

    def encode(self, images: Tensor) -> Tensor:
        """uint8/float pixels ``[B, ...]`` (0..255) -> per-step spike probabilities ``[B, n_in]``."""
        x = images.reshape(images.shape[0], -1).to(self.device, self.dtype)
        return (x / 255.0 * (float(self.p.input_rate) * float(self.p.dt) / 1000.0)).clamp_(0.0, 1.0)

    def settle(self, images: Tensor, labels: Optional[Tensor] = None, learn: bool = False,
               record: bool = False, rng: Optional[torch.Generator] = None) -> dict:
        """Present a batch for ``steps`` steps. ``labels`` (int ``[B]``) clamp the label layer (required to
        learn); ``rng`` draws the input spikes (default: the network's own generator). Returns
        ``{"output": mean label prediction over the last read_steps [B, n_out], "counts": spikes of each hidden
        unit over the window (a [B, n_h] tensor per hidden layer), "rates": mean hidden spike rates per step,
        "energy": [steps] mean prediction energy per step (with record)}``."""
        p = self.p
        rng = self.rng if rng is None else rng
        if images.shape[0] == 0:
            raise ValueError("empty batch")
        prob = self.encode(images)
        if prob.shape[1] != self.sizes[0]:
            raise ValueError(f"images have {prob.shape[1]} pixels, the network expects {self.sizes[0]}")
        if learn and labels is None:
            raise ValueError("learning needs labels (the label layer is clamped while learning)")
        B, L = prob.shape[0], self.n_hidden_layers
        dt, steps = float(p.dt), int(p.steps)
        kw = dict(device=self.device, dtype=self.dtype)
        target = None
        if labels is not None:
            target = torch.zeros(B, self.sizes[-1], **kw)
            target[torch.arange(B, device=self.device), labels.to(self.device).long()] = 1.0
        a = [torch.zeros(B, n, **kw) for n in self.sizes[:-1]]  # traces: input and hidden layers
        j = [torch.zeros(B, n, **kw) for n in self.sizes[1:-1]]
        v = [torch.zeros(B, n, **kw) for n in self.sizes[1:-1]]
        ref = [torch.zeros(B, n, **kw) for n in self.sizes[1:-1]]
        counts = [torch.zeros(B, n, **kw) for n in self.sizes[1:-1]]  # spikes per unit over the window
        out = torch.zeros(B, self.sizes[-1], **kw)
        energy = []
        t_ref = float(p.t_ref)
        learn_from, read_from = steps - int(p.learn_steps), steps - int(p.read_steps)
        pending = None  # weight changes accumulated over the window (apply: window)
        for t in range(steps):
            if p.input_code == "poisson":
                s_in = (torch.rand(prob.shape, generator=rng, **kw) < prob).to(self.dtype)
                a[0] = pc.trace_step(a[0], s_in, dt, float(p.tau_tr))
            else:
                a[0] = prob
            # predictions and error units from the current traces
            mu = [pc.predict(self.W[k], a[k]) for k in range(L + 1)]
            synaptic = mu[:L]  # the unrectified bottom-up input of the hidden layers (may be negative)
            if p.label_output == "softmax":  # the label layer predicts class probabilities
                mu[L] = torch.softmax(mu[L], dim=1)
            if p.rectify == "clip":  # a rate lies in [0, 1] spike per step
                mu[:L] = [m.clamp(0.0, 1.0) for m in mu[:L]]
            elif p.rectify == "relu":
                mu[:L] = [m.clamp_min(0.0) for m in mu[:L]]
            if p.value == "drive":  # value: the rate each unit is driven to, clip(mu + j); see the docstring
                errors = [pc.error_units((synaptic[k] + j[k]).clamp(0.0, 1.0), mu[k]) for k in range(L)]
            else:  # value: the unit's spike trace
                errors = [pc.error_units(a[k + 1], mu[k]) for k in range(L)]
            if target is not None:
                errors.append(pc.error_units(target, mu[L]))
            else:
                errors.append(torch.zeros_like(mu[L]))
            if t >= read_from:
                out += mu[L]
            if record:
                energy.append(float(pc.prediction_energy(errors).mean()))
            # local learning (all layers at once, from this step's errors and presynaptic traces)
            if learn and t >= learn_from:
                dws = [pc.local_update(errors[k], a[k], self._rate(k)) for k in range(L + 1)]
                if p.apply == "step":
                    self._apply(dws)
                else:  # accumulate (a synaptic eligibility) and apply once, at the end of the window
                    pending = dws if pending is None else [acc + d for acc, d in zip(pending, dws)]
            # LIF units of the hidden layers, driven by their error units (eq. 3)
            for h in range(L):
                drive = pc.error_drive(errors[h], errors[h + 1], self.E[h + 1])
                j[h], v[h], ref[h], s = lif_step(j[h], v[h], ref[h], drive, dt=dt, tau_j=float(p.tau_j),
                                                 kappa_j=float(p.kappa_j), tau_m=float(p.tau_m),
                                                 gamma_m=float(p.gamma_m), R_m=float(p.R_m),
                                                 v_thr=float(p.v_thr), t_ref=t_ref, j_bias=float(p.j_bias),
                                                 feed=synaptic[h] if float(p.feedforward) else None,
                                                 subtract=p.reset == "subtract")
                counts[h] += s
                a[h + 1] = pc.trace_step(a[h + 1], s, dt, float(p.tau_tr))
        if pending is not None:
            self._apply(pending)
        result = {"output": out / max(int(p.read_steps), 1), "counts": counts,
                  "rates": [float(c.sum()) / (B * n * steps) for c, n in zip(counts, self.sizes[1:-1])]}
        if record:
            result["energy"] = energy
        return result

    def _rate(self, k: int) -> float:
        """Learning rate of ``W[k]``: ``eta * schedule * 100 / fan-in`` (times ``eta_hidden`` if it predicts a
        hidden layer)."""
        rate = float(self.p.eta) * self.eta_scale * 100.0 / self.sizes[k]
        return rate * float(self.p.eta_hidden) if k < self.n_hidden_layers else rate

    def _apply(self, dws: list) -> None:
        """Add the changes ``dW`` to ``W``, ``beta dW^T`` to ``E`` (eq. 5), then clip row norms (``w_clip``)."""
        for k, dw in enumerate(dws):
            self.W[k].add_(dw)
            if k > 0:
                self.E[k].add_(pc.error_weight_update(dw, float(self.p.beta)))
            if float(self.p.w_clip) > 0:
                norms = self.W[k].norm(dim=1, keepdim=True).clamp_min(1e-12)
                self.W[k].mul_(torch.clamp(float(self.p.w_clip) / norms, max=1.0))

    @torch.no_grad()
    def predict(self, images: Tensor) -> Tensor:
        """Class indices ``[B]`` (label layer free)."""
        return self.settle(images)["output"].argmax(dim=1)

    @torch.no_grad()
    def train_batch(self, images: Tensor, labels: Tensor) -> dict:
        return self.settle(images, labels, learn=True)

    # ------------------------------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        return {"W": [w.detach().cpu().clone() for w in self.W], "E": [e.detach().cpu().clone() for e in self.E],
                "rng": self.rng.get_state().cpu() if self.device.type == "cpu" else self.rng.get_state(),
                "sizes": torch.tensor(self.sizes)}

    def load_state_dict(self, state: dict) -> None:
        if [int(n) for n in state["sizes"]] != self.sizes:
            raise ValueError(f"spiking_pc: checkpoint sizes {[int(n) for n in state['sizes']]} do not fit "
                             f"this network {self.sizes}")
        for mine, theirs in zip(self.W + self.E, list(state["W"]) + list(state["E"])):
            mine.copy_(theirs.to(mine))
        self.rng.set_state(state["rng"].cpu() if self.device.type == "cpu" else state["rng"])

    def params_dict(self) -> dict:
        return asdict(self.p)


# ---------------------------------------------------------------------------------------------- baseline
class BackpropMLP(torch.nn.Module):
    """The backprop baseline of the same size: ``n_in -> h_1 -> ... -> n_out`` (ReLU hidden layers, linear
    output), trained with cross-entropy by ``torch.optim`` (``sgd`` or ``adam``) on pixels / 255."""

    def __init__(self, sizes: Sequence[int], seed: int = 0, lr: float = 1e-3, optimizer: str = "adam",
                 device: Any = "cpu", dtype: torch.dtype = torch.float32):
        super().__init__()
        torch.manual_seed(int(seed))
        layers: list = []
        for k in range(len(sizes) - 1):
            layers.append(torch.nn.Linear(int(sizes[k]), int(sizes[k + 1])))
            if k < len(sizes) - 2:
                layers.append(torch.nn.ReLU())
        self.device, self.dtype = resolve_device(device), dtype
        self.net = torch.nn.Sequential(*layers).to(device=self.device, dtype=dtype)
        if optimizer == "adam":
            self.opt = torch.optim.Adam(self.net.parameters(), lr=lr)
        elif optimizer == "sgd":
            self.opt = torch.optim.SGD(self.net.parameters(), lr=lr)
        else:
            raise ConfigError(f"baseline optimizer must be 'adam' or 'sgd', got {optimizer!r}")

    def _x(self, images: Tensor) -> Tensor:
        return images.reshape(images.shape[0], -1).to(self.device, self.dtype) / 255.0

    def forward(self, images: Tensor) -> Tensor:
        return self.net(self._x(images))

    def train_batch(self, images: Tensor, labels: Tensor) -> float:
        self.opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(self(images), labels.to(self.device).long())
        loss.backward()
        self.opt.step()
        return float(loss.detach())

    @torch.no_grad()
    def predict(self, images: Tensor) -> Tensor:
        return self(images).argmax(dim=1)

    @torch.no_grad()
    def output(self, images: Tensor) -> Tensor:
        return self(images)

    def full_state(self) -> dict:
        return {"model": {k: v.detach().cpu().clone() for k, v in self.net.state_dict().items()},
                "opt": self.opt.state_dict()}

    def load_full_state(self, state: dict) -> None:
        self.net.load_state_dict(state["model"])
        self.opt.load_state_dict(state["opt"])
