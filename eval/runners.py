"""One runner per task kind (:mod:`weam.eval.kinds` names each kind's): build the model head, fine-tune on English, predict a language.

A runner's ``predict(lang)`` returns ``(predictions, metrics)``: predictions in the leaderboard
layout's shape (see the kind's ``write_predictions`` in :mod:`weam.eval.kinds`), metrics None when the split is unlabeled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from weam.eval import data, formats, metrics
from weam.eval.config import EvalConfig
from weam.eval.tasks import TaskSpec
from weam.eval.training import fine_tune, resolve_device, settings_for
from weam.core.errors import InputError, WeamError


class Runner:
    needs_training = True

    def __init__(self, spec: TaskSpec, config: EvalConfig, model_path: str | Path, progress=None):
        import dataclasses

        from transformers import AutoConfig, AutoTokenizer

        self.spec, self.config, self.model_path = spec, config, str(model_path)
        self.settings = settings_for(spec, config)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.model_path)
            positions = getattr(AutoConfig.from_pretrained(self.model_path), "max_position_embeddings", None)
        except (OSError, ValueError) as exc:
            raise WeamError(f"cannot load model {self.model_path!r} (an HF directory or hub id): {exc}") from None
        if positions and positions < self.settings.max_seq_len:
            self.settings = dataclasses.replace(self.settings, max_seq_len=positions)
        self.device = resolve_device(config.device)
        self.progress = progress or (lambda message: None)
        self.model = None
        self.split = "test" if config.split == "labelled" else config.split
        """The target-language split predicted (weam.eval.api sets the one resolved for the task)."""

    head = "AutoModel"
    """The transformers auto class of the task's model (``from_pretrained`` adds the task head)."""
    labelled_head = False
    """Whether the head has one output per label of the task (``num_labels``)."""

    def build_model(self, seed: int):
        import torch

        torch.manual_seed(seed)  # seeds the new head's initialisation
        kwargs = {"num_labels": len(self.spec.labels)} if self.labelled_head else {}
        return self.wrap(load_pretrained(self.head, self.model_path, **kwargs))

    def wrap(self, model):
        """The model as fine-tuned (a dual encoder wraps the encoder)."""
        return model

    # --- shared helpers -----------------------------------------------------------------------
    def records(self, split: str, lang: str) -> list[dict[str, Any]]:
        """English ``train``/``dev`` (lang en), else the target-language ``split``."""
        if split in ("train", "dev") and lang == "en" and split in self.spec.files:
            records = data.load_english(self.config, self.spec, split)
        else:
            records = data.load_split(self.config, self.spec, split, lang)
        if split == "train" and self.settings.max_train_examples:
            records = records[: self.settings.max_train_examples]
        return records

    def batches(self, items: list[Any], size: int | None = None):
        size = size or self.config.eval_batch_size
        for start in range(0, len(items), size):
            yield items[start : start + size]

    def to_device(self, batch: dict[str, Any]) -> dict[str, Any]:
        return {k: v.to(self.device) for k, v in batch.items()}

    def train(self, seed: int) -> dict[str, float]:
        self.model = self.build_model(seed).to(self.device)
        features = self.train_features(self.records("train", "en"))
        return fine_tune(self.model, features, self.loss, self.settings, seed, dev_score=self.dev_score,
                         progress=self.progress)

    def dev_score(self) -> float:
        _, scores = self.predict_records(self.records("dev", "en"), "en")
        if scores is None:
            raise WeamError(f"{self.spec.name}: English dev has no gold labels; model selection needs them")
        return self.spec.score_of(scores)

    def predict(self, lang: str) -> tuple[Any, dict[str, float] | None]:
        return self.predict_records(self.records(self.split, lang), lang)


class ClassificationRunner(Runner):
    head = "AutoModelForSequenceClassification"
    labelled_head = True

    def encode(self, records):
        return self.tokenizer([r["sentence1"] for r in records], [r["sentence2"] for r in records], truncation=True,
                              max_length=self.settings.max_seq_len, padding=True, return_tensors="pt")

    def train_features(self, records):
        return [r for r in records if r["label"] is not None]

    def loss(self, model, records):
        import torch

        labels = torch.tensor([self.spec.labels.index(r["label"]) for r in records], device=self.device)
        return model(**self.to_device(self.encode(records)), labels=labels).loss

    def predict_records(self, records, lang):
        import torch

        predicted = []
        with torch.no_grad():
            for chunk in self.batches(records):
                logits = self.model(**self.to_device(self.encode(chunk))).logits
                predicted += [self.spec.labels[i] for i in logits.argmax(-1).tolist()]
        gold = [r["label"] for r in records]
        scores = metrics.accuracy(gold, predicted) if records and None not in gold else None
        return predicted, scores


class MultipleChoiceRunner(ClassificationRunner):
    """XCOPA as XTREME-R trains it (run_xcopa.py): "<premise> What was the <cause|effect>?" paired with
    each choice; first fine-tuned on SIQA when its files are present, then on English COPA."""

    head = "AutoModelForMultipleChoice"
    labelled_head = False

    @staticmethod
    def choices(record) -> tuple[str, list[str]]:
        if "choices" in record:
            return record["first"], record["choices"]
        return f"{record['premise']} What was the {record['question']}?", [record["choice1"], record["choice2"]]

    def encode(self, records):
        pairs = [self.choices(r) for r in records]
        width = len(pairs[0][1])
        enc = self.tokenizer([first for first, options in pairs for _ in options],
                             [option for _, options in pairs for option in options], truncation=True,
                             max_length=self.settings.max_seq_len, padding=True, return_tensors="pt")
        return {k: v.view(len(records), width, -1) for k, v in enc.items()}

    def loss(self, model, records):
        import torch

        labels = torch.tensor([int(r["label"]) for r in records], device=self.device)
        return model(**self.to_device(self.encode(records)), labels=labels).loss

    def train(self, seed: int) -> dict[str, float]:
        siqa = data.task_path(self.config, self.spec, "siqa_train") if self.config.data_dir else None
        if siqa is None or not siqa.is_file():
            return super().train(seed)
        self.model = self.build_model(seed).to(self.device)
        siqa_dev = data.task_path(self.config, self.spec, "siqa_dev")
        dev = formats.read_siqa(siqa_dev) if siqa_dev.is_file() else None
        records = formats.read_siqa(siqa)[: self.settings.max_train_examples or None]
        # run_xcopa.py (HF Trainer) keeps the final model of each stage: no dev selection.
        siqa_info = fine_tune(self.model, records, self.loss, self.settings, seed,
                              dev_score=(lambda: self.predict_records(dev, "en")[1]["accuracy"]) if dev else None,
                              progress=self.progress)
        copa = self.train_features(self.records("train", "en"))
        info = fine_tune(self.model, copa, self.loss, self.settings, seed, dev_score=self.dev_score,
                         progress=self.progress)
        return {**info, "siqa_steps": siqa_info["steps"], "siqa_best_dev": siqa_info["best_dev"]}

    def predict_records(self, records, lang):
        import torch

        predicted = []
        with torch.no_grad():
            for chunk in self.batches(records):
                predicted += self.model(**self.to_device(self.encode(chunk))).logits.argmax(-1).tolist()
        gold = [r["label"] for r in records]
        return predicted, (metrics.accuracy(gold, predicted) if records and None not in gold else None)


class TaggingRunner(Runner):
    head = "AutoModelForTokenClassification"
    labelled_head = True

    def chunks(self, tokens: list[str]) -> list[tuple[int, int]]:
        """Word ranges whose sub-words fit max_seq_len (XTREME splits long sentences the same way)."""
        budget = self.settings.max_seq_len - 2
        lengths = [max(1, len(self.tokenizer.tokenize(t))) for t in tokens]
        ranges, start, used = [], 0, 0
        for i, n in enumerate(lengths):
            if used + n > budget and i > start:
                ranges.append((start, i))
                start, used = i, 0
            used += n
        ranges.append((start, len(tokens)))
        return ranges

    def train_features(self, records):
        features = []
        for r in records:
            if r["tags"] is not None:
                features += [{"tokens": r["tokens"][a:b], "tags": r["tags"][a:b]} for a, b in self.chunks(r["tokens"])]
        return features

    def encode(self, pieces):
        return self.tokenizer([p["tokens"] for p in pieces], is_split_into_words=True, truncation=True,
                              max_length=self.settings.max_seq_len, padding=True, return_tensors="pt")

    def loss(self, model, pieces):
        import torch

        enc = self.encode(pieces)
        labels = torch.full(enc["input_ids"].shape, -100, dtype=torch.long)
        for row, piece in enumerate(pieces):
            previous = None
            for position, word in enumerate(enc.word_ids(row)):
                if word is not None and word != previous:
                    labels[row, position] = self.spec.labels.index(piece["tags"][word])
                previous = word
        return model(**self.to_device(dict(enc)), labels=labels.to(self.device)).loss

    def predict_records(self, records, lang):
        import torch

        pieces = [(i, a, b) for i, r in enumerate(records) for a, b in self.chunks(r["tokens"])]
        predicted: list[list[str]] = [[] for _ in records]
        with torch.no_grad():
            for chunk in self.batches(pieces):
                batch = [{"tokens": records[i]["tokens"][a:b]} for i, a, b in chunk]
                enc = self.encode(batch)
                best = self.model(**self.to_device(dict(enc))).logits.argmax(-1).tolist()
                for row, (i, a, b) in enumerate(chunk):
                    tags = [self.spec.labels[-1]] * (b - a)
                    seen = set()
                    for position, word in enumerate(enc.word_ids(row)):
                        if word is not None and word not in seen:
                            tags[word] = self.spec.labels[best[row][position]]
                            seen.add(word)
                    predicted[i] += tags
        gold = [r["tags"] for r in records]
        scores = metrics.tagging_scores(gold, predicted) if records and None not in gold else None
        if scores is not None:
            scores = {m: scores[m] for m in self.spec.metrics}
        return predicted, scores


class QARunner(Runner):
    """SQuAD-style extractive QA as run_squad.py: questions cut to 64 tokens (--max_query_length), context
    windows starting every 128 tokens (--doc_stride 128: the step between window starts, i.e. an overlap
    of max_seq_len - 128 - question - 3 tokens), answers of at most 30 tokens from the 20 best starts/ends."""

    max_answer_tokens = 30
    doc_stride = 128
    max_query_tokens = 64

    head = "AutoModelForQuestionAnswering"

    def question(self, text: str) -> str:
        """The question cut after its 64th token (run_squad.py truncates the query the same way)."""
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        offsets = enc["offset_mapping"]
        return text if len(offsets) <= self.max_query_tokens else text[: offsets[self.max_query_tokens - 1][1]]

    def windows(self, records) -> list[dict[str, Any]]:
        """One feature per context window: ids, offsets, sequence ids and the record's index."""
        max_len = self.settings.max_seq_len
        features = []
        for index, record in enumerate(records):
            question = self.question(record["question"])
            q_len = len(self.tokenizer(question, add_special_tokens=False)["input_ids"])
            special = self.tokenizer.num_special_tokens_to_add(pair=True)
            # HF's stride is the overlap between windows; XTREME's doc_stride is the step between starts.
            overlap = max(0, max_len - self.doc_stride - q_len - special)
            capacity = max_len - q_len - special
            enc = self.tokenizer(question, record["context"], truncation="only_second", max_length=max_len,
                                 stride=min(overlap, max(0, capacity - 1)), return_overflowing_tokens=True,
                                 return_offsets_mapping=True)
            for row in range(len(enc["input_ids"])):
                features.append({"record": index, "input_ids": enc["input_ids"][row],
                                 "token_type_ids": enc["token_type_ids"][row] if "token_type_ids" in enc else None,
                                 "offsets": enc["offset_mapping"][row], "sequence_ids": enc.sequence_ids(row)})
        return features

    def collate(self, features) -> dict[str, Any]:
        import torch

        width = max(len(f["input_ids"]) for f in features)
        pad = self.tokenizer.pad_token_id or 0
        batch = {"input_ids": torch.tensor([f["input_ids"] + [pad] * (width - len(f["input_ids"])) for f in features]),
                 "attention_mask": torch.tensor([[1] * len(f["input_ids"]) + [0] * (width - len(f["input_ids"]))
                                                 for f in features])}
        if features[0]["token_type_ids"] is not None:
            batch["token_type_ids"] = torch.tensor([f["token_type_ids"] + [0] * (width - len(f["token_type_ids"]))
                                                    for f in features])
        return self.to_device(batch)

    def train_features(self, records):
        return [r for r in records if r["answers"] and r["answers"][0].get("text")]

    def loss(self, model, records):
        import torch

        features = self.windows(records)
        starts, ends = [], []
        for feature in features:
            answer = records[feature["record"]]["answers"][0]
            char_start = int(answer["answer_start"])
            char_end = char_start + len(answer["text"])
            offsets = feature["offsets"]
            start = end = 0  # CLS when the answer is outside this window
            context = [i for i, s in enumerate(feature["sequence_ids"]) if s == 1]
            if context and offsets[context[0]][0] <= char_start and offsets[context[-1]][1] >= char_end:
                start = next(i for i in context if offsets[i][1] > char_start)
                end = next(i for i in reversed(context) if offsets[i][0] < char_end)
            starts.append(start)
            ends.append(end)
        return model(**self.collate(features), start_positions=torch.tensor(starts, device=self.device),
                     end_positions=torch.tensor(ends, device=self.device)).loss

    def predict_records(self, records, lang):
        import torch

        best: dict[str, tuple[float, str]] = {}
        features = self.windows(records)
        with torch.no_grad():
            for chunk in self.batches(features, max(1, self.config.eval_batch_size // 4)):
                out = self.model(**self.collate(chunk))
                for row, feature in enumerate(chunk):
                    record = records[feature["record"]]
                    span = self.best_span(out.start_logits[row].tolist(), out.end_logits[row].tolist(),
                                          feature["sequence_ids"], feature["offsets"], record["context"])
                    if span and (record["id"] not in best or span[0] > best[record["id"]][0]):
                        best[record["id"]] = span
        predicted = {r["id"]: best.get(r["id"], (0.0, ""))[1] for r in records}
        gold = {r["id"]: [a["text"] for a in r["answers"]] for r in records}
        labelled = records and all(any(gold[q]) for q in gold)
        scores = metrics.qa_scores(gold, predicted, lang, mlqa=self.spec.answer_normalisation == "mlqa") if labelled else None
        return predicted, scores

    def best_span(self, start_logits, end_logits, sequence_ids, offsets, context, top: int = 20):
        candidates = [i for i, s in enumerate(sequence_ids) if s == 1]
        if not candidates:
            return None
        starts = sorted(candidates, key=lambda i: start_logits[i], reverse=True)[:top]
        ends = sorted(candidates, key=lambda i: end_logits[i], reverse=True)[:top]
        spans = [(start_logits[s] + end_logits[e], s, e) for s in starts for e in ends
                 if s <= e < s + self.max_answer_tokens]
        if not spans:
            return None
        score, s, e = max(spans)
        return score, context[offsets[s][0] : offsets[e][1]]


def dual_encoder(encoder):
    """XTREME's BertForRetrieval around any encoder: one tower shared by both sides and a learnable
    logit scale initialised at 100 (third_party/bert.py)."""
    import torch

    class DualEncoder(torch.nn.Module):
        def __init__(self, encoder):
            super().__init__()
            self.encoder = encoder
            self.config = encoder.config
            self.logit_scale = torch.nn.Parameter(torch.full((1,), 100.0))

    return DualEncoder(encoder)


class DualEncoderRunner(Runner):
    """Mewsli-X and LAReQA as run_retrieval_el.py / run_retrieval_qa.py: L2-normalised pooler outputs
    (``dual_encoder_pooling``), similarity × the learnable scale, in-batch negatives."""

    query_len = answer_len = 64
    """Token limits of the two towers (LAReQA: --max_query_length 96, --max_answer_length 256)."""

    def wrap(self, model):
        return dual_encoder(model)

    def embed(self, texts, pairs=None, grad: bool = False, max_length: int | None = None):
        import torch

        chunks = []
        context = torch.enable_grad() if grad else torch.no_grad()
        max_length = min(max_length or self.settings.max_seq_len, self.settings.max_seq_len)
        with context:
            size = len(texts) if grad else self.config.eval_batch_size
            for start in range(0, len(texts), size):
                second = pairs[start : start + size] if pairs is not None else None
                enc = self.to_device(dict(self.tokenizer(texts[start : start + size], second, truncation=True,
                                                         padding=True, max_length=max_length,
                                                         return_tensors="pt")))
                chunks.append(torch.nn.functional.normalize(self.pool_vectors(self.model.encoder(**enc), enc), dim=-1))
        return torch.cat(chunks) if chunks else torch.zeros(0)

    def pool_vectors(self, outputs, enc):
        pooling = self.config.dual_encoder_pooling
        if pooling == "pooler":
            if getattr(outputs, "pooler_output", None) is None:
                raise WeamError(f"model {self.model_path} has no pooler output (XTREME's dual encoders use it); "
                                f"set dual_encoder_pooling to cls or mean")
            return outputs.pooler_output
        hidden = outputs.last_hidden_state
        if pooling == "cls":
            return hidden[:, 0]
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1)

    def loss(self, model, pairs):
        import torch

        queries = self.embed([p["query"] for p in pairs], grad=True, max_length=self.query_len)
        targets = self.embed([p["target"] for p in pairs], [p.get("target_context") for p in pairs]
                             if any(p.get("target_context") for p in pairs) else None, grad=True,
                             max_length=self.answer_len)
        logits = queries @ targets.T * model.logit_scale
        return torch.nn.functional.cross_entropy(logits, torch.arange(len(pairs), device=logits.device))

    def rank(self, query_vectors, candidate_vectors, candidate_ids, k: int = 20) -> list[list[str]]:
        scores = query_vectors @ candidate_vectors.T
        top = scores.topk(min(k, len(candidate_ids)), dim=-1).indices.tolist()
        return [[candidate_ids[j] for j in row] for row in top]


class MewsliXRunner(DualEncoderRunner):
    """Mention → entity retrieval over the candidate set; both towers --max_seq_length 64."""

    def pairs(self, key: str):
        path = formats.require_file(data.task_path(self.config, self.spec, key), f"mewslix {key} pairs")
        return [{"query": p["query"], "target": p["entity_text"], "entity_id": p["entity_id"]}
                for p in formats.read_mewslix_pairs(path)]

    def train(self, seed: int):
        self.model = self.build_model(seed).to(self.device)
        features = self.pairs("train")[: self.settings.max_train_examples or None]
        return fine_tune(self.model, features, self.loss, self.settings, seed, dev_score=self.dev_score,
                         progress=self.progress)

    def dev_score(self) -> float:
        pairs = self.pairs("dev")
        entities = {p["entity_id"]: p["target"] for p in pairs}
        ids = list(entities)
        ranked = self.rank(self.embed([p["query"] for p in pairs]), self.embed([entities[i] for i in ids]), ids)
        gold = {str(i): [p["entity_id"]] for i, p in enumerate(pairs)}
        return metrics.map_at_k(gold, {str(i): r for i, r in enumerate(ranked)})["map@20"]

    def candidates(self):
        if not hasattr(self, "_candidates"):
            path = formats.require_file(data.task_path(self.config, self.spec, "candidates"), "Mewsli-X candidate set")
            entities = formats.read_mewslix_entities(path)
            self._candidates = ([e["entity_id"] for e in entities], self.embed([e["text"] for e in entities]))
        return self._candidates

    def mentions(self, lang: str) -> list[dict[str, Any]]:
        source = data.hf_source(self.config, self.spec, self.split)
        if source is not None:
            rows = data._load_hf(self.config, source, self.spec, self.split, lang)
            return [m for row in rows for m in formats.mentions_of(row, source, row["line"])]
        path = formats.require_file(data.split_path(self.config, self.spec, self.split, lang),
                                    f"Mewsli-X {self.split} mentions for {lang}")
        return formats.read_mewslix_mentions(path)

    def predict(self, lang):
        from weam.eval.tasks import unlabelled

        mentions = self.mentions(lang)
        ids, vectors = self.candidates()
        ranked = self.rank(self.embed([m["query"] for m in mentions]), vectors, ids)
        predicted = {m["example_id"]: r for m, r in zip(mentions, ranked)}
        hf = data.hf_source(self.config, self.spec, self.split) is not None
        if unlabelled(self.spec, self.split, [lang], hf=hf):
            return predicted, None  # test entity ids are blanked by the download
        labels_path = data.task_path(self.config, self.spec, f"{self.split}_labels", lang) if not hf else None
        if labels_path is not None and labels_path.is_file():
            gold = {k: v for k, v in formats.read_id_lists(labels_path).items() if v and v[0]}
        else:
            gold = {m["example_id"]: [m["entity_id"]] for m in mentions if m["entity_id"]}
        return predicted, (metrics.map_at_k(gold, predicted) if gold else None)


def _breaks(context: str, sentence_breaks: list[list[int]] | None) -> list[list[int]]:
    """XQuAD-R's sentence_breaks; SQuAD has none, so split after . ! ? and their CJK forms."""
    import re

    if sentence_breaks:
        return sentence_breaks
    ends = [m.end() for m in re.finditer(r"[.!?。！？](\s+|$)", context)]
    bounds = [0] + ends + ([len(context)] if not ends or ends[-1] < len(context) else [])
    return [[a, b] for a, b in zip(bounds, bounds[1:]) if b > a]


def _sentence_of(context: str, start: int, breaks: list[list[int]] | None) -> tuple[int, int]:
    """The [start, end) of the sentence holding character ``start``."""
    return next(((a, b) for a, b in _breaks(context, breaks) if a <= start < b), (0, len(context)))


class LAReQARunner(DualEncoderRunner):
    """Question → answer sentence (with its paragraph) over the pool of all XQuAD-R languages."""

    query_len, answer_len = 96, 256  # train_lareqa.sh --max_query_length 96 --max_answer_length 256

    def train_features(self, records):
        features = []
        for r in records:
            if r["answers"] and r["answers"][0].get("text"):
                a, b = _sentence_of(r["context"], int(r["answers"][0]["answer_start"]), r.get("sentence_breaks"))
                features.append({"query": r["question"], "target": r["context"][a:b].strip(),
                                 "target_context": r["context"]})
        return features

    def retrieve(self, questions, candidates) -> dict[str, list[str]]:
        cand_ids = [c["uid"] for c in candidates]
        vectors = self.embed([c["sentence"] for c in candidates], [c["context"] for c in candidates],
                             max_length=self.answer_len)
        ranked = self.rank(self.embed([q["question"] for q in questions], max_length=self.query_len), vectors,
                           cand_ids)
        return {q["uid"]: r for q, r in zip(questions, ranked)}

    def dev_score(self) -> float:
        questions, candidates = self.pool({"en": self.records("dev", "en")})
        gold = self.gold(questions, candidates)
        return metrics.map_at_k(gold, self.retrieve(questions, candidates))["map@20"]

    @staticmethod
    def pool(per_lang: dict[str, list[dict[str, Any]]]):
        """Questions and the multilingual candidate pool (sentences with their paragraph, as utils_lareqa)."""
        questions, candidates, seen = [], [], {}
        for lang, records in per_lang.items():
            for r in records:
                breaks = _breaks(r["context"], r.get("sentence_breaks"))
                key = (lang, r["context"])
                if key not in seen:
                    seen[key] = len(seen)
                    for pos, (a, b) in enumerate(breaks):
                        candidates.append({"uid": f"{lang}_{seen[key]}_{pos}", "sentence": r["context"][a:b],
                                           "context": r["context"], "xling_id": None, "lang": lang,
                                           "span": (a, b)})
                answer = r["answers"][0] if r["answers"] else {"answer_start": -1}
                questions.append({"uid": f"{r['id']}_{lang}", "xling_id": r["id"], "question": r["question"],
                                  "lang": lang, "context_key": key, "answer_start": int(answer["answer_start"])})
        by_context = {}
        for c in candidates:
            by_context.setdefault(c["uid"].rsplit("_", 1)[0], []).append(c)
        for q in questions:
            prefix = f"{q['lang']}_{seen[q['context_key']]}"
            for c in by_context[prefix]:
                if c["span"][0] <= q["answer_start"] < c["span"][1]:
                    c.setdefault("answers", set()).add(q["xling_id"])
        return questions, candidates

    @staticmethod
    def gold(questions, candidates) -> dict[str, list[str]]:
        relevant: dict[str, list[str]] = {}
        for c in candidates:
            for xling_id in c.get("answers", ()):
                relevant.setdefault(xling_id, []).append(c["uid"])
        return {q["uid"]: relevant.get(q["xling_id"], []) for q in questions}

    def predict(self, lang):
        if not hasattr(self, "_ranked"):
            # The candidate pool is every XQuAD-R language present, as run_eval_lareqa.sh ranks them.
            wanted = set(self.config.langs or self.spec.languages)
            per_lang = {}
            for code in self.spec.languages:
                hf = data.hf_source(self.config, self.spec, self.split) is not None
                if code in wanted or hf or data.split_path(self.config, self.spec, self.split, code).is_file():
                    per_lang[code] = self.records(self.split, code)
            questions, candidates = self.pool(per_lang)
            self._questions, self._gold = questions, self.gold(questions, candidates)
            self._ranked = self.retrieve(questions, candidates)
        uids = [q["uid"] for q in self._questions if q["lang"] == lang]
        predicted = {u: self._ranked[u] for u in uids}
        gold = {u: self._gold[u] for u in uids if self._gold[u]}
        return predicted, (metrics.map_at_k(gold, predicted) if gold else None)


def default_layer(num_layers: int) -> int:
    """XTREME's Tatoeba layer as an index into hidden_states: run_tatoeba.sh takes --specific_layer 7 of
    the last 12 layers for 12-layer models (hidden_states[8]) and 13 of 24 for XLM-R large
    (hidden_states[14]); other depths keep mBERT's relative depth, round(2/3 × layers)."""
    return {12: 8, 24: 14}.get(num_layers, max(1, min(num_layers, round(2 * num_layers / 3))))


class TatoebaRunner(Runner):
    """Tatoeba as evaluate_retrieval.py: sentence vectors of one layer (mean over all tokens, special
    tokens included, by default), cosine; the xx sentences are indexed and each English sentence queries
    (en → xx: one prediction per English sentence, the index of the xx sentence it retrieves).

    With the gold at hand (LASER's aligned pair, the HF dataset, or the download layout with a
    labels_dir file) a language scores XTREME's accuracy and :func:`weam.eval.metrics.retrieval_scores`'
    MRR, chance levels and no-shared-word accuracy. Vectors are cached per sentence text for the
    runner's model: the held-out sets of different languages share most of their English side."""

    needs_training = False

    def train(self, seed: int):
        self._vectors: dict[str, Any] = {}  # a new model: no cached vector is valid
        info: dict[str, float] = {}
        if self.config.tatoeba_encoder == "squad":
            from weam.eval.tasks import get_task

            squad = QARunner(get_task(self.spec.kind.encoder_task), self.config, self.model_path, self.progress)
            info = {f"squad_{k}": v for k, v in squad.train(seed).items()}
            self.model = squad.model.base_model.eval()
        else:
            self.model = load_encoder(self.model_path).to(self.device).eval()
        layers = self.model.config.num_hidden_layers
        positions = getattr(self.model.config, "max_position_embeddings", 512)
        self.max_len = min(512, self.config.max_seq_len or 512, positions)
        self.layer = self.config.retrieval_layer if self.config.retrieval_layer is not None else default_layer(layers)
        if not -layers - 1 <= self.layer <= layers:
            raise InputError(self.model_path, f"retrieval_layer {self.layer} outside -{layers + 1}..{layers}")
        return {"steps": 0, "layer": self.layer, **info}

    def vectors(self, sentences: list[str]):
        """:meth:`embed`, each distinct sentence embedded once for this runner's model."""
        import torch

        cache = self.__dict__.setdefault("_vectors", {})
        missing = list(dict.fromkeys(s for s in sentences if s not in cache))
        if missing:
            cache.update(zip(missing, self.embed(missing)))
        return torch.stack([cache[s] for s in sentences]) if sentences else torch.zeros(0)

    def embed(self, sentences: list[str]):
        import torch

        order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
        vectors = [None] * len(sentences)
        with torch.no_grad():
            for chunk in self.batches(order):
                enc = self.tokenizer([sentences[i] for i in chunk], truncation=True, padding=True,
                                     max_length=self.max_len, return_tensors="pt")
                enc = self.to_device(dict(enc))
                hidden = self.model(**enc, output_hidden_states=True).hidden_states[self.layer]
                if self.config.retrieval_pooling == "cls":
                    pooled = hidden[:, 0]
                else:
                    mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                    pooled = (hidden * mask).sum(1) / mask.sum(1)
                pooled = torch.nn.functional.normalize(pooled, dim=-1)
                for row, i in enumerate(chunk):
                    vectors[i] = pooled[row]
        return torch.stack(vectors)

    def pair(self, lang: str) -> tuple[list[str], list[str], list[int] | None]:
        """(xx sentences, English sentences, gold xx index per English sentence or None)."""
        source = data.hf_source(self.config, self.spec, self.split)
        if source is not None:  # aligned pairs: English i translates xx i
            rows = data._load_hf(self.config, source, self.spec, self.split, lang)
            src, eng = [r["sentence"] for r in rows], [r["english"] for r in rows]
            return src, eng, list(range(len(eng)))
        folder = data.split_path(self.config, self.spec, "test", lang).parent
        src, eng, gold, self.layout = formats.read_tatoeba_any(folder, lang, self.spec.file_code(lang))
        if gold is None and self.split == "test":
            gold = self.labels_gold(lang, len(eng), len(src))
        return src, eng, gold

    def labels_gold(self, lang: str, n_eng: int, n_src: int) -> list[int] | None:
        """The download layout's withheld gold from the labels_dir file (``<task>/test-<xx>.tsv``: per
        English line, the xx line it translates), which then names the cell's label source."""
        from weam.eval.tasks import label_file, label_source

        path = label_file(self.config.labels_dir, self.spec, lang)
        if path is None:
            return None
        lines = self.spec.kind.read_leaderboard(path)
        if len(lines) != n_eng:
            raise InputError(path, f"{len(lines)} labels for {n_eng} English sentences of {lang}")
        gold = []
        for number, line in enumerate(lines, start=1):
            if not line.isdigit() or int(line) >= n_src:
                raise InputError(path, f"label {line!r} is not an xx line index 0..{n_src - 1}", number)
            gold.append(int(line))
        self.layout = label_source(self.config.labels_dir, path)
        return gold

    def predict(self, lang):
        src, eng, gold = self.pair(lang)
        similarity = similarity_en_to_xx(self.vectors(src), self.vectors(eng))
        nearest = similarity.argmax(-1).tolist()
        return nearest, (metrics.retrieval_scores(similarity, gold, eng, src) if gold is not None else None)


def similarity_en_to_xx(src_vectors, eng_vectors):
    """Cosine of every English vector (rows) with every xx vector (columns), L2-normalised vectors."""
    return eng_vectors @ src_vectors.T


def load_encoder(model_path):
    """The bare encoder of a checkpoint, for sentence vectors (mean- or first-token-pooled hidden
    states): see :func:`load_pretrained`."""
    return load_pretrained("AutoModel", model_path, "retrieval vectors")


def load_pretrained(auto_class: str, model_path, purpose: str = "fine-tuning", **kwargs):
    """``transformers.<auto_class>.from_pretrained(model_path, **kwargs)`` without its load report. A
    pre-training checkpoint holds an MLM head (unused here) and no pooler, and a task model's head is
    new (seeded by the caller), so transformers' report of exactly those, printed at every load (every
    task and fine-tuning seed), says nothing; any other missing encoder weight is an error, since
    ``purpose`` would start from random weights."""
    import transformers
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        model, info = getattr(transformers, auto_class).from_pretrained(model_path, output_loading_info=True,
                                                                       **kwargs)
    finally:
        hf_logging.set_verbosity(verbosity)
    bare = model.base_model is model
    prefix = f"{model.base_model_prefix}."
    missing = [key for key in info.get("missing_keys", [])
               if (bare or key.startswith(prefix)) and "pooler" not in key.split(".")]
    if missing:
        raise InputError(model_path, f"the encoder lacks {len(missing)} weights, e.g. {sorted(missing)[:3]}: "
                                     f"{purpose} would start from random weights")
    return model


def retrieve_en_to_xx(src_vectors, eng_vectors) -> list[int]:
    """XTREME's direction (utils_retrieve.similarity_search(x=xx, y=en): index x, search y): for each
    English vector the index of its nearest xx vector (cosine on L2-normalised vectors)."""
    return similarity_en_to_xx(src_vectors, eng_vectors).argmax(-1).tolist()
