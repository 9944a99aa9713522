"""What the figure commands share: the model and test-set options, and safe output files."""

from __future__ import annotations

import argparse
import io
from collections.abc import Callable
from pathlib import Path

import torch
import yaml
from matplotlib.figure import Figure

from gmvae.data.registry import load_split
from gmvae.errors import ConfigError, DataError
from gmvae.io.atomic import atomic_write_bytes
from gmvae.io.model_file import ModelCard


def add_model_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model", type=Path, help="model.safetensors written by `gmvae fit` (its .json beside it)"
    )


def add_output_arguments(parser: argparse.ArgumentParser, data_suffix: str) -> None:
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        help=f"PNG to write; the data behind it goes beside it as {data_suffix}",
    )
    parser.add_argument("--dpi", type=int, default=100, help="pixels per inch of the PNG")
    parser.add_argument("--force", action="store_true", help="replace existing output files")


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("test set (default: the data set the model was trained on)")
    group.add_argument("--dataset", help="mnist, fashion-mnist, svhn or digits")
    group.add_argument(
        "--config", type=Path, help="a gmvae YAML config (e.g. the run's config.yaml): its data.*"
    )
    group.add_argument("--data-dir", help="folder holding <dataset>/ (as --data.data_dir)")
    group.add_argument(
        "--no-download", action="store_true", help="never fetch missing files from the network"
    )


def _config_data(path: Path) -> dict:
    try:
        config = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"--config {path}: no such file") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"--config {path}: not a readable YAML file: {exc}") from None
    data = config.get("data") if isinstance(config, dict) else None
    return data if isinstance(data, dict) else {}


def load_test_set(
    args: argparse.Namespace, card: ModelCard
) -> tuple[torch.Tensor, torch.Tensor, str]:
    """The official test split the options name: (images, labels, dataset name)."""
    data = _config_data(args.config) if args.config else {}
    dataset = args.dataset or data.get("dataset") or card.extra.get("dataset")
    if not dataset:
        raise ConfigError("the model file does not name its data set: pass --dataset or --config")
    data_dir = args.data_dir or data.get("data_dir")
    download = not args.no_download and bool(data.get("download", True))
    arrays = load_split(dataset, "test", data_dir=data_dir, download=download)
    if arrays.image_shape != card.image_shape:
        raise DataError(
            f"{arrays.source}: images of shape {arrays.image_shape}, but the model expects "
            f"{card.image_shape}"
        )
    return arrays.images, arrays.labels, dataset


def row_names(card: ModelCard) -> list[str]:
    """Category labels: class names when labels trained the model, cluster numbers otherwise."""
    if card.extra.get("num_labeled", 1) == 0 or len(card.class_names) != card.num_classes:
        return [f"cluster {k}" for k in range(card.num_classes)]
    return [f"{k}: {name}" if name != str(k) else name for k, name in enumerate(card.class_names)]


def check_outputs(out: Path, data_suffix: str, *, force: bool) -> Path:
    """The data file's path; refuses a non-PNG name or (without --force) existing files."""
    if out.suffix.lower() != ".png":
        raise ConfigError(f"--out {out}: the figure is written as PNG; give a name ending in .png")
    data_path = out.with_suffix(data_suffix)
    if not force:
        for path in (out, data_path):
            if path.exists():
                raise ConfigError(f"{path} exists; pass --force to replace it")
    return data_path


def write_outputs(
    fig: Figure, out: Path, dpi: int, data_path: Path, write_data: Callable[[io.BytesIO], None]
) -> None:
    """Write the data file, then the PNG, each atomically."""
    buffer = io.BytesIO()
    write_data(buffer)
    atomic_write_bytes(data_path, buffer.getvalue())
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    atomic_write_bytes(out, buffer.getvalue())
    print(
        f"wrote {out} ({fig.get_figwidth() * dpi:.0f}x{fig.get_figheight() * dpi:.0f} px) and {data_path}"
    )
