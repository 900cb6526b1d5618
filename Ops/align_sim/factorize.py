"""ID embeddings the way a recommender gets them: implicit-feedback matrix
factorization (weighted ALS, Hu, Koren & Volinsky 2008) of the user x item watch
matrix. Numpy only, deterministic for a seed (one BLAS thread; see Ops/align-sim)."""

import numpy as np


def implicit_als(watches, n_users, n_items, rng, factors=32, iterations=12, reg=0.1, alpha=20.0):
    """watches: list of (user, item) pairs (repeats add confidence). Returns the item
    factors (n_items, factors); items nobody watched get a zero vector."""
    counts = {}
    for u, i in watches:
        counts[(u, i)] = counts.get((u, i), 0) + 1
    by_user = [[] for _ in range(n_users)]
    by_item = [[] for _ in range(n_items)]
    for (u, i), c in sorted(counts.items()):
        by_user[u].append((i, c))
        by_item[i].append((u, c))
    X = rng.normal(0.0, 0.1, (n_users, factors))
    Y = rng.normal(0.0, 0.1, (n_items, factors))
    eye = reg * np.eye(factors)

    def solve(fixed, rows):
        gram = fixed.T @ fixed
        out = np.zeros((len(rows), factors))
        for r, entries in enumerate(rows):
            if not entries:
                continue
            idx = np.array([e[0] for e in entries])
            conf = 1.0 + alpha * np.array([e[1] for e in entries], dtype=float)
            F = fixed[idx]
            A = gram + (F.T * (conf - 1.0)) @ F + eye
            b = F.T @ conf
            out[r] = np.linalg.solve(A, b)
        return out

    for _ in range(iterations):
        X = solve(Y, by_user)
        Y = solve(X, by_item)
    return Y
