"""Two-stage throughput: pre-encoded latents vs encoding inside the training loop, and
generation speed of a toy latent diffusion model.

    python benchmarks/latent_diffusion.py [--items 64 --steps 30 --out latent_diffusion.json]

One run, one stage-1 model (a continuous conv autoencoder, 16 kHz, hop 256, untrained:
its speed does not depend on its weights), one stage-2 recipe (``core.conv_denoiser``,
rectified flow, class-conditioned). Measured, each in seconds of source audio per second:

1. ``audio-core latents``-style pre-encoding of ``--items`` one-second clips;
2. stage-2 training on those latents (``core.latents``): the trainer's
   ``throughput/audio_s_per_s``, median over the last half of ``--steps``;
3. the same training on the same clips as audio, encoded by the stage-1 model in the loop;
4. generation with 50 sampler steps (DPM-Solver++ 2M and Heun), 4 samples of 4 s.

Ratios 2 / 3 (the gain of training on pre-encoded latents) and 1 / 3 are reported with
the absolute figures. Set ``OMP_NUM_THREADS`` to compare machines (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

RATE = 16000
CONV = {"dim": 16, "width": 32, "ratios": [2, 4, 4, 8]}


def write_stage1(root: Path) -> Path:
    from audio_core.config import load_config
    from audio_core.config.loader import to_yaml
    from audio_core.models.build import build_model
    from audio_core.plugins import get_registry
    from audio_core.storage.checkpoint import save_safetensors

    cfg = load_config({"data": {"sample_rate": RATE, "channels": 1},
                       "model": {"encoder": {"name": "core.conv", "params": CONV},
                                 "decoder": {"name": "core.conv", "params": CONV},
                                 "losses": [{"name": "core.l1"}]}})
    torch.manual_seed(0)
    model = build_model(cfg, get_registry())
    out = root / "stage1"
    out.mkdir()
    save_safetensors(model.state_dict(), out / "model.safetensors")
    (out / "config.yaml").write_text(to_yaml(cfg), encoding="utf-8")
    return out


def write_clips(root: Path, items: int) -> Path:
    rng = np.random.default_rng(0)
    for label in ("tone", "noise"):
        (root / "clips" / label).mkdir(parents=True)
    t = np.arange(RATE) / RATE
    for i in range(items):
        label = ("tone", "noise")[i % 2]
        wave = 0.4 * np.sin(2 * np.pi * rng.uniform(100, 2000) * t) if label == "tone" \
            else 0.2 * rng.standard_normal(RATE)
        sf.write(root / "clips" / label / f"{i}.wav", wave.astype(np.float32), RATE)
    return root / "clips"


def stage2(root: Path, train: dict, steps: int, name: str) -> dict:
    return {
        "run": {"name": name, "output_dir": str(root / "runs")},
        "data": {"sample_rate": RATE, "channels": 1, "segment_seconds": 1.0, "batch_size": 8,
                 "train": train, "val": None},
        "model": {"params": {"stage1": str(root / "stage1"), "steps": 50},
                  "denoiser": {"name": "core.conv_denoiser",
                               "params": {"hidden": 128, "blocks": 6}},
                  "conditioner": {"name": "core.class_embedding",
                                  "params": {"classes": ["noise", "tone"], "dim": 32}},
                  "objective": {"name": "core.rectified_flow"}},
        "task": {"name": "core.diffusion"},
        "train": {"max_steps": steps, "log_every": 1, "val_every": 0, "checkpoint_every": 0,
                  "trackers": ["jsonl"]}}


def train_throughput(config: dict) -> float:
    from audio_core.config import load_config
    from audio_core.engine.trainer import Trainer

    cfg = load_config(config)
    Trainer(cfg).fit()
    lines = (Path(cfg.run.output_dir) / cfg.run.name / "metrics.jsonl").read_text().splitlines()
    rates = [json.loads(x)["metrics"].get("throughput/audio_s_per_s") for x in lines]
    rates = [r for r in rates if r is not None]
    return statistics.median(rates[len(rates) // 2:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=64)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--out", type=Path, default=Path("latent_diffusion.json"))
    args = parser.parse_args()

    import audio_core
    from audio_core import distributed
    from audio_core.cli.latents import build_data
    from audio_core.latents.encode import pre_encode

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        stage1 = audio_core.load(write_stage1(root))
        clips = write_clips(root, args.items)
        dataset = build_data(str(clips), stage1, labels=True)
        encoded = pre_encode(stage1, dataset, root / "lat", show_progress=False)
        distributed.init_distributed()
        on_latents = train_throughput(stage2(root, {
            "name": "core.latents", "params": {"root": str(root / "lat")}}, args.steps,
            "latents"))
        on_audio = train_throughput(stage2(root, {
            "name": "core.class_folder", "params": {"root": str(clips)}}, args.steps, "audio"))
        model = audio_core.load(root / "runs" / "latents")
        generation = {}
        for sampler in ("core.dpmpp_2m", "core.heun"):
            model.sampler = audio_core.get_registry().build("sampler", sampler, {})
            model.generate("tone", num_samples=1, steps=2, seconds=0.5)  # warm-up
            started = time.perf_counter()
            audio = model.generate("tone", num_samples=4, steps=50, seconds=4.0, seed=0)
            elapsed = time.perf_counter() - started
            generation[sampler] = audio.shape[0] * audio.shape[-1] / RATE / elapsed
    result = {
        "threads": int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads())),
        "pre_encode_audio_s_per_s": encoded["audio_s_per_s"],
        "train_on_latents_audio_s_per_s": on_latents,
        "train_encoding_in_loop_audio_s_per_s": on_audio,
        "latents_vs_in_loop": on_latents / on_audio,
        "pre_encode_vs_in_loop_training": encoded["audio_s_per_s"] / on_audio,
        "generate_50_steps_audio_s_per_s": generation,
    }
    print(json.dumps(result, indent=2))
    args.out.write_text(json.dumps(result, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
