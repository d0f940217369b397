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

The tasks themselves live in :mod:`eval.tasks.xtreme_r`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from weam.errors import WeamError


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
    kind: str
    """classification | multiple_choice | tagging | qa | retrieval_el | retrieval_qa | sentence_retrieval."""
    group: str
    """XTREME-R's task group (classification, structured prediction, QA, retrieval)."""
    languages: tuple[str, ...]
    """Target languages as XTREME-R evaluates them (XTREME's 2-letter codes)."""
    metrics: tuple[str, ...]
    """Metrics computed per language (percent, as XTREME's evaluate.py)."""
    score: str
    """How the XTREME-R score of the task is formed from ``metrics`` ("mean(exact_match,f1)" for QA)."""
    train_data: str
    """English training data, as XTREME-R uses it."""
    files: dict[str, str]
    """Split → path under the data root (``{lang}`` / ``{code}`` placeholders)."""
    input_format: str
    """The on-disk format the loader reads."""
    prediction_ext: str
    """Leaderboard layout: ``<task>/test-<lang>.<ext>``."""
    finetune: FineTune | None = None
    """None: the task is zero-shot without fine-tuning (Tatoeba)."""
    labels: tuple[str, ...] = ()
    """Closed label set (classification and tagging)."""
    lang_codes: dict[str, str] = field(default_factory=dict)
    """Per-task file codes that differ from ours (Tatoeba's 3-letter LASER codes)."""
    hf_dataset: str | None = None
    """A Hugging Face dataset carrying the same data (``load_dataset`` id; configurable)."""
    notes: str = ""

    def file_code(self, lang: str) -> str:
        return self.lang_codes.get(lang, lang)

    def score_of(self, metrics: dict[str, float]) -> float:
        if self.score.startswith("mean("):
            names = self.score[5:-1].split(",")
            return sum(metrics[n] for n in names) / len(names)
        return metrics[self.score]


def all_tasks() -> dict[str, TaskSpec]:
    from eval.tasks.xtreme_r import TASKS

    return TASKS


def get_task(name: str) -> TaskSpec:
    tasks = all_tasks()
    key = TASK_ALIASES.get(name.lower(), name.lower())
    if key not in tasks:
        raise WeamError(f"unknown task {name!r}; known: {', '.join(tasks)}")
    return tasks[key]


TASK_ALIASES = {"wikiann": "panx", "ner": "panx", "pos": "udpos", "ud-pos": "udpos", "tydiqa-goldp": "tydiqa",
                "mewsli-x": "mewslix"}
