from transformers import AutoModelForMaskedLM, AutoTokenizer


def test_tiny_model_round_trips_through_auto_classes(tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForMaskedLM.from_pretrained(tiny_model_dir)
    encoding = tokenizer(["die", "Katze", "sitzt"], is_split_into_words=True, return_tensors="pt")
    assert encoding.word_ids()[0] is None and encoding.word_ids()[1] == 0
    logits = model(**encoding).logits
    assert logits.shape[-1] == len(tokenizer)
