"""gymnasium environments for the agents: vector environments, seeded evaluation, and exact env snapshots.

- :func:`make_vector_env`: ``num_envs`` copies in a :class:`gymnasium.vector.SyncVectorEnv` with
  ``autoreset_mode=SAME_STEP``: when an episode ends, ``step`` returns the first observation of the next episode
  and puts the last observation of the finished one in ``info["final_obs"]`` (so a truncated episode can be
  bootstrapped from its true last state, while a terminated one is not).
- :func:`evaluate`: ``episodes`` episodes with fixed seeds (``seed0, seed0 + 1, ...``), each played to its end by
  a policy function, batched over parallel copies; returns the per-episode returns.
- :func:`snapshot` / :func:`restore`: the dynamic state of every sub-environment (the unwrapped env's plain
  attributes: numpy arrays, numbers, its ``np_random`` bit-generator state, and the ``TimeLimit`` step count) as
  tensors and plain values, so a checkpointed training run resumes the episodes in flight exactly. This covers
  gymnasium's classic-control and toy-text environments, whose state lives in such attributes, and the MuJoCo
  environments, whose physics state (``mj_getState`` with ``mjSTATE_INTEGRATION``: time, positions, velocities,
  actuator activations, warm-start accelerations, controls) is saved and put back with ``mj_setState`` and
  ``mj_forward``. An environment that keeps its state in other objects is not covered.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, SyncVectorEnv

_PLAIN = (bool, int, float, np.integer, np.floating, np.bool_)


def make_env(env_id: str, **kwargs: Any) -> gym.Env:
    """``gym.make(env_id, **kwargs)`` with a clear error for an unknown id."""
    try:
        return gym.make(env_id, **kwargs)
    except gym.error.Error as err:
        raise ValueError(f"gymnasium cannot make {env_id!r}: {err}") from None


def make_vector_env(env_id: str, num_envs: int, env_kwargs: "dict | None" = None) -> SyncVectorEnv:
    kwargs = dict(env_kwargs or {})
    make_env(env_id, **kwargs).close()  # fail early, in the caller's thread, with a clear message
    return SyncVectorEnv([lambda: gym.make(env_id, **kwargs) for _ in range(num_envs)],
                         autoreset_mode=AutoresetMode.SAME_STEP)


def _time_limit(env: gym.Env):
    while isinstance(env, gym.Wrapper):
        if isinstance(env, gym.wrappers.TimeLimit):
            return env
        env = env.env
    return None


def _is_mujoco(base: gym.Env) -> bool:
    return type(getattr(base, "data", None)).__name__ == "MjData" and hasattr(base, "model")


def _mujoco_state(base: gym.Env) -> "list | None":
    """The full integration state of a MuJoCo environment's physics, or None for any other environment."""
    if not _is_mujoco(base):
        return None
    import mujoco

    spec = mujoco.mjtState.mjSTATE_INTEGRATION
    state = np.empty(mujoco.mj_stateSize(base.model, spec))
    mujoco.mj_getState(base.model, base.data, state, spec)
    return state.tolist()


def _set_mujoco_state(base: gym.Env, values: list) -> None:
    import mujoco

    mujoco.mj_setState(base.model, base.data, np.asarray(values, dtype=np.float64),
                       mujoco.mjtState.mjSTATE_INTEGRATION)
    mujoco.mj_forward(base.model, base.data)


def snapshot(vec: SyncVectorEnv) -> list[dict]:
    """The dynamic state of each sub-environment (see the module docstring)."""
    out = []
    for env in vec.envs:
        base = env.unwrapped
        attrs: dict[str, Any] = {}
        for key, value in vars(base).items():
            if key.startswith("_np_random") or key in ("spec", "metadata", "render_mode"):
                continue
            if isinstance(value, np.ndarray) and value.dtype.kind in "fiub":
                attrs[key] = ("array", value.copy())
            elif isinstance(value, _PLAIN):
                attrs[key] = ("plain", value.item() if isinstance(value, np.generic) else value)
            elif value is None:
                attrs[key] = ("none", None)
        limit = _time_limit(env)
        physics = _mujoco_state(base)
        out.append({"physics": physics,
                    "attrs": {k: [kind, v.tolist() if kind == "array" else v, str(v.dtype) if kind == "array"
                                  else None, list(v.shape) if kind == "array" else None]
                              for k, (kind, v) in attrs.items()},
                    "rng": base.np_random.bit_generator.state,
                    "elapsed": None if limit is None else int(limit._elapsed_steps or 0)})
    return out


def restore(vec: SyncVectorEnv, states: Sequence[dict]) -> None:
    """Put back what :func:`snapshot` took (the envs must have been reset once, so their RNGs exist)."""
    if len(states) != len(vec.envs):
        raise ValueError(f"snapshot of {len(states)} environments, vector env has {len(vec.envs)}")
    for env, state in zip(vec.envs, states):
        base = env.unwrapped
        for key, (kind, value, dtype, shape) in state["attrs"].items():
            if kind == "array":
                setattr(base, key, np.asarray(value, dtype=dtype).reshape(shape))
            else:
                setattr(base, key, value)
        base.np_random.bit_generator.state = state["rng"]
        if state.get("physics") is not None:
            _set_mujoco_state(base, state["physics"])
        limit = _time_limit(env)
        if limit is not None and state["elapsed"] is not None:
            limit._elapsed_steps = state["elapsed"]


def evaluate(env_id: str, policy: Callable[[np.ndarray], np.ndarray], episodes: int, seed0: int,
             parallel: int = 20, env_kwargs: "dict | None" = None) -> list[float]:
    """Returns of ``episodes`` episodes seeded ``seed0 + i``, played by ``policy(obs [n, ...]) -> actions [n]``
    (Discrete) or ``[n, D]`` (a Box, in the environment's units),
    ``parallel`` at a time (each copy plays exactly one episode per round; finished copies idle)."""
    returns: list[float] = []
    kwargs = dict(env_kwargs or {})
    while len(returns) < episodes:
        n = min(parallel, episodes - len(returns))
        envs = [gym.make(env_id, **kwargs) for _ in range(n)]
        obs = [env.reset(seed=seed0 + len(returns) + i)[0] for i, env in enumerate(envs)]
        total = np.zeros(n)
        live = np.ones(n, dtype=bool)
        while live.any():
            idx = np.flatnonzero(live)
            actions = policy(np.stack([obs[i] for i in idx]))
            for i, a in zip(idx, actions):
                obs[i], r, term, trunc, _ = envs[i].step(int(a) if np.ndim(a) == 0 else a)
                total[i] += r
                if term or trunc:
                    live[i] = False
        returns.extend(total.tolist())
        for env in envs:
            env.close()
    return returns
