"""audio-core's own components, registered through the same hooks as any plugin.

Targets are ``"module:attribute"`` strings so that loading this module imports
nothing heavy.
"""

from __future__ import annotations

from pathlib import Path

from audio_core.plugins.hookspecs import hookimpl

PRESETS_DIR = Path(__file__).resolve().parent.parent / "presets"


@hookimpl
def audio_core_register_datasets(registry):
    registry.register("synthetic", "audio_core.data.synthetic:SyntheticDataset",
                      description="Procedural tones, chirps, noise bursts, hits and vowels")
    registry.register("folder", "audio_core.data.folders:FolderDataset",
                      description="Every audio file under a folder (recursive)")
    registry.register("class_folder", "audio_core.data.folders:ClassFolderDataset",
                      description="ImageNet-style ROOT/<class>/*.wav with integer labels")
    registry.register("split_folder", "audio_core.data.folders:SplitFolderDataset",
                      description="ROOT/<split>/... with train/val/test splits")


@hookimpl
def audio_core_register_presets(registry):
    for path in sorted(PRESETS_DIR.glob("*.yaml")):
        registry.register(path.stem, path, description=_preset_description(path))


def _preset_description(path: Path) -> str:
    """The first ``# `` comment line of a preset file."""
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.startswith("#"):
                return line.lstrip("# ").strip()
    return ""
