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
- ``roundtrip_accuracy``: the same held-out clips decoded by stage 1 and encoded again
  (what generated audio goes through before it is judged): how much the stage-1
  decoder alone loses;
- per requested class, ``num_samples`` clips generated as ``model.generate`` (the path of
  ``audio-core generate --class``: ``sample_latents`` then ``to_audio``): their length in
  samples against ``seconds * sample_rate``, and the fraction classified as the requested
  class, from the sampled latents directly (``latent_accuracy``: stage 2 alone) and from
  the generated audio encoded again (``audio_accuracy``); chance is ``1 / classes``.

The stage-1 encoder of a tiny preset is a *random-init* network, a weak judge of audio, so
every audio-level figure is also given by a second, independent judge (``mel_*``): a
nearest-centroid classifier on the per-band mean and standard deviation of a 64-band
log-mel spectrogram, standardised by the training clips' statistics.

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


def load_files(model, files: list[tuple[Path, int]]) -> list[torch.Tensor]:
    from audio_core.audio.io import load_audio

    return [load_audio(f, sample_rate=model.sample_rate, channels=model.channels)[0][None]
            for f, _ in files]


class MelJudge:
    """Nearest class centroid of standardised log-mel band statistics ``(mean, std)``."""

    def __init__(self, sample_rate: int) -> None:
        from audio_core.audio.dsp import MelSpectrogram

        self.mel = MelSpectrogram(sample_rate, n_fft=1024, hop_length=256, n_mels=64,
                                  log="log", log_eps=1e-5)

    def features(self, audio: torch.Tensor) -> torch.Tensor:
        """``(batch, channels, time)`` -> ``(batch, 128)``."""
        mel = self.mel(audio.float().mean(dim=1))
        return torch.cat([mel.mean(dim=-1), mel.std(dim=-1)], dim=-1)

    def fit(self, audio: list[torch.Tensor], labels: torch.Tensor, classes: int) -> float:
        x = torch.cat([self.features(a) for a in audio])
        self.mean, self.std = x.mean(dim=0), x.std(dim=0).clamp_min(1e-3)
        x = (x - self.mean) / self.std
        self.centroids = torch.stack([x[labels == c].mean(dim=0) for c in range(classes)])
        return accuracy(nearest(x, self.centroids), labels)

    def __call__(self, audio: list[torch.Tensor] | torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.features(a) for a in audio]) if isinstance(audio, list) \
            else self.features(audio)
        return nearest((x - self.mean) / self.std, self.centroids)


def accuracy(predicted: torch.Tensor, labels: torch.Tensor) -> float:
    return round(float((predicted == labels).float().mean()), 3)


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
    train = clips(args.train, classes)
    train_audio = load_files(model, train)
    x = torch.cat([pooled(model, a) for a in train_audio])
    y = torch.tensor([c for _, c in train])
    centroids = torch.stack([x[y == c].mean(dim=0) for c in range(len(classes))])
    judge = MelJudge(model.sample_rate)
    result = {"export": str(args.export), "classes": classes, "train_clips": len(y),
              "train_accuracy": accuracy(nearest(x, centroids), y),
              "mel_train_accuracy": judge.fit(train_audio, y, len(classes))}
    if args.val:
        val = clips(args.val, classes)
        audio = load_files(model, val)
        vy = torch.tensor([c for _, c in val])
        vx = torch.cat([pooled(model, a) for a in audio])
        with torch.no_grad():
            decoded = [model.to_audio(model.to_latent(a), a.shape[-1]) for a in audio]
        again = torch.cat([pooled(model, a) for a in decoded])
        result.update(val_clips=len(vy), reference_accuracy=accuracy(nearest(vx, centroids), vy),
                      roundtrip_accuracy=accuracy(nearest(again, centroids), vy),
                      mel_reference_accuracy=accuracy(judge(audio), vy),
                      mel_roundtrip_accuracy=accuracy(judge(decoded), vy))
    length = round(args.seconds * model.sample_rate)
    per_class, lengths, hits = {}, set(), {"latent": 0, "audio": 0, "mel_audio": 0}
    for c, name in enumerate(classes):
        with torch.no_grad():
            latent = model.sample_latents(name, args.num_samples, steps=args.steps,
                                          guidance=args.guidance, seed=args.seed + c,
                                          frames=model.num_frames(args.seconds))
            audio = model.to_audio(latent, length)
        lengths.add(int(audio.shape[-1]))
        found = {"latent": nearest(latent.mean(dim=-1), centroids),
                 "audio": nearest(pooled(model, audio), centroids),
                 "mel_audio": judge(audio)}
        per_class[name] = {"finite": bool(torch.isfinite(audio).all()),
                           "rms": round(float(audio.pow(2).mean().sqrt()), 4)}
        for kind, predicted in found.items():
            correct = int((predicted == c).sum())
            hits[kind] += correct
            per_class[name][f"{kind}_accuracy"] = round(correct / args.num_samples, 3)
            per_class[name][f"{kind}_predicted"] = [classes[int(p)] for p in predicted]
    total = args.num_samples * len(classes)
    result.update({
        "generated": {"num_samples": args.num_samples, "seconds": args.seconds,
                      "steps": args.steps or model.steps,
                      "guidance": model.guidance if args.guidance is None else args.guidance,
                      "expected_length": length, "lengths": sorted(lengths),
                      "latent_accuracy": round(hits["latent"] / total, 3),
                      "audio_accuracy": round(hits["audio"] / total, 3),
                      "mel_audio_accuracy": round(hits["mel_audio"] / total, 3),
                      "chance": round(1 / len(classes), 3), "per_class": per_class},
        "load_average": [round(v, 2) for v in os.getloadavg()],
    })
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
