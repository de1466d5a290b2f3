"""Ensembles of detectors: a label-free default, and a few-label one that adds XGBoost on top."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Self, cast

import numpy as np
from numpy.typing import NDArray

from detectors.base import ArrayLike, BaseDetector, _reject_infinite
from detectors.empirical import _EmpiricalTails
from detectors.normalisation import fit_robust_scale, robust_z
from detectors.registry import build

__all__ = ["DEFAULT_MEMBERS", "Ensemble", "redundancy_weights"]

#: The default members: isolation, per-feature tails (ECOD and COPOD: they share one
#: family's weight through the redundancy weighting), histogram density, distance to
#: neighbours (on robust-scaled columns, a 1,000-row reference sample, the log of the
#: distance). See docs/ensembles.md for the measurements.
DEFAULT_MEMBERS: tuple[dict[str, Any], ...] = (
    {"detector": "iforest", "params": {"n_estimators": 100}},
    {"detector": "ecod"},
    {"detector": "copod"},
    {"detector": "hbos", "params": {"n_bins": "auto"}},
    {
        "detector": "knn",
        "params": {"n_neighbors": 5, "max_fit_samples": 1000},
        "scale": "robust",
        "transform": "log",
    },
)

#: Member detectors that take a ``random_state`` from the ensemble.
_SEEDED = ("iforest", "knn", "lof")
_MEMBER_KEYS = {"detector", "params", "standardise", "scale", "transform", "name"}
#: How a member's input columns may be scaled (training statistics, frozen at fit).
_SCALES = (None, "standard", "robust")
#: How a member's raw scores may be transformed before normalisation.
_TRANSFORMS = (None, "log")
#: ``transform="log"`` takes ``log(max(score, floor))``, the floor this share of the median
#: positive training score: a distance of 0 (a duplicate row) stays finite.
_LOG_FLOOR = 1e-9
_WEIGHTINGS = ("redundancy", "equal")
#: Training rows (seeded sample) used to measure how much members agree.
_CORRELATION_ROWS = 5000
#: Up to this many rows, :func:`_combine` sums member scores in Python floats.
_FEW_ROWS = 16


def _ranks(z: NDArray[np.float64]) -> NDArray[np.float64]:
    """Column-wise ranks (ties averaged), so that Pearson on them is Spearman."""
    ranks = np.empty_like(z)
    for j in range(z.shape[1]):
        col = z[:, j]
        order = np.argsort(col, kind="stable")
        sorted_col = col[order]
        # average rank over runs of ties
        starts = np.r_[0, np.flatnonzero(sorted_col[1:] != sorted_col[:-1]) + 1]
        ends = np.r_[starts[1:], col.shape[0]]
        mean_rank = (starts + ends - 1) / 2.0
        ranks[order, j] = np.repeat(mean_rank, ends - starts)
    return ranks


def redundancy_weights(z: NDArray[np.float64]) -> NDArray[np.float64]:
    """Member weights ``1 / sum_k rho_jk ** 2`` (Spearman rho between members), summing to 1.

    A member that agrees with no other gets the largest weight; two members that rank rows
    the same way share the weight one of them would get alone. So each independent source
    of evidence counts about once, however many near-copies of a family are members.

    Parameters
    ----------
    z : ndarray of shape (n_rows, n_members)
        Normalised member scores of training rows.

    Returns
    -------
    ndarray of shape (n_members,)

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> a, b = rng.normal(size=(2, 1000))
    >>> redundancy_weights(np.column_stack([a, a, b])).round(2).tolist()
    [0.25, 0.25, 0.5]
    """
    if z.shape[1] == 1:
        return np.ones(1)
    ranks = _ranks(z)
    ranks -= ranks.mean(axis=0)
    norms = np.sqrt((ranks**2).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = (ranks.T @ ranks) / np.outer(norms, norms)
    rho = np.where(np.isfinite(rho), rho, 0.0)  # a constant member agrees with nobody
    np.fill_diagonal(rho, 1.0)
    weights = 1.0 / (rho**2).sum(axis=1)
    return weights / weights.sum()


def _member_specs(members: Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    raw = DEFAULT_MEMBERS if members is None else members
    if isinstance(raw, str | bytes) or not isinstance(raw, Sequence) or len(raw) == 0:
        raise ValueError(f"members must be a non-empty list of member specs, got {raw!r}")
    specs: list[dict[str, Any]] = []
    for i, spec in enumerate(raw):
        if not isinstance(spec, Mapping) or "detector" not in spec:
            raise ValueError(
                f"member #{i + 1} must be a mapping with a 'detector' name, got {spec!r}"
            )
        unknown = sorted(set(spec) - _MEMBER_KEYS)
        if unknown:
            raise ValueError(
                f"member #{i + 1} has unknown keys {unknown}; expected some of {sorted(_MEMBER_KEYS)}"
            )
        params = dict(spec.get("params") or {})
        name = str(spec.get("name") or spec["detector"])
        scale = spec.get("scale")
        if spec.get("standardise", False):  # the older spelling of scale="standard"
            if scale not in (None, "standard"):
                raise ValueError(
                    f"member #{i + 1} sets both standardise=True and scale={scale!r}; "
                    "use scale alone"
                )
            scale = "standard"
        if scale not in _SCALES:
            raise ValueError(f"member #{i + 1} scale must be one of {_SCALES}, got {scale!r}")
        transform = spec.get("transform")
        if transform not in _TRANSFORMS:
            raise ValueError(
                f"member #{i + 1} transform must be one of {_TRANSFORMS}, got {transform!r}"
            )
        specs.append(
            {
                "name": name,
                "detector": str(spec["detector"]),
                "params": params,
                "scale": scale,
                "transform": transform,
            }
        )
    names = [s["name"] for s in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"member names must be unique (set 'name'), got duplicates {duplicates}")
    return specs


def _ecdf_knots(scores: NDArray[np.float64], n_knots: int = 1001) -> NDArray[np.float64]:
    """Quantiles of ``scores`` at ``n_knots`` evenly spaced levels (a compact frozen ECDF)."""
    return np.quantile(scores, np.linspace(0.0, 1.0, n_knots))


def _ecdf(scores: NDArray[np.float64], knots: NDArray[np.float64]) -> NDArray[np.float64]:
    """The share of training scores below ``scores`` (interpolated on the knots), in [0, 1]."""
    levels = np.linspace(0.0, 1.0, knots.shape[0])
    # ties in the knots (discrete scores) would make interp pick the lowest level; use the
    # midpoint of the tied run instead, as a rank with ties averaged does
    unique, first = np.unique(knots, return_index=True)
    last = np.r_[first[1:] - 1, knots.shape[0] - 1]
    mid = (levels[first] + levels[last]) / 2.0
    if unique.shape[0] == 1:
        return np.full(np.shape(scores), 0.5)
    return np.interp(scores, unique, mid)


class Ensemble(BaseDetector):
    """Several outlier detectors combined, and optionally XGBoost trained on a few labels.

    Unsupervised (the default): each member is fitted on ``X``; its training scores give a
    robust centre (median) and scale (IQR), frozen at fit; a new row's member scores are
    turned into robust z-scores (floored at -5, log-compressed above 3 so that no single
    member's extreme vote outweighs the others) and averaged with **redundancy weights**
    frozen at fit: member ``j`` gets ``1 / sum_k rho_jk ** 2`` (Spearman correlation of the
    members' training scores), so members that rank rows alike share one vote and each
    independent view counts about once. Higher means more anomalous. The default members
    are IForest, ECOD, COPOD, HBOS with automatic bins and KNN (the log of the distance to
    the 5th neighbour among 1,000 reference rows, on columns centred on their median and
    divided by their IQR): on the eight ADBench development sets this beat every single
    detector on mean ROC-AUC while needing no labels (see ``docs/ensembles.md``).

    Few labels (``supervised=True``): ``fit(X, y)`` with ``y = 1`` for the frauds an
    investigator confirmed and ``0`` for every other row, *unlabelled*, not known normal.
    The unsupervised members are fitted on all of ``X`` as above; XGBoost is then trained
    on ``X`` plus the members' z-scores (XGBOD, Zhao & Hryniewicki 2018) with positives
    up-weighted by ``sqrt(n_unlabelled / n_labelled)``, and unlabelled rows that the
    unsupervised ensemble ranks high down-weighted (kept with probability ``1 - rank ** 4``): they
    may be frauds nobody reviewed yet (a positive-unlabelled weighting). The score is XGBoost's output.

    Parameters
    ----------
    members : list of mapping, optional
        Member specs ``{"detector": name, "params": {...}, "scale": None | "standard" |
        "robust", "transform": None | "log", "name": str}``; ``detector`` is a
        :func:`detectors.build` name; ``scale`` centres and scales the columns before the
        member sees them (for distance-based members), ``"standard"`` by the training mean
        and standard deviation, ``"robust"`` by the training median and IQR (a heavy-tailed
        column then spreads its extremes instead of squashing its bulk);
        ``"standardise": True`` is the older spelling of ``scale="standard"``;
        ``transform="log"`` takes the log of the member's raw score before normalisation
        (for unbounded scores such as distances); ``name`` defaults to ``detector``.
        ``None`` uses :data:`DEFAULT_MEMBERS`.
    weighting : {"redundancy", "equal"}, default "redundancy"
        How member z-scores are averaged (see above); ``"equal"``: plain mean.
    supervised : bool, default False
        Train XGBoost on member scores and features from a few labels (see above).
    xgboost_params : mapping, optional
        Extra parameters for the ``"xgboost"`` detector in supervised mode.
    unlabelled_weight_power : float, default 4.0
        In supervised mode, an unlabelled row of unsupervised rank ``r`` in [0, 1] gets
        weight ``1 - r ** power``; ``0`` disables the down-weighting.
    random_state : int, default 0
        Seed handed to members that take one, and to XGBoost.
    contamination : float, default 0.1
        PyOD compatibility only (``threshold_`` / ``labels_``).

    Attributes
    ----------
    members_ : list of BaseDetector
        The fitted members, in :attr:`member_names_` order.
    centres_, scales_ : ndarray of shape (n_members,)
        Frozen robust statistics of each member's (transformed) training scores.
    member_scaling_, member_transforms_ : list
        Each member's ``scale`` and ``transform`` option, in member order.
    weights_ : ndarray of shape (n_members,)
        Frozen member weights (sum to 1).
    supervised_ : BaseDetector or None
        The fitted XGBoost detector (supervised mode).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(500, 3))
    >>> ens = Ensemble().fit(X)
    >>> sorted(ens.member_scores(X[:2]))
    ['copod', 'ecod', 'hbos', 'iforest', 'knn']
    >>> bool(ens.score_samples(np.array([[6.0, 6.0, 6.0]]))[0] > ens.decision_scores_.max())
    True
    """

    def __init__(
        self,
        members: Sequence[Mapping[str, Any]] | None = None,
        weighting: str = "redundancy",
        supervised: bool = False,
        xgboost_params: Mapping[str, Any] | None = None,
        unlabelled_weight_power: float = 4.0,
        random_state: int = 0,
        contamination: float = 0.1,
    ) -> None:
        self.members = members
        self.weighting = weighting
        self.supervised = supervised
        self.xgboost_params = xgboost_params
        self.unlabelled_weight_power = unlabelled_weight_power
        self.random_state = random_state
        self.contamination = contamination

    # -- fitting -----------------------------------------------------------------------------
    def _check_params(self) -> list[dict[str, Any]]:
        self._check_contamination()
        if self.weighting not in _WEIGHTINGS:
            raise ValueError(f"weighting must be one of {_WEIGHTINGS}, got {self.weighting!r}")
        if not isinstance(self.supervised, bool):
            raise ValueError(f"supervised must be True or False, got {self.supervised!r}")
        power = self.unlabelled_weight_power
        if isinstance(power, bool) or not isinstance(power, int | float) or power < 0:
            raise ValueError(f"unlabelled_weight_power must be a number >= 0, got {power!r}")
        return _member_specs(self.members)

    def fit(self, X: ArrayLike, y: NDArray[Any] | None = None) -> Self:
        """Fit every member on ``X`` and freeze the normalisation (and XGBoost if supervised).

        Parameters
        ----------
        X : DataFrame or ndarray of shape (n_rows, n_features)
            Training rows; NaN is missing (each member imputes its own way).
        y : array of shape (n_rows,), optional
            Supervised mode only: 1 = confirmed fraud, 0 = anything else (unlabelled).

        Returns
        -------
        self
        """
        specs = self._check_params()
        arr = self._validate_fit_input(X)
        if self.supervised and y is None:
            raise ValueError("supervised=True expected labels y (1 = confirmed fraud), got None")
        self.member_names_ = [s["name"] for s in specs]
        self.member_scaling_ = [s["scale"] for s in specs]
        self.member_transforms_ = [s["transform"] for s in specs]
        self._fit_column_scaling(arr)
        scaled = self._scaled_inputs(arr)
        members: list[BaseDetector] = []
        raw = np.empty((arr.shape[0], len(specs)), dtype=np.float64)
        floors = np.zeros(len(specs), dtype=np.float64)
        for j, spec in enumerate(specs):
            params = dict(spec["params"])
            if spec["detector"] in _SEEDED:
                params.setdefault("random_state", self.random_state)
            member = build(spec["detector"], **params)
            if member.supervised:
                raise ValueError(
                    f"member {spec['name']!r} must be an unsupervised detector, "
                    f"got the supervised {type(member).__name__}"
                )
            member.fit(scaled[spec["scale"]])
            raw[:, j] = member.decision_scores_
            if spec["transform"] == "log":
                positive = raw[:, j][np.isfinite(raw[:, j]) & (raw[:, j] > 0)]
                median = float(np.median(positive)) if positive.size else 1.0
                floors[j] = _LOG_FLOOR * median
            members.append(member)
        self.members_ = members
        self._tails_shared: list[int | None] | None = None  # worked out again for these members
        self.transform_floors_ = floors
        raw = self._transform(raw)
        stats = [fit_robust_scale(raw[:, j]) for j in range(raw.shape[1])]
        self.centres_ = np.array([c for c, _ in stats], dtype=np.float64)
        self.scales_ = np.array([s for _, s in stats], dtype=np.float64)
        z = robust_z(raw, self.centres_, self.scales_)
        if self.weighting == "equal":
            self.weights_ = np.full(z.shape[1], 1.0 / z.shape[1])
        else:
            rng = np.random.default_rng(self.random_state)
            n_rows = min(z.shape[0], _CORRELATION_ROWS)
            rows = np.sort(rng.choice(z.shape[0], size=n_rows, replace=False))
            self.weights_ = redundancy_weights(z[rows])
        unsupervised = _combine(z, self.weights_)
        self.unsupervised_knots_ = _ecdf_knots(unsupervised)
        if self.supervised:
            self.supervised_: BaseDetector | None = self._fit_supervised(arr, z, unsupervised, y)
            self._set_training_outputs(self.supervised_.decision_scores_)
        else:
            self.supervised_ = None
            self._set_training_outputs(unsupervised)
        return self

    def _fit_supervised(
        self,
        arr: NDArray[np.float64],
        z: NDArray[np.float64],
        unsupervised: NDArray[np.float64],
        y: Any,
    ) -> BaseDetector:
        labels = np.asarray(y, dtype=np.float64).ravel()
        if labels.shape[0] != arr.shape[0]:
            raise ValueError(
                f"y must have {arr.shape[0]} labels (one per row), got {labels.shape[0]}"
            )
        if not np.isin(labels, (0.0, 1.0)).all():
            raise ValueError(
                "y must hold 1 (confirmed fraud) and 0 (unlabelled or normal), got values "
                f"{sorted(set(np.unique(labels).tolist()) - {0.0, 1.0})[:5]}"
            )
        n_pos = int(labels.sum())
        n_unlabelled = int(labels.shape[0] - n_pos)
        if n_pos == 0 or n_unlabelled == 0:
            raise ValueError(
                f"y must hold both labelled frauds and other rows, got {n_pos} frauds and "
                f"{n_unlabelled} others"
            )
        params: dict[str, Any] = {"random_state": self.random_state, "min_positives": 1}
        params["balance"] = float(np.sqrt(n_unlabelled / n_pos))
        params.update(dict(self.xgboost_params or {}))
        model = build("xgboost", **params)
        rank = _ecdf(unsupervised, self.unsupervised_knots_)
        power = float(self.unlabelled_weight_power)
        # power 0 disables the down-weighting (rank ** 0 would drop every unlabelled row)
        down = 1.0 - rank**power if power > 0 else np.ones_like(rank)
        weights = np.where(labels == 1.0, 1.0, down)
        # the xgboost detector takes no sample weights: keep each unlabelled row with
        # probability equal to its weight (seeded), which has the same expected loss
        rng = np.random.default_rng(self.random_state)
        keep = (labels == 1.0) | (rng.random(labels.shape[0]) < weights)
        features = np.column_stack([arr, z])
        model.fit(features[keep], labels[keep])
        # training scores for every row, not only the kept ones
        model._set_training_outputs(model.score_samples(features))
        return model

    # -- scoring -----------------------------------------------------------------------------
    def _fit_column_scaling(self, arr: NDArray[np.float64]) -> None:
        """Freeze the column statistics the members' ``scale`` options need."""
        if "standard" in self.member_scaling_:
            with np.errstate(all="ignore"):
                mean = np.nanmean(arr, axis=0)
                std = np.nanstd(arr, axis=0)
            self.input_means_ = np.where(np.isfinite(mean), mean, 0.0)
            self.input_scales_ = np.where(np.isfinite(std) & (std > 0), std, 1.0)
        if "robust" in self.member_scaling_:
            stats = [_robust_column(arr[:, j]) for j in range(arr.shape[1])]
            self.input_medians_ = np.array([c for c, _ in stats], dtype=np.float64)
            self.input_robust_scales_ = np.array([s for _, s in stats], dtype=np.float64)

    def _scaled_inputs(self, arr: NDArray[np.float64]) -> dict[str | None, NDArray[np.float64]]:
        """The input as each scaling the members use sees it (computed once per call)."""
        scaled: dict[str | None, NDArray[np.float64]] = {None: arr}
        if "standard" in self.member_scaling_:
            scaled["standard"] = (arr - self.input_means_) / self.input_scales_
        if "robust" in self.member_scaling_:
            scaled["robust"] = (arr - self.input_medians_) / self.input_robust_scales_
        return scaled

    def _transform(self, raw: NDArray[np.float64]) -> NDArray[np.float64]:
        for j, transform in enumerate(self.member_transforms_):
            if transform == "log":
                with np.errstate(invalid="ignore"):
                    raw[:, j] = np.log(np.maximum(raw[:, j], self.transform_floors_[j]))
        return raw

    def _member_z(self, arr: NDArray[np.float64]) -> NDArray[np.float64]:
        """Each member's z-score of validated rows ``arr``.

        The input is checked once for every member (a scaled copy for infinities only, the one
        thing scaling can add), and members that read the same frozen tail distributions (ECOD
        and COPOD fitted on the same rows) share one pass: the same scores as each member's
        ``score_samples``, bit for bit, for less than half the calls on a micro-batch.
        """
        raw = np.empty((arr.shape[0], len(self.members_)), dtype=np.float64)
        scaled = self._scaled_inputs(arr)
        for scaling, x in scaled.items():
            if scaling is not None:
                _reject_infinite(x)
        tails: dict[int, NDArray[np.float64]] = {}
        shared = self._tails_shared_with()
        for j, member in enumerate(self.members_):
            x = scaled[self.member_scaling_[j]]
            first = shared[j]
            if first is None:
                raw[:, j] = member.score_validated(x)
                continue
            both = tails.get(first)
            if both is None:
                both = tails[first] = cast(_EmpiricalTails, member).tail_scores(x)
            raw[:, j] = both[:, cast(_EmpiricalTails, member).tail_column]
        return robust_z(self._transform(raw), self.centres_, self.scales_)

    def _tails_shared_with(self) -> list[int | None]:
        """Per member: the first member whose tail pass it can take (the same frozen tails and
        the same input scaling; itself when none before it), or None for a member of another
        kind, or whose tails no other member shares. Worked out once per fitted ensemble."""
        shared: list[int | None] | None = getattr(self, "_tails_shared", None)
        if shared is not None:
            return shared
        shared = [None] * len(self.members_)
        for j, member in enumerate(self.members_):
            if not isinstance(member, _EmpiricalTails):
                continue
            for k in range(j):
                other = self.members_[k]
                if (
                    isinstance(other, _EmpiricalTails)
                    and self.member_scaling_[k] == self.member_scaling_[j]
                    and other.same_tails(member)
                ):
                    shared[j] = shared[k] = k if shared[k] is None else shared[k]
                    break
        self._tails_shared = shared
        return shared

    def member_scores(self, X: ArrayLike) -> dict[str, NDArray[np.float64]]:
        """Each member's normalised score (robust z against its training scores).

        Parameters
        ----------
        X : DataFrame or ndarray
            Rows in the fitted column order (a DataFrame is reordered by name).

        Returns
        -------
        dict of str to ndarray of shape (n_rows,)
            Member name -> z-score; 0 is the member's training median, each unit one
            training interquartile range; higher = more anomalous.
        """
        z = self._member_z(self._validate_score_input(X))
        return {name: z[:, j] for j, name in enumerate(self.member_names_)}

    def unsupervised_scores(self, X: ArrayLike) -> NDArray[np.float64]:
        """The label-free ensemble score (weighted mean member z-score), also in supervised mode."""
        return _combine(self._member_z(self._validate_score_input(X)), self.weights_)

    def score_samples(self, X: ArrayLike) -> NDArray[np.float64]:
        """One score per row; higher means more anomalous.

        Unsupervised: the weighted mean of the members' robust z-scores (``weights_``).
        Supervised: XGBoost's output on the features plus member z-scores.
        """
        arr = self._validate_score_input(X)
        z = self._member_z(arr)
        if self.supervised_ is None:
            return _combine(z, self.weights_)
        return self.supervised_.score_samples(np.column_stack([arr, z]))

    def unsupervised_percentiles(self, X: ArrayLike) -> NDArray[np.float64]:
        """Where each row's label-free score falls among the training rows, in [0, 1]."""
        return _ecdf(self.unsupervised_scores(X), self.unsupervised_knots_)

    def _restore(self) -> None:
        if isinstance(getattr(self, "member_names_", None), tuple):
            self.member_names_ = list(self.member_names_)
        if not hasattr(self, "member_scaling_") and hasattr(self, "standardised_"):
            # saved before the scale and transform options: standardise=True or nothing
            self.member_scaling_ = ["standard" if s else None for s in self.standardised_]
            self.member_transforms_ = [None] * len(self.member_scaling_)
            self.transform_floors_ = np.zeros(len(self.member_scaling_))
        if not hasattr(self, "weights_") and hasattr(self, "members_"):
            # saved before weights existed: those ensembles averaged with equal weights
            self.weights_ = np.full(len(self.members_), 1.0 / len(self.members_))


def _robust_column(column: NDArray[np.float64]) -> tuple[float, float]:
    """:func:`fit_robust_scale` of one training column for ``scale="robust"`` (NaN ignored);
    an empty or all-missing column gets (0, 1) instead of an error."""
    if not np.isfinite(column).any():
        return 0.0, 1.0
    return fit_robust_scale(column)


def _combine(z: NDArray[np.float64], weights: NDArray[np.float64]) -> NDArray[np.float64]:
    """Weighted sum of member z-scores, member by member.

    Not ``z @ weights``: BLAS picks different kernels (and roundings) for one row and for many,
    and one claim must score bit for bit the same alone as inside a batch. A few rows are
    summed in Python floats: the same products and sums in the same order, so the same bits,
    without an array call per member.
    """
    if z.shape[0] <= _FEW_ROWS:
        w = weights.tolist()
        sums = []
        for row in z.tolist():
            t = row[0] * w[0]
            for j in range(1, len(w)):
                t = t + row[j] * w[j]
            sums.append(t)
        return np.array(sums, dtype=np.float64)
    total = z[:, 0] * weights[0]
    for j in range(1, z.shape[1]):
        total = total + z[:, j] * weights[j]
    return total
