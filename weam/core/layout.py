"""Where each stage reads and writes inside a study's work directory. Stages talk only through
these files (each directory finished by a ``manifest.json``, see :mod:`weam.core.manifest`; the stage
table, :mod:`weam.stages`, says which stage writes which folder)::

    <work>/
      data/<src>-<tgt>/train.<src>, train.<tgt>      Moses pair, words separated by single spaces
      data/<src>-<tgt>/manifest.json
      data/mono/<lang>.txt                            monolingual text (base-model pre-training)
      data/tatoeba/<xx>-en.<xx|en>                    held-out retrieval sets, XTREME's download layout
      data/labels/tatoeba/test-<xx>.tsv               their gold, in the leaderboard layout
      data/manifest.json                              the whole demo build
      tokenizer/                                      HF fast tokenizer (save_pretrained)
      align/<src>-<tgt>/alignment.txt                 Pharaoh i-j lines, one per training pair
      align/<src>-<tgt>/manifest.json
      budget/manifest.json                            tokens available per condition (budget check)
      base/model/                                     the base encoder (HF save_pretrained)
      pretrain/<condition>/seed<k>/model/             HF export of the pre-trained encoder
      pretrain/<condition>/seed<k>/checkpoints/       DeepSpeed checkpoints (resume)
      pretrain/<condition>/seed<k>/manifest.json
      eval/<condition>/seed<k>/<task>/results.json    per-language scores and aggregates
      eval/<condition>/seed<k>/<task>/manifest.json
      eval/<condition>/seed<k>/manifest.json          the eval stage: model weights and data by hash
      report/report.md, report/*.png, report/manifest.json
      <stage folder>/.fingerprint.json                inputs+config a started run had (resume or clear)
      mlflow.db                                       default tracking store
      study.resolved.yaml                             the study config as last run (reproduce --check)
"""

from __future__ import annotations

from pathlib import Path


def pair_name(src: str, tgt: str) -> str:
    return f"{src}-{tgt}"


def corpus_dir(work: Path, src: str, tgt: str) -> Path:
    return Path(work) / "data" / pair_name(src, tgt)


def corpus_files(work: Path, src: str, tgt: str, split: str = "train") -> tuple[Path, Path]:
    folder = corpus_dir(work, src, tgt)
    return folder / f"{split}.{src}", folder / f"{split}.{tgt}"


def mono_file(work: Path, lang: str) -> Path:
    return Path(work) / "data" / "mono" / f"{lang}.txt"


def tatoeba_dir(work: Path) -> Path:
    return Path(work) / "data" / "tatoeba"


def labels_dir(work: Path) -> Path:
    return Path(work) / "data" / "labels"


def tokenizer_dir(work: Path) -> Path:
    return Path(work) / "tokenizer"


def alignment_dir(work: Path, src: str, tgt: str) -> Path:
    return Path(work) / "align" / pair_name(src, tgt)


def base_model_dir(work: Path) -> Path:
    return Path(work) / "base" / "model"


def pretrain_dir(work: Path, condition: str, seed: int) -> Path:
    return Path(work) / "pretrain" / condition / f"seed{seed}"


def eval_dir(work: Path, condition: str, seed: int, task: str) -> Path:
    return Path(work) / "eval" / condition / f"seed{seed}" / task


def budget_dir(work: Path) -> Path:
    return Path(work) / "budget"


def report_dir(work: Path) -> Path:
    return Path(work) / "report"


WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "config.json", "tokenizer.json", "vocab.txt",
                "tokenizer_config.json", "special_tokens_map.json")
"""A saved model's weight, config and tokenizer files: what a stage that reads a model fingerprints."""


def model_files(name: str, source: str | Path | None) -> dict[str, Path]:
    """A local model's weight, config and tokenizer files as ``{"<name>/<file>": path}`` (hub ids are
    named in the config instead). A folder under a study's work dir that does not exist yet lists
    its weights, so that the stage that will write it counts as upstream."""
    if source is None or str(source).startswith("preset:"):
        return {}
    folder = Path(source)
    if not folder.is_dir():
        return {f"{name}/model.safetensors": folder / "model.safetensors"} if folder.is_absolute() else {}
    return {f"{name}/{f}": folder / f for f in WEIGHT_FILES if (folder / f).is_file()}


def resolved_study_file(work: Path) -> Path:
    """The study config as `weam study run` last resolved it (bases merged, overrides applied):
    what `weam study reproduce --check` re-runs."""
    return Path(work) / "study.resolved.yaml"
