"""A training run on disk: its directory and resume rules, autosave, RNG state, NaN guard."""
