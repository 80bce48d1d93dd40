"""A randomly initialised cross-encoder for tests and benchmarks (no trained weights offline)."""

from __future__ import annotations

from pathlib import Path

from retrieval_eval.product import resolve_model_location


def build_test_cross_encoder(
    directory: Path, *, layers: int = 6, hidden: int = 384, max_length: int = 512
) -> Path:
    """Save a random BERT cross-encoder shaped like cross-encoder/ms-marco-MiniLM-L-6-v2.

    The defaults mirror that model (6 layers, hidden 384, 12 heads, intermediate 1536,
    512-token truncation), so reranking costs what the real reranker would; tests pass a
    smaller ``layers``/``hidden``. Scores are meaningless: it exercises the real CrossEncoder
    code path, not ranking quality.
    """
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_location("bundled"))
    tokenizer.model_max_length = max_length
    config = BertConfig(  # type: ignore[call-arg]
        vocab_size=tokenizer.vocab_size,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=max(1, hidden // 32),
        intermediate_size=hidden * 4,
        max_position_embeddings=max_length,
        num_labels=1,
    )
    BertForSequenceClassification(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
