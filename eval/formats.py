"""Readers for the files XTREME-R's ``scripts/download_data.sh`` produces (and LASER's raw Tatoeba
pairs), the Tatoeba writer the study uses for its own held-out sets, and the leaderboard layout
(``<task>/test-<lang>.<ext>``) of predictions and labels.

Every reader names the file and 1-based line of bad input (:class:`weam.core.errors.InputError`).
Records are plain dicts with the field names of the original formats.
"""

from __future__ import annotations

import contextlib
import csv
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from weam.core.errors import InputError
from weam.core.manifest import atomic_write, atomic_write_json


def require_file(path: Path, what: str) -> Path:
    if not Path(path).is_file():
        raise InputError(path, f"missing file: {what}")
    return Path(path)


def not_utf8(path: Path) -> InputError:
    """The error for a file that does not decode: its first line that is not UTF-8 (the decoder
    reads ahead in blocks, so where it failed is not where the bad byte is)."""
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                return InputError(path, f"not UTF-8 text (byte {line[exc.start:exc.start + 1]!r} at column "
                                        f"{exc.start + 1}); XTREME-R's files are UTF-8", number)
    return InputError(path, "not UTF-8 text")


@contextlib.contextmanager
def _utf8(path: Path) -> Iterator[None]:
    try:
        yield
    except UnicodeDecodeError:
        raise not_utf8(path) from None


def _lines(path: Path) -> Iterable[tuple[int, str]]:
    with _utf8(path), open(path, encoding="utf-8", newline="") as handle:
        for number, line in enumerate(handle, start=1):
            yield number, line.rstrip("\r\n")


def _check_label(path: Path, line: int, label: str, labels: tuple[str, ...]) -> str:
    if labels and label not in labels:
        raise InputError(path, f"label {label!r} is not in the task's label set ({', '.join(labels)})", line)
    return label


def read_pair_tsv(path: Path, labels: tuple[str, ...]) -> list[dict[str, Any]]:
    """XNLI/PAWS-X: ``sentence1<TAB>sentence2[<TAB>label]`` written by csv.writer (test: no label)."""
    records = []
    with _utf8(path), open(path, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t")
        for row in reader:
            line = reader.line_num
            if not row:
                continue
            if len(row) not in (2, 3):
                raise InputError(path, f"expected 2 or 3 tab-separated fields, got {len(row)}", line)
            label = _check_label(path, line, row[2].strip(), labels) if len(row) == 3 else None
            records.append({"sentence1": row[0], "sentence2": row[1], "label": label, "line": line})
    return records


COPA_FIELDS = ("premise", "choice1", "choice2", "question")


def read_jsonl(path: Path) -> Iterable[tuple[int, dict[str, Any]]]:
    for number, line in _lines(path):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(path, f"not valid JSON: {exc.msg}", number) from None
        if not isinstance(record, dict):
            raise InputError(path, "expected a JSON object", number)
        yield number, record


def read_copa(path: Path) -> list[dict[str, Any]]:
    """COPA/XCOPA JSONL: premise, choice1, choice2, question (cause|effect), label (0|1)."""
    records = []
    for number, record in read_jsonl(path):
        missing = [key for key in COPA_FIELDS if key not in record]
        if missing:
            raise InputError(path, f"missing field(s) {', '.join(missing)}", number)
        if record["question"] not in ("cause", "effect"):
            raise InputError(path, f"question must be 'cause' or 'effect', got {record['question']!r}", number)
        label = record.get("label")
        if label is not None and label not in (0, 1):
            raise InputError(path, f"label {label!r} is not in the task's label set (0, 1)", number)
        records.append({**{k: record[k] for k in COPA_FIELDS}, "label": label, "line": number})
    return records


SIQA_ANSWERS = ("answerA", "answerB", "answerC")


def read_siqa(path: Path) -> list[dict[str, Any]]:
    """Social IQa JSONL (XTREME-R's intermediate task for XCOPA): context, question, answerA-C, correct."""
    records = []
    for number, record in read_jsonl(path):
        missing = [key for key in ("context", "question", *SIQA_ANSWERS, "correct") if key not in record]
        if missing:
            raise InputError(path, f"missing field(s) {', '.join(missing)}", number)
        if record["correct"] not in ("A", "B", "C"):
            raise InputError(path, f"correct must be A, B or C, got {record['correct']!r}", number)
        records.append({"first": f"{record['context']} {record['question']}",
                        "choices": [record[key] for key in SIQA_ANSWERS],
                        "label": "ABC".index(record["correct"]), "line": number})
    return records


def read_conll_tsv(path: Path, labels: tuple[str, ...]) -> list[dict[str, Any]]:
    """UD-POS/PAN-X: ``token<TAB>tag`` per line, blank line between sentences (test: token only)."""
    sentences: list[dict[str, Any]] = []
    tokens: list[str] = []
    tags: list[str | None] = []
    start = 1
    for number, line in _lines(path):
        if not line.strip():
            if tokens:
                sentences.append(_sentence(path, start, tokens, tags))
            tokens, tags, start = [], [], number + 1
            continue
        fields = line.split("\t")
        if len(fields) > 2 or not fields[0].strip():
            raise InputError(path, f"expected 'token<TAB>tag' or 'token', got {line!r}", number)
        tokens.append(fields[0].strip())
        tags.append(_check_label(path, number, fields[1].strip(), labels) if len(fields) == 2 else None)
    if tokens:
        sentences.append(_sentence(path, start, tokens, tags))
    return sentences


def _sentence(path: Path, line: int, tokens: list[str], tags: list[str | None]) -> dict[str, Any]:
    labelled = [tag is not None for tag in tags]
    if any(labelled) and not all(labelled):
        raise InputError(path, "sentence mixes tagged and untagged tokens", line)
    return {"tokens": tokens, "tags": tags if all(labelled) else None, "line": line}


def read_squad(path: Path) -> list[dict[str, Any]]:
    """SQuAD v1.1 JSON (XQuAD, MLQA, TyDiQA-GoldP): one record per question."""
    data = _load_json(path)
    articles = data.get("data") if isinstance(data, dict) else data
    if not isinstance(articles, list):
        raise InputError(path, "expected SQuAD JSON with a 'data' list")
    records = []
    for a, article in enumerate(articles):
        for p, paragraph in enumerate(article.get("paragraphs", [])):
            for q, qa in enumerate(paragraph.get("qas", [])):
                where = f"data[{a}].paragraphs[{p}].qas[{q}]"
                for key in ("id", "question", "answers"):
                    if key not in qa:
                        raise InputError(path, f"{where}: missing field {key!r}")
                records.append({"id": str(qa["id"]), "question": qa["question"], "context": paragraph["context"],
                                "answers": qa["answers"], "sentence_breaks": paragraph.get("sentence_breaks")})
    return records


def _load_json(path: Path) -> Any:
    try:
        with _utf8(path):
            return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(path, f"not valid JSON: {exc.msg}", exc.lineno) from None


def mention_text(context: dict[str, Any], mention: dict[str, Any]) -> str:
    """Mewsli-X query string: the mention, then its sentence with the mention in braces
    (as utils_mewslix.preprocess_mention)."""
    text, span = context["text"], mention["mention_span"]
    sentence = next((s for s in context.get("sentence_spans", []) if s["start"] <= span["start"] < s["end"]),
                    {"start": 0, "end": len(text)})
    left = text[sentence["start"] : span["start"]]
    right = text[span["end"] : sentence["end"]]
    query = f"{span['text']}: {left} {{ {span['text']} }} {right}"
    return " ".join(query.split())


def entity_text(entity: dict[str, Any]) -> str:
    spans = entity.get("sentence_spans") or []
    description = entity.get("description", "")
    sentences = [description[s["start"] : s["end"]] for s in spans] or [description]
    return " ".join(" ".join(sentences).split())


def read_mewslix_entities(path: Path) -> list[dict[str, Any]]:
    entities = []
    for number, record in read_jsonl(path):
        if "entity_id" not in record or "description" not in record:
            raise InputError(path, "entity needs 'entity_id' and 'description'", number)
        entities.append({"entity_id": record["entity_id"], "text": entity_text(record)})
    return entities


def read_mewslix_pairs(path: Path) -> list[dict[str, Any]]:
    """wikipedia_pairs-*.jsonl: {contextual_mention: {context, mention}, entity}."""
    pairs = []
    for number, record in read_jsonl(path):
        try:
            cm, entity = record["contextual_mention"], record["entity"]
            pairs.append({"query": mention_text(cm["context"], cm["mention"]), "entity_id": entity["entity_id"],
                          "entity_text": entity_text(entity)})
        except (KeyError, TypeError) as exc:
            raise InputError(path, f"not a MentionEntityPair: missing {exc}", number) from None
    return pairs


def mentions_of(record: dict[str, Any], path: Path | str, line: int) -> list[dict[str, Any]]:
    """The mentions of one ContextualMentions record {context, mentions: [{example_id, mention_span, entity_id}]}."""
    try:
        return [{"example_id": mention["example_id"], "query": mention_text(record["context"], mention),
                 "entity_id": mention.get("entity_id") or None} for mention in record["mentions"]]
    except (KeyError, TypeError) as exc:
        raise InputError(path, f"not a ContextualMentions record: missing {exc}", line) from None


def read_mewslix_mentions(path: Path) -> list[dict[str, Any]]:
    """wikinews_mentions/<split>-<lang>.jsonl: {context, mentions: [{example_id, mention_span, entity_id}]}."""
    return [m for number, record in read_jsonl(path) for m in mentions_of(record, path, number)]


def read_id_lists(path: Path) -> dict[str, list[str]]:
    """Mewsli-X labels/predictions: JSON {example_id: [entity_id, …]}."""
    data = _load_json(path)
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise InputError(path, "expected a JSON object {example_id: [entity_id, ...]}")
    return data


def tatoeba_files(folder: Path, code: str) -> tuple[Path, Path]:
    """LASER v1's aligned pair ``tatoeba.<xxx>-eng.<xxx>`` / ``tatoeba.<xxx>-eng.eng`` (3-letter codes)."""
    folder = Path(folder)
    return folder / f"tatoeba.{code}-eng.{code}", folder / f"tatoeba.{code}-eng.eng"


def tatoeba_download_files(folder: Path, lang: str) -> tuple[Path, Path]:
    """What XTREME's tatoeba_preprocess leaves: ``<xx>-en.<xx>`` (LASER's order) and ``<xx>-en.en`` (sorted)."""
    folder = Path(folder)
    return folder / f"{lang}-en.{lang}", folder / f"{lang}-en.en"


def _sentence_pair(src_path: Path, eng_path: Path, what: str) -> tuple[list[str], list[str]]:
    src = [line for _, line in _lines(require_file(src_path, f"Tatoeba sentences for {what}"))]
    eng = [line for _, line in _lines(require_file(eng_path, f"Tatoeba English side for {what}"))]
    if len(src) != len(eng):
        raise InputError(eng_path, f"has {len(eng)} lines but {src_path.name} has {len(src)}; they must match",
                         min(len(src), len(eng)) + 1)
    for path, lines in ((src_path, src), (eng_path, eng)):
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                raise InputError(path, "empty sentence", number)
    return src, eng


def read_tatoeba(folder: Path, code: str) -> tuple[list[str], list[str]]:
    """LASER v1 Tatoeba pair: line i of ``.<code>`` translates line i of ``.eng``."""
    src_path, eng_path = tatoeba_files(folder, code)
    return _sentence_pair(src_path, eng_path, code)


def read_tatoeba_any(folder: Path, lang: str, code: str) -> tuple[list[str], list[str], list[int] | None, str]:
    """The download's pair if present (gold withheld: None), else LASER's aligned pair (gold: English
    sentence i translates xx sentence i). Returns (xx sentences, English sentences, gold, layout)."""
    src_path, eng_path = tatoeba_download_files(folder, lang)
    if src_path.is_file() or eng_path.is_file():
        src, eng = _sentence_pair(src_path, eng_path, lang)
        return src, eng, None, "download"
    laser_src, laser_eng = tatoeba_files(folder, code)
    if laser_src.is_file() or laser_eng.is_file():
        src, eng = _sentence_pair(laser_src, laser_eng, code)
        return src, eng, list(range(len(eng))), "laser"
    raise InputError(src_path, f"missing file: Tatoeba sentences for {lang} (the download's {src_path.name} "
                               f"and {eng_path.name}, or LASER's {laser_src.name} and {laser_eng.name})")


def sort_english(eng_sentences: list[str]) -> tuple[list[str], list[int]]:
    """tatoeba_preprocess's order: English lines sorted (stable) by text; gold[j] = the xx line that the
    j-th sorted English line translates."""
    order = sorted(range(len(eng_sentences)), key=lambda i: eng_sentences[i])
    return [eng_sentences[i] for i in order], order


def write_tatoeba(folder: Path, lang: str, lang_sentences: list[str], eng_sentences: list[str],
                  labels_dir: Path | None = None) -> Path:
    """Write a held-out retrieval set in the download's layout (``<xx>-en.<xx>``, sorted ``<xx>-en.en``)
    and its gold in the leaderboard layout, ``<labels_dir>/tatoeba/test-<xx>.tsv`` (default labels_dir:
    ``<folder>/../labels``), where ``weam eval`` (labels_dir) and ``weam eval score`` find it.
    Whitespace inside a sentence is collapsed (a line is a sentence). Returns the label file."""
    from weam.core.languages import get_language

    if len(lang_sentences) != len(eng_sentences):
        raise ValueError(f"{len(lang_sentences)} {lang} sentences but {len(eng_sentences)} English ones")
    code = get_language(lang).code
    src = [" ".join(line.split()) for line in lang_sentences]
    eng, gold = sort_english([" ".join(line.split()) for line in eng_sentences])
    src_path, eng_path = tatoeba_download_files(Path(folder), code)
    labels_dir = Path(labels_dir) if labels_dir is not None else Path(folder).parent / "labels"
    label_path = labels_dir / "tatoeba" / f"test-{code}.tsv"
    for path, lines in ((src_path, src), (eng_path, eng), (label_path, [str(i) for i in gold])):
        with atomic_write(path) as handle:
            handle.writelines(line + "\n" for line in lines)
    return label_path


# --- leaderboard layout: <task>/test-<lang>.<ext> -------------------------------------------------

def write_lines(path: Path, predictions: Iterable[Any]) -> None:
    """One prediction a line (classification labels, Tatoeba's retrieved indices)."""
    with atomic_write(path) as handle:
        handle.writelines(f"{p}\n" for p in predictions)


def read_lines(path: Path) -> list[str]:
    require_file(path, "leaderboard file")
    return [line.strip() for _, line in _lines(path)]


def write_json(path: Path, predictions: Any) -> None:
    """QA answers {id: text}, retrieval rankings {id: [id, …]}."""
    atomic_write_json(path, predictions)


def write_label_jsonl(path: Path, predictions: Iterable[Any]) -> None:
    """XCOPA: one ``{"label": n}`` a line."""
    with atomic_write(path) as handle:
        handle.writelines(json.dumps({"label": int(p)}) + "\n" for p in predictions)


def read_label_jsonl(path: Path) -> list[Any]:
    require_file(path, "leaderboard file")
    out = []
    for number, record in read_jsonl(path):
        if "label" not in record:
            raise InputError(path, "missing field 'label'", number)
        out.append(record["label"])
    return out


def write_tag_lines(path: Path, predictions: Iterable[list[str]]) -> None:
    """Tagging: one tag a line, a blank line after each sentence."""
    with atomic_write(path) as handle:
        handle.write("\n".join("\n".join(tags) + "\n" for tags in predictions))


def read_tag_lines(path: Path) -> list[list[str]]:
    """Tag sentences (the last tab-separated field of each line; a blank line ends a sentence)."""
    require_file(path, "leaderboard file")
    sentences, current = [], []
    for _, line in _lines(path):
        if line.strip():
            current.append(line.strip().split("\t")[-1])
        elif current:
            sentences.append(current)
            current = []
    if current:
        sentences.append(current)
    return sentences


def read_squad_articles(path: Path) -> Any:
    """A QA file of the leaderboard layout: SQuAD's ``data`` list (labels) or the predictions' object."""
    require_file(path, "leaderboard file")
    data = _load_json(path)
    return data["data"] if isinstance(data, dict) and "data" in data else data


def squad_answers(articles: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """{id, answers} of every question of SQuAD articles."""
    for article in articles:
        for paragraph in article.get("paragraphs", []):
            for qa in paragraph.get("qas", []):
                yield {"id": str(qa["id"]), "answers": qa["answers"]}
