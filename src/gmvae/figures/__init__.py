"""The paper's figures: arrays from a model or a run (``arrays``), plots (``plotting``), and
the ``gmvae generate / embed / reconstruct / curves`` commands."""
