#!/usr/bin/env python3
"""Writes a tiny random-weight llama-architecture GGUF model for the serving tests.

The model produces gibberish, but llama.cpp's llama-server loads it, tokenizes prompts with its
SentencePiece-style vocabulary (byte-fallback tokens for anything else) and generates real tokens,
which it counts in its /metrics counters exactly as it would for a real model.

Needs the `gguf` Python package (Debian sid's python3-gguf, pure Python: put its dist-packages on
PYTHONPATH) and numpy. Deterministic: the same file for the same arguments.

usage: tiny-gguf.py OUT.gguf [--name NAME] [--embd 64] [--layers 2]
"""
import argparse
import sys

import numpy as np
import gguf

# A small SentencePiece-style vocabulary: "▁" marks a word start, as SentencePiece writes a space.
WORDS = (
    "the of and to in is it that for on with as was at by be this are from or have an they "
    "which one you were all we can her has there been if more when will would who so no "
    "hello world token energy joule model server request prompt power carbon"
).split()
LETTERS = list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?'")

# Chat template: one line per message, then the assistant's turn (llama-server applies it to
# /v1/chat/completions; a minimal Jinja template its engine understands).
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>{{ message['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def vocabulary():
    tokens = [b"<unk>", b"<s>", b"</s>"]
    scores = [0.0, 0.0, 0.0]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
    # Byte fallback: <0x00>..<0xFF>, so any UTF-8 text tokenizes.
    for b in range(256):
        tokens.append(f"<0x{b:02X}>".encode())
        scores.append(0.0)
        types.append(gguf.TokenType.BYTE)
    pieces = ["\u2581"] + ["\u2581" + w for w in WORDS] + LETTERS + ["\u2581" + c for c in LETTERS]
    seen = set()
    for i, p in enumerate(pieces):
        if p in seen:
            continue
        seen.add(p)
        tokens.append(p.encode())
        # Longer pieces score higher: the tokenizer prefers whole words.
        scores.append(-1000.0 + len(p) * 10.0 - i * 0.001)
        types.append(gguf.TokenType.NORMAL)
    return tokens, scores, types


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--name", default="powerprint-tiny")
    ap.add_argument("--embd", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--ctx", type=int, default=512)
    a = ap.parse_args(argv)

    tokens, scores, types = vocabulary()
    n_vocab, n_embd, n_ff = len(tokens), a.embd, a.embd * 2
    rng = np.random.default_rng(20240519)

    def weight(*shape):
        return (rng.standard_normal(shape) * 0.05).astype(np.float32)

    w = gguf.GGUFWriter(a.out, "llama")
    w.add_name(a.name)
    w.add_context_length(a.ctx)
    w.add_embedding_length(n_embd)
    w.add_block_count(a.layers)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(a.heads)
    w.add_head_count_kv(a.heads)
    w.add_rope_dimension_count(n_embd // a.heads)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_vocab_size(n_vocab)
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_unk_token_id(0)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(True)
    w.add_chat_template(CHAT_TEMPLATE)

    # numpy shapes are (rows, cols): GGUF's ne is the reverse.
    w.add_tensor("token_embd.weight", weight(n_vocab, n_embd))
    for i in range(a.layers):
        w.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(n_embd, dtype=np.float32))
        for t in ("attn_q", "attn_k", "attn_v", "attn_output"):
            w.add_tensor(f"blk.{i}.{t}.weight", weight(n_embd, n_embd))
        w.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(n_embd, dtype=np.float32))
        w.add_tensor(f"blk.{i}.ffn_gate.weight", weight(n_ff, n_embd))
        w.add_tensor(f"blk.{i}.ffn_up.weight", weight(n_ff, n_embd))
        w.add_tensor(f"blk.{i}.ffn_down.weight", weight(n_embd, n_ff))
    w.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
    w.add_tensor("output.weight", weight(n_vocab, n_embd))

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    main(sys.argv[1:])
