"""GPT2Tokenizer: OpenAI's GPT-2 tokenizer, loaded from its original encoder.json and vocab.bpe.

encoder.json maps token strings to ids; vocab.bpe lists 50,000 merges ("Ġ t" = merge 'Ġ' and 't'),
highest priority first, after a "#version" line. Token strings are bytes written with GPT-2's
byte-to-unicode map (bytes_to_unicode in base.py): 'Ġ' is a space, 'Ċ' a newline. So:
  - byte b is token encoder[byte_to_unicode[b]] (GPT-2 does not number bytes 0..255 in order);
  - merge number r joins encoder[a] and encoder[b] into encoder[a + b], with rank r;
  - what is left in encoder ("<|endoftext|>" = 50256) is a special token.
With the GPT-2 split pattern and merges applied lowest rank first, the ids equal GPT-2's exactly
(the tests check them against Hugging Face `tokenizers` on the same files).
Leaves out: training (GPT-2's vocabulary is fixed; train a RegexTokenizer(GPT2_SPLIT_PATTERN)).
"""
from typing import Dict, List

from tinytensor.jsonfile import read_json

from .common import GPT2_SPLIT_PATTERN, Merge, PathLike, bytes_to_unicode
from .files import MAX_ID, is_token_id
from .regex import RegexTokenizer


class GPT2Tokenizer(RegexTokenizer):
    """GPT-2's exact tokenizer. Build it with GPT2Tokenizer.from_files(encoder_json, vocab_bpe)."""

    def __init__(self) -> None:
        super().__init__(pattern=GPT2_SPLIT_PATTERN)        # empty until from_files or load

    @classmethod
    def from_files(cls, encoder_json: PathLike, vocab_bpe: PathLike) -> "GPT2Tokenizer":
        """Loads GPT-2's files; a malformed one raises ValueError naming the file (and line)."""
        encoder = _read_encoder(encoder_json)
        to_unicode = bytes_to_unicode()
        missing = [b for b in range(256) if to_unicode[b] not in encoder]
        if missing:
            raise ValueError(f"{encoder_json}: no token for byte {missing[0]} ({to_unicode[missing[0]]!r})")
        byte_ids = [encoder[to_unicode[b]] for b in range(256)]
        merges = _read_merges(vocab_bpe, encoder)
        used = set(byte_ids) | {new for _, _, new in merges}
        specials = {text: i for text, i in encoder.items() if i not in used}
        tok = cls()
        tok._set_parts(GPT2_SPLIT_PATTERN, byte_ids, specials, merges)
        return tok

    def train(self, *args, **kw) -> None:
        raise NotImplementedError("GPT2Tokenizer is pretrained; train a RegexTokenizer(GPT2_SPLIT_PATTERN) instead")


def _read_encoder(path: PathLike) -> Dict[str, int]:
    encoder = read_json(path)
    if not isinstance(encoder, dict) or not all(is_token_id(i) for i in encoder.values()):
        raise ValueError(f"{path}: expected a JSON object mapping token strings to ids in [0, {MAX_ID}]")
    if len(set(encoder.values())) != len(encoder):
        raise ValueError(f"{path}: two tokens share an id")
    if encoder and max(encoder.values()) >= 2 * len(encoder):
        raise ValueError(f"{path}: id {max(encoder.values())} is beyond the vocabulary: {len(encoder)} tokens, "
                         f"so ids must be < {2 * len(encoder)}")
    return encoder


def _read_merges(path: PathLike, encoder: Dict[str, int]) -> List[Merge]:
    """vocab.bpe: '#version: 0.2', then one 'a b' merge per line; blank lines are skipped."""
    merges: List[Merge] = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            line = line.rstrip("\r\n")
            if not line or (n == 1 and line.startswith("#version")):
                continue
            parts = line.split(" ")
            if len(parts) != 2 or not all(parts):
                raise ValueError(f"{path}:{n}: expected two tokens separated by one space, got {line!r}")
            a, b = parts
            for token in (a, b, a + b):
                if token not in encoder:
                    raise ValueError(f"{path}:{n}: token {token!r} is not in the encoder (encoder.json)")
            merges.append((encoder[a], encoder[b], encoder[a + b]))
    return merges
