"""The frozen encoders: the encoder contract, waveform preprocessing (resample, normalise,
windows of max_duration), layer choice, parameter-free layer norm, the spectrogram image
pipeline, geometry errors, and loading pretrained weights from a local folder."""

from __future__ import annotations

import math
import re

import pytest
import torch
import torch.nn.functional as F
from audio_plugin_rae.frozen import EncoderGeometryError, normalize_waveform
from audio_plugin_rae.spectrogram import SpectrogramEncoder
from audio_plugin_rae.speech import HubertEncoder, Wav2Vec2Encoder, receptive_field
from conftest import TINY_DINO, TINY_SPEECH, noise, seeded

from audio_core.audio.resample import resample
from audio_core.models.pretrained import PretrainedNotLocalError


def speech(cls=Wav2Vec2Encoder, **kw):
    kw.setdefault("max_duration", 0.4)
    return seeded(lambda: cls(config=TINY_SPEECH, **kw))


def dino(**kw):
    kw.setdefault("max_duration", 0.512)
    return seeded(lambda: SpectrogramEncoder(config=TINY_DINO, **kw))


@pytest.mark.parametrize("cls", [Wav2Vec2Encoder, HubertEncoder])
@pytest.mark.parametrize("samples", [1, 320, 321, 4800, 16000])
def test_speech_encoders_give_batch_dim_frames(cls, samples):
    encoder = speech(cls)
    assert (encoder.dim, encoder.hop_length, encoder.patch_size) == (32, 320, 320)
    assert encoder.window_frames == 20 and encoder.tokens_per_step == 1
    out = encoder(noise(2, 1, samples))
    assert out.shape == (2, 32, math.ceil(samples / 320)) and torch.isfinite(out).all()


def test_receptive_field_of_the_base_feature_extractor():
    assert receptive_field([10, 3, 3, 3, 3, 2, 2], [5, 2, 2, 2, 2, 2, 2]) == 400
    assert speech().context == 80  # 400 - 320 samples of padding per window


def test_output_goes_through_a_parameter_free_layer_norm():
    encoder = speech()
    out = encoder(noise(2, 1, 6400))
    torch.testing.assert_close(out.mean(dim=1), torch.zeros(2, 20), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.var(dim=1, unbiased=False), torch.ones(2, 20), atol=1e-3,
                               rtol=0)
    assert not any("norm" in name for name, _ in encoder.named_parameters()
                   if not name.startswith("backbone."))


def test_layer_selects_the_hidden_states():
    x = noise(1, 1, 6400)
    last, same, first = (speech(layer=k)(x) for k in (-1, 2, 0))
    assert torch.equal(last, same) and not torch.allclose(last, first)
    with pytest.raises(ValueError, match=r"layer=3 is outside the model's 2 layers"):
        speech(layer=3)


def test_peak_normalisation_makes_features_gain_invariant():
    x = noise(1, 1, 6400)
    encoder = speech()
    torch.testing.assert_close(encoder(3 * x), encoder(x), atol=1e-4, rtol=1e-4)
    raw = speech(normalize="none")
    assert not torch.allclose(raw(3 * x), raw(x), atol=1e-3)
    standard = normalize_waveform(torch.tensor([[1.0, 2.0, 3.0, 6.0]]), "standard")
    torch.testing.assert_close(standard.mean(), torch.tensor(0.0))
    torch.testing.assert_close(standard.var(unbiased=False), torch.tensor(1.0), rtol=1e-5,
                               atol=0)
    with pytest.raises(ValueError, match="normalize must be one of"):
        speech(normalize="loudness")


def test_input_is_padded_to_max_duration_and_long_input_cut_into_windows():
    encoder = speech(normalize="none")
    x = noise(1, 1, 16000)  # 2.5 windows of 0.4 s
    whole = encoder(x)
    assert whole.shape[-1] == 50
    for w in range(2):  # each full window is encoded on its own
        torch.testing.assert_close(whole[..., 20 * w:20 * (w + 1)],
                                   encoder(x[..., 6400 * w:6400 * (w + 1)]))
    short = x[..., :1000]  # padded with zeros to the window, first 4 frames kept
    padded = F.pad(short, (0, 6400 - 1000))
    torch.testing.assert_close(encoder(short), encoder(padded)[..., :4])


def test_mono_mix_and_resampling_from_the_data_rate():
    at_32k = speech(sample_rate=32000, normalize="none")
    assert at_32k.hop_length == 640
    x = noise(1, 2, 32000)
    expected = speech(normalize="none")(resample(x.mean(dim=1, keepdim=True), 32000, 16000))
    torch.testing.assert_close(at_32k(x), expected)


@pytest.mark.parametrize(("kw", "message"), [
    ({"max_duration": 0.41}, "max_duration=0.41 s is 6560 samples at 16000 Hz, not a positive "
                             "multiple of the encoder's patch size (320 samples); use a "
                             "multiple of 0.02 s, e.g. 0.4"),
    ({"sample_rate": 11025}, "a token covers 320 samples at 16000 Hz, which is 220.5 samples "
                             "at the data rate 11025 Hz"),
])
def test_geometry_errors_say_what_fits(kw, message):
    with pytest.raises(EncoderGeometryError, match=re.escape(message)):
        speech(**kw)


def test_max_duration_none_encodes_the_whole_input_as_one_window():
    encoder = speech(max_duration=None)
    assert encoder.window_frames is None
    assert encoder(noise(1, 1, 16000)).shape == (1, 32, 50)


def test_exactly_one_of_pretrained_and_config():
    for kw in ({}, {"pretrained": "x", "config": TINY_SPEECH}):
        with pytest.raises(ValueError, match="set exactly one of `pretrained`"):
            Wav2Vec2Encoder(**kw)


@pytest.mark.parametrize("cls", [Wav2Vec2Encoder, HubertEncoder])
def test_pretrained_weights_load_from_a_local_folder(tmp_path, cls):
    import transformers

    backbone_cls = getattr(transformers, cls.model_class)
    config_cls = getattr(transformers, cls.config_class)
    seeded(lambda: backbone_cls(config_cls(**TINY_SPEECH)), seed=3).save_pretrained(tmp_path)
    loaded = cls(pretrained=str(tmp_path), max_duration=0.4)
    rebuilt = speech(cls)  # same architecture, other weights
    rebuilt.backbone.load_state_dict(loaded.backbone.state_dict())
    x = noise(2, 1, 4000)
    torch.testing.assert_close(loaded(x), rebuilt(x))
    assert not loaded.backbone.training
    assert not any(p.requires_grad for p in loaded.parameters())


def test_a_missing_pretrained_folder_is_named_with_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.delenv("AUDIO_CORE_ALLOW_DOWNLOADS", raising=False)
    missing = tmp_path / "wav2vec2-base"
    with pytest.raises(PretrainedNotLocalError) as info:
        Wav2Vec2Encoder(pretrained=str(missing))
    message = str(info.value)
    assert message.startswith(f"model.encoder.params.pretrained: '{missing}' is not an "
                              f"existing local folder")
    assert "AUDIO_CORE_ALLOW_DOWNLOADS=1" in message and "hf download" in message
    assert "\n" not in message and "Repo id" not in message


@pytest.fixture()
def no_network(monkeypatch):
    """Any attempt to open a network connection fails the test."""
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError(f"a network connection was attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def test_a_hub_id_is_an_error_without_a_network_call(monkeypatch, tmp_path, no_network):
    """The base presets name a hub id: without AUDIO_CORE_ALLOW_DOWNLOADS=1 it is an error
    naming the key and the value, before transformers is called."""
    import transformers

    monkeypatch.delenv("AUDIO_CORE_ALLOW_DOWNLOADS", raising=False)
    monkeypatch.setattr(transformers.Wav2Vec2Model, "from_pretrained", classmethod(
        lambda cls, *a, **k: pytest.fail("from_pretrained must not be called")))
    with pytest.raises(PretrainedNotLocalError) as info:
        Wav2Vec2Encoder(pretrained="facebook/wav2vec2-base")
    assert str(info.value).startswith("model.encoder.params.pretrained: "
                                      "'facebook/wav2vec2-base' is not an existing local")
    assert info.value.path == "model.encoder.params.pretrained"


def test_with_downloads_allowed_the_value_goes_to_transformers(monkeypatch, tmp_path):
    import transformers

    calls = []

    def spy(cls, source, **kwargs):
        calls.append((source, kwargs))
        return cls(transformers.Wav2Vec2Config(**TINY_SPEECH))

    monkeypatch.setenv("AUDIO_CORE_ALLOW_DOWNLOADS", "1")
    monkeypatch.setattr(transformers.Wav2Vec2Model, "from_pretrained", classmethod(spy))
    encoder = Wav2Vec2Encoder(pretrained="facebook/wav2vec2-base", max_duration=0.4)
    assert calls == [("facebook/wav2vec2-base", {})]  # no local_files_only: the Hub may serve
    assert not any(p.requires_grad for p in encoder.parameters())


def test_a_local_folder_loads_offline_with_downloads_not_allowed(tmp_path, monkeypatch,
                                                                  no_network):
    import os

    import transformers
    from huggingface_hub import constants

    monkeypatch.delenv("AUDIO_CORE_ALLOW_DOWNLOADS", raising=False)
    before = (os.environ.get("HF_HUB_OFFLINE"), constants.HF_HUB_OFFLINE)
    seen = []
    original = transformers.Wav2Vec2Model.from_pretrained.__func__

    def spy(cls, source, **kwargs):
        seen.append((constants.HF_HUB_OFFLINE, os.environ.get("HF_HUB_OFFLINE"), kwargs))
        return original(cls, source, **kwargs)

    transformers.Wav2Vec2Model(transformers.Wav2Vec2Config(**TINY_SPEECH)).save_pretrained(
        tmp_path)
    monkeypatch.setattr(transformers.Wav2Vec2Model, "from_pretrained", classmethod(spy))
    Wav2Vec2Encoder(pretrained=str(tmp_path), max_duration=0.4)
    assert seen == [(True, "1", {"local_files_only": True})]
    assert (os.environ.get("HF_HUB_OFFLINE"), constants.HF_HUB_OFFLINE) == before


# ---------------------------------------------------------------- spectrogram (DINOv2)
def test_spectrogram_encoder_gives_time_major_patch_tokens():
    encoder = dino()
    # 0.512 s = 8192 samples in a 4 x 4 grid: 16 tokens of 512 samples, 4 per time column
    assert (encoder.dim, encoder.hop_length, encoder.window_frames,
            encoder.tokens_per_step, encoder.skip) == (32, 512, 16, 4, 5)
    for samples in (8192, 3000, 20000):
        assert encoder(noise(2, 1, samples)).shape == (2, 32, math.ceil(samples / 512))


def test_spectrogram_tokens_drop_cls_and_registers_and_are_reordered():
    encoder = dino()
    windows = noise(2, 8192)
    hidden = encoder.backbone(pixel_values=encoder.image(windows),
                              output_hidden_states=True).hidden_states[-1]
    assert hidden.shape[1] == 1 + 4 + 16  # CLS, 4 registers, 4 x 4 patches (row-major)
    patches = F.layer_norm(hidden[:, 5:], (32,), eps=encoder.eps)
    tokens = encoder.features(windows)
    for t in range(4):  # column t (time), row f (frequency): token t * 4 + f
        for f in range(4):
            torch.testing.assert_close(tokens[:, t * 4 + f], patches[:, f * 4 + t])


def test_spectrogram_image_is_a_min_max_scaled_db_mel_in_imagenet_units():
    encoder = dino()
    windows = noise(3, 8192)
    image = encoder.image(windows)
    assert image.shape == (3, 3, 32, 32)
    db = encoder.mel(windows)  # (3, 128 mels, 52 frames), dB floored 80 below the peak
    assert db.shape == (3, 128, 52)
    low, high = db.amin(dim=(1, 2), keepdim=True), db.amax(dim=(1, 2), keepdim=True)
    assert bool((high - low <= 80.0 + 1e-4).all())
    scaled = (db - low) / (high - low)
    expected = F.interpolate(scaled[:, None], size=(32, 32), mode="bilinear",
                             align_corners=False)
    unscaled = image * encoder.image_std + encoder.image_mean
    for channel in range(3):  # the same grey image in each colour channel
        torch.testing.assert_close(unscaled[:, channel], expected[:, 0], atol=1e-5, rtol=0)
    mean = image.mean(dim=(0, 2, 3))  # ImageNet normalisation: channel means differ
    assert mean[0] < mean[1] < mean[2]


def test_spectrogram_window_must_hold_whole_tokens():
    with pytest.raises(EncoderGeometryError, match=re.escape(
            "max_duration=0.5005 s is 8008 samples at 16000 Hz, not a multiple of the 16 "
            "patch tokens of a window (4 x 4 patches of 8 px on a 32 px image); use e.g. 0.5")):
        dino(max_duration=0.5005)
    assert dino(max_duration=0.5005, image_size=16).grid == 2  # 4 tokens: 8008 / 4 fits


def test_dinov2_weights_load_from_a_local_folder(tmp_path):
    import transformers

    fields = {k: v for k, v in TINY_DINO.items() if k != "model_type"}
    config = transformers.AutoConfig.for_model("dinov2_with_registers", **fields)
    seeded(lambda: transformers.AutoModel.from_config(config), seed=5).save_pretrained(tmp_path)
    loaded = SpectrogramEncoder(pretrained=str(tmp_path), max_duration=0.512)
    rebuilt = dino()
    rebuilt.backbone.load_state_dict(loaded.backbone.state_dict())
    x = noise(1, 1, 8192)
    torch.testing.assert_close(loaded(x), rebuilt(x))
    with pytest.raises(ValueError, match="config needs `model_type`"):
        SpectrogramEncoder(config=fields)
