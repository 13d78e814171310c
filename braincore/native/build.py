"""Compile the native engine's C kernel once per machine and model set, and load it with :mod:`ctypes`.

The kernel (``kernel.c``, shipped with the package) is a template: :func:`load_generated` inserts the C steps
generated from the network's neuron definitions (:mod:`braincore.equations.c_code`) and compiles the result, as
Brian2's standalone mode and GeNN do. Each source is compiled at first use with the system C compiler
(``$CC``, else ``cc``/``gcc``/``clang``) into a per-user cache (``$BRAINCORE_CACHE``, else
``~/.cache/braincore``), keyed by a hash of the source, the compiler's version, the flags and the CPU, so a
changed kernel, compiler or machine compiles anew and a shared home directory never loads a binary built for
another CPU. Compiling takes well under a second; later runs load the cached library in milliseconds.

Flags: ``-O3 -march=native`` for speed, ``-ffp-contract=off`` and no ``-ffast-math`` so that every
floating-point operation is rounded as written (the float64 kernel reproduces the PyTorch engine bit for bit).

Vector math: where glibc's vector math library links (``-lmvec``; tried once per source, a failure remembered next
to the library), the kernel is built with ``BC_LIBMVEC`` so that loops calling ``exp``, ``expm1``, ``log``, ...
vectorise (see kernel.c); elsewhere, or with ``BRAINCORE_NO_VECTOR_MATH=1``, the scalar libm build is used.

Threads: where the compiler takes ``-fopenmp`` (probed once per compiler with a small program, a failure remembered
in the cache), the kernel is built with OpenMP and runs ``Simulator(threads=N)`` on N threads (see kernel.c);
elsewhere, or with ``BRAINCORE_NO_OPENMP=1``, it is built without and runs one thread (the engine says so).
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Optional

SOURCE = Path(__file__).with_name("kernel.c")
FLAGS = ["-O3", "-march=native", "-ffp-contract=off", "-fno-math-errno", "-shared", "-fPIC", "-std=c99"]
ABI_VERSION = 12
#: where kernel.c takes the generated model code
MODELS_MARKER = "/* @MODELS@ */"


class NativeUnavailable(RuntimeError):
    """The native engine cannot be used here (no C compiler, a failed compile, or an unsupported platform)."""


def find_compiler() -> Optional[str]:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def cache_dir() -> Path:
    root = os.environ.get("BRAINCORE_CACHE")
    path = Path(root) if root else Path.home() / ".cache" / "braincore"
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.touch()
        probe.unlink()
        return path
    except OSError:
        fallback = Path(tempfile.gettempdir()) / f"braincore-{os.getuid() if hasattr(os, 'getuid') else 'user'}"
        fallback.mkdir(parents=True, exist_ok=True)
        return fallback


def _cpu_signature() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("model name", "flags", "Features")):
                    return line.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _compiler_version(cc: str) -> str:
    try:
        return subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30).stdout.splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "unknown"


#: linker arguments of the vector-math build: libmvec, and every symbol resolved at link time (a libmvec without
#: a function's vector variant then fails the build, not the load)
VECTOR_MATH_LIBS = ("-lmvec", "-Wl,-z,defs")


def compile_and_load(source: Path, tag: str, defines: tuple = (), text: Optional[str] = None,
                     libs: tuple = (), remember_failure: bool = False) -> ctypes.CDLL:
    """Compile ``source`` (a C file shipped with the package) with :data:`FLAGS`, ``-D`` ``defines`` and the linker
    arguments ``libs`` into the cache (once: the file name carries a hash of source, flags, compiler and CPU;
    written atomically) and load it. With ``text`` the source is that string (written next to the library, for
    inspection), not the file. With ``remember_failure`` (an optional build, such as the vector-math one) a failed
    compile leaves a ``.failed`` note with the compiler's message, so the same source is not compiled again in vain.

    Raises :class:`NativeUnavailable` with the reason when it cannot be built or loaded.
    """
    if os.environ.get("BRAINCORE_NO_NATIVE"):
        raise NativeUnavailable("disabled by BRAINCORE_NO_NATIVE")
    cc = find_compiler()
    if cc is None:
        raise NativeUnavailable("no C compiler found (set CC, or install gcc or clang)")
    flags = FLAGS + [f"-D{d}" for d in defines] + list(libs)
    code = text.encode() if text is not None else source.read_bytes()
    key = hashlib.sha256(b"\0".join([code, " ".join(flags).encode(), _compiler_version(cc).encode(),
                                     _cpu_signature().encode(), platform.machine().encode()])).hexdigest()[:16]
    target = cache_dir() / f"braincore_{tag}_{key}.so"
    failed = target.with_suffix(".failed")
    if remember_failure and not target.exists() and failed.exists():
        raise NativeUnavailable(f"compiling for {target.name} failed before:\n{failed.read_text()[-2000:]}")
    if not target.exists():
        if text is not None:
            generated = target.with_suffix(".c")
            scratch = generated.with_suffix(f".{os.getpid()}.tmp.c")
            scratch.write_text(text)
            os.replace(scratch, generated)
            source = generated
        tmp = target.with_suffix(f".{os.getpid()}.tmp.so")
        cmd = [cc, *FLAGS, *[f"-D{d}" for d in defines], "-o", str(tmp), str(source), *libs, "-lm"]
        try:
            result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.SubprocessError) as err:
            raise NativeUnavailable(f"compiling {source.name} failed: {err}") from None
        if result.returncode != 0:
            tmp.unlink(missing_ok=True)
            if remember_failure:
                failed.write_text(result.stderr[-4000:])
            raise NativeUnavailable(f"compiling {source.name} failed ({' '.join(cmd)}):\n{result.stderr[-2000:]}")
        os.replace(tmp, target)  # atomic: a concurrent process sees the old state or the whole library
    try:
        return ctypes.CDLL(str(target))
    except OSError as err:
        raise NativeUnavailable(f"loading {target} failed: {err}") from None


#: the probe of :func:`openmp_flags`: a parallel region that links against the OpenMP runtime
OPENMP_PROBE = """#include <omp.h>
int bc_openmp_probe(void) {
    int n = 0;
#pragma omp parallel num_threads(2) reduction(+:n)
    n += omp_get_thread_num() >= 0;
    return n;
}
"""


@lru_cache(maxsize=None)
def openmp_flags() -> tuple:
    """``("-fopenmp",)`` where the C compiler builds and links OpenMP code (probed once, a failure remembered next
    to the cache), else ``()``: the kernel then runs one thread. ``BRAINCORE_NO_OPENMP=1`` disables it."""
    if os.environ.get("BRAINCORE_NO_OPENMP"):
        return ()
    try:
        compile_and_load(SOURCE, "openmp_probe", text=OPENMP_PROBE, libs=("-fopenmp",), remember_failure=True)
    except NativeUnavailable:
        return ()
    return ("-fopenmp",)


@lru_cache(maxsize=64)
def load_generated(models: str, precision: str) -> ctypes.CDLL:
    """The kernel with the generated model code ``models`` inserted, for ``precision`` ``"float64"`` or
    ``"float32"`` (compiled once per distinct source; cached on disk and in this process).

    Raises :class:`NativeUnavailable` with the reason when it cannot be built or loaded.
    """
    if precision not in ("float64", "float32"):
        raise NativeUnavailable(f"no native kernel for dtype {precision!r}")
    real = "double" if precision == "float64" else "float"
    template = SOURCE.read_text()
    if MODELS_MARKER not in template:
        raise NativeUnavailable(f"{SOURCE.name} has no {MODELS_MARKER} marker")
    text = template.replace(MODELS_MARKER, models)
    lib = None
    openmp = openmp_flags()
    if not os.environ.get("BRAINCORE_NO_VECTOR_MATH"):
        try:
            lib = compile_and_load(SOURCE, f"kernel_{precision}", (f"REAL={real}", "BC_LIBMVEC"), text=text,
                                   libs=openmp + VECTOR_MATH_LIBS, remember_failure=True)
        except NativeUnavailable:
            lib = None  # no libmvec here (or not these functions): the scalar build below
    if lib is None:
        lib = compile_and_load(SOURCE, f"kernel_{precision}", (f"REAL={real}",), text=text, libs=openmp)
    lib.bc_abi_version.restype = ctypes.c_int32
    if lib.bc_abi_version() != ABI_VERSION:
        raise NativeUnavailable(f"{SOURCE.name} has ABI {lib.bc_abi_version()}, expected {ABI_VERSION}")
    lib.bc_run.restype = ctypes.c_int64
    lib.bc_run.argtypes = [ctypes.c_void_p, ctypes.c_int64]
    lib.bc_run_trials.restype = ctypes.c_int64
    lib.bc_run_trials.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64]
    lib.bc_first_nonfinite.restype = ctypes.c_int32
    lib.bc_first_nonfinite.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int32]
    lib.bc_poisson_plan.restype = ctypes.c_int64
    lib.bc_poisson_plan.argtypes = [ctypes.c_void_p, ctypes.c_int32, ctypes.c_int64] + [ctypes.c_void_p] * 5
    lib.bc_openmp.restype = ctypes.c_int32
    lib.bc_openmp.argtypes = []
    lib.bc_row_cuts.restype = ctypes.c_int32
    lib.bc_row_cuts.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p, ctypes.c_int32,
                                ctypes.c_void_p]
    lib.bc_seed.restype = None
    lib.bc_seed.argtypes = [ctypes.c_void_p, ctypes.c_uint64]
    return lib


def load_library(precision: str) -> ctypes.CDLL:
    """The kernel for the LIF model alone (the reference build, e.g. for :func:`compile_seconds`)."""
    from ..equations.c_code import constant_names, dispatch_function, model_function
    from ..equations.c_rule import rule_dispatch
    from ..neurons.lif import LIF_DEFINITION

    scalars = constant_names(LIF_DEFINITION.program("exact", "value"))
    models = model_function(LIF_DEFINITION, "exact", "value", "model_0", scalars, []) + \
        dispatch_function(["model_0"]) + rule_dispatch([])
    return load_generated(models, precision)


def compile_seconds(precision: str = "float64") -> float:
    """Wall time of a fresh compile (into a scratch cache), for benchmarks that report build cost apart."""
    import time

    old = os.environ.get("BRAINCORE_CACHE")
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["BRAINCORE_CACHE"] = scratch
        load_generated.cache_clear()
        start = time.perf_counter()
        try:
            load_library(precision)
        finally:
            elapsed = time.perf_counter() - start
            if old is None:
                os.environ.pop("BRAINCORE_CACHE", None)
            else:
                os.environ["BRAINCORE_CACHE"] = old
            load_generated.cache_clear()
    return elapsed
