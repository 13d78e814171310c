"""Published networks built from braincore's parts, with their own fast engines where it pays.

- :mod:`.diehl_cook`: Diehl & Cook (2015), unsupervised STDP with lateral inhibition and adaptive thresholds.
"""
