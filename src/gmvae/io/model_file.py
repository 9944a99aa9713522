"""Model files safe to share: weights as safetensors, the config to rebuild them as JSON.

``save_model("run/model.safetensors", ...)`` writes ``model.safetensors`` and
``model.json`` beside it; ``load_model`` reads them back without unpickling
anything. Lightning checkpoints (``*.ckpt``) are for resuming one's own runs;
``load_model`` also reads them, with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from safetensors import SafetensorError
from safetensors.torch import load_file, save

from gmvae.config import NetworkConfig, coerce
from gmvae.errors import ConfigError, DataError
from gmvae.io.atomic import atomic_write_bytes, atomic_write_json
from gmvae.io.checkpoint import load_checkpoint_safely
from gmvae.model.fast_kernels import convert_fast_kernels
from gmvae.model.gmvae import GMVAE

FORMAT = "gmvae-model"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ModelCard:
    """What is needed to rebuild a model, plus what makes its outputs readable."""

    image_shape: tuple[int, int, int]
    num_classes: int
    network: NetworkConfig
    class_names: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


def config_path(weights_path: str | os.PathLike) -> Path:
    return Path(weights_path).with_suffix(".json")


def save_model(path: str | os.PathLike, model: GMVAE, card: ModelCard) -> Path:
    """Write ``path`` (safetensors) and its ``.json`` config atomically; returns ``path``."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"{path}: a model file must end in .safetensors")
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write_bytes(path, save(tensors))
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "image_shape": list(card.image_shape),
        "num_classes": card.num_classes,
        "network": asdict(card.network),
        "class_names": list(card.class_names),
        "extra": card.extra,
    }
    atomic_write_json(config_path(path), meta)
    return path


def load_model(path: str | os.PathLike, *, map_location: str = "cpu") -> tuple[GMVAE, ModelCard]:
    """Rebuild a :class:`GMVAE` in eval mode from ``path`` and its ``.json``; no pickle involved.

    A ``.ckpt`` path is read as a Lightning checkpoint of ``gmvae fit`` (any strategy,
    DDP included) instead; its card has no class names.
    """
    path = Path(path)
    if path.suffix == ".ckpt":
        return _load_checkpoint(path, map_location)
    meta_path = config_path(path)
    try:
        meta = json.loads(meta_path.read_text())
    except FileNotFoundError:
        raise DataError(
            f"{meta_path}: missing (a model needs its .json beside the weights)"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{meta_path}: not a readable model config: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise DataError(f"{meta_path}: not a gmvae model config (format {FORMAT!r} expected)")
    card = _card(meta, f"{meta_path}: bad model config")
    try:
        tensors = load_file(path, device=map_location)
    except (OSError, SafetensorError) as exc:
        raise DataError(f"{path}: not a readable safetensors file: {exc}") from None
    return _build(card, tensors, f"{path}: weights do not match {meta_path}"), card


def copy_encoder(target: GMVAE, path: str | os.PathLike) -> None:
    """Load the encoder (x -> x_hat) of the model saved at ``path`` into ``target``'s.

    The encoder is the part whose features the k-NN and metric losses compare, and the
    one part shared by models trained with other latent sizes or class orders (a
    clustering model's categories are not the classes). Raises :class:`ConfigError` when
    the two encoders differ in shape, before anything is trained or written.
    """
    if not Path(path).is_file():
        raise ConfigError(f"model.init_encoder={os.fspath(path)}: no such file")
    source, _ = load_model(path)
    mismatch = _first_mismatch(target.encoder.state_dict(), source.encoder.state_dict())
    if mismatch:
        raise ConfigError(
            f"model.init_encoder={os.fspath(path)}: its encoder does not fit this config's: "
            f"{mismatch} (the encoders must share the network, feature_size and image shape)"
        )
    target.encoder.load_state_dict(source.encoder.state_dict())


def _load_checkpoint(path: Path, map_location: str) -> tuple[GMVAE, ModelCard]:
    checkpoint = load_checkpoint_safely(path, map_location=map_location)
    hparams = checkpoint.get("hyper_parameters", {})
    card = _card(hparams, f"{path}: not a gmvae checkpoint (hyper-parameters)")
    prefix = "model."  # GMVAEModule keeps the network as ``self.model``
    state = {
        k[len(prefix) :]: v for k, v in checkpoint["state_dict"].items() if k.startswith(prefix)
    }
    return _build(card, state, f"{path}: weights do not match its hyper-parameters"), card


def _card(meta: dict[str, Any], error: str) -> ModelCard:
    """A card from a model's JSON or a checkpoint's hyper-parameters (same keys)."""
    try:
        return ModelCard(
            image_shape=tuple(int(s) for s in meta["image_shape"]),  # type: ignore[arg-type]
            num_classes=int(meta["num_classes"]),
            network=coerce(NetworkConfig, meta["network"]),
            class_names=tuple(str(c) for c in meta.get("class_names", ())),
            extra=dict(meta.get("extra", {})),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{error}: {exc}") from None


def _build(card: ModelCard, state: dict[str, Any], error: str) -> GMVAE:
    model = convert_fast_kernels(GMVAE(card.image_shape, card.num_classes, card.network))
    mismatch = _first_mismatch(model.state_dict(), state)
    if mismatch:
        raise DataError(f"{error}: {mismatch}")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise DataError(f"{error}: {exc}") from None
    return model.eval()


def _first_mismatch(expected: dict[str, Any], found: dict[str, Any]) -> str | None:
    """One sentence on how the weights differ from the model the config describes:
    torch lists every mismatching tensor, and one is what says which option differs."""
    shapes = [
        (k, tuple(found[k].shape), tuple(v.shape))
        for k, v in expected.items()
        if k in found and tuple(found[k].shape) != tuple(v.shape)
    ]
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    problems = len(shapes) + len(missing) + len(unexpected)
    if not problems:
        return None
    more = f" (and {problems - 1} more difference(s))" if problems > 1 else ""
    if shapes:
        key, got, want = shapes[0]
        return f"{key} has shape {list(got)} in the weights, {list(want)} in the config{more}"
    if missing:
        return f"the weights lack {missing[0]}{more}"
    return f"the weights hold {unexpected[0]}, which the config's model does not have{more}"
