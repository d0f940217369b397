"""The instrument check: can the study's pipeline see the effect its method is known to have?

A study config with an ``instrument`` block (configs/instrument.yaml) trains, from one base and at
one content-token budget on one language set, every arm (objectives of the objective table) with
every seed, and scores the base model and every run by:

* **word retrieval** (as Cao, Kitaev & Klein 2020 measure alignment): for every English word of
  the held-out split with a one-to-one gold link, its contextual vector (the mean of its subword
  states at a layer) queries every word of every xx sentence of the held-out split (in context);
  P@1 is the share whose nearest (cosine) candidate is the aligned word itself. Gold links: the
  align engine run on train + held-out together, symmetrised by intersection, one-to-one links of
  the held-out lines kept (stage ``word_gold``: Cao et al. take fast_align's intersection too).
* **sentence retrieval** (Tatoeba, English → xx, as the study's eval stage scores it): the sentence
  vector is the mean of all token states ([CLS]/[SEP] included) at a layer; accuracy is the share of
  English sentences whose nearest xx sentence is their translation.

Both at every layer of ``instrument.layers``, on the set's own languages (their held-out split,
never trained on) and on the held-out targets. The report (:func:`write_instrument_report`) gives
per arm the mean and 95 % t interval over seeds, and each arm's difference from base (per seed)
and from mlm (paired by seed); the same rows go to ``report/instrument.json``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from pydantic import Field

from weam.core import layout
from weam.core.config import StrictModel
from weam.core.manifest import atomic_write_json, read_manifest, write_manifest

BASE_ARM = "base"
METRICS = ("word_p@1", "sentence_accuracy")


class WordGoldConfig(StrictModel):
    """Gold word links of one pair's held-out split, for word retrieval."""

    pivot: str
    lang: str
    train: tuple[Path, Path]
    """The pair's training split (pivot side, other side): aligned together with the held-out one."""
    heldout: tuple[Path, Path]
    """The held-out split whose links are kept."""
    align: dict[str, Any] = {}
    """Keys of weam.alignment.config.AlignConfig (symmetrization is set to intersection)."""
    out_dir: Path


class ProbeConfig(StrictModel):
    """Word and sentence retrieval of one model at several layers (weam.study.instrument)."""

    model: str
    """The model scored: an HF directory (its weights count by content) or hub id."""
    pivot: str = "en"
    own: list[str] = []
    """The languages the model's run trained on (their held-out split)."""
    held_out: list[str] = []
    """The study's zero-shot targets."""
    data_dir: Path
    """The study's data folder (``<pivot>-<xx>/heldout.*``)."""
    gold_dir: Path
    """The word_gold stage's folder (``<pivot>-<xx>/gold.txt``)."""
    layers: list[int] = Field(min_length=1)
    """hidden_states indices scored."""
    max_seq_len: int = Field(128, ge=8)
    """Longest input; words cut off are not scored."""
    batch_size: int = Field(64, gt=0)
    """Sentences per forward pass (no effect on the scores)."""
    out_dir: Path


# --- plan ----------------------------------------------------------------------------------------
def instrument_steps(study, work: Path, base_model: Path, source: str) -> list:
    """The instrument's steps after the pre-training runs: gold links per language, then one probe
    per model (the base model, and every arm × seed)."""
    from weam.alignment.config import AlignConfig
    from weam.core.config import deep_merge, validate
    from weam.stages import Step
    from weam.study.config import BASE_CONDITION
    from weam.study.plan import run_folder

    instrument = study.instrument
    languages = list(dict.fromkeys([*instrument.languages, *study.held_out]))
    align = validate(AlignConfig, deep_merge(study.align, {"symmetrization": "intersection"}),
                     f"{source}: study key 'align'").model_dump(mode="json")
    steps = []
    for code in languages:
        steps.append(Step(f"word-gold/{study.pivot}-{code}", "word_gold", gold_dir(work) / f"{study.pivot}-{code}",
                          WordGoldConfig(pivot=study.pivot, lang=code,
                                         train=layout.corpus_files(work, study.pivot, code),
                                         heldout=layout.corpus_files(work, study.pivot, code, split="heldout"),
                                         align=align, out_dir=gold_dir(work) / f"{study.pivot}-{code}")))
    max_len = int(study.eval.get("max_seq_len") or 128)
    models = [(BASE_CONDITION, None, study.base.seed, base_model)]
    models += [(item.condition, item.set_id, seed,
                layout.pretrain_dir(work, run_folder(item.condition, item.set_id), seed) / "model")
               for item, seed in study.runs()]
    for arm, set_id, seed, model in models:
        folder = run_folder(arm, set_id) if set_id else arm
        out_dir = work / "probe" / folder / f"seed{seed}"
        config = ProbeConfig(model=str(model), pivot=study.pivot, own=list(instrument.languages), held_out=list(study.held_out),
                             data_dir=work / "data", gold_dir=gold_dir(work), layers=list(instrument.layers),
                             max_seq_len=max_len, out_dir=out_dir)
        steps.append(Step(f"probe/{folder}/seed{seed}", "probe", out_dir, config, arm, seed,
                          extra={"model": model}, language_set=set_id))
    return steps


def gold_dir(work: Path) -> Path:
    return Path(work) / "word-gold"


# --- gold links ----------------------------------------------------------------------------------
def word_gold_identity(step):
    cfg: WordGoldConfig = step.config
    inputs = {"train.src": cfg.train[0], "train.tgt": cfg.train[1], "heldout.src": cfg.heldout[0],
              "heldout.tgt": cfg.heldout[1]}
    return inputs, {"pivot": cfg.pivot, "lang": cfg.lang, "align": cfg.align, "links": "intersection, one-to-one"}


def run_word_gold(step, logger, tags) -> None:
    """Align train + held-out together (more data, better links), keep the held-out lines' one-to-one
    links: ``gold.txt``, one Pharaoh line per held-out pair."""
    import tempfile

    from weam.alignment.api import align_corpus
    from weam.alignment.config import AlignConfig
    from weam.alignment.pharaoh import parse_links

    cfg: WordGoldConfig = step.config
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sides = [[path.read_text(encoding="utf-8").splitlines() for path in pair] for pair in (cfg.train, cfg.heldout)]
    (train_src, train_tgt), (held_src, held_tgt) = sides
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        src, tgt = Path(tmp) / "all.src", Path(tmp) / "all.tgt"
        src.write_text("\n".join(train_src + held_src) + "\n", encoding="utf-8")
        tgt.write_text("\n".join(train_tgt + held_tgt) + "\n", encoding="utf-8")
        align_corpus(src, tgt, Path(tmp) / "align", AlignConfig.model_validate(cfg.align))
        lines = (Path(tmp) / "align" / "alignment.txt").read_text(encoding="utf-8").splitlines()
    kept = [one_to_one(parse_links(line)) for line in lines[len(train_src):]]
    (out / "gold.txt").write_text("".join(" ".join(f"{i}-{j}" for i, j in links) + "\n" for links in kept),
                                  encoding="utf-8")
    inputs, config = word_gold_identity(step)
    write_manifest(out, "word_gold", inputs, config, {"gold": "gold.txt"},
                   {"pairs": len(kept), "links": sum(len(links) for links in kept)})


def one_to_one(links) -> list[tuple[int, int]]:
    """The links whose two words take part in no other link."""
    from collections import Counter

    links = sorted(set(links))
    src, tgt = Counter(i for i, _ in links), Counter(j for _, j in links)
    return [(i, j) for i, j in links if src[i] == 1 and tgt[j] == 1]


# --- probe ---------------------------------------------------------------------------------------
def probe_identity(step):
    from weam.core.layout import model_files

    cfg: ProbeConfig = step.config
    inputs = model_files("model", cfg.model)
    for code in [*cfg.own, *cfg.held_out]:
        folder = Path(cfg.data_dir) / f"{cfg.pivot}-{code}"
        inputs[f"{code}/heldout.{cfg.pivot}"] = folder / f"heldout.{cfg.pivot}"
        inputs[f"{code}/heldout.{code}"] = folder / f"heldout.{code}"
        inputs[f"{code}/gold"] = Path(cfg.gold_dir) / f"{cfg.pivot}-{code}" / "gold.txt"
    return inputs, {"own": cfg.own, "held_out": cfg.held_out, "layers": cfg.layers, "max_seq_len": cfg.max_seq_len,
                    "pivot": cfg.pivot}


def run_probe(step, logger, tags) -> None:
    cfg: ProbeConfig = step.config
    scores = probe_model(cfg.model, cfg)
    out = Path(cfg.out_dir)
    atomic_write_json(out / "probe.json", scores)
    inputs, config = probe_identity(step)
    write_manifest(out, "probe", inputs, config, {"scores": "probe.json"}, {"model": cfg.model})
    if logger:
        logger.log_metrics({f"probe/{metric}/L{layer}/{code}": value
                            for code, per_layer in scores["languages"].items()
                            for layer, metrics in per_layer.items() for metric, value in metrics.items()
                            if metric in METRICS})


def probe_model(model_path, cfg: ProbeConfig) -> dict[str, Any]:
    """``{"languages": {xx: {layer: {word_p@1, words, sentence_accuracy, sentences}}}, "own": […],
    "held_out": […]}`` with scores in percent."""
    import torch
    from transformers import AutoTokenizer

    from weam.eval.runners import load_encoder

    torch.manual_seed(0)
    model = load_encoder(model_path).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(model_path))
    layers = model.config.num_hidden_layers
    bad = [layer for layer in cfg.layers if not 0 <= layer <= layers]
    if bad:
        from weam.core.errors import InputError

        raise InputError(model_path, f"layers {bad} outside 0..{layers} (hidden_states of a {layers}-layer encoder)")
    cache: dict[str, dict[int, tuple]] = {}
    result: dict[str, Any] = {"own": cfg.own, "held_out": cfg.held_out, "languages": {}}
    for code in dict.fromkeys([*cfg.own, *cfg.held_out]):
        folder = Path(cfg.data_dir) / f"{cfg.pivot}-{code}"
        english = (folder / f"heldout.{cfg.pivot}").read_text(encoding="utf-8").splitlines()
        other = (folder / f"heldout.{code}").read_text(encoding="utf-8").splitlines()
        gold_lines = (Path(cfg.gold_dir) / f"{cfg.pivot}-{code}" / "gold.txt").read_text(encoding="utf-8").splitlines()
        gold = [[tuple(map(int, link.split("-"))) for link in line.split()] for line in gold_lines]
        eng = _encoded(model, tokenizer, english, cfg, cache)
        xx = _encoded(model, tokenizer, other, cfg, None)
        result["languages"][code] = {
            str(layer): {**word_retrieval(eng[layer][0], xx[layer][0], gold),
                         **sentence_retrieval(eng[layer][1], xx[layer][1])}
            for layer in cfg.layers}
    return result


def _encoded(model, tokenizer, sentences: list[str], cfg: ProbeConfig, cache: dict | None):
    """{layer: (per sentence the [words, H] word vectors (None for a word cut off), [n, H] sentence
    vectors)}; English sentences come from ``cache`` when seen for another language."""
    import torch

    missing = [s for s in dict.fromkeys(sentences) if cache is None or s not in cache]
    fresh: dict[str, dict[int, tuple]] = {}
    with torch.no_grad():
        for start in range(0, len(missing), cfg.batch_size):
            chunk = missing[start:start + cfg.batch_size]
            words = [s.split() for s in chunk]
            enc = tokenizer(words, is_split_into_words=True, truncation=True, max_length=cfg.max_seq_len,
                            padding=True, return_tensors="pt")
            hidden = model(**{k: v for k, v in enc.items()}, output_hidden_states=True).hidden_states
            mask = enc["attention_mask"].unsqueeze(-1).float()
            for row, sentence in enumerate(chunk):
                ids = enc.word_ids(row)
                per_layer = {}
                for layer in cfg.layers:
                    states = hidden[layer][row]
                    pooled = (states * mask[row]).sum(0) / mask[row].sum()
                    vectors = []
                    for w in range(len(words[row])):
                        pieces = [k for k, wid in enumerate(ids) if wid == w]
                        vectors.append(states[pieces].mean(0) if pieces else None)
                    per_layer[layer] = (vectors, pooled)
                fresh[sentence] = per_layer
    if cache is not None:
        cache.update(fresh)
        fresh = cache
    return {layer: ([fresh[s][layer][0] for s in sentences], torch.stack([fresh[s][layer][1] for s in sentences]))
            for layer in cfg.layers}


def word_retrieval(eng_words, xx_words, gold) -> dict[str, float]:
    """P@1 (percent) of finding each gold English word's aligned xx word among every xx word of
    the split (cosine); ``words``: the number of queries."""
    import torch

    candidates, where = [], {}
    for s, vectors in enumerate(xx_words):
        for w, vector in enumerate(vectors):
            if vector is not None:
                where[(s, w)] = len(candidates)
                candidates.append(vector)
    queries, targets = [], []
    for s, links in enumerate(gold[:len(eng_words)]):
        for i, j in links:
            if i < len(eng_words[s]) and eng_words[s][i] is not None and (s, j) in where:
                queries.append(eng_words[s][i])
                targets.append(where[(s, j)])
    if not queries:
        return {"word_p@1": float("nan"), "words": 0}
    normalise = torch.nn.functional.normalize
    similarity = normalise(torch.stack(queries), dim=-1) @ normalise(torch.stack(candidates), dim=-1).T
    hits = (similarity.argmax(-1) == torch.tensor(targets)).float()
    return {"word_p@1": round(100 * hits.mean().item(), 4), "words": len(queries)}


def sentence_retrieval(eng, xx) -> dict[str, float]:
    """Tatoeba's accuracy (percent), English → xx: sentence i's nearest xx sentence is i."""
    import torch

    normalise = torch.nn.functional.normalize
    nearest = (normalise(eng, dim=-1) @ normalise(xx, dim=-1).T).argmax(-1)
    hits = (nearest == torch.arange(len(eng))).float()
    return {"sentence_accuracy": round(100 * hits.mean().item(), 4), "sentences": len(eng)}


# --- report --------------------------------------------------------------------------------------
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}


def interval(values: list[float]) -> dict[str, float]:
    """Mean and 95 % t interval over ``values`` (one value: the interval is the point)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return {"mean": round(mean, 4), "low": round(mean, 4), "high": round(mean, 4)}
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = T95.get(n - 1, 1.96) * sd / math.sqrt(n)
    return {"mean": round(mean, 4), "low": round(mean - half, 4), "high": round(mean + half, 4)}


def read_probes(work: Path) -> dict[str, dict[int, dict]]:
    """{arm: {seed: probe.json}} of every finished probe (``probe/base/seed<k>``,
    ``probe/<arm>/<set>/seed<k>``)."""
    found: dict[str, dict[int, dict]] = {}
    for path in sorted(Path(work).glob("probe/**/seed*/probe.json")):
        folder = path.parent
        if (read_manifest(folder) or {}).get("stage") != "probe":
            continue
        parts = folder.relative_to(Path(work) / "probe").parts
        found.setdefault(parts[0], {})[int(folder.name.removeprefix("seed"))] = json.loads(path.read_text("utf-8"))
    return found


def per_seed(probe: dict, metric: str, layer: int, group: str) -> float:
    """The mean over the group's languages ("own" or "held-out") of one probe's score."""
    codes = probe["own"] if group == "own" else probe["held_out"]
    return sum(probe["languages"][code][str(layer)][metric] for code in codes) / len(codes)


def instrument_rows(probes: dict[str, dict[int, dict]], layers: list[int]) -> list[dict[str, Any]]:
    """The rows of report/instrument.json (see the module docstring): every arm × metric × layer ×
    language group."""
    rows = []
    base = probes.get(BASE_ARM, {})
    mlm = probes.get("mlm", {})
    for arm, runs in probes.items():
        seeds = sorted(runs)
        for metric in METRICS:
            for layer in layers:
                for group in ("own", "held-out"):
                    values = [per_seed(runs[s], metric, layer, group) for s in seeds]
                    row = {"arm": arm, "metric": metric, "layer": layer, "languages": group, **interval(values),
                           "seeds": seeds}
                    if base:
                        reference = per_seed(next(iter(base.values())), metric, layer, group)
                        row["diff_vs_base"] = interval([v - reference for v in values])
                    if mlm and arm != BASE_ARM:
                        paired = [s for s in seeds if s in mlm]
                        row["diff_vs_mlm"] = (interval([per_seed(runs[s], metric, layer, group)
                                                        - per_seed(mlm[s], metric, layer, group) for s in paired])
                                              if paired else None)
                    else:
                        row["diff_vs_mlm"] = None
                    rows.append(row)
    return rows


def frozen_check(probes: dict[str, dict[int, dict]], layer: int) -> tuple[bool, float]:
    """Whether every model's scores at a frozen layer are identical (the evaluator sees the same
    weights there whatever the arm); the largest spread over models of any language's score."""
    spread = 0.0
    codes = None
    for runs in probes.values():
        for probe in runs.values():
            codes = list(probe["languages"])
            break
    for code in codes or []:
        for metric in METRICS:
            values = [probe["languages"][code][str(layer)][metric] for runs in probes.values()
                      for probe in runs.values()]
            spread = max(spread, max(values) - min(values))
    return spread == 0.0, spread


def criterion(rows: list[dict[str, Any]], word_layer: int, min_gain: float) -> list[str]:
    """The issue's criterion, one line per tested arm: own languages, word P@1 at the study's layer,
    each of tlm and weam beats base and mlm by ≥ min_gain with the 95 % interval above 0."""
    lines = []
    for arm in ("tlm", "weam"):
        row = next((r for r in rows if r["arm"] == arm and r["metric"] == "word_p@1" and r["layer"] == word_layer
                    and r["languages"] == "own"), None)
        if row is None:
            lines.append(f"- {arm}: not run")
            continue
        verdicts = []
        for ref in ("base", "mlm"):
            diff = row.get(f"diff_vs_{ref}")
            if diff is None:
                verdicts.append(f"vs {ref}: no reference")
                continue
            ok = diff["mean"] >= min_gain and diff["low"] > 0
            verdicts.append(f"vs {ref} {diff['mean']:+.2f} [{diff['low']:+.2f}, {diff['high']:+.2f}] "
                            f"{'met' if ok else 'NOT met'}")
        lines.append(f"- {arm}: " + "; ".join(verdicts))
    return lines


def base_loss_curve(work: Path, points: int = 12) -> list[tuple[int, float]]:
    """The base model's warm-up loss (train_log.jsonl) at about ``points`` evenly spaced steps."""
    records = base_loss_records(work)
    if not records:
        return []
    every = max(1, len(records) // points)
    chosen = records[every - 1::every]
    if chosen[-1] is not records[-1]:
        chosen.append(records[-1])
    return [(r["step"], r["loss"]) for r in chosen]


def base_loss_records(work: Path) -> list[dict[str, Any]]:
    """Every step the base model's MLM warm-up logged (``base/train_log.jsonl``)."""
    path = Path(work) / "base" / "train_log.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def base_vocab_size(work: Path) -> int | None:
    """The base model's vocabulary size (its config.json), None when it is not there."""
    path = layout.base_model_dir(Path(work)) / "config.json"
    return json.loads(path.read_text(encoding="utf-8")).get("vocab_size") if path.is_file() else None


def moving_mean(values: list[float], window: int) -> list[float]:
    """The mean of the last ``window`` values at every point (fewer at the start)."""
    out, total = [], 0.0
    for i, value in enumerate(values):
        total += value
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def warmup_loss_figure(work: Path, path: Path, vocab_size: int | None, window: int = 20) -> Path | None:
    """``path`` (PNG): the base model's warm-up loss per step, its moving mean over ``window`` steps,
    and ln(vocabulary), the loss of uniform guessing; None when the base logged no steps."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    records = base_loss_records(work)
    if not records:
        return None
    steps = [r["step"] for r in records]
    losses = [r["loss"] for r in records]
    figure = Figure(figsize=(6.0, 3.4))
    axes = figure.add_subplot()
    axes.plot(steps, losses, lw=0.8, alpha=0.45, label="loss per step")
    axes.plot(steps, moving_mean(losses, window), lw=1.8, label=f"mean of the last {window} steps")
    if vocab_size:
        axes.axhline(math.log(vocab_size), color="grey", ls="--", lw=1,
                     label=f"uniform guess, ln {vocab_size:,} = {math.log(vocab_size):.2f}")
    axes.set_xlabel("step")
    axes.set_ylabel("MLM loss (nats)")
    axes.set_title("Base model: MLM warm-up")
    axes.legend(fontsize="small")
    FigureCanvasAgg(figure)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    return path


def _fmt(ci: dict | None) -> str:
    if not ci:
        return "—"
    return f"{ci['mean']:+.2f} [{ci['low']:+.2f}, {ci['high']:+.2f}]"


def render_table(rows: list[dict[str, Any]]) -> str:
    head = ("| arm | metric | layer | languages | mean [95 % CI] | − base | − mlm | seeds |\n"
            "|---|---|---|---|---|---|---|---|\n")
    lines = [f"| {r['arm']} | {r['metric']} | {r['layer']} | {r['languages']} | "
             f"{r['mean']:.2f} [{r['low']:.2f}, {r['high']:.2f}] | {_fmt(r.get('diff_vs_base'))} | "
             f"{_fmt(r.get('diff_vs_mlm'))} | {len(r['seeds'])} |" for r in rows]
    return head + "\n".join(lines) + "\n"


def write_instrument_report(study, work: Path, out_dir: Path) -> Path:
    """report/instrument.md and report/instrument.json from the probes' files."""
    instrument = study.instrument
    probes = read_probes(work)
    order = [BASE_ARM, *instrument.arms]
    probes = {arm: probes[arm] for arm in order if arm in probes}
    rows = instrument_rows(probes, instrument.layers)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "instrument.json", rows)
    lines = [f"# Instrument check: {study.name}", "",
             f"Base `{study.base.model}`; every arm trains on {', '.join(instrument.languages)} (paired with "
             f"{study.pivot}) for {study.token_budget:,} {study.budget_unit} tokens, seeds {study.seeds}; held-out "
             f"targets {', '.join(study.held_out)}. Scores in percent; mean over the group's languages per seed, "
             "then mean and 95 % t interval over seeds; − base: per seed minus the base model; − mlm: paired by seed.",
             "", f"## Criterion (own languages, word P@1 at layer {instrument.word_layer}, gain ≥ "
             f"{instrument.min_gain} points with the interval above 0)", "",
             *criterion(rows, instrument.word_layer, instrument.min_gain), ""]
    frozen = int((study.pretrain.get("optim") or {}).get("freeze_layers") or 0)
    if frozen and frozen in instrument.layers:
        same, spread = frozen_check(probes, frozen)
        lines += [f"## Evaluator check: layer {frozen} is frozen in every arm", "",
                  f"{'passed' if same else 'FAILED'}: the largest spread of any score at layer {frozen} over all "
                  f"models is {spread:.4f} points (identical weights must give identical scores).", ""]
    curve = base_loss_curve(work)
    if curve:
        vocab = base_vocab_size(work)
        figure = warmup_loss_figure(work, out / "base_warmup_loss.png", vocab)
        ended = (read_manifest(Path(work) / "base") or {}).get("counts", {}).get("stopped")
        lines += ["## Base model MLM warm-up", "",
                  f"Ended by: {ended or 'unknown'}; last loss {curve[-1][1]:.4f}"
                  + (f" (uniform guessing over the {vocab:,}-piece vocabulary: {math.log(vocab):.4f})" if vocab else "")
                  + ".", "", *([f"![warm-up loss]({figure.name})", ""] if figure else []),
                  "| step | loss |", "|---|---|", *[f"| {step} | {loss:.4f} |" for step, loss in curve], ""]
    lines += ["## Table", "", render_table(rows)]
    path = out / "instrument.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
