"""The simulated world: items with hidden attributes, a hidden taste space, users and
their watch sequences. Everything comes from one numpy Generator seeded by --seed, in
a fixed order, so the same seed and sizes give the same world.

Generative model (README.md "Generative model" says why):
  taste(item)  = 1.0 * T[topic] + 0.8 * P[palette] + 0.8 * R[rhythm] + 0.35 * e_item
  T, P, R      = random unit vectors in a TASTE_DIM space; e_item ~ N(0, I/TASTE_DIM)
  popularity   = lognormal(0, 1) per item (not visible in the media)
  user         = unit(sum of the taste parts of 1-2 liked topics, one palette, one rhythm) + noise
  next watch   ~ softmax over unwatched items of
                 BETA * context . taste(item) + GAMMA * log popularity(item)
  context      = unit(ALPHA * user + (1 - ALPHA) * taste(previous item))
"""

import numpy as np

from vocab import FILLER_TAGS, FILLER_WORDS, HANDLE_ADJECTIVES, HANDLE_NOUNS, PALETTES, RHYTHMS, SCENES, TOPICS

TASTE_DIM = 16
WEIGHTS = {"topic": 1.0, "palette": 0.8, "rhythm": 0.8, "item": 0.35}
ALPHA, BETA, GAMMA = 0.6, 6.0, 0.7
SPLIT_SHARES = {"cold": 0.2, "validation": 0.1}


def unit(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


class World:
    def __init__(self, seed, n_items, n_users, n_topics, seq_len):
        self.rng = np.random.default_rng(seed)
        self.n_items, self.n_users, self.n_topics = n_items, n_users, n_topics
        self.seq_len = seq_len
        self._taste_space()
        self._items()
        self._users()

    # -- hidden taste space ------------------------------------------------------
    def _taste_space(self):
        r = self.rng
        self.T = unit(r.standard_normal((self.n_topics, TASTE_DIM)))
        self.P = unit(r.standard_normal((len(PALETTES), TASTE_DIM)))
        self.R = unit(r.standard_normal((len(RHYTHMS), TASTE_DIM)))
        # Topic popularity: a few topics are far more watched than others.
        self.topic_share = 1.0 / np.arange(1, self.n_topics + 1) ** 0.6
        self.topic_share /= self.topic_share.sum()

    # -- items -----------------------------------------------------------------------
    def _items(self):
        r, n = self.rng, self.n_items
        self.topic = r.choice(self.n_topics, size=n, p=self.topic_share)
        self.palette = r.integers(0, len(PALETTES), size=n)
        self.rhythm = r.integers(0, len(RHYTHMS), size=n)
        noise = r.standard_normal((n, TASTE_DIM)) / np.sqrt(TASTE_DIM)
        self.taste = (WEIGHTS["topic"] * self.T[self.topic] + WEIGHTS["palette"] * self.P[self.palette]
                      + WEIGHTS["rhythm"] * self.R[self.rhythm] + WEIGHTS["item"] * noise)
        self.popularity = r.lognormal(0.0, 1.0, size=n)
        self.ids = [f"sim-{i:05d}" for i in range(n)]
        # Splits: a random 20% are cold (never in a training or validation signal),
        # 10% validation, the rest train.
        order = r.permutation(n)
        n_cold = max(1, int(round(n * SPLIT_SHARES["cold"])))
        n_val = max(1, int(round(n * SPLIT_SHARES["validation"])))
        self.split = np.array(["train"] * n, dtype=object)
        self.split[order[:n_cold]] = "cold"
        self.split[order[n_cold:n_cold + n_val]] = "validation"
        self.text = [self._text(i) for i in range(n)]
        self.media = [self._media(i) for i in range(n)]

    def _text(self, i):
        r = self.rng
        name, words, tags, _ = TOPICS[self.topic[i]]
        topic_words = list(r.choice(words, size=1 if r.random() < 0.7 else 2, replace=False))
        fillers = list(r.choice(FILLER_WORDS, size=int(r.integers(4, 7)), replace=False))
        title_words = topic_words + fillers
        title = " ".join(title_words[j] for j in r.permutation(len(title_words)))
        item_tags = [str(t) for t in r.choice(FILLER_TAGS, size=int(r.integers(2, 4)), replace=False)]
        if r.random() < 0.6:
            item_tags.insert(int(r.integers(0, len(item_tags) + 1)), str(r.choice(tags)))
        author = f"{r.choice(HANDLE_ADJECTIVES)}_{r.choice(HANDLE_NOUNS)}{int(r.integers(1, 100))}"
        return {"title": title[0].upper() + title[1:], "tags": item_tags, "author": author}

    def _media(self, i):
        r = self.rng
        color = lambda: tuple(int(c) for c in r.integers(0, 256, size=3))
        bw, bh = int(r.integers(70, 91)), int(r.integers(50, 66))
        caption = "".join(r.choice(list("abcdefghjkmnpqrstuvwxyz23456789"), size=int(r.integers(3, 7))))
        return {
            "scene": SCENES[int(r.integers(0, len(SCENES)))],
            "seed": int(r.integers(1, 1 << 30)),
            "color_a": color(), "color_b": color(),
            "zoom": float(r.uniform(0.5, 3.0)),
            "hue": int(r.integers(0, 360)),
            "scroll": (float(r.uniform(-0.02, 0.02)), float(r.uniform(-0.02, 0.02))),
            "palette": int(self.palette[i]),
            "palette_jitter": tuple(int(d) for d in r.integers(-24, 25, size=3)),
            "box": (int(r.integers(0, 160 - bw)), int(r.integers(0, 120 - bh)), bw, bh),
            "caption": caption,
            "text_xy": (int(r.integers(0, 100)), int(r.integers(0, 100))),
            "font_size": int(r.integers(12, 22)),
            "rhythm": int(self.rhythm[i]),
            "freq": float(np.exp(r.uniform(np.log(180.0), np.log(900.0)))),
            "amplitude": float(r.uniform(0.2, 0.5)),
        }

    # -- users -------------------------------------------------------------------------
    def _users(self):
        r = self.rng
        vectors = []
        for _ in range(self.n_users):
            k = 1 if r.random() < 0.4 else 2
            topics = r.choice(self.n_topics, size=k, replace=False, p=self.topic_share)
            v = (WEIGHTS["topic"] * self.T[topics].mean(axis=0)
                 + WEIGHTS["palette"] * self.P[r.integers(0, len(PALETTES))]
                 + WEIGHTS["rhythm"] * self.R[r.integers(0, len(RHYTHMS))]
                 + 0.3 * r.standard_normal(TASTE_DIM) / np.sqrt(TASTE_DIM))
            vectors.append(unit(v))
        self.users = np.array(vectors)
        self.user_ids = [f"user-{u:05d}" for u in range(self.n_users)]

    # -- behaviour -----------------------------------------------------------------------
    def next_item(self, user, previous, allowed):
        """One watch: samples an item among `allowed` (a boolean mask)."""
        context = self.users[user] if previous is None else unit(
            ALPHA * self.users[user] + (1 - ALPHA) * unit(self.taste[previous]))
        logits = BETA * (self.taste @ context) + GAMMA * np.log(self.popularity)
        logits = np.where(allowed, logits, -np.inf)
        p = np.exp(logits - logits.max())
        p /= p.sum()
        return int(self.rng.choice(self.n_items, p=p))

    def watch(self, user, allowed, length, previous=None, seen=None):
        """A watch sequence of `length` distinct items from `allowed`."""
        allowed = allowed.copy()
        if seen is not None:
            allowed[seen] = False
        items = []
        for _ in range(length):
            if not allowed.any():
                break
            i = self.next_item(user, previous, allowed)
            items.append(i)
            allowed[i] = False
            previous = i
        return items
