"""Decoding parameters and the on-device token choice (greedy pick, beam top-k candidates).

Both functions return a small device tensor; `HostCopy` starts its copy into pinned host
memory without waiting, and the caller waits for it (`HostCopy.wait`) after doing other host
work: that wait is the decode loop's only host sync. Scores follow HF `generate`: greedy takes
the argmax of the float32 logits after the min-new-tokens processor (the full-vocabulary `log_softmax` for the chosen
token's log-prob runs only with `logprobs=True`); beam search adds `log_softmax` log-probs to
the running beam scores and keeps the top `2 * num_beams` of `num_beams * vocab` candidates.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

NEG_INF = float("-inf")


@dataclass(frozen=True)
class SamplingParams:
    """How to decode: greedy (num_beams 1) or HF-style beam search; lengths count new tokens."""

    max_new_tokens: int = 64  # generation also stops when prompt + output reaches max_model_len
    min_new_tokens: int = 0  # eos is blocked (logit -inf) until this many tokens exist
    num_beams: int = 1
    length_penalty: float = 1.0  # beam score = sum logprob / (generated_len ** length_penalty)
    early_stopping: bool | str = False  # True, False or "never", as in HF
    ignore_eos: bool = False  # never stop on eos (benchmarks force the full length)
    eos_token_id: int | None = None  # None: the model's eos (Engine.session fills it in)
    logprobs: bool = False  # greedy: compute each chosen token's log-prob (cumulative_logprob)

    def __post_init__(self) -> None:
        for name in ("max_new_tokens", "num_beams"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"SamplingParams.{name} must be an int >= 1, got {value!r}")
        for name in ("min_new_tokens", "eos_token_id"):
            value = getattr(self, name)
            if value is None and name == "eos_token_id":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"SamplingParams.{name} must be an int >= 0, got {value!r}")
        if self.early_stopping not in (True, False, "never"):
            raise ValueError(
                f"SamplingParams.early_stopping must be True, False or 'never', got {self.early_stopping!r}")
        if isinstance(self.length_penalty, bool) or not isinstance(self.length_penalty, int | float):
            raise ValueError(f"SamplingParams.length_penalty must be a number, got {self.length_penalty!r}")


def block_eos(logits: Tensor, rows: Tensor | None, eos_token_id: int) -> Tensor:
    """Set the eos column to -inf in the rows marked True in `rows` (R,) (min_new_tokens)."""
    if rows is not None:
        logits[:, eos_token_id].masked_fill_(rows, NEG_INF)
    return logits


class HostCopy:
    """A device->host copy in flight: `wait()` is the one sync, returning the host tensor."""

    def __init__(self, value: Tensor) -> None:
        if value.device.type == "cpu":
            self._host, self._event = value, None
            return
        self._host = torch.empty(value.shape, dtype=value.dtype, pin_memory=True)
        self._host.copy_(value, non_blocking=True)
        self._event = torch.cuda.Event()
        self._event.record()

    def wait(self) -> Tensor:
        """Block until the copy has landed; the host tensor."""
        if self._event is not None:
            self._event.synchronize()
            self._event = None
        return self._host


def greedy_pick(logits: Tensor, eos_rows: Tensor | None, eos_token_id: int,
                logprobs: bool = True) -> Tensor:
    """logits (R, V) -> device (2, R) float32 [token id, its log-prob], or (1, R) [token id]
    without logprobs; no sync."""
    scores = block_eos(logits.float(), eos_rows, eos_token_id)  # (R, V) fp32
    tokens = scores.argmax(dim=-1)  # (R,)
    if not logprobs:
        return tokens.float()[None]  # (1, R); ids < 2**24 are exact in fp32
    chosen = torch.log_softmax(scores, dim=-1).gather(1, tokens[:, None])[:, 0]  # (R,)
    return torch.stack([tokens.float(), chosen])


def beam_candidates(logits: Tensor, running_scores: Tensor, eos_rows: Tensor | None,
                    eos_token_id: int) -> Tensor:
    """logits (G*nb, V), running_scores (G, nb) -> device (2, G, 2nb): [score, flat index]; no sync.

    Flat index = beam * V + token, as in HF `_get_top_k_continuations`.
    """
    groups, num_beams = running_scores.shape
    log_probs = torch.log_softmax(logits.float(), dim=-1)  # (G*nb, V)
    log_probs = block_eos(log_probs, eos_rows, eos_token_id)
    log_probs = log_probs.view(groups, num_beams, -1) + running_scores[:, :, None]  # (G, nb, V)
    values, indices = torch.topk(log_probs.reshape(groups, -1), k=2 * num_beams)  # (G, 2nb)
    return torch.stack([values, indices.float()])  # nb * V < 2**24: exact
