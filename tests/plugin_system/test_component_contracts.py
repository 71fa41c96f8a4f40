"""Component contracts in code: ``registry.build`` refuses a component that breaks its
kind's contract, naming what is missing; ``PluginUnderTest`` checks every component a
plugin registers; callers get the documented defaults from the contract."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from audio_core.contracts import components as contracts
from audio_core.contracts.components import ContractError, members
from audio_core.plugins import Registry
from audio_core.plugins.kinds import BUILTIN_KINDS, contract_of
from audio_core.testing import PluginUnderTest

BROKEN = '''
@hookimpl
def audio_core_register_encoders(registry):
    registry.register("no_hop", "{module}:NoHop")


@hookimpl
def audio_core_register_losses(registry):
    registry.register("nameless", "{module}:Nameless")
'''

COMPONENTS = '''
from torch import nn


class NoHop(nn.Module):
    """An encoder without hop_length, num_frames, frame_mask or intermediates."""

    def __init__(self, dim: int = 4):
        super().__init__()
        self.dim = dim

    def forward(self, waveform):
        return waveform


class Nameless(nn.Module):
    def forward(self, estimate, reference, mask=None):
        return (estimate - reference).abs().mean()
'''


class Complete(nn.Module, contracts.Encoder):
    def __init__(self, dim: int = 4, hop_length: int = 2) -> None:
        super().__init__()
        self.dim, self.hop_length = dim, hop_length

    def forward(self, waveform):
        return waveform[:, :, ::self.hop_length].expand(-1, self.dim, -1)


@pytest.fixture
def broken_plugin(make_plugin, tmp_path):
    module = make_plugin.module(COMPONENTS, "components")
    ep = make_plugin("broken", BROKEN.replace("{module}", module))
    return PluginUnderTest("broken", "audio-plugin-broken-not-installed", ep.value)


def test_every_component_kind_has_a_contract():
    kinds = {"encoder", "decoder", "quantizer", "vocoder", "denoiser", "conditioner",
             "objective", "sampler", "loss", "discriminator", "embedding", "dataset", "model",
             "command"}
    assert {k.name for k in BUILTIN_KINDS if k.contract is not None} == kinds
    assert contract_of("task") is None and contract_of("preset") is None
    assert members(contracts.Encoder) == {"intermediates": True, "dim": False,
                                          "hop_length": False, "forward": False,
                                          "num_frames": True, "frame_mask": True}
    assert members(contract_of("quantizer")) == {"intermediates": True, "forward": False}


def test_build_refuses_a_component_that_breaks_its_contract_naming_what_is_missing():
    reg = Registry()
    reg.view("encoder", "third", "audio-plugin-third", "1.0").register(
        "bad", lambda dim=4: nn.Identity())
    with pytest.raises(ContractError) as err:
        reg.build("encoder", "third.bad", {}, path="model.encoder")
    message = str(err.value)
    assert "encoder 'third.bad' at model.encoder (Identity from plugin 'third' " \
           "(audio-plugin-third 1.0)) breaks the encoder contract" in message
    for member in ("dim", "hop_length", "num_frames()", "frame_mask()", "intermediates()"):
        assert member in message
    assert "forward()" not in message  # nn.Identity has one
    assert "derive from audio_core.contracts.components.Encoder" in message
    assert err.value.path == "model.encoder"


def test_a_module_without_forward_misses_forward():
    class NoForward(nn.Module, contracts.Discriminator):
        pass

    assert contracts.missing_members(NoForward(), contracts.Discriminator) == ["forward()"]


def test_deriving_the_contract_gives_the_documented_defaults():
    enc = Complete()
    assert contracts.missing_members(enc, contracts.Encoder) == []
    assert isinstance(enc, contracts.Encoder) and enc.intermediates() == {}
    assert enc.num_frames(5) == 3
    mask = torch.tensor([[True, True, True, False, False], [True] * 5])
    assert enc.frame_mask(mask).tolist() == [[True, True, False], [True, True, True]]

    class Loss(nn.Module, contracts.Loss):
        name = "l"

    class Cond(contracts.Conditioner):
        dim = 3

    class Denoiser(contracts.Denoiser):
        dim = 2

    assert Loss().wants_output is False
    assert Cond().input_key is None and Cond().index("4") == 4
    assert Denoiser().length_multiple == 1 and Denoiser().extrapolates_length is True
    assert contracts.Decoder.dim is None and contracts.Dataset.units_per_item is None


def test_plugin_under_test_checks_the_example_plugin():
    plugin = PluginUnderTest("example", "audio-plugin-example", "audio_plugin_example.hooks")
    assert plugin.check_components() == {("encoder", "example.frame_encoder"): "built",
                                         ("command", "example.frames"): "built",
                                         ("augmentation", "example.gain"): "built"}


def test_plugin_under_test_names_every_broken_component(broken_plugin):
    with pytest.raises(AssertionError) as err:
        broken_plugin.check_components()
    lines = str(err.value).splitlines()
    assert len(lines) == 2
    assert "encoder 'broken.no_hop'" in lines[0] and "missing hop_length" in lines[0]
    assert "loss 'broken.nameless'" in lines[1]
    assert "missing name, wants_output" in lines[1]


def test_plugin_under_test_checks_classes_it_cannot_build(make_plugin):
    module = make_plugin.module('''
from torch import nn


class NeedsPath(nn.Module):
    def __init__(self, path: str):
        super().__init__()

    def forward(self, audio):
        return audio


class NoNull(nn.Module):
    def __init__(self, path: str):
        super().__init__()
''', "needs")
    ep = make_plugin("needs", f'''
@hookimpl
def audio_core_register_discriminators(registry):
    registry.register("d", "{module}:NeedsPath")
''')
    plugin = PluginUnderTest("needs", "audio-plugin-needs-not-installed", ep.value)
    assert plugin.check_components() == {("discriminator", "needs.d"): "class"}
    ep = make_plugin("nonull", f'''
@hookimpl
def audio_core_register_conditioners(registry):
    registry.register("c", "{module}:NoNull")
''')
    plugin = PluginUnderTest("nonull", "audio-plugin-nonull-not-installed", ep.value)
    with pytest.raises(AssertionError, match=r"conditioner 'nonull.c' \(NoNull\) breaks the "
                                             r"conditioner contract: missing forward\(\), "
                                             r"null\(\), index\(\)"):
        plugin.check_components()
