"""Whole-brain and cortical-circuit simulations measured against published models (the Potjans & Diesmann
microcircuit: ``kind: microcircuit``)."""
