from transformers import AutoModelForMaskedLM, AutoTokenizer


def test_tiny_model_round_trips_through_auto_classes(tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForMaskedLM.from_pretrained(tiny_model_dir)
    encoding = tokenizer(["die", "Katze", "sitzt"], is_split_into_words=True, return_tensors="pt")
    assert encoding.word_ids()[0] is None and encoding.word_ids()[1] == 0
    logits = model(**encoding).logits
    assert logits.shape[-1] == len(tokenizer)


def test_freeze_lower_layers_leaves_the_head_and_upper_layers_trainable():
    import pytest

    from weam.modeling import build_masked_lm, freeze_lower_layers

    model = build_masked_lm("small", vocab_size=100)  # 4 layers
    total = sum(p.numel() for p in model.parameters())
    trainable = freeze_lower_layers(model, 2)
    assert 0 < trainable < total
    assert not model.bert.embeddings.word_embeddings.weight.requires_grad
    assert not any(p.requires_grad for p in model.bert.encoder.layer[1].parameters())
    assert all(p.requires_grad for p in model.bert.encoder.layer[2].parameters())
    assert model.cls.predictions.transform.dense.weight.requires_grad
    assert freeze_lower_layers(build_masked_lm("small", vocab_size=100), 0) == total
    with pytest.raises(ValueError, match="has 4 layers"):
        freeze_lower_layers(model, 5)


def test_pretrain_with_frozen_lower_layers_moves_only_the_upper_ones(tmp_path):
    """Through the real pre-training stage (DeepSpeed ZeRO-1, CPU): frozen weights leave it bit-identical."""
    import torch

    from tests.training.conftest import write_pair
    from weam.training.api import pretrain
    from weam.training.config import PretrainConfig
    from weam.modeling import build_masked_lm, train_wordpiece_tokenizer

    pair = write_pair(tmp_path / "en-de", "en", "de", 60, 1, "en")
    texts = [line for f in (pair["src_file"], pair["tgt_file"]) for line in f.read_text().splitlines()]
    train_wordpiece_tokenizer(texts, vocab_size=120).save_pretrained(tmp_path / "tok")
    config = PretrainConfig.model_validate({
        "model": "preset:tiny", "tokenizer": str(tmp_path / "tok"), "objective": {"name": "mlm"},
        "data": {"pairs": [pair], "batch_size": 8, "max_seq_len": 32},
        "optim": {"max_steps": 4, "lr": 1e-3, "warmup_ratio": 0.0, "freeze_layers": 1},
        "parallel": {"zero_stage": 1}, "out_dir": tmp_path / "out", "logging": {"tracking": {"enabled": False}}})
    trained = AutoModelForMaskedLM.from_pretrained(pretrain(config))
    from transformers import AutoTokenizer

    start = build_masked_lm("tiny", vocab_size=len(AutoTokenizer.from_pretrained(tmp_path / "tok")), seed=0)
    before, after = start.state_dict(), trained.state_dict()
    for name in ("bert.embeddings.word_embeddings.weight", "bert.encoder.layer.0.attention.self.query.weight"):
        assert torch.equal(before[name], after[name]), name
    for name in ("bert.encoder.layer.1.attention.self.query.weight", "cls.predictions.transform.dense.weight"):
        assert not torch.equal(before[name], after[name]), name


def test_load_tokenizer_gives_what_auto_tokenizer_gives(tiny_model_dir, tmp_path):
    """The plain fast tokenizer is loaded by its class (no torch import); anything else by AutoTokenizer."""
    import json
    import shutil

    from weam.modeling import load_tokenizer

    auto, light = AutoTokenizer.from_pretrained(tiny_model_dir), load_tokenizer(tiny_model_dir)
    assert type(light) is type(auto) and light.init_kwargs == auto.init_kwargs
    assert light.backend_tokenizer.to_str() == auto.backend_tokenizer.to_str()
    texts = ["die Katze sitzt auf der Matte .", "kissa istuu matolla ."]
    assert light(texts, add_special_tokens=False)["input_ids"] == auto(texts, add_special_tokens=False)["input_ids"]
    other = shutil.copytree(tiny_model_dir, tmp_path / "bert")  # a named class goes through AutoTokenizer
    config = json.loads((other / "tokenizer_config.json").read_text())
    (other / "tokenizer_config.json").write_text(json.dumps({**config, "tokenizer_class": "BertTokenizer"}))
    assert type(load_tokenizer(other)).__name__ == type(AutoTokenizer.from_pretrained(other)).__name__ != type(auto).__name__
