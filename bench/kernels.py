"""What ``--model.fast_kernels`` changes, kernel by kernel: median milliseconds per call.

Every layer with a fast path (docs/PERFORMANCE.md), forward + backward at the input it
gets in training (captured from a forward pass; batch 200, bf16 autocast, channels-last),
with and without that path, the two timed in alternating rounds so that both see the
same machine state; then one Adam step over the model's parameters, fused and looped.

    python bench/kernels.py                 # MNIST shapes
    python bench/kernels.py --shape svhn    # 3 x 32 x 32
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from gmvae.config import NetworkConfig
from gmvae.model.fast_kernels import FAST_LAYERS, convert_fast_kernels
from gmvae.model.gmvae import GMVAE

SHAPES = {"mnist": (1, 28, 28), "svhn": (3, 32, 32)}


def median_ms(call: Callable[[], object], repeats: int) -> float:
    for _ in range(5):
        call()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def forward_backward(layer: torch.nn.Module, x: torch.Tensor) -> Callable[[], None]:
    def call() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = layer(x)
        y.float().sum().backward()

    return call


def layer_inputs(model: GMVAE, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Each fast layer's input in a bf16 training forward pass, by module name."""
    seen: dict[str, torch.Tensor] = {}
    hooks = [
        layer.register_forward_pre_hook(
            lambda _, args, name=name: seen.setdefault(name, args[0].detach().clone())
        )
        for name, layer in model.named_modules()
        if isinstance(layer, FAST_LAYERS)
    ]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        model(x.contiguous(memory_format=torch.channels_last), temperature=1.0)
    for hook in hooks:
        hook.remove()
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="mnist")
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = convert_fast_kernels(GMVAE(SHAPES[args.shape], 10, NetworkConfig()))
    model.to(memory_format=torch.channels_last)
    print(f"{torch.get_num_threads()} threads, batch {args.batch}, {args.shape} shapes")
    inputs = layer_inputs(model, torch.rand(args.batch, *SHAPES[args.shape]))
    for name, layer in model.named_modules():
        if not isinstance(layer, FAST_LAYERS):
            continue
        x = inputs[name].requires_grad_()
        timed: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(3):
            for fast in (False, True):
                layer.as_matmul = fast
                timed[fast].append(median_ms(forward_backward(layer, x), args.repeats))
        plain, fast = statistics.median(timed[False]), statistics.median(timed[True])
        print(
            f"{name} {type(layer).__name__} {tuple(layer.weight.shape)}: plain {plain:.2f} ms, "
            f"fast {fast:.2f} ms ({plain / fast:.2f}x)"
        )
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    adam = {
        fused: median_ms(torch.optim.Adam(model.parameters(), 1e-3, fused=fused).step, args.repeats)
        for fused in (None, True)
    }
    print(
        f"Adam step: per-tensor loop {adam[None]:.2f} ms, fused {adam[True]:.2f} ms "
        f"({adam[None] / adam[True]:.1f}x)"
    )


if __name__ == "__main__":
    main()
