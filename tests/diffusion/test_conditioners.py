"""Conditioners: class labels, byte-level text and nothing -> Conditioning + learned null."""

from __future__ import annotations

import pytest
import torch

from audio_core.components.conditioners import ByteTextEncoder, ClassEmbedding, Unconditional


def test_class_embedding_shapes_and_null_for_missing_labels():
    torch.manual_seed(0)
    cond = ClassEmbedding(num_classes=5, dim=8)
    out = cond(torch.tensor([0, 3, -1, 3]))
    assert out.embeddings.shape == (4, 1, 8) and out.mask.shape == (4, 1)
    assert out.mask.dtype == torch.bool and bool(out.mask.all())
    assert torch.equal(out.embeddings[1], out.embeddings[3])
    assert torch.equal(out.embeddings[2, 0], cond.null_embedding[0])
    assert torch.equal(out.embeddings[0, 0], cond.embedding.weight[0])
    assert cond.input_key == "label" and cond.dim == 8


def test_gradient_reaches_the_null_embedding():
    cond = ClassEmbedding(num_classes=3, dim=4)
    cond(torch.tensor([1, -1])).embeddings.sum().backward()
    assert cond.null_embedding.grad is not None and cond.null_embedding.grad.abs().sum() > 0
    assert cond.embedding.weight.grad[1].abs().sum() > 0
    assert cond.embedding.weight.grad[0].abs().sum() == 0
    null = cond.null(3)
    assert null.embeddings.shape == (3, 1, 4) and bool(null.mask.all())
    assert isinstance(cond.null_embedding, torch.nn.Parameter)


def test_class_names():
    cond = ClassEmbedding(classes=["dog", "cat", "rain"], dim=4)
    assert cond.num_classes == 3 and cond.index("rain") == 2 and cond.index(1) == 1
    by_name = cond(["cat", "dog"])
    torch.testing.assert_close(by_name.embeddings, cond(torch.tensor([1, 0])).embeddings)
    with pytest.raises(ValueError, match=r"unknown class 'bird'.*'dog', 'cat', 'rain'"):
        cond.index("bird")
    with pytest.raises(ValueError, match=r"unknown class 3"):
        cond(torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="integer tensor"):
        cond(torch.tensor([0.5]))


@pytest.mark.parametrize(("params", "match"), [
    ({}, "num_classes"), ({"num_classes": 0}, "num_classes"),
    ({"num_classes": 2, "classes": ["a", "b", "c"]}, "does not match"),
    ({"classes": ["a", "a"]}, "distinct"), ({"num_classes": 2, "dim": 0}, "dim"),
])
def test_class_embedding_params_are_checked(params, match):
    with pytest.raises(ValueError, match=match):
        ClassEmbedding(**params)


def test_byte_text_shapes_masks_and_truncation():
    torch.manual_seed(0)
    enc = ByteTextEncoder(dim=16, max_tokens=6, layers=2, heads=2).eval()
    out = enc(["hi", "héllo world", ""])
    assert enc.input_key == "text"
    assert out.embeddings.shape == (3, 6, 16) and out.mask.shape == (3, 6)
    assert out.mask[0].tolist() == [True, True, False, False, False, False]
    assert bool(out.mask[1].all())  # "héllo world" is 12 bytes, truncated to 6
    assert out.mask[2].tolist() == [True, False, False, False, False, False]
    assert torch.equal(out.embeddings[2, 0], enc.null_embedding[0])
    assert torch.isfinite(out.embeddings).all()
    assert torch.equal(out.embeddings[0, 2:], torch.zeros(4, 16))


def test_byte_text_is_deterministic_and_independent_of_padding():
    torch.manual_seed(0)
    enc = ByteTextEncoder(dim=16, max_tokens=32, heads=4).eval()
    alone = enc(["a dog barks"])
    batched = enc(["a dog barks", "a much longer sentence about rain"])
    n = alone.embeddings.shape[1]
    torch.testing.assert_close(batched.embeddings[0, :n], alone.embeddings[0], atol=1e-5,
                               rtol=1e-5)
    assert torch.equal(enc(["a dog barks"]).embeddings, alone.embeddings)
    assert not torch.allclose(enc(["a cat barks"]).embeddings, alone.embeddings)


def test_byte_text_trains_end_to_end():
    enc = ByteTextEncoder(dim=8, max_tokens=8, heads=2)
    enc(["rain", None]).embeddings.sum().backward()
    for name, p in enc.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    with pytest.raises(TypeError, match="list of strings"):
        enc("rain")


def test_unconditional_is_always_the_null():
    cond = Unconditional(dim=6)
    out = cond([None, None, None])
    assert cond.input_key is None
    assert out.embeddings.shape == (3, 1, 6)
    torch.testing.assert_close(out.embeddings, cond.null(3).embeddings)
    assert cond(2).embeddings.shape == (2, 1, 6)
