"""k-nearest-neighbour search over L2-normalised embeddings (cosine similarity = dot product).

`NeighbourIndex` holds ids and vectors, takes new photos with `add` (nothing is rebuilt), and
answers `search(queries, k)`. Below `EXACT_LIMIT` photos it is brute force: one float32 matmul per
chunk of queries (exact). From `EXACT_LIMIT` on it moves the vectors into an HNSW graph (faiss-cpu,
inner product) when faiss is importable, and stays exact brute force when it is not.

Measured (2 cores shared with other work, OpenBLAS, dimension 1280 = EfficientNet-Lite2's features,
one query, top 10; bench/curation.py: real embeddings padded with jittered copies): brute force p50
0.9 ms / p95 1.1 ms at 10k and 7.6 / 11 ms at 50k; on random vectors 12 ms at 50k, 45 ms at 100k,
70 ms at 200k. faiss 1.15's HNSW (M 32) at 50k: p50 0.9 ms but 9.5 s to build (45 s on random
vectors). So brute force is cheap (and exact) up to ~60k photos; only above that does the graph's
build time pay. faiss-cpu is a dependency (the similar-photo search, backend/collection/similar.py);
without it, large collections stay brute force.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

EXACT_LIMIT = 60_000  # photos; at or above: an HNSW graph when faiss is installed
CHUNK_CELLS = 1 << 24  # query x base similarities computed at once (64 MiB of float32)
HNSW_LINKS = 32  # faiss IndexHNSWFlat's M
HNSW_SEARCH = 128  # faiss's efSearch (at least 2 k)


def normalise(vectors: np.ndarray) -> np.ndarray:
    """float32 rows scaled to unit length; an all-zero row stays zero."""
    x = np.asarray(vectors, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def with_room(rows: np.ndarray, used: int, needed: int) -> np.ndarray:
    """`rows` if it has `needed` rows, else a copy of its first `used` rows with room for at least
    `needed` (doubling: adding one at a time costs O(1) each, amortised)."""
    if needed <= len(rows):
        return rows
    grown = np.zeros((max(2 * len(rows), needed), *rows.shape[1:]), dtype=rows.dtype)
    grown[:used] = rows[:used]
    return grown


def query_chunks(n_queries: int, n_base: int) -> list[slice]:
    """Slices of the queries such that each chunk's similarity block stays under CHUNK_CELLS."""
    step = max(1, CHUNK_CELLS // max(1, n_base))
    return [slice(s, min(s + step, n_queries)) for s in range(0, n_queries, step)]


def top_k(sims: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(positions, similarities) of the k largest values of each row, largest first."""
    k = min(k, sims.shape[1])
    if k == 0:
        return np.zeros((len(sims), 0), dtype=np.int64), np.zeros((len(sims), 0), dtype=np.float32)
    part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    vals = np.take_along_axis(sims, part, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(vals, order, axis=1)


def exact_search(queries: np.ndarray, base: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force top k of base for each (normalised) query, chunked: (positions, similarities)."""
    pos = np.zeros((len(queries), min(k, len(base))), dtype=np.int64)
    sim = np.zeros(pos.shape, dtype=np.float32)
    for part in query_chunks(len(queries), len(base)):
        pos[part], sim[part] = top_k(queries[part] @ base.T, k)
    return pos, sim


def pairs_above(queries: np.ndarray, base: np.ndarray, threshold: float) -> list[tuple[int, int, float]]:
    """Every (query row, base row, similarity) with similarity >= threshold, chunked brute force."""
    found: list[tuple[int, int, float]] = []
    for part in query_chunks(len(queries), len(base)):
        sims = queries[part] @ base.T
        rows, cols = np.nonzero(sims >= threshold)
        found.extend(zip((rows + part.start).tolist(), cols.tolist(), sims[rows, cols].tolist()))
    return found


def strongest_per_row(pairs: np.ndarray, k: int) -> np.ndarray:
    """The rows of `pairs` (an (n, 3) array of query row, base row, similarity) that are among the
    k most similar of their query row: a cap on how many candidates one photo brings."""
    if len(pairs) == 0:
        return pairs
    order = np.lexsort((-pairs[:, 2], pairs[:, 0]))  # by query row, the most similar first
    ranked = pairs[order]
    first = np.r_[0, np.flatnonzero(np.diff(ranked[:, 0])) + 1]  # where each query row's run starts
    rank = np.arange(len(ranked)) - np.repeat(first, np.diff(np.r_[first, len(ranked)]))
    return ranked[rank < k]


def faiss_module():
    """faiss when it is installed (the optional index library), else None."""
    try:
        import faiss
    except ImportError:
        return None
    return faiss


class NeighbourIndex:
    """Ids and their normalised vectors; `add` grows it, `search` finds the most similar ones."""

    def __init__(self, dim: int, exact_limit: float = EXACT_LIMIT):
        self.dim = dim
        self.exact_limit = exact_limit
        self.ids: list[Hashable] = []
        self._vectors = np.zeros((0, dim), dtype=np.float32)
        self._size = 0
        self._graph = None  # a faiss HNSW index once the size reaches exact_limit

    def __len__(self) -> int:
        return self._size

    @property
    def vectors(self) -> np.ndarray:
        return self._vectors[: self._size]

    @property
    def engine(self) -> str:
        return "faiss-hnsw" if self._graph is not None else "numpy"

    def add(self, ids: Sequence[Hashable], vectors: np.ndarray) -> None:
        x = normalise(vectors)
        if len(ids) != len(x) or x.shape[1] != self.dim:
            raise ValueError(f"{len(ids)} ids for vectors of shape {x.shape}; dimension {self.dim}")
        self._vectors = with_room(self._vectors, self._size, self._size + len(x))
        self._vectors[self._size : self._size + len(x)] = x
        self._size += len(x)
        self.ids.extend(ids)
        if self._graph is not None:
            self._graph.add(x)
        elif self._size >= self.exact_limit:
            self._graph = self._build_graph()

    def _build_graph(self):
        faiss = faiss_module()
        if faiss is None:
            return None
        graph = faiss.IndexHNSWFlat(self.dim, HNSW_LINKS, faiss.METRIC_INNER_PRODUCT)
        graph.hnsw.efSearch = HNSW_SEARCH
        graph.add(self.vectors)
        return graph

    def search_positions(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(positions, similarities), each (n_queries, k'), most similar first; k' = min(k, size)."""
        q = normalise(queries)
        if self._graph is None:
            return exact_search(q, self.vectors, k)
        k = min(k, self._size)
        self._graph.hnsw.efSearch = max(HNSW_SEARCH, 2 * k)
        sims, pos = self._graph.search(q, k)
        return pos.astype(np.int64), sims

    def search(self, queries: np.ndarray, k: int) -> list[list[tuple[Hashable, float]]]:
        """For each query, its k most similar (id, cosine similarity), most similar first."""
        pos, sims = self.search_positions(queries, k)
        return [[(self.ids[p], float(s)) for p, s in zip(prow, srow) if p >= 0] for prow, srow in zip(pos, sims)]
