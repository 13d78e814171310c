"""Shared pieces of the side-by-side simulator benchmarks (``sim_coba.py``, ``engine_models.py``).

- one thread everywhere (:func:`one_thread`), peak and current resident memory;
- :class:`Measurement`, what one measuring subprocess reports, and :func:`measure`, which runs a script's
  ``--worker`` entry in a fresh interpreter and reads the measurement back from a marked stdout line;
- :func:`run_braincore` and :func:`run_brian2`: build, time and run one network in braincore (native or PyTorch
  engine) or Brian2 (Cython runtime or C++ standalone without OpenMP), the caller supplying the network;
- formatting helpers and :func:`environment` (versions, machine, git commit) for the JSON files.

Timing conventions (the same for every benchmark that uses this module): ``build_s`` is the construction of the
network from arrays up to a runnable simulation (Brian2 standalone: code generation and compilation included);
``run_s`` is the simulated duration only (Brian2: ``device._last_run_time``, the simulation loop timed by Brian2
itself; standalone: timed inside the binary); ``compile_s`` is a compile of the generated code (braincore native:
``braincore.native.compile_seconds()``, a fresh compile of the C kernel; Brian2 standalone: ``make``; Brian2
Cython: filled in by the caller from an untimed warm-up into an empty cache).
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Union

import numpy as np

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")
ROOT = Path(__file__).resolve().parent.parent


def one_thread() -> None:
    """Set the thread variables to 1 in this process's environment (inherited by every subprocess and by
    Brian2's compiled binary)."""
    for name in THREAD_VARIABLES:
        os.environ[name] = "1"


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (``ru_maxrss`` is in KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def current_rss_mb() -> Optional[float]:
    """Resident set size of this process now, in MiB (Linux ``/proc``; ``None`` elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / (1024.0 * 1024.0)
    except (OSError, ValueError, IndexError):
        return None


# ------------------------------------------------------------------------------------------ measurements
@dataclass
class Measurement:
    """What one subprocess reports. ``run_s`` is ``None`` when the simulation was built but not run (a
    measurement that was skipped on purpose; ``extra`` says why)."""

    build_s: float
    run_s: Optional[float]
    counts: list[int]            # spikes per neuron, in the benchmark's neuron order
    peak_rss_mb: float
    import_rss_mb: float
    method: str
    compile_s: Optional[float] = None
    end_rss_mb: Optional[float] = None     # resident memory after the run (build transients released)
    driver_rss_mb: Optional[float] = None  # brian2-standalone: the Python process that generated the code
    binary_s: Optional[float] = None       # brian2-standalone: the whole binary (loading, run, writing results)
    extra: dict = field(default_factory=dict)  # benchmark-specific results (engine, final weights, ...)


def measure(script: str, spec: dict[str, Any], timeout: float, mark: str) -> Measurement:
    """Run ``script --worker SPEC`` in a fresh interpreter and return the measurement it prints after ``mark``
    (raises with the tail of its output on failure)."""
    cmd = [sys.executable, os.path.abspath(script), "--worker", json.dumps(spec)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(mark):
            return Measurement(**json.loads(line[len(mark):]))
    what = ", ".join(f"{k}={spec[k]}" for k in ("workload", "N") if k in spec)
    raise RuntimeError(f"{spec.get('simulator')} ({what}) failed with exit code {proc.returncode}:\n"
                       f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")


def report(measurement: Measurement, mark: str) -> None:
    """The worker's side of :func:`measure`: print the measurement after ``mark``."""
    from dataclasses import asdict

    print(mark + json.dumps(asdict(measurement)), flush=True)


# ------------------------------------------------------------------------------------------ braincore
def run_braincore(build: Callable[[], Any], collect: Callable[[Any], tuple[list[int], dict]], *, backend: str,
                  method: str, init: Optional[Callable[[Any], None]] = None, run_fallback: bool = True,
                  dtype: str = "float64") -> Measurement:
    """Build an assembly with ``build()``, make its :class:`~braincore.simulator.Simulator` with ``backend``
    (``native``, ``torch`` or ``auto``), set its initial state with ``init(sim)``, run its duration and return
    the timings with ``collect(sim) -> (spikes per neuron, extra)``, in one thread.

    ``extra`` always holds ``engine`` (the engine that ran) and ``fallback_reason`` (why ``auto`` chose PyTorch).
    With ``run_fallback=False`` a ``backend="auto"`` simulation that falls back to PyTorch is built but not run
    (``run_s`` ``None``): the PyTorch engine is measured on its own row.
    """
    import torch

    torch.set_num_threads(1)
    from braincore.graph import Assembly  # noqa: F401 - imported before the baseline memory is read
    from braincore.simulator import Simulator

    import_rss = peak_rss_mb()
    start = time.perf_counter()
    assembly = build()
    sim = Simulator(assembly, backend=backend)
    if init is not None:
        init(sim)
    engine = sim.engine  # ``native``/``auto``: loads the compiled kernel (cached), lays out the static arrays
    build_s = time.perf_counter() - start
    extra = {"engine": engine, "fallback_reason": sim.fallback_reason}
    if backend == "auto" and engine != "native" and not run_fallback:
        extra["skipped"] = "backend auto fell back to the torch engine (measured on the braincore-torch row)"
        return Measurement(build_s, None, [], peak_rss_mb(), import_rss, method, extra=extra)

    start = time.perf_counter()
    sim.run()
    run_s = time.perf_counter() - start
    end_rss = current_rss_mb()
    counts, more = collect(sim)
    extra.update(more)
    compile_s = None
    if engine == "native":
        from braincore.native import compile_seconds

        compile_s = compile_seconds(dtype)  # after the run: the compiler is a child, not in our RSS
    return Measurement(build_s, run_s, [int(c) for c in counts], peak_rss_mb(), import_rss, method, compile_s,
                       end_rss, extra=extra)


# ------------------------------------------------------------------------------------------ Brian2
def rss_wrapper_command(rss_file: str) -> list[str]:
    """A command prefix that runs its arguments and writes the child's peak RSS (MiB) to ``rss_file``."""
    code = ("import os, subprocess, sys\n"
            "p = subprocess.Popen(sys.argv[2:])\n"
            "_, status, usage = os.wait4(p.pid, 0)\n"
            "peak = usage.ru_maxrss / (1048576.0 if sys.platform == 'darwin' else 1024.0)\n"
            "open(sys.argv[1], 'w').write(repr(peak))\n"
            "sys.exit(os.waitstatus_to_exitcode(status))\n")
    return [sys.executable, "-c", code, rss_file, "./main"]


def run_brian2(build: Callable[[], tuple[Any, dict, Callable[[], tuple[list[int], dict]]]], duration_ms: float,
               mode: str, *, dt_ms: float, seed: int, method: Union[str, Callable[[], str]],
               cache_dir: Optional[str] = None,
               warmup: bool = False, prefix: str = "bench_brian2_") -> Measurement:
    """Build and run one Brian2 network: ``mode`` ``"cython"`` (runtime) or ``"standalone"`` (C++, no OpenMP).

    ``build()`` is called after the device is set and returns ``(network, namespace, collect)``: the
    :class:`brian2.Network` with every object, the namespace of its external constants, and a function that
    returns ``(spikes per neuron, extra)`` after the run. ``method`` names the integration method for the
    table, or is a function that chooses it (called after the baseline memory is read). ``warmup`` (Cython):
    only build and generate/compile the code (``run(0 ms)``), to fill the cache ``cache_dir``.
    """
    import brian2 as b2
    from brian2 import ms
    from brian2.devices.device import get_device

    import_rss = peak_rss_mb()
    if callable(method):
        method = method()
    b2.prefs.logging.console_log_level = "WARNING"
    project_dir = None
    if mode == "standalone":
        project_dir = tempfile.mkdtemp(prefix=prefix)
        b2.set_device("cpp_standalone", directory=project_dir, build_on_run=False)
        b2.prefs.devices.cpp_standalone.openmp_threads = 0  # no OpenMP: one thread
        rss_file = os.path.join(project_dir, "peak_rss_mb.txt")
        b2.prefs.devices.cpp_standalone.run_cmd_unix = rss_wrapper_command(rss_file)
    elif mode == "cython":
        b2.prefs.codegen.target = "cython"
        if cache_dir:
            b2.prefs.codegen.runtime.cython.cache_dir = cache_dir
    else:
        raise ValueError(f"unknown Brian2 mode {mode!r}")
    b2.seed(seed)
    b2.defaultclock.dt = dt_ms * ms
    try:
        start = time.perf_counter()
        network, namespace, collect = build()
        device = get_device()
        if mode == "standalone":
            network.run(duration_ms * ms, namespace=namespace)  # recorded, not executed (build_on_run=False)
            device.build(directory=project_dir, compile=True, run=False, with_output=False)
            build_s = time.perf_counter() - start
            compile_s = sum(t for t in device.timers["compile"].values() if t is not None)
            device.run(directory=project_dir, with_output=False)
            run_s = float(device._last_run_time)  # the simulation loop, timed inside the binary
            binary_s = float(device.timers["run_binary"])
            counts, extra = collect()
            with open(rss_file) as f:
                binary_rss = float(f.read())
            return Measurement(build_s, run_s, [int(c) for c in counts], binary_rss, import_rss, method, compile_s,
                               driver_rss_mb=peak_rss_mb(), binary_s=binary_s, extra=extra)
        network.run(0 * ms, namespace=namespace)  # code generation, compilation or loading from the cache
        build_s = time.perf_counter() - start
        if warmup:
            return Measurement(build_s, 0.0, [], peak_rss_mb(), import_rss, method, compile_s=build_s)
        network.run(duration_ms * ms, namespace=namespace)
        run_s = float(device._last_run_time)  # excludes the per-run code-object preparation (before_run)
        end_rss = current_rss_mb()
        counts, extra = collect()
        return Measurement(build_s, run_s, [int(c) for c in counts], peak_rss_mb(), import_rss, method,
                           end_rss_mb=end_rss, extra=extra)
    finally:
        if project_dir is not None:
            shutil.rmtree(project_dir, ignore_errors=True)


# ------------------------------------------------------------------------------------------ reporting
def round_sig(value: Optional[float], digits: int = 4) -> Optional[float]:
    """``value`` to ``digits`` significant digits (``None`` stays ``None``)."""
    return None if value is None else float(f"{value:.{digits}g}")


def fmt(value: Any, spec: str = ".3g") -> str:
    """A table cell: ``-`` for ``None``, numbers formatted with ``spec``."""
    if value is None:
        return "-"
    return format(value, spec) if isinstance(value, (int, float)) else str(value)


def environment() -> dict[str, Any]:
    """Versions and machine, for the JSON files."""
    info: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform(),
                            "cpu": platform.processor() or platform.machine(), "logical_cpus": os.cpu_count(),
                            "numpy": np.__version__,
                            "threads": os.environ.get("BRAINCORE_THREADS") or 1,  # the native engine's
                            "load_average": os.getloadavg()[0]}
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    for module in ("torch", "brian2", "Cython", "braincore"):
        try:
            info[module] = __import__(module).__version__
        except Exception:  # noqa: BLE001 - absent or without a version
            info[module] = None
    try:
        from braincore.native.build import SOURCE

        info["braincore_kernel_sha256"] = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:16]
    except Exception:  # noqa: BLE001
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "braincore"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        info["braincore_git"] = commit + ("+dirty" if dirty else "") if commit else None
    except (OSError, subprocess.SubprocessError):
        pass
    return info
