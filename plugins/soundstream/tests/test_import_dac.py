"""``audio-core import`` of transformers ``DacModel`` folders: codes identical and audio
within 1e-4 of transformers' on randomly initialised tiny versions of the 16, 24 and
44.1 kHz layouts (offline, save_pretrained into tmp)."""

from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers")

import audio_core  # noqa: E402
from audio_core.engine.imports import import_model  # noqa: E402

#: the published configs' rates and ratio patterns ([2, 4, 8, 8]; 24 kHz: [2, 4, 5, 8]),
#: with tiny widths and fewer stages
CONFIGS = {
    "16khz": dict(sampling_rate=16000, downsampling_ratios=[2, 4]),
    "24khz": dict(sampling_rate=24000, downsampling_ratios=[2, 5]),
    "44khz": dict(sampling_rate=44100, downsampling_ratios=[2, 4]),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_import_matches_transformers(tmp_path, name):
    torch.manual_seed(0)
    config = transformers.DacConfig(encoder_hidden_size=4, decoder_hidden_size=16,
                                    n_codebooks=4, codebook_size=32, codebook_dim=4,
                                    **CONFIGS[name])
    ref = transformers.DacModel(config).eval()
    with torch.no_grad():  # unit-gain convs (DAC's init is std 0.02), varied Snake alphas
        for module in ref.modules():
            if hasattr(module, "alpha"):
                module.alpha.uniform_(0.5, 2.0)
            elif isinstance(module, torch.nn.Conv1d | torch.nn.ConvTranspose1d):
                fan_in = module.weight[0].numel()
                module.weight.normal_(0, fan_in ** -0.5)
                module.bias.normal_(0, 0.01)
    ref.save_pretrained(tmp_path / "hf")
    import_model(tmp_path / "hf", tmp_path / "out")
    model = audio_core.load(tmp_path / "out")
    hop = model.hop_length
    x = 0.3 * torch.randn(2, 1, 37 * hop, generator=torch.Generator().manual_seed(1))
    for n in (1, 2, 4):
        with torch.no_grad():
            codes_ref = ref.encode(x, n_quantizers=n).audio_codes
            audio_ref = ref.decode(audio_codes=codes_ref).audio_values
        codes = model.encode_codes(x, n_quantizers=n)
        assert torch.equal(codes, codes_ref)
        assert codes.unique().numel() >= 8  # codes vary: the comparison means something
        audio = model.decode_codes(codes, audio_ref.shape[-1])
        diff = (audio[:, 0] - audio_ref).abs().max().item()
        print(f"{name} n={n}: max abs diff {diff:.2e}")
        assert diff <= 1e-4


def test_weight_normed_checkpoint_and_onnx(tmp_path):
    """A checkpoint saved with weight norm applied imports (the norm folded), and the
    imported DAC exports to ONNX with codes identical and audio within 1e-4."""
    pytest.importorskip("onnxruntime")
    from audio_core.engine.onnx_export import export_onnx

    torch.manual_seed(0)
    config = transformers.DacConfig(encoder_hidden_size=4, decoder_hidden_size=16,
                                    n_codebooks=3, codebook_size=16, codebook_dim=4,
                                    sampling_rate=16000, downsampling_ratios=[2, 4])
    ref = transformers.DacModel(config).eval()
    ref.apply_weight_norm()
    with torch.no_grad():  # gains that differ from ||v||: the fold must use them
        for name, p in ref.named_parameters():
            if name.endswith("original0"):
                p.mul_(torch.empty_like(p).uniform_(0.5, 2.0))
    ref.save_pretrained(tmp_path / "hf")
    import_model(tmp_path / "hf", tmp_path / "out")
    model = audio_core.load(tmp_path / "out")
    x = 0.3 * torch.randn(1, 1, 80 * model.hop_length)
    with torch.no_grad():
        codes_ref = ref.encode(x).audio_codes
        audio_ref = ref.decode(audio_codes=codes_ref).audio_values
    assert torch.equal(model.encode_codes(x), codes_ref)
    assert (model.decode_codes(codes_ref, audio_ref.shape[-1])[:, 0] - audio_ref
            ).abs().max() <= 1e-4
    info = export_onnx(model, tmp_path / "onnx", seconds=0.1)
    print("DAC onnx", info["max_abs_diff"])
    assert info["max_abs_diff"]["encoder_codes_differ"] == 0
    assert info["max_abs_diff"]["decoder"] <= 1e-4
