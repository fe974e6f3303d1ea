"""GPT-2 on tinytensor: the model of chapter 05, with nanoGPT's names so that nanoGPT users feel at home.

    config = GPTConfig(block_size=128, vocab_size=4096, n_layer=2, n_head=4, n_embd=128)
    model = GPT(config)
    logits, loss = model(idx, targets)          # idx, targets: (B, T) int64
    cache = model.make_cache(B); logits, _ = model(idx, cache=cache)   # chapter 12: (B, T, V), then 1 token/step
    out = model.generate(idx, 100, temperature=0.8, top_k=50, seed=0)
    model.save_pretrained("dir"); GPT.from_pretrained("dir")   # Hugging Face's GPT-2 layout

The architecture is GPT-2's: token + learned position embeddings, n_layer pre-norm blocks
(x + attn(ln_1(x)), then x + mlp(ln_2(x))), a final LayerNorm and a language-model head that shares
its weight with the token embedding. Initialisation follows GPT-2: N(0, 0.02) everywhere, with the
projections that write into the residual stream (attn.c_proj, mlp.c_proj) scaled by 1/sqrt(2 * n_layer)
so that the residual stream's variance does not grow with depth.

CausalSelfAttention lives here and not in tinytensor.nn: PyTorch's nn has no such module, and this
one is GPT-2's (a fused c_attn projection, names that match GPT-2 checkpoints).
With `cache=` (a tinytensor.nn.KVCache from make_cache, chapter 12) the forward takes only the new tokens:
their positions continue from the cache's length, each layer appends their keys and values to the cache
and attends to all of them (F.decode_attention), and the logits of every new position come back.
Left out: flash attention, and loading OpenAI's TensorFlow checkpoints.
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from typing import Optional

import tinytensor as tt
import tinytensor.nn as nn
import tinytensor.nn.functional as F
from tinytensor.io import read_header
from tinytensor.jsonfile import read_json

from models.generate import generate_tensor


@dataclass
class GPTConfig:
    block_size: int = 1024    # the longest context the model reads (number of learned positions)
    vocab_size: int = 50257   # GPT-2's BPE vocabulary (nanoGPT pads it to 50304 for speed)
    n_layer: int = 12         # transformer blocks
    n_head: int = 12          # attention heads per block; n_embd must be a multiple of n_head
    n_embd: int = 768         # the width of the residual stream (C)
    dropout: float = 0.0      # after embeddings, attention weights, and each residual branch (0 for pretraining)
    bias: bool = True         # biases in Linear layers and LayerNorms, as GPT-2; False is a little faster


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where position t sees positions 0..t only."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        if config.n_embd % config.n_head:
            raise ValueError(f"CausalSelfAttention: n_embd {config.n_embd} is not a multiple of n_head {config.n_head}")
        self.n_head, self.n_embd, self.dropout = config.n_head, config.n_embd, config.dropout
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)  # q, k, v in one matmul
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: tt.Tensor, cache: Optional[nn.KVCache] = None, layer: int = 0) -> tt.Tensor:
        B, T, C = x.shape
        nh, hs = self.n_head, C // self.n_head
        q, k, v = self.c_attn(x).split(C, dim=2)  # 3 x (B, T, C)
        q = q.reshape(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = k.reshape(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
        v = v.reshape(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
        if cache is None:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0,
                                               is_causal=True)  # (B, nh, T, hs)
        else:  # chapter 12: keep this step's k, v and attend to every position cached so far
            k, v = cache.update(layer, k, v)  # (B, nh, cache.length + T, hs)
            y = F.decode_attention(q, k, v, start=cache.start)  # (B, nh, T, hs)
        y = y.transpose(1, 2).reshape(B, T, C)  # (B, T, C): the heads side by side again
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    """Position-wise feed-forward: widen 4x, GELU (tanh approximation, as GPT-2), project back."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: tt.Tensor) -> tt.Tensor:
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x), approximate="tanh")))


def _layer_norm(config: GPTConfig) -> nn.LayerNorm:
    return nn.LayerNorm(config.n_embd, bias=config.bias)


class Block(nn.Module):
    """A pre-norm transformer block: attention then MLP, each added to the residual stream."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1, self.attn = _layer_norm(config), CausalSelfAttention(config)
        self.ln_2, self.mlp = _layer_norm(config), MLP(config)

    def forward(self, x: tt.Tensor, cache: Optional[nn.KVCache] = None, layer: int = 0) -> tt.Tensor:
        x = x + self.attn(self.ln_1(x), cache, layer)
        return x + self.mlp(self.ln_2(x))


def adamw_decaying_matrices(model: nn.Module, weight_decay: float, learning_rate: float, betas) -> tt.optim.AdamW:
    """AdamW over the trainable parameters, decaying the 2-D ones only (nanoGPT's configure_optimizers)."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
              {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]
    return tt.optim.AdamW(groups, lr=learning_rate, betas=betas)


class GPT(nn.Module):
    """GPT-2: forward(idx, targets=None) -> (logits, loss), as nanoGPT's."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            wpe=nn.Embedding(config.block_size, config.n_embd),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
            ln_f=_layer_norm(config),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # weight tying: one matrix reads and writes tokens
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):  # residual projections: GPT-2's 1/sqrt(2 * n_layer)
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0.0, 0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, 0.0, 0.02)

    def get_num_params(self, non_embedding: bool = True) -> int:
        """Parameters, without the position embeddings by default (the token ones are the tied lm_head)."""
        n = self.num_parameters()
        return n - self.transformer.wpe.weight.numel() if non_embedding else n

    def forward(self, idx: tt.Tensor, targets: Optional[tt.Tensor] = None, cache: Optional[nn.KVCache] = None):
        """(logits, loss). Without a cache or targets only the last position's logits (B, 1, V) are made;
        with a cache (make_cache), idx holds the new tokens only and the logits of all of them come back."""
        B, T = idx.shape
        if T > self.config.block_size:
            raise ValueError(f"GPT: sequence of length {T} is longer than block_size {self.config.block_size}")
        if cache is None:
            pos = tt.arange(T, device=idx.device)  # (T,)
        else:
            pos = cached_positions(cache, B, T, "GPT")  # (T,), or (B, T) with left padding
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))  # (B, T, C)
        for i, block in enumerate(self.transformer.h):
            x = block(x, cache, i)
        x = self.transformer.ln_f(x)
        if cache is not None:
            cache.advance(T)
        if targets is None and cache is None:  # inference: only the last position's logits are needed
            return self.lm_head(x[:, -1:, :]), None  # (B, 1, V)
        logits = self.lm_head(x)  # (B, T, V)
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.reshape(B * T, -1), targets.reshape(B * T), ignore_index=-1)
        return logits, loss

    def make_cache(self, batch_size: int, max_len: Optional[int] = None, pad=None) -> nn.KVCache:
        """An empty kv-cache for this model (chapter 12): max_len positions (block_size by default) per row.

        pad: optional left padding per row (B ints): row b's first pad[b] tokens are padding."""
        c = self.config
        return new_cache(self.transformer.wte.weight, c.n_layer, batch_size, c.n_head, c.n_embd // c.n_head,
                         c.block_size, max_len, pad, "GPT")

    def configure_optimizers(self, weight_decay: float, learning_rate: float, betas=(0.9, 0.95),
                             device_type: str = "cpu") -> tt.optim.AdamW:
        """AdamW that decays the 2-D weights (matmuls, embeddings) and not the biases and norm gains."""
        return adamw_decaying_matrices(self, weight_decay, learning_rate, betas)

    def crop_block_size(self, block_size: int) -> None:
        """Keep only the first block_size positions (to use a checkpoint with shorter contexts)."""
        if block_size > self.config.block_size:
            raise ValueError(f"crop_block_size: {block_size} > block_size {self.config.block_size}")
        self.config.block_size = block_size
        wpe = self.transformer.wpe
        wpe.weight = nn.Parameter(wpe.weight.detach()[:block_size].contiguous())
        wpe.num_embeddings = block_size

    def generate(self, idx: tt.Tensor, max_new_tokens: int, temperature: float = 1.0, top_k: Optional[int] = None,
                 top_p: Optional[float] = None, seed: Optional[int] = None,
                 generator: Optional[tt.Generator] = None, eos_token: Optional[int] = None) -> tt.Tensor:
        """Extend idx (B, T) by max_new_tokens sampled tokens, feeding each back in (with the kv-cache).

        temperature 0 picks the most likely token; top_k keeps the k most likely, top_p the smallest set
        whose probability reaches p. A seed (or generator) makes the samples reproducible; by default
        tinytensor's default generator is used. Generation stops early once every row has emitted eos_token
        (rows that ended earlier are filled with eos_token). models/generate.py has the full decoders.
        """
        return generate_tensor(self, idx, max_new_tokens, temperature, top_k, top_p, seed, generator, eos_token)

    # ---- Hugging Face GPT-2 checkpoints ------------------------------------------------------------

    @classmethod
    def from_pretrained(cls, path: str, dropout: float = 0.0) -> "GPT":
        """Load a Hugging Face GPT-2 directory (config.json + model.safetensors) written by any GPT-2 tool.

        A `transformer.` prefix is stripped, Conv1D weights (stored (in, out)) are transposed to Linear's
        (out, in), the attn.bias / attn.masked_bias mask buffers are ignored and lm_head is tied to wte.
        With "bias": false in config.json (save_pretrained of a bias-free model) the file's biases must be
        zero and the model is built without them, as it was trained (fewer operations per step).
        Every shape is checked; a missing or unexpected tensor raises ValueError naming it. config.json's
        sizes are checked (positive integers up to 2**24, n_embd a multiple of n_head) and compared with
        the weights file's header before the model is built, so a bad file allocates nothing.
        """
        config = _config_from_hf(os.path.join(path, "config.json"), dropout)
        _check_header(os.path.join(path, "model.safetensors"), config)   # before any allocation
        model = cls(config)
        model.load_state_dict(_state_from_hf(os.path.join(path, "model.safetensors"), model), strict=True)
        return model

    def save_pretrained(self, path: str) -> None:
        """Write config.json + model.safetensors in Hugging Face's GPT-2 layout, loadable by GPT-2 tools.

        A bias=False model is written with zero biases (GPT-2's layout always has them: same function) and
        "bias": false in config.json, a key of ours that GPT-2 tools ignore and from_pretrained reads.
        """
        c = self.config
        hf = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": c.vocab_size,
              "n_positions": c.block_size, "n_ctx": c.block_size, "n_embd": c.n_embd, "n_layer": c.n_layer,
              "n_head": c.n_head, "n_inner": None, "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5,
              "resid_pdrop": c.dropout, "embd_pdrop": c.dropout, "attn_pdrop": c.dropout,
              "initializer_range": 0.02, "tie_word_embeddings": True, "torch_dtype": "float32",
              # GPT-2's <|endoftext|> id, or none for a smaller vocabulary (HF's default 50256 would not exist)
              "bos_token_id": 50256 if c.vocab_size > 50256 else None,
              "eos_token_id": 50256 if c.vocab_size > 50256 else None,
              "bias": c.bias}
        tensors = {}
        for name, t in self.state_dict().items():
            if name == "lm_head.weight":
                continue  # tied to wte, as GPT-2 checkpoints store it
            t = t.detach()
            if name.endswith(_CONV1D):
                t = t.t()  # Linear (out, in) -> Conv1D (in, out)
            tensors["transformer." + name[len("transformer."):]] = t.contiguous()
        if not c.bias:
            for name, shape in _expected_hf_shapes(c).items():
                tensors.setdefault("transformer." + name, tt.zeros(shape))
        os.makedirs(path, exist_ok=True)
        tt.save(tensors, os.path.join(path, "model.safetensors"), metadata={"format": "pt"})
        with open(os.path.join(path, "config.json"), "w", encoding="utf-8") as f:
            json.dump(hf, f, indent=2)


def new_cache(weight: tt.Tensor, n_layer: int, batch_size: int, n_kv_heads: int, head_dim: int, block_size: int,
              max_len: Optional[int], pad, who: str) -> nn.KVCache:
    """A KVCache in weight's dtype and device, max_len (default block_size) checked against block_size."""
    max_len = block_size if max_len is None else max_len
    if max_len > block_size:
        raise ValueError(f"{who}.make_cache: max_len {max_len} is longer than block_size {block_size}")
    return nn.KVCache(n_layer, batch_size, n_kv_heads, max_len, head_dim, dtype=weight.dtype, device=weight.device,
                      pad=pad)


def cached_positions(cache: nn.KVCache, B: int, T: int, who: str) -> tt.Tensor:
    """The positions of T new tokens after the cached ones ((T,), or (B, T) with left padding); checks they fit."""
    if cache.batch_size != B:
        raise ValueError(f"{who}: a batch of {B} rows does not match the cache's {cache.batch_size}")
    cache.check_room(T, who)
    return cache.positions(T)


_CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
_BUFFER = re.compile(r"h\.\d+\.attn\.(bias|masked_bias)")  # GPT-2's causal-mask buffers, not weights
MAX_SIZE = 2**24  # the largest vocab_size, n_positions, n_embd, n_head or n_layer from_pretrained accepts


def _config_from_hf(path: str, dropout: float) -> GPTConfig:
    try:
        hf = read_json(path)
    except ValueError as e:
        raise ValueError(f"from_pretrained: {e}") from None
    if not isinstance(hf, dict):
        raise ValueError(f"from_pretrained: {path}: expected a JSON object, got {type(hf).__name__}")
    act = hf.get("activation_function", "gelu_new")
    if act not in ("gelu_new", "gelu_pytorch_tanh", "gelu_fast"):
        raise ValueError(f"from_pretrained: {path}: activation_function {act!r} is not GPT-2's tanh GELU")
    if hf.get("n_inner") not in (None, 4 * hf.get("n_embd", 0)):
        raise ValueError(f"from_pretrained: {path}: n_inner {hf['n_inner']} != 4 * n_embd is not supported")
    bias = hf.get("bias", True)
    if not isinstance(bias, bool):
        raise ValueError(f"from_pretrained: {path}: bias must be true or false, got {bias!r}")
    sizes = {"n_positions": hf.get("n_positions", hf.get("n_ctx"))}
    sizes.update((key, hf.get(key)) for key in ("vocab_size", "n_layer", "n_head", "n_embd"))
    for key, value in sizes.items():
        if value is None:
            raise ValueError(f"from_pretrained: {path} has no {key!r}")
        if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= MAX_SIZE:
            raise ValueError(f"from_pretrained: {path}: {key} must be an integer in [1, {MAX_SIZE}], got {value!r}")
    if sizes["n_embd"] % sizes["n_head"]:
        raise ValueError(f"from_pretrained: {path}: n_embd {sizes['n_embd']} is not a multiple of "
                         f"n_head {sizes['n_head']}")
    return GPTConfig(block_size=sizes["n_positions"], vocab_size=sizes["vocab_size"], n_layer=sizes["n_layer"],
                     n_head=sizes["n_head"], n_embd=sizes["n_embd"], dropout=dropout, bias=bias)


def _check_header(path: str, config: GPTConfig) -> None:
    """The weights file's header (names and shapes) against the config, reading no tensor data."""
    found = {}
    for name, (_, shape) in read_header(path).items():
        short = name[len("transformer."):] if name.startswith("transformer.") else name
        if not (_BUFFER.fullmatch(short) or short == "lm_head.weight"):
            found[short] = shape
    expected = _expected_hf_shapes(config)
    missing, unexpected = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
    if missing or unexpected:
        raise ValueError(f"from_pretrained: {path}: missing tensors {missing[:5]}, unexpected {unexpected[:5]}")
    for short, shape in found.items():
        if shape != expected[short]:
            raise ValueError(f"from_pretrained: {path}: {short} has shape {shape}, config.json needs {expected[short]}")


def _expected_hf_shapes(c: GPTConfig) -> dict:
    """HF name (without prefix) -> shape, for every tensor GPT-2's layout holds (lm_head excluded)."""
    C = c.n_embd
    shapes = {"wte.weight": (c.vocab_size, C), "wpe.weight": (c.block_size, C), "ln_f.weight": (C,),
              "ln_f.bias": (C,)}
    for i in range(c.n_layer):
        for name, shape in (("ln_1.weight", (C,)), ("ln_1.bias", (C,)), ("ln_2.weight", (C,)), ("ln_2.bias", (C,)),
                            ("attn.c_attn.weight", (C, 3 * C)), ("attn.c_attn.bias", (3 * C,)),
                            ("attn.c_proj.weight", (C, C)), ("attn.c_proj.bias", (C,)),
                            ("mlp.c_fc.weight", (C, 4 * C)), ("mlp.c_fc.bias", (4 * C,)),
                            ("mlp.c_proj.weight", (4 * C, C)), ("mlp.c_proj.bias", (C,))):
            shapes[f"h.{i}.{name}"] = shape
    return shapes


def _state_from_hf(path: str, model: GPT) -> dict:
    """The HF file's tensors renamed and transposed into this model's state_dict names.

    Names and shapes were checked by _check_header; load_state_dict(strict=True) checks them again.
    """
    state = {}
    for name, t in tt.load(path).items():
        short = name[len("transformer."):] if name.startswith("transformer.") else name
        if _BUFFER.fullmatch(short) or short == "lm_head.weight":
            continue  # causal-mask buffers; the head is tied to wte
        if not model.config.bias and short.endswith(".bias"):  # the zeros that stand for no bias
            if t.abs().amax().item() != 0:
                raise ValueError(f"from_pretrained: {path}: config.json says bias false, but {short} is not zero")
            continue
        t = t.to(tt.float32)
        state["transformer." + short] = t.t().contiguous() if short.endswith(_CONV1D) else t
    state["lm_head.weight"] = state["transformer.wte.weight"]
    return state
