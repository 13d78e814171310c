"""Tasks built from braincore and regions: perception, decision making, reinforcement learning, memory."""
