"""The one reader of a device name (``cpu``, ``cuda``, ``cuda:N``, ``mps``, ``auto``) for the whole engine.

Every place that accepts a device -- an assembly's ``run.device``, ``Simulator(device=)``, the task kinds'
``device:`` keys, :class:`braincore.training.Trainer`, the layer-wise networks -- turns it into a
:class:`torch.device` here, so ``auto`` means the same everywhere: ``cuda`` when torch sees a CUDA GPU, else
``cpu``. The native C engine runs on the CPU only, so for it (``native=True``) ``auto`` is the CPU.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Union

from .errors import ConfigError

if TYPE_CHECKING:
    import torch


def auto_device(native: bool = False) -> str:
    """What ``device: auto`` stands for on this machine: ``"cuda"`` when torch sees a CUDA GPU (and the engine
    is not the CPU-only native one), else ``"cpu"``."""
    import torch

    return "cuda" if not native and torch.cuda.is_available() else "cpu"


def resolve_device(device: Union[str, "torch.device", None] = "auto", *, native: bool = False) -> "torch.device":
    """``device`` as a :class:`torch.device` (``None`` and ``"auto"``: :func:`auto_device`); a
    :class:`~braincore.errors.ConfigError` (a ``ValueError``) naming the device when it is not one, or when CUDA
    or MPS is asked for but absent."""
    import torch

    if device is None or (isinstance(device, str) and device.strip() == "auto"):
        device = auto_device(native)
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ConfigError(f"device {device!r} is not a torch device ({err}); use cpu, cuda, cuda:N, mps or "
                          f"auto") from None
    problem = _unavailable(dev)
    if problem:
        raise ConfigError(problem)
    return dev


def _unavailable(dev: "torch.device") -> Optional[str]:
    import torch

    if dev.type == "cuda":
        if not torch.cuda.is_available():
            build = "built without CUDA" if torch.version.cuda is None else f"CUDA {torch.version.cuda}, no GPU visible"
            return (f"device {str(dev)!r} requested but CUDA is not available (torch {torch.__version__}, {build}); "
                    f"set device: cpu or auto")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            return f"device {str(dev)!r}: only {torch.cuda.device_count()} CUDA device(s) visible"
    elif dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            return f"device {str(dev)!r} requested but MPS is not available; set device: cpu or auto"
    return None
