"""Engine counters: what the decode and prefill steps did, and how full the slots were.

`decode_occupancy` = live rows / (decode steps x slots): the share of the cache's sequence
capacity that advanced per step. `decode_row_efficiency` = live rows / rows computed: the
share of the decode forward's rows that were real sequences (not bucket padding).
`fed_decode_occupancy` counts only the steps taken while prompts were waiting for a slot: how
well admission refills, apart from input starvation and the final drain. `syncs_per_step` =
host syncs / (prefill + decode steps). Callers that feed the engine may add their own counts
(`FEED_COUNTS`, summed over engines) and peaks (`FEED_PEAKS`, the highest over engines): the
GPU stage's calls and rows and the most calls in flight at once.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

COUNTS = ("slots", "decode_steps", "decode_live_rows", "decode_rows_computed", "prefill_steps",
          "prefill_tokens", "prefill_padded_tokens", "generated_tokens", "sequences",
          "fed_decode_steps", "fed_decode_live_rows", "host_syncs")

FEED_COUNTS = ("stage_calls", "stage_rows")  # batches (and their rows) handed in by the caller
FEED_PEAKS = ("peak_calls_in_flight",)  # most of those batches in flight at once


@dataclass
class EngineCounters:
    """Running totals for one engine (one GPU actor); plain ints, cheap to bump every step."""

    slots: int = 0  # KV-cache slots (= most sequences/beams decoding at once)
    decode_steps: int = 0
    decode_live_rows: int = 0  # sequences/beams advanced, summed over decode steps
    decode_rows_computed: int = 0  # rows the decode forward ran, padding included
    prefill_steps: int = 0
    prefill_tokens: int = 0  # real prompt tokens prefilled
    prefill_padded_tokens: int = 0  # batch x longest prompt, summed over prefill steps
    generated_tokens: int = 0  # output tokens of finished sequences (final eos excluded)
    sequences: int = 0  # finished prompts
    fed_decode_steps: int = 0  # decode steps taken while prompts waited for a slot
    fed_decode_live_rows: int = 0  # live rows of those steps
    host_syncs: int = 0  # waits of the host for the device (one per prefill or decode step)

    def record_prefill(self, lengths: list[int]) -> None:
        """One prefill step over prompts of these lengths (right-padded to the longest)."""
        self.prefill_steps += 1
        self.prefill_tokens += sum(lengths)
        self.prefill_padded_tokens += len(lengths) * max(lengths)

    def record_decode(self, live: int, computed: int, fed: bool = False) -> None:
        """One decode step: `live` real rows advanced, `computed` rows run by the forward;
        `fed`: prompts were waiting for a slot."""
        self.decode_steps += 1
        self.decode_live_rows += live
        self.decode_rows_computed += computed
        if fed:
            self.fed_decode_steps += 1
            self.fed_decode_live_rows += live

    def record_finished(self, output_tokens: int) -> None:
        """One prompt finished with this many output tokens."""
        self.sequences += 1
        self.generated_tokens += output_tokens

    def to_dict(self) -> dict[str, Any]:
        """The counts plus the derived ratios (None where nothing was decoded)."""
        return with_ratios(asdict(self))


def with_ratios(counts: Mapping[str, int]) -> dict[str, Any]:
    """Counts plus decode_occupancy and decode_row_efficiency (None when undefined)."""
    out: dict[str, Any] = {k: int(counts.get(k, 0)) for k in COUNTS}
    out.update({k: int(counts[k]) for k in FEED_COUNTS + FEED_PEAKS if k in counts})
    capacity = out["decode_steps"] * out["slots"]
    out["decode_occupancy"] = out["decode_live_rows"] / capacity if capacity else None
    computed = out["decode_rows_computed"]
    out["decode_row_efficiency"] = out["decode_live_rows"] / computed if computed else None
    fed = out["fed_decode_steps"] * out["slots"]
    out["fed_decode_occupancy"] = out["fed_decode_live_rows"] / fed if fed else None
    steps = out["decode_steps"] + out["prefill_steps"]
    out["syncs_per_step"] = out["host_syncs"] / steps if steps else None
    return out


def sum_counters(parts: Iterable[Mapping[str, int]]) -> dict[str, Any]:
    """Sum counters of several engines (actors); slots add up, ratios are recomputed.

    The summed occupancy is live rows over (steps x slots) summed per engine, i.e. weighted
    by each engine's own step count and slots.
    """
    total = {k: 0 for k in COUNTS}
    capacity = fed = 0
    for part in parts:
        for k in COUNTS + FEED_COUNTS:
            if k in part:
                total[k] = total.get(k, 0) + int(part[k])
        for k in FEED_PEAKS:
            if k in part:
                total[k] = max(total.get(k, 0), int(part[k]))
        capacity += int(part.get("decode_steps", 0)) * int(part.get("slots", 0))
        fed += int(part.get("fed_decode_steps", 0)) * int(part.get("slots", 0))
    out = with_ratios(total)
    out["decode_occupancy"] = total["decode_live_rows"] / capacity if capacity else None
    out["fed_decode_occupancy"] = total["fed_decode_live_rows"] / fed if fed else None
    return out

