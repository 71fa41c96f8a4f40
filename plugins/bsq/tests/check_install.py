"""Install-story check (tox -e bsq): the installed wheels, no other plugin, bsq listed.

``python check_install.py SOURCE_TREE``: audio_plugin_bsq must be imported from the
installed wheel (not from SOURCE_TREE), and ``audio-core plugins --json`` must list exactly
the built-in ``core`` and ``bsq``, loaded, with bsq's components. Not collected by pytest.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

EXPECTED = {"bsq.transformer", "bsq.bsq", "bsq.griffin_lim", "bsq.tokenizer", "bsq.tiny",
            "bsq.small", "bsq.standard", "bsq.large"}


def main(source: Path) -> None:
    import audio_plugin_bsq

    import audio_core

    for module, tree in ((audio_core, source / "core"),
                         (audio_plugin_bsq, source / "plugins" / "bsq")):
        where = Path(module.__file__).resolve()
        assert "site-packages" in where.parts and tree.resolve() not in where.parents, \
            f"{module.__name__} imported from {where}, not from an installed wheel"
    out = subprocess.run(["audio-core", "plugins", "--json"], capture_output=True, text=True,
                         check=True).stdout
    plugins = {p["name"]: p for p in json.loads(out)}
    assert set(plugins) == {"core", "bsq"}, f"expected only core and bsq, got {sorted(plugins)}"
    bsq = plugins["bsq"]
    assert bsq["status"] == "loaded", bsq["reason"]
    assert bsq["distribution"] == "audio-plugin-bsq"
    assert set(bsq["components"]) == EXPECTED, bsq["components"]
    print(f"audio-core plugins: bsq {bsq['version']} loaded with {', '.join(bsq['components'])}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
