"""bench/propagation_probe.py: the line it prints for a class's rows, counted by hand."""

from __future__ import annotations

import numpy as np
from propagation_probe import describe


def test_describe_counts_where_the_watched_class_went() -> None:
    truth = np.array([7, 7, 7, 7, 2, 2])
    predicted = np.array([7, 2, 2, 9, 2, 7])
    line = describe("vote", predicted, truth, watched=7)
    # 2 of 6 rows right; 1 of the 4 sevens kept; two went to 2, one to 9
    assert line == "vote:  33.3 % right, 7s kept  25.0 % (others to 2: 2, 9: 1)"


def test_describe_says_none_when_every_watched_row_is_kept() -> None:
    line = describe("p", np.array([7, 1]), np.array([7, 2]), watched=7)
    assert line.endswith("7s kept 100.0 % (others to none)")
