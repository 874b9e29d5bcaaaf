"""Peer embedding throughput: sentence-transformers (PyTorch, CPU) on the same sentences.

Prints one JSON object like `switchboard bench embed --json`: n, seconds, sentences_per_s,
peak_rss_mb. The pipeline is all-MiniLM-L6-v2's: transformer (max 256 tokens), mean pooling,
L2 normalisation, built from the same model directory Switchboard uses. One warm-up pass over
the first 256 sentences runs first, as in Switchboard's benchmark.
"""

import argparse
import json
import resource
import time

import torch
from sentence_transformers import SentenceTransformer, models


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--sentences", required=True)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    with open(args.sentences, encoding="utf-8") as file:
        sentences = [line.rstrip("\n") for line in file if line.strip()]
    transformer = models.Transformer(args.model_dir, max_seq_length=256)
    pooling = models.Pooling(transformer.get_word_embedding_dimension(), pooling_mode="mean")
    model = SentenceTransformer(modules=[transformer, pooling, models.Normalize()], device="cpu")
    with torch.inference_mode():
        model.encode(sentences[:256], batch_size=args.batch)
        started = time.perf_counter()
        vectors = model.encode(sentences, batch_size=args.batch)
        seconds = time.perf_counter() - started
    assert len(vectors) == len(sentences)
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({
        "n": len(sentences),
        "seconds": seconds,
        "sentences_per_s": len(sentences) / seconds,
        "peak_rss_mb": peak_rss_mb,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }))


if __name__ == "__main__":
    main()
