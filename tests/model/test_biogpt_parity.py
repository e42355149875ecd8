"""Parity with transformers (test oracle): tiny random models saved by HF, loaded by our loader, fp32."""
from __future__ import annotations

import pytest
import torch

from model.biogpt import DenseAttention, positions_from_mask
from model.loader import load_model

transformers = pytest.importorskip("transformers")

TOL = 1e-5  # max abs logits difference, fp32 on CPU
HF_CONFIG = dict(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                 intermediate_size=64, max_position_embeddings=40)
HEAD_LABELS = {"BioGptForCausalLM": None, "BioGptForTokenClassification": 5,
               "BioGptForSequenceClassification": 2}  # 2 labels: HF writes no id2label


def randomize(model: torch.nn.Module, seed: int) -> None:
    """Large, seeded random weights (HF's init is too close to zero to test anything)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=gen)
            param.copy_(1 + 0.2 * noise if "layer_norm" in name and name.endswith("weight") else 0.3 * noise)


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> dict[str, tuple[torch.nn.Module, torch.nn.Module]]:
    """head -> (transformers model, our model loaded from the folder transformers wrote)."""
    out = {}
    for i, (head, labels) in enumerate(HEAD_LABELS.items()):
        extra = {"num_labels": labels} if labels else {}
        hf = getattr(transformers, head)(transformers.BioGptConfig(**HF_CONFIG, **extra))
        randomize(hf, seed=i)
        folder = tmp_path_factory.mktemp(head)
        hf.save_pretrained(folder)
        out[head] = (hf.eval(), load_model(folder, device="cpu"))
    return out


def batch(padding: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(B=3, T=9) ids without pad ids inside, and a mask with the chosen padding."""
    ids = torch.randint(4, HF_CONFIG["vocab_size"], (3, 9), generator=torch.Generator().manual_seed(7))
    mask = torch.ones_like(ids)
    if padding == "left":
        mask[0, :4], mask[2, :1] = 0, 0
    elif padding == "right":
        mask[0, -4:], mask[2, -1:] = 0, 0
    return ids.masked_fill(mask == 0, 1), mask


def hf_logits(hf: torch.nn.Module, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    # transformers 5.x ignores the mask for positions unless position_ids are given
    with torch.no_grad():
        return hf(input_ids=ids, attention_mask=mask, position_ids=positions_from_mask(mask)).logits


@pytest.mark.parametrize("head", ["BioGptForCausalLM", "BioGptForTokenClassification"])
@pytest.mark.parametrize("padding", ["none", "left", "right"])
def test_per_token_logits_match(pairs, head, padding):
    hf, ours = pairs[head]
    ids, mask = batch(padding)
    with torch.no_grad():
        mine = ours.forward_padded(ids, mask)
    theirs = hf_logits(hf, ids, mask)
    assert mine.shape == theirs.shape
    real = mask.bool()  # pad rows are inert garbage in both; only real tokens are compared
    assert (mine - theirs)[real].abs().max() <= TOL
    assert mine.abs().max() > 1.0  # the comparison is not between near-zero tensors


@pytest.mark.parametrize("padding", ["none", "left", "right"])
def test_sequence_classification_matches(pairs, padding):
    """HF pools the last token that is not pad_token_id; ours the last mask=1 token: the same here."""
    hf, ours = pairs["BioGptForSequenceClassification"]
    assert ours.config.num_labels == 2
    ids, mask = batch(padding)
    with torch.no_grad():
        mine = ours.forward_padded(ids, mask)
    theirs = hf_logits(hf, ids, mask)
    assert mine.shape == theirs.shape == (3, 2)
    assert (mine - theirs).abs().max() <= TOL


def test_left_padded_batch_equals_rows_alone(pairs):
    _, ours = pairs["BioGptForCausalLM"]
    ids, mask = batch("left")
    with torch.no_grad():
        batched = ours.forward_padded(ids, mask)
        for row in range(ids.shape[0]):
            real = mask[row].bool()
            alone = ours.forward_padded(ids[row, real][None])[0]
            assert (batched[row, real] - alone).abs().max() <= TOL


def test_incremental_decoding_matches_full_forward(pairs):
    """Prefill a left-padded prompt, then feed one token at a time through the KV cache."""
    hf, ours = pairs["BioGptForCausalLM"]
    ids, mask = batch("left")
    new = torch.randint(4, HF_CONFIG["vocab_size"], (3, 4), generator=torch.Generator().manual_seed(3))
    attn = DenseAttention(mask, use_cache=True)
    positions = positions_from_mask(mask)
    with torch.no_grad():
        steps = [ours.compute_logits(ours(ids, positions, attn))[:, -1]]
        for t in range(new.shape[1]):
            positions = positions[:, -1:] + 1
            attn.key_mask = torch.cat([attn.key_mask, torch.ones(3, 1, dtype=mask.dtype)], dim=1)
            steps.append(ours.compute_logits(ours(new[:, t:t + 1], positions, attn))[:, -1])
        full_ids = torch.cat([ids, new], dim=1)
        full_mask = torch.cat([mask, torch.ones_like(new)], dim=1)
        full = ours.forward_padded(full_ids, full_mask)[:, ids.shape[1] - 1:]
    assert attn.past_length() == full_ids.shape[1]
    assert (torch.stack(steps, dim=1) - full).abs().max() <= TOL
    theirs = hf_logits(hf, full_ids, full_mask)[:, ids.shape[1] - 1:]
    assert (torch.stack(steps, dim=1) - theirs).abs().max() <= TOL
