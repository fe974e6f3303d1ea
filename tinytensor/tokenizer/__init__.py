"""tinytensor.tokenizer: byte-level BPE tokenizers (chapter 06), fast to train and GPT-2 exact.

    BasicTokenizer   BPE on raw bytes (no split)
    RegexTokenizer   split with a regex (GPT-4's by default, or GPT2_SPLIT_PATTERN), BPE per chunk,
                     special tokens with tiktoken's allowed_special / disallowed_special rules
    GPT2Tokenizer    GPT-2's own encoder.json + vocab.bpe, same ids as GPT-2

    tok = RegexTokenizer()
    tok.train(text, vocab_size=4096, special_tokens=["<|endoftext|>"])
    ids = tok.encode("Once upon a time<|endoftext|>", allowed_special="all")
    tok.decode(ids); tok.save("tok.bpe"); Tokenizer.load("tok.bpe"); tok.save_hf("tokenizer.json")

An application of the engine: it imports only the compiled extension tinytensor._C (ops_c/bpe.cpp).
"""
from .base import Tokenizer
from .basic import BasicTokenizer
from .common import GPT2_SPLIT_PATTERN, GPT4_SPLIT_PATTERN, bytes_to_unicode
from .regex import RegexTokenizer
from .gpt2 import GPT2Tokenizer

__all__ = ["Tokenizer", "BasicTokenizer", "RegexTokenizer", "GPT2Tokenizer", "GPT2_SPLIT_PATTERN",
           "GPT4_SPLIT_PATTERN", "bytes_to_unicode"]
