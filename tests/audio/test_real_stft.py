"""The real-valued STFT / iSTFT / Griffin-Lim taken while an ONNX graph is traced equal the
eager complex (FFT) path: same frames, same padding, same lengths."""

from __future__ import annotations

import pytest
import torch

from audio_core.audio.dsp import griffin_lim, istft, stft
from audio_core.audio.dsp.real_stft import griffin_lim_parts, istft_parts, stft_parts


@pytest.mark.parametrize(("n_fft", "hop"), [(512, 160), (256, 64), (255, 100)])
def test_stft_and_istft_parts_equal_the_fft_path(n_fft, hop):
    x = torch.randn(2, 3, 1000, generator=torch.Generator().manual_seed(0))
    spec = stft(x, n_fft, hop)
    real, imag = stft_parts(x, n_fft, hop)
    assert real.shape == spec.shape and spec.shape[:3] == (2, 3, n_fft // 2 + 1)
    scale = spec.abs().max()
    assert (real - spec.real).abs().max() <= 1e-5 * scale
    assert (imag - spec.imag).abs().max() <= 1e-5 * scale
    for length in (None, 1000, 977):
        want = istft(spec, n_fft, hop, length=length)
        got = istft_parts(spec.real, spec.imag, n_fft, hop, length=length)
        assert got.shape == want.shape and (got - want).abs().max() <= 1e-5


def test_griffin_lim_parts_equal_griffin_lim_from_the_same_phase():
    x = torch.randn(2, 1000, generator=torch.Generator().manual_seed(1))
    mag = stft(x, 512, 160).abs()
    phase = torch.rand(mag.shape, generator=torch.Generator().manual_seed(0))
    want = griffin_lim(mag, 512, 160, n_iter=4, length=1000, phase=phase)
    got = griffin_lim_parts(mag, phase, 512, 160, n_iter=4, momentum=0.99, length=1000)
    assert got.shape == want.shape == (2, 1000)
    # Griffin-Lim amplifies float error where a bin's magnitude is near 0 (PyTorch's own
    # float32 vs float64 runs differ by as much)
    assert (got - want).abs().max() <= 1e-3 * want.abs().max()
    with pytest.raises(ValueError, match=r"phase has shape \(2, 257, 6\), expected the "
                                         r"magnitude's \(2, 257, 7\)"):
        griffin_lim(mag, 512, 160, phase=phase[..., :6])
