"""Reference solutions to the exercises of lesson 06, tokenization (docs/06_tokenizer.md).

1. Byte-level BPE training in plain Python, with the same rules as the C++ loop (ops_c/bpe.cpp).
2. Encoding with a list of merges in plain Python: the lowest-ranked adjacent pair, leftmost first.
3. GPT-2's map from the 256 byte values to printable characters.

Slow but short: they recount everything at every step, where the C++ code updates counts in place.
tests/test_lesson_06_tokenizer.py checks them against tinytensor's BasicTokenizer and GPT-2's files.
"""
from collections import Counter
from typing import Dict, List, Tuple

Merge = Tuple[int, int, int]  # (a, b, new id): wherever a is followed by b, write new


def pair_counts(ids: List[int]) -> Counter:
    """How often each adjacent pair occurs (overlaps count: [5, 5, 5] holds the pair (5, 5) twice)."""
    return Counter(zip(ids, ids[1:]))


def merge_pair(ids: List[int], pair: Tuple[int, int], new: int) -> List[int]:
    """Every occurrence of pair, left to right, replaced by new: [5, 5, 5] -> [new, 5]."""
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
            out.append(new)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


# ---- exercise 1: training ------------------------------------------------------------------------

def train_bpe(text: str, n_new: int) -> List[Merge]:
    """The merges BasicTokenizer.train(text, 256 + n_new) learns, found the slow way.

    Each round merges the most frequent adjacent pair; among equal counts, the smallest pair (a, b).
    Like the C++ loop, it guards against merged bytes that already are a token (say "ab" + "c" after
    "a" + "bc"): that token's id is reused, the rule is recorded but is no new token, and a rule seen
    before is not recorded again. (Rare: random texts tried while writing the tests never triggered it.)
    Stops after n_new new tokens, or earlier when no pair is left.
    """
    ids = list(text.encode("utf-8"))
    token_bytes: Dict[int, bytes] = {i: bytes([i]) for i in range(256)}
    id_of: Dict[bytes, int] = {b: i for i, b in token_bytes.items()}
    merges: List[Merge] = []
    seen = set()
    added = 0
    while added < n_new:
        counts = pair_counts(ids)
        if not counts:
            break
        a, b = min(counts, key=lambda p: (-counts[p], p))  # highest count, then smallest (a, b)
        joined = token_bytes[a] + token_bytes[b]
        new = id_of.get(joined)
        if new is None:
            new = len(token_bytes)
            token_bytes[new], id_of[joined] = joined, new
            added += 1
        if (a, b) not in seen:
            merges.append((a, b, new))
            seen.add((a, b))
        ids = merge_pair(ids, (a, b), new)
    return merges


# ---- exercise 2: encoding ------------------------------------------------------------------------

def encode_bpe(text: str, merges: List[Merge]) -> List[int]:
    """Token ids of text: apply the lowest-ranked applicable merge at its leftmost place, until none applies."""
    rank = {(a, b): r for r, (a, b, _) in enumerate(merges)}
    result = {(a, b): new for a, b, new in merges}
    ids = list(text.encode("utf-8"))
    while len(ids) >= 2:
        ranked = [(rank[p], i) for i, p in enumerate(zip(ids, ids[1:])) if p in rank]
        if not ranked:
            break
        _, i = min(ranked)  # lowest rank; among equal ranks the leftmost position
        ids[i:i + 2] = [result[(ids[i], ids[i + 1])]]
    return ids


def decode_bpe(ids: List[int], merges: List[Merge]) -> str:
    """Text of ids: each token's bytes, built up from the merges."""
    token_bytes = {i: bytes([i]) for i in range(256)}
    for a, b, new in merges:
        token_bytes[new] = token_bytes[a] + token_bytes[b]
    return b"".join(token_bytes[i] for i in ids).decode("utf-8", errors="replace")


# ---- exercise 3: GPT-2's printable bytes ---------------------------------------------------------

def gpt2_byte_chars() -> Dict[int, str]:
    """Byte value -> the character GPT-2's files write it as.

    The 188 bytes that print as a visible Latin-1 character ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for
    themselves; the other 68 (control characters, space, DEL, 0x80-0xA0, the soft hyphen 0xAD) get
    chr(256), chr(257), ... in byte order. So space (32) becomes chr(256 + 32) = 'Ġ' and '\\n' 'Ċ'.
    """
    visible = set(range(ord("!"), ord("~") + 1)) | set(range(ord("¡"), ord("¬") + 1)) | set(range(ord("®"), 256))
    table, next_free = {}, 256
    for b in range(256):
        if b in visible:
            table[b] = chr(b)
        else:
            table[b] = chr(next_free)
            next_free += 1
    return table
