"""RAE stage 2 quality check: does generated audio have the requested class and length?

    python benchmarks/rae_class_check.py STAGE2_EXPORT TRAIN_DIR [VAL_DIR] \\
        [--num-samples 4 --seconds 2 --crops 4 --steps 50 --guidance G --png FIG.png]

``TRAIN_DIR`` and ``VAL_DIR`` are class folders (``ROOT/<class>/*.wav``, the classes of the
stage-2 model). Every judge is fitted and scored on crops of the generated length
(``--seconds``; up to ``--crops`` random crops per clip, shorter clips zero-padded):
pooled statistics of a 2 s crop of a long piece of music are not those of the whole piece
(fitted on whole clips, the latent judge below called 54 of 68 real 2 s music crops
speech). A nearest-centroid classifier in the stage-1 latent space judges the class:
each crop is encoded by the export's stage-1 model (normalised latents, as stage 2 sees
them) and mean-pooled over frames; the class centroids are the means of the training
crops' pooled latents. Reported:

- ``reference_accuracy``: held-out crops (``VAL_DIR``) classified by the centroids: how
  well the classes separate in this latent space at all;
- ``roundtrip_accuracy``: the same held-out crops decoded by stage 1 and encoded again
  (what generated audio goes through before it is judged): how much the stage-1
  decoder alone loses;
- per requested class, ``num_samples`` clips generated as ``model.generate`` (the path of
  ``audio-core generate --class``: ``sample_latents`` then ``to_audio``): their length in
  samples against ``seconds * sample_rate``, and the fraction classified as the requested
  class, from the sampled latents directly (``latent_accuracy``: stage 2 alone) and from
  the generated audio encoded again (``audio_accuracy``); chance is ``1 / classes``;
- ``halves``: the same for the first and the second half of each generated clip, by the
  log-mel judge fitted on half-length crops (a model asked for more than it was trained on
  can lose the class, or the signal, late in the clip).

The stage-1 encoder of a tiny preset is a *random-init* network, a weak judge of audio, so
every audio-level figure is also given by a second, independent judge (``mel_*``): a
nearest-centroid classifier on the per-band mean and standard deviation of a 64-band
log-mel spectrogram, standardised by the training crops' statistics.

``--png``: log-mel spectrograms, a row per class: a held-out real crop, the same through
stage 1, and the first two generated clips.

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


def load_clips(model, files: list[tuple[Path, int]]) -> list[tuple[torch.Tensor, int]]:
    """Every file at the model's rate and channels: ``[((1, channels, time), class)]``."""
    from audio_core.audio.io import load_audio

    return [(load_audio(path, sample_rate=model.sample_rate, channels=model.channels)[0][None],
             label) for path, label in files]


def crops(loaded: list[tuple[torch.Tensor, int]], length: int, per_clip: int,
          seed: int) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Up to ``per_clip`` random crops of ``length`` samples per clip (one, zero-padded, of
    a shorter clip): ``[(1, channels, length)]`` and their class indices ``(crops,)``."""
    generator = torch.Generator().manual_seed(seed)
    audio, labels = [], []
    for clip, label in loaded:
        spare = clip.shape[-1] - length
        for _ in range(per_clip if spare > 0 else 1):
            start = int(torch.randint(0, max(spare, 0) + 1, (1,), generator=generator))
            crop = clip[..., start:start + length]
            audio.append(torch.nn.functional.pad(crop, (0, length - crop.shape[-1])))
            labels.append(label)
    return audio, torch.tensor(labels)


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


def save_grid(rows: dict[str, list[tuple[str, torch.Tensor]]], sample_rate: int,
               path: Path) -> None:
    """Log-mel spectrograms (dB, 80 dB range) of ``(title, audio (1, channels, time))`` per
    row name, in one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from audio_core.audio.dsp import MelSpectrogram

    mel = MelSpectrogram(sample_rate, n_fft=1024, hop_length=256, n_mels=80, log="db",
                         top_db=80.0)
    columns = max(len(row) for row in rows.values())
    fig, axes = plt.subplots(len(rows), columns, figsize=(3.2 * columns, 2.2 * len(rows)),
                             squeeze=False, constrained_layout=True)
    for r, (name, row) in enumerate(rows.items()):
        for c, (title, audio) in enumerate(row):
            spec = mel(audio[0, 0].float()).numpy()
            axes[r][c].imshow(spec, origin="lower", aspect="auto", cmap="magma",
                              vmin=spec.max() - 80,
                              extent=(0.0, audio.shape[-1] / sample_rate, 0, spec.shape[0]))
            axes[r][c].set_title(f"{name}: {title}", fontsize=9)
    fig.savefig(path, dpi=70)
    plt.close(fig)


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
    parser.add_argument("--crops", type=int, default=4, help="crops per clip (default 4)")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--guidance", type=float, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--png", type=Path, default=None, help="spectrogram grid to write")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    import audio_core

    model = audio_core.load(args.export).eval()
    classes = list(model.conditioner.classes)
    length = round(args.seconds * model.sample_rate)
    half = length // 2
    train = load_clips(model, clips(args.train, classes))
    train_audio, y = crops(train, length, args.crops, args.seed)
    x = torch.cat([pooled(model, a) for a in train_audio])
    centroids = torch.stack([x[y == c].mean(dim=0) for c in range(len(classes))])
    judge, half_judge = MelJudge(model.sample_rate), MelJudge(model.sample_rate)
    half_audio, half_y = crops(train, half, args.crops, args.seed)
    half_judge.fit(half_audio, half_y, len(classes))
    result = {"export": str(args.export), "classes": classes, "train_clips": len(train),
              "crop_seconds": args.seconds, "train_crops": len(y),
              "train_accuracy": accuracy(nearest(x, centroids), y),
              "mel_train_accuracy": judge.fit(train_audio, y, len(classes))}
    if args.val:
        audio, vy = crops(load_clips(model, clips(args.val, classes)), length, args.crops,
                          args.seed + 1)
        vx = torch.cat([pooled(model, a) for a in audio])
        with torch.no_grad():
            decoded = [model.to_audio(model.to_latent(a), a.shape[-1]) for a in audio]
        again = torch.cat([pooled(model, a) for a in decoded])
        result.update(val_crops=len(vy), reference_accuracy=accuracy(nearest(vx, centroids), vy),
                      roundtrip_accuracy=accuracy(nearest(again, centroids), vy),
                      mel_reference_accuracy=accuracy(judge(audio), vy),
                      mel_roundtrip_accuracy=accuracy(judge(decoded), vy))
    grid = {name: [] for name in classes}
    if args.val:
        for c, name in enumerate(classes):
            first = int((vy == c).nonzero()[0]) if (vy == c).any() else None
            if first is not None:
                grid[name] = [("held-out", audio[first]), ("through stage 1", decoded[first])]
    kinds = ("latent", "audio", "mel_audio", "mel_first_half", "mel_second_half")
    per_class, lengths, hits = {}, set(), dict.fromkeys(kinds, 0)
    for c, name in enumerate(classes):
        with torch.no_grad():
            latent = model.sample_latents(name, args.num_samples, steps=args.steps,
                                          guidance=args.guidance, seed=args.seed + c,
                                          frames=model.num_frames(args.seconds))
            audio = model.to_audio(latent, length)
        lengths.add(int(audio.shape[-1]))
        grid[name] += [(f"generated {i}", audio[i:i + 1]) for i in range(min(2, len(audio)))]
        found = {"latent": nearest(latent.mean(dim=-1), centroids),
                 "audio": nearest(pooled(model, audio), centroids),
                 "mel_audio": judge(audio),
                 "mel_first_half": half_judge(audio[..., :half]),
                 "mel_second_half": half_judge(audio[..., half:2 * half])}
        per_class[name] = {"finite": bool(torch.isfinite(audio).all()),
                           "rms": round(float(audio.pow(2).mean().sqrt()), 4),
                           "rms_halves": [round(float(a.pow(2).mean().sqrt()), 4)
                                          for a in (audio[..., :half], audio[..., half:])]}
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
                      **{f"{kind}_accuracy": round(hits[kind] / total, 3) for kind in kinds},
                      "chance": round(1 / len(classes), 3), "per_class": per_class},
        "load_average": [round(v, 2) for v in os.getloadavg()],
    })
    print(json.dumps(result, indent=2))
    if args.png:
        save_grid(grid, model.sample_rate, args.png)
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
