"""Project word alignments onto subword tokens, for any Hugging Face fast tokenizer.

Give the tokenizer the words (``is_split_into_words=True``) and it reports, per token, the index
of the word it came from (``word_ids()``; None for special tokens). A word link ``i-j`` becomes
links between every token of source word ``i`` and every token of target word ``j``. A word the
tokenizer drops entirely (for example a lone control character) has no tokens, so its links
vanish; :func:`project_links` reports how many did.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from weam.alignment.pharaoh import Link


def tokens_by_word(word_ids: Sequence[int | None]) -> dict[int, list[int]]:
    groups: dict[int, list[int]] = defaultdict(list)
    for position, word in enumerate(word_ids):
        if word is not None:
            groups[word].append(position)
    return groups


def project_links(
    word_links: Sequence[Link],
    src_word_ids: Sequence[int | None],
    tgt_word_ids: Sequence[int | None],
) -> tuple[list[Link], int]:
    """Token links (positions in the two token sequences) and the number of word links dropped
    because a word has no tokens (dropped by the tokenizer or cut off by truncation)."""
    src_tokens = tokens_by_word(src_word_ids)
    tgt_tokens = tokens_by_word(tgt_word_ids)
    token_links: set[Link] = set()
    dropped = 0
    for i, j in word_links:
        if i not in src_tokens or j not in tgt_tokens:
            dropped += 1
            continue
        token_links.update((a, b) for a in src_tokens[i] for b in tgt_tokens[j])
    return sorted(token_links), dropped


def tokenize_and_project(tokenizer, src_words: list[str], tgt_words: list[str], word_links: Sequence[Link], **kwargs):
    """Tokenize both sides as pre-split words and project ``word_links`` onto their tokens.

    Returns ``(src_encoding, tgt_encoding, token_links, dropped)``; keyword arguments go to the
    tokenizer (e.g. ``truncation=True, max_length=128``).
    """
    src = tokenizer(src_words, is_split_into_words=True, **kwargs)
    tgt = tokenizer(tgt_words, is_split_into_words=True, **kwargs)
    links, dropped = project_links(word_links, src.word_ids(), tgt.word_ids())
    return src, tgt, links, dropped
