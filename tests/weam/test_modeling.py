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
