"""Load and save BioGPT weights: HF folders or hub repo ids, safetensors or .bin, built on the meta device."""
from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import replace
from pathlib import Path

import torch
from torch import Tensor, nn

from model.biogpt import HEADS, BioGptForCausalLM, _BioGptBase
from model.bundled import bundled_dir, is_bundled
from model.config import PRESETS, BioGptConfig

log = logging.getLogger(__name__)

SAFETENSORS, SAFETENSORS_INDEX = "model.safetensors", "model.safetensors.index.json"
BIN, BIN_INDEX = "pytorch_model.bin", "pytorch_model.bin.index.json"
TOKENIZER_FILES = ("vocab.json", "merges.txt", "tokenizer_config.json", "added_tokens.json",
                   "special_tokens_map.json")
HUB_PATTERNS = ["config.json", "*.safetensors", SAFETENSORS_INDEX, BIN, BIN_INDEX, *TOKENIZER_FILES]
TIED_KEY, EMBED_KEY = "output_projection.weight", "biogpt.embed_tokens.weight"
HEAD_KEYS = {"BioGptForTokenClassification": "classifier.weight",
             "BioGptForSequenceClassification": "score.weight"}
_BASE_PREFIXES = ("embed_tokens.", "embed_positions.", "layers.", "layer_norm.")
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
               revision: str | None = None) -> _BioGptBase:
    """A BioGPT model (eval mode) from an HF-layout folder or hub repo id; head from config if None."""
    model_dir = resolve_model_dir(path_or_repo_id, revision)
    files = weight_files(model_dir)
    state = read_state_dict(files)
    config = _read_config(model_dir)
    head = head or _head_from_config(config)
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}; expected one of {sorted(HEADS)}")
    config = _with_labels(config, head, state)
    where = files[0] if len(files) == 1 else model_dir
    return build_from_state_dict(config, head, state, dtype, device, source=str(where))


def build_from_state_dict(config: BioGptConfig, head: str, state: dict[str, Tensor],
                          dtype: torch.dtype | str = torch.float32,
                          device: str | torch.device | None = None, source: str = "state dict") -> _BioGptBase:
    """Build `head` on the meta device and assign `state` (HF or base-model key names), checked."""
    dtype = to_dtype(dtype)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    with torch.device("meta"):
        model = HEADS[head](config)
    state = _normalise_keys(state)
    expected = model.state_dict()
    tied = isinstance(model, BioGptForCausalLM)
    if tied:
        state = _drop_tied_head(state, source)
        expected = {k: v for k, v in expected.items() if k != TIED_KEY}
    _check_keys(expected, state, source)
    for key in list(state):  # one tensor at a time: the checkpoint is never held twice
        tensor = state.pop(key)
        state[key] = tensor.to(device=device, dtype=dtype if tensor.is_floating_point() else None)
    model.load_state_dict(state, strict=False, assign=True)
    if tied:
        model.tie_weights()
    leftover = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if leftover:
        raise ValueError(f"{source}: tensors left unloaded: {leftover}")
    return model.eval()


def _read_config(model_dir: Path) -> BioGptConfig:
    path = model_dir / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{model_dir}: no config.json")
    return BioGptConfig.from_json_file(path)


def _head_from_config(config: BioGptConfig) -> str:
    for name in config.architectures:
        if name in HEADS:
            return name
    log.info("architectures %s name no head; using BioGptForCausalLM", list(config.architectures))
    return "BioGptForCausalLM"


def _with_labels(config: BioGptConfig, head: str, state: dict[str, Tensor]) -> BioGptConfig:
    """HF omits id2label for 2 labels: take the label count from the head's weight then."""
    key = HEAD_KEYS.get(head)
    if key is None or config.id2label:
        return config
    weight = state.get(key)
    if weight is None:
        raise ValueError(f"head {head} needs config id2label or a {key!r} tensor to count labels")
    return replace(config, id2label={i: f"LABEL_{i}" for i in range(weight.shape[0])})


def _normalise_keys(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Base-model (BioGptModel) names gain the `biogpt.` prefix; HF names pass unchanged."""
    return {("biogpt." + k if k.startswith(_BASE_PREFIXES) else k): v for k, v in state.items()}


def _drop_tied_head(state: dict[str, Tensor], source: str) -> dict[str, Tensor]:
    """The LM head is tied to embed_tokens (embed_tokens wins, as in HF); a stored copy is dropped."""
    head = state.pop(TIED_KEY, None)
    embed = state.get(EMBED_KEY)
    if head is not None and embed is not None and head.shape == embed.shape and not torch.equal(head, embed):
        log.warning("%s: %s differs from %s; tying to the embedding as transformers does",
                    source, TIED_KEY, EMBED_KEY)
    elif head is not None and embed is not None and head.shape != embed.shape:
        raise ValueError(f"{source}: {TIED_KEY} has shape {tuple(head.shape)} but {EMBED_KEY} "
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


def save_pretrained(model: _BioGptBase, directory: str | Path, tokenizer: object | None = None,
                    safe_serialization: bool = True) -> None:
    """Write config.json + model.safetensors (or pytorch_model.bin), tied head not duplicated."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()
             if not (k == TIED_KEY and isinstance(model, BioGptForCausalLM))}
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


def build_random_model(config: BioGptConfig, head: str = "BioGptForCausalLM", seed: int = 0,
                       dtype: torch.dtype | str = torch.float32,
                       device: str | torch.device | None = None) -> _BioGptBase:
    """A randomly initialised model (HF-style init, seeded) for tests and demos, in eval mode."""
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}; expected one of {sorted(HEADS)}")
    model = HEADS[head](config)
    model.init_weights(seed)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return model.to(device=device, dtype=to_dtype(dtype)).eval()


def count_parameters(model: nn.Module) -> int:
    """Distinct parameters (the tied head counted once)."""
    return sum(p.numel() for p in model.parameters())
