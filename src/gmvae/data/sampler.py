"""Half-labeled batches: a pass over the unlabeled rows, each batch topped up with labeled rows.

Under DDP every rank builds its own sampler (``rank``, ``world_size``); nothing here
talks to other processes. The unlabeled shard is torch's ``DistributedSampler``, and
:func:`eval_shard` splits a validation or test set so that each row is seen once.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DistributedSampler

from gmvae.errors import ConfigError


class SemiSupervisedBatchSampler(torch.utils.data.Sampler[list[int]]):
    """Yields index lists ``[unlabeled..., labeled...]`` into one train dataset.

    An epoch is one pass over ``unlabeled`` in a fresh permutation; every batch
    gets ``labeled_batch_size`` rows drawn at random from ``labeled`` (without
    replacement when there are enough). Randomness comes from ``(seed, epoch)``
    alone, so a resumed run draws the same batches.

    Under DDP (``world_size`` > 1) each rank takes a disjoint, equal-sized shard of
    the epoch's shared permutation (``self.sampler``, a ``DistributedSampler`` with
    ``drop_last``: up to ``world_size - 1`` rows, different ones each epoch, sit an
    epoch out, so that every rank runs the same number of steps) and draws its own
    labeled rows. The batch sizes are per rank.

    Lightning calls ``set_epoch`` on ``dataloader.batch_sampler.sampler`` (not on the
    batch sampler itself) before every epoch; ``self.sampler`` is that object.

    ``state_dict`` records the epoch and how many batches of it were handed out;
    after ``load_state_dict`` the next pass over that epoch skips them, so a run
    resumed from a mid-epoch checkpoint continues with the very next batch.
    """

    def __init__(
        self,
        unlabeled: np.ndarray,
        labeled: np.ndarray,
        *,
        unlabeled_batch_size: int,
        labeled_batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if unlabeled_batch_size < 1:
            raise ConfigError(f"unlabeled_batch_size={unlabeled_batch_size} must be >= 1")
        if labeled_batch_size < 0:
            raise ConfigError(f"labeled_batch_size={labeled_batch_size} must be >= 0")
        if labeled_batch_size and not len(labeled):
            raise ConfigError("labeled_batch_size > 0 but there are no labeled examples")
        if len(unlabeled) < world_size:
            raise ConfigError(
                f"{len(unlabeled)} unlabeled rows cannot be shared by {world_size} ranks"
            )
        self.unlabeled = torch.as_tensor(unlabeled, dtype=torch.long)
        self.labeled = torch.as_tensor(labeled, dtype=torch.long)
        self.unlabeled_batch_size = unlabeled_batch_size
        self.labeled_batch_size = labeled_batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        # Positions into self.unlabeled: this rank's shard of the epoch's permutation.
        self.sampler = DistributedSampler(
            range(len(self.unlabeled)),
            num_replicas=world_size,
            rank=rank,
            shuffle=True,
            seed=seed,
            drop_last=True,
        )
        self._yielded = 0  # batches of the current pass handed out so far
        self._resume: tuple[int, int] | None = None  # (epoch, batches to skip)

    @property
    def epoch(self) -> int:
        return self.sampler.epoch

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's permutation and labeled draws."""
        self.sampler.set_epoch(epoch)

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "batches_done": self._yielded}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._resume = (int(state["epoch"]), int(state["batches_done"]))

    def _shard_rows(self) -> int:
        """Rows of the shard used per epoch: a last batch of a single row (possible only
        without a labeled part) is dropped, since BatchNorm cannot normalise one row."""
        rows = len(self.sampler)
        if self.labeled_batch_size == 0 and rows % self.unlabeled_batch_size == 1 and rows > 1:
            rows -= 1
        return rows

    def __len__(self) -> int:
        return -(-self._shard_rows() // self.unlabeled_batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        shard = self.unlabeled[torch.tensor(list(self.sampler), dtype=torch.long)]
        shard = shard[: self._shard_rows()]
        own = _generator(self.seed, self.epoch, self.rank, 1)
        skip = 0
        if self._resume is not None and self._resume[0] == self.epoch:
            skip = self._resume[1]
        self._resume = None
        self._yielded = 0
        n_lab, m = len(self.labeled), self.labeled_batch_size
        for start in range(0, len(shard), self.unlabeled_batch_size):
            part = shard[start : start + self.unlabeled_batch_size]
            if m == 0:
                batch = part
            else:
                # Drawn even for skipped batches: the labeled draws stay those of the full pass.
                if m <= n_lab:
                    pick = torch.randperm(n_lab, generator=own)[:m]
                else:
                    pick = torch.randint(n_lab, (m,), generator=own)
                batch = torch.cat([part, self.labeled[pick]])
            self._yielded += 1
            if self._yielded > skip:
                yield batch.tolist()


class StatefulDataLoader(torch.utils.data.DataLoader):
    """A DataLoader that Lightning checkpoints: its state is its batch sampler's.

    Lightning saves ``state_dict()`` of every training loader that has one and
    hands it back on resume, before the first batch is drawn.
    """

    def state_dict(self) -> dict[str, int]:
        return self.batch_sampler.state_dict()

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.batch_sampler.load_state_dict(state)


def eval_shard(num_rows: int, rank: int, world_size: int) -> range:
    """Rows ``[n*rank//W, n*(rank+1)//W)`` of an evaluation set of ``n`` rows for rank ``rank``.

    The W ranges partition ``range(n)`` (the bounds rise from 0 to n), so every row is
    evaluated exactly once and a metric summed over ranks is exact; their sizes differ by
    at most one. Unlike Lightning's ``DistributedSampler`` nothing is padded. Each rank
    needs at least one row, or it would skip the metric synchronisation the others wait in.
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"rank={rank} must lie in [0, {world_size})")
    if num_rows < world_size:
        raise ConfigError(
            f"an evaluation set of {num_rows} rows cannot give each of {world_size} ranks a row"
        )
    return range(num_rows * rank // world_size, num_rows * (rank + 1) // world_size)


def _generator(*key: int) -> torch.Generator:
    """A torch generator seeded from a tuple of ints, the same in every process."""
    state = np.random.SeedSequence(list(key)).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state))
