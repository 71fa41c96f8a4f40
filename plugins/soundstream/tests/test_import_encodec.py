"""``audio-core import`` of transformers ``EncodecModel`` folders: codes and audio equal
transformers' on randomly initialised tiny models (offline, save_pretrained into tmp)."""

from __future__ import annotations

import json

import pytest
import torch

transformers = pytest.importorskip("transformers")

from conftest import ENCODEC_CONFIGS as CONFIGS  # noqa: E402
from conftest import saved_encodec as _save  # noqa: E402

import audio_core  # noqa: E402
from audio_core.cli import main  # noqa: E402
from audio_core.engine.imports import ModelImportError, import_model  # noqa: E402


@pytest.mark.parametrize("name", ["24khz", "48khz"])
def test_import_matches_transformers(tmp_path, name):
    ref, src = _save(tmp_path, name)
    assert main(["import", str(src), str(tmp_path / "out")]) == 0
    model = audio_core.load(tmp_path / "out")
    channels = CONFIGS[name]["audio_channels"]
    x = 0.3 * torch.randn(2, channels, 1013, generator=torch.Generator().manual_seed(1))
    for bandwidth in CONFIGS[name]["target_bandwidths"]:
        with torch.no_grad():
            enc = ref.encode(x, bandwidth=bandwidth)
            audio = ref.decode(enc.audio_codes, enc.audio_scales,
                               last_frame_pad_length=enc.last_frame_pad_length)[0]
        n = model.n_quantizers_for_bandwidth(bandwidth)
        codes, scales = model.encode_frames(x, n_quantizers=n)
        assert torch.equal(codes, enc.audio_codes)
        assert codes.unique().numel() >= 8  # codes vary: the comparison means something
        ours = model.decode_frames(codes, scales, length=x.shape[-1])
        diff = (ours - audio[..., :x.shape[-1]]).abs().max().item()
        print(f"{name} {bandwidth} kbps: {n} codebooks, max abs diff {diff:.2e}")
        assert diff <= 1e-4
    assert torch.allclose(model.reconstruct(x), ours)  # every codebook, as the last one
    # the codec contract: one chunk on the frame grid, as transformers codes a short input
    short = x[..., :400] if name == "48khz" else x
    with torch.no_grad():
        enc = ref.encode(short, bandwidth=CONFIGS[name]["target_bandwidths"][-1])
        audio = ref.decode(enc.audio_codes, [None])[0]
    codes = model.encode_codes(short, n_quantizers=enc.audio_codes.shape[2])
    assert torch.equal(codes, enc.audio_codes[0])
    assert (model.decode_codes(codes, short.shape[-1]) - audio[..., :short.shape[-1]]
            ).abs().max() <= 1e-4


def test_unsupported_config_names_field(tmp_path):
    _, src = _save(tmp_path, "24khz")
    config = json.loads((src / "config.json").read_text())
    config["pad_mode"] = "circular"
    (src / "config.json").write_text(json.dumps(config))
    # the value of a foreign file is named by its kind, not quoted (docs/robustness.md)
    with pytest.raises(ModelImportError, match=r"config.json: pad_mode = a string of 8 "
                       r"characters is not supported; supported: 'reflect', 'constant'"):
        import_model(src, tmp_path / "out")


def test_no_importer_for_folder(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "config.json").write_text('{"model_type": "wav2vec2"}')
    with pytest.raises(ModelImportError, match="no importer recognises"):
        import_model(tmp_path / "src", tmp_path / "out")


@pytest.mark.parametrize("name", ["24khz", "48khz"])
def test_export_transformers_round_trip(tmp_path, name):
    """import -> export --format transformers -> EncodecModel.from_pretrained: the same
    codes and audio as the original transformers model."""
    ref, src = _save(tmp_path, name)
    assert main(["import", str(src), str(tmp_path / "ac")]) == 0
    assert main(["export", str(tmp_path / "ac"), str(tmp_path / "hf_again"),
                 "--format", "transformers"]) == 0
    back = transformers.EncodecModel.from_pretrained(tmp_path / "hf_again").eval()
    assert back.config.target_bandwidths[-1] == CONFIGS[name]["target_bandwidths"][-1]
    x = 0.3 * torch.randn(1, CONFIGS[name]["audio_channels"], 1013)
    with torch.no_grad():
        for bw in back.config.target_bandwidths:
            a, b = ref.encode(x, bandwidth=bw), back.encode(x, bandwidth=bw)
            assert torch.equal(a.audio_codes, b.audio_codes)
        audio_a = ref.decode(a.audio_codes, a.audio_scales)[0]
        audio_b = back.decode(b.audio_codes, b.audio_scales)[0]
    assert (audio_a - audio_b).abs().max() <= 1e-6


def test_export_transformers_refuses_other_models(tmp_path):
    from audio_core.config import load_config
    from audio_core.engine.imports import export_model
    from audio_core.models.build import build_model

    model = build_model(load_config("soundstream.tiny"))
    with pytest.raises(ModelImportError, match="no transformers exporter accepts this "
                                               "AudioAutoencoder"):
        export_model(model, tmp_path / "out", "transformers")


def test_deep_rvq_codes_identical(tmp_path):
    """16 codebooks: late stages quantize tiny residuals, where rounding decides near-ties;
    the import uses EnCodec's distance arithmetic (core.rvq full_distances), so every code
    matches (the cheaper distance form flips a few of them on this input)."""
    ref, src = _save(tmp_path, "24khz", codebook_size=64, target_bandwidths=[18.0, 288.0])
    import_model(src, tmp_path / "out")
    model = audio_core.load(tmp_path / "out")
    assert model.quantizer.num_codebooks == 16
    x = 0.3 * torch.randn(4, 1, 4001, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        enc = ref.encode(x, bandwidth=288.0)
    assert torch.equal(model.encode_frames(x)[0], enc.audio_codes)


def test_inference_weight_cache_follows_the_weights(tmp_path):
    """Without autograd the weight-normed kernels are computed once and reused; changed
    weights (load_state_dict, an optimizer step) are picked up, and training uses the
    parametrization itself (gradients reach both of its parameters)."""
    from audio_plugin_soundstream.encodec_layers import PaddedConv1d, inference_weight

    torch.manual_seed(0)
    conv = PaddedConv1d(2, 3, 5)
    x = torch.randn(1, 2, 40)
    with torch.no_grad():
        first = conv(x)
        assert inference_weight(conv.conv) is inference_weight(conv.conv)  # cached
        conv.conv.parametrizations.weight.original0.mul_(2.0)  # the magnitude g changes
        moved = conv(x)
    assert not torch.allclose(first, moved)
    reference = torch.nn.functional.conv1d(torch.nn.functional.pad(x, (4, 0), mode="reflect"),
                                           conv.conv.weight.detach(), conv.conv.bias.detach())
    torch.testing.assert_close(moved, reference)
    assert inference_weight(conv.conv) is None  # autograd on: the module's own forward
    conv(x).sum().backward()
    assert conv.conv.parametrizations.weight.original0.grad is not None
