import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gmvae.data import SemiSupervisedBatchSampler, balanced_labeled_subset, train_val_split
from gmvae.data.sampler import eval_shard
from gmvae.errors import ConfigError

LABELS = np.repeat(np.arange(10), 50)  # 500 rows, 50 per class


def test_split_is_stratified_disjoint_and_seeded():
    train, val = train_val_split(LABELS, 0.2, seed=3)
    assert len(train) == 400 and len(val) == 100 and not set(train) & set(val)
    assert np.bincount(LABELS[val]).tolist() == [10] * 10
    again, _ = train_val_split(LABELS, 0.2, seed=3)
    other, _ = train_val_split(LABELS, 0.2, seed=4)
    assert (again == train).all() and not (other == train).all()


def test_labeled_subset_is_balanced_within_train_and_seeded():
    train, val = train_val_split(LABELS, 0.2, seed=0)
    pos = balanced_labeled_subset(LABELS[train], 30, 10, seed=0)
    assert np.bincount(LABELS[train][pos], minlength=10).tolist() == [3] * 10
    assert not set(train[pos]) & set(val)
    assert (balanced_labeled_subset(LABELS[train], 30, 10, seed=0) == pos).all()
    assert not (balanced_labeled_subset(LABELS[train], 30, 10, seed=1) == pos).all()


@pytest.mark.parametrize("n,match", [(25, "multiple"), (510, "holds only")])
def test_labeled_subset_errors(n, match):
    with pytest.raises(ConfigError, match=match):
        balanced_labeled_subset(LABELS, n, 10, seed=0)


def _sampler(**kw):
    args = dict(unlabeled_batch_size=30, labeled_batch_size=10, seed=0)
    args.update(kw)
    return SemiSupervisedBatchSampler(np.arange(100, 200), np.arange(20), **args)


def test_an_epoch_is_one_pass_over_unlabeled_rows_with_labeled_top_ups():
    sampler = _sampler()
    batches = list(sampler)
    assert len(batches) == len(sampler) == 4
    unlabeled = [i for b in batches for i in b if i >= 100]
    assert sorted(unlabeled) == list(range(100, 200))
    for b in batches:
        lab = [i for i in b if i < 20]
        assert len(lab) == 10 and len(set(lab)) == 10 and b[-10:] == lab


def test_batches_depend_on_seed_and_epoch_only():
    a, b = _sampler(), _sampler()
    assert list(a) == list(b)
    b.set_epoch(1)
    assert list(a) != list(b)
    a.set_epoch(1)
    assert list(a) == list(b)
    assert list(_sampler(seed=1)) != list(_sampler())


def test_labeled_draws_with_replacement_when_batch_exceeds_set():
    s = SemiSupervisedBatchSampler(
        np.arange(10, 20), np.arange(3), unlabeled_batch_size=5, labeled_batch_size=8, seed=0
    )
    assert all(len(b) == 13 for b in s)


def test_ranks_get_disjoint_equal_shards():
    shards = [[i for b in _sampler(rank=r, world_size=3) for i in b if i >= 100] for r in range(3)]
    assert all(len(s) == 33 for s in shards)
    assert not set(shards[0]) & set(shards[1]) and not set(shards[1]) & set(shards[2])


def test_each_epoch_gives_the_ranks_new_disjoint_shards_of_one_permutation():
    for epoch in (0, 1):
        samplers = [_sampler(rank=r, world_size=2) for r in range(2)]
        for s in samplers:
            s.sampler.set_epoch(epoch)  # where Lightning sets it: batch_sampler.sampler
        shards = [[i for b in s for i in b if i >= 100] for s in samplers]
        assert sorted(shards[0] + shards[1]) == list(range(100, 200))
        if epoch == 0:
            first = shards
    assert first != shards
    labeled = [[i for b in _sampler(rank=r, world_size=2) for i in b if i < 20] for r in (0, 1)]
    assert labeled[0] != labeled[1]  # each rank draws its own labeled rows


@given(n=st.integers(1, 500), world=st.integers(1, 9))
def test_eval_shards_partition_the_rows_without_padding(n, world):
    if n < world:
        with pytest.raises(ConfigError, match="cannot give each"):
            eval_shard(n, 0, world)
        return
    shards = [eval_shard(n, r, world) for r in range(world)]
    assert [i for s in shards for i in s] == list(range(n))  # each row once, in order
    sizes = [len(s) for s in shards]
    assert min(sizes) >= 1 and max(sizes) - min(sizes) <= 1


def test_clustering_batches_have_no_labeled_part():
    s = SemiSupervisedBatchSampler(
        np.arange(50), np.arange(0), unlabeled_batch_size=20, labeled_batch_size=0, seed=0
    )
    assert [len(b) for b in s] == [20, 20, 10]


def test_a_single_row_last_batch_is_dropped_without_labeled_rows():
    s = SemiSupervisedBatchSampler(
        np.arange(41), np.arange(0), unlabeled_batch_size=20, labeled_batch_size=0, seed=0
    )
    sizes = [len(b) for b in s]
    assert sizes == [20, 20] and len(s) == 2
    with_labels = SemiSupervisedBatchSampler(
        np.arange(41), np.arange(5), unlabeled_batch_size=20, labeled_batch_size=5, seed=0
    )
    assert [len(b) for b in with_labels] == [25, 25, 6]
