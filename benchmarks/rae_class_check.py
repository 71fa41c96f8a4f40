"""RAE stage 2 quality check: does generated audio have the requested class and length?

    python benchmarks/rae_class_check.py STAGE2_EXPORT TRAIN_DIR [VAL_DIR] \\
        [--num-samples 4 --seconds 2 --steps 50 --guidance G]

``TRAIN_DIR`` and ``VAL_DIR`` are class folders (``ROOT/<class>/*.wav``, the classes of the
stage-2 model). A nearest-centroid classifier in the stage-1 latent space judges the class:
each clip is encoded by the export's stage-1 model (normalised latents, as stage 2 sees
them) and mean-pooled over frames; the class centroids are the means of the training
clips' pooled latents. Reported:

- ``reference_accuracy``: held-out clips (``VAL_DIR``) classified by the centroids: how
  well the classes separate in this latent space at all;
- per requested class, ``num_samples`` clips generated with ``model.generate`` (the same
  path as ``audio-core generate --class``): their length in samples against
  ``seconds * sample_rate``, and the fraction classified as the requested class
  (``accuracy``), overall and per class; chance is ``1 / classes``.

Needs audio-plugin-rae importable (installed, or ``PYTHONPATH=plugins/rae``).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch

AUDIO = {".wav", ".flac", ".ogg", ".mp3"}


def clips(root: Path, classes: list[str]) -> list[tuple[Path, int]]:
    """``(file, class index)`` for every audio file under ``root/<class>/``."""
    found = [(f, c) for c, name in enumerate(classes)
             for f in sorted((root / name).rglob("*")) if f.suffix.lower() in AUDIO]
    if not found:
        raise SystemExit(f"no audio under {root}/<class>/ for the classes {classes}")
    return found


@torch.no_grad()
def pooled(model, audio: torch.Tensor) -> torch.Tensor:
    """Audio ``(batch, channels, time)`` -> mean-pooled normalised latents ``(batch, dim)``."""
    return model.to_latent(audio).mean(dim=-1)


def pooled_files(model, files: list[tuple[Path, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    from audio_core.audio.io import load_audio

    vectors = [pooled(model, load_audio(f, sample_rate=model.sample_rate,
                                        channels=model.channels)[0][None]) for f, _ in files]
    return torch.cat(vectors), torch.tensor([c for _, c in files])


def nearest(vectors: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    return torch.cdist(vectors, centroids).argmin(dim=-1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("export", type=Path)
    parser.add_argument("train", type=Path)
    parser.add_argument("val", type=Path, nargs="?")
    parser.add_argument("--num-samples", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--guidance", type=float, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    import audio_core

    model = audio_core.load(args.export).eval()
    classes = list(model.conditioner.classes)
    x, y = pooled_files(model, clips(args.train, classes))
    centroids = torch.stack([x[y == c].mean(dim=0) for c in range(len(classes))])
    result = {"export": str(args.export), "classes": classes, "train_clips": len(y),
              "train_accuracy": round(float((nearest(x, centroids) == y).float().mean()), 3)}
    if args.val:
        vx, vy = pooled_files(model, clips(args.val, classes))
        result["val_clips"] = len(vy)
        result["reference_accuracy"] = round(float((nearest(vx, centroids) == vy).float()
                                                   .mean()), 3)
    length = round(args.seconds * model.sample_rate)
    per_class, lengths, hits = {}, set(), 0
    for c, name in enumerate(classes):
        audio = model.generate(name, num_samples=args.num_samples, steps=args.steps,
                               guidance=args.guidance, seed=args.seed + c,
                               seconds=args.seconds)
        lengths.add(int(audio.shape[-1]))
        predicted = nearest(pooled(model, audio), centroids)
        correct = int((predicted == c).sum())
        hits += correct
        per_class[name] = {"accuracy": round(correct / args.num_samples, 3),
                           "predicted": [classes[int(p)] for p in predicted],
                           "finite": bool(torch.isfinite(audio).all()),
                           "rms": round(float(audio.pow(2).mean().sqrt()), 4)}
    result.update({
        "generated": {"num_samples": args.num_samples, "seconds": args.seconds,
                      "steps": args.steps or model.steps,
                      "guidance": model.guidance if args.guidance is None else args.guidance,
                      "expected_length": length, "lengths": sorted(lengths),
                      "accuracy": round(hits / (args.num_samples * len(classes)), 3),
                      "chance": round(1 / len(classes), 3), "per_class": per_class},
        "load_average": [round(v, 2) for v in os.getloadavg()],
    })
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
