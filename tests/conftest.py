import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def default_sigint():
    """Python's default SIGINT handler for the test (tests/ctrl_c.py), the previous one restored after it."""
    import signal

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture
def mnist_dir():
    """The real MNIST folder (../shared/data/mnist or $BRAINCORE_DATA/mnist); skips when absent."""
    base = Path(os.environ.get("BRAINCORE_DATA", ROOT.parent / "shared" / "data"))
    path = base / "mnist"
    if not (path / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"MNIST not found under {path}")
    return path
