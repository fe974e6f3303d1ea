"""The course's models, one per file, built on tinytensor's public API only (chapter 05 and the appendix).

    models.gpt2       GPTConfig, GPT (nanoGPT's names; Hugging Face GPT-2 checkpoints in and out)
    models.llama      LlamaConfig, Llama (RoPE, RMSNorm, grouped-query attention, SwiGLU, mixture of experts)
    models.sampling   next-token sampling shared by the models' generate()
"""
