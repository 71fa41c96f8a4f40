"""``audio-core config show|validate``: the resolved config, and whether it is valid."""

from __future__ import annotations

import argparse
import sys

from audio_core.cli.numbers import count


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("config", help="show or validate a run config",
                              description="Show or validate run configs.")
    sub = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    show = sub.add_parser(
        "show", help="print the fully resolved config",
        description="Print the config after 'extends:' inheritance, overrides and "
                    "interpolation, with every default filled in.")
    show.add_argument("source", metavar="NAME|PATH", help="preset name or YAML file")
    show.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="overrides")
    show.set_defaults(handler=run_show)
    val = sub.add_parser(
        "validate", help="check a config by building everything train builds",
        description="Check types, value ranges, unknown keys, component names and each "
                    "component's params, then build what `train` builds before its first "
                    "step without training: the task's modules, the datasets (at least one "
                    "batch), each engine's DeepSpeed config and the trackers. --step also "
                    "runs the training step on one batch. Exit code 0 when valid, 1 "
                    "otherwise.")
    val.add_argument("source", metavar="NAME|PATH", help="preset name or YAML file")
    val.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="overrides")
    val.add_argument("--world-size", type=count, default=1, metavar="N",
                     help="check for N ranks (batch sizes, DeepSpeed config); default 1")
    val.add_argument("--step", action="store_true",
                     help="also run the training step on one batch (at the first and the "
                          "last step) with plain PyTorch: shape mismatches between "
                          "components show up here")
    val.set_defaults(handler=run_validate)


def run_show(args: argparse.Namespace) -> int:
    from audio_core.config import load_config, to_yaml

    sys.stdout.write(to_yaml(load_config(args.source, args.overrides)))
    return 0


def run_validate(args: argparse.Namespace) -> int:
    from audio_core.config import component_refs, load_config
    from audio_core.engine.dry_run import check_run_config
    from audio_core.errors import ConfigError

    if args.world_size < 1:
        raise ConfigError(f"--world-size must be >= 1, got {args.world_size}")
    cfg = load_config(args.source, args.overrides, check_params=True)
    report = check_run_config(cfg, world_size=args.world_size, step=args.step)
    refs = [f"{where}={ref.name}" for where, _, ref in component_refs(cfg)]
    print(f"{args.source}: valid ({len(refs)} components: {', '.join(refs)})\n"
          f"  {report.summary()}")
    return 0
