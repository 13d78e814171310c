"""Data-parallel training (braincore.training.distributed, Trainer(distributed=...)) and parallel RL seeds
(tasks.rl.parallel), with real gloo process groups spawned on this machine (``init_method file://`` in
``tmp_path``).

**Why ``1e-12``.** In one process the gradient is the mean over the global batch of ``G`` samples; with ``W``
processes each rank takes the mean over its ``G / W`` samples and DDP averages those means, which is the same
number summed in another order. The runs below use float64, where the relative rounding of a sum is ~1e-16 per
operation; after ~12 Adam steps on O(1) parameters the differences stay many orders of magnitude under 1e-12
(Adam's update ``m / sqrt(v)`` is scale-free, so a relative change of the gradient of ~1e-15 gives a relative
change of the step of the same order). A spike flips only if a membrane potential lies within ~1e-15 of the
threshold, which these seeds never hit. Runs on the same number of processes, and every rank within one run,
are compared bit for bit: they perform exactly the same operations.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from braincore.checkpoint import load_checkpoint
from braincore.launch_env import leave_process_group
from braincore.training import distributed as bd
from braincore.training.layers import LeakyReadout, LIFLayer
from braincore.training.losses import ClassificationLoss, RateRegularizer
from braincore.training.models import SpikingClassifier
from braincore.training.trainer import LRSchedule, Trainer

N, G, EPOCHS = 63, 12, 2   # 6 batches per epoch: 5 of 12 and a last one of 3 (split 2 + 1 over 2 ranks)
TOL = 1e-12


def _problem(n: int = N, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Three classes of spike probabilities [n, T=10, 8] (float64): class k drives channels 2k..2k+2."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    p = torch.full((n, 10, 8), 0.08, dtype=torch.float64)
    for k in range(3):
        p[y == k, :, 2 * k:2 * k + 3] = 0.6
    return p, y


def _rate64(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """A stochastic encoder drawing from the trainer's generator: [B, T, N] probabilities -> [T, B, N] spikes."""
    return (torch.rand(x.shape, generator=gen, dtype=torch.float64) < x).to(torch.float64).transpose(0, 1)


def _trainer(path: Path, batch_size: int = G, **kw) -> Trainer:
    torch.manual_seed(0)
    model = SpikingClassifier([LIFLayer(8, 16, recurrent=True, learn_tau=True, init_gain=2.0)],
                              LeakyReadout(16, 3)).double()
    loss = ClassificationLoss("membrane", reduce="max", regularizer=RateRegularizer(upper=0.3))
    return Trainer(model, loss, optimizer="adamw", lr=0.02, weight_decay=0.01, schedule=LRSchedule("cosine", warmup=2),
                   batch_size=batch_size, transform=_rate64, seed=3, grad_clip=0.5, checkpoint_path=path,
                   progress=False, log=lambda line: None, **kw)


def _params(trainer: Trainer) -> dict:
    return {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


def _max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def _worker(rank: int, world: int, init_file: str, out: str) -> None:
    """One rank: a straight run, a run stopped at step 7 and a resume from its checkpoint, the divisibility
    error; its results go to ``out/rank<r>.pt``."""
    torch.set_num_threads(1)
    out_dir = Path(out)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        data = _problem()
        results: dict = {}
        straight = _trainer(out_dir / "straight.ckpt")
        assert straight.world_size == world and straight.network is not straight.model  # wrapped in DDP
        shards: list = []   # the batch size of every training forward of this rank
        straight.model.layers[0].register_forward_hook(
            lambda module, args, out: shards.append(args[0].shape[1]) if module.training else None)
        straight.fit(data, EPOCHS, validation=_problem(30, seed=1))
        results["straight"] = _params(straight)
        results["history"] = straight.history
        results["shards"] = shards
        results["evaluation"] = straight.evaluate(_problem(25, seed=2))
        part = _trainer(out_dir / "part.ckpt")
        part.fit(data, EPOCHS, max_steps=7)
        again = _trainer(out_dir / "again.ckpt")
        assert again.resume(out_dir / "part.ckpt")
        again.fit(data, EPOCHS, validation=_problem(30, seed=1))
        results["resumed"] = _params(again)
        results["steps"] = (straight.step, part.step, again.step)
        if world > 1:
            try:
                _trainer(out_dir / "bad.ckpt", batch_size=G + 1)
            except ValueError as err:
                results["error"] = str(err)
        torch.save(results, out_dir / f"rank{rank}.pt")
    finally:
        leave_process_group()


def _spawn(world: int, tmp_path: Path) -> list[dict]:
    out = tmp_path / f"w{world}"
    out.mkdir()
    mp.spawn(_worker, args=(world, str(tmp_path / f"pg_init_{world}"), str(out)), nprocs=world, join=True)
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(world)]


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> dict:
    """The same training in this process alone (no process group)."""
    path = tmp_path_factory.mktemp("single")
    trainer = _trainer(path / "single.ckpt")
    assert trainer.dist is None and trainer.world_size == 1
    trainer.fit(_problem(), EPOCHS, validation=_problem(30, seed=1))
    return {"params": _params(trainer), "history": trainer.history, "step": trainer.step,
            "evaluation": trainer.evaluate(_problem(25, seed=2))}


def _without_timings(history: list) -> list:
    """The history without its wall-clock entries (each process measures its own; no test compares timings)."""
    return [{k: v for k, v in entry.items() if k != "train_seconds"} for entry in history]


def _same_history(a: list, b: list) -> None:
    assert len(a) == len(b) == EPOCHS
    for ha, hb in zip(_without_timings(a), _without_timings(b)):
        for key in ha:
            assert ha[key] == pytest.approx(hb[key], abs=2e-6), key


def test_two_gloo_processes_train_like_one_with_the_same_global_batch(tmp_path, single):
    ranks = _spawn(2, tmp_path)
    r0, r1 = ranks
    # each rank trained on its own share of every global batch (12 = 6 + 6; the last batch 3 = 2 + 1)
    assert r0["shards"] == [6, 6, 6, 6, 6, 2] * EPOCHS and r1["shards"] == [6, 6, 6, 6, 6, 1] * EPOCHS
    # every rank holds bitwise the same parameters
    for key in r0["straight"]:
        assert torch.equal(r0["straight"][key], r1["straight"][key]), key
    # and they equal one process with the same global batch, to float64 summation-order rounding
    assert r0["steps"][0] == single["step"] == EPOCHS * 6
    diff = _max_diff(r0["straight"], single["params"])
    print(f"max |2 processes - 1 process| = {diff:.3g}")
    assert diff < TOL, diff
    assert _max_diff(single["params"], _params(_trainer(tmp_path / "x.ckpt"))) > 1e-3  # training moved them
    # statistics and evaluations are reduced over ranks: the whole global batch's
    _same_history(r0["history"], single["history"])
    assert _without_timings(r0["history"]) == _without_timings(r1["history"])
    assert r0["evaluation"]["samples"] == 25
    assert r0["evaluation"]["accuracy"] == single["evaluation"]["accuracy"]
    assert r0["evaluation"]["loss"] == pytest.approx(single["evaluation"]["loss"], abs=1e-12)
    # the divisibility error, on every rank, before any training
    for r in ranks:
        assert "global batch of 13 samples cannot be split evenly over 2 processes" in r["error"]
    # a checkpoint of the 2-process run (stopped after step 7) resumed on 2 processes: bit for bit
    assert r0["steps"] == (12, 7, 12)
    for key in r0["straight"]:
        assert torch.equal(r0["resumed"][key], r0["straight"][key]), key
    on_disk = load_checkpoint(tmp_path / "w2" / "part.ckpt")
    assert on_disk["position"] == {"epoch": 1, "batch": 1, "step": 7}
    assert on_disk["world_size"] == 2 and len(on_disk["rank_rng"]) == 2
    # ... and resumed by one process: the single-process result, to rounding
    alone = _trainer(tmp_path / "alone.ckpt")
    assert alone.resume(tmp_path / "w2" / "part.ckpt")
    alone.fit(_problem(), EPOCHS, validation=_problem(30, seed=1))
    assert _max_diff(_params(alone), single["params"]) < TOL


def test_world_size_one_is_the_single_process_run(tmp_path, single):
    (r0,) = _spawn(1, tmp_path)
    assert r0["shards"] == [12, 12, 12, 12, 12, 3] * EPOCHS
    # DDP over one process averages one gradient: the same operations as no DDP at all
    for key in r0["straight"]:
        assert torch.equal(r0["straight"][key], single["params"][key]), key
    _same_history(r0["history"], single["history"])


# ------------------------------------------------------------------------------------------ helpers
def test_shards_are_consecutive_and_cover_the_batch():
    assert [bd.shard_bounds(12, r, 2) for r in range(2)] == [(0, 6), (6, 12)]
    assert [bd.shard_bounds(7, r, 3) for r in range(3)] == [(0, 3), (3, 5), (5, 7)]
    x = torch.arange(12)
    assert torch.cat([bd.shard(x, r, 4) for r in range(4)]).tolist() == list(range(12))
    with pytest.raises(ValueError, match="cannot be shared by 3 processes"):
        bd.shard_bounds(2, 0, 3)
    assert bd.check_global_batch(128, 4) == 32
    with pytest.raises(ValueError, match="choose a multiple of 3 .e.g. 9 or 12."):
        bd.check_global_batch(10, 3)


def test_without_a_process_group(monkeypatch, tmp_path):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert not bd.is_distributed() and bd.rank() == 0 and bd.world_size() == 1 and bd.is_main_process()
    assert bd.init_from_environment() is None
    assert bd.all_reduce_sum([1, 2.5]) == [1.0, 2.5] and bd.gather_objects("a") == ["a"]
    with pytest.raises(ValueError, match="distributed=True but no torch.distributed process group"):
        _trainer(tmp_path / "x.ckpt", distributed=True)
    with pytest.raises(ValueError, match="RANK, WORLD_SIZE not set; launch with torchrun"):
        bd.init_distributed()
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="not an integer"):
        bd.environment_world_size()


# ------------------------------------------------------------------------------------------ RL: parallel seeds
TINY_CARTPOLE = """\
kind: rl_agent
name: tiny
seed: 4
env: {id: CartPole-v1}
agent: gradient
encoder: {neurons_per_dim: 4, obs_low: [-2.4, -3.0, -0.21, -3.5], obs_high: [2.4, 3.0, 0.21, 3.5]}
gradient: {hidden: [16], steps: 4, total_steps: 256, num_envs: 2, rollout: 64, epochs: 2, minibatches: 2}
evaluation: {episodes: 3, parallel: 3, target: 12}
threads: 1
"""
# the summary entries that depend on the seed only (not on timings or file names)
RESULT_KEYS = ("seed", "train_episodes", "train_steps", "final_train_return_100", "eval_return_mean",
               "eval_return_min", "solved")


def _tiny_config(tmp_path: Path, extra: str = "") -> dict:
    from braincore.config import load_config

    path = tmp_path / f"tiny.{os.getpid()}.yaml"    # one file per process: ranks never read a half-written one
    path.write_text(TINY_CARTPOLE + extra)
    return load_config(path)[1]


def _rl_worker(rank: int, world: int, init_file: str, tmp: str) -> None:
    from tasks.rl.task import run

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        summary = run(_tiny_config(Path(tmp)), {"out": str(Path(tmp) / "out"), "no_plot": True})
        (Path(tmp) / f"rl_rank{rank}.json").write_text(json.dumps(summary))
    finally:
        leave_process_group()


def _results(summary: dict) -> list:
    return [{k: s.get(k) for k in RESULT_KEYS} for s in summary["per_seed"]]


def test_parallel_rl_seeds_under_a_process_group_and_spawned_locally(tmp_path, capsys):
    from tasks.rl.task import run, run_single

    mp.spawn(_rl_worker, args=(2, str(tmp_path / "pg_rl"), str(tmp_path)), nprocs=2, join=True)
    combined = json.loads((tmp_path / "rl_rank0.json").read_text())
    assert combined["task"] == "rl_agent_seeds" and combined["launcher"] == "torchrun"
    assert combined["processes"] == 2 and combined["seeds"] == [4, 5] and combined["failed"] == []
    seeds = combined["per_seed"]
    assert [s["seed"] for s in seeds] == [4, 5] and seeds[0]["train_steps"] == seeds[1]["train_steps"] == 256
    assert _results(combined)[0] != _results(combined)[1]          # two different seeds, two different runs
    for s in seeds:                                                   # each seed its own checkpoint and log
        assert Path(s["checkpoint"]).name == f"tiny_seed{s['seed']}.ckpt" and Path(s["log"]).is_file()
    assert combined["reached_target"] == sum(s["solved"] for s in seeds)
    mean = sum(s["eval_return_mean"] for s in seeds) / 2
    assert combined["eval_return_mean_over_seeds"] == pytest.approx(mean, abs=1e-3)
    other = json.loads((tmp_path / "rl_rank1.json").read_text())
    assert other["rank"] == 1 and [s["seed"] for s in other["per_seed"]] == [5]

    # seed 5 alone, in this process: the same run as rank 1's
    threads = torch.get_num_threads()
    try:
        alone = run_single({**_tiny_config(tmp_path), "seed": 5, "progress": False},
                           {"out": str(tmp_path / "alone"), "no_plot": True})
        assert {k: alone.get(k) for k in RESULT_KEYS} == _results(combined)[1]

        # seeds: 2 without torchrun: two processes spawned here give the same per-seed results
        capsys.readouterr()
        local = run(_tiny_config(tmp_path, "seeds: 2\n"), {"out": str(tmp_path / "local"), "no_plot": True})
    finally:
        torch.set_num_threads(threads)
    assert local["launcher"] == "local" and local["seeds"] == [4, 5]
    assert _results(local) == _results(combined)
    printed = capsys.readouterr().out.strip().splitlines()
    assert json.loads(printed[-1])["seeds"] == [4, 5] and printed[1].startswith("  seed 4: evaluation mean")
