"""The task kinds: one object a kind (classification, multiple choice, tagging, span QA, entity linking,
QA retrieval, sentence retrieval) that knows its data, its runner, its leaderboard files and its scorer,
as lm-evaluation-harness's task objects do. A :class:`~weam.eval.tasks.TaskSpec` names its kind; the
generic code (:mod:`weam.eval.api`, :mod:`~weam.eval.data`, :mod:`~weam.eval.score`, ``weam data
clean``) asks the kind and never tests which one it is.

A new kind is a subclass here and an entry in :data:`KINDS`; a new task of an existing kind is data in
:mod:`weam.eval.tasks.xtreme_r`.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from weam.core.errors import ConfigError, InputError, WeamError
from weam.eval import formats, metrics

if TYPE_CHECKING:
    from weam.eval.config import EvalConfig
    from weam.eval.tasks import TaskSpec


class TaskKind:
    """What every kind answers; the defaults are those of a kind whose gold is one label a line."""

    name: str = ""
    """The kind's id (what a model card's results row records)."""
    runner_class: str = ""
    """The :mod:`weam.eval.runners` class that fine-tunes and predicts this kind."""
    columns: tuple[str, ...] = ()
    """Our record's columns, as a Hugging Face dataset's columns are mapped onto them (``hf_columns``)."""
    result_settings: tuple[str, ...] = ()
    """EvalConfig keys beyond the shared ones that change this kind's results (a cell's settings key)."""
    hf_task_type: str = "other"
    """Hugging Face task type (a model card's model-index ``task.type``)."""

    def __repr__(self) -> str:
        return f"<task kind {self.name}>"

    @property
    def runner(self) -> type:
        return getattr(importlib.import_module("weam.eval.runners"), self.runner_class)

    # --- the download's files -----------------------------------------------------------------
    def read(self, spec: TaskSpec, path: Path) -> list[dict[str, Any]]:
        """Records of one file of the download layout."""
        raise WeamError(f"task {spec.name}: no record loader for kind {self.name}")

    def strip_gold(self, record: dict[str, Any]) -> None:
        """Remove, in place, what a split without gold carries in its place (XCOPA test's label 0 …)."""

    def normalise(self, spec: TaskSpec, record: dict[str, Any], names: list[str] | None, source: str,
                  line: int) -> None:
        """Bring, in place, a Hugging Face dataset's row (already mapped to our columns) to the
        download's record shape; ``names``: the dataset's own label names."""

    def text_units(self, path: Path, split_sentences: Callable[[str], list[str]]) -> list[str]:
        """The sentences of one evaluation file, for ``weam data clean``'s overlap check."""
        raise ConfigError(f"task kind {self.name!r} has no sentence reader for the overlap check")

    # --- the leaderboard layout: <task>/test-<lang>.<ext> ---------------------------------------
    def write_predictions(self, path: Path, predictions: Any) -> None:
        """Predictions in the layout XTREME's evaluate.py reads for this kind."""
        formats.write_lines(path, predictions)

    def read_leaderboard(self, path: Path) -> Any:
        """A prediction or label file of the leaderboard layout (as evaluate.py's readers)."""
        return formats.read_lines(path)

    def score(self, spec: TaskSpec, predicted_path: Path, label_path: Path, lang: str) -> dict[str, float]:
        """One language's metrics from a prediction file and a label file."""
        predicted, gold = self._aligned(predicted_path, label_path)
        return metrics.accuracy([str(g) for g in gold], [str(p) for p in predicted])

    def _aligned(self, predicted_path: Path, label_path: Path) -> tuple[list, list]:
        predicted, gold = self.read_leaderboard(predicted_path), self.read_leaderboard(label_path)
        if len(predicted) != len(gold):
            raise InputError(predicted_path, f"{len(predicted)} predictions but {label_path} has {len(gold)} labels")
        return predicted, gold

    # --- the evaluation ---------------------------------------------------------------------------
    def languages(self, spec: TaskSpec, codes: list[str]) -> list[str]:
        """Of the requested languages (normalised codes), those the task evaluates."""
        return [code for code in codes if code in spec.languages]

    def fine_tuned(self, spec: TaskSpec, config: EvalConfig) -> bool:
        """Whether a seed fine-tunes (else only the first seed runs)."""
        return spec.finetune is not None

    def settings_tasks(self, spec: TaskSpec) -> tuple[str, ...]:
        """The tasks whose hyper-parameters and data sources a cell of ``spec`` depends on."""
        return (spec.name,)

    def prepare(self, runner: Any, langs: list[str]) -> None:
        """Ready a runner for predicting ``langs`` (before it trains)."""


def label_name(spec: TaskSpec, label: Any, names: list[str] | None, source: str, line: int) -> str:
    """A dataset's label (an index into its names, or a name) as one of the task's labels."""
    if isinstance(label, int):
        names = names or list(spec.labels)
        if not 0 <= label < len(names):
            raise InputError(source, f"label index {label} outside the dataset's {len(names)} labels", line)
        label = names[label]
    if label not in spec.labels:
        raise InputError(source, f"label {label!r} is not in the task's label set ({', '.join(spec.labels)})", line)
    return label


class Classification(TaskKind):
    name, runner_class, hf_task_type = "classification", "ClassificationRunner", "text-classification"
    columns = ("sentence1", "sentence2", "label")

    def read(self, spec, path):
        return formats.read_pair_tsv(path, spec.labels)

    def strip_gold(self, record):
        record["label"] = None

    def normalise(self, spec, record, names, source, line):
        label = record["label"]
        record["label"] = None if label is None or label == -1 else label_name(spec, label, names, source, line)

    def text_units(self, path, split_sentences):
        return [text for r in formats.read_pair_tsv(path, ()) for text in (r["sentence1"], r["sentence2"])]


class MultipleChoice(TaskKind):
    name, runner_class, hf_task_type = "multiple_choice", "MultipleChoiceRunner", "multiple-choice"
    columns = ("premise", "choice1", "choice2", "question", "label")

    def read(self, spec, path):
        return formats.read_copa(path)

    def strip_gold(self, record):
        record["label"] = None

    def normalise(self, spec, record, names, source, line):
        if record["label"] is not None:
            record["label"] = int(record["label"])

    def text_units(self, path, split_sentences):
        return [r[key] for r in formats.read_copa(path) for key in ("premise", "choice1", "choice2")]

    def write_predictions(self, path, predictions):
        formats.write_label_jsonl(path, predictions)

    def read_leaderboard(self, path):
        return formats.read_label_jsonl(path)


class Tagging(TaskKind):
    name, runner_class, hf_task_type = "tagging", "TaggingRunner", "token-classification"
    columns = ("tokens", "tags")

    def read(self, spec, path):
        return formats.read_conll_tsv(path, spec.labels)

    def strip_gold(self, record):
        record["tags"] = None

    def normalise(self, spec, record, names, source, line):
        if record["tags"] is not None:
            record["tags"] = [label_name(spec, t, names, source, line) for t in record["tags"]]

    def text_units(self, path, split_sentences):
        return [" ".join(sentence["tokens"]) for sentence in formats.read_conll_tsv(path, ())]

    def write_predictions(self, path, predictions):
        formats.write_tag_lines(path, predictions)

    def read_leaderboard(self, path):
        return formats.read_tag_lines(path)

    def score(self, spec, predicted_path, label_path, lang):
        predicted, gold = self._aligned(predicted_path, label_path)
        try:
            scores = metrics.tagging_scores(gold, predicted)
        except ValueError as exc:
            raise InputError(predicted_path, f"{exc} ({label_path})") from None
        return {m: scores[m] for m in spec.metrics}


class _SquadRecords(TaskKind):
    """Kinds whose data is SQuAD v1.1 JSON (a question, its context, the answers)."""

    columns = ("id", "question", "context", "answers")

    def read(self, spec, path):
        return formats.read_squad(path)

    def strip_gold(self, record):
        record["answers"] = []

    def normalise(self, spec, record, names, source, line):
        answers = record["answers"]
        if isinstance(answers, dict):  # datasets' squad feature: {text: [...], answer_start: [...]}
            record["answers"] = [{"text": t, "answer_start": s} for t, s in zip(answers["text"], answers["answer_start"])]
        record["id"] = str(record["id"])
        record.setdefault("sentence_breaks", None)

    def text_units(self, path, split_sentences):
        units: list[str] = []
        seen_contexts: set[str] = set()
        for record in formats.read_squad(path):
            units.append(record["question"])
            context = record["context"]
            if context in seen_contexts:
                continue
            seen_contexts.add(context)
            breaks = record.get("sentence_breaks")
            if breaks:
                units.extend(context[start:end] for start, end in breaks)
            else:
                units.extend(split_sentences(context))
        return units


class _RankedIds(TaskKind):
    """Kinds predicting a ranked list of ids per query, scored by mean average precision@k."""

    result_settings = ("dual_encoder_pooling",)
    hf_task_type = "text-retrieval"

    def write_predictions(self, path, predictions):
        formats.write_json(path, predictions)

    def read_leaderboard(self, path):
        return formats.read_id_lists(formats.require_file(path, "leaderboard file"))

    def score(self, spec, predicted_path, label_path, lang):
        predicted, gold = self.read_leaderboard(predicted_path), self.read_leaderboard(label_path)
        return metrics.map_at_k({k: v for k, v in gold.items() if v and v[0]}, predicted)


class SpanQA(_SquadRecords):
    name, runner_class, hf_task_type = "qa", "QARunner", "question-answering"

    def write_predictions(self, path, predictions):
        formats.write_json(path, predictions)

    def read_leaderboard(self, path):
        return formats.read_squad_articles(path)

    def score(self, spec, predicted_path, label_path, lang):
        predicted, gold = self.read_leaderboard(predicted_path), self.read_leaderboard(label_path)
        answers = {r["id"]: [a["text"] for a in r["answers"]] for r in formats.squad_answers(gold)}
        return metrics.qa_scores(answers, predicted, lang, mlqa=spec.answer_normalisation == "mlqa")


class EntityLinking(_RankedIds):
    name, runner_class = "retrieval_el", "MewsliXRunner"
    columns = ("context", "mentions")


class QARetrieval(_RankedIds, _SquadRecords):
    name, runner_class = "retrieval_qa", "LAReQARunner"


class SentenceRetrieval(TaskKind):
    """Tatoeba: no training data of its own; the encoder is the pre-trained model, or (XTREME-R) the
    model fine-tuned on :attr:`encoder_task`'s data. Any language but English can be a held-out set:
    outside the task's list its files carry the ISO 639-3 code."""

    name, runner_class, hf_task_type = "sentence_retrieval", "TatoebaRunner", "sentence-similarity"
    columns = ("sentence", "english")
    result_settings = ("retrieval_layer", "retrieval_pooling", "tatoeba_encoder")
    encoder_task = "xquad"
    """The task whose English data fine-tunes the encoder when ``tatoeba_encoder`` is 'squad'."""

    def text_units(self, path, split_sentences):
        return [line.rstrip("\r\n") for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def languages(self, spec, codes):
        return [code for code in codes if code != "en"]  # English is the retrieval target

    def fine_tuned(self, spec, config):
        return spec.finetune is not None or config.tatoeba_encoder == "squad"

    def settings_tasks(self, spec):
        return (spec.name, self.encoder_task)

    def prepare(self, runner, langs):
        from weam.core.languages import get_language

        spec = runner.spec
        codes = {lang: get_language(lang).iso639_3 for lang in langs if lang not in spec.lang_codes}
        runner.spec = dataclasses.replace(spec, lang_codes={**codes, **spec.lang_codes})


CLASSIFICATION, MULTIPLE_CHOICE, TAGGING = Classification(), MultipleChoice(), Tagging()
SPAN_QA, ENTITY_LINKING, QA_RETRIEVAL, SENTENCE_RETRIEVAL = SpanQA(), EntityLinking(), QARetrieval(), SentenceRetrieval()
KINDS: dict[str, TaskKind] = {each.name: each for each in (CLASSIFICATION, MULTIPLE_CHOICE, TAGGING, SPAN_QA,
                                                           ENTITY_LINKING, QA_RETRIEVAL, SENTENCE_RETRIEVAL)}
"""Every kind by its id."""
