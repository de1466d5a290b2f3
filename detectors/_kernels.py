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
    copy = types.FunctionType(func.__code__.replace(co_name=name, co_qualname=name), func.__globals__, name,
                              func.__defaults__, func.__closure__)
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
def _ecdf_rows(
    X: NDArray[np.float64],
    fill: NDArray[np.float64],
    values: NDArray[np.float64],
    cum: NDArray[np.float64],
    offsets: NDArray[np.int64],
    n_train: float,
    floor: float,
    coef_left: NDArray[np.float64],
    coef_right: NDArray[np.float64],
    copod: bool,
) -> NDArray[np.float64]:
    n_rows, n_features = X.shape
    out = np.empty(n_rows)
    for i in prange(n_rows):
        total = 0.0
        for j in range(n_features):
            v = X[i, j]
            if np.isnan(v):
                v = fill[j]
            lo = offsets[j]
            hi = offsets[j + 1]
            u = values[lo:hi]
            c = cum[lo:hi]
            # u holds unique sorted values: one search gives both #(<= v) and #(< v).
            k = np.searchsorted(u, v, side="right")
            le = c[k - 1] if k > 0 else 0.0
            lt = (c[k - 2] if k > 1 else 0.0) if k > 0 and u[k - 1] == v else le
            p_left = max(le / n_train, floor)
            p_right = max((n_train - lt) / n_train, floor)
            u_left = -np.log(p_left)
            u_right = -np.log(p_right)
            u_skew = u_left * coef_left[j] + u_right * coef_right[j]
            if copod:
                o = max(u_skew, (u_left + u_right) / 2.0)
            else:
                o = max(u_skew, max(u_left, u_right))
            total += o
        out[i] = total
    return out


ecdf_rows = njit(cache=True, nogil=True)(_ecdf_rows)
ecdf_rows_parallel = njit(cache=True, nogil=True, parallel=True)(_renamed(_ecdf_rows, "_ecdf_rows_parallel"))


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
hbos_rows_parallel = njit(cache=True, nogil=True, parallel=True)(_renamed(_hbos_rows, "_hbos_rows_parallel"))


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
tree_sum_rows_parallel = njit(cache=True, nogil=True, parallel=True)(_renamed(_tree_sum_rows, "_tree_sum_rows_parallel"))


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
def _knn_rows(
    X: NDArray[np.float64],
    reference: NDArray[np.float64],
    dist: NDArray[np.float64],
    index: NDArray[np.int64],
) -> None:
    """Fill ``dist``/``index`` (n_rows, k) with each row's k nearest reference rows.

    Euclidean distance summed in column order then square-rooted, as scikit-learn's trees
    do; among equal distances the lower reference index comes first.
    """
    n_rows, n_features = X.shape
    n_ref = reference.shape[0]
    k = dist.shape[1]
    for i in prange(n_rows):
        best_d = dist[i]
        best_i = index[i]
        for q in range(k):
            best_d[q] = np.inf
            best_i[q] = -1
        for r in range(n_ref):
            s = 0.0
            for j in range(n_features):
                diff = X[i, j] - reference[r, j]
                s += diff * diff
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
knn_rows_parallel = njit(cache=True, nogil=True, parallel=True)(_renamed(_knn_rows, "_knn_rows_parallel"))


def knn_query(
    X: NDArray[np.float64], reference: NDArray[np.float64], k: int
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Distances and indices of each row's ``k`` nearest reference rows (brute force).

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features)
        Query rows, no NaN.
    reference : ndarray of shape (n_ref, n_features)
        Rows searched.
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
        knn_rows(X, reference, dist, index)
    else:
        with _PARALLEL_LOCK:
            knn_rows_parallel(X, reference, dist, index)
    return dist, index
