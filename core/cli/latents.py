"""``audio-core latents`` and ``audio-core stats``: latents of a frozen model as data."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from audio_core.cli.codec import non_negative, positive

MODEL_HELP = ("an export or run folder; or a config/preset, built untrained and seeded (for "
              "frozen encoders, whose latents do not depend on training)")
DATA_HELP = ("a folder of audio files (recursive), a caption list (.csv/.tsv/.jsonl with "
             "path,text), or a config/preset whose data.train (or --split val) is used")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    lat = subparsers.add_parser(
        "latents", help="pre-encode a dataset into latents with a frozen model",
        description="Encode every item of DATA (whole files, resampled to the model's rate "
                    "and channels) with MODEL and write OUT: sharded safetensors (one set per "
                    "rank under torchrun/deepspeed) and OUT/index.json with the model's "
                    "fingerprint and each item's path, label and caption. Re-running an "
                    "interrupted command resumes after the last complete shard. Train a "
                    "stage-2 model on it with data.train.name=core.latents.")
    lat.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    lat.add_argument("data", metavar="DATA", help=DATA_HELP)
    lat.add_argument("out", metavar="OUT")
    _data_options(lat)
    lat.add_argument("--overwrite", action="store_true",
                     help="start OUT over: its earlier contents are moved aside to "
                          "OUT.old-<time> (not deleted)")
    lat.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), default="float32",
                     help="storage type of the latents (default float32)")
    lat.add_argument("--shard-mb", type=positive, default=256.0,
                     help="target shard size in MB (default 256)")
    lat.add_argument("--shards", action="store_true",
                     help="write tar shards in the core.shards layout (KEY.npy + KEY.json, "
                          "index.json; float32 or float16) instead of safetensors shards: "
                          "copy OUT to object storage and train stage 2 with "
                          "data.train.name=core.shards, params.urls=OUT or its URL")
    lat.set_defaults(handler=run_latents)

    st = subparsers.add_parser(
        "stats", help="per-channel latent mean/std of a dataset",
        description="Measure the per-channel mean and standard deviation of MODEL's latents "
                    "over DATA (streaming, float64, merged over ranks) and write OUT "
                    "(safetensors: mean, std, count) plus OUT.json. DATA may also be a "
                    "latents folder from `audio-core latents` (read directly). Use OUT as "
                    "model.params.latent_stats.")
    st.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    st.add_argument("data", metavar="DATA", help=DATA_HELP + ", or a latents folder")
    st.add_argument("out", metavar="OUT", help="statistics file to write (.safetensors)")
    _data_options(st)
    st.add_argument("--overwrite", action="store_true",
                    help="replace an existing OUT or OUT.json that is not an earlier "
                         "statistics file (moved aside to NAME.old-<time>, not deleted)")
    st.add_argument("--features", action="store_true",
                    help="a frozen encoder's raw features (for that model's own "
                         "latent_stats) instead of model.encode's latents (for a stage-2 model)")
    st.set_defaults(handler=run_stats)


def _data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--split", choices=("train", "val"), default="train",
                   help="which dataset of a config DATA (default train)")
    p.add_argument("--labels", action="store_true",
                   help="DATA folder is ROOT/<class>/...: record class labels")
    p.add_argument("--chunk-seconds", type=positive, default=30.0,
                   help="encode long files in chunks of this length (default 30)")
    p.add_argument("--context-seconds", type=non_negative, default=1.0,
                   help="audio either side of a chunk encoded and discarded (default 1)")
    p.add_argument("--ema", action=argparse.BooleanOptionalAction, default=None,
                   help="run folders: EMA or raw weights (default: EMA when present)")


def load_model_or_config(spec: str, ema: bool | None = None) -> Any:
    """A trained model from an export/run folder, or an untrained (seeded) one from a config."""
    from audio_core.models.loading import load

    path = Path(spec)
    if path.is_dir():
        return load(path, ema=ema)
    import torch

    from audio_core.config import load_config
    from audio_core.models.build import build_model

    cfg = load_config(spec)
    with torch.random.fork_rng():
        torch.manual_seed(cfg.run.seed)
        model = build_model(cfg)
    model.config = cfg
    return model.eval()


def build_data(spec: str, model: Any, split: str = "train", labels: bool = False) -> Any:
    """The dataset DATA names, at the model's rate and channels, whole files."""
    from audio_core.plugins import get_registry

    registry = get_registry()
    path = Path(spec)
    context = {"sample_rate": model.sample_rate, "channels": model.channels,
               "segment_seconds": None, "seed": 0}
    if path.is_dir():
        name = "core.class_folder" if labels else "core.folder"
        return registry.build("dataset", name, {"root": str(path)}, path="DATA", context=context)
    if path.suffix.lower() in (".csv", ".tsv", ".jsonl", ".ndjson"):
        return registry.build("dataset", "core.captioned", {"captions": str(path)},
                              path="DATA", context=context)
    from audio_core.config import load_config
    from audio_core.errors import ConfigError

    cfg = load_config(spec)
    ref = getattr(cfg.data, split)
    if ref is None:
        raise ConfigError(f"{spec} has no data.{split}", f"data.{split}")
    return registry.build("dataset", ref.name, ref.params, path=f"data.{split}",
                          context=context)


def _distributed() -> tuple[int, int, Any]:
    from audio_core import distributed

    if distributed.launched():
        distributed.init_distributed()
    return distributed.rank(), distributed.world_size(), distributed.barrier


def _dtype(name: str) -> Any:
    import torch

    return getattr(torch, name)


def run_latents(args: argparse.Namespace) -> int:
    from audio_core.latents.encode import check_autoencoder, pre_encode
    from audio_core.latents.store import LatentsError

    if args.shards and args.dtype == "bfloat16":  # before any model or data is loaded
        raise LatentsError("--shards stores latents as .npy arrays: float32 or float16, not "
                           "bfloat16 (use --dtype float16)")
    from audio_core.latents.store import claim_latents_folder

    claim_latents_folder(args.out, {"MODEL": args.model, "DATA": args.data},
                         overwrite=args.overwrite)
    model = check_autoencoder(load_model_or_config(args.model, args.ema))
    dataset = build_data(args.data, model, args.split, args.labels)
    rank, world, barrier = _distributed()
    result = pre_encode(model, dataset, args.out, source=args.model, rank=rank,
                        world_size=world, chunk_seconds=args.chunk_seconds,
                        context_seconds=args.context_seconds, shard_mb=args.shard_mb,
                        dtype=_dtype(args.dtype), barrier=barrier, tar_shards=args.shards)
    if rank == 0:
        print(json.dumps({"out": args.out, **result}, indent=2))
    return 0


def run_stats(args: argparse.Namespace) -> int:
    from audio_core.files import write_text
    from audio_core.inference.paths import claim_outputs
    from audio_core.latents.encode import check_autoencoder, latent_statistics
    from audio_core.latents.store import INDEX_FILE
    from audio_core.models.fingerprint import model_fingerprint
    from audio_core.models.latent_stats import is_stats_output, save_stats

    claim_outputs({"OUT": args.out, "OUT.json": args.out + ".json"},
                  {"MODEL": args.model, "DATA": args.data}, overwrite=args.overwrite,
                  owned=is_stats_output)
    model = check_autoencoder(load_model_or_config(args.model, args.ema))
    rank, world, _ = _distributed()
    data: Any = args.data
    if not (Path(args.data) / INDEX_FILE).is_file():
        data = build_data(args.data, model, args.split, args.labels)
    moments, count = latent_statistics(model, data, chunk_seconds=args.chunk_seconds,
                                       context_seconds=args.context_seconds, rank=rank,
                                       world_size=world, features=args.features)
    if rank != 0:
        return 0
    stats = moments.result()
    meta = {"model": args.model, "fingerprint": model_fingerprint(model), "data": args.data,
            "items": count, "frames": int(stats["count"][0]),
            "latents": "features" if args.features else "encode"}
    out = save_stats(args.out, stats, **meta)
    summary = {**meta, "out": str(out), "mean": stats["mean"].tolist(),
               "std": stats["std"].tolist()}
    write_text(str(out) + ".json", json.dumps(summary, indent=2))
    print(json.dumps({k: v for k, v in summary.items() if k not in ("mean", "std")}, indent=2))
    return 0
