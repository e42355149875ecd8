"""fairseq BioGPT `checkpoint.pt` + `dict.txt` + `bpecodes` -> our HF-layout safetensors folder.

fairseq pickles more than tensors (an omegaconf `cfg` or an argparse `args`, meters, numpy
scalars), so `torch.load(weights_only=True)` may refuse it. We then load with a restricted
unpickler (see `_RestrictedUnpickler`): torch's tensor rebuilders and a few plain containers
are real, every other global becomes an inert `_Opaque` record, so no code from the file runs.
"""
from __future__ import annotations

import argparse
import codecs
import collections
import copyreg
import logging
import pickle
import re
import types
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from model.config import BioGptConfig
from model.loader import SAFETENSORS, build_from_state_dict, save_pretrained

log = logging.getLogger(__name__)

SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")  # fairseq Dictionary ids 0..3
_LEARNED = re.compile(r"^learned\d+$")
_SAFE_BUILTINS = {"set": set, "frozenset": frozenset, "slice": slice, "complex": complex,
                  "object": object, "bytearray": bytearray, "dict": dict, "list": list,
                  "tuple": tuple, "int": int, "float": float, "str": str, "bool": bool}


class _Opaque:
    """Inert stand-in for a pickled object of a class we do not import (omegaconf, fairseq, numpy)."""

    pickled_name = "?"

    def __new__(cls, *args: Any, **kwargs: Any) -> "_Opaque":
        obj = super().__new__(cls)
        obj.args, obj.state, obj.items, obj.mapping = args, None, [], {}
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __setitem__(self, key: Any, value: Any) -> None:
        self.mapping[key] = value

    def append(self, item: Any) -> None:
        self.items.append(item)

    def extend(self, items: Any) -> None:
        self.items.extend(items)

    def __repr__(self) -> str:
        return f"<opaque {self.pickled_name}>"


class _RestrictedUnpickler(pickle.Unpickler):
    """Real classes only for torch tensor rebuilding and plain containers; the rest -> _Opaque."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._stubs: dict[str, type] = {}

    def find_class(self, module: str, name: str) -> Any:
        real = _allowed_global(module, name)
        if real is not None:
            return real
        key = f"{module}.{name}"
        if key not in self._stubs:
            self._stubs[key] = type(name, (_Opaque,), {"pickled_name": key})
        return self._stubs[key]


def _allowed_global(module: str, name: str) -> Any:
    if module in ("builtins", "__builtin__"):
        return _SAFE_BUILTINS.get(name)
    if (module, name) == ("collections", "OrderedDict"):
        return collections.OrderedDict
    if (module, name) == ("argparse", "Namespace"):
        return argparse.Namespace
    if (module, name) == ("copyreg", "_reconstructor"):
        return copyreg._reconstructor
    if (module, name) == ("_codecs", "encode"):
        return codecs.encode
    if module == "torch._utils" and name.startswith("_rebuild_"):
        return getattr(torch._utils, name, None)
    if (module, name) == ("torch._tensor", "_rebuild_from_type_v2"):
        return torch._tensor._rebuild_from_type_v2
    if (module, name) in (("torch.nn.parameter", "Parameter"), ("torch", "Tensor"), ("torch", "Size"),
                          ("torch", "device")):
        return {"Parameter": torch.nn.Parameter, "Tensor": Tensor, "Size": torch.Size,
                "device": torch.device}[name]
    if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
        return getattr(torch, name)
    return None


_RESTRICTED_PICKLE = types.SimpleNamespace(Unpickler=_RestrictedUnpickler, load=pickle.load,
                                           __name__="restricted_pickle")


def load_fairseq_checkpoint(path: Path) -> dict[str, Any]:
    """The checkpoint dict with `cfg`/`args` as plain dicts; tensors on the CPU, no foreign code run."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        log.info("%s holds non-tensor objects (%s); using the restricted unpickler",
                 path, str(exc).splitlines()[0][:120])
        raw = torch.load(path, map_location="cpu", weights_only=False, pickle_module=_RESTRICTED_PICKLE)
    if not isinstance(raw, dict) or not isinstance(raw.get("model"), dict):
        raise ValueError(f"{path}: not a fairseq checkpoint (expected a dict with a 'model' state dict)")
    return {"model": raw["model"], "cfg": to_plain(raw.get("cfg")), "args": to_plain(raw.get("args"))}


def to_plain(obj: Any, depth: int = 0) -> Any:
    """dicts/lists/scalars from Namespaces, omegaconf records (`_content`/`_val`) and containers."""
    if depth > 50:
        raise ValueError("checkpoint config nests deeper than 50 levels")
    if isinstance(obj, argparse.Namespace):
        obj = vars(obj)
    if isinstance(obj, dict):
        return {key: to_plain(value, depth + 1) for key, value in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_plain(value, depth + 1) for value in obj]
    if isinstance(obj, _Opaque):
        state = obj.state
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], dict):
            state = {**(state[0] or {}), **state[1]}  # (dict state, slot state)
        if isinstance(state, dict) and "_content" in state:
            return to_plain(state["_content"], depth + 1)
        if isinstance(state, dict) and "_val" in state:
            return to_plain(state["_val"], depth + 1)
        if obj.mapping:
            return to_plain(obj.mapping, depth + 1)
        if obj.items:
            return to_plain(obj.items, depth + 1)
    return obj


def model_fields(ckpt: dict[str, Any], path: Path) -> dict[str, Any]:
    """`cfg["model"]` (fairseq >= 0.10) or the legacy `args` namespace, as a dict."""
    cfg = ckpt.get("cfg")
    fields = cfg.get("model") if isinstance(cfg, dict) else None
    if not isinstance(fields, dict):
        fields = ckpt.get("args")
    if not isinstance(fields, dict):
        raise ValueError(f"{path}: no model configuration (neither cfg['model'] nor args)")
    return fields


def fairseq_config(fields: dict[str, Any], state: dict[str, Tensor], path: Path) -> BioGptConfig:
    """BioGptConfig from fairseq model fields, cross-checked against the tensor shapes."""
    def need(key: str) -> Any:
        if fields.get(key) is None:
            raise ValueError(f"{path}: model configuration lacks {key!r}")
        return fields[key]

    for key, ok in (("activation_fn", "gelu"), ("decoder_normalize_before", True),
                    ("decoder_learned_pos", True), ("no_decoder_final_norm", False),
                    ("layernorm_embedding", False), ("adaptive_input", False)):
        if fields.get(key) is not None and fields[key] != ok:
            raise ValueError(f"{path}: {key}={fields[key]!r} is not a BioGPT architecture (needs {ok!r})")
    try:
        vocab, d = state["decoder.embed_tokens.weight"].shape
        n_pos = state["decoder.embed_positions.weight"].shape[0] - 2
        ffn = state["decoder.layers.0.fc1.weight"].shape[0]
    except KeyError as exc:
        raise ValueError(f"{path}: model state lacks {exc.args[0]!r}") from None
    layers = len({k.split(".")[2] for k in state if k.startswith("decoder.layers.")})
    for key, actual in (("decoder_embed_dim", d), ("decoder_layers", layers),
                        ("decoder_ffn_embed_dim", ffn)):
        if fields.get(key) is not None and fields[key] != actual:
            raise ValueError(f"{path}: {key}={fields[key]} but the weights say {actual}")
    return BioGptConfig(
        vocab_size=vocab, hidden_size=d, num_hidden_layers=layers,
        num_attention_heads=need("decoder_attention_heads"), intermediate_size=ffn,
        max_position_embeddings=n_pos, scale_embedding=not fields.get("no_scale_embedding", False),
        hidden_dropout_prob=float(fields.get("dropout") or 0.1),
        attention_probs_dropout_prob=float(fields.get("attention_dropout") or 0.1))


def hf_state_dict(state: dict[str, Any], path: Path) -> dict[str, Tensor]:
    """fairseq `decoder.*` names -> HF names (`decoder.version` dropped)."""
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        if key == "decoder.version":
            continue
        if not isinstance(value, Tensor):
            raise ValueError(f"{path}: model entry {key!r} is not a tensor")
        if key == "decoder.output_projection.weight":
            out["output_projection.weight"] = value
        elif key.startswith("decoder."):
            out["biogpt." + key.removeprefix("decoder.")] = value
        else:
            out[key] = value  # reported as unexpected by the loader's key check
    return out


def read_fairseq_dict(path: Path) -> list[str]:
    """Tokens of a fairseq `dict.txt` (`<token> <count>[ #fairseq:overwrite]` lines), in order."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such dictionary file")
    tokens: list[str] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.rstrip()
        if line.endswith(" #fairseq:overwrite"):
            line = line.removesuffix(" #fairseq:overwrite")
        token, _, count = line.rpartition(" ")
        if not token or not count.isdigit():
            raise ValueError(f"{path}:{n}: expected '<token> <count>', got {line!r}")
        tokens.append(token)
    return tokens


def hf_vocab(tokens: list[str]) -> dict[str, int]:
    """fairseq -> HF vocab.json: specials first, `x@@` -> `x`, any other `x` -> `x</w>`."""
    vocab = {token: i for i, token in enumerate(SPECIALS)}
    for token in tokens:
        key = token.removesuffix("@@") if token.endswith("@@") else token + "</w>"
        if key in vocab:
            raise ValueError(f"dict.txt: token {token!r} duplicates vocabulary entry {key!r}")
        vocab[key] = len(vocab)
    return vocab


def prompt_tokens(tokens: list[str], vocab_rows: int, ckpt: dict[str, Any], path: Path) -> tuple[list[str], list[str]]:
    """Split (dictionary tokens, learned prompt tokens); extra embedding rows become learned1..N."""
    dict_tokens = list(tokens)
    learned: list[str] = []
    while dict_tokens and _LEARNED.match(dict_tokens[-1]):  # a dict saved with the prompts included
        learned.insert(0, dict_tokens.pop())
    extra = vocab_rows - len(SPECIALS) - len(dict_tokens) - len(learned)
    task = ckpt["cfg"].get("task") if isinstance(ckpt.get("cfg"), dict) else None
    declared = (task or {}).get("learned_prompt") if isinstance(task, dict) else None
    declared = declared if declared is not None else (ckpt.get("args") or {}).get("learned_prompt")
    if extra < 0:
        raise ValueError(f"{path}: the embedding has {vocab_rows} rows but the dictionary needs "
                         f"{vocab_rows - extra}; wrong dict.txt for this checkpoint?")
    if extra and learned:
        raise ValueError(f"{path}: {extra} embedding rows beyond dict.txt, which already ends in "
                         f"{len(learned)} learned prompt tokens")
    if extra:
        learned = [f"learned{i}" for i in range(1, extra + 1)]
    if declared is not None and learned and int(declared) != len(learned):
        raise ValueError(f"{path}: the task declares learned_prompt={declared} but the embedding has "
                         f"{len(learned)} rows beyond dict.txt")
    if learned and declared is None:
        log.warning("%s: %d embedding rows beyond dict.txt taken as prompt tokens %s..%s",
                    path, len(learned), learned[0], learned[-1])
    return dict_tokens, learned


def fairseq_tokenizer(tokens: list[str], learned: list[str], bpecodes: Path) -> Any:
    """Our BioGptTokenizer over the rewritten vocabulary, the prompts as added (never split) tokens."""
    from model.tokenizer import BioGptTokenizer

    tokenizer = BioGptTokenizer.from_files(hf_vocab(tokens), bpecodes)
    ids = tokenizer.add_tokens(learned)
    if ids != list(range(len(SPECIALS) + len(tokens), len(SPECIALS) + len(tokens) + len(learned))):
        raise ValueError(f"prompt tokens {learned[:3]}... did not land after the vocabulary: ids {ids[:3]}...")
    return tokenizer


def convert_fairseq_checkpoint(checkpoint: Path, data_dir: Path, out_dir: Path,
                               overwrite: bool = False) -> Path:
    """Convert a fairseq BioGPT checkpoint (with dict.txt + bpecodes in data_dir) into out_dir."""
    checkpoint, data_dir, out_dir = Path(checkpoint), Path(data_dir), Path(out_dir)
    bpecodes = data_dir / "bpecodes"
    if not bpecodes.is_file():
        raise FileNotFoundError(f"{data_dir}: no bpecodes file")
    if (out_dir / SAFETENSORS).exists() and not overwrite:
        raise ValueError(f"{out_dir} already holds a converted model (pass overwrite to replace it)")
    ckpt = load_fairseq_checkpoint(checkpoint)
    raw_state = ckpt["model"]
    config = fairseq_config(model_fields(ckpt, checkpoint), raw_state, checkpoint)
    state = hf_state_dict(raw_state, checkpoint)
    embed, head = state.get("biogpt.embed_tokens.weight"), state.get("output_projection.weight")
    if head is not None and not torch.equal(head, embed):
        raise ValueError(f"{checkpoint}: the output projection is not tied to the token embedding; "
                         "BioGPT ties them (share_decoder_input_output_embed)")
    tokens, learned = prompt_tokens(read_fairseq_dict(data_dir / "dict.txt"), config.vocab_size,
                                    ckpt, checkpoint)
    dtype = embed.dtype
    model = build_from_state_dict(config, "BioGptForCausalLM", state, dtype=dtype, device="cpu",
                                  source=str(checkpoint))
    tokenizer = fairseq_tokenizer(tokens, learned, bpecodes)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_pretrained(model, out_dir, tokenizer=tokenizer)
    log.info("converted %s (V %d, d %d, L %d, %d prompt tokens) to %s", checkpoint, config.vocab_size,
             config.hidden_size, config.num_hidden_layers, len(learned), out_dir)
    return out_dir
