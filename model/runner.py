"""The GPU hot path: input prep, prefill/decode forwards, CUDA graphs, KV-cache sizing.

Decode runs row i = cache slot i for the live rows (slots are kept packed by the scheduler),
keys `[:key_bucket]`. Eager decode computes exactly the live rows; on CUDA each (row bucket,
key bucket) pair is captured once as a CUDA graph (lazily, on first use), padded to its row
bucket, and replayed with its static input buffers refilled by one pinned, non-blocking
host->device copy; every graph writes its logits into ONE static (slots, V) float32 buffer, so
graph outputs cost that buffer only. The step's only host sync is the sampling result
(`model.sampling`). Prefill and the tagger's `classify` run eagerly on right-padded batches.
"""
from __future__ import annotations

import logging

import numpy as np
import torch
from torch import Tensor, nn

from model.kv_cache import CausalAttention, SlotKVCache

log = logging.getLogger(__name__)

KEY_GRANULE = 128  # key-length bucket: decode reads at most 127 stale positions per row


def row_bucket(n: int, limit: int) -> int:
    """Decode batch size for n rows: powers of two up to 8, then multiples of 16 (<= limit)."""
    b = 1
    while b < min(n, 8):
        b *= 2
    if n > 8:
        b = -(-n // 16) * 16
    return min(b, limit)


def key_bucket(n: int, limit: int) -> int:
    """Key length read by decode for n needed positions (multiple of KEY_GRANULE, <= limit)."""
    return min(-(-n // KEY_GRANULE) * KEY_GRANULE, limit)


class ModelRunner:
    """Owns the model on its device; turns token lists into logits."""

    def __init__(self, model: nn.Module, device: torch.device, pad_token_id: int,
                 use_cuda_graphs: bool) -> None:
        self.model = model
        self.device = device
        self.pad = pad_token_id
        self.use_graphs = use_cuda_graphs and device.type == "cuda"
        self.cache: SlotKVCache | None = None
        self._graphs: dict[tuple[int, int], torch.cuda.CUDAGraph] = {}
        self._pool = None

    def attach_cache(self, cache: SlotKVCache) -> None:
        """Use this cache; allocate the static decode buffers (once)."""
        self.cache = cache
        n = cache.num_slots
        pin = self.device.type == "cuda"
        self._h_ids = torch.zeros(n, dtype=torch.long, pin_memory=pin)  # host staging
        self._h_pos = torch.zeros(n, dtype=torch.long, pin_memory=pin)
        self._ids = torch.zeros(n, 1, dtype=torch.long, device=self.device)  # (S, 1) static
        self._pos = torch.zeros(n, 1, dtype=torch.long, device=self.device)
        if self.use_graphs:  # the one output buffer every decode graph writes
            vocab = self.model.config.vocab_size
            self._logits = torch.zeros(n, vocab, dtype=torch.float32, device=self.device)  # (S, V)

    @torch.inference_mode()
    def profile_cache_bytes(self, max_batched_tokens: int, max_model_len: int,
                            utilization: float, sampling_bytes: int, max_rows: int) -> int:
        """CUDA: bytes left for the KV cache after a worst-case prefill (nano-vllm's recipe),
        the sampling temporaries and the decode graphs' static logits buffer (max_rows, V)."""
        torch.cuda.synchronize(self.device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(self.device)
        t = max_model_len
        b = max(1, max_batched_tokens // t)
        ids = torch.full((b, t), self.pad, dtype=torch.long, device=self.device)
        pos = torch.arange(t, device=self.device).expand(b, t)
        hidden = self.model(ids, pos, CausalAttention())  # (B, T, d)
        self.model.compute_logits(hidden[:, -1])
        del hidden
        torch.cuda.synchronize(self.device)
        free, total = torch.cuda.mem_get_info(self.device)
        stats = torch.cuda.memory_stats(self.device)
        activations = stats["allocated_bytes.all.peak"] - stats["allocated_bytes.all.current"]
        graph_out = max_rows * self.model.config.vocab_size * 4 if self.use_graphs else 0
        return int(total * utilization - (total - free) - activations - sampling_bytes - graph_out)

    @torch.inference_mode()
    def prefill(self, prompts: list[list[int]], slots: list[int]) -> Tensor:
        """Write prompts into their slots; logits (B, V) float32 at each prompt's last token."""
        b, t = len(prompts), max(len(p) for p in prompts)
        ids = torch.full((b, t), self.pad, dtype=torch.long)
        pos = torch.full((b, t), -1, dtype=torch.long)
        for i, p in enumerate(prompts):
            ids[i, :len(p)] = torch.tensor(p)
            pos[i, :len(p)] = torch.arange(len(p))
        last = torch.tensor([len(p) - 1 for p in prompts], device=self.device)
        self.cache.set_prefill(torch.tensor(slots, device=self.device))
        hidden = self.model(ids.to(self.device), pos.to(self.device), self.cache)  # (B, T, d)
        rows = hidden[torch.arange(b, device=self.device), last]  # (B, d)
        return self.model.compute_logits(rows).float()  # (B, V)

    @torch.inference_mode()
    def decode(self, tokens: list[int], positions: list[int], key_len: int) -> tuple[Tensor, int]:
        """One token per row (row = slot) -> (logits (n, V) float32 of the n given rows, rows run).

        Eager runs exactly n rows; CUDA graphs run the row bucket of n (rows past n are free
        slots: they write their garbage at position 0 of a free slot and are never read).
        """
        n = len(tokens)
        rows = row_bucket(n, self.cache.num_slots) if self.use_graphs else n
        self._h_ids[:n] = torch.tensor(tokens)
        self._h_pos[:n] = torch.tensor(positions)
        if rows > n:
            self._h_ids[n:rows] = self.pad
            self._h_pos[n:rows] = 0
        self._ids[:rows, 0].copy_(self._h_ids[:rows], non_blocking=True)
        self._pos[:rows, 0].copy_(self._h_pos[:rows], non_blocking=True)
        if not self.use_graphs:
            return self._decode_forward(rows, key_len), rows
        key = (rows, key_len)
        if key not in self._graphs:
            self._graphs[key] = self._capture(rows, key_len)
        self._graphs[key].replay()
        return self._logits[:n], rows

    def _decode_forward(self, rows: int, key_len: int) -> Tensor:
        ids, pos = self._ids[:rows], self._pos[:rows]  # (R, 1)
        self.cache.set_decode(pos, key_len)
        hidden = self.model(ids, pos, self.cache)  # (R, 1, d)
        return self.model.compute_logits(hidden[:, 0]).float()  # (R, V)

    def _capture(self, rows: int, key_len: int) -> torch.cuda.CUDAGraph:
        """Capture one decode step writing into the static logits buffer; the buffers hold this
        step's real inputs, so the warm-up runs write exactly what the replay writes."""
        log.debug("capturing decode graph rows=%d keys=%d", rows, key_len)
        stream = torch.cuda.Stream(self.device)
        stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(stream):
            for _ in range(2):
                self._logits[:rows].copy_(self._decode_forward(rows, key_len))
        torch.cuda.current_stream(self.device).wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self._pool):
            self._logits[:rows].copy_(self._decode_forward(rows, key_len))  # temporaries stay in the pool
        self._pool = graph.pool()
        return graph

    @property
    def num_graphs(self) -> int:
        """Decode graphs captured so far."""
        return len(self._graphs)

    @torch.inference_mode()
    def classify(self, prompts: list[list[int]], batch_tokens: int) -> list[np.ndarray]:
        """Token-classification softmax per prompt, (T, num_labels) float32, length-sorted batches."""
        order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
        out: list[np.ndarray | None] = [None] * len(prompts)
        start = 0
        while start < len(order):
            t = len(prompts[order[start]])  # longest in this batch
            b = max(1, min(len(order) - start, batch_tokens // t))
            chunk = order[start:start + b]
            ids = torch.full((b, t), self.pad, dtype=torch.long)
            pos = torch.full((b, t), -1, dtype=torch.long)
            for row, i in enumerate(chunk):
                n = len(prompts[i])
                ids[row, :n] = torch.tensor(prompts[i])
                pos[row, :n] = torch.arange(n)
            hidden = self.model(ids.to(self.device), pos.to(self.device), CausalAttention())
            probs = torch.softmax(self.model.compute_logits(hidden).float(), dim=-1).cpu().numpy()
            for row, i in enumerate(chunk):
                out[i] = probs[row, :len(prompts[i])]
            start += b
        return out  # type: ignore[return-value]
