"""Tests of the reference solutions of lesson 06, tokenization (docs/solutions/06_tokenizer.py).

Training and encoding in plain Python are checked against tinytensor's BasicTokenizer (the C++ loops,
the code the exercise re-derives) on a small TinyStories file and on hand-made strings with ties and
overlapping pairs, and training once by hand; the byte map against GPT-2's own encoder.json, whose
first 256 ids are exactly the byte tokens.
"""
import json
import os

import pytest

from helpers import load_solution
from tinytensor.tokenizer import BasicTokenizer, bytes_to_unicode

sol = load_solution("06_tokenizer")
DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "data")


def tiny_stories() -> str:
    with open(os.path.join(DATA, "tinystories_tiny.txt"), encoding="utf-8") as f:
        return f.read()


def library_merges(text: str, n_new: int):
    tok = BasicTokenizer()
    tok.train(text, 256 + n_new)
    return tok, tok.merges


def test_pair_counts_and_merge_by_hand():
    assert sol.pair_counts([5, 5, 5, 1]) == {(5, 5): 2, (5, 1): 1}
    assert sol.merge_pair([5, 5, 5, 1, 5, 5], (5, 5), 9) == [9, 5, 1, 9]


@pytest.mark.parametrize("text,n_new", [("aaabdaaabac", 3), ("abababab", 4), ("hello hello world", 20),
                                        ("abcabc xbc abc", 6), ("zzzz yyyy", 2), ("", 5), ("a", 5)])
def test_train_small_strings_like_the_library(text, n_new):
    assert sol.train_bpe(text, n_new) == library_merges(text, n_new)[1]


def test_train_by_hand():
    """aaabdaaabac: 'aa' occurs 4 times (overlaps count) and goes first, leaving Z a b d Z a b a c (Z = 256);
    then ('a', 'b') and (Z, 'a') tie at 2 and the smaller pair, (97, 98), wins."""
    assert sol.train_bpe("aaabdaaabac", 2) == [(97, 97, 256), (97, 98, 257)]


def test_train_tiny_stories_like_the_library():
    text = tiny_stories()
    merges = sol.train_bpe(text, 300)
    assert len(merges) >= 300 and merges == library_merges(text, 300)[1]


def test_encode_and_decode_like_the_library():
    text = tiny_stories()
    tok, merges = library_merges(text, 300)
    for piece in [text[:400], text[1500:1900], "Ben saw a vase, a vase, a VASE!", "naïve café 🙂", ""]:
        ids = sol.encode_bpe(piece, merges)
        assert ids == tok.encode(piece)
        assert sol.decode_bpe(ids, merges) == piece
    assert len(sol.encode_bpe(text[:400], merges)) < len(text[:400].encode("utf-8")) / 2  # it compresses


def test_gpt2_byte_chars_match_gpt2s_files():
    table = sol.gpt2_byte_chars()
    with open(os.path.join(DATA, "gpt2", "encoder.json"), encoding="utf-8") as f:
        encoder = json.load(f)
    assert sorted(table) == list(range(256)) and len(set(table.values())) == 256
    assert sorted(encoder[c] for c in table.values()) == list(range(256))  # GPT-2's ids 0..255 are the bytes
    assert table[ord(" ")] == "Ġ" and table[ord("\n")] == "Ċ" and table[ord("A")] == "A"
    assert encoder["Ġthe"] == encoder["Ġ" + "the"] and "Ġthe" in encoder  # a token written with the map
    assert table == bytes_to_unicode()
