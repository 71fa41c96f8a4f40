"""``audio-core config show|validate``: the resolved config, and whether it is valid."""

from __future__ import annotations

import argparse
import sys


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
        "validate", help="check a config and the components it names",
        description="Check types, value ranges, unknown keys, component names and each "
                    "component's params. Exit code 0 when valid, 1 otherwise.")
    val.add_argument("source", metavar="NAME|PATH", help="preset name or YAML file")
    val.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="overrides")
    val.set_defaults(handler=run_validate)


def run_show(args: argparse.Namespace) -> int:
    from audio_core.config import load_config, to_yaml

    sys.stdout.write(to_yaml(load_config(args.source, args.overrides)))
    return 0


def run_validate(args: argparse.Namespace) -> int:
    from audio_core.config import component_refs, load_config

    cfg = load_config(args.source, args.overrides, check_params=True)
    refs = [f"{where}={ref.name}" for where, _, ref in component_refs(cfg)]
    print(f"{args.source}: valid ({len(refs)} components: {', '.join(refs)})")
    return 0
