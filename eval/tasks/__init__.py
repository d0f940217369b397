"""The XTREME-R task registry: each task is data (a :class:`TaskSpec`), the code is shared.

Where the facts come from (google-research/xtreme at commit 838c13b, and Ruder et al. 2021,
"XTREME-R: Towards More Challenging and Nuanced Multilingual Evaluation", arXiv 2104.07412):

- language lists: ``evaluate.py`` ``XTREME_R_TASK2LANGS`` (LAReQA's list there is empty; its
  languages are XQuAD-R's 11, ``scripts/download_data.sh`` ``download_lareqa`` + paper Table 1);
- file layout and field names: ``scripts/download_data.sh`` and ``utils_preprocess.py``;
- metrics and the score of each task: ``evaluate.py`` (``METRIC_FUNCTION``; QA scores the mean of
  EM and F1; ``avg_metric``) and paper Table 1;
- fine-tuning hyper-parameters (mBERT column): ``scripts/train_<task>.sh`` / ``train_qa.sh``;
- Tatoeba's layer: ``scripts/run_tatoeba.sh`` (``--specific_layer 7`` of the last 12 hidden states,
  i.e. ``hidden_states[8]`` of a 12-layer model) and ``third_party/evaluate_retrieval.py``.

The tasks themselves live in :mod:`weam.eval.tasks.xtreme_r`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from weam.core.errors import WeamError
from weam.eval.kinds import TaskKind


@dataclass(frozen=True)
class Split:
    """One target-language split as XTREME-R's ``scripts/download_data.sh`` leaves it on disk."""

    path: str
    """Path under the data root (``{lang}``: XTREME's 2-letter code, ``{code}``: the task's file code)."""
    labelled: bool
    """Whether the download carries gold labels for this split (a fact of utils_preprocess.py)."""
    why: str
    """Where the labels come from, or why there are none (shown in every unscored cell)."""
    missing: dict[str, str] = field(default_factory=dict)
    """Languages of the task the download has no file for in this split → why."""


@dataclass(frozen=True)
class FineTune:
    """Recommended English fine-tuning (XTREME's mBERT settings); overridable per task in EvalConfig."""

    learning_rate: float = 2e-5
    epochs: float = 3.0
    batch_size: int = 32
    """Effective batch size (XTREME: per-GPU batch × gradient accumulation)."""
    max_seq_len: int = 128
    warmup_steps: int = 0
    weight_decay: float = 0.0


@dataclass(frozen=True)
class TaskSpec:
    name: str
    """XTREME's task id (directory name under the download folder and in the leaderboard layout)."""
    title: str
    kind: TaskKind
    """What the task is (:mod:`weam.eval.kinds`): its reader, runner, prediction files and scorer."""
    group: str
    """XTREME-R's task group (classification, structured prediction, QA, retrieval)."""
    languages: tuple[str, ...]
    """Target languages as XTREME-R evaluates them (XTREME's 2-letter codes)."""
    metrics: tuple[str, ...]
    """Metrics computed per language (percent, as XTREME's evaluate.py). Beyond those the score is
    formed from, a cell may lack one (Tatoeba's MRR needs the similarity matrix, which a prediction
    file scored by ``weam eval score`` does not carry); averages then leave it out."""
    score: str
    """How the XTREME-R score of the task is formed from ``metrics`` ("mean(exact_match,f1)" for QA)."""
    train_data: str
    """English training data, as XTREME-R uses it."""
    files: dict[str, str]
    """English training/selection files and other auxiliary paths under the data root."""
    splits: dict[str, Split]
    """Target-language splits (``test`` = the leaderboard split, ``dev``) and their label facts."""
    input_format: str
    """The on-disk format the loader reads."""
    prediction_ext: str
    """Leaderboard layout: ``<task>/test-<lang>.<ext>``."""
    finetune: FineTune | None = None
    """None: the task is zero-shot without fine-tuning (Tatoeba)."""
    selection: str = "last"
    """Model selection of XTREME's train script: ``best_dev`` (English dev every ``save_steps``, keep
    the best: run_classify.py/run_tag.py ``--save_only_best_checkpoint``) or ``last`` (the final model)."""
    save_steps: int | None = None
    """``--save_steps`` of the task's train script (optimizer steps between English-dev evaluations)."""
    labels: tuple[str, ...] = ()
    """Closed label set (classification and tagging)."""
    reference_metrics: tuple[str, ...] = ()
    """Figures of ``metrics`` reported per language and never averaged over languages (chance levels,
    counts): they read a language's score, they are not scores."""
    lang_codes: dict[str, str] = field(default_factory=dict)
    """Per-task file codes that differ from ours (Tatoeba's 3-letter LASER codes)."""
    hf: "HFSource | None" = None
    """The Hugging Face dataset carrying the same data (namespaced id, config, schema, label facts)."""
    answer_normalisation: str = "squad"
    """QA answers are compared after SQuAD's normalisation, or MLQA's language-aware one ("mlqa")."""
    file_aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Other paths (under the data root) a file of ``files`` may have; when the file itself is absent,
    the first alias present is read (TyDiQA's train file has two names)."""
    notes: str = ""

    def file_code(self, lang: str) -> str:
        return self.lang_codes.get(lang, lang)

    def split(self, name: str) -> Split:
        if name not in self.splits:
            raise WeamError(f"task {self.name} has no {name} split in XTREME's download "
                            f"(it has: {', '.join(self.splits)})")
        return self.splits[name]

    def score_of(self, metrics: dict[str, float]) -> float:
        if self.score.startswith("mean("):
            names = self.score[5:-1].split(",")
            return sum(metrics[n] for n in names) / len(names)
        return metrics[self.score]


@dataclass(frozen=True)
class HFSource:
    """A Hugging Face dataset with the same data as the download, read with ``datasets.load_dataset``."""

    id: str
    """Namespaced hub id (resolves today)."""
    config: str
    """Config name template (``{lang}``, ``{code}``: the task's file code, ``{name}``: :meth:`language_name`)."""
    splits: dict[str, str]
    """Our split → the dataset's split."""
    columns: dict[str, str]
    """Our column → the dataset's column (the columns of the task's kind, weam.eval.kinds)."""
    labelled: tuple[str, ...]
    """Our splits whose rows carry gold labels in this dataset."""
    language_names: dict[str, str] = field(default_factory=dict)
    """The dataset's name for a language (``{name}`` in ``config`` and ``id_prefix``); our code where absent."""
    id_prefix: str = ""
    """Where one split holds every language's rows: a row is a language's when its ``id`` column starts
    with this template (``{lang}``, ``{name}``); empty: every row of the split is the language's."""
    notes: str = ""

    def language_name(self, lang: str) -> str:
        return self.language_names.get(lang, lang)


def all_tasks() -> dict[str, TaskSpec]:
    from weam.eval.tasks.xtreme_r import TASKS

    return TASKS


def get_task(name: str) -> TaskSpec:
    tasks = all_tasks()
    key = TASK_ALIASES.get(name.lower(), name.lower())
    if key not in tasks:
        raise WeamError(f"unknown task {name!r}; known: {', '.join(tasks)}")
    return tasks[key]


TASK_ALIASES = {"wikiann": "panx", "ner": "panx", "pos": "udpos", "ud-pos": "udpos", "tydiqa-goldp": "tydiqa",
                "mewsli-x": "mewslix"}


LABEL_SPLITS = ("test", "dev")
"""The order in which :func:`labelled_split` prefers splits."""


def label_file(labels_dir: Path | None, spec: TaskSpec, lang: str) -> Path | None:
    """User-supplied gold labels in the leaderboard layout (``<labels_dir>/<task>/test-<lang>.<ext>``)."""
    if labels_dir is None:
        return None
    path = Path(labels_dir) / spec.name / f"test-{lang}.{spec.prediction_ext}"
    return path if path.is_file() else None


def label_source(labels_dir: Path, path: Path) -> str:
    """How results.json names a labels_dir file: ``labels_dir/<task>/test-<lang>.<ext>``, relative, so
    the same study in two folders writes the same results (its manifest keeps the absolute path and
    the file's hash)."""
    return f"labels_dir/{Path(path).relative_to(labels_dir).as_posix()}"


def unlabelled(spec: TaskSpec, split: str, langs: Iterable[str], labels_dir: Path | None = None,
               hf: bool = False) -> dict[str, str]:
    """Languages of ``langs`` without gold labels in ``split`` → the reason (empty: all labelled).

    ``hf``: the split is read from the task's Hugging Face dataset, whose label facts apply."""
    if split not in spec.splits:
        return {lang: f"{spec.name} has no {split} split in XTREME's download" for lang in langs}
    info = spec.splits[split]
    out = {}
    for lang in langs:
        if split == "test" and label_file(labels_dir, spec, lang) is not None:
            continue
        if hf and spec.hf is not None:
            if split not in spec.hf.labelled:
                out[lang] = f"{spec.hf.id} carries no gold labels in its {spec.hf.splits.get(split, split)} split"
        elif lang in info.missing:
            out[lang] = info.missing[lang]
        elif not info.labelled:
            out[lang] = info.why
    return out


def labelled_split(task: str, split: str, langs: Iterable[str], labels_dir: Path | None = None,
                   hf: bool = False) -> str:
    """The split the study scores for ``task`` in ``langs``: ``split`` itself (test | dev), or for
    ``labelled`` the first of test, dev whose gold labels cover every language. Raises a WeamError
    naming task, split and the languages without labels."""
    spec = get_task(task)
    langs = [lang for lang in langs if lang in spec.languages]
    candidates = LABEL_SPLITS if split == "labelled" else (split,)
    gaps = {name: unlabelled(spec, name, langs, labels_dir, hf) for name in candidates}
    for name in candidates:
        if not gaps[name]:
            return name
    detail = "; ".join(f"{name}: " + ", ".join(f"{lang} ({why})" for lang, why in gap.items())
                       for name, gap in gaps.items())
    raise WeamError(f"task {spec.name}, split {split}: no gold labels for language(s) "
                    f"{', '.join(sorted({l for gap in gaps.values() for l in gap}))} — {detail}. Give gold "
                    f"labels in the leaderboard layout (labels_dir), drop those languages, or pick another task")


def resolve_split(spec: TaskSpec, split: str, langs: list[str], labels_dir: Path | None = None,
                  hf: bool = False) -> str:
    """Like :func:`labelled_split` without raising: for ``labelled``, the split whose labels cover the
    most languages (test wins ties); the languages it leaves unlabeled are reported cell by cell."""
    if split != "labelled":
        return split
    present = [name for name in LABEL_SPLITS if name in spec.splits]
    return min(present, key=lambda name: (len(unlabelled(spec, name, langs, labels_dir, hf)),
                                          LABEL_SPLITS.index(name)))
