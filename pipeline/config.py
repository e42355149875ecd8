"""Run configuration for `biomine run`: validated pydantic model, loadable from YAML or TOML."""
from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from model.bundled import DEFAULT_TAGGER  # the tagger `ner` uses when no ner_model is given

DEFAULT_LEXICON = "bundled:cdr-do"  # the MeSH lexicon runs link with unless told otherwise

RE_TASKS = ("re-bc5cdr", "re-ddi", "re-kd-dti")
ALL_TASKS = (*RE_TASKS, "ner")
DEMO_MODEL = "demo"  # model id recorded for the tiny random model of --demo-model


class RunConfig(BaseModel):
    """Everything one run needs; defaults suit a single machine."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    inputs: list[str] = Field(min_length=1, description="PubMed XML files, globs or folders")
    output: str = Field(description="output folder (local path or URI)")
    tasks: list[str] = Field(default_factory=lambda: ["re-bc5cdr"])
    re_model: str | None = Field(None, description="RE checkpoint: hub repo id or local folder")
    ner_model: str | None = Field(None, description="token-classification checkpoint (default with ner: "
                                  "bundled:cdr-small; 'demo': the random tagger)")
    entities: str | None = Field(None, description="entity dictionary (*.entities.json) for linking")
    lexicon: str | None = Field(DEFAULT_LEXICON, description="MeSH lexicon: a folder (`biomine lexicon build`) "
                                f"or bundled:NAME (default {DEFAULT_LEXICON}); 'none': no linking")
    demo_model: bool = Field(False, description="tiny random BioGPT built on the spot for RE (and for "
                             "ner with ner_model 'demo'); output meaningless")
    gpus: int | None = Field(None, ge=0, description="GPU actors (None: all GPUs of the cluster; 0: one CPU actor)")
    batch_size: int = Field(256, ge=1, description="rows per GPU-stage batch (the engine batches inside)")
    cpu_batch_size: int = Field(256, ge=1, description="rows per CPU-stage batch")
    cpu_actors: int | None = Field(None, ge=1, description="max actors per CPU stage (None: 2 per GPU actor, at least 2)")
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    limit: int | None = Field(None, ge=1, description="mine at most this many articles (first in NLM order)")
    address: str | None = Field(None, description="Ray address (ray://..., auto); None starts a local Ray")
    max_new_tokens: int = Field(256, ge=1, description="RE generation budget per abstract")
    max_source_tokens: int = Field(640, ge=8, description="RE source cut (BioGPT recipe: 640)")
    ner_window: int = Field(512, ge=16, description="NER window in tokens")
    ner_overlap: int = Field(128, ge=0, description="overlap between NER windows in tokens")
    max_num_seqs: int = Field(256, ge=1, description="engine: sequences decoded together")
    kv_cache_tokens: int | None = Field(None, ge=2, description="engine: KV cache in tokens "
                                        "(None: sized from GPU memory; on the CPU max_num_seqs slots)")
    gpu_batches_in_flight: int | None = Field(None, ge=1, description="Ray batches per GPU actor at "
                                              "once (None: max(16, 8 x max_num_seqs / batch_size))")
    gpu_memory_utilization: float = Field(0.85, gt=0.0, le=0.98)
    max_retries: int = Field(2, ge=0, description="retries of a batch whose GPU actor died")
    max_actor_restarts: int = Field(3, ge=0, description="replacements of a dead GPU actor")
    object_store_memory_gb: float | None = Field(None, gt=0, description="Ray Data object-store budget")
    stall_timeout_s: float = Field(600, ge=0, description="watchdog: fail the run (exit 1, naming what Ray "
                                   "cannot place) when no article moves for this long; 0 = off")
    rows_per_file: int = Field(100_000, ge=1, description="output rows per file-group (articles per Parquet file)")
    lease_ttl_s: float = Field(600, ge=10, description="lease on -o / the state (_lease.json): taken over "
                               "when its holder's heartbeat (every min(30 s, TTL/4)) is older than this")
    run_id: str | None = None
    progress: bool = True

    @field_validator("tasks", mode="before")
    @classmethod
    def _split_tasks(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [t.strip() for t in value.split(",") if t.strip()]
        return value

    @field_validator("lexicon", mode="before")
    @classmethod
    def _no_lexicon(cls, value: Any) -> Any:
        return None if isinstance(value, str) and value.strip().lower() in ("", "none") else value

    @field_validator("tasks")
    @classmethod
    def _check_tasks(cls, value: list[str]) -> list[str]:
        unknown = [t for t in value if t not in ALL_TASKS]
        if unknown:
            raise ValueError(f"unknown task(s) {unknown}; choose from {list(ALL_TASKS)}")
        if not value:
            raise ValueError("at least one task is needed")
        if sum(t in RE_TASKS for t in value) > 1:
            raise ValueError("one relation-extraction task per run (one --re-model)")
        return list(dict.fromkeys(value))

    @model_validator(mode="before")
    @classmethod
    def _default_tagger(cls, data: Any) -> Any:
        """`ner` without --ner-model uses the bundled tagger; `--ner-model demo` the random one."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if data.get("ner_model") == DEMO_MODEL:
            data["ner_model"], data["demo_model"] = None, True
        elif not data.get("ner_model") and "ner" in cls._split_tasks(data.get("tasks") or []):
            data["ner_model"] = DEFAULT_TAGGER
        return data

    @model_validator(mode="after")
    def _check_models(self) -> "RunConfig":
        if self.re_task and not (self.re_model or self.demo_model):
            raise ValueError(f"task {self.re_task} needs --re-model (or --demo-model)")
        if "ner" in self.tasks and not (self.ner_model or self.demo_model):
            raise ValueError("task ner needs --ner-model (or --demo-model)")
        if self.ner_overlap >= self.ner_window:
            raise ValueError("ner_overlap must be smaller than ner_window")
        return self

    @property
    def re_task(self) -> str | None:
        """The relation-extraction task of this run, if any."""
        return next((t for t in self.tasks if t in RE_TASKS), None)

    @property
    def re_model_id(self) -> str | None:
        """Model id recorded in output rows for the RE model."""
        return DEMO_MODEL if self.demo_model and not self.re_model else self.re_model

    @property
    def ner_model_id(self) -> str | None:
        """Model id recorded in output rows for the tagger."""
        return DEMO_MODEL if self.demo_model and not self.ner_model else self.ner_model


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML, TOML or JSON run-config file into a dict (keys as in RunConfig)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    text = path.read_text()
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(text)
        elif path.suffix == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text) or {}
    except Exception as exc:  # parser errors differ per format; report them uniformly
        raise ValueError(f"{path}: cannot parse config ({type(exc).__name__}: {exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a config file must hold a mapping of settings")
    return {k.replace("-", "_"): v for k, v in data.items()}


def build_config(file_values: dict[str, Any], cli_values: dict[str, Any],
                 file_name: str | Path | None = None) -> RunConfig:
    """Merge config-file values with CLI values (CLI wins where given) and validate.

    Errors name the flag (`--batch-size`) when the value came from the command line, and
    `setting in FILE` when it came from the config file.
    """
    given = {k: v for k, v in cli_values.items() if v is not None}
    merged = {**file_values, **given}
    try:
        return RunConfig(**merged)
    except ValidationError as exc:
        lines = [_explain(err, given, file_values, file_name) for err in exc.errors()]
        raise ValueError("invalid run configuration:\n  " + "\n  ".join(lines)) from None


def _explain(err: dict[str, Any], given: dict[str, Any], file_values: dict[str, Any],
             file_name: str | Path | None) -> str:
    """One pydantic error -> `--flag: problem (got X)` or `key in FILE: problem`."""
    loc = [str(p) for p in err["loc"]]
    name = loc[0] if loc else None
    msg = str(err["msg"]).removeprefix("Value error, ")
    where = file_name or "the config file"
    if name is None:
        return msg
    if err.get("type") == "extra_forbidden":
        return f"{name} in {where}: unknown setting (see `biomine run --help`)"
    if name in given:
        label = "INPUT" if name == "inputs" else "-o/--output" if name == "output" else (
            "--" + name.replace("_", "-"))
    elif name in file_values:
        label = f"{'.'.join(loc)} in {where}"
    elif err.get("type") == "missing":
        flag = "INPUT (or --sample)" if name == "inputs" else "-o/--output" if name == "output" else (
            "--" + name.replace("_", "-"))
        return f"{flag} is required"
    else:
        label = ".".join(loc)
    got = err.get("input")
    shown = "" if isinstance(got, dict) or got is None else f" (got {got!r})"
    return f"{label}: {msg}{shown}"
