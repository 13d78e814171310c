"""Long work: progress bars, a heartbeat for silent phases, and Ctrl-C taken at safe points.

- :func:`progress_bar`: one tqdm bar on stderr (or a silent one).
- :class:`Heartbeat`: while active, a status on stderr says what is being done once nothing has been printed
  for a few seconds (a large network being built, the native engine compiling, data loading): updated in place
  on a terminal, one line now and then otherwise. The ``braincore`` command runs every command inside one.
- :func:`interrupt_guard`: Ctrl-C (SIGINT) held back until the work reaches a safe point (the end of a
  training batch), where it can write an exact checkpoint and stop; a second Ctrl-C stops at once.
  :class:`TrainingInterrupted` is the :class:`KeyboardInterrupt` raised then, saying where training stopped.
"""
from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Iterator, Optional


def progress_bar(total: int, desc: str, enabled: bool = True, unit: str = "step", initial: int = 0):
    """A tqdm bar on stderr (a silent no-op bar when ``enabled`` is false), starting at ``initial`` (a resumed
    run); use as a context manager."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True, mininterval=0.5,
                disable=not enabled, initial=initial)


# ------------------------------------------------------------------------------------------ Ctrl-C
class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a training at a safe point. ``checkpoint``: the checkpoint written there (``None`` when the
    run has none); ``where``: the position in words (``"epoch 2/5, batch 13/40 (step 53)"``)."""

    def __init__(self, where: str, checkpoint: Optional[Path] = None):
        self.where, self.checkpoint = where, checkpoint
        saved = f"checkpoint written to {checkpoint}" if checkpoint is not None else "no checkpoint path: nothing saved"
        super().__init__(f"training interrupted at {where}; {saved}")


class InterruptGuard:
    """The state of :func:`interrupt_guard`: ``requested`` once Ctrl-C was pressed (and held back)."""

    def __init__(self) -> None:
        self.requested = False
        self.active = False
        self._defer = True

    def _handler(self, signum, frame) -> None:
        if self.requested or not self._defer:
            raise KeyboardInterrupt
        self.requested = True

    @contextlib.contextmanager
    def immediate(self) -> Iterator[None]:
        """Inside this block Ctrl-C raises :class:`KeyboardInterrupt` at once (long work with no effect on what
        a checkpoint holds, such as an evaluation); one already held back raises on entry."""
        if self.requested:
            raise KeyboardInterrupt
        self._defer = False
        try:
            yield
        finally:
            self._defer = True


@contextlib.contextmanager
def interrupt_guard(enabled: bool = True) -> Iterator[InterruptGuard]:
    """Hold Ctrl-C back until the caller checks ``guard.requested`` at a safe point::

        with interrupt_guard() as guard:
            for batch in batches:
                step(batch)                   # never cut in the middle
                if guard.requested:
                    save(); raise KeyboardInterrupt

    A second Ctrl-C raises at once. The guard is inactive (``requested`` stays false, Ctrl-C raises as usual)
    when ``enabled`` is false, off the main thread, or when SIGINT already has a handler other than Python's
    default (someone else decides what Ctrl-C does)."""
    guard = InterruptGuard()
    if not enabled or threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        guard._defer = False
        yield guard
        return
    previous = signal.signal(signal.SIGINT, guard._handler)
    guard.active = True
    try:
        yield guard
    finally:
        signal.signal(signal.SIGINT, previous)
        guard.active = False


# ------------------------------------------------------------------------------------------ heartbeat
class _Watched:
    """A text stream that forwards to ``target`` and tells the heartbeat whenever something is written; with
    ``hold_json`` it keeps back whole lines that are JSON objects (the ``--json`` summary comes last, once)."""

    def __init__(self, target, heartbeat: "Heartbeat", hold_json: bool = False):
        self._target, self._heartbeat, self._hold_json = target, heartbeat, hold_json
        self._line = ""       # a line that may be a JSON object, held until its newline
        self.held: list[str] = []
        #: whether the last text written ended a line (a progress bar's does not)
        self.at_line_start = True

    def write(self, text: str) -> int:
        self._heartbeat._output()
        if text:
            self.at_line_start = text.endswith("\n")
        if not self._hold_json:
            return self._target.write(text)
        out = []
        for piece in text.splitlines(keepends=True):
            if self._line or (piece.lstrip().startswith("{")):
                self._line += piece
                if self._line.endswith("\n"):
                    line, self._line = self._line, ""
                    if self._is_json_object(line):
                        self.held.append(line.strip())
                    else:
                        out.append(line)
            else:
                out.append(piece)
        if out:
            self._target.write("".join(out))
        return len(text)

    @staticmethod
    def _is_json_object(line: str) -> bool:
        import json

        text = line.strip()
        if not (text.startswith("{") and text.endswith("}")):
            return False
        try:
            return isinstance(json.loads(text), dict)
        except ValueError:
            return False

    def close_line(self) -> None:
        """Forward a held partial line (the work ended without its newline)."""
        if self._line:
            line, self._line = self._line, ""
            if self._is_json_object(line):
                self.held.append(line.strip())
            else:
                self._target.write(line)

    def flush(self) -> None:
        self._target.flush()

    def __getattr__(self, name):
        return getattr(self._target, name)


class Heartbeat:
    """Says on stderr what is being done while nothing else is printed (module docstring).

    ``with Heartbeat("building brunel") as beat:`` replaces ``sys.stdout`` and ``sys.stderr`` with watching
    proxies; after ``quiet`` seconds without output a status ``building brunel... 7 s`` appears (redrawn in place
    on a terminal; on a pipe or file one line, then one every ``every`` seconds). Set :attr:`phase` to say what
    comes next; after any output the status reads ``working... N s`` (N: seconds since the last output) until
    :attr:`phase` is set again. ``hold_json``: keep JSON-object lines printed on stdout back
    (:attr:`held_json`), for a caller that prints one summary line itself.
    """

    def __init__(self, phase: str = "working", *, quiet: Optional[float] = None, every: float = 15.0,
                 hold_json: bool = False, stream=None):
        self._stream = stream
        self.quiet, self.every, self.hold_json = quiet, float(every), hold_json
        self._phase = phase
        self._lock = threading.Lock()
        self._last = time.monotonic()
        self._status_shown = False
        self._lines_written = 0
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._saved = None
        self._stdout: Optional[_Watched] = None
        self._stderr: Optional[_Watched] = None

    @property
    def phase(self) -> str:
        return self._phase

    @phase.setter
    def phase(self, text: str) -> None:
        with self._lock:
            self._phase = text
            self._last = time.monotonic()

    def new_line(self) -> None:
        """End the line on stderr if something (a progress bar left behind by an interrupted run) did not."""
        if self._stderr is not None and not self._stderr.at_line_start:
            self._stderr.write("\n")
            self._stderr.flush()

    @property
    def held_json(self) -> list[str]:
        return list(self._stdout.held) if self._stdout is not None else []

    def __enter__(self) -> "Heartbeat":
        self._saved = (sys.stdout, sys.stderr)
        if self._stream is None:
            self._stream = sys.stderr
        self._tty = bool(getattr(self._stream, "isatty", lambda: False)())
        if self.quiet is None:
            self.quiet = 2.0 if self._tty else 5.0
        self._stdout = _Watched(sys.stdout, self, self.hold_json)
        sys.stdout = self._stdout  # type: ignore[assignment]
        self._stderr = _Watched(sys.stderr, self)
        sys.stderr = self._stderr  # type: ignore[assignment]
        self._last = time.monotonic()
        self._thread = threading.Thread(target=self._beat, name="braincore-heartbeat", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        with self._lock:
            self._clear()
        if self._stdout is not None:
            self._stdout.close_line()
        sys.stdout, sys.stderr = self._saved  # type: ignore[misc]

    # -- internals
    def _output(self) -> None:
        """Something was printed: clear a status drawn in place, restart the quiet clock."""
        with self._lock:
            self._clear()
            self._last = time.monotonic()
            self._phase = "working"

    def _clear(self) -> None:
        if self._status_shown and self._tty:
            self._stream.write("\r\x1b[K")
            self._stream.flush()
        self._status_shown = False

    def _beat(self) -> None:
        next_line = None
        while not self._stop.wait(0.25):
            with self._lock:
                quiet_for = time.monotonic() - self._last
                if quiet_for < self.quiet:
                    next_line = None
                    continue
                text = f"{self._phase}... {quiet_for:.0f} s (Ctrl-C stops)"
                try:
                    if self._tty:
                        self._stream.write("\r\x1b[K" + text)
                        self._stream.flush()
                        self._status_shown = True
                    elif next_line is None or quiet_for >= next_line:
                        self._stream.write(text + "\n")
                        self._stream.flush()
                        self._lines_written += 1
                        next_line = quiet_for + self.every
                except (OSError, ValueError):  # the stream went away (closed pipe): stay quiet
                    return


__all__ = ["progress_bar", "TrainingInterrupted", "InterruptGuard", "interrupt_guard", "Heartbeat"]
