"""A plugin whose import (or hook) calls ``sys.exit()`` or raises ``KeyboardInterrupt`` /
``SystemExit`` is a broken plugin: listed with the reason, never the end of the command."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from audio_core.errors import PluginLoadError

ENCODER = '''
@hookimpl
def audio_core_register_encoders(registry):
    registry.register("enc", "builtins:dict")
'''


@pytest.mark.parametrize(("body", "reason"), [
    ("import sys\nsys.exit(3)\n", "SystemExit: the plugin called sys.exit(3)"),
    ("import sys\nsys.exit()\n", "SystemExit: the plugin called sys.exit(None)"),
    ("raise SystemExit('bye')\n", "SystemExit: the plugin called sys.exit('bye')"),
    ("raise KeyboardInterrupt\n", "KeyboardInterrupt raised by the plugin"),
    ("raise GeneratorExit\n", "GeneratorExit"),
])
def test_an_import_that_exits_is_a_broken_plugin(make_plugin, manager, body, reason):
    exits = make_plugin("quitter", body + ENCODER)
    fine = make_plugin("fine", ENCODER)
    pm = manager(exits, fine)
    assert pm.plugins["quitter"].status == "broken"
    assert reason in pm.plugins["quitter"].reason
    assert pm.plugins["fine"].status == "loaded"  # the others still load
    with pytest.raises(PluginLoadError, match="quitter"):
        pm.registry.get("encoder", "quitter.enc")


def test_a_hook_that_exits_is_a_broken_plugin(make_plugin, manager):
    ep = make_plugin("hookexit", '''
@hookimpl
def audio_core_register_encoders(registry):
    import sys
    sys.exit(0)
''')
    info = manager(ep).plugins["hookexit"]
    assert info.status == "broken" and "sys.exit(0)" in info.reason


def test_a_lazy_component_module_that_exits_is_a_plugin_error(make_plugin, manager, tmp_path):
    (tmp_path / "_acp_lazy_exit.py").write_text("import sys\nsys.exit(5)\n")
    ep = make_plugin("lazy", '''
@hookimpl
def audio_core_register_encoders(registry):
    registry.register("enc", "_acp_lazy_exit:Thing")
''')
    pm = manager(ep)
    with pytest.raises(PluginLoadError, match="SystemExit"):
        pm.registry.get("encoder", "lazy.enc").resolve()
    sys.modules.pop("_acp_lazy_exit", None)


@pytest.mark.integration
def test_every_command_survives_an_installed_plugin_that_exits(tmp_path):
    """A real installed distribution (a .dist-info on sys.path) whose module calls
    sys.exit(0) at import: `audio-core plugins` still lists everything, exit code 0."""
    site = tmp_path / "site"
    info = site / "audio_plugin_quitter-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: audio-plugin-quitter\n"
                                   "Version: 1.0\n")
    (info / "entry_points.txt").write_text("[audio_core]\nquitter = audio_plugin_quitter\n")
    (site / "audio_plugin_quitter.py").write_text(textwrap.dedent("""
        import sys
        sys.exit(0)
    """))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), *sys.path])}
    env.pop("AUDIO_CORE_PLUGINS", None)
    env.pop("AUDIO_CORE_BLOCK_PLUGINS", None)
    proc = subprocess.run([sys.executable, "-m", "audio_core", "plugins"], env=env,
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "quitter" in proc.stdout and "broken" in proc.stdout
    assert "core" in proc.stdout  # the rest of the listing is there
    proc = subprocess.run([sys.executable, "-m", "audio_core", "config", "show", "demo"],
                          env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0 and "sample_rate: 16000" in proc.stdout
