"""Half-labeled batches: a pass over the unlabeled rows, each batch topped up with labeled rows."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from gmvae.errors import ConfigError


class SemiSupervisedBatchSampler(torch.utils.data.Sampler[list[int]]):
    """Yields index lists ``[unlabeled..., labeled...]`` into one train dataset.

    An epoch is one pass over ``unlabeled`` in a fresh permutation; every batch
    gets ``labeled_batch_size`` rows drawn at random from ``labeled`` (without
    replacement when there are enough). Randomness comes from ``(seed, epoch)``
    alone, so a resumed run draws the same batches. Under DDP each rank takes
    every ``world_size``-th unlabeled row of the shared permutation (disjoint
    shards) and its own labeled draw.

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
        self.epoch = 0
        self._yielded = 0  # batches of the current pass handed out so far
        self._resume: tuple[int, int] | None = None  # (epoch, batches to skip)

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at the start of every epoch (through :attr:`sampler`)."""
        self.epoch = epoch

    @property
    def sampler(self) -> SemiSupervisedBatchSampler:
        """Lightning calls ``set_epoch`` on ``batch_sampler.sampler`` (not on a batch sampler
        itself) at every epoch start; without this alias every epoch would repeat epoch 0."""
        return self

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "batches_done": self._yielded}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._resume = (int(state["epoch"]), int(state["batches_done"]))

    def _shard_size(self) -> int:
        return len(self.unlabeled) // self.world_size  # equal shards: ranks step in lock-step

    def __len__(self) -> int:
        return -(-self._shard_size() // self.unlabeled_batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        shared = _generator(self.seed, self.epoch)
        perm = self.unlabeled[torch.randperm(len(self.unlabeled), generator=shared)]
        shard = perm[self.rank :: self.world_size][: self._shard_size()]
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


def _generator(*key: int) -> torch.Generator:
    """A torch generator seeded from a tuple of ints, the same in every process."""
    state = np.random.SeedSequence(list(key)).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state))
