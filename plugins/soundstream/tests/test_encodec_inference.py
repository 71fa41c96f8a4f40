"""The time-major inference path of the EnCodec-layout networks equals their module path
(the training forward) for every layer option, and is used exactly when it may be."""

from __future__ import annotations

import warnings

import pytest
import torch
from audio_plugin_soundstream import encodec_inference
from audio_plugin_soundstream.encodec import EncodecDecoder, EncodecEncoder
from torch import nn

SMALL = dict(width=4, dim=8, ratios=(2, 4), residual_kernel_size=3, kernel_size=7,
             last_kernel_size=5)

OPTIONS = {
    "24khz": dict(channels=1),
    "48khz": dict(channels=2, causal=False, norm="time_group_norm"),
    "constant pad": dict(channels=1, pad_mode="constant"),
    "two units, no shortcut conv, no lstm": dict(channels=1, residual_layers=2,
                                                 conv_shortcut=False, lstm_layers=0),
    "dilated": dict(channels=1, residual_layers=2, dilation_base=3),
}


def _perturbed(module: nn.Module) -> nn.Module:
    """``module`` with every parameter moved off its initial value (group-norm affines
    are 1/0 at init, biases 0), in eval mode."""
    torch.manual_seed(0)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return module.eval()


def _both_paths(module: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(module path with autograd on, inference path with autograd off)."""
    with torch.enable_grad():
        slow = module(x).detach()
    with torch.no_grad():
        fast = module(x)
    return slow, fast


@pytest.mark.parametrize("name", list(OPTIONS))
@pytest.mark.parametrize("length", [1013, 6])  # 6 samples: shorter than the reflect pads
def test_encoder_and_decoder_paths_agree(name, length):
    opts = {**SMALL, **OPTIONS[name]}
    encoder = _perturbed(EncodecEncoder(**opts))
    decoder = _perturbed(EncodecDecoder(**opts, trim_right_ratio=0.5 if opts.get(
        "causal", True) else 1.0))
    x = 0.3 * torch.randn(2, opts["channels"], length, generator=torch.Generator().manual_seed(1))
    slow, fast = _both_paths(encoder, x)
    assert fast.shape == slow.shape == (2, 8, -(-length // 8))
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-5)
    latent = slow
    slow, fast = _both_paths(decoder, latent)
    assert fast.shape == slow.shape == (2, opts["channels"], latent.shape[-1] * 8)
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-5)
    assert fast.abs().max() > 1e-3  # a signal, not zeros


def test_transposed_conv_with_three_taps_and_odd_kernel():
    """Kernels of 3 strides (a sum of 3 products) and of no whole number of strides (the
    layer's own module) both equal the module path."""
    from audio_plugin_soundstream.encodec_layers import PaddedConvTranspose1d

    x = torch.randn(1, 6, 11, generator=torch.Generator().manual_seed(2))
    for kernel, stride in ((6, 2), (5, 2)):
        layer = _perturbed(PaddedConvTranspose1d(6, 3, kernel, stride, causal=False))
        with torch.no_grad():
            want = layer(x)
            got = encodec_inference.transposed_conv(layer, x.transpose(1, 2).contiguous(),
                                                    None).transpose(1, 2)
        assert got.shape == want.shape == (1, 3, 22)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_path_is_used_only_at_inference(monkeypatch):
    encoder = _perturbed(EncodecEncoder(**SMALL, channels=1))
    calls = []
    real = encodec_inference.run_time_major
    monkeypatch.setattr("audio_plugin_soundstream.encodec.run_time_major",
                        lambda net, x: calls.append(1) or real(net, x))
    x = torch.randn(1, 1, 64)
    with torch.no_grad():
        encoder(x)
    assert calls == [1]
    encoder(x)  # autograd on: the modules (their backward is what training needs)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        encoder(x)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on shape checks
        torch.jit.trace(encoder, x, check_trace=False)  # exports trace the module path
    assert calls == [1]


def test_inference_weights_follow_parameter_updates():
    """The cached kernels are rebuilt when the weights change (fine-tuning then
    evaluating in one process)."""
    encoder = _perturbed(EncodecEncoder(**SMALL, channels=1))
    x = torch.randn(1, 1, 200, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        before = encoder(x)
        for p in encoder.parameters():
            p.mul_(1.5)
        after = encoder(x)
    slow, _ = _both_paths(encoder, x)
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, slow, rtol=1e-5, atol=1e-5)
