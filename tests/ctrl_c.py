"""Ctrl-C in a task's training loop, for the tests of each task kind: ``press_ctrl_c_during`` wraps a training
step so that its ``n``-th call sends this process SIGINT (a real Ctrl-C, not a raised KeyboardInterrupt), and
``interrupted_cli_run`` runs ``braincore run`` and returns the last line it printed on stderr."""
from __future__ import annotations

import re
import signal
import threading
from typing import Any, Callable

import pytest

def needs_sigint(test: Callable) -> Callable:
    """Mark a test that needs Python's own SIGINT handler (what braincore holds back to a safe point): skipped off
    the main thread; run with the default handler installed, since a library imported by another test may have
    replaced it (Brian2 installs its own on first use) -- restored afterwards (the ``default_sigint`` fixture)."""
    main_thread = threading.current_thread() is threading.main_thread()
    test = pytest.mark.usefixtures("default_sigint")(test)
    return pytest.mark.skipif(not main_thread, reason="needs the main thread for SIGINT")(test)


def press_ctrl_c_during(real: Callable, n: int, counts: Callable[..., bool] = lambda *a, **k: True) -> Callable:
    """``real`` wrapped: its ``n``-th call (among those for which ``counts(*args, **kwargs)``) sends SIGINT
    before it runs, i.e. Ctrl-C in the middle of a training step."""
    calls = {"n": 0}

    def step(*args: Any, **kwargs: Any) -> Any:
        if counts(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == n:
                signal.raise_signal(signal.SIGINT)
        return real(*args, **kwargs)

    return step


def interrupted_cli_run(argv: list, capsys) -> str:
    """Run ``braincore`` with ``argv``, expect exit code 130 and no traceback; the last stderr line."""
    from braincore.cli import main

    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 130, err
    assert "Traceback" not in err, err
    return err.strip().splitlines()[-1]


def resume_message(where: str, checkpoint: str, argv: str) -> "re.Pattern[str]":
    """The line ``braincore run`` prints when Ctrl-C stopped a training at ``where`` with a checkpoint."""
    return re.compile(rf"braincore run: interrupted at {re.escape(where)} after [\d.]+ s; checkpoint written to "
                      rf"{re.escape(checkpoint)}; resume with: {re.escape(argv)}$")
