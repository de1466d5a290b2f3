"""Numba kernels behind the detectors' frozen scoring paths (one row or a million, same code)."""

from __future__ import annotations

import threading
import types
from typing import Any

import numba
import numpy as np
from numba import njit, prange
from numpy.typing import NDArray

#: Batches at least this long use the multi-threaded (``prange``) kernels.
PARALLEL_MIN_ROWS = 4096

# Parallel kernel launches are serialised: numba's workqueue layer aborts on concurrent
# launches, and on a few cores concurrent launches gain nothing anyway.
_PARALLEL_LOCK = threading.Lock()


def _renamed(func: Any, name: str) -> Any:
    """A copy of ``func`` under another name.

    numba's on-disk cache keys a compiled kernel by its function's qualified name and line, not
    by the ``parallel`` flag: compiling one function both ways made the parallel kernel load the
    serial one from the cache (measured: no speed-up on 2 threads). A copy with its own name gets
    its own cache entry.
    """
    copy = types.FunctionType(
        func.__code__.replace(co_name=name, co_qualname=name),
        func.__globals__,
        name,
        func.__defaults__,
        func.__closure__,
    )
    copy.__qualname__ = name
    return copy


def run_rows(serial: Any, parallel: Any, n_rows: int, *args: Any) -> NDArray[np.float64]:
    """Call ``serial(*args)`` for small batches, ``parallel(*args)`` for large ones.

    Parameters
    ----------
    serial, parallel : numba dispatchers
        The same kernel compiled without and with ``parallel=True``.
    n_rows : int
        Rows in the batch.
    *args
        The kernel's arguments.

    Returns
    -------
    ndarray of shape (n_rows,)
        The kernel's output.
    """
    if n_rows < PARALLEL_MIN_ROWS or numba.get_num_threads() == 1:
        return serial(*args)  # type: ignore[no-any-return]
    with _PARALLEL_LOCK:
        return parallel(*args)  # type: ignore[no-any-return]


# -- empirical tails (ECOD, COPOD) -----------------------------------------------------------
def _bucket(v: float, lo: float, scale: float, n_buckets: int) -> int:
    """The guide bucket of ``v``: ``floor((v - lo) * scale)`` clipped to ``[0, n_buckets)``.

    Non-decreasing in ``v`` (each floating-point step is), which is all the guide needs: every
    value in a lower bucket is smaller than ``v``, every value in a higher one larger. NaN goes
    to the last bucket, where NaN sorts.
    """
    t = (v - lo) * scale
    if t >= n_buckets or t != t:
        return n_buckets - 1
    if t < 1.0:
        return 0
    return int(t)


bucket = njit(cache=True, nogil=True, inline="always")(_bucket)


def _guide_starts(
    values: NDArray[np.float64], lo: float, scale: float, n_buckets: int
) -> NDArray[np.int64]:
    """``starts[b]`` = how many of the sorted ``values`` fall in buckets below ``b``."""
    starts = np.zeros(n_buckets + 1, dtype=np.int64)
    for v in values:
        starts[bucket(v, lo, scale, n_buckets) + 1] += 1
    return np.cumsum(starts)


guide_starts = njit(cache=True, nogil=True)(_guide_starts)


def _tails_rows(
    X: NDArray[np.float64],
    fill: NDArray[np.float64],
    values: NDArray[np.float64],
    cum: NDArray[np.float64],
    offsets: NDArray[np.int64],
    guide: NDArray[np.int64],
    guide_offsets: NDArray[np.int64],
    guide_lo: NDArray[np.float64],
    guide_scale: NDArray[np.float64],
    n_train: float,
    floor: float,
    coef_left: NDArray[np.float64],
    coef_right: NDArray[np.float64],
) -> NDArray[np.float64]:
    """ECOD (column 0) and COPOD (column 1) scores of each row, from one lookup per value.

    Per column, the value's place among the sorted unique training values is found through a
    guide table (a bucket index over the value range, then a binary search inside the bucket):
    exactly ``np.searchsorted``'s answer, with far fewer cache misses on large training sets.
    """
    n_rows, n_features = X.shape
    out = np.empty((n_rows, 2))
    for i in prange(n_rows):
        total_ecod = 0.0
        total_copod = 0.0
        for j in range(n_features):
            v = X[i, j]
            if np.isnan(v):
                v = fill[j]
            lo = offsets[j]
            g = guide[guide_offsets[j] : guide_offsets[j + 1]]
            b = bucket(v, guide_lo[j], guide_scale[j], g.shape[0] - 1)
            first = lo + g[b]
            u = values[first : lo + g[b + 1]]
            # u holds unique sorted values: one search gives both #(<= v) and #(< v).
            k = first - lo + np.searchsorted(u, v, side="right")
            le = cum[lo + k - 1] if k > 0 else 0.0
            lt = (cum[lo + k - 2] if k > 1 else 0.0) if k > 0 and values[lo + k - 1] == v else le
            p_left = max(le / n_train, floor)
            p_right = max((n_train - lt) / n_train, floor)
            u_left = -np.log(p_left)
            u_right = -np.log(p_right)
            u_skew = u_left * coef_left[j] + u_right * coef_right[j]
            total_ecod += max(u_skew, max(u_left, u_right))
            total_copod += max(u_skew, (u_left + u_right) / 2.0)
        out[i, 0] = total_ecod
        out[i, 1] = total_copod
    return out


tails_rows = njit(cache=True, nogil=True)(_tails_rows)
tails_rows_parallel = njit(cache=True, nogil=True, parallel=True)(
    _renamed(_tails_rows, "_tails_rows_parallel")
)


# -- histograms (HBOS) -----------------------------------------------------------------------
def _hbos_rows(
    X: NDArray[np.float64],
    fill: NDArray[np.float64],
    edges: NDArray[np.float64],
    edge_offsets: NDArray[np.int64],
    log_density: NDArray[np.float64],
    density_offsets: NDArray[np.int64],
    min_log_density: NDArray[np.float64],
    tol: float,
) -> NDArray[np.float64]:
    n_rows, n_features = X.shape
    out = np.empty(n_rows)
    for i in prange(n_rows):
        total = 0.0
        for j in range(n_features):
            v = X[i, j]
            if np.isnan(v):
                v = fill[j]
            e = edges[edge_offsets[j] : edge_offsets[j + 1]]
            d = log_density[density_offsets[j] : density_offsets[j + 1]]
            n_bins = d.shape[0]
            # np.digitize(v, e, right=True) == np.searchsorted(e, v, side="left")
            k = np.searchsorted(e, v, side="left")
            if k == 0:
                s = d[0] if e[0] - v <= (e[1] - e[0]) * tol else min_log_density[j]
            elif k == n_bins + 1:
                if v - e[n_bins] <= (e[n_bins] - e[n_bins - 1]) * tol:
                    s = d[n_bins - 1]
                else:
                    s = min_log_density[j]
            else:
                s = d[k - 1]
            total += s
        out[i] = -total
    return out


hbos_rows = njit(cache=True, nogil=True)(_hbos_rows)
hbos_rows_parallel = njit(cache=True, nogil=True, parallel=True)(
    _renamed(_hbos_rows, "_hbos_rows_parallel")
)


# -- tree ensembles (IsolationForest, XGBoost) -----------------------------------------------
def _tree_sum_rows(
    X: NDArray[np.float64],
    fill: NDArray[np.float64],
    roots: NDArray[np.int64],
    feature: NDArray[np.int32],
    threshold: NDArray[np.float64],
    left: NDArray[np.int32],
    right: NDArray[np.int32],
    default_left: NDArray[np.bool_],
    value: NDArray[np.float64],
    strict: bool,
    impute: bool,
) -> NDArray[np.float64]:
    """Sum over trees of the leaf value each row reaches.

    Feature values are rounded to float32 before comparing, as scikit-learn and XGBoost do.
    ``strict``: go left when ``x < threshold`` (XGBoost) instead of ``x <= threshold``
    (scikit-learn). A NaN goes to ``fill`` when ``impute``, else the node's default side.
    """
    n_rows = X.shape[0]
    n_trees = roots.shape[0]
    out = np.empty(n_rows)
    for i in prange(n_rows):
        total = 0.0
        for t in range(n_trees):
            node = roots[t]
            while left[node] >= 0:
                f = feature[node]
                v = X[i, f]
                if np.isnan(v):
                    if impute:
                        v = fill[f]
                    else:
                        node = left[node] if default_left[node] else right[node]
                        continue
                x32 = np.float64(np.float32(v))
                go_left = x32 < threshold[node] if strict else x32 <= threshold[node]
                node = left[node] if go_left else right[node]
            total += value[node]
        out[i] = total
    return out


tree_sum_rows = njit(cache=True, nogil=True)(_tree_sum_rows)
tree_sum_rows_parallel = njit(cache=True, nogil=True, parallel=True)(
    _renamed(_tree_sum_rows, "_tree_sum_rows_parallel")
)


#: Rows that walk the same isolation tree together: their walks are independent, so the CPU
#: overlaps them, and the tree stays in cache while they do.
ISOLATION_BLOCK = 64


def _isolation_layout(
    roots: NDArray[np.int64],
    left: NDArray[np.int32],
    right: NDArray[np.int32],
    feature: NDArray[np.int32],
    threshold: NDArray[np.float64],
    value: NDArray[np.float64],
) -> tuple[
    NDArray[np.int64],
    NDArray[np.int64],
    NDArray[np.int32],
    NDArray[np.float64],
    NDArray[np.int64],
    NDArray[np.float64],
]:
    """Renumber each tree breadth-first so that a node's children sit side by side.

    Returns ``(roots, depths, feature, threshold, child, value)``: the right child of an
    internal node is ``child + 1``; a leaf is its own child with threshold ``+inf`` (no value
    goes right of it), so a walk of a fixed ``depths[t]`` steps ends on the same leaf as the
    branching walk, and needs no test for leaves.
    """
    n_nodes = left.shape[0]
    new_feature = np.zeros(n_nodes, dtype=np.int32)
    new_threshold = np.full(n_nodes, np.inf)
    new_child = np.zeros(n_nodes, dtype=np.int64)
    new_value = np.zeros(n_nodes)
    new_roots = np.empty(roots.shape[0], dtype=np.int64)
    depths = np.zeros(roots.shape[0], dtype=np.int64)
    queue = np.empty(n_nodes, dtype=np.int64)
    level = np.empty(n_nodes, dtype=np.int64)
    placed = np.empty(n_nodes, dtype=np.int64)
    next_id = 0
    for t in range(roots.shape[0]):
        head = 0
        tail = 1
        queue[0] = roots[t]
        level[0] = 0
        placed[0] = next_id
        new_roots[t] = next_id
        next_id += 1
        while head < tail:
            old = queue[head]
            new = placed[head]
            depths[t] = max(depths[t], level[head])
            new_value[new] = value[old]
            if left[old] < 0:
                new_child[new] = new
            else:
                new_feature[new] = feature[old]
                new_threshold[new] = threshold[old]
                new_child[new] = next_id
                for side in (left[old], right[old]):
                    queue[tail] = side
                    level[tail] = level[head] + 1
                    placed[tail] = next_id
                    next_id += 1
                    tail += 1
            head += 1
    return new_roots, depths, new_feature, new_threshold, new_child, new_value


isolation_layout = njit(cache=True, nogil=True)(_isolation_layout)


def _isolation_rows(
    X: NDArray[np.float64],
    fill: NDArray[np.float64],
    roots: NDArray[np.int64],
    depths: NDArray[np.int64],
    feature: NDArray[np.int32],
    threshold: NDArray[np.float64],
    child: NDArray[np.int64],
    value: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Sum over isolation trees (laid out by :func:`isolation_layout`) of each row's leaf value.

    Values are imputed and rounded to float32 once per row, then compared as scikit-learn
    does (left when ``x <= threshold``); each row's sum runs over the trees in order, as in
    :func:`tree_sum_rows`, so the sums are the same to the last bit.
    """
    n_rows, n_features = X.shape
    n_blocks = (n_rows + ISOLATION_BLOCK - 1) // ISOLATION_BLOCK
    out = np.empty(n_rows)
    for block in prange(n_blocks):
        start = block * ISOLATION_BLOCK
        n = min(ISOLATION_BLOCK, n_rows - start)
        x32 = np.empty((n, n_features))
        for r in range(n):
            for f in range(n_features):
                v = X[start + r, f]
                if np.isnan(v):
                    v = fill[f]
                x32[r, f] = np.float64(np.float32(v))
        total = np.zeros(n)
        for t in range(roots.shape[0]):
            root = roots[t]
            depth = depths[t]
            for r in range(n):
                node = root
                for _ in range(depth):
                    node = child[node] + (1 if x32[r, feature[node]] > threshold[node] else 0)
                total[r] += value[node]
        for r in range(n):
            out[start + r] = total[r]
    return out


isolation_rows = njit(cache=True, nogil=True)(_isolation_rows)
isolation_rows_parallel = njit(cache=True, nogil=True, parallel=True)(
    _renamed(_isolation_rows, "_isolation_rows_parallel")
)


def impute(X: NDArray[np.float64], fill: NDArray[np.float64]) -> NDArray[np.float64]:
    """``X`` with each NaN replaced by its column's fill value (a copy only if needed).

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features)
        Rows to impute.
    fill : ndarray of shape (n_features,)
        Value per column.

    Returns
    -------
    ndarray of shape (n_rows, n_features)
        ``X`` itself when it has no NaN, else an imputed copy.
    """
    mask = np.isnan(X)
    if not mask.any():
        return X
    return np.where(mask, fill[np.newaxis, :], X)


# -- nearest neighbours, brute force (KNN, LOF on small reference sets) ---------------------
#: Query rows per parallel task (each task keeps one row of squared distances).
_KNN_BLOCK = 256

def _knn_rows(
    X: NDArray[np.float64],
    reference_t: NDArray[np.float64],
    dist: NDArray[np.float64],
    index: NDArray[np.int64],
) -> None:
    """Fill ``dist``/``index`` (n_rows, k) with each row's k nearest reference rows.

    ``reference_t`` is the reference set transposed (n_features, n_ref). Euclidean distance
    summed in column order then square-rooted, as scikit-learn's trees do; among equal
    distances the lower reference index comes first. Each row's squared distances to all
    reference rows are accumulated column by column (a loop over reference rows the
    compiler vectorises; every distance is still summed in column order, so it is the same
    number as summed alone), then offered to the k best in reference order.
    """
    n_rows, n_features = X.shape
    n_ref = reference_t.shape[1]
    k = dist.shape[1]
    n_blocks = (n_rows + _KNN_BLOCK - 1) // _KNN_BLOCK
    for b in prange(n_blocks):
        acc = np.empty(n_ref, dtype=np.float64)
        for i in range(b * _KNN_BLOCK, min((b + 1) * _KNN_BLOCK, n_rows)):
            acc[:] = 0.0  # 0 + d * d is d * d exactly: the same sums as starting at column 0
            for j in range(n_features):
                xj = X[i, j]
                ref = reference_t[j]
                for r in range(n_ref):
                    diff = xj - ref[r]
                    acc[r] += diff * diff
            best_d = dist[i]
            best_i = index[i]
            for q in range(k):
                best_d[q] = np.inf
                best_i[q] = -1
            for r in range(n_ref):
                s = acc[r]
                if s < best_d[k - 1]:
                    p = k - 1
                    while p > 0 and best_d[p - 1] > s:
                        best_d[p] = best_d[p - 1]
                        best_i[p] = best_i[p - 1]
                        p -= 1
                    best_d[p] = s
                    best_i[p] = r
            for q in range(k):
                best_d[q] = np.sqrt(best_d[q])


knn_rows = njit(cache=True, nogil=True)(_knn_rows)
knn_rows_parallel = njit(cache=True, nogil=True, parallel=True)(
    _renamed(_knn_rows, "_knn_rows_parallel")
)


def knn_query(
    X: NDArray[np.float64], reference_t: NDArray[np.float64], k: int
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Distances and indices of each row's ``k`` nearest reference rows (brute force).

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features)
        Query rows, no NaN.
    reference_t : ndarray of shape (n_features, n_ref), C-contiguous
        The rows searched, transposed (``np.ascontiguousarray(reference.T)``, made once).
    k : int
        Neighbours per row, at most ``n_ref``.

    Returns
    -------
    dist, index : ndarrays of shape (n_rows, k)
        Sorted by increasing distance.
    """
    dist = np.empty((X.shape[0], k), dtype=np.float64)
    index = np.empty((X.shape[0], k), dtype=np.int64)
    if X.shape[0] < PARALLEL_MIN_ROWS // 8 or numba.get_num_threads() == 1:
        knn_rows(X, reference_t, dist, index)
    else:
        with _PARALLEL_LOCK:
            knn_rows_parallel(X, reference_t, dist, index)
    return dist, index
