"""tinytensor.data: datasets for language models (chapter 11): token shards on disk and a resumable loader.

    prepare_shards(path, tokenizer, out_dir)   text -> uint16 shards + index.json (streaming, bounded memory)
    DataLoader(out_dir, "train", B, T, seed)    (B, T) batches; state_dict() for exact resume
    corpus_stats, document_lengths, iter_documents, load_index

An application of the engine (like tokenizer/): it uses tinytensor only to hand out batches as tensors.
"""
from .loader import DataLoader
from .shards import corpus_stats, document_lengths, iter_documents, load_index, open_shard, prepare_shards

__all__ = ["DataLoader", "prepare_shards", "corpus_stats", "document_lengths", "iter_documents", "load_index",
           "open_shard"]
