"""``audio-core plugins`` and ``audio-core components``: what is installed.

Neither imports torch: component targets are listed, not resolved.
"""

from __future__ import annotations

import argparse

from audio_core.cli.output import print_json, print_table
from audio_core.plugins.hookspecs import KINDS


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "plugins", help="list installed plugins and their status",
        description="List plugins (built-in and installed through the 'audio_core' entry-point "
                    "group): name, version, distribution, hooks, components and status "
                    "(loaded, broken, blocked, incompatible) with the reason.")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=run_plugins)

    c = subparsers.add_parser(
        "components", help="list registered components",
        description="List every registered component with its kind, plugin and description.")
    c.add_argument("--kind", help="only components of this kind (core's: "
                   f"{', '.join(KINDS)}; plugins may add kinds)")
    c.add_argument("--json", action="store_true", help="print JSON instead of a table")
    c.set_defaults(handler=run_components)

    k = subparsers.add_parser(
        "kinds", help="list component kinds (core's and those plugins add)",
        description="List every component kind: the plugin that added it, the hook that "
                    "registers its components and the contract they are checked against.")
    k.add_argument("--json", action="store_true", help="print JSON instead of a table")
    k.set_defaults(handler=run_kinds)


def run_plugins(args: argparse.Namespace) -> int:
    from audio_core.plugins import get_plugin_manager

    plugins = list(get_plugin_manager().plugins.values())
    if args.json:
        print_json([p.to_dict() for p in plugins])
        return 0
    rows = [(p.name, p.version, p.distribution, p.status + (f": {p.reason}" if p.reason else ""),
             ", ".join(h.removeprefix("audio_core_register_") for h in p.hooks),
             ", ".join(p.components)) for p in plugins]
    print_table("audio-core plugins",
                ("name", "version", "distribution", "status", "hooks", "components"), rows)
    return 0


def run_components(args: argparse.Namespace) -> int:
    from audio_core.plugins import get_plugin_manager

    specs = list(get_plugin_manager().registry.specs(args.kind))
    if args.json:
        print_json([{"kind": s.kind, "name": s.name, "plugin": s.plugin,
                     "distribution": s.distribution, "version": s.version,
                     "target": str(s.target) if isinstance(s.target, str) else repr(s.target),
                     "description": s.description} for s in specs])
        return 0
    print_table("audio-core components", ("kind", "name", "plugin", "description"),
                [(s.kind, s.name, s.plugin, s.description) for s in specs])
    return 0


def run_kinds(args: argparse.Namespace) -> int:
    from audio_core.plugins import get_plugin_manager

    rows = [{"kind": k.name, "plugin": k.plugin, "hook": k.hook,
             "contract": k.contract if isinstance(k.contract, str) or k.contract is None
             else f"{k.contract.__module__}:{k.contract.__qualname__}",
             "description": k.description} for k in get_plugin_manager().kinds]
    if args.json:
        print_json(rows)
        return 0
    print_table("audio-core kinds", ("kind", "plugin", "hook", "contract", "description"),
                [(r["kind"], r["plugin"], r["hook"], r["contract"] or "-", r["description"])
                 for r in rows])
    return 0
