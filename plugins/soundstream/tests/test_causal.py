"""Causal layers: the channels-last, time-major computation equals plain PyTorch convolutions,
forward and backward, offline and chunk by chunk."""

from __future__ import annotations

import audio_plugin_soundstream.causal as causal
import pytest
import torch
import torch.nn.functional as F
from audio_plugin_soundstream.causal import (
    CausalConv1d,
    CausalConvTranspose1d,
    is_time_major,
    time_major,
)
from audio_plugin_soundstream.seanet import SEANetDecoder, SEANetEncoder
from audio_plugin_soundstream.streaming import StreamingState

CONVS = [  # in, out, kernel, stride, dilation, groups
    (1, 6, 7, 1, 1, 1), (4, 6, 3, 1, 3, 1), (4, 8, 4, 2, 1, 1), (6, 4, 10, 5, 1, 2),
    (4, 4, 1, 1, 1, 1), (3, 5, 8, 8, 1, 1)]


def layouts(x: torch.Tensor) -> list[torch.Tensor]:
    return [x.contiguous(), time_major(x)]


@pytest.mark.parametrize("spec", CONVS, ids=str)
def test_causal_conv_equals_left_padded_conv1d(spec):
    cin, cout, k, s, d, g = spec
    torch.manual_seed(0)
    layer = CausalConv1d(cin, cout, k, stride=s, dilation=d, groups=g).double()
    x = torch.randn(3, cin, 12 * s, dtype=torch.float64)
    pad = (k - 1) * d + 1 - s
    conv = layer.conv
    expected = F.conv1d(F.pad(x, (pad, 0)), conv.weight, conv.bias, s, 0, d, g)
    for inp in layouts(x):
        inp = inp.clone().requires_grad_()
        out = layer(inp)
        assert out.shape == (3, cout, 12) and torch.allclose(out, expected)
        with torch.no_grad():  # inference keeps oneDNN's convolution: the same result
            assert torch.allclose(layer(inp), expected)
        grad = torch.randn_like(out)
        got = torch.autograd.grad(out, [inp, *layer.parameters()], grad)
        ref_inp = x.clone().requires_grad_()
        ref = F.conv1d(F.pad(ref_inp, (pad, 0)), conv.weight, conv.bias, s, 0, d, g)
        want = torch.autograd.grad(ref, [ref_inp, *layer.parameters()], grad)
        for a, b in zip(got, want, strict=True):
            assert torch.allclose(a, b)


@pytest.mark.parametrize("stride", [2, 3, 5])
def test_causal_transposed_conv_keeps_the_first_frames_times_stride(stride):
    torch.manual_seed(0)
    layer = CausalConvTranspose1d(6, 4, 2 * stride, stride).double()
    x = torch.randn(2, 6, 9, dtype=torch.float64)
    conv = layer.conv
    full = F.conv_transpose1d(x, conv.weight, conv.bias, stride)
    for inp in layouts(x):
        out = layer(inp)
        assert torch.allclose(out, full[..., : 9 * stride])


@pytest.mark.parametrize("stride,taps", [(2, 2), (3, 2), (5, 2), (4, 3), (4, 1)])
def test_causal_transposed_conv_gradients_equal_conv_transpose1d(stride, taps):
    """The folded-frame product (kernel = taps * stride) has conv_transpose1d's gradients."""
    torch.manual_seed(0)
    layer = CausalConvTranspose1d(6, 4, taps * stride, stride).double()
    assert layer.folded
    x = torch.randn(2, 6, 9, dtype=torch.float64)
    grad = torch.randn(2, 4, 9 * stride, dtype=torch.float64)
    conv = layer.conv
    for inp in layouts(x):
        inp = inp.clone().requires_grad_()
        with torch.no_grad():
            inference = layer(inp)
        got = torch.autograd.grad(layer(inp), [inp, *layer.parameters()], grad)
        ref_inp = x.clone().requires_grad_()
        full = F.conv_transpose1d(ref_inp, conv.weight, conv.bias, stride)[..., : 9 * stride]
        want = torch.autograd.grad(full, [ref_inp, *layer.parameters()], grad)
        assert torch.allclose(inference, full)
        for a, b in zip(got, want, strict=True):
            assert torch.allclose(a, b)


@pytest.mark.parametrize("layer", [
    CausalConv1d(4, 6, 8, stride=4), CausalConv1d(4, 6, 6, stride=4),
    CausalConvTranspose1d(4, 6, 8, 4), CausalConvTranspose1d(4, 6, 6, 4)],
    ids=["conv-foldable", "conv", "convT-foldable", "convT"])
def test_layers_stream_chunk_by_chunk_with_one_kernel_per_stream(layer, monkeypatch):
    layer = layer.double()
    x = torch.randn(2, 4, 48, dtype=torch.float64)
    offline = layer(x)
    state = StreamingState()
    made = []
    original = causal.kernel_2d
    monkeypatch.setattr(causal, "kernel_2d", lambda conv: made.append(conv) or original(conv))
    chunks = torch.split(x, [8, 16, 4, 20], dim=-1)  # multiples of the conv's stride
    streamed = torch.cat([layer.stream(c, state) for c in chunks], dim=-1)
    assert torch.allclose(streamed, offline)
    assert len(made) == 1  # the (weight-normed) kernel is laid out once, not per chunk


def test_seanet_activations_stay_time_major_so_no_conv_copies_its_input():
    """Every inner convolution of the encoder and decoder gets a time-major input (batch > 1,
    training mode), so none pays a layout copy; only the first conv of each sees an input
    from outside (waveform, latent) in whatever layout it comes."""
    torch.manual_seed(0)
    small = {"dim": 8, "width": 4, "ratios": (2, 3, 4), "lstm_layers": 1}
    enc, dec = SEANetEncoder(**small), SEANetDecoder(**small)
    seen = []

    def check(module, args):
        seen.append((type(module).__name__, is_time_major(args[0])))

    outer = (enc.net[0], dec.head[0])
    for m in [*enc.modules(), *dec.modules()]:
        if isinstance(m, (CausalConv1d, CausalConvTranspose1d)) and m not in outer:
            m.register_forward_pre_hook(check)
    dec(enc(torch.randn(3, 1, 480))).sum().backward()
    assert len(seen) > 10 and all(ok for _, ok in seen), [n for n, ok in seen if not ok]


def test_encoder_and_decoder_outputs_are_plain_contiguous_tensors():
    """The time-major layout stays inside: callers may ``view`` the results."""
    torch.manual_seed(0)
    small = {"channels": 2, "dim": 8, "width": 4, "ratios": (2, 3), "lstm_layers": 1}
    enc, dec = SEANetEncoder(**small), SEANetDecoder(**small)
    latent = enc(torch.randn(3, 2, 120))
    audio = dec(latent)
    assert latent.is_contiguous() and audio.is_contiguous() and audio.shape == (3, 2, 120)
    state = StreamingState()
    assert enc.stream(torch.randn(3, 2, 60), state).is_contiguous()
    assert dec.stream(latent[..., :4], state).is_contiguous()


def test_every_parameter_is_read_inside_the_forward_of_its_own_module():
    """ZeRO-3 gathers a module's parameters in that module's forward hooks only; outside
    them a partitioned parameter is empty. Simulated here for every module of the encoder
    and decoder (weight norm's parametrization is a module of its own), in inference and in
    training: the folded-frame products must read weight and bias inside the conv module,
    not in its causal wrapper."""
    torch.manual_seed(0)
    small = {"dim": 8, "width": 4, "ratios": (2, 4), "lstm_layers": 1}
    enc, dec = SEANetEncoder(**small), SEANetDecoder(**small)
    x = torch.randn(2, 1, 64)
    trained = dec(enc(x)).detach()
    with torch.no_grad():
        expected = dec(enc(x))
        for module in [*enc.modules(), *dec.modules()]:
            own = list(module.parameters(recurse=False))
            if not own:
                continue
            full = [p.data for p in own]

            def gather(mod, args, own=own, full=full):
                for p, data in zip(own, full, strict=True):
                    p.data = data

            def release(mod, args, out, own=own):
                for p in own:
                    p.data = torch.empty(0)

            module.register_forward_pre_hook(gather)
            module.register_forward_hook(release)
            release(module, None, None)
        assert torch.equal(dec(enc(x)), expected)  # inference: convolutions
    assert torch.equal(dec(enc(x)), trained)  # training: folded products
