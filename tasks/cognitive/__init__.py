"""Cognitive-neuroscience tasks of NeuroGym (Molano-Mazon et al. 2022) for braincore's agents and region models:
the ``neurogym`` config kind (:mod:`tasks.cognitive.neurogym_tasks`)."""
