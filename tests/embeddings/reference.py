#!/usr/bin/env python3
"""The reference for `embed_text`: all-MiniLM-L6-v2 run in NumPy straight from its
model.safetensors (BERT: embeddings, 6 encoder layers, exact-erf GELU), tokenised by the
`tokenizers` package from the same tokenizer.json, then the sentence-transformers recipe:
mean over the real tokens (at most 256), scaled to length 1.

    reference.py MODEL_DIR < texts.json > vectors.json
"""
import json
import math
import sys

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

MAX_TOKENS = 256


def main():
    model = sys.argv[1]
    texts = json.load(sys.stdin)
    config = json.load(open(f"{model}/config.json"))
    weights = load_file(f"{model}/model.safetensors")
    prefix = "bert." if "bert.embeddings.word_embeddings.weight" in weights else ""

    def w(name):
        return weights[prefix + name].astype(np.float64)

    eps = config["layer_norm_eps"]
    heads = config["num_attention_heads"]
    erf = np.frompyfunc(math.erf, 1, 1)

    def norm(x, name):
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + eps) * w(name + ".weight") + w(name + ".bias")

    def linear(x, name):
        return x @ w(name + ".weight").T + w(name + ".bias")

    tokenizer = Tokenizer.from_file(f"{model}/tokenizer.json")
    tokenizer.enable_truncation(MAX_TOKENS)
    tokenizer.no_padding()
    out = []
    for text in texts:
        enc = tokenizer.encode(text)
        ids, types = np.array(enc.ids), np.array(enc.type_ids)
        n = len(ids)
        x = (w("embeddings.word_embeddings.weight")[ids]
             + w("embeddings.position_embeddings.weight")[np.arange(n)]
             + w("embeddings.token_type_embeddings.weight")[types])
        x = norm(x, "embeddings.LayerNorm")
        for layer in range(config["num_hidden_layers"]):
            p = f"encoder.layer.{layer}."
            q, k, v = (linear(x, p + f"attention.self.{m}").reshape(n, heads, -1).transpose(1, 0, 2)
                       for m in ("query", "key", "value"))
            scores = q @ k.transpose(0, 2, 1) / math.sqrt(q.shape[-1])
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ v).transpose(1, 0, 2).reshape(n, -1)
            x = norm(x + linear(context, p + "attention.output.dense"), p + "attention.output.LayerNorm")
            h = linear(x, p + "intermediate.dense")
            h = h * 0.5 * (1.0 + erf(h / math.sqrt(2.0)).astype(np.float64))
            x = norm(x + linear(h, p + "output.dense"), p + "output.LayerNorm")
        mean = x.mean(0)
        out.append((mean / np.linalg.norm(mean)).tolist())
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
