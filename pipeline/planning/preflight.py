"""Checks before Ray starts: inputs readable, output writable, models and entity dictionary sound.

Everything here is cheap (no torch, no Ray, no weight load: safetensors shapes come from the
file header) so a bad flag fails in about a second, with one line per problem naming the path,
and nothing is written anywhere.
"""
from __future__ import annotations

import json
import os
import re
import struct
from pathlib import Path
from typing import Any

from pipeline.config import RunConfig

SAFETENSORS, SAFETENSORS_INDEX = "model.safetensors", "model.safetensors.index.json"
BIN, BIN_INDEX = "pytorch_model.bin", "pytorch_model.bin.index.json"
HUB_PATTERNS = ["config.json", "*.safetensors", SAFETENSORS_INDEX, BIN, BIN_INDEX, "vocab.json",
                "merges.txt", "tokenizer_config.json", "added_tokens.json", "special_tokens_map.json"]
BUNDLED_TOKENIZERS = {"microsoft/biogpt", "microsoft/biogpt-large"}
_REPO_ID = re.compile(r"^\w[\w.-]*/\w[\w.-]*$")
_MAX_HEADER = 100 * 2**20  # safetensors headers are a few hundred kB at most
_LAYER = re.compile(r"(?:^|\.)(?:layers|h)\.(\d+)\.")  # BioGPT `layers.i.`, GPT families `h.i.`


class PreflightError(ValueError):
    """One or more problems found before the run started (one line each)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def check_run(config: RunConfig, files: list[str]) -> None:
    """Every check for `biomine run`; raises PreflightError listing all problems found."""
    problems = check_inputs(files) + check_output(config.output)
    if config.re_task and config.re_model:
        problems += check_model(config.re_model, "re", "--re-model")
    if "ner" in config.tasks and config.ner_model:
        problems += check_model(config.ner_model, "ner", "--ner-model")
    if config.entities:
        problems += check_entities(config.entities)
    if config.lexicon:
        from pipeline.linking.apply import check_lexicon

        problems += check_lexicon(config.lexicon)
    if problems:
        raise PreflightError(problems)


def check_inputs(files: list[str]) -> list[str]:
    """Local inputs that cannot be opened (URIs were listed already by expand_inputs)."""
    problems = []
    for path in files:
        if "://" in path:
            continue
        try:
            with open(path, "rb") as f:
                f.read(1)
        except OSError as exc:
            problems.append(f"{path}: input cannot be read ({exc.strerror or exc})")
    return problems


def check_output(output: str) -> list[str]:
    """The output folder: not a file, not under a file, writable (or creatable) by us."""
    if "://" in output:
        from pipeline.storage import Location

        try:
            out = Location.open(output)
            if out.is_file(""):
                return [f"{out.url()}: -o is a file, not a folder"]
        except (OSError, ValueError) as exc:
            return [f"{output}: -o cannot be used ({exc})"]
        return []
    path = Path(os.path.abspath(output))
    if path.exists() and not path.is_dir():
        return [f"{output}: -o is a file, not a folder"]
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        return [f"{output}: -o lies under {probe}, which is a file"]
    if not os.access(probe, os.W_OK | os.X_OK):
        what = "folder" if probe == path else f"parent folder {probe}"
        return [f"{output}: -o is not writable (no write permission on the {what})"]
    return []


def locate_model(model_id: str, flag: str) -> tuple[Path | None, list[str]]:
    """A model folder: `bundled:<name>`, local as given, else a hub repo id from the cache (or fetched)."""
    from model.bundled import bundled_dir, is_bundled

    if is_bundled(model_id):
        try:
            return bundled_dir(model_id), []
        except FileNotFoundError as exc:
            return None, [f"{flag}: {exc}"]
    path = Path(model_id).expanduser()
    if path.is_dir():
        return path, []
    if path.exists():
        return None, [f"{model_id}: {flag} expects a model folder (config.json + weights), got a file"]
    if not _REPO_ID.match(model_id) or ".." in model_id:
        return None, [f"{model_id}: {flag}: no such folder, and not a hub repo id like 'org/name'"]
    import huggingface_hub

    try:
        return Path(huggingface_hub.snapshot_download(model_id, allow_patterns=HUB_PATTERNS,
                                                      local_files_only=True)), []
    except Exception:  # noqa: BLE001 - not cached: try the hub below, unless offline
        pass
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return None, [f"{model_id}: {flag}: no such folder, and this hub repo is not in the local cache "
                      f"(HF_HUB_OFFLINE is set)"]
    try:
        return Path(huggingface_hub.snapshot_download(model_id, allow_patterns=HUB_PATTERNS)), []
    except Exception as exc:  # noqa: BLE001 - any hub failure is one line for the user
        first = str(exc).splitlines()[0] if str(exc) else ""
        return None, [f"{model_id}: {flag}: no such folder, and the hub could not provide it "
                      f"({type(exc).__name__}: {first})"]


def check_model(model_id: str, role: str, flag: str) -> list[str]:
    """config.json, weights (header shapes), tokenizer files of a model used for `role`."""
    from model.families import config_from_dict, family_of_config

    folder, problems = locate_model(model_id, flag)
    if folder is None:
        return problems
    raw, problem = _read_json(folder / "config.json", "model config")
    if problem:
        return [f"{problem} ({flag} {model_id})"]
    if not isinstance(raw, dict):
        return [f"{folder / 'config.json'}: not a JSON object ({flag} {model_id})"]
    try:
        config = config_from_dict(raw)  # the family named by architectures / model_type
    except (ValueError, TypeError) as exc:
        return [f"{folder / 'config.json'}: {exc} ({flag})"]
    causal_lm = family_of_config(config).causal_lm
    heads = set(config.architectures)
    if role == "ner" and not config.id2label:
        return [f"{folder / 'config.json'}: no id2label/num_labels, not a token-classification "
                f"model ({flag})"]
    if role == "re" and heads and causal_lm not in heads:
        return [f"{folder / 'config.json'}: architectures {sorted(heads)}; {flag} needs a "
                f"{causal_lm}"]
    problems = check_weights(folder, config, role)
    return problems + check_tokenizer(folder, model_id, config.vocab_size)


def check_weights(folder: Path, config: Any, role: str) -> list[str]:
    """Weight files present and, for safetensors, tensor shapes that fit config.json."""
    if (folder / SAFETENSORS).is_file():
        files = [folder / SAFETENSORS]
    elif (folder / SAFETENSORS_INDEX).is_file():
        index, problem = _read_json(folder / SAFETENSORS_INDEX, "shard index")
        if problem:
            return [problem]
        weight_map = index.get("weight_map") if isinstance(index, dict) else None
        if not isinstance(weight_map, dict) or not weight_map:
            return [f"{folder / SAFETENSORS_INDEX}: no weight_map"]
        files = [folder / n for n in sorted(set(map(str, weight_map.values())))]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            return [f"{folder / SAFETENSORS_INDEX}: names shard(s) that are absent: {missing}"]
    elif (folder / BIN).is_file() or (folder / BIN_INDEX).is_file():
        target = folder / BIN if (folder / BIN).is_file() else folder / BIN_INDEX
        return [] if target.stat().st_size > 0 else [f"{target}: empty file"]
    else:
        return [f"{folder}: no weights ({SAFETENSORS}, {SAFETENSORS_INDEX}, {BIN} or {BIN_INDEX})"]
    shapes: dict[str, list[int]] = {}
    for file in files:
        header, problem = safetensors_header(file)
        if problem:
            return [problem]
        shapes.update({k: v["shape"] for k, v in header.items()
                       if k != "__metadata__" and isinstance(v, dict)})
    return _check_shapes(folder, shapes, config, role)


def safetensors_header(file: Path) -> tuple[dict, str | None]:
    """The tensor table of a safetensors file (name -> dtype, shape, offsets), checked for truncation."""
    size = file.stat().st_size
    with file.open("rb") as f:
        head = f.read(8)
        if len(head) < 8:
            return {}, f"{file}: not a safetensors file (only {size} bytes)"
        (length,) = struct.unpack("<Q", head)
        if length > min(size - 8, _MAX_HEADER):
            return {}, f"{file}: not a safetensors file (bad header length {length})"
        try:
            header = json.loads(f.read(length))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return {}, f"{file}: corrupt safetensors header ({exc})"
    if not isinstance(header, dict):
        return {}, f"{file}: corrupt safetensors header"
    data = size - 8 - length
    ends = [v.get("data_offsets", [0, 0])[1] for k, v in header.items()
            if k != "__metadata__" and isinstance(v, dict)]
    if ends and max(ends) > data:
        return {}, f"{file}: truncated ({data} bytes of tensor data, the header needs {max(ends)})"
    return header, None


def _check_shapes(folder: Path, shapes: dict[str, list[int]], config: Any, role: str) -> list[str]:
    from model.families import family_of_config

    family = family_of_config(config)
    prefix = family.base_prefix
    shapes = {k.removeprefix(prefix): v for k, v in shapes.items()}
    hidden = config.hidden_size
    want = {family.embed_key.removeprefix(prefix): [config.vocab_size, hidden],
            family.positions_key.removeprefix(prefix): [config.max_position_embeddings
                                                        + family.positions_offset, hidden]}
    if role == "ner":
        want["classifier.weight"] = [config.num_labels, hidden]
    problems = []
    for name, shape in want.items():
        got = shapes.get(name)
        if got is None:
            problems.append(f"{folder}: weights have no {name}")
        elif list(got) != shape:
            problems.append(f"{folder}: {name} has shape {list(got)}, config.json implies {shape}")
    layers = {int(m.group(1)) for k in shapes if (m := _LAYER.search(k))}
    if len(layers) != config.num_hidden_layers:
        problems.append(f"{folder}: weights hold {len(layers)} layers, config.json says "
                        f"num_hidden_layers={config.num_hidden_layers}")
    return problems


def check_tokenizer(folder: Path, model_id: str, vocab_size: int) -> list[str]:
    """Tokenizer files the run loads from the model folder, with ids inside the model's vocabulary."""
    if model_id.lower() in BUNDLED_TOKENIZERS and not Path(model_id).exists():
        return []
    if (folder / "tokenizer.json").is_file() and not (folder / "vocab.json").is_file():
        return []  # a fast-tokenizer file (GPT-2 family): read at load time
    if (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file():
        vocab, problem = _read_json(folder / "vocab.json", "tokenizer vocabulary")
        if problem:
            return [problem]
        if not isinstance(vocab, dict) or not all(isinstance(v, int) for v in vocab.values()):
            return [f"{folder / 'vocab.json'}: expected an object of token -> id"]
        ids = list(vocab.values())
        added, problem = ({}, None)
        if (folder / "added_tokens.json").is_file():
            added, problem = _read_json(folder / "added_tokens.json", "added tokens")
            if problem:
                return [problem]
        ids += [v for v in (added or {}).values() if isinstance(v, int)]
        if ids and max(ids) >= vocab_size:
            return [f"{folder}: tokenizer ids reach {max(ids)}, the model's vocab_size is {vocab_size}"]
        return []
    if (folder / "dict.txt").is_file() and (folder / "bpecodes").is_file():
        return []
    return [f"{folder}: no tokenizer files (vocab.json + merges.txt, or dict.txt + bpecodes)"]


def check_entities(path: str) -> list[str]:
    """The entity dictionary parses."""
    from pipeline.tasks.linking import EntityDictionary

    if not Path(path).is_file():
        return [f"{path}: --entities file not found"]
    try:
        EntityDictionary.from_json(path)
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        return [f"{path}: --entities: {exc}"]
    return []


def _read_json(path: Path, what: str) -> tuple[Any, str | None]:
    if not path.is_file():
        return None, f"{path}: missing ({what})"
    try:
        return json.loads(path.read_text(encoding="utf-8")), None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"{path}: {what} is not valid JSON ({exc})"
    except OSError as exc:
        return None, f"{path}: {what} cannot be read ({exc.strerror or exc})"
