"""The SHA-256 of the microcircuit's built network: every projection's CSR arrays (``indptr``, post indices),
weights and delays, each in a canonical dtype (int64 indices and delays, float64 weights), so that a change of the
storage dtypes keeps the hash and a change of a single synapse changes it. Also prints the build time (wall and
CPU), the bytes per synapse of the stored arrays and the peak resident memory.

    python benchmarks/microcircuit_hash.py --scale 0.1 --dtype float32 --check

``--check`` compares with :data:`REFERENCE`: the hashes of the network as braincore built it before the compact
construction (commit ec099e4: int64 indices and delays, two sorts per projection), seed 55.
"""
from __future__ import annotations

import argparse
import hashlib
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

#: (scale, dtype) -> SHA-256 of the network built with seed 55
REFERENCE = {
    (0.1, "float64"): "e2b4f8106f80c9586c011b1a8f810aeff1c3292b291972e20cc377ad1de7d488",
    (0.1, "float32"): "3a6e40719e07d05ff6a1c05cc5846b7e04f19e4bc2b71b2290f832bf31a53c77",
    (0.3, "float32"): "5c3830de67c116f4d4814a45f763cf94e14a6399dfca23f2dce26c23c6817618",
}


def network_hash(sim) -> tuple[str, int, int]:
    """``(hex digest, synapses, stored bytes)`` of a built :class:`~braincore.simulator.Simulator`."""
    total, synapses, stored = hashlib.sha256(), 0, 0
    for p in sim.projections:
        h = hashlib.sha256()
        for array, dtype in ((p.indptr, np.int64), (p.post_idx, np.int64), (p.weight, np.float64),
                             (p.delay, np.int64)):
            h.update(np.ascontiguousarray(array.cpu().numpy().astype(dtype)).tobytes())
            stored += array.numel() * array.element_size()
        synapses += p.post_idx.numel()
        total.update(h.digest())
    return total.hexdigest(), synapses, stored


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--dtype", default="float64", choices=("float32", "float64"))
    parser.add_argument("--seed", type=int, default=55)
    parser.add_argument("--check", action="store_true", help="compare with the reference hash (seed 55)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from braincore.simulator import Simulator
    from regions.microcircuit import microcircuit

    a = microcircuit(scale=args.scale)
    a.set_run(duration=10.0, dt=0.1, seed=args.seed, dtype=args.dtype, backend="native")
    wall, cpu = time.perf_counter(), time.process_time()
    sim = Simulator(a)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    digest, synapses, stored = network_hash(sim)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"scale {args.scale:g} {args.dtype} seed {args.seed}: {synapses:,} synapses, built in {wall:.2f} s "
          f"({cpu:.2f} s CPU), {stored / max(1, synapses):.2f} stored bytes per synapse, peak {peak:.0f} MB")
    print(f"sha256 {digest}")
    if args.check:
        expected = REFERENCE.get((args.scale, args.dtype)) if args.seed == 55 else None
        if expected is None:
            print("no reference hash for these arguments")
            return 2
        print("same network as the reference" if digest == expected else f"DIFFERENT from the reference {expected}")
        return 0 if digest == expected else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
