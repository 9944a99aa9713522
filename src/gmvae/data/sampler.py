"""Half-labeled batches: a pass over the unlabeled rows, each batch topped up with labeled rows."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from gmvae.errors import ConfigError


class UnlabeledShardSampler(torch.utils.data.Sampler[int]):
    """This rank's share of a fresh permutation of the unlabeled rows, per epoch.

    The permutation depends on ``(seed, epoch)`` alone, so a resumed run sees the same
    order; rank r takes every ``world_size``-th row of it (disjoint, equal shards).
    Lightning calls :meth:`set_epoch` at the start of every epoch.
    """

    def __init__(
        self, unlabeled: np.ndarray, *, seed: int, rank: int = 0, world_size: int = 1
    ) -> None:
        if len(unlabeled) < world_size:
            raise ConfigError(
                f"{len(unlabeled)} unlabeled rows cannot be shared by {world_size} ranks"
            )
        self.unlabeled = torch.as_tensor(unlabeled, dtype=torch.long)
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.unlabeled) // self.world_size  # equal shards keep ranks in lock-step

    def __iter__(self) -> Iterator[int]:
        perm = torch.randperm(len(self.unlabeled), generator=_generator(self.seed, self.epoch))
        shard = self.unlabeled[perm][self.rank :: self.world_size][: len(self)]
        return iter(shard.tolist())


class SemiSupervisedBatchSampler(torch.utils.data.Sampler[list[int]]):
    """Yields index lists ``[unlabeled..., labeled...]`` into one train dataset.

    An epoch is one pass over this rank's unlabeled shard (see
    :class:`UnlabeledShardSampler`); every batch gets ``labeled_batch_size`` rows
    drawn at random from ``labeled`` (without replacement when there are enough),
    from a generator seeded by ``(seed, epoch, rank)``. Labeled rows come last, so
    the model can tell the parts apart by count alone.
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
        # Lightning looks for ``batch_sampler.sampler.set_epoch``.
        self.sampler = UnlabeledShardSampler(unlabeled, seed=seed, rank=rank, world_size=world_size)
        self.labeled = torch.as_tensor(labeled, dtype=torch.long)
        self.unlabeled_batch_size = unlabeled_batch_size
        self.labeled_batch_size = labeled_batch_size

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return -(-len(self.sampler) // self.unlabeled_batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        s = self.sampler
        own = _generator(s.seed, s.epoch, s.rank, 1)
        shard = torch.as_tensor(list(s), dtype=torch.long)
        n_lab, m = len(self.labeled), self.labeled_batch_size
        for start in range(0, len(shard), self.unlabeled_batch_size):
            part = shard[start : start + self.unlabeled_batch_size]
            if m == 0:
                yield part.tolist()
                continue
            if m <= n_lab:
                pick = torch.randperm(n_lab, generator=own)[:m]
            else:
                pick = torch.randint(n_lab, (m,), generator=own)
            yield torch.cat([part, self.labeled[pick]]).tolist()


def _generator(*key: int) -> torch.Generator:
    """A torch generator seeded from a tuple of ints, the same in every process."""
    state = np.random.SeedSequence(list(key)).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state))
