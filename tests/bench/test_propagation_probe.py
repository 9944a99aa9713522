"""bench/propagation_probe.py: the line it prints for a class's rows, counted by hand."""

from __future__ import annotations

import numpy as np
from propagation_probe import describe, whole_set_report


def test_describe_counts_where_the_watched_class_went() -> None:
    truth = np.array([7, 7, 7, 7, 2, 2])
    predicted = np.array([7, 2, 2, 9, 2, 7])
    line = describe("vote", predicted, truth, watched=7)
    # 2 of 6 rows right; 1 of the 4 sevens kept; two went to 2, one to 9
    assert line == "vote:  33.3 % right, 7s kept  25.0 % (others to 2: 2, 9: 1)"


def test_describe_says_none_when_every_watched_row_is_kept() -> None:
    line = describe("p", np.array([7, 1]), np.array([7, 2]), watched=7)
    assert line.endswith("7s kept 100.0 % (others to none)")


def test_whole_set_report_counts_by_class_certainty_and_the_locked_rows() -> None:
    truth = np.array([7, 7, 7, 2, 2, 2])
    predicted = np.array([7, 7, 2, 2, 2, 7])  # row 0 is labeled; rows 2 and 5 wrong
    weight = np.array([1.0, 0.9, 0.1, 0.8, 0.7, 0.2])
    locked = np.array([7, 2, 2, 2, 2, 2])  # the locked model calls rows 1 and 2 a 2
    lines = whole_set_report(predicted, weight, truth, np.array([0]), 7, locked)
    # unlabeled rows 1-5: 3 of 5 right; weighted (0.9 + 0.8 + 0.7) / 2.7
    assert lines[0].startswith("all rows:  60.0 % right, 7s kept  50.0 %")
    assert lines[0].endswith(f"weighted by certainty {100 * 2.4 / 2.7:5.1f} % right")
    assert (
        "class 2:  66.7 % right, certainty of the right 0.750, of the wrong 0.200; most to 7 (1)"
        in lines[1]
    )
    assert (
        "class 7:  50.0 % right, certainty of the right 0.900, of the wrong 0.100; most to 2 (1)"
        in lines[2]
    )
    assert lines[-1].startswith(
        "  2 7s the locked model gets wrong: targets 2: 1, 7: 1; certainty 0.500"
    )
