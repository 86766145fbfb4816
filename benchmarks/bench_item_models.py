"""EASE's two forms and item-kNN against implicit, side by side in one run (issue 16).

Usage (from the repository root):

    python benchmarks/bench_item_models.py ease [users|items|users-dense]  # Last.fm shape
    python benchmarks/bench_item_models.py itemknn [THREADS]        # Amazon Video Games shape

``ease`` fits EASE at Last.fm's shape (1,883 customers x 17,626 artists, about 49 each, a
Zipf-like long tail) in the form asked for (``users``: what the backend stores, no B;
``items``: B by the items x items inverse, as before; ``users-dense``: B materialised from the
users form), in this process, and prints seconds, the peak of
numpy's allocations (tracemalloc) and the bytes the model stores, then top-10 for every
customer. Run each form in its own process: a peak is then that form's alone.

``itemknn`` fits growthrec's itemknn and implicit's CosineRecommender / BM25Recommender on one
matrix at Amazon Video Games' shape (30,901 x 23,698, about 8 purchases each, long tail), both
on ``THREADS`` threads (default 2; implicit's ``num_threads``, BLAS capped at 1 for both), best
of three fits each, and reports how many neighbour lists and top-10 lists agree.
"""

from __future__ import annotations

import sys
import time
import tracemalloc
import warnings

import numpy as np
import scipy.sparse as sp

#: name -> (customers, items, mean purchases per customer)
SHAPES = {
    "lastfm": (1_883, 17_626, 49.3),
    "amazon-video-games": (30_901, 23_698, 8.0),
}


def long_tail_matrix(shape: str, seed: int = 0) -> sp.csr_matrix:
    """A users x items count matrix with Zipf-like item popularity (exponent 1) and a skewed
    number of purchases per customer (at least 1), like public implicit-feedback data."""
    n_users, n_items, mean = SHAPES[shape]
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, n_items + 1) ** 1.0
    popularity = rng.permutation(popularity / popularity.sum())
    per_user = np.maximum(1, rng.lognormal(np.log(mean) - 0.5, 1.0, n_users)).astype(int)
    users = np.repeat(np.arange(n_users), per_user)
    items = rng.choice(n_items, size=users.size, p=popularity)
    counts = rng.geometric(0.3, users.size).astype(np.float32)
    matrix = sp.csr_matrix((counts, (users, items)), shape=(n_users, n_items))
    matrix.sum_duplicates()
    return matrix


def _timed(fit):
    """(result, seconds, peak MiB of numpy allocations during ``fit()``)."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    start = time.perf_counter()
    result = fit()
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return result, seconds, peak


def bench_ease(form: str = "users", l2: float = 500.0) -> None:
    """One EASE fit at Last.fm shape in ``form``; then top-10 for every customer."""
    from threadpoolctl import threadpool_limits

    from growthrec.backends.ease import EASEBackend, ease_weights, user_form_arrays
    from growthrec.core.ranking import top_k

    matrix = long_tail_matrix("lastfm")
    print(f"Last.fm shape {matrix.shape[0]} x {matrix.shape[1]}, {matrix.nnz} pairs; {form}")
    with threadpool_limits(2):
        if form == "users":
            arrays, seconds, peak = _timed(lambda: user_form_arrays(matrix, l2))
        else:  # the dense B: by the items form (today's), or materialised from the users form
            wanted = "items" if form == "items" else "users"
            b, seconds, peak = _timed(lambda: ease_weights(matrix, l2, form=wanted))
            arrays = {"item_weights": b}
        stored = sum(a.nbytes for a in arrays.values()) / 2**20
        print(f"  fit {seconds:.2f} s, peak {peak:.0f} MiB, stores {stored:.1f} MiB")
        backend = EASEBackend()
        start = time.perf_counter()
        for begin in range(0, matrix.shape[0], 1000):
            rows = matrix[begin : begin + 1000]
            scores = backend.score(arrays, {}, rows, np.arange(begin, begin + rows.shape[0]))
            top_k(scores, 10)
        print(f"  scores and top-10 for every customer {time.perf_counter() - start:.2f} s")


def _implicit(similarity: str, neighbors: int, matrix: sp.csr_matrix, threads: int):
    from implicit.nearest_neighbours import BM25Recommender, CosineRecommender

    kind = CosineRecommender if similarity == "cosine" else BM25Recommender
    model = kind(K=neighbors, num_threads=threads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(matrix, show_progress=False)
    return model


def bench_itemknn(threads: int = 2, neighbors: int = 100, rounds: int = 3) -> None:
    """growthrec's itemknn and implicit's, the same matrix and threads: best of ``rounds``."""
    from threadpoolctl import threadpool_limits

    from growthrec.backends.contract import resolve_params
    from growthrec.backends.itemknn import ItemKNNBackend
    from growthrec.core.ranking import top_k

    matrix = long_tail_matrix("amazon-video-games")
    print(
        f"Amazon Video Games shape {matrix.shape[0]} x {matrix.shape[1]}, {matrix.nnz} pairs; "
        f"{threads} threads, neighbors={neighbors}"
    )
    ours_backend = ItemKNNBackend()
    for similarity in ("cosine", "bm25"):
        params = resolve_params(
            ours_backend, {"neighbors": neighbors, "similarity": similarity, "threads": threads}
        )
        rng = np.random.default_rng(0)
        with threadpool_limits(1, "blas"):
            ours_times, theirs_times = [], []
            for _ in range(rounds):  # interleaved: both sides see the same machine load
                start = time.perf_counter()
                arrays = ours_backend.fit(matrix, params, rng)
                ours_times.append(time.perf_counter() - start)
                start = time.perf_counter()
                theirs = _implicit(similarity, neighbors, matrix, threads)
                theirs_times.append(time.perf_counter() - start)
        ours = sp.csr_matrix(
            (arrays["similarity_data"], arrays["similarity_indices"], arrays["similarity_indptr"]),
            shape=(matrix.shape[1],) * 2,
        )
        reference = theirs.similarity.tocsr().tolil()
        reference.setdiag(0)
        reference = reference.tocsr()
        reference.eliminate_zeros()
        same_rows = np.mean(
            [set(ours[i].indices) == set(reference[i].indices) for i in range(matrix.shape[1])]
        )
        users = np.arange(0, matrix.shape[0], 10)
        x = matrix[users]
        scores = ours_backend.score(arrays, params, x, users)
        scores[np.repeat(np.arange(users.size), np.diff(x.indptr)), x.indices] = -np.inf
        ours_top, ours_scores = top_k(scores, 10)
        their_items, their_scores = theirs.recommend(users, x, N=10)
        positive = their_scores > 0  # past them implicit pads with bought items at score 0
        same = [
            np.array_equal(ours_top[u][positive[u]], their_items[u][positive[u]])
            for u in range(users.size)
        ]
        tied_only = [  # the same scores rank by rank: the lists differ only among equal scores
            np.allclose(ours_scores[u][positive[u]], their_scores[u][positive[u]], rtol=1e-5)
            for u in range(users.size)
        ]
        agree, agree_scores = np.mean(same), np.mean(tied_only)
        best_ours, best_theirs = min(ours_times), min(theirs_times)
        runs_ours = ", ".join(f"{t:.2f}" for t in ours_times)
        runs_theirs = ", ".join(f"{t:.2f}" for t in theirs_times)
        print(
            f"  {similarity}: growthrec {best_ours:.2f} s (runs {runs_ours}), "
            f"implicit {best_theirs:.2f} s (runs {runs_theirs}), "
            f"ratio {best_ours / best_theirs:.2f}; same neighbour sets {same_rows:.2%} of items, "
            f"same top-10 {agree:.2%} of {users.size} customers, same top-10 scores "
            f"{agree_scores:.2%}"
        )


if __name__ == "__main__":
    command, *rest = sys.argv[1:] or ["ease"]
    if command == "ease":
        bench_ease(*rest)
    elif command == "itemknn":
        bench_itemknn(*(int(r) for r in rest))
    else:
        sys.exit(__doc__)
