"""What the tokenizer modules share: the file format's version line, the Merge and PathLike types,
GPT-2's byte-to-unicode map and the split patterns (regex.py explains them).

A leaf module (it imports nothing of the package), so the modules import in one direction only:
common <- files <- base <- basic, regex <- gpt2.
"""
import os
from typing import Dict, Tuple, Union

FORMAT_VERSION = "tinytensor-bpe v1"
Merge = Tuple[int, int, int]            # (a, b, new id)
PathLike = Union[str, "os.PathLike[str]"]


def bytes_to_unicode() -> Dict[int, str]:
    """GPT-2's reversible map from the 256 byte values to printable characters.

    Bytes that print as themselves (and are not space) map to themselves; the other 68 (control
    characters, space, 0x7F-0xA0, 0xAD) map to chr(256), chr(257), ... in byte order. So a token's
    bytes can be written as an ordinary string without whitespace: space becomes 'Ġ'.
    """
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, shifted = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + shifted)
            shifted += 1
    return table


# The split patterns of GPT-2 and of GPT-4 (cl100k); regex.py explains what they do.
GPT2_SPLIT_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
GPT4_SPLIT_PATTERN = (r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*|"""
                      r"""\s*[\r\n]|\s+(?!\S)|\s+""")
