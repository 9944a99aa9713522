"""Convolution layers that compute the same maths as PyTorch's with faster kernels, and
:func:`convert_fast_kernels`, which swaps them into the paper's conv stacks.

Seven layers of the conv networks have shapes that oneDNN runs far below the machine's
peak (docs/PERFORMANCE.md, ``python bench/kernels.py``): the encoder's last convolution
and the decoder's first transposed convolution, whose kernels cover their whole input;
the decoder's last transposed convolution, which makes one (or three) channels from
sixteen; and the weight gradients of the four 4x4 stride-2 layers. Each layer here
subclasses the plain PyTorch layer (same parameters, same state dict, so checkpoints
load either way) and takes the plain path when ``as_matmul`` is off: that is
``model.fast_kernels=false``, the benchmark baseline. :mod:`gmvae.model.networks` builds
the stacks from PyTorch's layers; the swap is a separate step, as
``nn.SyncBatchNorm.convert_sync_batchnorm`` is for batch norm.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gmvae.model.networks import ConvDecoder, ConvEncoder


def _nhwc(t: torch.Tensor) -> bool:
    """True when t's memory is channels-last (and not also plain contiguous, as 1x1 maps are)."""
    return t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous()


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype autocast would run a convolution in (x's own outside autocast)."""
    return torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else x.dtype


class FullExtentConv2d(nn.Conv2d):
    """A convolution whose kernel covers its whole input (1x1 output): the encoder's last layer.

    That shape is a matrix product, and oneDNN's convolution runs it several times slower
    than its matmul (docs/PERFORMANCE.md), so with ``as_matmul`` forward flattens it into
    one. Same map, same parameters and state dict as :class:`torch.nn.Conv2d`; other input
    sizes, and ``as_matmul = False`` (the plain baseline), take the convolution.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__(in_channels, out_channels, kernel_size, bias=False)
        self.as_matmul = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.as_matmul or tuple(x.shape[-2:]) != self.kernel_size:
            return super().forward(x)
        if _nhwc(x):  # flatten both in (H, W, C) order: views, no copies
            x, weight = x.permute(0, 2, 3, 1), self.weight.permute(0, 2, 3, 1)
        else:
            weight = self.weight
        return F.linear(x.flatten(1), weight.flatten(1), self.bias)[:, :, None, None]


class FullExtentConvTranspose2d(nn.ConvTranspose2d):
    """A transposed convolution from a 1x1 input (the decoder's first layer): a matmul too.

    Mirrors :class:`FullExtentConv2d`; the output keeps the weight's memory format.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__(in_channels, out_channels, kernel_size, bias=False)
        self.as_matmul = True

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if not self.as_matmul or tuple(x.shape[-2:]) != (1, 1) or output_size is not None:
            return super().forward(x, output_size)
        c_out, (kh, kw) = self.out_channels, self.kernel_size
        if _nhwc(self.weight):  # (in, kh, kw, out) order gives a channels-last output
            y = x.flatten(1) @ self.weight.permute(0, 2, 3, 1).flatten(1)
            return y.view(-1, kh, kw, c_out).permute(0, 3, 1, 2)
        return (x.flatten(1) @ self.weight.flatten(1)).view(-1, c_out, kh, kw)


# stride, padding, dilation of the two shapes computed here
_STRIDE_1_NO_PADDING = ([1, 1], [0, 0], [1, 1])
_STRIDE_2_PADDING_1 = ([2, 2], [1, 1], [1, 1])


def _conv_backward(
    grad_out: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor,
    geometry: tuple[list[int], ...],
    transposed: bool,
    of_weight: bool,
) -> torch.Tensor:
    """PyTorch's own input (or weight) gradient of a convolution without bias or groups."""
    mask = [not of_weight, of_weight, False]
    grads = torch.ops.aten.convolution_backward(
        grad_out, x, weight, None, *geometry, transposed, [0, 0], 1, mask
    )
    return grads[1] if of_weight else grads[0]


class _Col2imTransposedConv(torch.autograd.Function):
    """conv_transpose2d (stride 1, no padding) as one matmul and k*k shifted adds.

    Forward: every input pixel's C features times the weight's (C, C_out*k*k) matrix give
    its k*k output contributions (in the compute dtype), which are added into place
    (col2im) in at least float32. Backward: the gradient of a transposed convolution is a convolution
    with the same weight, and the weight's gradient is that convolution's weight gradient
    with the roles of input and output swapped; both are oneDNN's fast paths.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        c_out, k = weight.shape[1], weight.shape[-1]
        pixels = x.permute(0, 2, 3, 1).reshape(-1, channels)
        planes = (pixels @ weight.reshape(channels, c_out * k * k)).view(
            batch, height, width, c_out, k, k
        )
        planes = planes.permute(0, 3, 4, 5, 1, 2).contiguous()  # (B, C_out, k, k, H, W)
        out = planes.new_zeros(
            (batch, c_out, height + k - 1, width + k - 1),
            dtype=torch.promote_types(planes.dtype, torch.float32),
        )
        for i in range(k):
            for j in range(k):
                out[:, :, i : i + height, j : j + width] += planes[:, :, i, j]
        ctx.save_for_backward(x, weight)
        return out.contiguous(memory_format=torch.channels_last) if _nhwc(x) else out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        x, weight = ctx.saved_tensors
        grad_out = grad_out.to(x.dtype).contiguous(memory_format=torch.channels_last)
        need_x, need_weight = ctx.needs_input_grad
        grad_x = F.conv2d(grad_out, weight) if need_x else None
        grad_weight = None
        if need_weight:
            # The weight gradient of conv2d(grad_out, weight) given its output gradient x.
            grad_weight = _conv_backward(x, grad_out, weight, _STRIDE_1_NO_PADDING, False, True)
        return grad_x, grad_weight


class Col2imConvTranspose2d(nn.ConvTranspose2d):
    """A stride-1 transposed convolution to few channels: the decoder's last layer.

    oneDNN runs this shape's forward (16 -> 1 channels, 5x5) at about 19 GFLOP/s on the
    development CPU, against 300-500 for the other layers; as one matmul and a col2im,
    forward + backward run 1.4x faster.
    The path is for CPU tensors only (on CUDA the k*k adds would be k*k kernel launches).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__(in_channels, out_channels, kernel_size)
        self.as_matmul = True

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if not self.as_matmul or output_size is not None or x.device.type != "cpu":
            return super().forward(x, output_size)
        dtype = _compute_dtype(x)
        out = _Col2imTransposedConv.apply(x.to(dtype), self.weight.to(dtype))
        return out if self.bias is None else out + self.bias.view(1, -1, 1, 1)


def _block_weight_grad(small: torch.Tensor, big: torch.Tensor) -> torch.Tensor:
    """Weight gradient of a 4x4, stride-2, padding-1 (transposed) convolution, as 4 matmuls.

    For a convolution, ``big`` is its input and ``small`` its output gradient; for a
    transposed one, ``small`` is its input and ``big`` its output gradient. Either way
    dW[s, b, i, j] = sum over n, y, x of small[n, s, y, x] * pad1(big)[n, b, 2y + i, 2x + j].
    Cut into 2x2 blocks, pad1(big) is a stride-1 grid with 4 * C_big features per block, and
    each 2x2 group of taps (i, j) = (2a + di, 2b + dj) becomes one plain matmul of the small
    side against the block grid shifted by (a, b): a view, no im2col copy. The small side is
    padded to the block grid (one zero row and column), so that one shift fits every row.
    """
    n, c_small, h, w = small.shape
    c_big, h_big, w_big = big.shape[1:]
    hb, wb = h_big // 2 + 1, w_big // 2 + 1
    rows = n * hb * wb
    blocks = big.new_empty(rows + wb + 1, 2, 2, c_big)  # (block, di, dj, channel), spare rows
    blocks[rows:] = 0
    grid = blocks[:rows].view(n, hb, wb, 2, 2, c_big)
    grid[:, 0, :, 0] = grid[:, -1, :, 1] = grid[:, :, 0, :, 0] = grid[:, :, -1, :, 1] = 0  # pad
    src = big.permute(0, 2, 3, 1)  # padded row 2 * by + di is row 2 * by + di - 1 of big
    grid[:, 1:, 1:, 0, 0] = src[:, 1::2, 1::2]
    grid[:, 1:, :-1, 0, 1] = src[:, 1::2, 0::2]
    grid[:, :-1, 1:, 1, 0] = src[:, 0::2, 1::2]
    grid[:, :-1, :-1, 1, 1] = src[:, 0::2, 0::2]
    flat = blocks.view(-1, 4 * c_big)
    padded = small.new_empty(c_small, n, hb, wb)  # channel-major: a row-major matmul operand
    padded[:, :, h:] = padded[:, :, :, w:] = 0
    padded[:, :, :h, :w] = small.transpose(0, 1)
    lhs = padded.view(c_small, rows)
    parts = [lhs @ flat[a * wb + b : a * wb + b + rows] for a in (0, 1) for b in (0, 1)]
    grad = torch.stack(parts).view(2, 2, c_small, 2, 2, c_big)  # (a, b, s, di, dj, big)
    return grad.permute(2, 5, 0, 3, 1, 4).reshape(c_small, c_big, 4, 4)


class _HalvingConv(torch.autograd.Function):
    """A 4x4 / stride 2 / padding 1 convolution or transposed convolution: PyTorch's kernels
    for the output and the input gradient, :func:`_block_weight_grad` for the weight's."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, transposed: bool) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.transposed = transposed
        conv = F.conv_transpose2d if transposed else F.conv2d
        return conv(x, weight, None, 2, 1)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        transposed = ctx.transposed
        grad_out = grad_out.to(x.dtype).contiguous(memory_format=torch.channels_last)
        grad_x = grad_weight = None
        if ctx.needs_input_grad[0]:
            grad_x = _conv_backward(grad_out, x, weight, _STRIDE_2_PADDING_1, transposed, False)
        if ctx.needs_input_grad[1]:
            small, big = (x, grad_out) if transposed else (grad_out, x)
            grad_weight = _block_weight_grad(small, big)
        return grad_x, grad_weight, None


def _blocks_pay(x: torch.Tensor) -> bool:
    """Where the block matmuls were measured to beat oneDNN: CPU, two threads or more."""
    return x.device.type == "cpu" and torch.get_num_threads() > 1


class HalvingConv2d(nn.Conv2d):
    """A 4x4 convolution with stride 2 and padding 1 (encoder layers 3 and 4).

    At two threads, oneDNN's bf16 weight gradient for this stride swings between about 5
    and 11 ms per call with the development machine's state, while four matmuls over 2x2
    blocks compute the same gradient in 6-9 ms: a training step 9 % faster in the slow
    state, 2.5 % slower in the fast one (docs/PERFORMANCE.md). At one thread oneDNN's
    kernel is steady and faster (the matmuls made a step 6 % slower), so the matmuls run
    only with two threads or more; CPU tensors only, as for the col2im layer.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels, 4, 2, 1, bias=False)
        self.as_matmul = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        odd = x.shape[-2] % 2 or x.shape[-1] % 2  # the 2x2 blocks need even sizes
        if not self.as_matmul or odd or not _blocks_pay(x):
            return super().forward(x)
        dtype = _compute_dtype(x)
        return _HalvingConv.apply(x.to(dtype), self.weight.to(dtype), False)


class DoublingConvTranspose2d(nn.ConvTranspose2d):
    """The mirror of :class:`HalvingConv2d`: decoder layers 2 and 3."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels, 4, 2, 1, bias=False)
        self.as_matmul = True

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if not self.as_matmul or output_size is not None or not _blocks_pay(x):
            return super().forward(x, output_size)
        dtype = _compute_dtype(x)
        return _HalvingConv.apply(x.to(dtype), self.weight.to(dtype), True)


FAST_LAYERS = (
    FullExtentConv2d,
    FullExtentConvTranspose2d,
    Col2imConvTranspose2d,
    HalvingConv2d,
    DoublingConvTranspose2d,
)


def set_fast_kernels(module: nn.Module, enabled: bool) -> None:
    """Switch ``module``'s layers between the fast kernels and PyTorch's plain ones.

    Besides the layers above, activations run in place when enabled: they follow batch
    norm, whose backward keeps its input rather than its output, so nothing is lost, and
    a whole activation tensor per layer is neither allocated nor written.
    """
    for layer in module.modules():
        if isinstance(layer, FAST_LAYERS):
            layer.as_matmul = enabled
        elif isinstance(layer, (nn.ReLU, nn.LeakyReLU)):
            layer.inplace = enabled


def convert_fast_kernels(module: nn.Module) -> nn.Module:
    """Swap the seven slow-shaped layers of every conv stack in ``module`` for the ones above.

    In each :class:`ConvEncoder`: the 4x4 stride-2 convolutions (``HalvingConv2d``) and the
    last one, whose kernel covers its input (``FullExtentConv2d``). In each
    :class:`ConvDecoder`: the first transposed convolution, from a 1x1 input
    (``FullExtentConvTranspose2d``), the 4x4 stride-2 ones (``DoublingConvTranspose2d``) and
    the last one, to few channels (``Col2imConvTranspose2d``). The fast layers subclass the
    plain ones and add no parameter, so each layer changes class in place: its weights,
    device, memory format and the random generators are untouched, and a layer already
    converted stays as it is. MLP stacks have nothing to swap. Returns ``module``.
    """
    for stack in module.modules():
        if isinstance(stack, ConvEncoder):
            convs = [m for m in stack.modules() if isinstance(m, nn.Conv2d)]
            for conv in convs[:-1]:
                if _is_halving(conv):
                    _swap(conv, HalvingConv2d)
            _swap(convs[-1], FullExtentConv2d)
        elif isinstance(stack, ConvDecoder):
            deconvs = [m for m in stack.modules() if isinstance(m, nn.ConvTranspose2d)]
            for deconv in deconvs[1:-1]:
                if _is_halving(deconv):
                    _swap(deconv, DoublingConvTranspose2d)
            _swap(deconvs[0], FullExtentConvTranspose2d)
            _swap(deconvs[-1], Col2imConvTranspose2d)
    return module


def _is_halving(layer: nn.Conv2d | nn.ConvTranspose2d) -> bool:
    return (layer.kernel_size, layer.stride, layer.padding) == ((4, 4), (2, 2), (1, 1))


def _swap(layer: nn.Module, fast: type[nn.Module]) -> None:
    if type(layer) is fast.__base__:  # a plain layer (a converted one keeps its switch)
        layer.__class__ = fast
        layer.as_matmul = True
