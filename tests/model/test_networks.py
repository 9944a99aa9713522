import pytest
import torch
from torch import nn

from gmvae.config import NetworkConfig
from gmvae.errors import ConfigError
from gmvae.model import GMVAE
from gmvae.model.fast_kernels import (
    FAST_LAYERS,
    Col2imConvTranspose2d,
    DoublingConvTranspose2d,
    FullExtentConv2d,
    FullExtentConvTranspose2d,
    HalvingConv2d,
    convert_fast_kernels,
    set_fast_kernels,
)
from gmvae.model.networks import ConvDecoder, ConvEncoder

# Every layer's output shape, (C, H, W), documented in docs/ARCHITECTURE.md.
ENCODER_SHAPES = {
    (1, 28, 28): [(16, 24, 24), (32, 20, 20), (64, 10, 10), (128, 5, 5), (100, 1, 1)],
    (3, 32, 32): [(16, 28, 28), (32, 24, 24), (64, 12, 12), (128, 6, 6), (100, 1, 1)],
}
DECODER_SHAPES = {
    (1, 28, 28): [(128, 5, 5), (64, 10, 10), (32, 20, 20), (16, 24, 24), (1, 28, 28)],
    (3, 32, 32): [(128, 6, 6), (64, 12, 12), (32, 24, 24), (16, 28, 28), (3, 32, 32)],
}


def _conv_outputs(net: torch.nn.Module, x: torch.Tensor) -> list[tuple[int, ...]]:
    shapes = []
    for layer in net.net:
        x = layer(x)
        if isinstance(layer, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            shapes.append(tuple(x.shape[1:]))
    return shapes


@pytest.mark.parametrize("shape", list(ENCODER_SHAPES))
def test_conv_encoder_layer_shapes(shape):
    enc = ConvEncoder(shape, 100)
    assert _conv_outputs(enc, torch.rand(2, *shape)) == ENCODER_SHAPES[shape]
    assert enc(torch.rand(2, *shape)).shape == (2, 100)


@pytest.mark.parametrize("shape", list(DECODER_SHAPES))
def test_conv_decoder_layer_shapes(shape):
    dec = ConvDecoder(shape, 150)
    assert _conv_outputs(dec, torch.rand(2, 150)) == DECODER_SHAPES[shape]


@pytest.mark.parametrize(
    "shape,fsz,gsz,network",
    [
        ((1, 28, 28), 100, 100, "conv"),
        ((1, 28, 28), 200, 50, "conv"),
        ((3, 32, 32), 100, 150, "conv"),
        ((1, 8, 8), 64, 32, "mlp"),
        ((3, 20, 12), 32, 8, "auto"),
    ],
)
def test_gmvae_output_shapes(shape, fsz, gsz, network):
    model = GMVAE(shape, 10, NetworkConfig(network=network, feature_size=fsz, latent_size=gsz))
    out = model(torch.rand(5, *shape), temperature=0.5)
    assert out.features.shape == (5, fsz)
    assert out.logits.shape == out.y.shape == (5, 10)
    for t in (out.z_mean, out.z_var, out.z, out.prior_mean, out.prior_var):
        assert t.shape == (5, gsz)
    assert out.reconstruction.shape == (5, *shape)
    assert (out.z_var > 0).all() and (out.prior_var > 0).all()
    assert model.sample(3, 4).shape == (4, *shape)


def test_eval_mode_is_deterministic():
    model = GMVAE((1, 28, 28), 10, NetworkConfig()).eval()
    x = torch.rand(3, 1, 28, 28)
    a, b = model(x), model(x)
    torch.testing.assert_close(a.reconstruction_logits, b.reconstruction_logits)
    torch.testing.assert_close(a.y, torch.softmax(a.logits, -1))


def test_standard_prior_is_unit_normal():
    model = GMVAE((1, 8, 8), 3, NetworkConfig(prior="standard", latent_size=4))
    out = model(torch.rand(2, 1, 8, 8))
    assert (out.prior_mean == 0).all() and (out.prior_var == 1).all()


def test_conv_rejects_unsupported_sizes():
    with pytest.raises(ConfigError, match="network: mlp"):
        GMVAE((1, 20, 20), 10, NetworkConfig(network="conv"))
    with pytest.raises(ConfigError, match="auto, conv, mlp"):
        NetworkConfig(network="resnet")


def _outputs_and_grads(
    net: torch.nn.Module, x: torch.Tensor
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    net.zero_grad()
    y = net(x)
    y.square().sum().backward()
    return y.detach(), [p.grad.clone() for p in net.parameters()]


@pytest.mark.parametrize("shape", list(ENCODER_SHAPES))
@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_fast_layers_match_the_plain_convolutions(shape, memory_format, two_threads):
    """The fast paths are kernel choices: outputs and gradients equal the plain layers'."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(ConvEncoder(shape, 100), ConvDecoder(shape, 100)).double()
    net.to(memory_format=memory_format)
    convert_fast_kernels(net)
    x = torch.rand(4, *shape, dtype=torch.float64).contiguous(memory_format=memory_format)
    fast_layers = [m for m in net.modules() if isinstance(m, FAST_LAYERS)]
    # the encoder's last three convs, every transposed conv of the decoder
    assert len(fast_layers) == 7
    activations = [m for m in net.modules() if isinstance(m, (torch.nn.ReLU, torch.nn.LeakyReLU))]
    fast, plain = [], []
    for enabled, out in ((True, fast), (False, plain)):
        set_fast_kernels(net, enabled)
        assert all(m.as_matmul is enabled for m in fast_layers)
        assert all(m.inplace is enabled for m in activations)
        out += _outputs_and_grads(net, x)
    torch.testing.assert_close(fast[0], plain[0], rtol=1e-10, atol=1e-12)
    for a, b in zip(fast[1], plain[1], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)
    assert fast[0].is_contiguous(memory_format=memory_format)


@pytest.mark.parametrize("channels", [1, 3])
def test_col2im_transposed_conv_under_bf16_autocast(channels):
    """In training's precision the col2im path is about as close to float64 as oneDNN's own
    kernel: its k*k contributions are rounded to bfloat16 one by one, then summed in float32."""
    torch.manual_seed(0)
    layer = Col2imConvTranspose2d(16, channels, 5).to(memory_format=torch.channels_last)
    x = torch.randn(8, 16, 24, 24).contiguous(memory_format=torch.channels_last)
    exact = torch.nn.functional.conv_transpose2d(
        x.bfloat16().double(), layer.weight.bfloat16().double(), layer.bias.double()
    )
    errors = {}
    for enabled in (True, False):
        layer.as_matmul = enabled
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = layer(x)
        errors[enabled] = (out.double() - exact).abs().mean().item()
    assert out.shape == exact.shape == (8, channels, 28, 28)
    assert errors[True] < 1.5 * errors[False]  # measured: 1.15-1.2x for 1 and 3 channels


def test_stride_2_layers_use_their_block_matmuls_only_with_two_threads_or_more(two_threads):
    conv = HalvingConv2d(3, 4)
    x = torch.rand(2, 3, 8, 8, requires_grad=True)
    assert type(conv(x).grad_fn).__name__ == "_HalvingConvBackward"
    torch.set_num_threads(1)
    assert type(conv(x).grad_fn).__name__ == "ConvolutionBackward0"


def test_full_extent_layers_keep_the_state_dict_of_plain_convolutions():
    """Checkpoints from before the matmul path load unchanged."""
    enc = ConvEncoder((1, 28, 28), 100)
    plain = torch.nn.Conv2d(128, 100, 5, bias=False)
    assert enc.net[12].state_dict().keys() == plain.state_dict().keys()
    assert enc.net[12].weight.shape == plain.weight.shape


def test_full_extent_conv_falls_back_to_the_convolution_on_other_input_sizes():
    torch.manual_seed(0)
    conv = FullExtentConv2d(3, 4, 5)
    x = torch.rand(2, 3, 7, 7)  # larger than the kernel: a 3x3 output
    torch.testing.assert_close(conv(x), torch.nn.functional.conv2d(x, conv.weight))


def test_xavier_init_draws_every_weight_xavier_normal_with_zero_biases():
    torch.manual_seed(0)
    model = GMVAE((1, 28, 28), 10, NetworkConfig(network="conv", init="xavier"))
    layers = [
        m for m in model.modules() if isinstance(m, nn.Linear | nn.Conv2d | nn.ConvTranspose2d)
    ]
    assert len(layers) > 10
    for layer in layers:
        fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(layer.weight)
        expected = (2.0 / (fan_in + fan_out)) ** 0.5
        assert abs(layer.weight.std().item() / expected - 1) < 0.2, layer
        assert layer.bias is None or (layer.bias == 0).all()
    default = GMVAE((1, 28, 28), 10, NetworkConfig(network="conv"))
    assert not (default.q_y[0].bias == 0).all()  # PyTorch's default keeps random biases


@pytest.mark.parametrize("shape", list(ENCODER_SHAPES))
def test_the_stacks_are_plain_layers_and_the_conversion_swaps_seven(shape):
    """networks.py builds Tables 4-5 from PyTorch's layers; convert_fast_kernels swaps the
    seven slow-shaped ones in place: the same parameters, no random draw, idempotent."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(ConvEncoder(shape, 100), ConvDecoder(shape, 100))
    assert not any(isinstance(m, FAST_LAYERS) for m in net.modules())
    params = [id(p) for p in net.parameters()]
    state = {k: v.clone() for k, v in net.state_dict().items()}
    rng = torch.get_rng_state()
    assert convert_fast_kernels(net) is net
    assert torch.equal(torch.get_rng_state(), rng)
    convs = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    assert [type(m) for m in convs] == [
        nn.Conv2d,
        nn.Conv2d,
        HalvingConv2d,
        HalvingConv2d,
        FullExtentConv2d,
        FullExtentConvTranspose2d,
        DoublingConvTranspose2d,
        DoublingConvTranspose2d,
        nn.ConvTranspose2d,
        Col2imConvTranspose2d,
    ]
    set_fast_kernels(net, False)
    convert_fast_kernels(net)  # a converted stack stays as it is, its switch included
    assert [type(m) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))] == [
        type(m) for m in convs
    ]
    assert not any(m.as_matmul for m in net.modules() if isinstance(m, FAST_LAYERS))
    assert [id(p) for p in net.parameters()] == params
    for name, value in net.state_dict().items():
        assert torch.equal(value, state[name]), name
