"""Loading plugins from fake distributions: success, conflicts, broken plugins, hooks."""

from __future__ import annotations

import importlib.metadata as md
import json

import pytest

from audio_core.contracts.components import ContractError
from audio_core.errors import ComponentConflictError, PluginLoadError
from audio_core.plugins import KINDS, PluginManager
from audio_core.plugins.hookspecs import KIND_HOOKS

ENCODER = '''
@hookimpl
def audio_core_register_encoders(registry):
    registry.register("enc", "builtins:dict", description="an encoder")
'''

TRIPWIRE = 'raise RuntimeError("this module must never be imported")\n'


def plugin_names(pm, kind: str) -> list[str]:
    """Registered names of ``kind`` that are not audio-core's own built-ins."""
    return [n for n in pm.registry.names(kind) if not n.startswith("core.")]


def test_plugin_registers_namespaced_components_with_their_origin(make_plugin, manager):
    ep = make_plugin("alpha", ENCODER, dist="audio-plugin-alpha", version="2.3.4")
    pm = manager(ep)
    info = pm.plugins["alpha"]
    assert info.status == "loaded" and info.reason is None
    assert (info.distribution, info.version, info.module) == ("audio-plugin-alpha", "2.3.4",
                                                              ep.value)
    assert info.hooks == ("audio_core_register_encoders",)
    assert info.components == ("alpha.enc",)
    spec = pm.registry.get("encoder", "alpha.enc")
    assert (spec.plugin, spec.distribution, spec.version) == ("alpha", "audio-plugin-alpha",
                                                              "2.3.4")
    assert spec.description == "an encoder"
    assert spec.origin == "plugin 'alpha' (audio-plugin-alpha 2.3.4)"
    with pytest.raises(ContractError, match=r"encoder 'alpha.enc' \(dict from plugin 'alpha' "
                                            r"\(audio-plugin-alpha 2.3.4\)\)"):
        pm.registry.build("encoder", "alpha.enc", {"x": 1})


def test_core_builtins_are_plugin_core_from_audio_core(manager):
    pm = manager()
    core = pm.plugins["core"]
    assert core.builtin and core.status == "loaded"
    assert (core.distribution, core.module) == ("audio-core", "audio_core.plugins.builtin")
    assert "core.synthetic" in core.components
    spec = pm.registry.get("dataset", "core.synthetic")
    assert (spec.plugin, spec.distribution) == ("core", "audio-core")
    assert all(s.name.startswith("core.") for s in pm.registry.specs() if s.plugin == "core")


def test_every_kind_has_a_hook(make_plugin, manager):
    source = "".join(
        f"@hookimpl\ndef {hook}(registry):\n    registry.register('x', 'builtins:dict')\n\n"
        for kind, hook in KIND_HOOKS.items() if kind != "preset")
    pm = manager(make_plugin("every", source))
    assert pm.plugins["every"].status == "loaded", pm.plugins["every"].reason
    for kind in KINDS:
        assert (("every.x" in pm.registry.names(kind)) == (kind != "preset"))


def test_plugin_info_is_json_serialisable(make_plugin, manager):
    pm = manager(make_plugin("alpha", ENCODER))
    data = json.loads(json.dumps([p.to_dict() for p in pm.plugins.values()]))
    alpha = next(d for d in data if d["name"] == "alpha")
    assert alpha["components"] == ["alpha.enc"] and alpha["status"] == "loaded"


def test_load_is_idempotent(make_plugin):
    pm = PluginManager(entry_points=[make_plugin("alpha", ENCODER)], environ={})
    assert pm.load() is pm.load()
    assert plugin_names(pm, "encoder") == ["alpha.enc"]


# -- collisions -------------------------------------------------------------------------


def test_two_distributions_claiming_one_plugin_name_is_an_error(make_plugin):
    first = make_plugin("dup", TRIPWIRE, dist="audio-plugin-first")
    second = make_plugin("dup", TRIPWIRE, dist="audio-plugin-second")
    pm = PluginManager(entry_points=[first, second], environ={})
    with pytest.raises(ComponentConflictError) as err:
        pm.load()
    message = str(err.value)
    assert "'dup'" in message
    assert "audio-plugin-first" in message and "audio-plugin-second" in message
    assert "AUDIO_CORE_BLOCK_PLUGINS" in message
    # Raised during discovery: neither plugin was imported, and a retry raises again.
    assert not make_plugin.imported(first.value) and not make_plugin.imported(second.value)
    with pytest.raises(ComponentConflictError):
        pm.load()


def test_plugin_claiming_the_core_namespace_conflicts_with_audio_core(make_plugin):
    ep = make_plugin("core", TRIPWIRE, dist="audio-plugin-usurper")
    with pytest.raises(ComponentConflictError, match="audio-core and audio-plugin-usurper"):
        PluginManager(entry_points=[ep], environ={}).load()


def test_blocking_one_distribution_resolves_a_name_collision(make_plugin, manager):
    first = make_plugin("dup", ENCODER, dist="audio-plugin-first")
    second = make_plugin("dup", TRIPWIRE, dist="audio-plugin-second")
    pm = manager(first, second, environ={"AUDIO_CORE_BLOCK_PLUGINS": "audio-plugin-second"})
    assert pm.plugins["dup"].status == "loaded"
    assert pm.plugins["dup"].distribution == "audio-plugin-first"
    assert plugin_names(pm, "encoder") == ["dup.enc"]
    assert not make_plugin.imported(second.value)
    # The blocked one may also come first.
    pm = manager(second, first, environ={"AUDIO_CORE_BLOCK_PLUGINS": "audio-plugin-second"})
    assert pm.plugins["dup"].distribution == "audio-plugin-first"


def test_same_distribution_seen_twice_is_not_a_collision(make_plugin, manager):
    ep = make_plugin("alpha", ENCODER)
    pm = manager(ep, ep)
    assert pm.plugins["alpha"].status == "loaded"


def test_component_registered_twice_breaks_the_plugin(make_plugin, manager):
    source = '''
    @hookimpl
    def audio_core_register_encoders(registry):
        registry.register("enc", "builtins:dict")
        registry.register("enc", "builtins:list")
    '''
    pm = manager(make_plugin("twice", source, dist="audio-plugin-twice"),
                 make_plugin("alpha", ENCODER))
    info = pm.plugins["twice"]
    assert info.status == "broken"
    assert "encoder 'twice.enc' is registered twice" in info.reason
    assert "audio-plugin-twice" in info.reason
    assert "twice.enc" not in pm.registry.names("encoder")
    assert pm.plugins["alpha"].status == "loaded"


# -- broken plugins ---------------------------------------------------------------------


def test_import_error_marks_the_plugin_broken_and_others_still_load(make_plugin, manager):
    broken = make_plugin("shaky", ENCODER + "\nimport no_such_module_for_audio_core_tests\n",
                         dist="audio-plugin-shaky")
    pm = manager(broken, make_plugin("alpha", ENCODER))
    info = pm.plugins["shaky"]
    assert (info.name, info.distribution, info.status) == ("shaky", "audio-plugin-shaky",
                                                           "broken")
    assert info.reason.startswith("import failed: ModuleNotFoundError")
    assert "no_such_module_for_audio_core_tests" in info.reason
    assert pm.broken == [info]
    assert pm.plugins["alpha"].status == "loaded"
    assert pm.plugins["core"].status == "loaded"
    assert "shaky.enc" not in pm.registry.names("encoder")
    with pytest.raises(PluginLoadError) as err:
        pm.registry.build("encoder", "shaky.enc", {}, path="model.encoder")
    message = str(err.value)
    assert "at model.encoder" in message and "audio-plugin-shaky" in message
    assert "failed to load" in message and "no_such_module_for_audio_core_tests" in message


def test_a_module_that_raises_on_import_is_broken(make_plugin, manager):
    pm = manager(make_plugin("boom", 'raise RuntimeError("kaput")\n'))
    assert pm.plugins["boom"].reason == "import failed: RuntimeError: kaput"


def test_misspelled_hook_is_rejected_with_a_suggestion(make_plugin, manager):
    source = '''
    @hookimpl
    def audio_core_register_encoder(registry):
        registry.register("enc", "builtins:dict")
    '''
    ep = make_plugin("typo", source)
    pm = manager(ep, make_plugin("alpha", ENCODER))
    info = pm.plugins["typo"]
    assert info.status == "broken"
    assert "unknown hook 'audio_core_register_encoder'" in info.reason
    assert "did you mean 'audio_core_register_encoders'?" in info.reason
    assert plugin_names(pm, "encoder") == ["alpha.enc"]
    # The rejected plugin's hooks are unregistered: a later plugin is not blamed for them.
    assert all(i.plugin_name != "typo" for i in pm.pm.hook.audio_core_register_encoder
               .get_hookimpls())


def test_hook_without_hookimpl_marker_is_rejected(make_plugin, manager):
    source = '''
    def audio_core_register_encoders(registry):
        registry.register("enc", "builtins:dict")
    '''
    info = manager(make_plugin("plain", source)).plugins["plain"]
    assert info.status == "broken"
    assert "'audio_core_register_encoders' is not decorated with" in info.reason


def test_hook_with_a_wrong_argument_name_is_rejected(make_plugin, manager):
    source = '''
    @hookimpl
    def audio_core_register_encoders(reg):
        reg.register("enc", "builtins:dict")
    '''
    info = manager(make_plugin("badarg", source)).plugins["badarg"]
    assert info.status == "broken"
    assert "could not register hooks" in info.reason and "reg" in info.reason


def test_hook_may_omit_the_registry_argument(make_plugin, manager):
    source = '''
    @hookimpl
    def audio_core_register_encoders():
        pass
    '''
    info = manager(make_plugin("quiet", source)).plugins["quiet"]
    assert info.status == "loaded", info.reason
    assert info.components == ()


def test_hook_wrapper_is_rejected(make_plugin, manager):
    source = '''
    @hookimpl(wrapper=True)
    def audio_core_register_encoders(registry):
        registry.register("enc", "builtins:dict")
        return (yield)
    '''
    info = manager(make_plugin("wrapped", source)).plugins["wrapped"]
    assert info.status == "broken" and "must not be a wrapper" in info.reason


def test_hook_that_raises_breaks_the_plugin_and_drops_its_registrations(make_plugin, manager):
    source = '''
    @hookimpl
    def audio_core_register_encoders(registry):
        registry.register("enc", "builtins:dict")

    @hookimpl
    def audio_core_register_decoders(registry):
        registry.register("dec", "builtins:dict")
        raise ValueError("decoder table is corrupt")
    '''
    ep = make_plugin("partial", source, dist="audio-plugin-partial")
    pm = manager(ep, make_plugin("alpha", ENCODER))
    info = pm.plugins["partial"]
    assert info.status == "broken"
    assert info.reason == ("audio_core_register_decoders failed: ValueError: decoder table "
                           "is corrupt")
    assert info.components == ()
    assert [s.name for s in pm.registry.specs() if s.plugin == "partial"] == []
    assert plugin_names(pm, "encoder") == ["alpha.enc"]
    with pytest.raises(PluginLoadError, match="decoder table is corrupt"):
        pm.registry.get("encoder", "partial.enc")
    assert "partial" not in {i.plugin_name for i in pm.pm.hook.audio_core_register_encoders
                             .get_hookimpls()}


def test_registering_outside_the_namespace_is_refused(make_plugin, manager):
    source = '''
    @hookimpl
    def audio_core_register_encoders(registry):
        registry.register("core.mel", "builtins:dict")
    '''
    pm = manager(make_plugin("sneaky", source))
    info = pm.plugins["sneaky"]
    assert info.status == "broken"
    assert "outside its namespace" in info.reason and "'core.mel'" in info.reason
    assert "core.mel" not in pm.registry.names("encoder")


def test_registering_with_the_own_prefix_is_allowed(make_plugin, manager):
    source = '''
    @hookimpl
    def audio_core_register_encoders(registry):
        registry.register("mine.enc", "builtins:dict")
        registry.register("mine.sub.enc", "builtins:dict")
    '''
    pm = manager(make_plugin("mine", source))
    assert plugin_names(pm, "encoder") == ["mine.enc", "mine.sub.enc"]


def test_a_lazy_target_without_colon_is_refused_at_registration(make_plugin, manager):
    source = '''
    @hookimpl
    def audio_core_register_encoders(registry):
        registry.register("enc", "pkg.module.Encoder")
    '''
    info = manager(make_plugin("nocolon", source)).plugins["nocolon"]
    assert info.status == "broken" and "'package.module:Attribute'" in info.reason


def test_entry_point_must_name_a_module(make_plugin, manager):
    module = make_plugin.module(ENCODER)
    ep = make_plugin("attr", module=f"{module}:audio_core_register_encoders")
    info = manager(ep).plugins["attr"]
    assert info.status == "broken" and "must name a module" in info.reason


def test_dotted_plugin_name_is_rejected_before_import(make_plugin, manager):
    ep = make_plugin("a.b", TRIPWIRE)
    info = manager(ep).plugins["a.b"]
    assert info.status == "broken" and "invalid plugin name 'a.b'" in info.reason
    assert not make_plugin.imported(ep.value)


def test_in_memory_hook_module(monkeypatch, manager):
    """Hook modules need not exist on disk: any importable module will do."""
    import types

    from audio_core.plugins import hookimpl

    module = types.ModuleType("_acp_in_memory_hooks")

    @hookimpl
    def audio_core_register_tasks(registry):
        registry.register("l1", lambda weight=1.0: ("l1", weight))

    module.audio_core_register_tasks = audio_core_register_tasks
    monkeypatch.setitem(__import__("sys").modules, module.__name__, module)
    ep = md.EntryPoint(name="mem", value=module.__name__, group="audio_core")
    pm = manager(ep)
    assert pm.plugins["mem"].distribution is None
    assert pm.registry.build("task", "mem.l1", {"weight": 0.5}) == ("l1", 0.5)


def test_entry_points_of_other_groups_are_ignored(make_plugin, manager):
    ep = make_plugin("alpha", ENCODER)
    other = md.EntryPoint(name="alpha2", value=ep.value, group="console_scripts")
    pm = manager(ep, other)
    assert "alpha2" not in pm.plugins
