"""BasicTokenizer: byte-level BPE on the raw UTF-8 bytes of the whole text, with no splitting.

The simplest BPE there is: the text is one long sequence of bytes and merges may cross words,
spaces and punctuation (so it learns tokens like "e t" or "d. "). It is here to show what
RegexTokenizer's split adds. Training treats the text as a single chunk, so the C++ loop works on
every byte position (still fast: only the pairs around each rewritten position are updated).
Leaves out: special tokens in encode (their text is encoded as ordinary bytes; decode knows them).
"""
from typing import List

from .base import Tokenizer


class BasicTokenizer(Tokenizer):
    """Byte-level BPE over the whole text as one sequence of bytes."""

    def train(self, text: str, vocab_size: int, verbose: bool = False) -> None:
        """Learns vocab_size - 256 merges from text (fewer if the text runs out of pairs)."""
        if vocab_size < 256:
            raise ValueError(f"train: vocab_size {vocab_size} < 256 (one token per byte)")
        self.special_tokens = {}
        self._train_chunks([text.encode("utf-8", errors="surrogatepass")], [1], vocab_size - 256, verbose)

    def encode(self, text: str) -> List[int]:
        """The token ids of text (lone surrogates are encoded as their surrogatepass bytes)."""
        return self._encoder.encode(text.encode("utf-8", errors="surrogatepass"))

    encode_ordinary = encode
