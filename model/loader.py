"""Load and save weights of any model family: HF folders or hub repo ids, safetensors or .bin, built on the meta device."""
from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from model.bundled import bundled_dir, is_bundled
from model.config import PRESETS
from model.families import family_of_config, family_of_head, family_of_model, read_config
from model.families.base import Family

log = logging.getLogger(__name__)

SAFETENSORS, SAFETENSORS_INDEX = "model.safetensors", "model.safetensors.index.json"
BIN, BIN_INDEX = "pytorch_model.bin", "pytorch_model.bin.index.json"
TOKENIZER_FILES = ("vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json", "added_tokens.json",
                   "special_tokens_map.json")
HUB_PATTERNS = ["config.json", "*.safetensors", SAFETENSORS_INDEX, BIN, BIN_INDEX, *TOKENIZER_FILES]
_REPO_ID = re.compile(r"^\w[\w.-]*/\w[\w.-]*$")
_DTYPES = {"float32": torch.float32, "fp32": torch.float32, "float": torch.float32,
           "float16": torch.float16, "fp16": torch.float16, "half": torch.float16,
           "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}


def resolve_model_dir(path_or_repo_id: str | Path, revision: str | None = None) -> Path:
    """A local model folder as is, `bundled:<name>` from the package; else a hub repo id fetched or cached."""
    if is_bundled(path_or_repo_id):
        return bundled_dir(str(path_or_repo_id))
    path = Path(path_or_repo_id).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise ValueError(f"{path}: expected a model folder (config.json + weights), got a file")
    text = str(path_or_repo_id)
    if not _REPO_ID.match(text) or ".." in text:
        raise FileNotFoundError(f"{text}: no such model folder, and not a hub repo id like 'org/name'")
    import huggingface_hub
    from huggingface_hub import errors

    failures = (errors.HfHubHTTPError, errors.LocalEntryNotFoundError, errors.HFValidationError,
                errors.IncompleteSnapshotError, OSError)
    try:
        folder = huggingface_hub.snapshot_download(text, revision=revision, allow_patterns=HUB_PATTERNS)
    except failures as exc:
        preset = (" (the bundled preset gives its config only, the weights still have to be fetched)"
                  if text in PRESETS else "")
        raise FileNotFoundError(
            f"no local folder {text!r} and the Hugging Face hub could not provide it{preset}: "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} -- download the model "
            "where there is network and pass its folder, or fill the hub cache and set HF_HUB_OFFLINE=1"
        ) from exc
    return Path(folder)


def to_dtype(dtype: torch.dtype | str) -> torch.dtype:
    """torch dtype from a dtype or a name such as 'bf16', 'float16', 'torch.float32'."""
    if isinstance(dtype, torch.dtype):
        return dtype
    key = str(dtype).removeprefix("torch.").lower()
    if key not in _DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; use one of {sorted(_DTYPES)}")
    return _DTYPES[key]


def weight_files(model_dir: Path) -> list[Path]:
    """The weight files load_model reads: safetensors (single or sharded) first, else .bin."""
    for single, index in ((SAFETENSORS, SAFETENSORS_INDEX), (BIN, BIN_INDEX)):
        if (model_dir / single).is_file():
            return [model_dir / single]
        if (model_dir / index).is_file():
            try:
                weight_map = json.loads((model_dir / index).read_text())["weight_map"]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise ValueError(f"{model_dir / index}: not a valid shard index ({exc!r})") from None
            files = [model_dir / name for name in sorted(set(weight_map.values()))]
            missing = [str(f) for f in files if not f.is_file()]
            if missing:
                raise FileNotFoundError(f"{model_dir / index} names shards that are absent: {missing}")
            return files
    raise FileNotFoundError(f"{model_dir}: no {SAFETENSORS}, {SAFETENSORS_INDEX}, {BIN} or {BIN_INDEX}")


def read_state_dict(files: list[Path]) -> dict[str, Tensor]:
    """Tensors from safetensors (memory-mapped) or .bin (weights_only, mmap) files, merged."""
    from safetensors.torch import load_file

    state: dict[str, Tensor] = {}
    for file in files:
        if file.suffix == ".safetensors":
            part = load_file(str(file), device="cpu")
        else:
            part = _torch_load(file)
        if not isinstance(part, dict) or not all(isinstance(v, Tensor) for v in part.values()):
            raise ValueError(f"{file}: expected a flat state dict of tensors")
        clash = state.keys() & part.keys()
        if clash:
            raise ValueError(f"{file}: tensors also present in another shard: {sorted(clash)[:5]}")
        state.update(part)
    return state


def _torch_load(file: Path) -> dict[str, Tensor]:
    try:
        return torch.load(file, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError as exc:  # legacy (pre-zip) files cannot be memory-mapped
        if "mmap" not in str(exc):
            raise ValueError(f"{file}: cannot be read as a torch state dict ({exc})") from exc
        log.info("%s: legacy torch format, loading without mmap", file)
        return torch.load(file, map_location="cpu", weights_only=True)


def load_model(path_or_repo_id: str | Path, dtype: torch.dtype | str = torch.float32,
               device: str | torch.device | None = None, head: str | None = None,
               revision: str | None = None) -> nn.Module:
    """A model of any family (eval mode) from an HF-layout folder or hub repo id.

    The family comes from config.json's `architectures`; `head` defaults to the config's and
    may name any family's head of the same role (e.g. "BioGptForCausalLM" on a GPT-2 folder
    gives GPT2LMHeadModel), so recipes need not know the family.
    """
    model_dir = resolve_model_dir(path_or_repo_id, revision)
    files = weight_files(model_dir)
    state = read_state_dict(files)
    config = _read_config(model_dir)
    family = family_of_config(config)
    head = same_role_head(family, head) if head else _head_from_config(config, family)
    config = _with_labels(config, family, head, state)
    where = files[0] if len(files) == 1 else model_dir
    return build_from_state_dict(config, head, state, dtype, device, source=str(where))


def same_role_head(family: Family, head: str) -> str:
    """`head` if the family has it, else the family's head with the same role (causal LM, token, sequence)."""
    if head in family.heads:
        return head
    other = family_of_head(head)
    if head == other.causal_lm:
        return family.causal_lm
    if head == other.token_classifier:
        if family.token_classifier is None:
            raise ValueError(f"family {family.name} has no token-classification head in transformers")
        return family.token_classifier
    for name in family.heads:
        if name.endswith("ForSequenceClassification") and head.endswith("ForSequenceClassification"):
            return name
    raise ValueError(f"family {family.name} has no head like {head!r}; it has {sorted(family.heads)}")


def build_from_state_dict(config: Any, head: str, state: dict[str, Tensor],
                          dtype: torch.dtype | str = torch.float32,
                          device: str | torch.device | None = None, source: str = "state dict") -> nn.Module:
    """Build `head` on the meta device and assign `state` (HF or base-model key names), checked."""
    dtype = to_dtype(dtype)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    family = family_of_config(config)
    head = same_role_head(family, head)
    with torch.device("meta"):
        model = family.heads[head](config)
    state = _normalise_keys(family, state)
    expected = model.state_dict()
    tied = _is_tied(model)
    if tied:
        state = _drop_tied_head(family, state, source)
        expected = {k: v for k, v in expected.items() if k != family.tied_key}
    _check_keys(expected, state, source)
    for key in list(state):  # one tensor at a time: the checkpoint is never held twice
        tensor = state.pop(key)
        state[key] = tensor.to(device=device, dtype=dtype if tensor.is_floating_point() else None)
    model.load_state_dict(state, strict=False, assign=True)
    if model.is_causal_lm:
        model.tie_weights()
    leftover = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if leftover:
        raise ValueError(f"{source}: tensors left unloaded: {leftover}")
    return model.eval()


def _is_tied(model: nn.Module) -> bool:
    return bool(model.is_causal_lm and getattr(model.config, "tie_word_embeddings", True))


def _read_config(model_dir: Path) -> Any:
    path = model_dir / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{model_dir}: no config.json")
    return read_config(path)


def _head_from_config(config: Any, family: Family) -> str:
    for name in config.architectures:
        if name in family.heads:
            return name
    log.info("architectures %s name no head; using %s", list(config.architectures), family.causal_lm)
    return family.causal_lm


def _with_labels(config: Any, family: Family, head: str, state: dict[str, Tensor]) -> Any:
    """HF omits id2label for 2 labels: take the label count from the head's weight then."""
    key = family.head_keys.get(head)
    if key is None or config.id2label:
        return config
    weight = state.get(key)
    if weight is None:
        raise ValueError(f"head {head} needs config id2label or a {key!r} tensor to count labels")
    return replace(config, id2label={i: f"LABEL_{i}" for i in range(weight.shape[0])})


def _normalise_keys(family: Family, state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Base-model names gain the family prefix (`biogpt.`, `transformer.`); stored mask buffers are dropped."""
    return {(family.base_prefix + k if k.startswith(family.base_keys) else k): v
            for k, v in state.items() if not family.is_dropped(k)}


def _drop_tied_head(family: Family, state: dict[str, Tensor], source: str) -> dict[str, Tensor]:
    """The LM head is tied to the token embedding (embedding wins, as in HF); a stored copy is dropped."""
    tied_key, embed_key = family.tied_key, family.embed_key
    head = state.pop(tied_key, None)
    embed = state.get(embed_key)
    if head is not None and embed is not None and head.shape == embed.shape and not torch.equal(head, embed):
        log.warning("%s: %s differs from %s; tying to the embedding as transformers does",
                    source, tied_key, embed_key)
    elif head is not None and embed is not None and head.shape != embed.shape:
        raise ValueError(f"{source}: {tied_key} has shape {tuple(head.shape)} but {embed_key} "
                         f"has {tuple(embed.shape)}")
    return state


def _check_keys(expected: dict[str, Tensor], state: dict[str, Tensor], source: str) -> None:
    missing = sorted(expected.keys() - state.keys())
    unexpected = sorted(state.keys() - expected.keys())
    wrong = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
             for k in sorted(expected.keys() & state.keys()) if state[k].shape != expected[k].shape]
    problems = [f"{label} ({len(items)}): {', '.join(items)}" for label, items in
                (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", wrong))
                if items]
    if problems:
        raise ValueError(f"{source}: checkpoint does not fit the model config; " + "; ".join(problems))


def save_pretrained(model: nn.Module, directory: str | Path, tokenizer: object | None = None,
                    safe_serialization: bool = True) -> None:
    """Write config.json + model.safetensors (or pytorch_model.bin), tied head not duplicated."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tied_key = family_of_model(model).tied_key
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()
             if not (k == tied_key and _is_tied(model))}
    if safe_serialization:
        from safetensors.torch import save_file

        save_file(state, str(directory / SAFETENSORS), metadata={"format": "pt"})
    else:
        torch.save(state, directory / BIN)
    dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
    config = replace(model.config, architectures=(type(model).__name__,), torch_dtype=dtype)
    config.to_json_file(directory / "config.json")
    if tokenizer is not None:
        tokenizer.save_pretrained(directory)
    log.info("saved %s to %s", type(model).__name__, directory)


def weights_fingerprint(path_or_dir: str | Path) -> str:
    """sha256 over the weight files (names and bytes, in name order) of a folder or one file."""
    path = Path(path_or_dir)
    files = weight_files(path) if path.is_dir() else [path]
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.name.encode() + b"\0")
        with file.open("rb") as handle:
            while chunk := handle.read(1 << 24):
                digest.update(chunk)
    return digest.hexdigest()


def build_random_model(config: Any, head: str | None = None, seed: int = 0,
                       dtype: torch.dtype | str = torch.float32,
                       device: str | torch.device | None = None) -> nn.Module:
    """A randomly initialised model of config's family (HF-style init, seeded), in eval mode.

    `head` defaults to the family's causal LM and may name any family's head of the same role.
    """
    family = family_of_config(config)
    head = same_role_head(family, head) if head else family.causal_lm
    model = family.heads[head](config)
    model.init_weights(seed)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return model.to(device=device, dtype=to_dtype(dtype)).eval()


def count_parameters(model: nn.Module) -> int:
    """Distinct parameters (the tied head counted once)."""
    return sum(p.numel() for p in model.parameters())
