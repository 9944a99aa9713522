"""The paper's experiments (``experiments``), their results records (``results``) and
``gmvae reproduce`` (``runner``)."""
