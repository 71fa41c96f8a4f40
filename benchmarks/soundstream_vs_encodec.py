"""Generator training step and inference of ``soundstream.24khz`` beside EnCodec, one run.

    pip install --no-deps encodec          # the reference model (not an audio-core dependency)
    python benchmarks/soundstream_vs_encodec.py [--threads 2 --rounds 5 --steps 3 \
        --out soundstream_vs_encodec.json]

The reference is the ``encodec`` package's own model (``EncodecModel._get_model``) built at
24 kHz, 6 kbps (8 x 1024 codebooks), causal, weight norm, with its EMA residual VQ. The
package imports torchaudio at module level only for file I/O helpers; torchaudio is not
installable here, so a stub module stands in for it (no torchaudio function runs in a
training step). Both models get the same step: batch 4 x 1 s of 24 kHz audio, L1
reconstruction loss + the quantizer's commitment loss, Adam (lr 3e-4), in training mode
(EMA codebook updates included). Steps of the two models alternate round by round on 2
threads, and the best (least disturbed) round of each counts; the per-round ratios show
the spread. Inference: encode + decode
of 10 s, no grad.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import types
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from soundstream_codec import build_preset

from audio_core.engine.allocator import tune_cpu_allocator

RATE = 24000


def encodec_model():
    """The ``encodec`` package's 24 kHz causal weight-norm model at 6 kbps."""
    sys.modules.setdefault("torchaudio", types.ModuleType("torchaudio"))  # I/O helpers only
    from encodec.model import EncodecModel

    model = EncodecModel._get_model(target_bandwidths=[6.0], sample_rate=RATE, channels=1,
                                    causal=True, model_norm="weight_norm",
                                    audio_normalize=False, segment=None, name="reference")
    model.set_target_bandwidth(6.0)
    return model


def encodec_step(model, optimizer, batch):
    emb = model.encoder(batch)
    q = model.quantizer(emb, model.frame_rate, model.bandwidth)
    recon = model.decoder(q.quantized)[..., :batch.shape[-1]]
    loss = F.l1_loss(recon, batch) + q.penalty
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def soundstream_step(model, optimizer, batch):
    out = model(batch)
    loss = F.l1_loss(out.reconstruction, batch) + out.quantized.loss
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def encodec_infer(model, audio):
    with torch.no_grad():
        frames = model.encode(audio)
        return model.decode(frames)


def soundstream_infer(model, audio):
    with torch.no_grad():
        return model.decode_codes(model.encode_codes(audio), audio.shape[-1])


def timed(fn, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - start) / steps


def params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3, help="training steps per round")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--out", type=Path, default=Path("soundstream_vs_encodec.json"))
    parser.add_argument("--no-malloc-tuning", action="store_true",
                        help="leave glibc's allocator at its defaults (audio-core's commands "
                             "tune it: audio_core.engine.allocator)")
    args = parser.parse_args()
    tuned = False if args.no_malloc_tuning else tune_cpu_allocator()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    _, soundstream = build_preset("soundstream.24khz")
    reference = encodec_model()
    batch = 0.1 * torch.randn(args.batch, 1, RATE)
    audio = 0.1 * torch.randn(1, 1, 10 * RATE)
    models = {"soundstream.24khz": (soundstream, soundstream_step, soundstream_infer),
              "encodec (package)": (reference, encodec_step, encodec_infer)}
    train: dict[str, list[float]] = {name: [] for name in models}
    infer: dict[str, list[float]] = {name: [] for name in models}
    optimizers = {name: torch.optim.Adam(m.parameters(), lr=3e-4)
                  for name, (m, _, _) in models.items()}
    for name, (model, step, _) in models.items():  # warm-up: allocator, k-means init
        model.train()
        step(model, optimizers[name], batch)
    for _ in range(args.rounds):
        for name, (model, step, run) in models.items():
            model.train()
            train[name].append(timed(lambda m=model, s=step, o=optimizers[name]:
                                     s(m, o, batch), args.steps))
            model.eval()
            infer[name].append(timed(lambda m=model, r=run: r(m, audio), 1))
    best = {name: min(times) for name, times in train.items()}
    fastest = {name: min(times) for name, times in infer.items()}
    ours, ref = "soundstream.24khz", "encodec (package)"
    result = {
        "threads": args.threads, "malloc_tuning": tuned, "batch": f"{args.batch} x 1 s at 24 kHz",
        "parameters": {name: params(m) for name, (m, _, _) in models.items()},
        "train_step_s": best, "inference_10s_s": fastest,
        "train_speedup_vs_encodec": best[ref] / best[ours],
        # the same ratio round by round (each pair measured back to back): its spread is
        # the machine's noise
        "train_speedup_per_round": sorted(r / o for r, o in zip(train[ref], train[ours],
                                                                strict=True)),
        "inference_speedup_vs_encodec": fastest[ref] / fastest[ours],
        "all_train_rounds_s": train,
    }
    print(json.dumps(result, indent=2))
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
