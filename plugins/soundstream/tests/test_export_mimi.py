"""``audio-core export --format transformers`` of Mimi-layout models (exporter
``soundstream.mimi_hf``): ``MimiModel.from_pretrained`` loads the folder with no missing
or unexpected tensors, the same config, and gives audio-core's codes and audio (within
1e-4), also for weights and codebook statistics changed after the import (tiny random
models, offline)."""

from __future__ import annotations

import json

import pytest
import torch

transformers = pytest.importorskip("transformers")

from test_import_mimi import save_tiny_mimi  # noqa: E402

import audio_core  # noqa: E402
from audio_core.cli import main  # noqa: E402
from audio_core.engine.imports import export_model, import_model  # noqa: E402

#: the published layout; grouped-query attention with biases, non-causal convs and no
#: projection
VARIANTS = {
    "published": {},
    "gqa_noncausal": dict(num_key_value_heads=2, head_dim=4, attention_bias=True,
                          use_causal_conv=False, codebook_dim=32,
                          vector_quantization_hidden_dimension=32),
}


def load_back(folder):
    """``MimiModel.from_pretrained(folder)``, asserting every tensor was filled.

    transformers (5.x) keeps a non-causal conv's left/right padding as plain tensor
    attributes, which ``from_pretrained`` leaves on the meta device (the model cannot run);
    for those the returned model is ``MimiModel(config)`` with the loaded tensors copied
    in (strictly)."""
    back, info = transformers.MimiModel.from_pretrained(folder, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    assert not info["mismatched_keys"], info
    if not back.config.use_causal_conv:
        built = transformers.MimiModel(back.config)
        built.load_state_dict(back.state_dict(), strict=True)
        return built.eval()
    return back.eval()


def assert_same_codec(model, back):
    """transformers' ``back`` gives ``model``'s codes (identical) and audio (<= 1e-4)."""
    x = 0.3 * torch.randn(2, 1, 2 * 24000 + 700, generator=torch.Generator().manual_seed(1))
    for n in (1, 3, 5):
        with torch.no_grad():
            codes_hf = back.encode(x, num_quantizers=n).audio_codes
            audio_hf = back.decode(codes_hf).audio_values
        codes = model.encode_codes(x, n_quantizers=n)
        assert torch.equal(codes, codes_hf)
        assert codes.unique().numel() >= 8  # codes vary: the comparison means something
        diff = (model.decode_codes(codes, audio_hf.shape[-1]) - audio_hf).abs().max()
        print(f"n={n}: max abs diff {diff.item():.2e}, peak {audio_hf.abs().max():.2e}")
        assert audio_hf.abs().max() > 1e-3  # real audio, not silence
        assert diff <= 1e-4


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_cli_round_trip(tmp_path, name):
    """transformers -> audio-core import -> export --format transformers -> transformers:
    the same config settings and the audio-core model's codes and audio."""
    save_tiny_mimi(tmp_path / "hf", **VARIANTS[name])
    assert main(["import", str(tmp_path / "hf"), str(tmp_path / "ac")]) == 0
    assert main(["export", str(tmp_path / "ac"), str(tmp_path / "back"),
                 "--format", "transformers"]) == 0
    written = json.loads((tmp_path / "back" / "config.json").read_text())
    assert written["model_type"] == "mimi" and written["architectures"] == ["MimiModel"]
    assert "frame_rate" not in written  # transformers' default: sampling_rate / (2 hop)
    back = load_back(tmp_path / "back")
    original = transformers.MimiConfig.from_pretrained(tmp_path / "hf")
    assert back.config.frame_rate == original.frame_rate
    exported = back.config.to_dict()
    assert {k: v for k, v in exported.items() if original.to_dict().get(k) != v} == \
        {"_name_or_path": str(tmp_path / "back")}
    assert_same_codec(audio_core.load(tmp_path / "ac"), back)


def test_frame_rate_written_for_other_strides(tmp_path):
    """A downsampling stride other than Mimi's 2 (here 3: 25 / 3 Hz) is written as
    ``frame_rate``; transformers builds the same strides from it. (Only the layout is
    compared: the fixture's codebooks are degenerate at this rate.)"""
    save_tiny_mimi(tmp_path / "hf", frame_rate=25 / 3)
    assert main(["import", str(tmp_path / "hf"), str(tmp_path / "ac")]) == 0
    assert audio_core.load(tmp_path / "ac").hop_length == 3 * 960
    assert main(["export", str(tmp_path / "ac"), str(tmp_path / "back"),
                 "--format", "transformers"]) == 0
    written = json.loads((tmp_path / "back" / "config.json").read_text())
    assert written["frame_rate"] == 25 / 3
    back = load_back(tmp_path / "back")
    assert back.config.latent_stride == 3 and back.downsample.conv.stride == (3,)


def test_changed_weights_round_trip(tmp_path):
    """Weights and codebook statistics changed after the import are what transformers
    loads: its codebook vectors (embed_sum / cluster_usage) are the model's, and its codes
    and audio follow the changed model, not the source."""
    ref = save_tiny_mimi(tmp_path / "hf")
    assert main(["import", str(tmp_path / "hf"), str(tmp_path / "ac")]) == 0
    model = audio_core.load(tmp_path / "ac")
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1 + 0.1 * torch.randn(p.shape, generator=gen))
        for group in (model.quantizer.semantic, model.quantizer.acoustic):
            for book in group.codebooks:  # new usages, the same vectors scaled by 1.1
                embed = book.vectors().clone()
                book.cluster_usage.uniform_(0.3, 3.0, generator=gen)
                book.embed_sum.copy_(1.1 * embed * book.cluster_usage[:, None])
    export_model(model, tmp_path / "back", "transformers")
    back = load_back(tmp_path / "back")
    again = audio_core.load(import_model(tmp_path / "back", tmp_path / "again"))
    ours, theirs = model.state_dict(), again.state_dict()
    assert ours.keys() == theirs.keys()  # import of the export: the changed model itself
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    hf = back.quantizer
    for ours, theirs in ((model.quantizer.semantic, hf.semantic_residual_vector_quantizer),
                         (model.quantizer.acoustic, hf.acoustic_residual_vector_quantizer)):
        for book, layer in zip(ours.codebooks, theirs.layers, strict=True):
            assert torch.allclose(layer.codebook.embed, book.vectors(), rtol=0, atol=1e-6)
            assert torch.equal(layer.codebook.cluster_usage, book.cluster_usage)
    assert not torch.equal(back.state_dict()["decoder.upsample.conv.weight"],
                           ref.state_dict()["decoder.upsample.conv.weight"])
    assert_same_codec(model, back)
    x = 0.3 * torch.randn(1, 1, 30000)
    with torch.no_grad():
        assert not torch.equal(back.encode(x).audio_codes, ref.encode(x).audio_codes)


def test_encoder_decoder_settings_must_agree(tmp_path):
    """Mimi has one set of SEANet/transformer fields for both halves: a model whose
    encoder and decoder transformers differ is an error naming the setting."""
    from audio_core.engine.imports import ModelImportError

    save_tiny_mimi(tmp_path / "hf")
    assert main(["import", str(tmp_path / "hf"), str(tmp_path / "ac")]) == 0
    model = audio_core.load(tmp_path / "ac")
    model.config.model.decoder.params["transformer"]["window"] = 3
    with pytest.raises(ModelImportError, match=r"Mimi needs the same transformer in "
                                               r"model\.encoder\.params and model\.decoder"
                                               r"\.params"):
        export_model(model, tmp_path / "bad", "transformers")
    assert not (tmp_path / "bad").exists()


def test_stereo_layout(tmp_path):
    """``audio_channels`` comes from the model (the run config's ``data.channels``), not
    from the component params."""
    from test_import_mimi import TINY

    transformers.MimiModel(transformers.MimiConfig(**TINY, audio_channels=2)).save_pretrained(
        tmp_path / "hf")
    assert main(["import", str(tmp_path / "hf"), str(tmp_path / "ac")]) == 0
    assert main(["export", str(tmp_path / "ac"), str(tmp_path / "back"),
                 "--format", "transformers"]) == 0
    assert json.loads((tmp_path / "back" / "config.json").read_text())["audio_channels"] == 2
    assert load_back(tmp_path / "back").config.audio_channels == 2
