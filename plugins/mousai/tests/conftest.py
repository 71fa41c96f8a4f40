"""Fixtures: the plugin loaded beside audio-core's built-ins only, tiny configs, clips and a
tiny random-init T5 folder (made with ``save_pretrained``: nothing is downloaded)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

from audio_core.testing import PluginUnderTest  # noqa: E402

PLUGIN = PluginUnderTest("mousai", "audio-plugin-mousai", "audio_plugin_mousai.hooks")
RATE = 16000
#: The repository's real clips (speech and music at several rates), with captions.
CLIPS = Path(__file__).resolve().parents[3] / "tests" / "data" / "clips"
CAPTIONS = {"music/guitar_16k.wav": "an acoustic guitar playing",
            "music/piano_44k.ogg": "a piano playing",
            "music/strings_24k.flac": "a string section playing",
            "speech/de_16k.flac": "a person speaking german",
            "speech/en_22k.wav": "a person speaking english",
            "speech/fr_44k.ogg": "a person speaking french"}

#: mousai.tiny_dae, smaller and faster: 2 decode steps by default.
TINY_AE = ("model.params.decode_steps=2",)


@pytest.fixture(scope="session")
def manager():
    pm = PLUGIN.load()
    assert pm.plugins["mousai"].status == "loaded", pm.plugins["mousai"].reason
    return pm


@pytest.fixture(scope="session")
def registry(manager):
    return manager.registry


@pytest.fixture(scope="session", autouse=True)
def _threads():
    # One thread: on a shared 2-core machine, two OpenMP threads mostly wait on each other
    # (session scope: set before the session fixtures that train run).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def write_captions(folder: Path) -> Path:
    """``folder/captions.csv`` listing the repository's real clips, converted once to 16 kHz
    stereo WAV files in ``folder`` (cheap to crop in training), with their captions."""
    from audio_core.data.captioned import CaptionedDataset

    folder.mkdir(parents=True, exist_ok=True)
    source = folder / "source.csv"
    source.write_text("\n".join(["path,text"] + [f"{CLIPS / name},{text}"
                                                 for name, text in CAPTIONS.items()]) + "\n",
                      encoding="utf-8")
    data = CaptionedDataset(source, sample_rate=RATE, channels=2, segment_seconds=None)
    lines = ["path,text"]
    for i in range(len(data)):
        item = data[i]
        name = f"clip{i}.wav"
        sf.write(folder / name, item["audio"].numpy().T, RATE)
        lines.append(f"{name},{item['text']}")
    path = folder / "captions.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_tones(folder: Path, count: int = 4, seconds: float = 0.512) -> Path:
    """``folder/*.wav``: ``count`` stereo harmonic tones (distinct pitch, level and pan)."""
    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(round(seconds * RATE)) / RATE
    for i in range(count):
        f0 = 110.0 * 2 ** (i * 5 / 12)
        wave = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in (1, 2, 3))
        wave = (0.3 + 0.1 * i) * wave * np.minimum(1.0, 20 * t)
        pan = 0.3 + 0.4 * i / max(count - 1, 1)
        sf.write(folder / f"tone{i}.wav", np.stack([pan * wave, (1 - pan) * wave], 1)
                 .astype(np.float32), RATE)
    return folder


@pytest.fixture(scope="session")
def tiny_t5(tmp_path_factory) -> Path:
    """A 2-layer, 32-wide random-init T5 encoder and a word-level tokenizer (appending
    ``</s>`` as T5's does), saved with
    ``save_pretrained`` (what a local copy of t5-base looks like, only smaller)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast, T5Config, T5EncoderModel

    folder = tmp_path_factory.mktemp("tiny_t5")
    words = ["<pad>", "</s>", "<unk>", "a", "bird", "chirps", "piano", "playing", "dog",
             "barks", "person", "speaking", "loud", "quiet", "music"]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>",
                                                       special_tokens=[("</s>", 1)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>",
                                   unk_token="<unk>")
    fast.save_pretrained(folder)
    torch.manual_seed(0)
    config = T5Config(vocab_size=len(words), d_model=32, d_kv=8, d_ff=64, num_layers=2,
                      num_heads=4, pad_token_id=0, eos_token_id=1)
    T5EncoderModel(config).save_pretrained(folder)
    return folder


def load_clips(captions: Path, seconds: float | None = None) -> tuple[torch.Tensor, list[str]]:
    """The captioned clips at 16 kHz stereo ``(clips, 2, time)`` (each cut to ``seconds``,
    default the shortest clip) and their captions, in the list's order."""
    from audio_core.data.captioned import CaptionedDataset

    data = CaptionedDataset(captions, sample_rate=RATE, channels=2, segment_seconds=None)
    items = [data[i] for i in range(len(data))]
    length = min(item["audio"].shape[-1] for item in items) if seconds is None \
        else round(seconds * RATE)
    return torch.stack([item["audio"][..., :length] for item in items]), \
        [item["text"] for item in items]


#: Stage-1 training of the session fixture: samples per training crop and steps.
STAGE1_CLIP, STAGE1_STEPS = 2048, 500


@pytest.fixture(scope="session")
def stage1(tmp_path_factory, registry):
    """The tiny diffusion autoencoder trained (one process, ``STAGE1_STEPS`` steps, EMA) on
    random 2048-sample crops of the captioned real clips; returns ``(run folder, export
    folder, loaded export, captions file)``."""
    import audio_core
    from audio_core.config import load_config
    from audio_core.config.loader import read_config_file, resolve_source
    from audio_core.engine.export import export_run
    from audio_core.engine.trainer import Trainer

    out = tmp_path_factory.mktemp("mousai_stage1")
    captions = write_captions(out / "data")
    data = read_config_file(resolve_source("mousai.tiny_dae", registry))
    data["data"].update(
        train={"name": "core.captioned", "params": {"captions": str(captions)}},
        val={"name": "core.captioned", "params": {"captions": str(captions),
                                                   "random_crop": False}})
    cfg = load_config(data, [
        f"run.output_dir={out}", f"train.max_steps={STAGE1_STEPS}",
        f"train.val_every={STAGE1_STEPS}", f"train.checkpoint_every={STAGE1_STEPS}",
        "train.log_every=50", "train.val_batches=1", "train.trackers=[jsonl]",
        "train.ema_decay=0.95", "train.optimizer.lr=2e-3",
        f"data.segment_seconds={STAGE1_CLIP / RATE}", "data.batch_size=4",
        "data.num_workers=0", "task.params.val_decode_steps=4"],
        registry=registry, check_params=True)
    Trainer(cfg, registry=registry).fit()
    run = out / "mousai_tiny_dae"
    export = export_run(run, out / "export")
    return run, export, audio_core.load(export, registry=registry), captions
