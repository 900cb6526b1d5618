"""`Ops/align-sim evaluate-raw DIR`: what the raw fused vector is worth on the
simulator's cold-start tasks, with oracle figures for the headroom.

Tasks (both use only cold items as targets):
- next item: query = the mean of the user's last 10 (warm) watched items' unit vectors;
  a hit when the user's next watch (a cold item) is among the 50 nearest candidates
  (--k changes 50, e.g. 10 for the tiny world).
  Candidates "all": every item but the history (random: 50 / (items - 10));
  "cold": the cold items only (random: 50 / cold items). Recall@50 = hit rate.
- ID neighbours: for each cold item, the 50 warm items nearest in cosine to it; the
  share of its 50 true ID-space neighbours (eval/id_neighbours.jsonl) found.

Rows:
- raw: the Ember records' vectors (2048 dims: text | vision | audio towers).
- raw centred: the catalogue mean subtracted (a fix that needs no training), and
  each tower's slice alone, to show which modality carries what.
- raw[:d]: the first d dims renormalized (the text tower only: the raw vector has no
  Matryoshka structure), and raw proj d: a seeded Gaussian projection to d dims
  (the fair d-dim raw baseline, Johnson-Lindenstrauss).
- ridge probe d: a linear map raw -> ID space (d = ID dims) fitted by ridge
  regression on the *train* items' ID vectors, ridge strength picked on validation
  items, applied to every item: a content-only mapping, what a linear head can reach
  with least squares alone (no cold item seen).
- oracle id: the true ID vectors (eval/oracle.jsonl: the factorization of all
  interactions, cold items' future included): the ceiling a perfect ID distillation
  would reach. oracle taste: the hidden taste vectors.
"""

import base64
import json
import os
import sys

import numpy as np

K = 50


def _jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def decode(record):
    raw = base64.b64decode(record["embedding"])
    dtype = record.get("dtype", "f16")
    if dtype == "f16":
        v = np.frombuffer(raw, dtype="<f2").astype(np.float64)
    elif dtype == "f32":
        v = np.frombuffer(raw, dtype="<f4").astype(np.float64)
    elif dtype == "i8":
        v = np.frombuffer(raw, dtype="<i1").astype(np.float64) * float(record["scale"])
    else:
        raise ValueError(f"cannot evaluate dtype {dtype}")
    return v


def unit(m):
    n = np.linalg.norm(m, axis=-1, keepdims=True)
    return m / np.where(n > 0, n, 1.0)


class Data:
    def __init__(self, directory, embeddings=None):
        self.items = _jsonl(os.path.join(directory, "items.jsonl"))
        self.ids = [r["item_id"] for r in self.items]
        self.index = {i: k for k, i in enumerate(self.ids)}
        self.split = np.array([r["split"] for r in self.items])
        self.next_item = _jsonl(os.path.join(directory, "eval", "next_item.jsonl"))
        self.neighbours = _jsonl(os.path.join(directory, "eval", "id_neighbours.jsonl"))
        self.oracle = {r["item_id"]: r for r in _jsonl(os.path.join(directory, "eval", "oracle.jsonl"))}
        self.id_vectors = {r["item_id"]: r["vector"] for r in _jsonl(os.path.join(directory, "id_vectors.jsonl"))}
        path = embeddings or os.path.join(directory, "embeddings.jsonl")
        self.raw = None
        if os.path.exists(path):
            records = {r["item_id"]: r for r in _jsonl(path)}
            missing = [i for i in self.ids if i not in records]
            if missing:
                sys.exit(f"align-sim: {len(missing)} items have no record in {path} (first {missing[:3]})")
            self.raw = np.stack([decode(records[i]) for i in self.ids])
            self.model = records[self.ids[0]].get("model")
            # "raw" for Ember's own fused vectors; an aligned head's records (another
            # model id, e.g. omni-small+<head>@hash) are labelled by their file.
            self.label = "raw" if embeddings is None else os.path.splitext(os.path.basename(path))[0]


def next_item_recall(vectors, data, candidates):
    """Hit rate of the next (cold) watch in the top K; `vectors` are unit rows per item."""
    cold = data.split == "cold"
    hits = []
    for r in data.next_item:
        hist = [data.index[i] for i in r["history"]]
        q = unit(vectors[hist].mean(axis=0))
        scores = vectors @ q
        mask = cold.copy() if candidates == "cold" else np.ones(len(scores), dtype=bool)
        mask[hist] = False
        scores = np.where(mask, scores, -np.inf)
        top = np.argpartition(-scores, K)[:K] if mask.sum() > K else np.flatnonzero(mask)
        hits.append(data.index[r["target"]] in set(top.tolist()))
    return float(np.mean(hits))


def neighbour_recall(vectors, data):
    warm = np.flatnonzero(data.split != "cold")
    recalls = []
    for r in data.neighbours:
        truth = set(data.index[i] for i in r["neighbours"][:K])
        scores = vectors[warm] @ vectors[data.index[r["item_id"]]]
        top = warm[np.argsort(-scores, kind="stable")[:len(truth)]]
        recalls.append(len(truth & set(top.tolist())) / len(truth))
    return float(np.mean(recalls))


def ridge_probe(raw, data):
    """Ridge raw -> ID space on train items; lambda chosen by validation R^2."""
    ids = data.ids
    train = [k for k, i in enumerate(ids) if data.split[k] == "train" and i in data.id_vectors]
    val = [k for k, i in enumerate(ids) if data.split[k] == "validation" and i in data.id_vectors]
    Y = np.array([data.id_vectors[ids[k]] for k in train])
    Yv = np.array([data.id_vectors[ids[k]] for k in val])
    X, Xv = raw[train], raw[val]
    mu = X.mean(axis=0)
    Xc = X - mu
    U, S, Vt = np.linalg.svd(Xc, full_matrices=False)
    best = None
    for lam in [1e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0, 3.0, 10.0]:
        W = Vt.T @ ((S / (S ** 2 + lam))[:, None] * (U.T @ Y))
        err = float(np.mean(((Xv - mu) @ W - Yv) ** 2)) if len(val) else 0.0
        if best is None or err < best[0]:
            best = (err, lam, W)
    return (raw - mu) @ best[2], best[1]


def rows(data):
    out = []
    rng = np.random.default_rng(0)
    if data.raw is not None:
        raw = unit(data.raw)
        label = data.label
        out.append((label, raw.shape[1], raw))
        for d in (512, 256, 128):
            if d < raw.shape[1]:
                out.append((f"{label}[:{d}]", d, unit(raw[:, :d])))
        out.append((f"{label} centred", raw.shape[1], unit(raw - raw.mean(axis=0))))
        if label == "raw" and raw.shape[1] == 2048:   # omni-small's late fusion: text 384 | vision 1280 | audio 384
            for name, a, b in (("text", 0, 384), ("vision", 384, 1664), ("audio", 1664, 2048)):
                out.append((f"raw {name} tower", b - a, unit(raw[:, a:b])))
        if raw.shape[1] > 256:
            proj = rng.standard_normal((raw.shape[1], 256)) / np.sqrt(256)
            out.append((f"{label} proj 256", 256, unit(raw @ proj)))
        probe, lam = ridge_probe(raw, data)
        out.append((f"ridge probe (lambda {lam:g})", probe.shape[1], unit(probe)))
    oracle_id = unit(np.array([data.oracle[i]["id_vector"] for i in data.ids]))
    out.append(("oracle id", oracle_id.shape[1], oracle_id))
    taste = unit(np.array([data.oracle[i]["taste"] for i in data.ids]))
    out.append(("oracle taste", taste.shape[1], taste))
    return out


def main(directory, embeddings, as_json, k=50):
    global K
    K = k
    data = Data(directory, embeddings)
    n_items, n_cold = len(data.ids), int((data.split == "cold").sum())
    results = []
    for name, dim, vectors in rows(data):
        results.append({"vectors": name, "dim": dim,
                         "next_item_all": next_item_recall(vectors, data, "all"),
                         "next_item_cold": next_item_recall(vectors, data, "cold"),
                         "id_neighbours": neighbour_recall(vectors, data)})
    history = len(data.next_item[0]["history"]) if data.next_item else 0
    random = {"next_item_all": min(1.0, K / (n_items - history)), "next_item_cold": min(1.0, K / n_cold),
              "id_neighbours": min(1.0, K / int((data.split != "cold").sum()))}
    report = {"dir": os.path.abspath(directory), "items": n_items, "cold_items": n_cold,
              "users": len(data.next_item), "k": K, "model": getattr(data, "model", None),
              "random": random, "results": results}
    if as_json:
        print(json.dumps(report, indent=2))
        return
    print(f"recall@{K} on {n_cold} cold items of {n_items} ({len(data.next_item)} users), "
          f"model {report['model']}")
    print(f"| vectors | dims | next item (all) | next item (cold) | ID neighbours |")
    print(f"|---|---|---|---|---|")
    print(f"| random | – | {random['next_item_all']:.3f} | {random['next_item_cold']:.3f} | "
          f"{random['id_neighbours']:.3f} |")
    for r in results:
        print(f"| {r['vectors']} | {r['dim']} | {r['next_item_all']:.3f} | {r['next_item_cold']:.3f} | "
              f"{r['id_neighbours']:.3f} |")
