"""``audio-core import`` of transformers ``MimiModel`` folders: codes identical and audio
within 1e-4 of transformers' offline (whole-signal) ``encode``/``decode`` on a randomly
initialised tiny Mimi with the published 24 kHz / 12.5 Hz layout (save_pretrained into
tmp)."""

from __future__ import annotations

import json

import pytest
import torch

transformers = pytest.importorskip("transformers")

import audio_core  # noqa: E402
from audio_core.cli import main  # noqa: E402
from audio_core.engine.imports import ModelImportError, import_model  # noqa: E402
from audio_core.models.autoencoder import AudioAutoencoder  # noqa: E402

#: the published layout (24 kHz, ratios [8, 6, 5, 4], 12.5 Hz, 1 semantic codebook,
#: depthwise upsampling) with tiny widths; a 5-frame attention window so that 2 s of audio
#: (50 SEANet frames) exercises the sliding window
TINY = dict(sampling_rate=24000, hidden_size=32, num_filters=4, codebook_size=64,
            codebook_dim=16, vector_quantization_hidden_dimension=16, num_quantizers=5,
            num_semantic_quantizers=1, upsample_groups=32, num_hidden_layers=2,
            intermediate_size=64, num_attention_heads=4, num_key_value_heads=4,
            sliding_window=5)


def _random_codebooks(ref) -> None:
    """Codebooks (transformers initialises them to zeros): rows each stage quantizes for
    noise input, scaled to their median norm (so that no short row is every input's nearest
    code), with cluster usages away from 1 (the division matters)."""
    gen = torch.Generator().manual_seed(2)
    with torch.no_grad():
        latent = ref.encoder(0.3 * torch.randn(2, 1, 4 * 24000, generator=gen)).latents
        for rvq in (ref.quantizer.semantic_residual_vector_quantizer,
                    ref.quantizer.acoustic_residual_vector_quantizer):
            projected = latent if rvq.input_proj is None else rvq.input_proj(latent)
            residual = projected.transpose(1, 2).reshape(-1, projected.shape[1])
            for layer in rvq.layers:
                book = layer.codebook
                rows = residual[torch.randperm(residual.shape[0], generator=gen)[:64]]
                norms = rows.norm(dim=1, keepdim=True)
                rows = rows / norms * norms.median()
                usage = torch.empty(64).uniform_(0.5, 2.0, generator=gen)
                book.cluster_usage.copy_(usage)
                book.embed_sum.copy_(rows * usage[:, None])
                book._embed = None
                residual = residual - book.decode(book.encode(residual))


def save_tiny_mimi(folder, **extra):
    """A tiny random ``MimiModel`` (``TINY`` + ``extra``) saved to ``folder``; returns it."""
    torch.manual_seed(0)
    ref = transformers.MimiModel(transformers.MimiConfig(**{**TINY, **extra})).eval()
    with torch.no_grad():  # layer scales of 0.01 would hide the transformers' errors
        for name, p in ref.named_parameters():
            if name.endswith("layer_scale.scale"):
                p.uniform_(0.5, 1.0)
    _random_codebooks(ref)
    ref.save_pretrained(folder)
    return ref


def test_import_matches_transformers(tmp_path):
    ref = save_tiny_mimi(tmp_path / "hf")
    assert main(["import", str(tmp_path / "hf"), str(tmp_path / "out")]) == 0
    info = json.loads((tmp_path / "out" / "export.json").read_text())
    assert info["importer"] == "soundstream.mimi_hf"
    model = audio_core.load(tmp_path / "out")
    assert isinstance(model, AudioAutoencoder) and model.has_codes
    assert model.hop_length == 1920 and model.sample_rate / model.hop_length == 12.5
    x = 0.3 * torch.randn(2, 1, 2 * 24000 + 700, generator=torch.Generator().manual_seed(1))
    for n in (1, 2, 5):
        with torch.no_grad():
            codes_ref = ref.encode(x, num_quantizers=n).audio_codes
            audio_ref = ref.decode(codes_ref).audio_values
        codes = model.encode_codes(x, n_quantizers=n)
        assert codes.shape == (2, n, 26)  # ceil(48700 / 1920) frames
        assert torch.equal(codes, codes_ref)
        assert codes[:, -1].unique().numel() >= 8  # codes vary: the comparison means something
        audio = model.decode_codes(codes, audio_ref.shape[-1])
        diff = (audio - audio_ref).abs().max().item()
        print(f"n={n}: max abs diff {diff:.2e}")
        assert diff <= 1e-4


def test_variants_match_transformers(tmp_path):
    """Grouped-query attention, head_dim != hidden / heads, attention biases, non-causal
    convs (centred padding, trim) and no projection (codebook_dim == hidden_size)."""
    ref = save_tiny_mimi(tmp_path / "hf", num_key_value_heads=2, head_dim=4,
                         attention_bias=True, use_causal_conv=False, codebook_dim=32,
                         vector_quantization_hidden_dimension=32)
    import_model(tmp_path / "hf", tmp_path / "out")
    model = audio_core.load(tmp_path / "out")
    x = 0.3 * torch.randn(1, 1, 30000, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        codes_ref = ref.encode(x, num_quantizers=3).audio_codes
        audio_ref = ref.decode(codes_ref).audio_values
    assert torch.equal(model.encode_codes(x, n_quantizers=3), codes_ref)
    assert (model.decode_codes(codes_ref, audio_ref.shape[-1]) - audio_ref).abs().max() <= 1e-4


def test_legacy_config_and_nested_weight_layout(tmp_path):
    """``kyutai/mimi``'s config.json style (``frame_rate``, top-level ``rope_theta``) and
    weights saved in transformers' nested layout (``encoder.encoder_seanet.layers...``)
    import to the same model."""
    from safetensors.torch import load_file, save_file

    ref = save_tiny_mimi(tmp_path / "hf")
    file = tmp_path / "hf" / "config.json"
    config = json.loads(file.read_text())
    del config["rope_parameters"], config["_frame_rate"]
    file.write_text(json.dumps({**config, "rope_theta": 10000.0, "frame_rate": 12.5}))
    nested = {"encoder.": "encoder.encoder_seanet.", "decoder.": "decoder.decoder_seanet.",
              "encoder_transformer.": "encoder.encoder_transformer.",
              "decoder_transformer.": "decoder.decoder_transformer.",
              "downsample.": "encoder.downsample.", "upsample.": "decoder.upsample."}
    weights = load_file(str(tmp_path / "hf" / "model.safetensors"))
    renamed = {}
    for key, value in weights.items():
        prefix = next((p for p in nested if key.startswith(p)), "")
        renamed[nested.get(prefix, "") + key[len(prefix):]] = value
    assert "encoder.encoder_seanet.layers.0.conv.weight" in renamed
    save_file(renamed, str(tmp_path / "hf" / "model.safetensors"))
    model = audio_core.load(import_model(tmp_path / "hf", tmp_path / "out"))
    x = 0.3 * torch.randn(1, 1, 20000, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        codes_ref = ref.encode(x).audio_codes
    assert torch.equal(model.encode_codes(x), codes_ref)


def test_unsupported_config_names_field(tmp_path):
    save_tiny_mimi(tmp_path / "hf")
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    (tmp_path / "hf" / "config.json").write_text(json.dumps({**config, "hidden_act": "relu"}))
    with pytest.raises(ModelImportError, match=r"config\.json: hidden_act = .* is not "
                                               r"supported; supported: 'gelu'"):
        import_model(tmp_path / "hf", tmp_path / "out")


def test_weights_that_do_not_fit_are_named(tmp_path):
    """A config.json that does not match the weights: the mismatching tensor is named."""
    save_tiny_mimi(tmp_path / "hf")
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    (tmp_path / "hf" / "config.json").write_text(json.dumps({**config,
                                                             "intermediate_size": 48}))
    with pytest.raises(ModelImportError, match=r"tensor 'decoder_transformer\.layers\.0\.mlp"
                                               r"\.fc1\.weight' has shape \(64, 32\)"):
        import_model(tmp_path / "hf", tmp_path / "out")


def test_split_rvq_rejects_fewer_codebooks_than_semantic(tmp_path):
    save_tiny_mimi(tmp_path / "hf", num_semantic_quantizers=2)
    import_model(tmp_path / "hf", tmp_path / "out")
    model = audio_core.load(tmp_path / "out")
    x = torch.zeros(1, 1, 1920 * 3)
    assert model.encode_codes(x, n_quantizers=2).shape == (1, 2, 3)
    with pytest.raises(ValueError, match=r"n_quantizers must be in 2\.\.5 \(the semantic "
                                         r"codebooks are always used\), got 1"):
        model.encode_codes(x, n_quantizers=1)


def test_split_rvq_training_forward():
    """Training: the straight-through latent carries gradients to the encoder side, the
    loss is the commitment term, and the codebook statistics move by EMA; in eval mode the
    forward's codes and latent are ``encode``'s and ``decode``'s."""
    from audio_plugin_soundstream.mimi_quantizer import SplitResidualVQ

    torch.manual_seed(0)
    q = SplitResidualVQ(dim=8, num_codebooks=3, num_semantic=1, codebook_size=4,
                        codebook_dim=4, decay=0.5)
    latent = torch.randn(2, 8, 5, requires_grad=True)
    usage = q.acoustic.codebooks[0].cluster_usage.clone()
    q.train()
    result = q(latent)
    assert result.codes.shape == (2, 3, 5) and result.latent.shape == (2, 8, 5)
    assert result.bits_per_frame == 6.0 and float(result.loss.detach()) > 0
    (result.latent.sum() + result.loss).backward()
    assert latent.grad is not None and latent.grad.abs().sum() > 0
    assert q.semantic.in_proj.weight.grad is not None
    counts = torch.bincount(result.codes[:, 1].flatten(), minlength=4).float()
    assert torch.allclose(q.acoustic.codebooks[0].cluster_usage, 0.5 * usage + 0.5 * counts)
    q.eval()
    with torch.no_grad():
        result = q(latent, n_quantizers=2)
        assert torch.equal(result.codes, q.encode(latent, n_quantizers=2))
        assert torch.allclose(result.latent, q.decode(result.codes), atol=1e-6)
    with pytest.raises(ValueError, match=r"split_rvq expects a latent \(batch, dim=8, frames\)"):
        q.encode(torch.zeros(1, 4, 2))


@pytest.mark.integration
def test_finetune_starts_from_imported_mimi(tmp_path, registry):
    """``model.init`` of an imported Mimi: two training steps start from its weights, move
    the encoder and the codebook statistics, and the run exports."""
    import math
    import os

    from audio_core import distributed
    from audio_core.config import load_config
    from audio_core.engine.export import export_run
    from audio_core.engine.trainer import Trainer

    save_tiny_mimi(tmp_path / "hf")
    imported = import_model(tmp_path / "hf", tmp_path / "imported")
    start = audio_core.load(imported).state_dict()
    cfg = load_config(str(imported / "config.yaml"), [
        f"model.init={imported}", f"run.output_dir={tmp_path}", "run.name=ft",
        "train.max_steps=2", "train.val_every=0", "train.checkpoint_every=2",
        "train.log_every=1", "train.trackers=[jsonl]", "data.segment_seconds=0.16",
        "data.batch_size=2", "task.params.warmup_steps=0",
        "model.discriminators=[{name: core.msd, params: {scales: 1, width: 4, layers: 2, "
        "max_width: 8}}]"], registry=registry)
    saved = dict(os.environ)
    try:
        logs = Trainer(cfg, registry=registry).fit()
    finally:
        distributed.teardown()
        os.environ.clear()
        os.environ.update(saved)
    assert math.isfinite(logs["loss/total"])
    tuned = audio_core.load(export_run(tmp_path / "ft", tmp_path / "export")).state_dict()
    changed = {k for k, v in tuned.items() if not torch.equal(v, start[k])}
    assert any(k.startswith("encoder.transformer.") for k in changed)
    assert any(k.endswith("cluster_usage") for k in changed)


def test_imported_mimi_exports_to_onnx(tmp_path):
    """``--format onnx``: the split RVQ's code tables make the decoder graph a gather; the
    check (onnxruntime, a signal of another length, beyond the attention window) finds the
    codes identical and the audio within 1e-4."""
    pytest.importorskip("onnxruntime")
    from audio_core.engine.onnx_export import export_onnx

    save_tiny_mimi(tmp_path / "hf")
    model = audio_core.load(import_model(tmp_path / "hf", tmp_path / "out"))
    info = export_onnx(model, tmp_path / "onnx", seconds=1.0)
    print("Mimi onnx", info["max_abs_diff"])
    assert info["num_codebooks"] == 5 and info["hop_length"] == 1920
    assert info["max_abs_diff"]["encoder_codes_differ"] == 0
    assert info["max_abs_diff"]["decoder"] <= 1e-4
