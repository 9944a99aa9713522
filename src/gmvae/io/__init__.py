"""Files: atomic writes, checkpoints that load without unpickling, model files.

Nothing is imported here, so that :mod:`gmvae.io.atomic` (used by every layer that
writes a file) stays free of the model and of Lightning.
"""
