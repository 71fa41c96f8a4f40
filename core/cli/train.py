"""``audio-core train`` and ``audio-core export``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from audio_core.cli.numbers import non_negative_int


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    t = subparsers.add_parser(
        "train", help="train a model from a config",
        description="Train from CONFIG (preset name or YAML) with KEY=VALUE overrides. Runs "
                    "under plain python (one process), torchrun or the deepspeed launcher. "
                    "The run folder is run.output_dir/run.name; a folder that is not empty is "
                    "refused unless --resume RUN_DIR continues it from its newest complete "
                    "checkpoint (CONFIG may then be omitted: the run's saved config is used) "
                    "or --overwrite starts over (the old folder is renamed aside, not "
                    "deleted); --resume auto continues the config's run folder when it holds "
                    "a complete checkpoint and starts fresh otherwise (for requeued jobs). "
                    "Exit status: 0 finished, 1 error, 75 stopped by SIGTERM/SIGINT after "
                    "saving a checkpoint (resume it with --resume).")
    t.add_argument("config", nargs="?", metavar="CONFIG", help="preset name or YAML file")
    t.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    t.add_argument("--resume", metavar="RUN_DIR|auto",
                   help="continue this run; 'auto': the config's run folder if it holds a "
                        "complete checkpoint, else start fresh")
    t.add_argument("--overwrite", action="store_true",
                   help="start over in an existing run folder: the old one is renamed to "
                        "RUN_DIR.old-<time> first (nothing is deleted)")
    t.add_argument("--force-unlock", action="store_true",
                   help="break the run folder's lock although its holder seems alive (a "
                        "crashed host on a shared file system); a lock of a dead process "
                        "on this host is taken over without it")
    t.add_argument("--with-discriminators", action="store_true",
                   help="start the discriminators from those saved with model.init (an "
                        "export written with --with-discriminators, or a run folder): the "
                        "same as train.init_discriminators=true")
    t.add_argument("--local_rank", "--local-rank", type=non_negative_int, default=None,
                   help=argparse.SUPPRESS)  # passed by the deepspeed launcher
    t.set_defaults(handler=run_train)

    e = subparsers.add_parser(
        "export", help="export a run's weights to safetensors + config (or ONNX)",
        description="Write the model of RUN_DIR's newest checkpoint as consolidated fp32 "
                    "weights OUT/model.safetensors with OUT/config.yaml and OUT/export.json: "
                    "the EMA weights when the run kept them (train.ema_decay > 0), else the "
                    "raw weights. audio_core.load(OUT) rebuilds the whole inference model "
                    "(no losses or discriminators) in one call. --format onnx writes "
                    "OUT/encoder.onnx, OUT/decoder.onnx and OUT/onnx.json instead (RUN_DIR "
                    "may then also be an export folder).")
    e.add_argument("run_dir", metavar="RUN_DIR")
    e.add_argument("out", metavar="OUT")
    e.add_argument("--ema", action=argparse.BooleanOptionalAction, default=None,
                   help="--ema: the EMA weights (an error without them); --no-ema: the raw "
                        "weights (default: EMA when present)")
    e.add_argument("--checkpoint", metavar="PATH", help="a specific checkpoint folder")
    e.add_argument("--overwrite", action="store_true",
                   help="OUT holds files an export did not write: move it aside to "
                        "OUT.old-<time> (not deleted) and export into a new OUT")
    e.add_argument("--format", choices=("safetensors", "onnx", "onnx-streaming",
                                        "transformers"),
                   default="safetensors",
                   help="safetensors (default): the audio-core export; onnx: encoder and "
                        "decoder graphs (weight norm folded, dynamic batch and length), "
                        "checked against PyTorch with onnxruntime when it is installed; "
                        "onnx-streaming: step graphs of a causal codec with its streaming "
                        "state as explicit inputs/outputs; transformers: a save_pretrained "
                        "folder of the matching transformers model (EnCodec layout: "
                        "EncodecModel); the last two by installed exporters")
    e.add_argument("--with-discriminators", action="store_true",
                   help="also write the run's discriminators to "
                        "OUT/discriminators.safetensors (their config in export.json), so a "
                        "fine-tune can continue adversarially: train model.init=OUT "
                        "--with-discriminators (audio_core.load never reads them)")
    e.add_argument("--register", metavar="NAME",
                   help="also register the export as a new version of MLflow model NAME in "
                        "the run's MLflow store, with the run's latest metrics (default: "
                        "train.register_model of the run's config, if set)")
    e.set_defaults(handler=run_export)


def run_train(args: argparse.Namespace) -> int:
    from audio_core.launch.status import FINISHED, STOPPED, reporting

    with reporting() as status:  # for `audio-core launch`; a no-op without it
        trainer = _train(args)
        stopped = trainer.stopped_by_signal
        status.report(STOPPED if stopped else FINISHED, trainer.step)
    if stopped and status.directory is None:
        from audio_core.engine.run_dir import EXIT_STOPPED

        return EXIT_STOPPED
    # under `audio-core launch` a stopped rank exits 0, so that no launcher takes the stop for
    # a failure (deepspeed kills the other ranks, torchrun restarts); the supervisor exits 75
    return 0


def _train(args: argparse.Namespace):
    from audio_core.config import load_config
    from audio_core.engine.run_dir import (
        AUTO,
        auto_resume,
        prepare_run_dir,
        run_lock,
        setting_up,
    )
    from audio_core.engine.trainer import Trainer, run_dir_of
    from audio_core.errors import ConfigError

    overrides = list(args.overrides)
    source = args.config
    if source is not None and "=" in source and not Path(source).exists():
        overrides.insert(0, source)  # `train --resume RUN k=v`: no CONFIG given
        source = None
    auto = args.resume == AUTO
    if source is None:
        if auto:
            raise ConfigError("--resume auto needs CONFIG: its run.output_dir/run.name is the "
                              "run folder to continue")
        if not args.resume:
            raise ConfigError("train needs CONFIG (or --resume RUN_DIR)")
        saved = Path(args.resume) / "config.yaml"
        if not saved.is_file():
            raise ConfigError(f"--resume {args.resume}: not a run folder (no config.yaml)")
        source = str(saved)
    if args.with_discriminators:
        overrides.append("train.init_discriminators=true")
    cfg = load_config(source, overrides, check_params=True)
    resume, overwrite = bool(args.resume), args.overwrite
    run_dir = Path(args.resume) if resume else None
    if auto:
        if overwrite:
            raise ConfigError("--resume auto continues a run and --overwrite starts it over: "
                              "give one")
        mode = auto_resume(run_dir_of(cfg))
        resume, overwrite = mode == "resume", mode == "restart"
        run_dir = run_dir_of(cfg) if resume else None
        if int(os.environ.get("RANK", 0)) == 0:
            print(f"audio-core: --resume auto: {_AUTO_MESSAGES[mode]} {run_dir_of(cfg)}",
                  file=sys.stderr)
    target = run_dir or run_dir_of(cfg)
    # one training process group per run folder
    with run_lock(target, force=getattr(args, "force_unlock", False)):
        moved = prepare_run_dir(target, resume=resume, overwrite=overwrite, cfg=cfg)
        if moved is not None:
            flag = "--resume auto (no complete checkpoint)" if auto else "--overwrite"
            print(f"audio-core: {flag}: moved the previous run to {moved}", file=sys.stderr)
        main = int(os.environ.get("RANK", 0)) == 0
        if main:
            print(f"audio-core: run folder {target}", file=sys.stderr, flush=True)
        trainer = Trainer(cfg, run_dir=run_dir, resume=resume)
        with setting_up(target, fresh=not resume):  # a clear error; no half-made run left
            trainer.setup()
        trainer.fit()
        if main:
            state = "stopped" if trainer.stopped_by_signal else "finished"
            print(f"audio-core: {state} at step {trainer.step}; run folder {target} (export "
                  f"it: audio-core export {target} {target / 'export'})", file=sys.stderr,
                  flush=True)
    return trainer


_AUTO_MESSAGES = {"resume": "continuing", "fresh": "starting a new run in",
                  "restart": "no complete checkpoint; starting over in"}


def run_export(args: argparse.Namespace) -> int:
    from audio_core.engine.export import export_run

    if args.format != "safetensors":
        return _export_other(args)
    out = export_run(args.run_dir, args.out, ema=args.ema, checkpoint=args.checkpoint,
                     overwrite=args.overwrite, with_discriminators=args.with_discriminators)
    extra = " with its discriminators" if args.with_discriminators else ""
    print(f"exported {args.run_dir} to {out}{extra}")
    name = args.register or _registered_name(out)
    if name:
        from audio_core.tracking.mlflow_backend import register_export

        version = register_export(args.run_dir, out, name)
        print(f"registered {out} as MLflow model '{name}' version {version['version']} "
              f"({version['tracking_uri']})")
    return 0


def _export_other(args: argparse.Namespace) -> int:
    from audio_core.engine.imports import export_model
    from audio_core.engine.onnx_export import export_onnx
    from audio_core.errors import ConfigError
    from audio_core.inference.paths import check_format_target
    from audio_core.models.loading import load

    if args.checkpoint or args.register or args.with_discriminators:
        raise ConfigError(f"--format {args.format} exports RUN_DIR's newest checkpoint or an "
                          f"export folder; --checkpoint, --register and --with-discriminators "
                          f"are for --format safetensors")
    check_format_target(args.run_dir, args.out, overwrite=args.overwrite)
    model = load(args.run_dir, ema=args.ema)
    if args.format != "onnx":
        out = export_model(model, args.out, args.format)
        print(f"exported {args.run_dir} to {out} ({args.format})")
        return 0
    info = export_onnx(model, args.out)
    diff = info.get("max_abs_diff")
    checked = (f"onnxruntime vs PyTorch: max abs diff {diff}" if diff is not None
               else "not checked (onnxruntime is not installed)")
    print(f"exported {args.run_dir} to {args.out}/encoder.onnx and decoder.onnx; {checked}")
    return 0


def _registered_name(export_dir: Path) -> str | None:
    """``train.register_model`` of an export's config (``None``: not asked for)."""
    from audio_core.config import load_config

    return load_config(str(export_dir / "config.yaml")).train.register_model or None
