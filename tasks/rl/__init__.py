"""Reinforcement learning with spiking agents in gymnasium environments (``kind: rl_agent``): a surrogate-gradient
actor-critic trained by PPO, and a local-rule agent trained by dopamine-modulated STDP with a TD critic."""
