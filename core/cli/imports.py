"""``audio-core import``: convert a model saved by another framework into an export."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    i = subparsers.add_parser(
        "import", help="convert a model saved elsewhere (transformers) into an export",
        description="Convert the model in folder SRC (e.g. a transformers save_pretrained "
                    "folder of EncodecModel) into an audio-core export OUT (model.safetensors, "
                    "config.yaml, export.json), loadable with audio_core.load(OUT) and every "
                    "inference command. The importer is the installed one that recognises SRC "
                    "(see 'audio-core components --kind importer') unless --importer names "
                    "one. Weights are read from safetensors, or from pytorch_model.bin with "
                    "torch.load(weights_only=True).")
    i.add_argument("src", metavar="SRC", help="folder holding the model to convert")
    i.add_argument("out", metavar="OUT", help="export folder to write (new or an export)")
    i.add_argument("--importer", metavar="NAME",
                   help="importer component to use, e.g. soundstream.encodec_hf")
    i.set_defaults(handler=run_import)


def run_import(args: argparse.Namespace) -> int:
    from audio_core.engine.imports import import_model

    out = import_model(args.src, args.out, importer=args.importer)
    print(f"imported {args.src} to {out}")
    return 0
