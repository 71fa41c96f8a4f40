"""Kinds are registered records and plugins add sub-commands (issue 22 item 2).

The real example plugin (tests/plugins/audio-plugin-example) adds the ``augmentation``
kind, one component of it and the ``audio-core frames`` command; in-memory plugins
(:mod:`conftest`) add components of that kind, break its contract, clash with core's kinds
and commands.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from audio_core.cli import main
from audio_core.contracts.components import ContractError
from audio_core.errors import ConfigError
from audio_core.plugins import PluginManager
from audio_core.plugins import manager as manager_module

AUGMENTER = '''
@hookimpl
def audio_core_register_augmentations(registry):
    registry.register("flip", "{module}:Flip")
    registry.register("careless", "{module}:Careless")
'''

AUGMENTATIONS = '''
from torch import nn


class Flip(nn.Module):
    probability = 1.0

    def forward(self, audio):
        return -audio


class Careless(nn.Module):
    """Forgets ``probability``, which the augmentation contract requires."""

    def forward(self, audio):
        return audio
'''


@pytest.fixture
def with_example(clean_env, make_plugin):
    """``with_example(*entry_points)`` -> a loaded manager with the installed plugins and
    ``entry_points``, also installed as the process-wide manager the CLI uses."""
    import importlib.metadata as md

    installed = list(md.entry_points(group="audio_core"))

    def build(*eps, order="after"):
        eps = [*eps, *installed] if order == "before" else [*installed, *eps]
        manager = PluginManager(entry_points=eps, environ={}).load()
        clean_env.setattr(manager_module, "_manager", manager)
        return manager

    return build


def _augmenter(make_plugin):
    module = make_plugin.module(AUGMENTATIONS, "augmentations")
    return make_plugin("augmenter", AUGMENTER.replace("{module}", module))


def test_the_example_plugin_adds_a_kind_with_its_hook_and_contract(with_example):
    manager = with_example()
    kind = manager.kinds["augmentation"]
    assert (kind.plugin, kind.hook) == ("example", "audio_core_register_augmentations")
    assert kind.resolve_contract().__name__ == "Augmentation"
    gain = manager.registry.build("augmentation", "example.gain",
                                  {"min_db": 6.0, "max_db": 6.0})
    audio = torch.ones(2, 1, 8)
    assert torch.allclose(gain(audio), audio * 10 ** (6 / 20))


@pytest.mark.parametrize("order", ["after", "before"])
def test_another_plugin_registers_components_of_that_kind_whatever_the_load_order(
        with_example, make_plugin, order):
    manager = with_example(_augmenter(make_plugin), order=order)
    assert manager.plugins["augmenter"].status == "loaded", manager.plugins["augmenter"].reason
    flip = manager.registry.build("augmentation", "augmenter.flip")
    assert torch.equal(flip(torch.ones(1, 1, 4)), -torch.ones(1, 1, 4))


def test_a_component_that_breaks_a_plugin_kinds_contract_is_refused_naming_the_member(
        with_example, make_plugin):
    manager = with_example(_augmenter(make_plugin))
    with pytest.raises(ContractError, match=r"augmentation 'augmenter.careless'.*"
                       r"contracts.Augmentation\): missing probability"):
        manager.registry.build("augmentation", "augmenter.careless", path="augment")


def test_components_of_a_kind_nobody_added_make_the_plugin_broken(clean_env, make_plugin):
    manager = PluginManager(entry_points=[_augmenter(make_plugin)], environ={}).load()
    info = manager.plugins["augmenter"]
    assert info.status == "broken"
    assert "unknown hook 'audio_core_register_augmentations'" in info.reason
    with pytest.raises(ConfigError, match="unknown component kind 'augmentation'"):
        manager.registry.names("augmentation")


def test_a_kind_that_clashes_with_cores_breaks_only_that_plugin(manager, make_plugin):
    ep = make_plugin("clash", '''
@hookimpl
def audio_core_register_kinds(kinds):
    kinds.register("encoder", description="mine")
''')
    loaded = manager(ep)
    assert loaded.plugins["clash"].status == "broken"
    assert ("kind 'encoder' is registered twice: by plugin 'core' (audio-core) and by "
            "plugin 'clash' (audio-plugin-clash)") in loaded.plugins["clash"].reason
    assert loaded.kinds["encoder"].plugin == "core"


@pytest.mark.parametrize("source, message", [
    ('kinds.register("Bad Name")', "kind names are lower case"),
    ('kinds.register("thing", hook="register_things")', "hook names start with"),
    ('kinds.register("thing", contract="not a target")', "give a class or a"),
])
def test_bad_kind_records_are_refused_with_the_reason(manager, make_plugin, source, message):
    ep = make_plugin("bad", f"@hookimpl\ndef audio_core_register_kinds(kinds):\n    {source}\n")
    info = manager(ep).plugins["bad"]
    assert info.status == "broken" and message in info.reason


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "audio_core", *args], capture_output=True,
                          text=True, timeout=120)


def test_a_plugin_command_runs_by_its_short_and_full_names_and_is_listed_in_help():
    assert _cli("frames", "1.5").stdout == "24000 samples -> 150 frames\n"
    assert _cli("example.frames", "2", "--hop-length", "320").stdout == \
        "32000 samples -> 100 frames\n"
    listing = _cli("--help").stdout
    assert "frames (example.frames)" in listing and "(plugin 'example')" in listing
    assert "--hop-length" in _cli("frames", "--help").stdout


def test_a_plugin_commands_bad_value_is_one_line():
    done = _cli("frames", "nan")
    assert done.returncode == 1
    assert done.stderr == "audio-core: error: seconds: nan is not a number in (0, 1e7]\n"


def test_core_commands_do_not_load_plugins(monkeypatch):
    def refuse():
        raise AssertionError("plugins loaded for a built-in command")

    monkeypatch.setattr("audio_core.plugins.get_plugin_manager", refuse)
    with pytest.raises(SystemExit) as done:
        main(["train", "--help"])
    assert done.value.code == 0


COMMANDS = '''
@hookimpl
def audio_core_register_commands(registry):
    registry.register("train", "{module}:Shadow")
    registry.register("explode", "{module}:Explode")
    registry.register("incomplete", "{module}:Incomplete")
'''

COMMAND_CLASSES = '''
class Shadow:
    description = "a plugin command named like core's train"

    def add_arguments(self, parser):
        pass

    def run(self, args):
        print("shadow ran")
        return 0


class Explode(Shadow):
    description = "raises"

    def run(self, args):
        raise RuntimeError("kaboom")


class Incomplete:
    description = "no run()"

    def add_arguments(self, parser):
        pass
'''


def test_plugin_commands_never_shadow_core_and_their_failures_are_one_line(
        with_example, make_plugin, capsys):
    module = make_plugin.module(COMMAND_CLASSES, "commands")
    with_example(make_plugin("tools", COMMANDS.replace("{module}", module)))
    assert main(["tools.train"]) == 0
    assert capsys.readouterr().out == "shadow ran\n"
    assert main(["explode"]) == 1
    assert capsys.readouterr().err == ("audio-core: error: command 'tools.explode' from "
                                       "plugin 'tools' (audio-plugin-tools 1.0.0) failed: "
                                       "RuntimeError: kaboom\n")
    assert main(["incomplete"]) == 1
    err = capsys.readouterr().err
    assert "command 'tools.incomplete'" in err and "missing run()" in err
    assert main(["train"]) != 0  # `train` stays core's: it wants a config
    assert "train needs CONFIG" in capsys.readouterr().err
