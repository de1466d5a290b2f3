"""Exact TreeSHAP (Lundberg et al. 2018, Algorithm 2) in numba, on frozen XGBoost tree arrays.

The path-dependent algorithm XGBoost's ``pred_contribs`` and shap's ``TreeExplainer`` run: for
each tree, a depth-first walk carries the "unique path" of features split on so far, with the
share of training cover that reaches the node when the feature is unknown (``zero``) and
whether the row itself follows the path (``one``); at each leaf the path's permutation weights
give every feature on it its Shapley share of the leaf value. Here the recursion is an explicit
stack, everything is float64 (XGBoost's is float32), and a row takes the same branches as
:func:`detectors._kernels.tree_sum_rows` (its value rounded to float32, ``x < threshold``
left, NaN to the node's default side).

Two exact shortcuts over the paper's pseudo-code: at a leaf, the shares of all the path's
features the row does not follow come from one sum (see :func:`_leaf_shares`), and the child
the row follows extends its parent's path in place (only the other child copies it). The
divisions by path length are table look-ups.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numpy.typing import NDArray


@njit(cache=True, nogil=True)
def weight_tables(size: int) -> NDArray[np.float64]:
    """``[rise, fall, 1 / rise, 1 / fall]``, each ``(size, size)``, indexed ``[d, i]``.

    ``rise[d, i] = (i + 1) / (d + 1)`` and ``fall[d, i] = (d - i) / (d + 1)``: the factors by
    which adding element ``d`` to a path moves permutation weight ``i`` up (the new feature
    known) or keeps it (unknown). Multiplying by the tables replaces the divisions of the
    inner loops (``1 / fall[d, d]`` is never used and left 0).
    """
    tables = np.zeros((4, size, size))
    for d in range(size):
        for i in range(d + 1):
            tables[0, d, i] = (i + 1) / (d + 1)
            tables[1, d, i] = (d - i) / (d + 1)
            tables[2, d, i] = (d + 1) / (i + 1)
            if i < d:
                tables[3, d, i] = (d + 1) / (d - i)
    return tables


@njit(cache=True, nogil=True, inline="always")
def _extend(
    feature: NDArray[np.int64],
    zero: NDArray[np.float64],
    one: NDArray[np.float64],
    weight: NDArray[np.float64],
    level: int,
    depth: int,
    zero_fraction: float,
    one_fraction: float,
    feature_index: int,
    tables: NDArray[np.float64],
) -> None:
    """Append element ``depth`` to the path at ``level`` and update its permutation weights."""
    feature[level, depth] = feature_index
    zero[level, depth] = zero_fraction
    one[level, depth] = one_fraction
    weight[level, depth] = 1.0 if depth == 0 else 0.0
    for i in range(depth - 1, -1, -1):
        w = weight[level, i]
        weight[level, i + 1] += one_fraction * w * tables[0, depth, i]
        weight[level, i] = zero_fraction * w * tables[1, depth, i]


@njit(cache=True, nogil=True, inline="always")
def _unwind(
    feature: NDArray[np.int64],
    zero: NDArray[np.float64],
    one: NDArray[np.float64],
    weight: NDArray[np.float64],
    level: int,
    depth: int,
    index: int,
    tables: NDArray[np.float64],
) -> None:
    """Remove element ``index`` from the path at ``level`` (last element ``depth``).

    A path's ``one`` fractions are 0 or 1 (the row follows the split or not), so the division
    by one is left out.
    """
    zero_fraction = zero[level, index]
    if one[level, index] != 0.0:
        next_one = weight[level, depth]
        for i in range(depth - 1, -1, -1):
            w = next_one * tables[2, depth, i]
            next_one = weight[level, i] - w * zero_fraction * tables[1, depth, i]
            weight[level, i] = w
    else:
        scale = 1.0 / zero_fraction
        for i in range(depth - 1, -1, -1):
            weight[level, i] *= scale * tables[3, depth, i]
    for i in range(index, depth):
        feature[level, i] = feature[level, i + 1]
        zero[level, i] = zero[level, i + 1]
        one[level, i] = one[level, i + 1]


@njit(cache=True, nogil=True, inline="always")
def _leaf_shares(
    phi: NDArray[np.float64],
    feature: NDArray[np.int64],
    zero: NDArray[np.float64],
    one: NDArray[np.float64],
    weight: NDArray[np.float64],
    level: int,
    depth: int,
    leaf: float,
    tables: NDArray[np.float64],
) -> None:
    """Add each path feature's share of ``leaf`` to ``phi`` (element 0 is the root's, skipped).

    A feature's share is the path's total weight without it, times ``one - zero``. Without an
    element the row does not follow (one 0, zero z > 0) the total is ``cold_sum / z``: its share
    is ``-cold_sum * leaf`` whatever z is, so the cold elements cost one sum between them.
    """
    cold_sum = 0.0
    for i in range(depth):
        cold_sum += weight[level, i] * tables[3, depth, i]
    for k in range(1, depth + 1):
        z = zero[level, k]
        if one[level, k] != 0.0:
            next_one = weight[level, depth]
            total = 0.0
            for i in range(depth - 1, -1, -1):
                w = next_one * tables[2, depth, i]
                total += w
                next_one = weight[level, i] - w * z * tables[1, depth, i]
            phi[feature[level, k]] += total * (1.0 - z) * leaf
        elif z != 0.0:
            phi[feature[level, k]] -= cold_sum * leaf


@njit(cache=True, nogil=True)
def tree_shap_rows(
    X: NDArray[np.float64],
    roots: NDArray[np.int64],
    feature: NDArray[np.int32],
    threshold: NDArray[np.float64],
    left: NDArray[np.int32],
    right: NDArray[np.int32],
    default_left: NDArray[np.bool_],
    value: NDArray[np.float64],
    fraction: NDArray[np.float64],
    max_depth: int,
    bias: float,
) -> NDArray[np.float64]:
    """TreeSHAP values of each row: ``(n_rows, n_features + 1)``, the last column ``bias``.

    ``fraction`` is each node's cover over its parent's (:func:`tree_expectations`),
    ``max_depth`` the depth of the deepest node (root 0), ``bias`` the base margin plus each
    tree's expected value. Each row sums to ``bias`` plus the leaf values it reaches.
    """
    n_rows, n_features = X.shape
    size = max_depth + 2
    tables = weight_tables(size)
    # Path buffers, one per level: a node's hot child (the branch the row takes) extends its
    # parent's path in place, the cold child extends a copy one level up. The cold subtree is
    # walked first, so the parent's path is still intact when it is copied.
    path_feature = np.empty((size, size), dtype=np.int64)
    path_zero = np.empty((size, size))
    path_one = np.empty((size, size))
    path_weight = np.empty((size, size))
    # Nodes still to visit, with what their parent passes down.
    n_stack = 2 * size
    stack_node = np.empty(n_stack, dtype=np.int64)
    stack_depth = np.empty(n_stack, dtype=np.int64)
    stack_level = np.empty(n_stack, dtype=np.int64)
    stack_copy = np.empty(n_stack, dtype=np.bool_)
    stack_zero = np.empty(n_stack)
    stack_one = np.empty(n_stack)
    stack_feature = np.empty(n_stack, dtype=np.int64)
    out = np.zeros((n_rows, n_features + 1))
    for r in range(n_rows):
        phi = out[r]
        phi[n_features] = bias
        for t in range(roots.shape[0]):
            stack_node[0] = roots[t]
            stack_level[0] = 0
            stack_copy[0] = False
            stack_depth[0] = 0
            stack_zero[0] = 1.0
            stack_one[0] = 1.0
            stack_feature[0] = -1
            top = 1
            while top > 0:
                top -= 1
                node = stack_node[top]
                level = stack_level[top]
                depth = stack_depth[top]
                if stack_copy[top]:
                    for i in range(depth):
                        path_feature[level, i] = path_feature[level - 1, i]
                        path_zero[level, i] = path_zero[level - 1, i]
                        path_one[level, i] = path_one[level - 1, i]
                        path_weight[level, i] = path_weight[level - 1, i]
                _extend(
                    path_feature, path_zero, path_one, path_weight, level, depth,
                    stack_zero[top], stack_one[top], stack_feature[top], tables,
                )  # fmt: skip
                if left[node] < 0:
                    _leaf_shares(
                        phi, path_feature, path_zero, path_one, path_weight, level, depth,
                        value[node], tables,
                    )  # fmt: skip
                    continue
                f = feature[node]
                v = X[r, f]
                if np.isnan(v):
                    go_left = default_left[node]
                else:
                    go_left = np.float64(np.float32(v)) < threshold[node]
                hot = left[node] if go_left else right[node]
                cold = right[node] if go_left else left[node]
                incoming_zero = 1.0
                incoming_one = 1.0
                # Split on this feature before: undo that element, the children redo it.
                for k in range(1, depth + 1):
                    if path_feature[level, k] == f:
                        incoming_zero = path_zero[level, k]
                        incoming_one = path_one[level, k]
                        _unwind(
                            path_feature, path_zero, path_one, path_weight, level, depth, k,
                            tables,
                        )  # fmt: skip
                        depth -= 1
                        break
                stack_node[top] = hot
                stack_level[top] = level
                stack_copy[top] = False
                stack_one[top] = incoming_one
                stack_zero[top] = fraction[hot] * incoming_zero
                stack_node[top + 1] = cold
                stack_level[top + 1] = level + 1
                stack_copy[top + 1] = True
                stack_one[top + 1] = 0.0
                stack_zero[top + 1] = fraction[cold] * incoming_zero
                for slot in (top, top + 1):
                    stack_depth[slot] = depth + 1
                    stack_feature[slot] = f
                top += 2
    return out


@njit(cache=True, nogil=True)
def tree_expectations(
    roots: NDArray[np.int64],
    left: NDArray[np.int32],
    right: NDArray[np.int32],
    value: NDArray[np.float64],
    cover: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64], int]:
    """Each tree's expected value, each node's cover fraction, and the deepest node's depth.

    A node's expected value is its children's weighted by their cover over its own cover, as
    XGBoost computes the bias of ``pred_contribs``; a node's fraction is its cover over its
    parent's (1 at the roots). Depths count from 0 at the root.
    """
    n_trees = roots.shape[0]
    n_nodes = left.shape[0]
    mean = np.zeros(n_nodes)
    fraction = np.ones(n_nodes)
    order = np.empty(n_nodes, dtype=np.int64)
    node_depth = np.zeros(n_nodes, dtype=np.int64)
    expected = np.empty(n_trees)
    max_depth = 0
    for t in range(n_trees):
        # Breadth-first order, then back to front: every child before its parent.
        order[0] = roots[t]
        node_depth[roots[t]] = 0
        head = 0
        tail = 1
        while head < tail:
            node = order[head]
            head += 1
            max_depth = max(max_depth, node_depth[node])
            if left[node] >= 0:
                for child in (left[node], right[node]):
                    node_depth[child] = node_depth[node] + 1
                    fraction[child] = cover[child] / cover[node]
                    order[tail] = child
                    tail += 1
        for k in range(tail - 1, -1, -1):
            node = order[k]
            if left[node] < 0:
                mean[node] = value[node]
            else:
                a = left[node]
                b = right[node]
                mean[node] = (mean[a] * cover[a] + mean[b] * cover[b]) / cover[node]
        expected[t] = mean[roots[t]]
    return expected, fraction, max_depth
