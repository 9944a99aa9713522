"""What ``--model.fast_kernels`` changes, kernel by kernel: median milliseconds per call.

The encoder's last convolution and the decoder's first transposed convolution (forward
+ backward, batch 200, bf16 autocast, channels-last, as in training) with and without
their matmul path, and one Adam step over the model's parameters, fused and looped.

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
from gmvae.model.gmvae import GMVAE
from gmvae.model.networks import FullExtentConv2d, FullExtentConvTranspose2d

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="mnist")
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = GMVAE(SHAPES[args.shape], 10, NetworkConfig()).to(memory_format=torch.channels_last)
    print(f"{torch.get_num_threads()} threads, batch {args.batch}, {args.shape} shapes")
    for layer in model.modules():
        if isinstance(layer, FullExtentConv2d):
            shape = (args.batch, layer.in_channels, *layer.kernel_size)
        elif isinstance(layer, FullExtentConvTranspose2d):
            shape = (args.batch, layer.in_channels, 1, 1)
        else:
            continue
        x = torch.randn(shape).contiguous(memory_format=torch.channels_last).requires_grad_()
        timed = {}
        for as_matmul in (False, True):
            layer.as_matmul = as_matmul
            timed[as_matmul] = median_ms(forward_backward(layer, x), args.repeats)
        print(
            f"{type(layer).__name__} {tuple(layer.weight.shape)}: convolution "
            f"{timed[False]:.2f} ms, matmul {timed[True]:.2f} ms ({timed[False] / timed[True]:.1f}x)"
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
