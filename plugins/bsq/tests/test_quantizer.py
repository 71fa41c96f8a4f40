"""BSQ quantizer: codes on the sphere, straight-through gradients, integer codes, usage."""

from __future__ import annotations

import math

import pytest
import torch
from audio_plugin_bsq.codes import bits_to_codes, codes_to_bits
from audio_plugin_bsq.quantizer import BinarySphericalQuantizer

from audio_core.contracts.models import DiscreteQuantizer


def test_quantized_points_are_exactly_plus_minus_one_over_sqrt_d():
    for bits in (8, 9, 18, 36):
        q = BinarySphericalQuantizer(bits, 24)
        z = torch.randn(3, 24, 50)
        u = q.sphere(z)
        points = q.binarize(u)
        scale = torch.tensor(1 / math.sqrt(bits), dtype=points.dtype)
        assert torch.equal(points.abs(), scale.expand_as(points))
        assert torch.equal(points > 0, u >= 0)
        torch.testing.assert_close(points.norm(dim=-1), torch.ones(3, 50))
        # the integer codes decode to the same points, bit for bit
        assert torch.equal(q.codes_to_sphere(q.encode(z)), points.detach())


def test_straight_through_gradient_is_the_identity_on_the_sphere():
    q = BinarySphericalQuantizer(8)
    u = torch.nn.functional.normalize(torch.randn(4, 5, 8), dim=-1).requires_grad_()
    g = torch.randn(4, 5, 8)
    (q.binarize(u) * g).sum().backward()
    assert torch.equal(u.grad, g)


def test_gradients_reach_the_encoder(model):
    """Reconstruction loss only (quantizer loss left out): it must cross the binarisation."""
    mel = -80 * torch.rand(2, 16, 32)
    recon = model(mel).reconstruction
    (recon - mel).square().mean().backward()
    for name in ("encoder.patch.proj.weight", "quantizer.proj_in.weight",
                 "encoder.transformer.blocks.0.attn.qkv.weight"):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_result_record_and_loss_terms():
    q = BinarySphericalQuantizer(8, 16, commitment_weight=0.5, entropy_weight=0.2,
                                 codebook_weight=0.7, group_size=4)
    z = torch.randn(2, 16, 30, requires_grad=True)
    out = q(z)
    assert out.latent.shape == (2, 16, 30) and out.codes.shape == (2, 1, 30)
    assert out.codes.dtype == torch.int64 and out.codes.min() >= 0 and out.codes.max() < 256
    assert out.bits_per_frame == 8.0
    m = out.metrics
    ln2 = math.log(2)
    expected = 0.5 * m["commitment"] + 0.2 * ln2 * (m["entropy_sample_bits"]
                                                    - 0.7 * m["entropy_codebook_bits"])
    torch.testing.assert_close(out.loss.detach(), expected)
    assert {"bit_balance", "unique_codes", "code_perplexity"} <= m.keys()
    out.loss.backward()
    assert z.grad.abs().sum() > 0


def test_usage_metrics():
    q = BinarySphericalQuantizer(4)
    same = q(torch.ones(1, 4, 16)).metrics  # every token the same code, every bit set
    assert same["unique_codes"] == pytest.approx(1 / 16)
    assert same["code_perplexity"] == pytest.approx(1.0)
    assert same["bit_balance"] == pytest.approx(1.0)
    all_codes = (torch.arange(16)[:, None] >> torch.arange(4)) & 1
    balanced = q(all_codes.T[None].float() * 2 - 1).metrics  # each of the 16 codes once
    assert balanced["unique_codes"] == 1.0 and balanced["bit_balance"] == 0.0
    assert balanced["code_perplexity"] == pytest.approx(16.0)


@pytest.mark.parametrize(("bits", "per", "k"), [(8, 8, 1), (18, 18, 1), (62, 62, 1), (36, 16, 3),
                                                (64, 62, 2)])
def test_integer_codes_round_trip(bits, per, k):
    b = torch.rand(5, 7, bits) > 0.5
    codes = bits_to_codes(b, per)
    assert codes.shape == (5, 7, k) and codes.min() >= 0
    assert torch.equal(codes_to_bits(codes, bits, per), b)


def test_code_is_little_endian_over_dimensions():
    b = torch.tensor([[1, 0, 1, 1, 0, 0, 0, 0, 0]], dtype=torch.bool)
    assert bits_to_codes(b, 9).item() == 1 + 4 + 8


def test_more_than_62_bits_split_into_several_codes():
    q = BinarySphericalQuantizer(70, 32)
    z = torch.randn(2, 32, 6)
    codes = q.encode(z)
    assert codes.shape == (2, 2, 6)
    torch.testing.assert_close(q.decode(codes), q(z).latent)
    with pytest.raises(ValueError, match="bits_per_code"):
        BinarySphericalQuantizer(8, bits_per_code=63)


def test_discrete_quantizer_contract_and_no_partial_code_sets():
    q = BinarySphericalQuantizer(70, 32, bits_per_code=30)  # 30 + 30 + 10 bits per token
    assert isinstance(q, DiscreteQuantizer) and not q.scalable
    assert (q.num_codebooks, q.codebook_bits) == (3, 30)
    z = torch.randn(2, 32, 6)
    codes = q.encode(z, n_quantizers=3)
    assert codes.shape == (2, 3, 6) and torch.equal(q(z, n_quantizers=3).codes, codes)
    for n in (1, 2, 4):
        for call in (q, q.encode):
            with pytest.raises(ValueError, match=f"not scalable.*must be None or 3, got {n}"):
                call(z, n_quantizers=n)
    with pytest.raises(ValueError, match=r"\(batch, 3, tokens\), got shape \(2, 2, 6\)"):
        q.decode(codes[:, :2])
