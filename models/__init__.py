"""The course's models, one per file, built on tinytensor's public API only, and the ways to decode them.

    models.mlp          chapter 03's character MLP, its names dataset and training loop (also chapter 07's)
    models.gpt2         GPTConfig, GPT (nanoGPT's names; Hugging Face GPT-2 checkpoints in and out)
    models.llama        LlamaConfig, Llama (RoPE, RMSNorm, grouped-query attention, SwiGLU, mixture of experts)
    models.sampling     next-token sampling: filters, penalties, log-probabilities, a sampler per request (chapter 12)
    models.generate     batched generation with the kv-cache: left padding, stop strings, the context window
    models.beam_search  beam search with Hugging Face generate()'s rules
    models.speculative  speculative decoding with a draft model (exact rejection sampling)
"""
