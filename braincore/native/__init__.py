"""Native CPU engine: the simulator's loop in C, compiled once per machine (see :mod:`.engine`)."""
from .build import NativeUnavailable, compile_seconds, load_library
from .engine import NativeEngine, unsupported_reasons

__all__ = ["NativeEngine", "NativeUnavailable", "compile_seconds", "load_library", "unsupported_reasons"]
