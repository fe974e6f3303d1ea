"""A Llama-style transformer on tinytensor (the appendix): RoPE, RMSNorm, grouped-query attention, SwiGLU, MoE.

    config = LlamaConfig(block_size=128, vocab_size=4096, n_layer=2, n_head=4, n_kv_heads=2, n_embd=128)
    model = Llama(config)
    logits, loss = model(idx, targets)      # as GPT: (B, T) int64 in, (logits, loss) out
    cache = model.make_cache(B); logits, _ = model(idx, cache=cache)   # chapter 12, as GPT's

What changes from GPT-2 (models/gpt2.py), one idea each:
- RMSNorm instead of LayerNorm: scale by 1/rms(x), no mean subtraction and no bias.
- Rotary position embeddings (RoPE) instead of learned positions: q and k are rotated, pair of
  channels by pair, by an angle proportional to the position, so q_m . k_n depends on m - n only.
- Grouped-query attention: n_kv_heads <= n_head key/value heads, each shared by n_head / n_kv_heads
  query heads (a smaller kv-cache); n_kv_heads == n_head is plain multi-head attention.
- SwiGLU MLP: w2(silu(w1 x) * w3 x), with a hidden size of about 8/3 * n_embd.
- Optionally a mixture of experts (n_experts > 0): a router picks the top-k of n_experts SwiGLU MLPs
  for each token and mixes their outputs; a load-balancing loss (Switch Transformer's) keeps the
  router from sending every token to the same expert.
With a kv-cache (chapter 12) only n_kv_heads heads are stored, and RoPE rotates each new q and k by its
absolute position, read from the cache (per row with left padding).
Left out: RoPE scaling for long contexts, expert capacity limits, loading Meta's checkpoints.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

import tinytensor as tt
import tinytensor.nn as nn
import tinytensor.nn.functional as F

from models.gpt2 import adamw_decaying_matrices, cached_positions, new_cache
from models.generate import generate_tensor


@dataclass
class LlamaConfig:
    block_size: int = 1024             # the longest context (RoPE tables are built this long)
    vocab_size: int = 32000            # Llama 2's tokenizer
    n_layer: int = 12                  # transformer blocks
    n_head: int = 12                   # query heads
    n_kv_heads: Optional[int] = None   # key/value heads (grouped-query attention); None: n_head (plain MHA)
    n_embd: int = 768                  # the residual stream's width (C)
    ffn_hidden: Optional[int] = None   # SwiGLU hidden size; None: 8/3 * n_embd rounded up to multiple_of
    multiple_of: int = 64              # rounding of the default ffn_hidden
    norm_eps: float = 1e-5             # RMSNorm's epsilon
    rope_theta: float = 10000.0        # RoPE base: pair i turns by position * theta^(-2i/hs)
    dropout: float = 0.0               # on attention weights and residual branches
    tie_embeddings: bool = True        # lm_head shares the token embedding (Llama does not; small models gain)
    n_experts: int = 0                 # 0: a dense SwiGLU MLP; else a mixture of this many experts
    n_experts_per_tok: int = 2         # experts each token is routed to (top-k)
    aux_loss_coef: float = 0.01        # weight of the load-balancing loss added to the training loss

    def hidden_size(self) -> int:
        if self.ffn_hidden is not None:
            return self.ffn_hidden
        h = int(8 * self.n_embd / 3)
        return self.multiple_of * math.ceil(h / self.multiple_of)


# ---- rotary position embeddings -----------------------------------------------------------------

def rope_tables(block_size: int, head_size: int, theta: float = 10000.0):
    """cos and sin tables (block_size, head_size): position t, channel pair i turns by t * theta^(-2i/hs)."""
    if head_size % 2:
        raise ValueError(f"RoPE: head size must be even, got {head_size}")
    inv_freq = theta ** (-np.arange(0, head_size, 2, dtype=np.float64) / head_size)  # (hs/2,)
    angles = np.outer(np.arange(block_size, dtype=np.float64), inv_freq)  # (T, hs/2)
    angles = np.concatenate([angles, angles], axis=1)  # (T, hs): channel i and i + hs/2 form a pair
    return tt.from_numpy(np.cos(angles).astype(np.float32)), tt.from_numpy(np.sin(angles).astype(np.float32))


def apply_rope(x: tt.Tensor, cos: tt.Tensor, sin: tt.Tensor) -> tt.Tensor:
    """Rotate each channel pair (i, i + hs/2) of x (B, nh, T, hs) by its position's angle (cos, sin: (T, hs))."""
    half = x.shape[-1] // 2
    rotated = tt.cat([-x[..., half:], x[..., :half]], dim=-1)  # (B, nh, T, hs): (x1, x2) -> (-x2, x1)
    return x * cos + rotated * sin


# ---- layers -----------------------------------------------------------------------------------------

class Attention(nn.Module):
    """Causal grouped-query attention with RoPE on q and k."""

    def __init__(self, config: LlamaConfig):
        super().__init__()
        self.n_head = config.n_head
        self.n_kv = config.n_kv_heads or config.n_head
        if config.n_embd % config.n_head or config.n_head % self.n_kv:
            raise ValueError(f"Attention: need n_embd ({config.n_embd}) % n_head ({config.n_head}) == 0 and "
                             f"n_head % n_kv_heads ({self.n_kv}) == 0")
        self.hs = config.n_embd // config.n_head
        self.dropout = config.dropout
        self.wq = nn.Linear(config.n_embd, self.n_head * self.hs, bias=False)
        self.wk = nn.Linear(config.n_embd, self.n_kv * self.hs, bias=False)
        self.wv = nn.Linear(config.n_embd, self.n_kv * self.hs, bias=False)
        self.wo = nn.Linear(self.n_head * self.hs, config.n_embd, bias=False)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: tt.Tensor, cos: tt.Tensor, sin: tt.Tensor, cache: Optional[nn.KVCache] = None,
                layer: int = 0) -> tt.Tensor:
        B, T, C = x.shape
        q = self.wq(x).reshape(B, T, self.n_head, self.hs).transpose(1, 2)  # (B, nh, T, hs)
        k = self.wk(x).reshape(B, T, self.n_kv, self.hs).transpose(1, 2)  # (B, n_kv, T, hs)
        v = self.wv(x).reshape(B, T, self.n_kv, self.hs).transpose(1, 2)  # (B, n_kv, T, hs)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is None:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0,
                                               is_causal=True, enable_gqa=True)  # (B, nh, T, hs)
        else:  # chapter 12: the cache keeps n_kv heads; each serves n_head / n_kv query heads
            k, v = cache.update(layer, k, v)  # (B, n_kv, cache.length + T, hs)
            y = F.decode_attention(q, k, v, start=cache.start)  # (B, nh, T, hs)
        return self.resid_dropout(self.wo(y.transpose(1, 2).reshape(B, T, C)))


class SwiGLU(nn.Module):
    """w2(silu(w1 x) * w3 x): a gated MLP (Shazeer 2020)."""

    def __init__(self, n_embd: int, hidden: int, dropout: float = 0.0):
        super().__init__()
        self.w1 = nn.Linear(n_embd, hidden, bias=False)
        self.w3 = nn.Linear(n_embd, hidden, bias=False)
        self.w2 = nn.Linear(hidden, n_embd, bias=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: tt.Tensor) -> tt.Tensor:
        return self.dropout(self.w2(F.silu(self.w1(x)) * self.w3(x)))


class MoE(nn.Module):
    """A mixture of SwiGLU experts: each token goes to its top-k experts, weighted by the router.

    The weights are a softmax over the chosen experts' router logits (Mixtral's rule). Only the tokens
    routed to an expert are run through it (index_select in, index_add out). `aux_loss` holds the
    last forward's load-balancing loss n_experts * sum_e f_e * P_e, where f_e is the fraction of
    routing slots that chose expert e and P_e the mean router probability of e (1.0 when balanced).
    """

    def __init__(self, config: LlamaConfig):
        super().__init__()
        if not 1 <= config.n_experts_per_tok <= config.n_experts:
            raise ValueError(f"MoE: need 1 <= n_experts_per_tok ({config.n_experts_per_tok}) <= n_experts "
                             f"({config.n_experts})")
        self.n_experts, self.k = config.n_experts, config.n_experts_per_tok
        self.router = nn.Linear(config.n_embd, config.n_experts, bias=False)
        self.experts = nn.ModuleList([SwiGLU(config.n_embd, config.hidden_size(), config.dropout)
                                      for _ in range(config.n_experts)])
        self.aux_loss: Optional[tt.Tensor] = None

    def forward(self, x: tt.Tensor) -> tt.Tensor:
        B, T, C = x.shape
        flat = x.reshape(B * T, C)  # (N, C)
        logits = self.router(flat)  # (N, E)
        chosen = np.argsort(-logits.detach().numpy(), axis=-1, kind="stable")[:, :self.k]  # (N, k) expert ids
        chosen_t = tt.from_numpy(np.ascontiguousarray(chosen).astype(np.int64))
        weights = logits.gather(1, chosen_t).softmax(-1)  # (N, k): mix of the chosen experts
        out = tt.zeros(B * T, C, dtype=x.dtype)
        for e, expert in enumerate(self.experts):
            rows, slot = np.nonzero(chosen == e)  # int64: the tokens routed to e, and which of their k slots
            if rows.size == 0:
                continue
            rows_t = tt.from_numpy(rows)
            w = weights.reshape(-1).index_select(0, tt.from_numpy(rows * self.k + slot)).unsqueeze(1)  # (n_e, 1)
            out = out.index_add(0, rows_t, expert(flat.index_select(0, rows_t)) * w)
        counts = np.bincount(chosen.reshape(-1), minlength=self.n_experts) / chosen.size  # f_e, not differentiable
        probs = logits.softmax(-1).mean(0)  # (E,) P_e
        self.aux_loss = (probs * tt.from_numpy(counts.astype(np.float32))).sum() * self.n_experts
        return out.reshape(B, T, C)


class Block(nn.Module):
    """Pre-norm block: x + attn(norm(x)), then x + mlp(norm(x)), with RMSNorm."""

    def __init__(self, config: LlamaConfig):
        super().__init__()
        self.attn_norm = nn.RMSNorm(config.n_embd, eps=config.norm_eps)
        self.attn = Attention(config)
        self.mlp_norm = nn.RMSNorm(config.n_embd, eps=config.norm_eps)
        self.mlp = MoE(config) if config.n_experts else SwiGLU(config.n_embd, config.hidden_size(), config.dropout)

    def forward(self, x: tt.Tensor, cos: tt.Tensor, sin: tt.Tensor, cache: Optional[nn.KVCache] = None,
                layer: int = 0) -> tt.Tensor:
        x = x + self.attn(self.attn_norm(x), cos, sin, cache, layer)
        return x + self.mlp(self.mlp_norm(x))


class Llama(nn.Module):
    """A Llama-style decoder: forward(idx, targets=None) -> (logits, loss), loss including the MoE aux loss."""

    def __init__(self, config: LlamaConfig):
        super().__init__()
        self.config = config
        self.tok_embeddings = nn.Embedding(config.vocab_size, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.layers = nn.ModuleList([Block(config) for _ in range(config.n_layer)])
        self.norm = nn.RMSNorm(config.n_embd, eps=config.norm_eps)
        self.output = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.output.weight = self.tok_embeddings.weight
        cos, sin = rope_tables(config.block_size, config.n_embd // config.n_head, config.rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        for name, p in self.named_parameters():  # N(0, 0.02), residual projections scaled as in GPT-2
            if p.ndim == 2:
                std = 0.02 / math.sqrt(2 * config.n_layer) if name.endswith(("wo.weight", "w2.weight")) else 0.02
                nn.init.normal_(p, 0.0, std)

    def forward(self, idx: tt.Tensor, targets: Optional[tt.Tensor] = None, cache: Optional[nn.KVCache] = None):
        """(logits, loss) as GPT's: with a cache (make_cache), idx holds the new tokens and all their logits return."""
        B, T = idx.shape
        if T > self.config.block_size:
            raise ValueError(f"Llama: sequence of length {T} is longer than block_size {self.config.block_size}")
        cos, sin = self._rope(B, T, cache)  # (T, hs), or (B, 1, T, hs) with left padding
        x = self.drop(self.tok_embeddings(idx))  # (B, T, C)
        for i, layer in enumerate(self.layers):
            x = layer(x, cos, sin, cache, i)
        x = self.norm(x)
        if cache is not None:
            cache.advance(T)
        if targets is None and cache is None:
            return self.output(x[:, -1:, :]), None  # (B, 1, V)
        logits = self.output(x)  # (B, T, V)
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.reshape(B * T, -1), targets.reshape(B * T), ignore_index=-1)
        aux = self.aux_loss()
        if aux is not None:
            loss = loss + self.config.aux_loss_coef * aux
        return logits, loss

    def _rope(self, B: int, T: int, cache: Optional[nn.KVCache]):
        """cos, sin for the T new positions: 0..T-1, or the cache's absolute positions (per row if padded)."""
        if cache is None:
            return self.rope_cos[:T], self.rope_sin[:T]  # (T, hs)
        pos = cached_positions(cache, B, T, "Llama")
        if pos.ndim == 1:
            return self.rope_cos[cache.length:cache.length + T], self.rope_sin[cache.length:cache.length + T]
        flat = pos.reshape(-1)  # (B * T,)
        hs = self.rope_cos.shape[1]
        return (self.rope_cos.index_select(0, flat).reshape(B, 1, T, hs),
                self.rope_sin.index_select(0, flat).reshape(B, 1, T, hs))

    def make_cache(self, batch_size: int, max_len: Optional[int] = None, pad=None) -> nn.KVCache:
        """An empty kv-cache (chapter 12) holding n_kv_heads heads per layer; as GPT.make_cache."""
        c = self.config
        return new_cache(self.tok_embeddings.weight, c.n_layer, batch_size, c.n_kv_heads or c.n_head,
                         c.n_embd // c.n_head, c.block_size, max_len, pad, "Llama")

    def aux_loss(self) -> Optional[tt.Tensor]:
        """The mean load-balancing loss of the MoE layers in the last forward (None for a dense model)."""
        losses = [m.aux_loss for m in self.modules() if isinstance(m, MoE) and m.aux_loss is not None]
        return sum(losses[1:], losses[0]) / len(losses) if losses else None

    def configure_optimizers(self, weight_decay: float, learning_rate: float, betas=(0.9, 0.95),
                             device_type: str = "cpu") -> tt.optim.AdamW:
        """AdamW decaying the 2-D weights only (as GPT.configure_optimizers)."""
        return adamw_decaying_matrices(self, weight_decay, learning_rate, betas)

    def generate(self, idx: tt.Tensor, max_new_tokens: int, temperature: float = 1.0, top_k: Optional[int] = None,
                 top_p: Optional[float] = None, seed: Optional[int] = None,
                 generator: Optional[tt.Generator] = None, eos_token: Optional[int] = None) -> tt.Tensor:
        """As GPT.generate: sample max_new_tokens tokens, seeded, with temperature, top_k and top_p."""
        return generate_tensor(self, idx, max_new_tokens, temperature, top_k, top_p, seed, generator, eos_token)
