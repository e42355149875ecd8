"""Beam-search bookkeeping for one prompt, step for step as HF `GenerationMixin._beam_search`.

The device computes the top `2 * num_beams` candidates (`sampling.beam_candidates`); this class
does the rest on tiny CPU tensors with the same float32 operations as transformers 5.23:
candidates that hit a stop (eos, or the length limit) leave the running set (-1e9) and may
enter the finished set, scored `sum logprob / (generated_len ** length_penalty)` (the eos
counts in `generated_len`); the early-stop heuristic and `early_stopping` True/False/"never"
decide when the group is done. The answer is the best finished hypothesis.
"""
from __future__ import annotations

import torch
from torch import Tensor

from model.sampling import SamplingParams

BIG = -1.0e9


class BeamGroup:
    """The running and finished hypotheses of one prompt (token lists hold generated ids only)."""

    def __init__(self, params: SamplingParams, max_new_tokens: int) -> None:
        nb = params.num_beams
        self.params = params
        self.num_beams = nb
        self.max_new_tokens = max_new_tokens  # effective limit (capped by max_model_len)
        self.running: list[list[int]] = [[] for _ in range(nb)]
        self.running_scores = torch.zeros(nb, dtype=torch.float32)
        self.running_scores[1:] = BIG  # only beam 0 is live at the first step
        self.finished: list[list[int]] = [[] for _ in range(nb)]
        self.finished_raw = torch.full((nb,), BIG, dtype=torch.float32)  # un-normalised sums
        self.beam_scores = torch.full((nb,), BIG, dtype=torch.float32)
        self.is_finished = torch.zeros(nb, dtype=torch.bool)
        self.heuristic_unsatisfied = True
        self.top_mask = torch.cat([torch.ones(nb, dtype=torch.bool), torch.zeros(nb, dtype=torch.bool)])
        self.generated = 0  # tokens generated per running beam so far
        self.done = False

    def step(self, values: Tensor, flat_indices: Tensor, vocab_size: int) -> list[int]:
        """Consume one step's top-2nb candidates (values, flat_indices: (2nb,)); return parents.

        parents[j] = index of the previous running beam that new running beam j extends.
        """
        p = self.params
        beam_idx = (flat_indices // vocab_size).tolist()
        tokens = (flat_indices % vocab_size).tolist()
        candidates = [self.running[b] + [t] for b, t in zip(beam_idx, tokens)]
        at_limit = self.generated + 1 >= self.max_new_tokens
        hits = torch.tensor([at_limit or (not p.ignore_eos and t == p.eos_token_id) for t in tokens])

        # e. the best num_beams candidates that did not stop keep running
        running_lp = values + hits.to(torch.float32) * BIG
        keep = torch.topk(running_lp, k=self.num_beams)[1].tolist()
        self.running = [candidates[i] for i in keep]
        self.running_scores = running_lp[keep]
        parents = [beam_idx[i] for i in keep]

        # f. stopped candidates among the top num_beams may enter the finished set
        just_finished = hits & self.top_mask
        scores = values / ((self.generated + 1) ** p.length_penalty)
        full = bool(self.is_finished.all()) and p.early_stopping is True
        scores = scores + torch.tensor(float(full)) * BIG
        scores = scores + torch.tensor(float(not self.heuristic_unsatisfied)) * BIG
        scores = scores + (~just_finished) * BIG
        merged_scores = torch.cat([self.beam_scores, scores])
        merged_seqs = self.finished + candidates
        merged_raw = torch.cat([self.finished_raw, values])
        merged_done = torch.cat([self.is_finished, just_finished])
        best = torch.topk(merged_scores, k=self.num_beams)[1].tolist()
        self.finished = [merged_seqs[i] for i in best]
        self.beam_scores = merged_scores[best]
        self.finished_raw = merged_raw[best]
        self.is_finished = merged_done[best]

        # g. early-stop heuristic and the group's stop condition
        self.generated += 1
        if p.early_stopping == "never" and p.length_penalty > 0.0:
            best_len = self.max_new_tokens
        else:
            best_len = self.generated
        best_running = self.running_scores[:1] / (best_len ** p.length_penalty)
        worst_finished = torch.where(self.is_finished, torch.min(self.beam_scores), torch.tensor(BIG))
        self.heuristic_unsatisfied = self.heuristic_unsatisfied and bool(
            torch.any(best_running > worst_finished))
        self.done = (not self.heuristic_unsatisfied
                     or (bool(self.is_finished.all()) and p.early_stopping is True)
                     or bool(hits.all()))
        return parents

    def result(self) -> tuple[list[int], str, float, float]:
        """(output ids without a final eos, finish reason, raw sum logprob, normalised score)."""
        seq = list(self.finished[0])
        reason = "length"
        if seq and seq[-1] == self.params.eos_token_id and not self.params.ignore_eos:
            seq, reason = seq[:-1], "eos"
        return seq, reason, float(self.finished_raw[0]), float(self.beam_scores[0])
