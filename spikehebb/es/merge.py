"""Evolve & Merge: per-synapse rules evolved by OpenAI-ES, similar rules merged by k-means.

[1] Pedersen & Risi 2021, Evolving and merging Hebbian learning rules: increasing generalization
    by decreasing the number of rules, GECCO 2021, https://arxiv.org/abs/2104.07959 (no public
    code; 61,440 -> 1,920 coefficients on the ant, i.e. 12,288 synapses down to 384 rules).

The search state is M rule vectors and an assignment of every synapse to one of them:

    rules       (M, k)   float64, the rule coefficients in the rule's field order
    assignment  (N,)     ints in [0, M): synapse i follows rule assignment[i]

It starts per synapse (M = N, assignment = 0..N-1, rules N(0, 1) from the same stream as
:class:`~spikehebb.es.open_es.OpenAIES`, so until the first merge the two strategies produce the
same candidates bit for bit). Between merges the rules are searched by OpenAI-ES exactly as
:mod:`spikehebb.es.open_es` does (antithetic pairs, centred and standardised ranks, the L2 penalty
on the per-synapse coefficients, SGD or Adam, lr and sigma decays): a candidate is
``rules + sign * sigma * eps`` with eps of size M * k, expanded to the synapses. After every
``merge_every``-th generation, while M is above ``final_rules``, the rule vectors are clustered
with k-means (scikit-learn's :class:`~sklearn.cluster.KMeans`, k-means++ start) into
``max(final_rules, min(M - 1, ceil(M * (1 - merge_fraction))))`` clusters (a merge removes at
least one rule); every cluster becomes one rule, the
mean of its member rules (each rule counts once, whatever its number of synapses: [1] clusters the
rules), synapses follow their rule's cluster, and the search continues on the centres. Adam's
moments start afresh after a merge (the dimension changed).

Choices of ours where [1] gives no number: the schedule defaults (a merge every 20 generations
removing half of the rules: 12,288 -> 384 in five merges, after 100 generations). Cost: the
first merge on the ant (12,288 rules into 6,144) takes about 30 s of k-means++ on this machine,
later ones about a second; a generation of 500 ant lifetimes takes minutes.

A candidate travels as a :class:`~spikehebb.es.candidates.CandidateKey`; a worker expands it
with a :class:`MergeSampler` (the rules' mean, sigma and the assignment: N small ints).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from spikehebb.checks import is_finite_real, is_integer
from spikehebb.es.base import Strategy
from spikehebb.es.candidates import CandidateKey, NoiseSampler, _readonly, noise_vector
from spikehebb.es.open_es import check_search_settings, initial_mean
from spikehebb.es.optim import OPTIMIZERS, loaded_optimizer
from spikehebb.es.shaping import centred_ranks, standardise
from spikehebb.es.shared_rules import _index_dtype, expand
from spikehebb.es.state_checks import state_field, state_indices, state_number, state_vector

MERGE_STREAM = 6
"""First spawn-key entry of the k-means seed of a merge: (6, generation)."""


def merge_rules(rules: np.ndarray, n_clusters: int, seed: int, generation: int, max_iter: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """One merge: rules (M, k) -> (centres (M', k), labels (M,) in [0, M')), M' <= n_clusters.

    k-means (k-means++ start, one run on one thread, seeded from (seed, generation)); every centre is then set
    to the exact mean of its member rules, and clusters k-means left empty are dropped (labels
    renumbered in order), so ``centres[j] == rules[labels == j].mean(axis=0)`` for every j.
    """
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    rules = np.asarray(rules, dtype=np.float64)
    if rules.ndim != 2 or not 1 <= n_clusters <= rules.shape[0]:
        raise ValueError(f"merge needs rules (M, k) and 1 <= n_clusters <= M, got {rules.shape} and {n_clusters}")
    state = int(np.random.SeedSequence(seed, spawn_key=(MERGE_STREAM, generation)).generate_state(1)[0])
    # One OpenMP thread: scikit-learn's k-means adds its threads' partial sums in the order they
    # take a lock, so with more than 256 rules (more than one chunk) the centres' last bits, and
    # at a near tie the labels, would depend on thread timing and count, and a resumed run would
    # not repeat. The work is small (M rules of k coefficients).
    with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="openmp"):
        # fewer distinct rules than clusters (duplicates): k-means says so; the empty ones are dropped below
        warnings.simplefilter("ignore")
        labels = KMeans(n_clusters, n_init=1, max_iter=max_iter, random_state=state).fit_predict(rules)
    used, labels = np.unique(labels, return_inverse=True)
    counts = np.bincount(labels, minlength=used.size).astype(np.float64)
    centres = np.stack([np.bincount(labels, weights=rules[:, j], minlength=used.size) for j in range(rules.shape[1])], axis=1)
    return centres / counts[:, None], labels


@dataclass(frozen=True, eq=False)
class MergeSampler:
    """Expands the keys of one generation: rules ``inner.params(key)`` reshaped (M, k), expanded
    to the synapses by ``assignment`` (N,) -> (N * k,) in the project's coefficient layout.

    inner: the rules' OpenAI-ES sampler (M * k numbers). assignment: (N,) ints in [0, M), held as
    a read-only copy (what a caller does to it cannot reach the strategy). n_fields: k.
    """

    inner: NoiseSampler
    assignment: np.ndarray
    n_fields: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "assignment", _readonly(self.assignment, dtype=None))

    @property
    def n_params(self) -> int:
        return self.assignment.size * self.n_fields

    def compact(self, key: CandidateKey) -> tuple[np.ndarray, np.ndarray]:
        """(rules (M, k) float64, a fresh array; assignment (N,), a read-only view of the table
        shared by every key, which cannot be made writable)."""
        return self.inner.params(key).reshape(-1, self.n_fields), self.assignment.view()

    def params(self, key: CandidateKey) -> np.ndarray:
        """The candidate's per-synapse coefficients: (N * k,) float64, a fresh writable array."""
        return expand(*self.compact(key))


class EvolveMerge(Strategy):
    """Pedersen & Risi's Evolve & Merge over OpenAI-ES (see the module docstring). MAXIMISED.

    Args:
        n_params: N * k, the network's coefficient count. popsize: even (antithetic pairs).
        seed: run seed. n_fields: k, coefficients per rule (5 for ABCD_lr).
        final_rules: M after the last merge (None: N, no merging: plain per-synapse OpenAI-ES).
        merge_every: generations between merges (K). merge_fraction: the share of the rules one
            merge removes, in (0, 1). kmeans_iterations: k-means' iteration limit.
        lr, lr_decay, lr_floor, sigma, sigma_decay, sigma_floor, l2_coeff, init, antithetic,
        standardise_ranks, optimizer: as :class:`~spikehebb.es.open_es.OpenAIES`.
    """

    name = "merge"

    def __init__(
        self,
        n_params: int,
        popsize: int,
        seed: int = 0,
        n_fields: int = 1,
        final_rules: int | None = None,
        merge_every: int = 20,  # ours: [1] gives no number
        merge_fraction: float = 0.5,  # ours: 12,288 -> 384 rules in five merges
        kmeans_iterations: int = 100,
        lr: float = 0.2,  # Najarro & Risi 2020, as OpenAIES
        lr_decay: float = 0.995,
        lr_floor: float = 0.001,
        sigma: float = 0.1,
        sigma_decay: float = 0.999,
        sigma_floor: float = 0.01,
        l2_coeff: float = 0.01,
        init: str | np.ndarray = "normal",
        antithetic: bool = True,
        standardise_ranks: bool = True,
        optimizer: str = "sgd",
    ) -> None:
        super().__init__(n_params, popsize, seed, l2_coeff)
        if not (is_integer(n_fields) and n_fields >= 1) or self.n_params % int(n_fields):
            raise ValueError(f"n_params ({self.n_params}) must be a multiple of n_fields, a positive integer, got n_fields={n_fields!r}")
        self.k = int(n_fields)
        self.n_synapses = self.n_params // self.k
        if final_rules is not None and not is_integer(final_rules):
            raise ValueError(f"final_rules must be an integer count of rules, got {final_rules!r}")
        final = self.n_synapses if final_rules is None else int(final_rules)
        if not 1 <= final <= self.n_synapses:
            raise ValueError(f"final_rules must be in [1, {self.n_synapses}] (the synapse count), got {final_rules}")
        if not (is_integer(merge_every) and merge_every >= 1):
            raise ValueError(f"merge_every must be a positive number of generations, got {merge_every}")
        if not (is_integer(kmeans_iterations) and kmeans_iterations >= 1):
            raise ValueError(f"kmeans_iterations must be a positive integer, got {kmeans_iterations}")
        if not (is_finite_real(merge_fraction) and 0 < merge_fraction < 1):
            raise ValueError(f"merge_fraction (the share of rules a merge removes) must be a number in (0, 1), got {merge_fraction!r}")
        check_search_settings(self.popsize, antithetic, optimizer, sigma, lr, lr_decay, lr_floor, sigma_decay, sigma_floor)
        self.final_rules, self.merge_every, self.merge_fraction = final, int(merge_every), float(merge_fraction)
        self.kmeans_iterations = int(kmeans_iterations)
        self.lr, self.lr_decay, self.lr_floor = float(lr), float(lr_decay), float(lr_floor)
        self._sigma, self.sigma_decay, self.sigma_floor = float(sigma), float(sigma_decay), float(sigma_floor)
        self.antithetic, self.standardise_ranks = bool(antithetic), bool(standardise_ranks)
        self._optimizer_name = optimizer
        self._rules = initial_mean(init, self.n_params, self.seed).reshape(self.n_synapses, self.k)
        self._assignment = np.arange(self.n_synapses, dtype=_index_dtype(self.n_synapses))
        self.optimizer = OPTIMIZERS[optimizer](self._rules.size)
        self.merges = np.zeros((0, 3), dtype=np.int64)
        """One row per merge so far: (generation after which it ran, M before, M after)."""

    # --------------------------------------------------------------------------- accessors
    @property
    def sigma(self) -> float:
        return self._sigma

    @property
    def n_rules(self) -> int:
        return self._rules.shape[0]

    @property
    def mean(self) -> np.ndarray:
        """The rules' mean expanded to the synapses: (n_params,) float64."""
        return expand(self._rules, self._assignment)

    def rule_table(self) -> tuple[np.ndarray, np.ndarray]:
        """(rules (M, k), assignment (N,)) of the search mean (copies)."""
        return self._rules.copy(), self._assignment.copy()

    def next_merge(self) -> tuple[int, int] | None:
        """(generation after which the next merge runs, M after it), or None when M is final."""
        if self.n_rules <= self.final_rules:
            return None
        g = (self.generation // self.merge_every + 1) * self.merge_every - 1
        return g, self._target()

    def _target(self) -> int:
        """M after the next merge: ``merge_fraction`` of the rules go, at least one, down to ``final_rules``."""
        return max(self.final_rules, min(self.n_rules - 1, math.ceil(self.n_rules * (1 - self.merge_fraction))))

    # ----------------------------------------------------------------------------- ask/tell
    def _sign(self, index: int) -> int:
        return -1 if self.antithetic and index % 2 else 1

    def _ask(self) -> None:
        pass

    def _sampler(self) -> MergeSampler:
        inner = NoiseSampler(self.seed, self.generation, self._rules.reshape(-1), self._sigma, self.antithetic, self.popsize)
        return MergeSampler(inner, self._assignment, self.k)

    def _streams(self):
        if self.antithetic:
            return ((p, (2 * p, 2 * p + 1)) for p in range(self.popsize // 2))
        return ((i, (i,)) for i in range(self.popsize))

    def _tell(self, fitness: np.ndarray) -> np.ndarray:
        shaped = centred_ranks(fitness)
        if shaped.any():
            if self.standardise_ranks:
                shaped = standardise(shaped)
            weighted = np.zeros(self._rules.size)
            for stream, members in self._streams():
                weight = sum(self._sign(i) * shaped[i] for i in members)
                weighted += weight * noise_vector(self.seed, self.generation, stream, self._rules.size)
            grad = weighted / (self.popsize * self._sigma)
            self._rules = self._rules + self.optimizer.step(grad, self.lr).reshape(self._rules.shape)
        if self.lr > self.lr_floor:
            self.lr *= self.lr_decay
        if self._sigma > self.sigma_floor:
            self._sigma *= self.sigma_decay
        if (self.generation + 1) % self.merge_every == 0 and self.n_rules > self.final_rules:
            self._merge()
        return shaped

    def _merge(self) -> None:
        before = self.n_rules
        centres, labels = merge_rules(self._rules, self._target(), self.seed, self.generation, self.kmeans_iterations)
        self._assignment = labels[self._assignment].astype(_index_dtype(centres.shape[0]))
        self._rules = centres
        self.optimizer = OPTIMIZERS[self._optimizer_name](self._rules.size)
        self.merges = np.vstack([self.merges, [[self.generation, before, self.n_rules]]])

    # -------------------------------------------------------------------------------- state
    def _state_dict(self) -> dict[str, Any]:
        return {
            "rules": self._rules.copy(),
            "assignment": self._assignment.astype(np.int64),
            "merges": self.merges.copy(),
            "sigma": self._sigma,
            "lr": self.lr,
            "final_rules": self.final_rules,
            "merge_every": self.merge_every,
            "merge_fraction": self.merge_fraction,
            "antithetic": self.antithetic,
            "optimizer": self.optimizer.state_dict(),
        }

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        for name in ("final_rules", "merge_every", "merge_fraction", "antithetic"):
            mine, got = getattr(self, name), state_field(state, name)
            if type(mine)(got) != mine:
                raise ValueError(f"state_dict {name} must be {mine!r}, got {got!r}")
        rules = np.array(state_field(state, "rules"), dtype=np.float64)
        if rules.ndim != 2 or rules.shape[1] != self.k or not 1 <= rules.shape[0] <= self.n_synapses:
            raise ValueError(f"state_dict rules must be (M, {self.k}) with 1 <= M <= {self.n_synapses}, got {rules.shape}")
        rules = state_vector(state, "rules", rules.shape)  # finite
        assignment = state_indices(state, "assignment", self.n_synapses, rules.shape[0])
        try:
            merges = np.array(state_field(state, "merges"), dtype=np.int64)
        except (TypeError, ValueError):
            raise ValueError("state_dict merges must be (n_merges, 3) integers") from None
        if merges.size % 3:
            raise ValueError(f"state_dict merges must be (n_merges, 3) integers, got {merges.size} numbers of shape {merges.shape}")
        merges = merges.reshape(-1, 3)
        sigma = state_number(state, "sigma", positive=True)
        lr = state_number(state, "lr", positive=True)
        optimizer = loaded_optimizer(state, "optimizer", self._optimizer_name, rules.size)
        # all checked: now change
        self._rules = rules
        self._assignment = assignment.astype(_index_dtype(rules.shape[0]))
        self.merges, self._sigma, self.lr, self.optimizer = merges, sigma, lr, optimizer
