"""Tests for tinytensor.tokenizer (chapter 06) and its C++ loops (ops_c/bpe.cpp).

Round trips on arbitrary Unicode for every class; GPT-2 ids against Hugging Face `tokenizers`
(an optional oracle, skipped when absent); hand-worked training examples; determinism; the C++
merge loop against a plain Python one; save/load in both formats; special tokens in all three
modes (allowed, disallowed, ordinary); malformed files. Runs in well under a minute on 2 cores.
"""
import os
import random

import pytest
from hypothesis import given, strategies as st

from tinytensor import _C
from tinytensor.tokenizer import (GPT2_SPLIT_PATTERN, BasicTokenizer, GPT2Tokenizer, RegexTokenizer, Tokenizer,
                                  bytes_to_unicode)

from helpers import load_example

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "examples", "data")
ENCODER, MERGES = os.path.join(DATA, "gpt2", "encoder.json"), os.path.join(DATA, "gpt2", "vocab.bpe")
EOT = "<|endoftext|>"


def read(name: str) -> str:
    with open(os.path.join(DATA, name), encoding="utf-8") as f:
        return f.read()


@pytest.fixture(scope="module")
def gpt2():
    return GPT2Tokenizer.from_files(ENCODER, MERGES)


@pytest.fixture(scope="module")
def hf_gpt2():
    tokenizers = pytest.importorskip("tokenizers")
    tok = tokenizers.Tokenizer(tokenizers.models.BPE.from_file(ENCODER, MERGES))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = tokenizers.decoders.ByteLevel()
    tok.add_special_tokens([EOT])
    return tok


@pytest.fixture(scope="module")
def trained():
    """A RegexTokenizer (GPT-4 split) and a BasicTokenizer trained on the tiny TinyStories file."""
    text = read("tinystories_tiny.txt")
    regex_tok = RegexTokenizer(special_tokens=())
    regex_tok.train(text, 400, special_tokens=[EOT, "<|pad|>"])
    basic = BasicTokenizer()
    basic.train(text, 400)
    return regex_tok, basic


# Arbitrary Unicode with extra weight on the hard parts: emoji (incl. ZWJ sequences and skin tones),
# combining marks, CJK, RTL, whitespace runs and control characters. Surrogates are not text.
HARD = ["👍", "👩‍👩‍👧", "🏽", "e\u0301", "\u0308", "中文", "日本語", "한국어", "עברית", "\u200b", "\ufeff",
        " ", "  ", "\t", "\n", "\r\n", "\n\n\n", "\x00", "\x1b", "\x7f", "\x85", "\u2028", "'s", "'LL", "123456",
        "Ġ", "<|", "|>", "…", "’"]
texts = st.lists(st.one_of(st.text(st.characters(blacklist_categories=("Cs",)), max_size=8), st.sampled_from(HARD)),
                 max_size=12).map("".join)


# ----- round trips -----

@given(text=texts)
def test_round_trip_every_class(trained, gpt2, text):
    regex_tok, basic = trained
    for tok in (regex_tok, basic, gpt2):
        ids = tok.encode(text) if tok is basic else tok.encode(text, disallowed_special=())
        assert tok.decode(ids) == text
        assert all(isinstance(i, int) and 0 <= i < tok.vocab_size for i in ids)


def test_round_trip_sample_and_long_chunks(trained, gpt2):
    regex_tok, basic = trained
    text = read("tinystories_sample.txt")[:50_000] + " " + "a" * 5000 + " " + "\n" * 300 + "🙂" * 200
    for tok in (regex_tok, gpt2):
        assert tok.decode(tok.encode(text, allowed_special="all")) == text
    assert basic.decode(basic.encode(text)) == text


def test_decode_invalid_utf8_and_unknown_ids(gpt2):
    ids = gpt2.encode("é")                      # one token for two bytes; split it via byte tokens
    byte_ids = [gpt2.byte_ids[b] for b in "é".encode()]
    assert gpt2.decode(ids) == gpt2.decode(byte_ids) == "é"
    assert gpt2.decode(byte_ids[:1]) == "\ufffd"  # half a character: replacement, no exception
    assert gpt2.decode(byte_ids[::-1]) == "\ufffd\ufffd"
    with pytest.raises(ValueError, match="unknown token id 50257"):
        gpt2.decode([1, 50257])


# ----- GPT-2 exactness (Hugging Face tokenizers as the oracle) -----

def test_gpt2_matches_hf_on_sample(gpt2, hf_gpt2):
    text = read("tinystories_sample.txt")[:200_000]
    ids = gpt2.encode(text, allowed_special="all")
    assert ids == hf_gpt2.encode(text).ids
    assert gpt2.vocab_size == 50257 and gpt2.special_tokens == {EOT: 50256}


@given(text=texts)
def test_gpt2_matches_hf_on_arbitrary_text(gpt2, hf_gpt2, text):
    assert gpt2.encode(text, allowed_special="all") == hf_gpt2.encode(text).ids


def test_gpt2_known_ids(gpt2):
    # Known GPT-2 ids: "Hello" 15496, " world" 995, "!" 0, " It" 632, "'s" 338, "<|endoftext|>" 50256.
    assert gpt2.encode("Hello world! It's", allowed_special="all") == [15496, 995, 0, 632, 338]
    assert gpt2.encode(EOT, allowed_special="all") == [50256]
    to_unicode = bytes_to_unicode()
    assert to_unicode[32] == "Ġ" and to_unicode[10] == "Ċ" and len(set(to_unicode.values())) == 256


# ----- training -----

def test_training_worked_example_regex():
    """Hand-worked: "the cat the hat the bat" with the GPT-2 split.

    Chunks (with counts): "the" 1, " the" 2, " cat" 1, " hat" 1, " bat" 1. Pair counts, weighted:
    (t,h) 3, (h,e) 3, (a,t) 3 (from cat, hat, bat), (' ',t) 2, every other pair 1. Ties go to
    the smallest pair of ids, so:
      1. (a, t) -> 256 "at"     count 3; 'a' = 97 beats 'h' = 104 and 't' = 116
      2. (h, e) -> 257 "he"     count 3; beats (t, h)
      3. (t, 257) -> 258 "the"  count 3 ((t, h) is gone: every h is now inside "he")
      4. (' ', 258) -> 259 " the" count 2
      5. (' ', b) -> 260 " b"   count 1: all pairs left have count 1; ' ' = 32 then 'b' = 98 is
         the smallest of (' ',b), (' ',c), (' ',h), (b,256), (c,256), (h,256)
    """
    tok = RegexTokenizer(GPT2_SPLIT_PATTERN)
    tok.train("the cat the hat the bat", vocab_size=261)
    assert tok.merges == [(97, 116, 256), (104, 101, 257), (116, 257, 258), (32, 258, 259), (32, 98, 260)]
    assert tok.encode(" the bat") == [259, 260, 256]
    merges_with_counts = _C.bpe_train([b"the", b" the", b" cat", b" hat", b" bat"], [1, 2, 1, 1, 1], 5)
    assert [m[3] for m in merges_with_counts] == [3, 3, 3, 2, 1]


def test_training_worked_example_basic():
    """Hand-worked (Wikipedia's BPE example): "aaabdaaabac" as one sequence of bytes.

    Pairs counted at every position, overlapping: (a,a) 4, (a,b) 2, the rest 1.
      1. (a, a) -> 256: "aaab" becomes (aa)ab, leftmost first, so: Z a b d Z a b a c
      2. (a, b) -> 257: (Z,a) and (a,b) both have 2; 97 < 256 picks (a, b): Z Y d Z Y a c
      3. (256, 257) -> 258: (Z,Y) has 2: X d X a c
      4. (a, c) -> 259: all pairs have 1; (97, 99) is the smallest
    """
    tok = BasicTokenizer()
    tok.train("aaabdaaabac", vocab_size=260)
    assert tok.merges == [(97, 97, 256), (97, 98, 257), (256, 257, 258), (97, 99, 259)]
    assert tok.encode("aaabdaaabac") == [258, 100, 258, 259]


def test_training_is_deterministic():
    text = read("tinystories_tiny.txt")
    a, b = RegexTokenizer(), RegexTokenizer()
    a.train(text, 500, special_tokens=[EOT])
    b.train(text, 500, special_tokens=[EOT])
    assert a.merges == b.merges and a.special_tokens == b.special_tokens == {EOT: 499}
    # the result does not depend on the order the chunks reach the C++ loop
    words = [bytes([c]) * 3 + w for c in b"xyz" for w in (b"ab", b"ba", b"abab")]
    counts = list(range(1, len(words) + 1))
    order = list(range(len(words)))
    random.Random(0).shuffle(order)
    assert _C.bpe_train(words, counts, 20) == _C.bpe_train([words[i] for i in order], [counts[i] for i in order], 20)


def test_training_stops_when_pairs_run_out_and_ids_have_distinct_bytes():
    tok = BasicTokenizer()
    tok.train("abab", vocab_size=1000)         # "ab" then "abab": nothing left to merge
    assert tok.merges == [(97, 98, 256), (256, 256, 257)] and tok.vocab_size == 258
    tok = RegexTokenizer()
    tok.train(read("tinystories_sample.txt")[:300_000], 1500)
    assert len(set(tok.vocab.values())) == len(tok.vocab)


def reference_bpe(tok: Tokenizer, data: bytes):
    """Plain Python BPE: merge the lowest-ranked adjacent pair, leftmost first, until none."""
    ranks = {(a, b): (r, new) for r, (a, b, new) in enumerate(tok.merges)}
    ids = [tok.byte_ids[b] for b in data]
    while len(ids) > 1:
        r, i = min((ranks.get(p, (float("inf"),))[0], i) for i, p in enumerate(zip(ids, ids[1:])))
        if r == float("inf"):
            return ids
        ids[i:i + 2] = [tok.merges[r][2]]
    return ids


@given(data=st.one_of(st.binary(max_size=40), texts.map(str.encode), st.sampled_from([b"a" * 200, b"ab" * 150])))
def test_cpp_merge_loop_matches_python(trained, data):
    regex_tok, basic = trained
    for tok in (regex_tok, basic):             # chunks over 64 bytes take the heap path in C++
        assert tok._encoder.encode(data) == reference_bpe(tok, data)


# ----- special tokens: allowed, disallowed, ordinary -----

def test_special_tokens_three_modes(trained, gpt2):
    regex_tok, _ = trained
    text = f"Hi!{EOT}Bye<|pad|>"
    eot, pad = regex_tok.special_tokens[EOT], regex_tok.special_tokens["<|pad|>"]
    with pytest.raises(ValueError, match=r"special token '<\|endoftext\|>'"):   # default: disallowed
        regex_tok.encode(text)
    with pytest.raises(ValueError, match=r"'<\|pad\|>'"):                       # only EOT allowed
        regex_tok.encode(text, allowed_special={EOT})
    ids = regex_tok.encode(text, allowed_special="all")                          # allowed
    assert eot in ids and pad in ids and regex_tok.decode(ids) == text
    assert ids == regex_tok.encode("Hi!") + [eot] + regex_tok.encode("Bye") + [pad]
    ordinary = regex_tok.encode(text, disallowed_special=())                     # ordinary text
    assert ordinary == regex_tok.encode_ordinary(text) and eot not in ordinary and pad not in ordinary
    mixed = regex_tok.encode(text, allowed_special={EOT}, disallowed_special=())
    assert eot in mixed and pad not in mixed and regex_tok.decode(mixed) == text
    with pytest.raises(ValueError, match="not special tokens"):
        regex_tok.encode("x", allowed_special={"<|nope|>"})
    with pytest.raises(ValueError, match="<x>"):                                 # custom disallowed set
        regex_tok.encode("a<x>b", disallowed_special={"<x>"})
    assert gpt2.encode(EOT, disallowed_special=()) == [27, 91, 437, 1659, 5239, 91, 29]


def test_encode_file_stream_and_batch(trained, tmp_path):
    regex_tok, basic = trained
    text = read("tinystories_tiny.txt") * 3
    path = tmp_path / "docs.txt"
    path.write_text(text, encoding="utf-8")
    whole = regex_tok.encode(text, allowed_special="all")
    assert regex_tok.encode_file(path, block_size=100, allowed_special="all") == whole
    assert basic.encode_file(path, block_size=100) == basic.encode(text)
    docs = text.split(EOT)
    assert list(regex_tok.encode_iterable(docs, progress=False)) == regex_tok.encode_batch(docs)
    assert regex_tok.encode_batch(["a b", "c"]) == [regex_tok.encode("a b"), regex_tok.encode("c")]


# ----- files -----

@pytest.mark.parametrize("specials", [[], [EOT, "<|im_start|>"]])
def test_save_load_round_trip(tmp_path, specials):
    text = read("tinystories_tiny.txt")
    tok = RegexTokenizer()
    tok.train(text, 350, special_tokens=specials)
    path = tmp_path / "tok.bpe"
    tok.save(path)
    assert path.read_text(encoding="utf-8").splitlines()[0] == "tinytensor-bpe v1"
    back = Tokenizer.load(path)
    assert type(back) is RegexTokenizer and back.pattern == tok.pattern
    assert back.merges == tok.merges and back.special_tokens == tok.special_tokens
    assert back.encode(text, allowed_special="all") == tok.encode(text, allowed_special="all")


def test_save_load_basic_and_gpt2(trained, gpt2, tmp_path):
    _, basic = trained
    basic.save(tmp_path / "basic.bpe")
    back = BasicTokenizer.load(tmp_path / "basic.bpe")
    assert type(back) is BasicTokenizer and back.merges == basic.merges and back.pattern is None
    gpt2.save(tmp_path / "gpt2.bpe")
    back = Tokenizer.load(tmp_path / "gpt2.bpe")
    assert type(back) is GPT2Tokenizer and back.byte_ids == gpt2.byte_ids and back.merges == gpt2.merges
    assert back.encode("Hello world!<|endoftext|>", allowed_special="all") == [15496, 995, 0, 50256]
    with pytest.raises(ValueError, match="holds a BasicTokenizer"):
        RegexTokenizer.load(tmp_path / "basic.bpe")


def test_hf_tokenizer_json_round_trip(trained, gpt2, tmp_path):
    tokenizers = pytest.importorskip("tokenizers")
    regex_tok, basic = trained
    text = read("tinystories_tiny.txt")
    for tok in (regex_tok, basic, gpt2):
        path = tmp_path / "tokenizer.json"
        tok.save_hf(path)
        hf = tokenizers.Tokenizer.from_file(str(path))
        sample = text[:1000] if tok is basic else text
        assert hf.encode(sample).ids == tok.encode(sample, **({} if tok is basic else {"allowed_special": "all"}))
        back = Tokenizer.load_hf(path)
        assert back.merges == tok.merges and back.byte_ids == tok.byte_ids
        assert back.special_tokens == tok.special_tokens and back.pattern == tok.pattern


GOOD = ["tinytensor-bpe v1", "class RegexTokenizer", 'pattern "\\\\S+|\\\\s+"', "bytes identity",
        "specials 1", '258 "<|endoftext|>"', "merges 2", "104 105 256 # \"hi\"", "256 33 257"]


@pytest.mark.parametrize("line, replacement, error_line, message", [
    (1, "tinytensor-bpe v2", 1, "version line"),
    (2, "class NoSuchTokenizer", 2, "unknown tokenizer class"),
    (3, 'pattern "(unclosed"', 3, "does not compile"),
    (3, "pattern null", 3, "needs a split pattern"),
    (4, "bytes 1 2 3", 4, "256 integers"),
    (5, "specials x", 5, "number of special tokens"),
    (6, '258 "<|endoftext|>" extra', 6, "JSON"),
    (6, '256 "<|endoftext|>"', 6, "also an ordinary token"),
    (7, "merges 3", 10, "the file ends"),
    (8, "104 999 256", 8, "no earlier line defines"),
    (9, "104 105 257", 9, "already has a merge rule"),
    (9, "256 33 256", 9, "already taken"),
    (9, "256 -3 257", 9, "integers >= 0"),
    (10, "junk", 10, "unexpected text after the last merge"),
])
def test_malformed_tinytensor_file(tmp_path, line, replacement, error_line, message):
    lines = list(GOOD)
    if line > len(lines):
        lines.append(replacement)
    else:
        lines[line - 1] = replacement
    path = tmp_path / "bad.bpe"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "good.bpe").write_text("\n".join(GOOD) + "\n", encoding="utf-8")
    assert Tokenizer.load(tmp_path / "good.bpe").encode("hi!") == [257]
    with pytest.raises(ValueError, match=f"bad.bpe:{error_line}: .*{message}"):
        Tokenizer.load(path)
    assert sorted(os.listdir(tmp_path)) == ["bad.bpe", "good.bpe"]   # nothing written on failure


def test_malformed_binary_gpt2_and_hf_files(tmp_path):
    path = tmp_path / "bin.bpe"
    path.write_bytes(b"tinytensor-bpe v1\nclass \xff\n")
    with pytest.raises(ValueError, match="bin.bpe:2: not UTF-8"):
        Tokenizer.load(path)
    merges = tmp_path / "vocab.bpe"
    merges.write_text("#version: 0.2\nĠ t\nĠt he\nx\n", encoding="utf-8")
    with pytest.raises(ValueError, match="vocab.bpe:4: expected two tokens"):
        GPT2Tokenizer.from_files(ENCODER, merges)
    merges.write_text("#version: 0.2\nĠ t\nĠt hezz\n", encoding="utf-8")
    with pytest.raises(ValueError, match="vocab.bpe:3: token 'hezz'"):
        GPT2Tokenizer.from_files(ENCODER, merges)
    bad_json = tmp_path / "tokenizer.json"
    bad_json.write_text('{\n "model": {\n  "type": "BPE",\n  "vocab": {,\n', encoding="utf-8")
    with pytest.raises(ValueError, match="tokenizer.json:4: not valid JSON"):
        Tokenizer.load_hf(bad_json)
    bad_json.write_text('{"model": {"type": "WordPiece"}}', encoding="utf-8")
    with pytest.raises(ValueError, match="tokenizer.json: model: expected a BPE model"):
        Tokenizer.load_hf(bad_json)


def test_bad_arguments():
    with pytest.raises(ValueError, match="vocab_size 200"):
        RegexTokenizer().train("abc", 200)
    with pytest.raises(ValueError, match="bad split pattern"):
        RegexTokenizer("(unclosed")
    tok = RegexTokenizer(special_tokens=[EOT])
    with pytest.raises(ValueError, match="already a special token"):
        tok.register_special_tokens([EOT])
    with pytest.raises(ValueError, match="taken"):
        tok.register_special_tokens({"<x>": 97})
    with pytest.raises(NotImplementedError):
        GPT2Tokenizer().train("abc", 300)


# ----- the chapter's example -----

def test_example_runs_tiny(tmp_path, capsys):
    example = load_example("06_tokenizer")
    example.main(["--vocab-size", "300", "--max-chars", "30000", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "bytes per token" in out and "[" in out
    assert Tokenizer.load(tmp_path / "tokenizer.bpe").vocab_size == 300
