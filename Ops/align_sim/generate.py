"""`Ops/align-sim generate DIR`: the world, its signals and its media (formats in README.md)."""

import hashlib
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import numpy as np

import factorize
import media
from vocab import PALETTES, RHYTHMS, TOPICS
from world import ALPHA, BETA, GAMMA, SPLIT_SHARES, TASTE_DIM, WEIGHTS, World

GENERATOR = "ember-align-sim"
VERSION = 1
HISTORY = 10          # items of history in eval/next_item.jsonl and validation sequences
WINDOW = 3            # co-engagement window (positions) for i2i pairs
NEIGHBOURS = 50
ID_DIM = 32


def _r(v):
    return [round(float(x), 6) for x in v]


def _write_jsonl(path, rows):
    with open(path, "w") as f:
        for row in rows:
            f.write(json.dumps(row, separators=(",", ":"), ensure_ascii=False) + "\n")
    return len(rows)


def _log(message):
    print(f"align-sim: {message}", file=sys.stderr, flush=True)


def generate(out, seed, n_items, n_users, n_topics, seq_min, seq_max, jobs, render_media=True):
    started = time.time()
    out = os.path.abspath(out)
    os.makedirs(os.path.join(out, "media"), exist_ok=True)
    os.makedirs(os.path.join(out, "eval"), exist_ok=True)
    n_topics = min(n_topics, len(TOPICS))
    w = World(seed, n_items, n_users, n_topics, (seq_min, seq_max))
    rng = w.rng
    split = w.split
    warm = split != "cold"
    cold = ~warm

    # 1. The past: every user watches warm items only (cold items are uploaded later).
    past = []
    for u in range(n_users):
        past.append(w.watch(u, warm, int(rng.integers(seq_min, seq_max + 1))))
    # 2. The future: each user's next watch among the cold items is the evaluation
    #    target; then the user keeps watching anything. Only the "true" ID space of
    #    eval/ sees the future.
    targets, futures = [], []
    everything = np.ones(n_items, dtype=bool)
    for u in range(n_users):
        t = w.next_item(u, past[u][-1], cold)
        targets.append(t)
        futures.append(w.watch(u, everything, max(1, len(past[u]) // 2), previous=t, seen=past[u] + [t]))

    # 3. Training and validation signals (warm items only).
    ids = w.ids
    sequences = []
    for u, seq in enumerate(past):
        train_seq = [ids[i] for i in seq if split[i] == "train"]
        if len(train_seq) >= 2:
            sequences.append({"user_id": w.user_ids[u], "items": train_seq, "split": "train"})
    for u, seq in enumerate(past):
        for pos, i in enumerate(seq):
            if split[i] != "validation":
                continue
            history = [ids[j] for j in seq[:pos] if split[j] == "train"][-HISTORY:]
            if history:
                sequences.append({"user_id": w.user_ids[u], "items": history + [ids[i]], "split": "validation"})

    pairs = {}
    for seq in past:
        for pos, a in enumerate(seq):
            for b in seq[pos + 1:pos + 1 + WINDOW]:
                key = (min(a, b), max(a, b))
                pairs[key] = pairs.get(key, 0) + 1
    i2i = [{"a": ids[a], "b": ids[b], "weight": c,
            "split": "train" if split[a] == "train" and split[b] == "train" else "validation"}
           for (a, b), c in sorted(pairs.items())]

    q2i = []
    warm_idx = np.flatnonzero(warm)
    p = np.sqrt(w.popularity[warm_idx])
    p /= p.sum()
    for i in rng.choice(warm_idx, size=3 * len(warm_idx), p=p):
        parts = [str(rng.choice(TOPICS[w.topic[i]][3]))]
        if rng.random() < 0.5:
            parts.append(str(rng.choice(PALETTES[w.palette[i]][2])))
        if rng.random() < 0.5:
            parts.append(str(rng.choice(RHYTHMS[w.rhythm[i]][1])))
        query = " ".join(parts[j] for j in rng.permutation(len(parts)))
        q2i.append({"query": query, "item_id": ids[i], "split": str(split[i])})

    # 4. ID vectors: MF of the past (what the recommender has), and a "true" MF of
    #    past + future over all items, for the cold items' ID-space neighbours.
    fit_a = factorize.implicit_als([(u, i) for u, s in enumerate(past) for i in s],
                                   n_users, n_items, rng, factors=ID_DIM)
    full = [(u, i) for u in range(n_users) for i in past[u] + [targets[u]] + futures[u]]
    fit_b = factorize.implicit_als(full, n_users, n_items, rng, factors=ID_DIM)
    # Items nobody watched have no ID vector (the recommender never saw them).
    id_vectors = [{"item_id": ids[i], "vector": _r(fit_a[i])} for i in warm_idx
                  if np.linalg.norm(fit_a[i]) > 0]

    norms = np.linalg.norm(fit_b, axis=1, keepdims=True)
    unit_b = fit_b / np.where(norms > 0, norms, 1.0)
    neighbours = []
    for c in np.flatnonzero(cold):
        sims = unit_b[warm_idx] @ unit_b[c]
        order = np.lexsort((warm_idx, -sims))[:NEIGHBOURS]
        neighbours.append({"item_id": ids[c], "neighbours": [ids[warm_idx[k]] for k in order]})
    next_item = [{"user_id": w.user_ids[u], "history": [ids[i] for i in past[u][-HISTORY:]],
                  "target": ids[targets[u]]} for u in range(n_users)]
    oracle = [{"item_id": ids[i], "id_vector": _r(fit_b[i]), "taste": _r(w.taste[i]),
               "topic": TOPICS[w.topic[i]][0], "palette": PALETTES[w.palette[i]][0],
               "rhythm": RHYTHMS[w.rhythm[i]][0], "popularity": round(float(w.popularity[i]), 6)}
              for i in range(n_items)]

    # 5. Media and upload events.
    base = datetime(2026, 11, 1, tzinfo=timezone.utc)
    events, items, jobs_list = [], [], []
    for i in range(n_items):
        params = w.media[i]
        digest = hashlib.sha256(json.dumps([media.RENDER_VERSION, params], sort_keys=True).encode()).hexdigest()[:10]
        video = os.path.join(out, "media", f"{ids[i]}-{digest}.mp4")
        cover = os.path.join(out, "media", f"{ids[i]}-{digest}.jpg")
        jobs_list.append((params, video, cover))
        # Cold items are uploaded after the whole past.
        when = base + timedelta(minutes=i) + (timedelta(days=20) if cold[i] else timedelta(0))
        text = w.text[i]
        events.append({"item_id": ids[i], "video_uri": "file://" + video, "cover_uri": "file://" + cover,
                       "title": text["title"], "tags": text["tags"], "author": text["author"],
                       "uploaded_at": when.strftime("%Y-%m-%dT%H:%M:%SZ")})
        items.append({"item_id": ids[i], "topic": TOPICS[w.topic[i]][0], "split": str(split[i])})
    model_s = time.time() - started

    media_started = time.time()
    todo = [j for j in jobs_list if not (os.path.exists(j[1]) and os.path.exists(j[2]))]
    if render_media and todo:
        _log(f"rendering {len(todo)} clips with {jobs} ffmpeg processes")
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            for n, _ in enumerate(pool.map(lambda j: media.render(*j), todo), 1):
                if n % 100 == 0:
                    _log(f"  {n}/{len(todo)} clips")
    media_s = time.time() - media_started

    counts = {
        "events": _write_jsonl(os.path.join(out, "events.jsonl"), events),
        "items": _write_jsonl(os.path.join(out, "items.jsonl"), items),
        "id_vectors": _write_jsonl(os.path.join(out, "id_vectors.jsonl"), id_vectors),
        "sequences": _write_jsonl(os.path.join(out, "sequences.jsonl"), sequences),
        "i2i": _write_jsonl(os.path.join(out, "i2i.jsonl"), i2i),
        "q2i": _write_jsonl(os.path.join(out, "q2i.jsonl"), q2i),
        "eval/next_item": _write_jsonl(os.path.join(out, "eval", "next_item.jsonl"), next_item),
        "eval/id_neighbours": _write_jsonl(os.path.join(out, "eval", "id_neighbours.jsonl"), neighbours),
        "eval/oracle": _write_jsonl(os.path.join(out, "eval", "oracle.jsonl"), oracle),
    }
    by_split = lambda rows: {s: sum(1 for r in rows if r["split"] == s) for s in ("train", "validation", "cold")
                             if any(r["split"] == s for r in rows)}
    manifest = {
        "generator": GENERATOR, "version": VERSION, "seed": seed,
        "sizes": {"items": n_items, "users": n_users, "topics": n_topics,
                  "sequence_length": [seq_min, seq_max]},
        "splits": by_split(items),
        "counts": counts,
        "signals_by_split": {"sequences": by_split(sequences), "i2i": by_split(i2i), "q2i": by_split(q2i)},
        "watches": {"past": sum(len(s) for s in past), "future": sum(len(s) + 1 for s in futures)},
        "warm_items_never_watched": int(sum(1 for i in warm_idx if np.linalg.norm(fit_a[i]) == 0)),
        "model": {"taste_dim": TASTE_DIM, "weights": WEIGHTS, "alpha": ALPHA, "beta": BETA, "gamma": GAMMA,
                  "split_shares": SPLIT_SHARES, "history": HISTORY, "i2i_window": WINDOW,
                  "id_dim": ID_DIM, "neighbours": NEIGHBOURS},
        "media": {"width": media.WIDTH, "height": media.HEIGHT, "fps": media.FPS, "seconds": media.SECONDS},
    }
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    _log(f"{n_items} items ({manifest['splits']}), {n_users} users in {out}: "
         f"model+signals {model_s:.1f} s, media {media_s:.1f} s ({len(todo) if render_media else 0} clips rendered)")
    return manifest
