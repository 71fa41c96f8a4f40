"""Presets and the bsq.tokenizer task in one process (the 2-rank run is test_distributed.py)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from audio_plugin_bsq.model import BSQTokenizer
from audio_plugin_bsq.task import BSQTokenizerTask

import audio_core
from audio_core.config import load_config
from audio_core.engine.trainer import Trainer
from audio_core.models.build import build_model


def refuse_task(self, **kwargs):
    raise AssertionError("inference must not construct the bsq.tokenizer task")


SIZES = {"small": (9, 512, 6, 8), "standard": (18, 768, 12, 12), "large": (36, 1024, 24, 16)}


def test_plugin_registers_its_components(manager, registry):
    assert set(manager.plugins["bsq"].components) == {
        "bsq.transformer", "bsq.bsq", "bsq.griffin_lim", "bsq.tokenizer", "bsq.tiny",
        "bsq.small", "bsq.standard", "bsq.large"}
    kinds = {"model": "tokenizer", "task": "tokenizer", "encoder": "transformer",
             "decoder": "transformer", "quantizer": "bsq", "vocoder": "griffin_lim"}
    for kind, name in kinds.items():
        assert (kind, f"bsq.{name}") in registry, kind
    assert ("decoder", "bsq.griffin_lim") not in registry  # a vocoder, not a decoder


@pytest.mark.parametrize("preset", sorted(SIZES))
def test_model_size_presets(registry, preset):
    cfg = load_config(f"bsq.{preset}", registry=registry, check_params=True)
    bits, width, depth, heads = SIZES[preset]
    assert cfg.model.quantizer.params["bits"] == bits
    for part in (cfg.model.encoder, cfg.model.decoder):
        p = part.params
        assert (p["width"], p["depth"], p["heads"]) == (width, depth, heads)
        assert (p["patch_time"], p["patch_freq"], p["max_frames"]) == (16, 16, 1024)
    mel = cfg.model.params
    assert cfg.data.sample_rate == 16000
    assert (mel["n_mels"], mel["n_fft"], mel["hop_length"]) == (128, 1024, 160)
    assert mel["db_range"] == [-80.0, 0.0]
    assert cfg.model.vocoder.name == "bsq.griffin_lim"
    assert set(cfg.task.params) == {"mse_weight", "mae_weight", "specaugment"}
    samples = round(cfg.data.segment_seconds * cfg.data.sample_rate)
    assert 1 + samples // 160 == 1024
    assert cfg.data.train.name == "core.librispeech"


def test_standard_preset_builds_at_a_tiny_size(registry):
    """The real presets' component wiring, with the sizes overridden down."""
    shrink = [f"model.{p}.params.{k}={v}" for p in ("encoder", "decoder")
              for k, v in (("width", 32), ("depth", 1), ("heads", 2))]
    cfg = load_config("bsq.standard", shrink, registry=registry)
    model = build_model(cfg, registry)
    assert isinstance(model, BSQTokenizer)
    assert model.bits == 18 and model.freq_patches == 8 and model.frame_rate == 6.25
    assert model.bitrate == 900.0 and model.encoder.max_time_patches == 64
    assert model.vocoder.n_iter == 32
    mel = -80 * torch.rand(1, 128, 100)
    assert model(mel).reconstruction.shape == mel.shape


def test_train_validate_export_load(tmp_path, registry, monkeypatch):
    cfg = load_config("bsq.tiny", [
        f"run.output_dir={tmp_path}", "train.max_steps=3", "train.val_every=3",
        "train.checkpoint_every=3", "train.log_every=1", "train.trackers=[jsonl]",
        "data.train.params.num_items=16", "data.val.params.num_items=4",
        "train.val_batches=1"], registry=registry, check_params=True)
    trainer = Trainer(cfg, registry=registry)
    trainer.fit()
    run = tmp_path / "bsq_tiny"
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    train = [x["metrics"] for x in lines if "loss/total" in x["metrics"]]
    assert len(train) == 3 and all(math.isfinite(m["loss/total"]) for m in train)
    assert {"loss/mel_mse_db", "quantizer/entropy_codebook_bits",
            "quantizer/bit_balance"} <= train[0].keys()
    val = [x["metrics"] for x in lines if "val/si_sdr" in x["metrics"]]
    assert len(val) == 1 and math.isfinite(val[0]["val/mel_distance"])
    # the task's spectrogram errors (dB) of the same batches, logged by the trainer
    mse, mae = val[0]["val/mel_mse_db"], val[0]["val/mel_mae_db"]
    assert 0 < mae <= math.sqrt(mse) + 1e-6
    assert trainer.task.validation_logs() == {}  # the trainer consumed them

    from audio_core.engine.export import export_run

    exported = export_run(run, tmp_path / "export")
    monkeypatch.setattr(BSQTokenizerTask, "__init__", refuse_task)  # inference builds no task
    model = audio_core.load(exported, registry=registry)
    assert isinstance(model, BSQTokenizer) and not model.training
    wave = 0.1 * torch.randn(1, 1, 8000)
    codes = model.encode_audio(wave)
    assert codes.shape == (1, 1, 13 * 4)
    assert model.decode_audio(codes, 8000).shape == (1, 1, 8000)

    # `audio-core reconstruct` goes waveform -> mel -> tokens -> mel -> vocoder through
    # the model's reconstruct()
    import soundfile as sf

    from audio_core.inference.reconstruct import reconstruct_file

    source = tmp_path / "in.wav"
    sf.write(source, 0.1 * torch.randn(12000).numpy(), 16000)
    metrics = reconstruct_file(model, source, tmp_path / "out.wav", report=False)
    audio, rate = sf.read(tmp_path / "out.wav")
    assert rate == 16000 and audio.shape == (12000,) and math.isfinite(metrics["l1"])

    # `audio-core encode` / `decode` write and read core token files (docs/tokens.md)
    from audio_core.cli import main
    from audio_core.inference.tokens import read_tokens

    assert main(["encode", str(exported), str(source), str(tmp_path / "x.tokens")]) == 0
    codes, header = read_tokens(tmp_path / "x.tokens")
    assert header.hop_length == model.samples_per_step and header.length == 12000
    assert codes.shape == (model.codec_spec().num_codebooks, -(-12000 // header.hop_length))
    assert main(["decode", str(exported), str(tmp_path / "x.tokens"),
                 str(tmp_path / "back.wav")]) == 0
    assert sf.read(tmp_path / "back.wav")[0].shape == (12000,)
