"""What happens before a plugin is imported: block/allow lists and the audio-core range."""

from __future__ import annotations

import pytest

from audio_core.errors import PluginLoadError

ENCODER = '''
@hookimpl
def audio_core_register_encoders(registry):
    registry.register("enc", "builtins:dict")
'''
# A hooks module that must never be imported: importing it would mark the plugin broken.
TRIPWIRE = 'raise RuntimeError("this module must never be imported")\n'


# -- AUDIO_CORE_BLOCK_PLUGINS / AUDIO_CORE_PLUGINS ---------------------------------------


@pytest.mark.parametrize("blocked", ["victim", "audio-plugin-victim", "Audio_Plugin.Victim",
                                     "other, victim ,"])
def test_blocked_plugin_is_absent_and_never_imported(make_plugin, manager, blocked):
    victim = make_plugin("victim", TRIPWIRE, dist="audio-plugin-victim")
    pm = manager(victim, make_plugin("alpha", ENCODER),
                 environ={"AUDIO_CORE_BLOCK_PLUGINS": blocked})
    info = pm.plugins["victim"]
    assert (info.status, info.reason) == ("blocked", "blocked by AUDIO_CORE_BLOCK_PLUGINS")
    assert info.components == ()
    assert not make_plugin.imported(victim.value)
    assert not [s for s in pm.registry.specs() if s.plugin == "victim"]
    assert pm.plugins["alpha"].status == "loaded"


def test_using_a_blocked_plugins_component_says_why(make_plugin, manager):
    pm = manager(make_plugin("victim", ENCODER),
                 environ={"AUDIO_CORE_BLOCK_PLUGINS": "victim"})
    assert ("encoder", "victim.enc") not in pm.registry
    with pytest.raises(PluginLoadError, match="was not loaded: blocked by "
                                              "AUDIO_CORE_BLOCK_PLUGINS"):
        pm.registry.build("encoder", "victim.enc", {}, path="model.encoder")


def test_builtins_cannot_be_blocked(manager):
    pm = manager(environ={"AUDIO_CORE_BLOCK_PLUGINS": "core,audio-core", "AUDIO_CORE_PLUGINS": ""})
    assert pm.plugins["core"].status == "loaded"


def test_allow_list_loads_only_listed_plugins(make_plugin, manager):
    kept = make_plugin("kept", ENCODER, dist="audio-plugin-kept")
    dropped = make_plugin("dropped", TRIPWIRE, dist="audio-plugin-dropped")
    pm = manager(kept, dropped, environ={"AUDIO_CORE_PLUGINS": "kept"})
    assert pm.plugins["kept"].status == "loaded"
    assert pm.plugins["core"].status == "loaded"
    info = pm.plugins["dropped"]
    assert (info.status, info.reason) == ("blocked", "not listed in AUDIO_CORE_PLUGINS")
    assert not make_plugin.imported(dropped.value)


def test_allow_list_accepts_distribution_names(make_plugin, manager):
    pm = manager(make_plugin("kept", ENCODER, dist="audio-plugin-kept"),
                 environ={"AUDIO_CORE_PLUGINS": "audio_plugin_kept"})
    assert pm.plugins["kept"].status == "loaded"


def test_empty_allow_list_loads_no_third_party_plugin(make_plugin, manager):
    ep = make_plugin("alpha", TRIPWIRE)
    pm = manager(ep, environ={"AUDIO_CORE_PLUGINS": ""})
    assert pm.plugins["alpha"].status == "blocked"
    assert pm.plugins["core"].status == "loaded"


def test_block_list_wins_over_allow_list(make_plugin, manager):
    ep = make_plugin("alpha", TRIPWIRE)
    pm = manager(ep, environ={"AUDIO_CORE_PLUGINS": "alpha", "AUDIO_CORE_BLOCK_PLUGINS": "alpha"})
    assert pm.plugins["alpha"].reason == "blocked by AUDIO_CORE_BLOCK_PLUGINS"


def test_manager_reads_os_environ_by_default(make_plugin, monkeypatch):
    from audio_core.plugins import PluginManager

    monkeypatch.setenv("AUDIO_CORE_BLOCK_PLUGINS", "alpha")
    monkeypatch.delenv("AUDIO_CORE_PLUGINS", raising=False)
    pm = PluginManager(entry_points=[make_plugin("alpha", TRIPWIRE)]).load()
    assert pm.plugins["alpha"].status == "blocked"


# -- the declared audio-core version range ----------------------------------------------


def test_incompatible_version_range_is_refused_before_import(make_plugin, manager):
    ep = make_plugin("future", TRIPWIRE, dist="audio-plugin-future",
                     requires=["torch", "audio-core>=9"])
    pm = manager(ep, make_plugin("alpha", ENCODER), core_version="0.1.0")
    info = pm.plugins["future"]
    assert info.status == "incompatible"
    assert info.reason == ("requires audio-core>=9 but audio-core 0.1.0 is installed; "
                           "upgrade one of them")
    assert not make_plugin.imported(ep.value)
    assert pm.plugins["alpha"].status == "loaded"
    with pytest.raises(PluginLoadError, match=r"audio-plugin-future.*requires audio-core>=9"):
        pm.registry.get("encoder", "future.enc", path="model.encoder")


@pytest.mark.parametrize(("requires", "core_version", "status"), [
    (["audio-core>=0.1,<1"], "0.1.0", "loaded"),
    (["audio-core>=0.1,<0.2"], "0.2.0", "incompatible"),
    (["audio_core<0.1"], "0.1.0", "incompatible"),           # name is normalised
    (["Audio.Core~=0.1.0"], "0.1.5", "loaded"),
    (["audio-core>=0.1"], "0.2.0rc1", "loaded"),             # pre-releases count
    (["audio-core>=9; extra == 'dev'"], "0.1.0", "loaded"),  # only an extra needs it
    (["audio-core-extras>=9"], "0.1.0", "loaded"),           # another distribution
    (["audio-core"], "0.1.0", "loaded"),                     # no range at all
    ([], "0.1.0", "loaded"),
])
def test_version_ranges(make_plugin, manager, requires, core_version, status):
    ep = make_plugin("ranged", ENCODER, requires=requires)
    info = manager(ep, core_version=core_version).plugins["ranged"]
    assert info.status == status, info.reason
