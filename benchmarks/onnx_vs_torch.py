"""Real-time factors of the 24 kHz codecs: ONNX Runtime graphs vs eager PyTorch, and
audio-core's converted EnCodec vs transformers' ``EncodecModel`` on the same weights.

    python benchmarks/onnx_vs_torch.py [--threads 2 --rounds 5 --seconds 10 \
        --bandwidth 6 --out onnx_vs_torch.json]

Three models, all randomly initialised at full size, offline (no downloads):

- ``soundstream.24khz`` (the plugin's SEANet + RVQ preset) eager, and its
  ``audio-core export --format onnx`` graphs (encoder.onnx + decoder.onnx) in onnxruntime;
- transformers' ``EncodecModel(EncodecConfig())`` (24 kHz, mono, causal, weight norm) with
  usable codebooks, saved with ``save_pretrained`` and converted by ``audio-core import``:
  the converted model eager, its ONNX graphs, and the transformers model itself
  (``encode(x, bandwidth)`` + ``decode``).

Each measurement is encode + decode of ``--seconds`` of noise at ``--bandwidth`` kbps, no
grad, ``--threads`` intra-op threads for torch and onnxruntime alike. The models run in
turn, round after round (the order rotating), so a load spike hits one round of every
model; per model the best round counts, and the ratios are also given per round (their
median shows the spread) and from the best process CPU time (``time.process_time``: what
the model itself computed, less disturbed by other processes than wall time).
Checks: the converted EnCodec's codes equal transformers' (and the ONNX graphs'), audio
max abs difference. ``uptime``'s load average is recorded before and after: on a shared
machine the absolute times move, the ratios measured in the same rounds much less.
RTF = compute seconds / audio seconds (below 1: faster than real time).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from import_parity import encodec_codebooks
from soundstream_codec import build_preset

RATE = 24000


def load_average() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "unknown"


def onnx_runner(folder: Path, threads: int, n_quantizers: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    enc, dec = (ort.InferenceSession(str(folder / f"{name}.onnx"), options,
                                     providers=["CPUExecutionProvider"])
                for name in ("encoder", "decoder"))
    enc_in, dec_in = enc.get_inputs()[0].name, dec.get_inputs()[0].name

    def run(audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        codes = enc.run(None, {enc_in: audio})[0][:, :n_quantizers]
        return codes, dec.run(None, {dec_in: codes})[0]

    return run


def eager_runner(model, n_quantizers: int):
    def run(audio: torch.Tensor):
        with torch.inference_mode():
            codes = model.encode_codes(audio, n_quantizers=n_quantizers)
            return codes, model.decode_codes(codes, audio.shape[-1])

    return run


def hf_runner(model, bandwidth: float):
    def run(audio: torch.Tensor):
        with torch.inference_mode():
            out = model.encode(audio, bandwidth=bandwidth)
            wav = model.decode(out.audio_codes, out.audio_scales)[0]
            return out.audio_codes[0], wav

    return run


def hf_encodec(folder: Path):
    """transformers' full-size 24 kHz EncodecModel with usable codebooks, saved."""
    import transformers

    torch.manual_seed(0)
    ref = transformers.EncodecModel(transformers.EncodecConfig()).eval()
    encodec_codebooks(ref)
    ref.save_pretrained(folder / "hf")
    return ref


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--bandwidth", type=float, default=6.0, help="kbps (EnCodec: 6 -> "
                        "8 codebooks)")
    parser.add_argument("--out", type=Path, default=Path("onnx_vs_torch.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="onnx_vs_torch_") as folder:
        result = measure(args, Path(folder))
    args.out.write_text(json.dumps(result, indent=2))
    for name, value in result["rtf"].items():
        print(f"{name:40s} RTF {value:.4f}")
    for name, value in result["speedup"].items():
        print(f"{name:48s} {value['best']:.2f}x (median per round "
              f"{value['median_per_round']:.2f}x, process CPU time {value['cpu_time']:.2f}x)")
    print(json.dumps(result["checks"], indent=2))
    print(f"load before: {result['load_before']}\nload after:  {result['load_after']}")


def measure(args: argparse.Namespace, tmp: Path) -> dict:
    """Build, export, check and time every model (see the module docstring)."""
    import audio_core
    from audio_core.engine.imports import import_model
    from audio_core.engine.onnx_export import export_onnx

    before = load_average()
    ref = hf_encodec(tmp)
    ours = audio_core.load(import_model(tmp / "hf", tmp / "imported"))
    n_enc = ours.n_quantizers_for_bandwidth(args.bandwidth)
    export_onnx(ours, tmp / "imported_onnx", check=False)
    _, soundstream = build_preset("soundstream.24khz")
    export_onnx(soundstream, tmp / "soundstream_onnx", check=False)
    n_ss = soundstream.codec_spec().num_codebooks

    audio = 0.1 * torch.randn(1, 1, int(args.seconds * RATE),
                              generator=torch.Generator().manual_seed(1))
    runners = {
        "soundstream.24khz eager": (eager_runner(soundstream, n_ss), audio),
        "soundstream.24khz onnxruntime": (onnx_runner(tmp / "soundstream_onnx", args.threads,
                                                      n_ss), audio.numpy()),
        "encodec_24khz transformers": (hf_runner(ref, args.bandwidth), audio),
        "encodec_24khz audio-core eager": (eager_runner(ours, n_enc), audio),
        "encodec_24khz audio-core onnxruntime": (
            onnx_runner(tmp / "imported_onnx", args.threads, n_enc), audio.numpy()),
    }
    outputs = {name: run(x) for name, (run, x) in runners.items()}  # warm-up + checks
    hf_codes, hf_wav = outputs["encodec_24khz transformers"]
    checks = {}
    for name in ("encodec_24khz audio-core eager", "encodec_24khz audio-core onnxruntime"):
        codes, wav = (torch.as_tensor(np.asarray(t)) for t in outputs[name])
        checks[name] = {"codes_equal": bool(torch.equal(codes.long(), hf_codes.long())),
                        "distinct_codes": int(codes.unique().numel()),
                        "audio_max_abs_diff": float((wav[..., :hf_wav.shape[-1]].float()
                                                     - hf_wav.float()).abs().max())}
    times: dict[str, list[float]] = {name: [] for name in runners}
    cpu: dict[str, list[float]] = {name: [] for name in runners}
    names = list(runners)
    for r in range(args.rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:  # rotated order
            run, x = runners[name]
            start, start_cpu = time.perf_counter(), time.process_time()
            run(x)
            times[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    best = {name: min(t) for name, t in times.items()}
    best_cpu = {name: min(t) for name, t in cpu.items()}
    rtf = {name: t / args.seconds for name, t in best.items()}

    def ratio(slow: str, fast: str) -> dict[str, float]:
        per_round = [a / b for a, b in zip(times[slow], times[fast], strict=True)]
        return {"best": best[slow] / best[fast], "median_per_round":
                statistics.median(per_round), "cpu_time": best_cpu[slow] / best_cpu[fast],
                "per_round": per_round}

    result = {
        "threads": args.threads, "rounds": args.rounds, "seconds": args.seconds,
        "bandwidth_kbps": args.bandwidth, "codebooks": {"encodec": n_enc, "soundstream": n_ss},
        "torch": torch.__version__, "load_before": before, "load_after": load_average(),
        "rtf": rtf, "times_s": times, "cpu_times_s": cpu, "checks": checks,
        "speedup": {
            "soundstream onnxruntime vs eager": ratio("soundstream.24khz eager",
                                                      "soundstream.24khz onnxruntime"),
            "encodec audio-core eager vs transformers": ratio(
                "encodec_24khz transformers", "encodec_24khz audio-core eager"),
            "encodec audio-core onnxruntime vs transformers": ratio(
                "encodec_24khz transformers", "encodec_24khz audio-core onnxruntime"),
            "encodec onnxruntime vs audio-core eager": ratio(
                "encodec_24khz audio-core eager", "encodec_24khz audio-core onnxruntime"),
        },
    }
    return result


if __name__ == "__main__":
    main()
