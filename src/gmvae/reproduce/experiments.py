"""The paper's experiments: which config and overrides run each, and the values it reports.

Values from the paper's Tables 1-3 (Section 5).
Table 2's "L_A + L_M" column repeats Table 1; its "L_A only" cells are the Table 1
configs with ``--model.loss.w_metric 0``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Score:
    """A score in ``metrics.json``: how to show it and which way is better."""

    key: str
    label: str
    scale: float  # multiply the stored value by this to get the shown (percent) value
    lower_is_better: bool


SCORES = {
    m.key: m
    for m in (
        Score("test_error", "test error (%)", 1.0, True),
        Score("test_cluster_accuracy", "clustering ACC (%)", 100.0, False),
        Score("test_nmi", "NMI (%)", 100.0, False),
    )
}


@dataclass(frozen=True)
class PaperValue:
    """What the paper reports for one score: a mean over 5 seeds, its std or best seed."""

    score: str  # a key of SCORES
    mean: float | None = None
    std: float | None = None
    best: float | None = None
    source: str = ""

    def text(self) -> str:
        if self.mean is None:
            return "(not in the paper)"
        out = f"{self.mean:.2f}"
        if self.std is not None:
            out += f" ± {self.std:.2f}"
        if self.best is not None:
            out += f" (best {self.best:.2f})"
        return f"{out}, {self.source}" if self.source else out


@dataclass(frozen=True)
class Experiment:
    name: str
    config: str  # a file in configs/
    overrides: tuple[str, ...]
    paper: tuple[PaperValue, ...]
    description: str

    @property
    def clustering(self) -> bool:
        """Scored by clustering ACC and NMI (Table 3): no labels, a k-means baseline beside it."""
        return any(p.score == "test_cluster_accuracy" for p in self.paper)


_L_A_ONLY = ("--model.loss.w_metric", "0")


def _error(mean: float, std: float | None, source: str) -> tuple[PaperValue, ...]:
    return (PaperValue("test_error", mean, std, source=source),)


def _clustering(acc: tuple[float, float], nmi: tuple[float, float]) -> tuple[PaperValue, ...]:
    return (
        PaperValue("test_cluster_accuracy", acc[0], best=acc[1], source="Table 3"),
        PaperValue("test_nmi", nmi[0], best=nmi[1], source="Table 3"),
    )


EXPERIMENTS: dict[str, Experiment] = {
    e.name: e
    for e in (
        Experiment(
            "mnist-100", "mnist-100.yaml", (), _error(1.94, 0.49, "Table 1"), "MNIST, 100 labels"
        ),
        Experiment(
            "fashion-100",
            "fashion-100.yaml",
            (),
            _error(26.88, 0.86, "Table 1"),
            "Fashion-MNIST, 100 labels",
        ),
        Experiment(
            "fashion-100-paper",
            "fashion-100.yaml",
            ("--model.augment_shift", "0"),
            _error(26.88, 0.86, "Table 1"),
            "Fashion-MNIST, 100 labels, the paper's setting (training images not shifted)",
        ),
        Experiment(
            "fashion-1000",
            "fashion-1000.yaml",
            (),
            _error(15.85, 0.69, "Table 1"),
            "Fashion-MNIST, 1000 labels",
        ),
        Experiment(
            "svhn-1000", "svhn-1000.yaml", (), _error(14.78, 0.40, "Table 1"), "SVHN, 1000 labels"
        ),
        Experiment(
            "mnist-100-la",
            "mnist-100.yaml",
            _L_A_ONLY,
            _error(10.16, None, "Table 2, L_A only"),
            "MNIST-100 with the assignment loss only (no metric loss)",
        ),
        Experiment(
            "fashion-100-la",
            "fashion-100.yaml",
            _L_A_ONLY,
            _error(29.98, None, "Table 2, L_A only"),
            "Fashion-100 with the assignment loss only",
        ),
        Experiment(
            "svhn-1000-la",
            "svhn-1000.yaml",
            _L_A_ONLY,
            _error(58.77, None, "Table 2, L_A only"),
            "SVHN-1000 with the assignment loss only",
        ),
        Experiment(
            "mnist-cluster",
            "mnist-cluster.yaml",
            (),
            _clustering((92.46, 97.36), (88.16, 93.44)),
            "MNIST clustering, no labels",
        ),
        Experiment(
            "fashion-cluster",
            "fashion-cluster.yaml",
            (),
            _clustering((55.97, 59.05), (54.55, 57.56)),
            "Fashion-MNIST clustering, no labels",
        ),
        Experiment(
            "digits-demo",
            "digits-demo.yaml",
            (),
            (PaperValue("test_error"),),
            "offline 8x8 digits demo, 50 labels (not in the paper)",
        ),
    )
}
