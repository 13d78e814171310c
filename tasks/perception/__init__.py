"""Perception tasks: image and spike-train classification."""
