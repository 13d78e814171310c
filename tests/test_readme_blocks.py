"""Every Python block of README.md runs as written, alone, from a folder other than the repository.

Each ```python block is run in a fresh interpreter whose working folder is an empty temporary folder (so relative
paths in a block must resolve the way a user's would, e.g. bundled configs by name), with warnings shown: a block
fails on an exception, and on any warning braincore raises about the README's own code. A block preceded by
``<!-- readme-test: skip (reason) -->`` is not run (it needs torchrun, a GPU or a data set); one preceded by
``<!-- readme-test: slow -->`` runs only with ``-m slow``. The README therefore cannot drift from the code.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
_BLOCK = re.compile(r"(?:<!-- readme-test: (?P<mark>skip|slow)(?P<why>[^>]*)-->\n)?```python\n(?P<code>.*?)```", re.S)


def readme_blocks() -> list:
    text = README.read_text(encoding="utf-8")
    out = []
    for m in _BLOCK.finditer(text):
        line = text[:m.start("code")].count("\n") + 1
        marks = []
        if m.group("mark") == "skip":
            marks.append(pytest.mark.skip(reason=f"README line {line}:{m.group('why').strip()}"))
        elif m.group("mark") == "slow":
            marks.append(pytest.mark.slow)
        out.append(pytest.param(m.group("code"), id=f"line{line}", marks=marks))
    return out


def test_the_readme_has_python_blocks():
    assert len(readme_blocks()) >= 10


@pytest.mark.parametrize("code", readme_blocks())
def test_readme_block_runs_alone_from_another_folder(code, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg", PYTHONWARNINGS="default")
    env["PYTHONPATH"] = os.pathsep.join([str(README.parent), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, f"README block failed:\n{code}\n--- stderr ---\n{done.stderr[-3000:]}"
    braincore_warnings = [line for line in done.stderr.splitlines() if "Warning" in line and "braincore" in line
                          or "Warning" in line and line.startswith("<string>")]
    assert not braincore_warnings, f"README block warns:\n{code}\n{chr(10).join(braincore_warnings)}"
