"""The DataModule: official split -> seeded train/val -> labeled subset -> half-labeled batches."""

from __future__ import annotations

import inspect
import os

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from gmvae.config import FolderConfig, coerce
from gmvae.data.arrays import ImageArrays, IndexedImages, keep_batch
from gmvae.data.folders import FolderListing, FolderSplits, load_folder, scan_folder
from gmvae.data.label_sheet import IndexSheet, positions_in, read_index_sheet
from gmvae.data.locate import locate_files
from gmvae.data.registry import DatasetSpec, get_spec, load_split
from gmvae.data.sampler import SemiSupervisedBatchSampler, StatefulDataLoader, eval_shard
from gmvae.data.split import balanced_labeled_subset, random_labeled_subset, train_val_split
from gmvae.errors import ConfigError, DataError

FOLDER = "folder"  # --data.dataset folder --data.data_dir DIR: the user's own images
LABELED_DRAWS = ("balanced", "random")


class GMVAEDataModule(L.LightningDataModule):
    """Paper protocol (5.1): 80/20 stratified train/val split of the official train set,
    ``num_labeled`` labeled examples (equal per class) from the train part, both fixed by
    the seed; the test set is read only for testing.

    Args:
        dataset: mnist, fashion-mnist, svhn, digits (offline demo) or folder (your images).
        data_dir: a folder holding ``<dataset>/`` with the standard files; for ``folder``,
            the image folder itself (layout in docs/DATA.md).
        download: fetch missing files from the official mirrors (checksums verified).
        num_labeled: labeled examples, a multiple of the number of classes (0: clustering;
            null: every labeled row of the train part, the natural choice for ``folder``).
        unlabeled_batch_size: unlabeled rows per batch (per rank under DDP).
        labeled_batch_size: labeled rows added to every batch (per rank under DDP).
        eval_batch_size: batch size for validation, testing and prediction (per rank
            under DDP, where each rank evaluates its own slice of the set).
        val_fraction: fraction of the official train set kept for validation.
        seed: seed of the split and labeled subset; None takes ``seed_everything``'s.
        folder: image size, channels, labels file, test share and cache of ``folder`` data.
        labeled_draw: how ``num_labeled`` examples are drawn: ``balanced``, the paper's
            equal count per class (which needs the classes of every image), or
            ``random``, uniformly from the train part without looking at the classes,
            as a user who labels what comes first would.
        labeled_indices: a CSV of ``index,label`` rows (the sheet ``gmvae suggest``
            writes, filled in): train with exactly those labeled images of the official
            training split, labeled as the file says (or with the data set's labels
            when the label column is empty); ``num_labeled`` becomes its row count.
    """

    @staticmethod
    def option_defaults(prefix: str = "") -> dict[str, object]:
        """Every option's default, flat ({"labeled_draw": "balanced", ...}): a run made
        before an option existed resumes when that option is at its default."""
        signature = inspect.signature(GMVAEDataModule.__init__).parameters
        return {f"{prefix}{name}": p.default for name, p in signature.items() if name != "self"}

    def __init__(
        self,
        dataset: str = "mnist",
        data_dir: str | None = None,
        download: bool = True,
        num_labeled: int | None = 100,
        unlabeled_batch_size: int = 100,
        labeled_batch_size: int = 100,
        eval_batch_size: int = 1000,
        val_fraction: float = 0.2,
        seed: int | None = None,
        folder: FolderConfig | None = None,
        labeled_draw: str = "balanced",
        labeled_indices: str | None = None,
    ) -> None:
        super().__init__()
        if labeled_draw not in LABELED_DRAWS:
            raise ConfigError(
                f"labeled_draw={labeled_draw!r} is not allowed; choose one of "
                f"{', '.join(LABELED_DRAWS)}"
            )
        if labeled_indices is not None and dataset == FOLDER:
            raise ConfigError(
                "labeled_indices is for the built-in data sets; label folder images in a "
                "labels.csv (--data.folder.labels_file)"
            )
        if labeled_indices is not None and labeled_draw != "balanced":
            raise ConfigError("labeled_indices names the labeled images: drop labeled_draw")
        if num_labeled == 0 and labeled_batch_size > 0:
            raise ConfigError("labeled_batch_size must be 0 when num_labeled is 0 (clustering)")
        if num_labeled is not None and num_labeled > 0 and labeled_batch_size == 0:
            raise ConfigError(f"num_labeled={num_labeled} but labeled_batch_size is 0")
        if folder is not None and dataset != FOLDER:
            raise ConfigError(f"data.folder options are for dataset: folder, not {dataset!r}")
        _check_sizes(dataset, num_labeled, unlabeled_batch_size, labeled_batch_size, val_fraction)
        if eval_batch_size < 1:
            raise ConfigError(f"eval_batch_size={eval_batch_size} must be >= 1")
        self.dataset = dataset
        self.data_dir = data_dir
        self.download = download
        self.num_labeled = num_labeled
        self.unlabeled_batch_size = unlabeled_batch_size
        self.labeled_batch_size = labeled_batch_size
        self.eval_batch_size = eval_batch_size
        self.val_fraction = val_fraction
        self.seed = seed
        self.train_set: ImageArrays | None = None
        self.val_set: ImageArrays | None = None
        self.test_set: ImageArrays | None = None
        self.labeled_index: np.ndarray | None = None  # positions in train_set
        self.folder = coerce(FolderConfig, folder)
        self._listing: FolderListing | None = None
        self._folder_splits: FolderSplits | None = None
        self.spec = self._make_spec()
        self.labeled_draw = labeled_draw
        self.labeled_indices = labeled_indices
        self._sheet: IndexSheet | None = None
        if labeled_indices is not None:
            self._sheet = read_index_sheet(labeled_indices, self.class_names)
            if labeled_batch_size == 0:
                raise ConfigError(f"labeled_indices={labeled_indices} but labeled_batch_size is 0")
            self.num_labeled = len(self._sheet)
        self.train_rows: np.ndarray | None = None  # official train-split index of each row
        self._official_size = 0

    def _make_spec(self) -> DatasetSpec:
        """Shape and class names, known before any image is decoded (the CLI links them)."""
        if self.dataset != FOLDER:
            return get_spec(self.dataset)
        if not self.data_dir:
            raise ConfigError("dataset: folder needs --data.data_dir, the folder of images")
        self._listing = scan_folder(self.data_dir, self.folder.labels_file)
        size, channels = self.folder.image_size, self.folder.channels
        return DatasetSpec(FOLDER, (channels, size, size), self._listing.class_names, {}, None)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.spec.image_shape

    @property
    def num_classes(self) -> int:
        return self.spec.num_classes

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.spec.class_names

    def resolved_seed(self) -> int:
        if self.seed is not None:
            return self.seed
        return int(os.environ.get("PL_GLOBAL_SEED", 0))

    def _load(self, split: str) -> ImageArrays:
        arrays = load_split(self.dataset, split, data_dir=self.data_dir, download=self.download)
        if arrays.image_shape != self.image_shape:
            raise ConfigError(
                f"{arrays.source}: images of shape {arrays.image_shape}, expected {self.image_shape}"
            )
        return arrays

    def _folder(self) -> FolderSplits:
        if self._folder_splits is None:
            assert self.data_dir is not None
            self._folder_splits = load_folder(
                self.data_dir, self.folder, self.val_fraction, listing=self._listing
            )
        return self._folder_splits

    def prepare_data(self) -> None:
        """Find, download or decode the data once per node (Lightning runs this on local
        rank 0 before any rank's ``setup``), so that DDP ranks do not all do it at once."""
        if self.dataset == FOLDER:
            self._folder()  # decode into the cache
            return
        trainer = self.trainer
        fn = trainer.state.fn.value if trainer is not None and trainer.state.fn else "fit"
        # fit also needs the test files: ``gmvae fit`` tests at the end, so check them first.
        splits = {"validate": ("train",), "test": ("test",), "predict": ("test",)}.get(
            fn, ("train", "test")
        )
        for split in splits:
            if self.spec.files.get(split):
                locate_files(
                    self.spec.name,
                    self.spec.files[split],
                    data_dir=self.data_dir,
                    download=self.download,
                )

    def _train_val_sets(self) -> tuple[ImageArrays, ImageArrays]:
        if self.dataset == FOLDER:
            return self._folder().train, self._folder().val
        full = self._load("train")
        train_idx, val_idx = train_val_split(
            full.labels.numpy(), self.val_fraction, self.resolved_seed()
        )
        self.train_rows = train_idx
        self._official_size = len(full)
        return full.subset(train_idx), full.subset(val_idx)

    def _test_set(self) -> ImageArrays:
        if self.dataset != FOLDER:
            return self._load("test")
        test = self._folder().test
        if not len(test):
            raise DataError(
                f"{self.data_dir}: no test images: add a test/ sub-folder or more labeled "
                f"images (folder.test_fraction={self.folder.test_fraction} of them are held out)"
            )
        return test

    def setup(self, stage: str) -> None:
        if stage in ("fit", "validate") and self.train_set is None:
            self.train_set, self.val_set = self._train_val_sets()
            labels = self.train_set.labels.numpy()
            if self.num_labeled is None:  # every labeled row
                self.labeled_index = np.flatnonzero(labels >= 0)
                if len(self.labeled_index) and not self.labeled_batch_size:
                    raise ConfigError(
                        f"the train part has {len(self.labeled_index)} labeled rows but "
                        "labeled_batch_size is 0"
                    )
            elif self._sheet is not None:
                self.labeled_index = self._sheet_positions()
            elif self.labeled_draw == "random":
                self.labeled_index = random_labeled_subset(
                    len(labels), self.num_labeled, self.resolved_seed()
                )
            else:
                self.labeled_index = balanced_labeled_subset(
                    labels, self.num_labeled, self.num_classes, self.resolved_seed()
                )
        if stage in ("test", "predict") and self.test_set is None:
            self.test_set = self._test_set()

    def _sheet_positions(self) -> np.ndarray:
        """The sheet's rows as positions in ``train_set``, which takes the sheet's labels."""
        assert self._sheet is not None and self.train_set is not None
        assert self.train_rows is not None
        seed = self.resolved_seed()
        positions = positions_in(self._sheet, self.train_rows, self._official_size, seed)
        if self._sheet.labels is not None:
            labels = self.train_set.labels.clone()
            labels[torch.from_numpy(positions)] = torch.from_numpy(self._sheet.labels)
            self.train_set = ImageArrays(self.train_set.images, labels, self.train_set.source)
        return np.sort(positions)

    def _rank(self) -> tuple[int, int]:
        trainer = self.trainer
        if trainer is None:
            return 0, 1
        return trainer.global_rank, trainer.world_size

    def train_dataloader(self) -> DataLoader:
        assert self.train_set is not None and self.labeled_index is not None
        n = len(self.train_set)
        is_labeled = np.zeros(n, dtype=bool)
        is_labeled[self.labeled_index] = True
        observed = torch.where(
            torch.from_numpy(is_labeled), self.train_set.labels, torch.full((n,), -1)
        )
        rank, world = self._rank()
        unlabeled = np.flatnonzero(~is_labeled)
        sampler = SemiSupervisedBatchSampler(
            # Every row labeled (supervised use): an epoch is one pass over the labeled rows.
            unlabeled if len(unlabeled) else self.labeled_index,
            self.labeled_index,
            unlabeled_batch_size=self.unlabeled_batch_size,
            labeled_batch_size=self.labeled_batch_size,
            seed=self.resolved_seed(),
            rank=rank,
            world_size=world,
        )
        return StatefulDataLoader(  # resumable mid-epoch: Lightning checkpoints its position
            IndexedImages(self.train_set.images, observed, with_rows=True),
            batch_sampler=sampler,
            collate_fn=keep_batch,
            pin_memory=torch.cuda.is_available(),
            generator=_own_generator(),
        )

    def _eval_loader(self, arrays: ImageArrays | None, *, hide_labels: bool = False) -> DataLoader:
        assert arrays is not None
        # Under DDP each rank evaluates its own slice, without padding: every row counts once
        # in the synchronised metrics (Lightning's DistributedSampler would pad with repeats).
        # The shard is the loader's sampler, so it survives Lightning re-creating the loader
        # for prediction.
        labels = torch.full_like(arrays.labels, -1) if hide_labels else arrays.labels
        return DataLoader(
            IndexedImages(arrays.images, labels),
            sampler=eval_shard(len(arrays), *self._rank()),
            batch_size=self.eval_batch_size,
            collate_fn=keep_batch,
            pin_memory=torch.cuda.is_available(),
            generator=_own_generator(),
        )

    def val_dataloader(self) -> DataLoader:
        # A run without labels (clustering, paper 5.3.1) reads none in validation either:
        # its labels arrive as -1, so model selection can only use the label-free val/loss.
        return self._eval_loader(self.val_set, hide_labels=self.num_labeled == 0)

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader(self.test_set)

    def predict_dataloader(self) -> DataLoader:
        return self._eval_loader(self.test_set)


class ArrayDataModule(GMVAEDataModule):
    """Pre-loaded arrays (``GMVAEClassifier.fit``) through the same loaders and sampler.

    Every labeled row of ``train`` (label >= 0) is used as labeled data; ``val`` serves
    model selection and ``test``, when given, testing.
    """

    def __init__(
        self,
        train: ImageArrays,
        val: ImageArrays,
        class_names: tuple[str, ...],
        *,
        test: ImageArrays | None = None,
        unlabeled_batch_size: int = 100,
        labeled_batch_size: int = 100,
        eval_batch_size: int = 1000,
        seed: int = 0,
    ) -> None:
        self._arrays = (train, val, test)
        self._class_names = tuple(class_names)
        super().__init__(
            dataset="arrays",
            num_labeled=None,
            unlabeled_batch_size=unlabeled_batch_size,
            labeled_batch_size=labeled_batch_size,
            eval_batch_size=eval_batch_size,
            seed=seed,
        )

    def _make_spec(self) -> DatasetSpec:
        return DatasetSpec("arrays", self._arrays[0].image_shape, self._class_names, {}, None)

    def _train_val_sets(self) -> tuple[ImageArrays, ImageArrays]:
        return self._arrays[0], self._arrays[1]

    def _test_set(self) -> ImageArrays:
        if self._arrays[2] is None:
            raise ConfigError("no test arrays were given")
        return self._arrays[2]


def _check_sizes(
    dataset: str, num_labeled: int | None, unlabeled: int, labeled: int, val_fraction: float
) -> None:
    """The checks the sampler and the split make, made when the options are read, before
    ``gmvae fit`` writes anything to the run directory."""
    if num_labeled is not None and num_labeled < 0:
        raise ConfigError(f"num_labeled={num_labeled} must be >= 0 (or null: every label)")
    if unlabeled < 1:
        raise ConfigError(f"unlabeled_batch_size={unlabeled} must be >= 1")
    if labeled < 0:
        raise ConfigError(f"labeled_batch_size={labeled} must be >= 0")
    # A folder's validation split may be empty; the official train sets always give one.
    if dataset == FOLDER and not 0 <= val_fraction < 1:
        raise ConfigError(f"val_fraction={val_fraction!r} must lie in [0, 1)")
    if dataset != FOLDER and not 0 < val_fraction < 1:
        raise ConfigError(f"val_fraction={val_fraction!r} must lie strictly between 0 and 1")


def _own_generator() -> torch.Generator:
    """A DataLoader without a generator draws its base seed from the global torch RNG at
    every ``iter()``; with one it leaves the global stream, which the model's Gumbel and
    reparameterisation noise use, to the training steps alone (exact resume, see
    :class:`gmvae.runs.rng_state.RNGState`). No worker processes use the seed."""
    return torch.Generator().manual_seed(0)
