"""Start-up time of the ``braincore`` command: wall seconds of quick commands, each in a fresh interpreter.

    python benchmarks/startup.py                 # median of 5 runs per command, a table on stdout
    python benchmarks/startup.py --repeat 9 --json startup.json
    python benchmarks/startup.py --importtime    # also the slowest top-level imports of each command
    python benchmarks/startup.py --baseline ../main   # and the same commands in another checkout, interleaved

Each command runs as ``python -m braincore ARGS`` in a subprocess (stdout and stderr discarded) from the
repository root, with ``OMP_NUM_THREADS=1``; one untimed run first warms the file cache. The figure is the
median wall time of ``--repeat`` runs, the spread is min-max. ``python -c pass`` and ``python -c "import
torch"`` are timed alongside as the floor and the cost of PyTorch on this machine. ``validate`` is timed on two
assemblies and on one config of each task kind (training, task and distributed kinds load their modules). With
``--baseline DIR`` each command also runs in that checkout (its ``PYTHONPATH`` and working folder), alternating
run by run with this one so that both see the same machine load; a command the baseline does not know shows its
exit code 2. Timings never go in tests.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: (label, arguments after ``python``)
COMMANDS = [
    ("python -c pass", ["-c", "pass"]),
    ("python -c 'import torch'", ["-c", "import torch"]),
    ("braincore --help", ["-m", "braincore", "--help"]),
    ("braincore run --help", ["-m", "braincore", "run", "--help"]),
    ("braincore validate configs/gallery.yaml", ["-m", "braincore", "validate", "configs/gallery.yaml"]),
    ("braincore validate configs/coba.yaml", ["-m", "braincore", "validate", "configs/coba.yaml"]),
    # one config of each task kind (each loads its task module, from the braincore.kinds entry points)
    *[(f"braincore validate configs/{name}.yaml", ["-m", "braincore", "validate", f"configs/{name}.yaml"])
      for name in ("perception/mnist_ff", "perception/diehl_cook", "perception/desire_bp",
                   "perception/predictive_coding", "rl/cartpole", "decision/two_afc", "memory/delayed_match",
                   "memory/associative", "brain/microcircuit", "distributed/coba")],
    ("braincore models", ["-m", "braincore", "models"]),
    ("braincore regions", ["-m", "braincore", "regions"]),
    ("braincore configs", ["-m", "braincore", "configs"]),
]


def _env(root: Path = ROOT) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = str(root) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _once(args: list[str], root: Path) -> tuple[float, int]:
    start = time.perf_counter()
    code = subprocess.run([sys.executable, *args], cwd=root, env=_env(root), stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode
    return time.perf_counter() - start, code


def time_command(args: list[str], repeat: int, roots: tuple = (ROOT,)) -> list[dict]:
    """For each checkout in ``roots``: median, min and max wall seconds of ``python ARGS`` over ``repeat`` runs
    (after one untimed run each; the checkouts take turns run by run) and the exit code of the last run."""
    for root in roots:
        _once(args, root)
    times: list[list[float]] = [[] for _ in roots]
    codes = [0] * len(roots)
    for _ in range(repeat):
        for i, root in enumerate(roots):
            seconds, codes[i] = _once(args, root)
            times[i].append(seconds)
    return [{"median_s": statistics.median(t), "min_s": min(t), "max_s": max(t), "exit_code": c}
            for t, c in zip(times, codes)]


def slowest_imports(args: list[str], top: int = 5) -> list[tuple[str, float]]:
    """The ``top`` slowest imports (cumulative seconds) of ``python -X importtime ARGS`` that braincore or the
    command itself triggered at the top level of the import tree."""
    proc = subprocess.run([sys.executable, "-X", "importtime", *args], cwd=ROOT, env=_env(),
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    rows = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        parts = line[len("import time:"):].split("|")
        try:
            cumulative = int(parts[1]) / 1e6
        except ValueError:  # the header line
            continue
        name = parts[2]
        if len(name) - len(name.lstrip()) <= 3:  # depth 0 or 1 of the tree
            rows.append((name.strip(), cumulative))
    return sorted(rows, key=lambda r: -r[1])[:top]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per command (default 5)")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    parser.add_argument("--importtime", action="store_true", help="list the slowest imports of each command")
    parser.add_argument("--baseline", default=None, help="another checkout to time alongside (e.g. ../main)")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")
    roots = (ROOT,)
    if args.baseline:
        baseline = Path(args.baseline).resolve()
        if not (baseline / "braincore" / "__init__.py").is_file():
            parser.error(f"--baseline {args.baseline}: not a braincore checkout (no braincore/__init__.py)")
        roots = (ROOT, baseline)
    results: dict = {}
    width = max(len(label) for label, _ in COMMANDS)
    head = f"{'command':<{width}}  {'median s':>9}  {'min-max s':>13}  exit"
    if len(roots) > 1:
        head += f"   {'baseline s':>10}  {'min-max s':>13}  exit"
    print(head)
    for label, cmd in COMMANDS:
        rows = time_command(cmd, args.repeat, roots)
        results[label] = rows[0] if len(rows) == 1 else {"this": rows[0], "baseline": rows[1]}
        line = "  ".join(f"{r['median_s']:9.3f}  {r['min_s']:6.3f}-{r['max_s']:<6.3f}  {r['exit_code']:>4}"
                         for r in rows)
        print(f"{label:<{width}}  {line}", flush=True)
        if args.importtime and cmd[0] == "-m":
            for name, seconds in slowest_imports(cmd):
                print(f"    {seconds:7.3f} s  import {name}")
    where = f"; baseline {roots[1]}" if len(roots) > 1 else ""
    print(f"(median of {args.repeat} runs each, {sys.executable}, OMP_NUM_THREADS=1; this checkout {ROOT}{where})")
    if args.json:
        Path(args.json).write_text(json.dumps({"repeat": args.repeat, "python": sys.version.split()[0],
                                               "roots": [str(r) for r in roots], "results": results},
                                              indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
