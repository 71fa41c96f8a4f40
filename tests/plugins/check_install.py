"""Install-story check of one model family (tox -e bsq, tox -e soundstream, ...).

``python check_install.py NAME SOURCE_TREE``: audio-core and audio_plugin_NAME must be
imported from installed wheels (not from SOURCE_TREE), and ``audio-core plugins --json``
must list exactly the built-in ``core`` and NAME, loaded from distribution
audio-plugin-NAME, with components all inside the ``NAME.`` namespace. Not collected by
pytest.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path


def main(name: str, source: Path) -> None:
    import audio_core

    plugin = importlib.import_module(f"audio_plugin_{name}")
    for module, tree in ((audio_core, source / "core"), (plugin, source / "plugins" / name)):
        where = Path(module.__file__).resolve()
        assert "site-packages" in where.parts and tree.resolve() not in where.parents, \
            f"{module.__name__} imported from {where}, not from an installed wheel"
    out = subprocess.run(["audio-core", "plugins", "--json"], capture_output=True, text=True,
                         check=True).stdout
    plugins = {p["name"]: p for p in json.loads(out)}
    assert set(plugins) == {"core", name}, f"expected only core and {name}: {sorted(plugins)}"
    info = plugins[name]
    assert info["status"] == "loaded", info["reason"]
    assert info["distribution"] == f"audio-plugin-{name}"
    assert info["components"], f"{name} registered no components"
    assert all(c.startswith(f"{name}.") for c in info["components"]), info["components"]
    print(f"audio-core plugins: {name} {info['version']} loaded with "
          f"{', '.join(info['components'])}")


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
