"""Full-size parity of ``audio-core import`` with transformers, offline.

    python benchmarks/import_parity.py [--threads 2 --seconds 2 --mimi-seconds 12
                                        --only NAME ... --out import_parity.json]

Builds the published configs with random weights (``EncodecConfig()``: 24 kHz; the 48 kHz
stereo layout; ``DacConfig`` 16 / 24 / 44.1 kHz; ``MimiConfig()``), gives them usable
codebooks (EnCodec and Mimi initialise them to zeros), saves each with
``save_pretrained``, imports it and compares at every bandwidth (EnCodec), with every
codebook (DAC) or with 1, 8 and 32 codebooks (Mimi): whether the codes are identical, how
many distinct codes occurred (a degenerate all-equal code stream would prove nothing), and
the max abs difference of the decoded audio, on ``--seconds`` of noise (48 kHz: 3
overlapping 1 s chunks at the default 2 s; Mimi: ``--mimi-seconds``, 12 s by default, past
its 250-frame (10 s) attention window). About 8 minutes on 2 threads.
Speed is not measured here (issue 24's ``onnx_vs_torch.py`` is that benchmark).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch
import transformers

import audio_core
from audio_core.engine.imports import import_model

ENCODEC_48K = dict(sampling_rate=48000, audio_channels=2, normalize=True, chunk_length_s=1.0,
                   overlap=0.01, use_causal_conv=False, norm_type="time_group_norm",
                   target_bandwidths=[3.0, 6.0, 12.0, 24.0])
DAC = {"dac_16khz": dict(sampling_rate=16000), "dac_24khz": dict(
    sampling_rate=24000, downsampling_ratios=[2, 4, 5, 8], n_codebooks=32),
    "dac_44khz": dict(sampling_rate=44100)}


@torch.no_grad()
def encodec_codebooks(ref) -> None:
    """Stage 0: latent frames of noise; later stages: random vectors at the residual's
    scale, halving per stage."""
    rows = ref.encoder(0.3 * torch.randn(2, ref.config.audio_channels, 24000))
    rows = rows.transpose(1, 2).reshape(-1, rows.shape[1])
    for i, layer in enumerate(ref.quantizer.layers):
        k = layer.codebook.embed.shape[0]
        layer.codebook.embed.copy_(
            rows[torch.randint(len(rows), (k,))] + 0.01 * torch.randn(k, rows.shape[1])
            if i == 0 else torch.randn(k, rows.shape[1]) * rows.std(0) * 0.5 ** i)
        layer.codebook.embed_avg.copy_(layer.codebook.embed)


@torch.no_grad()
def dac_weights(ref) -> None:
    """Unit-gain convs (DAC's own init, std 0.02, makes every code the same)."""
    for m in ref.modules():
        if isinstance(m, torch.nn.Conv1d | torch.nn.ConvTranspose1d):
            m.weight.normal_(0, m.weight[0].numel() ** -0.5)


@torch.no_grad()
def mimi_codebooks(ref) -> None:
    """Every stage: rows it quantizes for noise (with a little jitter), scaled to their
    median norm, cluster usages in [0.5, 2]; layer scales in [0.5, 1] (0.01 at init would
    hide the transformers)."""
    for name, p in ref.named_parameters():
        if name.endswith("layer_scale.scale"):
            p.uniform_(0.5, 1.0)
    latent = ref.encoder(0.3 * torch.randn(2, 1, 4 * 24000)).latents
    for rvq in (ref.quantizer.semantic_residual_vector_quantizer,
                ref.quantizer.acoustic_residual_vector_quantizer):
        residual = rvq.input_proj(latent).transpose(1, 2).reshape(-1, rvq.input_proj.out_channels)
        for layer in rvq.layers:
            book = layer.codebook
            k = book.embed_sum.shape[0]
            rows = residual[torch.randint(len(residual), (k,))]
            rows = rows + 0.1 * rows.std() * torch.randn_like(rows)
            norms = rows.norm(dim=1, keepdim=True)
            usage = torch.empty(k).uniform_(0.5, 2.0)
            book.cluster_usage.copy_(usage)
            book.embed_sum.copy_(rows / norms * norms.median() * usage[:, None])
            book._embed = None
            residual = residual - book.decode(book.encode(residual))


@torch.no_grad()
def check_mimi(name: str, kwargs: dict, tmp: Path, seconds: float) -> dict:
    torch.manual_seed(0)
    ref = transformers.MimiModel(transformers.MimiConfig(**kwargs)).eval()
    mimi_codebooks(ref)
    ref.save_pretrained(tmp / name)
    model = audio_core.load(import_model(tmp / name, tmp / f"{name}_ac"))
    x = 0.3 * torch.randn(1, 1, int(seconds * 24000) + 17)
    rows = []
    for n in (1, 8, 32):
        codes_ref = ref.encode(x, num_quantizers=n).audio_codes
        audio_ref = ref.decode(codes_ref).audio_values
        codes = model.encode_codes(x, n_quantizers=n)
        audio = model.decode_codes(codes, audio_ref.shape[-1])
        rows.append({"n_quantizers": n, "codes_identical": torch.equal(codes, codes_ref),
                     "distinct_codes": int(codes.unique().numel()),
                     "max_abs_diff": float((audio - audio_ref).abs().max()),
                     "max_abs_audio": float(audio_ref.abs().max())})
    return {"frames": codes.shape[-1], "n_quantizers": rows}


@torch.no_grad()
def check_encodec(name: str, kwargs: dict, tmp: Path, seconds: float) -> dict:
    torch.manual_seed(0)
    ref = transformers.EncodecModel(transformers.EncodecConfig(**kwargs)).eval()
    encodec_codebooks(ref)
    ref.save_pretrained(tmp / name)
    model = audio_core.load(import_model(tmp / name, tmp / f"{name}_ac"))
    x = 0.3 * torch.randn(1, ref.config.audio_channels,
                          int(seconds * ref.config.sampling_rate) + 17)
    rows = []
    for bw in ref.config.target_bandwidths:
        enc = ref.encode(x, bandwidth=bw)
        audio = ref.decode(enc.audio_codes, enc.audio_scales,
                           last_frame_pad_length=enc.last_frame_pad_length)[0]
        codes, scales = model.encode_frames(x, model.n_quantizers_for_bandwidth(bw))
        ours = model.decode_frames(codes, scales, x.shape[-1])
        rows.append({"kbps": bw, "codes_identical": torch.equal(codes, enc.audio_codes),
                     "distinct_codes": int(codes.unique().numel()),
                     "max_abs_diff": float((ours - audio[..., :x.shape[-1]]).abs().max())})
    return {"bandwidths": rows}


@torch.no_grad()
def check_dac(name: str, kwargs: dict, tmp: Path, seconds: float) -> dict:
    torch.manual_seed(0)
    ref = transformers.DacModel(transformers.DacConfig(**kwargs)).eval()
    dac_weights(ref)
    ref.save_pretrained(tmp / name)
    model = audio_core.load(import_model(tmp / name, tmp / f"{name}_ac"))
    hop = model.hop_length
    x = 0.3 * torch.randn(1, 1, int(seconds * model.sample_rate) // hop * hop)
    codes_ref = ref.encode(x).audio_codes
    audio_ref = ref.decode(audio_codes=codes_ref).audio_values
    codes = model.encode_codes(x)
    audio = model.decode_codes(codes, audio_ref.shape[-1])[:, 0]
    return {"codes_identical": torch.equal(codes, codes_ref),
            "distinct_codes": int(codes.unique().numel()),
            "max_abs_diff": float((audio - audio_ref).abs().max())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--mimi-seconds", type=float, default=12.0)
    parser.add_argument("--only", nargs="+", default=None, metavar="NAME",
                        help="run only these checks (encodec_24khz, encodec_48khz, "
                             "dac_16khz, dac_24khz, dac_44khz, mimi)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    checks = [("encodec_24khz", check_encodec, {}, args.seconds),
              ("encodec_48khz", check_encodec, ENCODEC_48K, args.seconds),
              *[(name, check_dac, kwargs, args.seconds) for name, kwargs in DAC.items()],
              ("mimi", check_mimi, {}, args.mimi_seconds)]
    unknown = set(args.only or ()) - {c[0] for c in checks}
    if unknown:
        parser.error(f"--only: unknown check(s) {sorted(unknown)}; choose from "
                     f"{[c[0] for c in checks]}")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, check, kwargs, seconds in checks:
            if args.only is None or name in args.only:
                results[name] = check(name, kwargs, Path(tmp), seconds)
                print(name, json.dumps(results[name]), flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
