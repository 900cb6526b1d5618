"""`Ops/align-sim check DIR`: the files' shapes and the promise that cold items are in
no training or validation signal. Returns a list of problems (empty when consistent)."""

import json
import math
import os


def _jsonl(path, problems):
    if not os.path.exists(path):
        problems.append(f"{path} is missing")
        return []
    rows = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                problems.append(f"{path}:{n}: not JSON ({e})")
    return rows


def check(directory):
    p = []
    path = lambda *parts: os.path.join(directory, *parts)
    items = _jsonl(path("items.jsonl"), p)
    split = {}
    for r in items:
        if set(r) != {"item_id", "topic", "split"} or r.get("split") not in ("train", "validation", "cold"):
            p.append(f"items.jsonl: bad row {r}")
        if r.get("item_id") in split:
            p.append(f"items.jsonl: {r['item_id']} twice")
        split[r.get("item_id")] = r.get("split")
    if not items:
        return p + ["items.jsonl is empty"]
    for s in ("train", "validation", "cold"):
        if s not in split.values():
            p.append(f"items.jsonl: no {s} item")
    warm = lambda i: split.get(i) in ("train", "validation")

    events = _jsonl(path("events.jsonl"), p)
    if [e.get("item_id") for e in events] != [r["item_id"] for r in items]:
        p.append("events.jsonl: item ids differ from items.jsonl (or their order)")
    media_dir = os.path.abspath(path("media"))
    for e in events:
        for key in ("video_uri", "cover_uri"):
            uri = e.get(key, "")
            local = uri[len("file://"):] if uri.startswith("file://") else None
            ok = (local is not None and local.startswith(media_dir + "/") and os.path.isfile(local)
                  and os.path.getsize(local) > 0)
            if not ok:
                p.append(f"events.jsonl: {e.get('item_id')} {key} {uri} is not a file under {media_dir}")
        if not e.get("title") or not isinstance(e.get("tags"), list):
            p.append(f"events.jsonl: {e.get('item_id')} has no title or tags")

    dims = set()
    for r in _jsonl(path("id_vectors.jsonl"), p):
        v = r.get("vector")
        if not warm(r.get("item_id")):
            p.append(f"id_vectors.jsonl: {r.get('item_id')} is {split.get(r.get('item_id'))}, not a warm item")
        if not isinstance(v, list) or not v or not all(isinstance(x, (int, float)) and math.isfinite(x) for x in v):
            p.append(f"id_vectors.jsonl: {r.get('item_id')} has a bad vector")
        else:
            dims.add(len(v))
    if len(dims) > 1:
        p.append(f"id_vectors.jsonl: vectors of several sizes {sorted(dims)}")

    for r in _jsonl(path("sequences.jsonl"), p):
        seq, s = r.get("items", []), r.get("split")
        if len(seq) < 2 or not r.get("user_id"):
            p.append(f"sequences.jsonl: short or anonymous sequence {r}")
        elif s == "train" and any(split.get(i) != "train" for i in seq):
            p.append(f"sequences.jsonl: train sequence of {r['user_id']} holds a non-train item")
        elif s == "validation" and (split.get(seq[-1]) != "validation" or any(split.get(i) != "train" for i in seq[:-1])):
            p.append(f"sequences.jsonl: validation sequence of {r['user_id']} is not train history + a validation item")
        elif s not in ("train", "validation"):
            p.append(f"sequences.jsonl: split {s}")

    for r in _jsonl(path("i2i.jsonl"), p):
        a, b, s = r.get("a"), r.get("b"), r.get("split")
        both_train = split.get(a) == "train" and split.get(b) == "train"
        if not (warm(a) and warm(b)) or a == b or not (isinstance(r.get("weight"), (int, float)) and r["weight"] > 0):
            p.append(f"i2i.jsonl: bad pair {r}")
        elif s != ("train" if both_train else "validation"):
            p.append(f"i2i.jsonl: pair {a} {b} has split {s}")

    for r in _jsonl(path("q2i.jsonl"), p):
        if not r.get("query") or not warm(r.get("item_id")) or r.get("split") != split.get(r.get("item_id")):
            p.append(f"q2i.jsonl: bad row {r}")

    for r in _jsonl(path("eval", "next_item.jsonl"), p):
        if split.get(r.get("target")) != "cold" or not r.get("history") or not all(warm(i) for i in r["history"]):
            p.append(f"eval/next_item.jsonl: bad row for {r.get('user_id')}")
    for r in _jsonl(path("eval", "id_neighbours.jsonl"), p):
        n = r.get("neighbours", [])
        if split.get(r.get("item_id")) != "cold" or not n or len(n) > 50 or len(set(n)) != len(n) \
                or not all(warm(i) for i in n):
            p.append(f"eval/id_neighbours.jsonl: bad row for {r.get('item_id')}")

    try:
        with open(path("manifest.json")) as f:
            manifest = json.load(f)
        for name, count in manifest["counts"].items():
            with open(path(*name.split("/")) + ".jsonl") as f:
                lines = sum(1 for _ in f)
            if lines != count:
                p.append(f"manifest.json: {name} counts {count}, the file has {lines} lines")
    except (OSError, KeyError, json.JSONDecodeError) as e:
        p.append(f"manifest.json: {e}")
    return p
