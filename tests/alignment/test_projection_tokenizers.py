"""Word links projected onto real subword tokenizers trained here: WordPiece (weam's own),
SentencePiece-style Unigram and byte-level BPE (the ``tokenizers`` library)."""

from __future__ import annotations

import pytest

from weam.alignment.projection import tokenize_and_project

TEXTS = [
    "the cat sat on the mat .",
    "die Katze sitzt auf der Matte .",
    "save the file before closing the window .",
    "speichern Sie die Datei , bevor Sie das Fenster schließen .",
] * 20


def wordpiece():
    from weam.modeling import train_wordpiece_tokenizer

    return train_wordpiece_tokenizer(TEXTS, vocab_size=120)


def unigram():
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    backend = Tokenizer(models.Unigram())
    backend.normalizer = normalizers.NFKC()
    backend.pre_tokenizer = pre_tokenizers.Metaspace()
    backend.decoder = decoders.Metaspace()
    backend.train_from_iterator(TEXTS, trainers.UnigramTrainer(vocab_size=90, special_tokens=["<unk>"],
                                                               unk_token="<unk>"))
    return _wrap(backend, unk_token="<unk>")


def byte_bpe():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    backend.decoder = decoders.ByteLevel()
    backend.train_from_iterator(TEXTS, trainers.BpeTrainer(vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return _wrap(backend)


def _wrap(backend, **kwargs):
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=backend, **kwargs)


@pytest.fixture(scope="module", params=[wordpiece, unigram, byte_bpe], ids=["wordpiece", "unigram", "bpe"])
def tokenizer(request):
    return request.param()


SRC = "save the file before closing the window .".split()
TGT = "speichern Sie die Datei , bevor Sie das Fenster schließen .".split()
LINKS = [(0, 0), (1, 2), (2, 3), (3, 5), (4, 9), (5, 7), (6, 8), (7, 10)]


def test_every_token_of_a_multi_token_word_is_linked(tokenizer):
    src, tgt, token_links, dropped = tokenize_and_project(tokenizer, SRC, TGT, LINKS)
    assert dropped == 0
    src_ids, tgt_ids = src.word_ids(), tgt.word_ids()
    expected = {(a, b) for i, j in LINKS for a, w in enumerate(src_ids) if w == i
                for b, v in enumerate(tgt_ids) if v == j}
    assert set(token_links) == expected
    # the vocabulary is tiny, so some linked word really is split into several tokens
    assert any(src_ids.count(i) > 1 or tgt_ids.count(j) > 1 for i, j in LINKS)
    for a, b in token_links:
        assert (src_ids[a], tgt_ids[b]) in LINKS


def test_truncated_words_drop_their_links(tokenizer):
    src, tgt, token_links, dropped = tokenize_and_project(tokenizer, SRC, TGT, LINKS, truncation=True, max_length=4)
    kept_src = {w for w in src.word_ids() if w is not None}
    kept_tgt = {w for w in tgt.word_ids() if w is not None}
    survivors = [(i, j) for i, j in LINKS if i in kept_src and j in kept_tgt]
    assert dropped == len(LINKS) - len(survivors) > 0
    assert {(src.word_ids()[a], tgt.word_ids()[b]) for a, b in token_links} == set(survivors)


def test_word_the_normalizer_deletes_loses_its_links():
    tokenizer = wordpiece()  # BERT's clean_text removes control characters: "\x07" has no tokens
    src_words = ["the", "\x07", "cat"]
    tgt_words = ["die", "Katze"]
    src, _, token_links, dropped = tokenize_and_project(tokenizer, src_words, tgt_words, [(0, 0), (1, 1), (2, 1)])
    assert 1 not in src.word_ids() and dropped == 1
    assert {src.word_ids()[a] for a, _ in token_links} == {0, 2}
