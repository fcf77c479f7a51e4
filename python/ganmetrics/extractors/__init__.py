"""Feature extractors. ``digits``: the embedded classifier for the 8x8 digits (features + class probabilities)."""
