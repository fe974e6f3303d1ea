"""Inputs validated at the door (issue 21): tokenizer files, from_pretrained configs, token shards,
training checkpoints and the permissions of written files. Each bad input gives a ValueError naming
the file and what is wrong, and nothing is half-loaded or half-written.
"""
import json
import os

import pytest

from tinytensor.tokenizer import GPT2Tokenizer, RegexTokenizer, Tokenizer
from tinytensor.tokenizer.files import to_hf_json

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ----- tokenizer files -----

GOOD_BPE = ["tinytensor-bpe v1", "class RegexTokenizer", 'pattern "\\\\S+|\\\\s+"', "bytes identity",
            "specials 1", '258 "<|endoftext|>"', "merges 2", "104 105 256", "256 33 257"]


@pytest.mark.parametrize("line, replacement, message", [
    (6, '2147483648 "<|endoftext|>"', r"id 2147483648 is not an integer in \[0, 2147483647\]"),
    (9, "256 33 2147483648", r"id 2147483648 is not an integer in \[0, 2147483647\]"),
    (4, "bytes " + " ".join(map(str, [2**31, *range(1, 256)])), r"integers in \[0, 2147483647\]"),
    (6, '99999999 "<|endoftext|>"', "id 99999999 is beyond the vocabulary: 259 tokens"),
    (9, "256 33 100000", "id 100000 is beyond the vocabulary"),
    (6, '258 ""', "non-empty string"),
    (6, "258 7", "non-empty string"),
])
def test_tinytensor_bpe_ids_and_specials(tmp_path, line, replacement, message):
    lines = list(GOOD_BPE)
    lines[line - 1] = replacement
    path = tmp_path / "bad.bpe"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=f"bad.bpe:{line}: .*{message}"):
        Tokenizer.load(path)
    assert os.listdir(tmp_path) == ["bad.bpe"]


def test_tinytensor_bpe_duplicate_special(tmp_path):
    lines = GOOD_BPE[:4] + ["specials 2", '258 "<|a|>"', '259 "<|a|>"'] + GOOD_BPE[6:]
    (tmp_path / "dup.bpe").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="dup.bpe:7: the special token '<|a|>' appears twice"):
        Tokenizer.load(tmp_path / "dup.bpe")


def _hf_file(tmp_path, added):
    tok = RegexTokenizer(special_tokens=["<|endoftext|>"])
    tok.train("hi hi hi there there", 260, special_tokens=["<|endoftext|>"])
    data = to_hf_json(tok)
    data["added_tokens"] = added
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path, tok.vocab_size


@pytest.mark.parametrize("added, message", [
    ([{"id": -1, "content": "<|a|>"}], r"added_tokens\[0\]: special token '<\|a\|>': id -1 is not an integer"),
    ([{"id": 2**31, "content": "<|a|>"}], r"added_tokens\[0\]: .*id 2147483648 is not an integer"),
    ([{"id": True, "content": "<|a|>"}], r"added_tokens\[0\]: .*id True is not an integer"),
    ([{"id": 259, "content": ""}], r"added_tokens\[0\]: a special token must be a non-empty string"),
    ([{"id": 259, "content": "<|a|>"}, {"id": 259, "content": "<|b|>"}], r"added_tokens\[1\]: .*id 259 is already"),
    ([{"id": 259, "content": "<|a|>"}, {"id": 260, "content": "<|a|>"}], r"added_tokens\[1\]: .* appears twice"),
    ([{"id": 10**6, "content": "<|a|>"}], "model.vocab: id 1000000 is beyond the vocabulary"),
])
def test_hf_json_ids_and_specials(tmp_path, added, message):
    path, _ = _hf_file(tmp_path, added)
    with pytest.raises(ValueError, match=f"tokenizer.json: {message}"):
        Tokenizer.load_hf(path)


def test_hf_json_good_specials_load(tmp_path):
    path, _ = _hf_file(tmp_path, [{"id": 259, "content": "<|a|>"}])
    assert Tokenizer.load_hf(path).special_tokens == {"<|a|>": 259}


def test_gpt2_encoder_ids(tmp_path):
    encoder = tmp_path / "encoder.json"
    merges = os.path.join(ROOT, "examples", "data", "gpt2", "vocab.bpe")
    with open(os.path.join(ROOT, "examples", "data", "gpt2", "encoder.json"), encoding="utf-8") as f:
        good = json.load(f)
    for bad, message in [(2**31, "ids in \\[0, 2147483647\\]"), (10**7, "id 10000000 is beyond the vocabulary")]:
        encoder.write_text(json.dumps({**good, "<|endoftext|>": bad}), encoding="utf-8")
        with pytest.raises(ValueError, match=f"encoder.json: .*{message}"):
            GPT2Tokenizer.from_files(encoder, merges)
