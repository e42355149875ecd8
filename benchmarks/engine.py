"""Benchmark the generation engine against transformers `generate` (JSON on stdout).

Random weights, fixed prompt length, new tokens forced (ignore eos). For each batch size the
engine gets exactly that many prompts at once ("all" = every prompt through continuous
batching); peers (HF dynamic cache, static cache, static + torch.compile) run in the same
process on the same device, each guarded so a failure is recorded, not fatal. Every engine
figure carries the engine counters of its timed call (decode occupancy, row efficiency, ...).
`gold_lengths` runs every prompt with per-prompt output lengths drawn like BC5CDR gold answers
(lognormal, mean ~22 / p90 ~39 tokens, plus 2 % that run to --new-tokens).
Usage: python -m benchmarks.engine --preset base --dtype float16 > result.json
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import sys
import time
from typing import Any

log = logging.getLogger("bench_engine")

# peak dense tensor FLOP/s (fp16/bf16) and HBM bytes/s, keyed by a substring of the GPU name
GPU_PEAKS: dict[str, tuple[float, float]] = {
    "H100 PCIe": (756e12, 2.0e12),
    "H100 NVL": (835e12, 3.9e12),
    "H100": (989e12, 3.35e12),  # SXM (name "NVIDIA H100 80GB HBM3")
    "H200": (989e12, 4.8e12),
    "A100": (312e12, 2.0e12),
    "L40S": (362e12, 0.864e12),
    "A10": (125e12, 0.6e12),
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--preset", choices=sorted(PRESETS), default="base")
    p.add_argument("--dtype", default="float16")
    p.add_argument("--prompt-len", type=int, default=320)
    p.add_argument("--new-tokens", type=int, default=64)
    p.add_argument("--batch-sizes", default="1,32,128,256,all")
    p.add_argument("--num-prompts", type=int, default=1024, help="prompts for the 'all' run")
    p.add_argument("--max-num-seqs", type=int, default=256)
    p.add_argument("--no-peers", action="store_true")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile peer")
    p.add_argument("--peers", default="hf_dynamic,hf_static,hf_static_compile",
                   help="comma list of transformers peers (hf_dynamic, hf_static, hf_static_compile)")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


PRESETS = {  # name -> (family, config kwargs); "tiny*" for CPU counters, the rest real shapes
    "base": ("biogpt", {}),
    "large": ("biogpt", dict(vocab_size=57717, hidden_size=1600, num_hidden_layers=48, num_attention_heads=25,
                             intermediate_size=6400, max_position_embeddings=2048)),
    "tiny": ("biogpt", dict(vocab_size=1000, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                            intermediate_size=256, max_position_embeddings=512)),
    "gpt-neo-125m": ("gpt_neo", dict(hidden_size=768, num_layers=12, num_heads=12,
                                     attention_types=((("global", "local"), 6),))),
    "gpt2": ("gpt2", {}),
    "openai-gpt": ("openai_gpt", {}),
    "biomedlm": ("gpt2", dict(vocab_size=28896, n_embd=2560, n_layer=32, n_head=20,
                              scale_attn_by_inverse_layer_idx=True, bos_token_id=28895, eos_token_id=28895)),
    "tiny-gpt-neo": ("gpt_neo", dict(vocab_size=1000, hidden_size=64, num_layers=2, num_heads=4,
                                     max_position_embeddings=512, attention_types=((("global", "local"), 1),),
                                     window_size=128)),
    "tiny-gpt2": ("gpt2", dict(vocab_size=1000, n_embd=64, n_layer=2, n_head=4, n_positions=512)),
    "tiny-openai-gpt": ("openai_gpt", dict(vocab_size=1000, n_embd=64, n_layer=2, n_head=4, n_positions=512)),
}


def model_config(preset: str):
    from model.families import get_family

    family, kwargs = PRESETS[preset]
    return get_family(family).config_cls(**kwargs)


def mlp_width(cfg) -> int:
    """The MLP width of any family's config."""
    return getattr(cfg, "mlp_size", None) or cfg.intermediate_size


def device_info() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {"torch": torch.__version__, "cuda": torch.cuda.is_available()}
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name()
        info.update(gpu=name, gpu_memory_gib=round(torch.cuda.mem_get_info()[1] / 2**30, 1))
        peak = next((v for k, v in GPU_PEAKS.items() if k in name), None)
        info["peak_flops"], info["peak_bandwidth"] = peak if peak else (None, None)
    else:
        info.update(gpu=None, peak_flops=None, peak_bandwidth=None)
    return info


def bounds(cfg, prompt_len: int, new_tokens: int, info: dict[str, Any], bytes_per: int) -> dict[str, Any]:
    """Physical bound on abstracts/s: prefill FLOPs at peak + decode KV reads at peak bandwidth."""
    d, layers, ffn = cfg.hidden_size, cfg.num_hidden_layers, mlp_width(cfg)
    flops_per_token = 2 * layers * (4 * d * d + 2 * d * ffn) + 4 * layers * d * prompt_len / 2
    kv_bytes = 2 * layers * d * bytes_per * (prompt_len + new_tokens / 2) * new_tokens
    out: dict[str, Any] = {"prefill_gflop_per_token": flops_per_token / 1e9,
                           "decode_kv_gb_per_abstract": kv_bytes / 1e9}
    if info["peak_flops"]:
        seconds = flops_per_token * prompt_len / info["peak_flops"] + kv_bytes / info["peak_bandwidth"]
        out["abstracts_per_s_bound"] = 1.0 / seconds
        out["tokens_per_s_bound"] = new_tokens / seconds
    return out


def peak_memory_gib() -> float:
    """Peak GPU memory since the last reset (CUDA), else the process max RSS."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def timed(fn) -> tuple[Any, float]:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    out = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return out, time.perf_counter() - t0


def figures(n_prompts: int, new_tokens: int, seconds: float, info: dict, bnd: dict) -> dict[str, Any]:
    out = {"prompts": n_prompts, "seconds": seconds, "abstracts_per_s": n_prompts / seconds,
           "tokens_per_s": n_prompts * new_tokens / seconds, "peak_memory_gib": peak_memory_gib()}
    if "abstracts_per_s_bound" in bnd:
        out["fraction_of_bound"] = out["abstracts_per_s"] / bnd["abstracts_per_s_bound"]
    return out


def counter_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Counters of one timed call (after - before), ratios recomputed."""
    from model.counters import COUNTS, with_ratios

    delta = {k: after[k] - before[k] for k in COUNTS}
    delta["slots"] = after["slots"]
    return with_ratios(delta)


def gold_like_lengths(n: int, cap: int, seed: int) -> list[int]:
    """Output lengths like BC5CDR gold answers: lognormal (median 18.6, sigma 0.576), 2 % at cap."""
    import numpy as np

    rng = np.random.default_rng(seed)
    lengths = np.clip(np.rint(rng.lognormal(np.log(18.6), 0.576, n)), 1, cap).astype(int)
    lengths[rng.random(n) < 0.02] = cap
    return lengths.tolist()


def run_with_lengths(engine, prompts: list[list[int]], params, lengths: list[int]) -> int:
    """All prompts through one session, prompt i stopping after lengths[i] tokens; tokens made."""
    session = engine.session(params)
    requests = [engine.request(i, p, params) for i, p in enumerate(prompts)]
    for req, n in zip(requests, lengths):
        req.max_new_tokens = min(req.max_new_tokens, n)
    session.add(requests)
    made = 0
    while session.has_work():
        for req in session.step():
            made += len(engine.result(req, session.start).token_ids)
    return made


def run_engine(args, cfg, prompts, sizes, info, bnd) -> dict[str, Any]:
    import torch

    from model.engine import Engine, EngineConfig
    from model.loader import build_random_model
    from model.sampling import SamplingParams

    model = build_random_model(cfg, seed=args.seed, device="cpu")
    engine = Engine(model, config=EngineConfig(dtype=args.dtype, max_num_seqs=args.max_num_seqs,
                                               max_model_len=args.prompt_len + args.new_tokens))
    params = SamplingParams(max_new_tokens=args.new_tokens, ignore_eos=True)
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    res: dict[str, Any] = {"kv_cache_slots": engine.cache.num_slots,
                           "kv_cache_gib": engine.cache.nbytes / 2**30, "weight_bytes": weight_bytes}
    for size in sizes:
        batch = prompts[: args.num_prompts] if size == "all" else prompts[:size]
        engine.generate(batch[: min(len(batch), engine.cache.num_slots)], params)  # warm-up, graphs
        before = engine.counters.to_dict()
        gens, seconds = timed(lambda: engine.generate(batch, params))
        assert all(len(g.token_ids) == args.new_tokens for g in gens)
        res[str(size)] = figures(len(batch), args.new_tokens, seconds, info, bnd)
        res[str(size)]["counters"] = counter_delta(before, engine.counters.to_dict())
    batch = prompts[: args.num_prompts]
    lengths = gold_like_lengths(len(batch), args.new_tokens, args.seed)
    before = engine.counters.to_dict()
    made, seconds = timed(lambda: run_with_lengths(engine, batch, params, lengths))
    gold = figures(len(batch), made / len(batch), seconds, info, bnd)
    gold.update(mean_new_tokens=made / len(batch), counters=counter_delta(before, engine.counters.to_dict()))
    res["gold_lengths"] = gold
    # batch-1 decode bandwidth: weights read once per step; prefill timed separately
    one = prompts[:1]
    _, t_prefill = timed(lambda: engine.generate(one, SamplingParams(max_new_tokens=1)))
    _, t_full = timed(lambda: engine.generate(one, params))
    steps = args.new_tokens - 1
    bw = weight_bytes * steps / max(t_full - t_prefill, 1e-9)
    res["batch1_decode"] = {"seconds_per_step": (t_full - t_prefill) / steps, "bandwidth_gb_s": bw / 1e9,
                            "fraction_of_hbm": bw / info["peak_bandwidth"] if info["peak_bandwidth"] else None}
    res["cuda_graphs"] = engine.runner.num_graphs
    del engine, model
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return res


def run_peer(name: str, args, cfg, prompts, sizes, info, bnd) -> dict[str, Any]:
    """transformers generate: dynamic cache, static cache, or static + torch.compile."""
    import torch
    import transformers

    from model.engine import DTYPES
    from model.families import family_of_config
    from model.loader import build_random_model

    family = family_of_config(cfg)
    ours = build_random_model(cfg, seed=args.seed, device="cpu")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = DTYPES[args.dtype]
    hf = getattr(transformers, family.causal_lm)(getattr(transformers, family.hf_config)(**cfg.to_dict()))
    hf.load_state_dict(ours.state_dict(), strict=False)
    hf = hf.to(device=device, dtype=dtype).eval()
    kwargs: dict[str, Any] = dict(max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens,
                                  do_sample=False, pad_token_id=cfg.fill_token_id)
    if name != "hf_dynamic":
        kwargs["cache_implementation"] = "static"
    if name == "hf_static_compile":
        hf.forward = torch.compile(hf.forward, mode="reduce-overhead", fullgraph=True)
    res: dict[str, Any] = {}
    for size in sizes:
        if size == "all":
            continue
        ids = torch.tensor(prompts[:size], device=device)
        try:
            with torch.inference_mode():
                hf.generate(ids, attention_mask=torch.ones_like(ids), **kwargs)  # warm-up
                _, seconds = timed(lambda: hf.generate(ids, attention_mask=torch.ones_like(ids), **kwargs))
            res[str(size)] = figures(size, args.new_tokens, seconds, info, bnd)
        except Exception as exc:  # recorded in the JSON; a peer failure must not end the run
            log.warning("%s batch %d failed: %s", name, size, exc)
            res[str(size)] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
    del hf
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return res


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print one JSON object."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    args = parse_args(argv)
    import torch

    if not torch.cuda.is_available():  # one thread per core we may use (taskset), no oversubscription
        torch.set_num_threads(max(1, len(os.sched_getaffinity(0))))
    from model.engine import DTYPES
    from model.kv_cache import kv_bytes_per_token

    cfg = model_config(args.preset)
    if args.prompt_len + args.new_tokens > cfg.max_position_embeddings:
        raise ValueError(f"prompt {args.prompt_len} + new {args.new_tokens} exceeds max positions "
                         f"{cfg.max_position_embeddings} of preset {args.preset}")
    sizes: list[int | str] = [s if s == "all" else int(s) for s in args.batch_sizes.split(",")]
    gen = torch.Generator().manual_seed(args.seed)
    n = max([args.num_prompts] + [s for s in sizes if s != "all"])
    prompts = [[2] + torch.randint(4, cfg.vocab_size, (args.prompt_len - 1,), generator=gen).tolist()
               for _ in range(n)]
    info = device_info()
    if args.dtype not in DTYPES:
        raise ValueError(f"--dtype must be one of {sorted(DTYPES)}, got {args.dtype!r}")
    bytes_per = kv_bytes_per_token(cfg, DTYPES[args.dtype]) // (2 * cfg.num_hidden_layers * cfg.hidden_size)
    bnd = bounds(cfg, args.prompt_len, args.new_tokens, info, bytes_per)
    result: dict[str, Any] = {"benchmark": "bench_engine", "device": info, "settings": vars(args),
                              "bounds": bnd}
    result["engine"] = run_engine(args, cfg, prompts, sizes, info, bnd)
    if not args.no_peers:
        peers = [p for p in args.peers.split(",") if p and not (args.no_compile and p == "hf_static_compile")]
        for name in peers:
            try:
                result[name] = run_peer(name, args, cfg, prompts, sizes, info, bnd)
            except Exception as exc:  # recorded, not fatal
                log.warning("peer %s failed: %s", name, exc)
                result[name] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
    speedup = {}  # engine / best HF setting, per batch size
    for size in (str(s) for s in sizes if s != "all"):
        hf_best = max((r[size].get("abstracts_per_s", 0.0) for k, r in result.items()
                       if k.startswith("hf_") and isinstance(r.get(size), dict)), default=0.0)
        if hf_best:
            speedup[size] = result["engine"][size]["abstracts_per_s"] / hf_best
    result["engine_vs_best_hf"] = speedup
    json.dump(result, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
