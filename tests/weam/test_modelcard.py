"""Model cards: an exported model's README.md loads with huggingface_hub.ModelCard and names its
objective, languages and budget; evaluation adds model-index results."""

from __future__ import annotations

import json

import pytest

from tests.training.conftest import write_pair


@pytest.fixture
def pairs(tmp_path):
    made = [write_pair(tmp_path / "en-fi", "en", "fi", 40, 1, "ko"), write_pair(tmp_path / "en-tr", "en", "tr", 40, 2, "lar")]
    # what the align stage leaves beside its alignment file
    (tmp_path / "en-fi" / "manifest.json").write_text(json.dumps({"stage": "align", "config": {
        "engine": "auto", "resolved_engine": "eflomal", "symmetrize": "grow-diag-final-and"}}))
    return made


def card_config(pairs, tmp_path, **overrides):
    from weam.training.config import PretrainConfig

    data = {"model": "bert-base-multilingual-cased", "seed": 2, "out_dir": tmp_path / "run",
            "data": {"pairs": pairs, "token_budget": 123456}, "objective": {"name": "weam"},
            "logging": {"tracking": {"enabled": False}, "run_name": "pretrain/weam/diverse/seed2",
                        "tags": {"weam.study": "family-diversity-mbert", "weam.condition": "diverse", "weam.seed": "2"}}}
    return PretrainConfig.model_validate({**data, **overrides})


def test_card_loads_and_names_objective_languages_budget(pairs, tmp_path):
    from huggingface_hub import ModelCard

    from weam.modelcard import write_model_card

    counts = {"steps": 7, "tokens": 123800, "tokens_per_pair": {"en-fi": 60000, "en-tr": 63800}, "examples": 90,
              "world_size": 1}
    path = write_model_card(tmp_path / "model", card_config(pairs, tmp_path), counts, run_id="abc123")
    card = ModelCard.load(path)
    assert "&id" not in path.read_text()  # no YAML anchors: plain metadata a person can read
    data = card.data.to_dict()
    assert data["base_model"] == "bert-base-multilingual-cased"
    assert data["language"] == ["en", "fi", "tr"]
    assert "objective:weam" in data["tags"] and "family:Uralic" in data["tags"] and "family:Turkic" in data["tags"]
    assert data["model-index"] == [{"name": "family-diversity-mbert-diverse-weam-seed2", "results": []}]
    assert data["weam"]["token_budget"] == 123456 and data["weam"]["objective_settings"]["weam"]["cross_weight"] == 1.0
    text = card.text
    assert "**weam** objective" in text and "Token budget: 123,456" in text and "123,800 tokens" in text
    assert "fi (Uralic), tr (Turkic)" in text
    assert "| en-fi | eflomal (grow-diag-final-and) |" in text and "| en-tr | unknown (no align manifest" in text
    assert "MLflow run id: abc123" in text and "condition: diverse" in text


def test_eval_results_fill_the_model_index(pairs, tmp_path):
    from huggingface_hub import ModelCard

    from weam.eval.tasks import get_task
    from weam.modelcard import record_eval_results, write_model_card

    model_dir = tmp_path / "model"
    write_model_card(model_dir, card_config(pairs, tmp_path, model="preset:tiny", tokenizer="tok"), {"steps": 1})
    spec = get_task("xquad")
    result = {"avg": 41.5, "split": "dev", "per_language": {"de": {"exact_match": 30.0, "f1": 45.0}, "tr": {"exact_match": 28.0, "f1": 41.0}}}
    assert record_eval_results(model_dir, spec, result)
    assert record_eval_results(model_dir, spec, result)  # replaced, not appended twice
    assert record_eval_results(model_dir, get_task("tatoeba"), {"avg": 12.0, "per_language": {"fi": {"accuracy": 12.0}}})
    card = ModelCard.load(model_dir / "README.md")
    assert "base_model" not in card.data.to_dict()  # a preset is not a hub id
    found = {(r.dataset_name, r.dataset_config, r.metric_value) for r in card.data.eval_results}
    assert found == {("XTREME-R XQuAD", "avg", 41.5), ("XTREME-R XQuAD", "de", 37.5), ("XTREME-R XQuAD", "tr", 34.5),
                     ("XTREME-R Tatoeba", "avg", 12.0), ("XTREME-R Tatoeba", "fi", 12.0)}
    assert "| XQuAD | dev | de | mean(exact_match,f1) | 37.50 |" in card.text
    assert {r.dataset_split for r in card.data.eval_results} == {"dev", "test"}  # Tatoeba's result names none
    assert not record_eval_results(tmp_path / "no-card", spec, result)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "README.md").write_text("---\nlicense: mit\n---\n# someone else's card\n")
    assert not record_eval_results(tmp_path / "other", spec, result)
    assert (tmp_path / "other" / "README.md").read_text().endswith("# someone else's card\n")


def test_exported_model_has_a_card(tmp_path):
    """A real (tiny, in-process) pre-training run exports model/README.md."""
    from huggingface_hub import ModelCard

    from tests.training.conftest import tiny_config
    from weam.training.api import pretrain
    from weam.modeling import train_wordpiece_tokenizer

    made = [write_pair(tmp_path / "en-fi", "en", "fi", 40, 1, "ko")]
    texts = [line for p in made for f in (p["src_file"], p["tgt_file"]) for line in f.read_text().splitlines()]
    train_wordpiece_tokenizer(texts, vocab_size=100).save_pretrained(tmp_path / "tok")
    config = tiny_config({"pairs": made, "tokenizer": tmp_path / "tok"}, tmp_path / "run", max_steps=2, token_budget=4000)
    model_dir = pretrain(config)
    card = ModelCard.load(model_dir / "README.md")
    assert card.data.to_dict()["weam"]["objective"] == "weam" and card.data.language == ["en", "fi"]
    assert "Token budget: 4,000" in card.text and card.data.to_dict()["weam"]["trained"]["steps"] >= 1
