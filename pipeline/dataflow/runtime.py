"""Builds a run's task objects (tokenizer + recipe) once per CPU actor."""
from __future__ import annotations

import logging
from typing import Any

from pipeline.config import RunConfig

log = logging.getLogger(__name__)


def load_tokenizer(model_id: str | None, demo: bool) -> Any:
    """The model's own tokenizer (by family); the demo model uses BioGPT's with learned1..9 added."""
    from model.auto import load_tokenizer as family_tokenizer
    from model.demo import LEARNED_PROMPT
    from model.tokenizer import BioGptTokenizer

    if model_id is None and demo:
        tokenizer = BioGptTokenizer.from_pretrained("microsoft/biogpt")
        tokenizer.add_tokens(list(LEARNED_PROMPT))
        return tokenizer
    return family_tokenizer(model_id)


def model_window(model_id: str | None, demo: bool) -> int:
    """max_position_embeddings of the model (the engine's max_model_len)."""
    if model_id is None and demo:
        from model.demo import demo_config

        return demo_config().max_position_embeddings
    from model.auto import load_config

    return load_config(model_id).max_position_embeddings


class RelationRunner:
    """An RE recipe bound to its tokenizer: prompts in, relation rows out."""

    def __init__(self, config: RunConfig) -> None:
        from pipeline.tasks.rows import get_task

        model_id = config.re_model if config.re_model else None
        self.tokenizer = load_tokenizer(model_id, config.demo_model)
        self.max_model_len = model_window(model_id, config.demo_model)
        options: dict[str, Any] = {"max_source_tokens": config.max_source_tokens}
        if config.entities:
            options["entities"] = config.entities
        self.task = get_task(config.re_task, self.tokenizer, **options)

    def build_inputs(self, article: dict) -> Any:
        """TaskInput with prompt_ids and n_cut."""
        return self.task.build_inputs(article)

    def decode(self, ids: list[int]) -> str:
        """Generated ids -> text (CPU side, never in the GPU actor)."""
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def parse_outputs(self, article: dict, text: str, *, model_id: str | None, run_id: str) -> Any:
        """TaskOutput with rows and malformed count."""
        return self.task.parse_outputs(article, text, model_id=model_id, run_id=run_id)


class NerRunner:
    """The tagging task bound to its tokenizer: windows in, entity rows out."""

    def __init__(self, config: RunConfig) -> None:
        from pipeline.tasks.rows import get_task

        model_id = config.ner_model if config.ner_model else None
        self.tokenizer = load_tokenizer(model_id, config.demo_model)
        self.task = get_task("ner", self.tokenizer, window=config.ner_window, overlap=config.ner_overlap,
                             id2label=_labels(model_id, config.demo_model))

    def build_inputs(self, article: dict) -> list[Any]:
        """Token windows over title and abstract."""
        return self.task.build_inputs(article)

    def parse_outputs(self, article: dict, probs: list, *, model_id: str | None, run_id: str) -> Any:
        """TaskOutput with entity rows."""
        return self.task.parse_outputs(article, probs, model_id=model_id, run_id=run_id)


def _labels(model_id: str | None, demo: bool) -> dict[int, str]:
    if model_id is None and demo:
        from model.demo import DEMO_LABELS

        return dict(enumerate(DEMO_LABELS))
    from model.auto import load_config

    config = load_config(model_id)
    if not config.id2label:
        raise ValueError(f"{model_id}: config.json has no id2label; not a token-classification model")
    return config.id2label


def load_tasks(config: RunConfig) -> tuple[RelationRunner | None, NerRunner | None]:
    """The run's RE and NER runners (None for a task not requested)."""
    re_runner = RelationRunner(config) if config.re_task else None
    ner_runner = NerRunner(config) if "ner" in config.tasks else None
    return re_runner, ner_runner
