"""The efficiency claim of Yin, Corradi & Bohté 2021 on permuted sequential MNIST: synaptic operations of the
trained adaptive spiking recurrent network (SRNN) against the multiply-accumulates of a non-spiking LSTM trained
by the same code, per sample, at the accuracy each reaches.

Claim (Nat. Mach. Intell. 3, 2021, abstract): the SRNNs' sparse spiking makes them "one to three orders of
magnitude" cheaper in computation than RNNs of comparable accuracy. The paper's accuracies as quoted by issue 19
(not checked against the paper's text here): S-MNIST 98.7 %, PS-MNIST 94.3 %; the authors' released
checkpoints (github.com/byin-cwi/Efficient-spiking-networks, ``NMI_vis/smnist``) are named 98.21 (S-MNIST) and
94.73 (PS-MNIST), for the network ``[64, 256, 256]`` of their script (64 and 256 recurrent ALIF units, 256
feed-forward ALIF units).

What runs: the two configs (default ``configs/perception/psmnist_srnn.yaml`` and ``psmnist_lstm.yaml``) through
the ``spiking_classifier`` runner with ``--out`` folders: a config whose checkpoint there is complete is not
trained again (a missing or partial one is trained to the config's budget, which can take long at 784 steps), the
whole test set is scored and the efficiency record (:mod:`braincore.training.efficiency`) is counted on
``--count-samples`` test images. Written: accuracy, spikes, SynOps, MACs, FLOPs per sample for both, and

- ``ratio_macs_per_synop``: LSTM MACs / SRNN SynOps (the paper's comparison: an accumulate per spike and
  outgoing synapse against the dense MACs of the RNN);
- ``ratio_flops``: LSTM FLOPs / SRNN FLOPs, where the SRNN's FLOPs include its real-valued input layer's MACs
  (pixels are currents, not spikes);
- ``ratio_energy_45nm``: the same with :data:`braincore.training.efficiency.ENERGY_45NM` (0.9 pJ per accumulate,
  4.6 pJ per MAC, Horowitz 2014, 45 nm, 32-bit float): a derived figure, not a measurement.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/srnn_efficiency.py --srnn-out /work/runs/srnn/psmnist_srnn \\
        --lstm-out /work/runs/srnn/psmnist_lstm [--count-samples 1000] [--data-dir DIR] \\
        [--json-out benchmarks/results/srnn_efficiency.json] [--from-summaries]

``--from-summaries`` reads the rows from the summaries the two ``braincore run ... --out`` calls wrote (nothing is
evaluated again).

A benchmark, not a test: nothing here enters the test suite.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from braincore.config import load_config  # noqa: E402
from braincore.training.efficiency import ENERGY_45NM, energy_pj  # noqa: E402

PAPER = {"reference": "B. Yin, F. Corradi, S. M. Bohte, Nat. Mach. Intell. 3, 905-913 (2021)",
         "smnist_test_accuracy": 0.987, "psmnist_test_accuracy": 0.943,
         "accuracy_source": "issue 19 (not checked against the paper's text here)",
         "authors_checkpoints": "byin-cwi/Efficient-spiking-networks NMI_vis/smnist: model_98.21 (S-MNIST), "
                                "model_94.73 (PS-MNIST), network [64, 256, 256], 4-pixel binarised input window",
         "claim": "SRNNs one to three orders of magnitude more computationally efficient than RNNs of comparable "
                  "accuracy (abstract)"}


def run_one(config_path: Path, out: Path, count_samples: int, data_dir: "str | None") -> dict:
    """The runner's summary of ``config_path`` with ``--out out`` (resumed / not retrained when complete)."""
    from tasks.perception import surrogate as task

    _, config = load_config(config_path)
    config["evaluation"]["efficiency_samples"] = count_samples
    config["progress"] = False
    if data_dir:
        config["data"]["dir"] = data_dir
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()) as log:
        summary = task.run(config, {"out": str(out)})
    resumed = "resumed from" in log.getvalue()
    return {"config": str(config_path.relative_to(ROOT) if config_path.is_relative_to(ROOT) else config_path),
            "layers": summary["layers"], "sizes": summary["sizes"], "parameters": summary["parameters"],
            "train_samples": summary["train_samples"], "epochs": summary["epochs"], "steps": summary["steps"],
            "train_seconds": summary["train_seconds"], "resumed_complete_checkpoint": resumed,
            "validation_accuracy": summary.get("validation_accuracy"), "test_accuracy": summary["test_accuracy"],
            "test_samples": summary["test_samples"], "efficiency": summary["efficiency"],
            "energy_pj_45nm": energy_pj(summary["efficiency"]),
            "this_call_seconds": round(time.perf_counter() - start, 1), "checkpoint": summary["checkpoint"]}


def from_summary(config_path: Path, out: Path) -> dict:
    """The same row from the summary ``braincore run <config> --out <out>`` wrote (``<out>/<config stem>.json``):
    no evaluation is repeated (the efficiency record then comes from the config's ``efficiency_samples``)."""
    summary = json.loads((out / f"{config_path.stem}.json").read_text())
    keys = ("layers", "sizes", "parameters", "train_samples", "epochs", "steps", "train_seconds",
            "validation_accuracy", "test_accuracy", "test_samples", "efficiency", "checkpoint", "wall_seconds")
    row = {"config": summary.get("config", str(config_path)), **{k: summary.get(k) for k in keys}}
    row["energy_pj_45nm"] = energy_pj(summary["efficiency"])
    row["source"] = str(out / f"{config_path.stem}.json")
    return row


def compare(srnn: dict, lstm: dict) -> dict:
    """The ratios of the module docstring."""
    s, l_ = srnn["efficiency"], lstm["efficiency"]
    return {"ratio_macs_per_synop": l_["macs"] / s["synops"] if s["synops"] else None,
            "ratio_flops": l_["flops"] / s["flops"] if s["flops"] else None,
            "ratio_energy_45nm": lstm["energy_pj_45nm"] / srnn["energy_pj_45nm"] if srnn["energy_pj_45nm"] else None,
            "accuracy_gap": srnn["test_accuracy"] - lstm["test_accuracy"]}


def main(argv: "list[str] | None" = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--srnn-config", type=Path, default=ROOT / "configs/perception/psmnist_srnn.yaml")
    p.add_argument("--lstm-config", type=Path, default=ROOT / "configs/perception/psmnist_lstm.yaml")
    p.add_argument("--srnn-out", type=Path, required=True, help="the SRNN run's --out folder (its checkpoint)")
    p.add_argument("--lstm-out", type=Path, required=True, help="the LSTM run's --out folder (its checkpoint)")
    p.add_argument("--count-samples", type=int, default=1000, help="test images the operations are counted on")
    p.add_argument("--data-dir", default=None, help="the IDX folder (default: the configs' data)")
    p.add_argument("--json-out", type=Path, default=ROOT / "benchmarks/results/srnn_efficiency.json")
    p.add_argument("--from-summaries", action="store_true",
                   help="read the runs' own summaries (<out>/<config>.json) instead of scoring the checkpoints again")
    args = p.parse_args(argv)
    if args.from_summaries:
        srnn, lstm = from_summary(args.srnn_config, args.srnn_out), from_summary(args.lstm_config, args.lstm_out)
    else:
        import torch

        torch.set_num_threads(1)
        srnn = run_one(args.srnn_config, args.srnn_out, args.count_samples, args.data_dir)
        lstm = run_one(args.lstm_config, args.lstm_out, args.count_samples, args.data_dir)
    result = {"benchmark": "srnn_efficiency", "paper": PAPER, "energy_per_op_pj": ENERGY_45NM,
              "srnn": srnn, "lstm": lstm, **compare(srnn, lstm)}
    if abs(result["accuracy_gap"]) > 0.01:
        result["note"] = (f"the test accuracies differ by {100 * abs(result['accuracy_gap']):.1f} points: the ratios "
                          "compare the operation counts of these two networks, not of networks of the same "
                          "accuracy as the paper's claim requires")
    try:
        from _harness import environment
        result["environment"] = environment()
    except Exception:  # noqa: BLE001 - the environment is a nicety
        pass
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(result, indent=1) + "\n")
    for name, row in (("SRNN", srnn), ("LSTM", lstm)):
        e = row["efficiency"]
        print(f"{name}: test {100 * row['test_accuracy']:.2f} %, {e['spikes']:.0f} spikes, {e['synops']:.4g} SynOps,"
              f" {e['macs']:.4g} MACs, {e['flops']:.4g} FLOPs per sample ({e['steps']} steps), "
              f"{row['energy_pj_45nm'] / 1e3:.1f} nJ (45 nm convention)")
    print(f"LSTM MACs / SRNN SynOps = {result['ratio_macs_per_synop']:.1f}; FLOPs ratio {result['ratio_flops']:.1f}; "
          f"energy ratio (45 nm) {result['ratio_energy_45nm']:.1f}; wrote {args.json_out}")
    return result


if __name__ == "__main__":
    main()
