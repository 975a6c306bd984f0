"""Shared rules: M rule vectors among N synapses, searched as a Gaussian mixture (Palm et al. 2021).

[1] Palm, Najarro & Risi 2021, Testing the genomic bottleneck hypothesis in Hebbian meta-learning,
    https://arxiv.org/abs/2011.06811; code: github.com/rasmusbergpalm/hebbian-evolution (commit
    f11c2ce), which builds on github.com/rasmusbergpalm/evostrat (commit 50789b4).

The searched distribution (M = floor(N / rho) rules, N the synapses, as ``n_rules = int(N /
rho)`` over the synapse shapes in [1]'s car ``main.py`` at dc2d0ba; their ant commits (784de3f
and the other rho runs) divided the coefficient count k N instead, so their ant "rho = 128" is
M = 480 here, ``n_rules=480``; k coefficients per rule, in the rule's field order):

    logits  l   (N, M)   per-synapse assignment logits, start at 0    (gmm_population.py line 37)
    means   mu  (M, k)   rule means, start N(0, 1)                    (gmm_population.py line 38)
    sigma                fixed within a generation, x0.999 per generation, no floor (main.py line 76)

A candidate c draws, for every synapse i, an assignment z_i ~ Categorical(softmax(l_i)), then
(``noise``):

- ``"rule"`` (default): one draw per rule, theta_m = mu_m + sigma * eps_m; synapse i gets
  theta_{z_i}. Synapses sharing a rule share its coefficients exactly: the candidate IS M rules and
  an assignment (:meth:`SharedRuleSampler.compact`), a genomic bottleneck in every lifetime.
  Score (joint log-likelihood log p(z, theta)):
      d/d mu_m  = (theta_m - mu_m) / sigma^2 = eps_m / sigma
      d/d l_i   = onehot(z_i) - softmax(l_i)
- ``"synapse"``: what [1]'s code runs. evostrat's ``GaussianMixturePopulation.sample``
  (gmm_population.py lines 45-59) builds a ``MixtureSameFamily`` over the synapse array, so every
  synapse draws its own component AND its own noise, x_i = mu_{z_i} + sigma * eps_i, and the score
  is that of the marginal mixture density, log p(x_i) = logsumexp_m(log pi_im + log N(x_i; mu_m,
  sigma^2 I)) ([1]'s eq. 3). With responsibilities r_im = p(z_i = m | x_i):
      d/d mu_m  = sum_i r_im (x_i - mu_m) / sigma^2
      d/d l_i   = r_i - softmax(l_i)
  A candidate then has N distinct rule vectors (within sigma of the M means); only the search
  distribution is bottlenecked.

``assign="random"`` is [1]'s ``RandomSharedPopulation`` (random_shared_population.py lines 20-21):
a seeded uniform assignment a_i drawn once, no logits; only the means evolve, with the same two
noise modes (the d/d mu terms above with z = a and r = onehot(a)).

The ES step, as in :mod:`spikehebb.es.open_es` and [1]'s ``Population.fitness_grads``
(evostrat population.py lines 56-74): F_c = reward + L2 penalty, f = standardise(centred_ranks(F)),
gradient (1/P) sum_c f_c * grad log p_c, then SGD (paper: lr 0.2 x0.995 per generation, main.py at
commit 784de3f) or Adam (their best shared-rule ant, 555 +- 89: lr 1.0 halving every 100
generations, decay 0.5**(1/100) = 0.99309, main.py at commit 47e271a). Departure: [1] standardises
with torch's unbiased std plus 1e-8, we with the population std as OpenAI-ES here does (a factor
sqrt(P / (P - 1)) on the step, 1.001 at P = 500).

Memory and transport. Nothing of size (P, N, M) is ever held: the gradient is accumulated candidate
by candidate, and the per-synapse categorical is sampled by inverse CDF in row blocks of about
``block`` floats. The persistent state is the logits, their gradient and the optimiser's moments
(N x M each; at rho = 1 on the ant that is 151 M floats, 1.2 GB each, so rho = 1 is for small
networks) plus (P, N) small unsigned assignment indices for the generation. Keys are
:class:`~spikehebb.es.candidates.CandidateKey` (sign +1, no antithetic pairs, as in [1]); a
candidate's noise is the Philox stream (seed, RULE_STREAM, generation, index) and its assignment
uniforms the stream (seed, ASSIGN_STREAM, generation, index), so the strategy recomputes noise in
``tell`` instead of storing it. A worker receives a :class:`SharedRuleSampler`: the means (M, k)
and the assignment rows of its keys (``subset``), 24 KB per candidate on the ant, never the logits.

Measured on the ant (N = 12,288, k = 5, P = 500, one generation, tracemalloc peak, 2-core machine
shared with a training run): noise "rule", rho = 32 (M = 384, N x M = 36 MiB): SGD 130 MiB, Adam
300 MiB, ask ~1 s and tell ~1.4 s; rho = 16 (M = 768, 72 MiB): SGD 228 MiB, Adam 588 MiB, tell
~1.5 s. Adam's moments and its temporaries are most of it. Noise "synapse" has the same memory but
costs N x M x k per candidate in ``tell`` (responsibilities): ~0.17 s per candidate at rho = 32.

Layout of a candidate's vector (``params``): (N * k,), synapse i's k coefficients at
``[i*k:(i+1)*k]``, synapses in the project's coefficient order (layer by layer, each (n_pre, n_post)
in C order), i.e. exactly the flat layout of :mod:`spikehebb.rules`:
``rules.unflatten_coefficients(params, sizes, rule)`` gives the per-layer ``(1, n_pre, n_post, k)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from spikehebb.checks import is_finite_real, is_integer
from spikehebb.es.base import Strategy
from spikehebb.es.candidates import CandidateKey, _check_generation, _readonly, normal_stream
from spikehebb.es.open_es import check_search_settings
from spikehebb.es.optim import OPTIMIZERS, loaded_optimizer
from spikehebb.es.shaping import centred_ranks, standardise
from spikehebb.es.state_checks import state_count, state_indices, state_number, state_text, state_vector

ASSIGN_STREAM = 3
"""First spawn-key entry of a candidate's assignment uniforms: (3, generation, index) -> (N,)."""
RULE_STREAM = 4
"""First spawn-key entry of a candidate's noise: (4, generation, index) -> (M, k) or (N, k)."""
INIT_STREAM = 5
"""First spawn-key entry of the start: (5, 0) the initial means, (5, 1) the random assignment."""
# (candidates.py uses 0 for OpenAI-ES noise and 2 for CMA rows; open_es.py 1 for its initial mean)

ASSIGNMENTS = ("gmm", "random")
NOISE = ("rule", "synapse")
BLOCK = 1 << 20
"""Default number of floats in one row block of an (N, M) computation (8 MB in float64)."""
SMALL_BLOCK = 1 << 15
"""Floats per row block of the per-candidate responsibilities (256 KB: stays in cache)."""


# ------------------------------------------------------------------------------- layouts
def n_rules_for(n_synapses: int, rho: float | None = None, n_rules: int | None = None) -> int:
    """M from rho (``floor(N / rho)``, [1]'s car ``int(N / rho)``; their ant code divided k N) or
    given directly; 1 <= M <= N."""
    if rho is not None and n_rules is not None:
        raise ValueError(f"give rho or n_rules, not both (got rho={rho}, n_rules={n_rules})")
    if rho is not None:
        if not (is_finite_real(rho) and 1 <= rho <= n_synapses):
            raise ValueError(f"rho must be a number in [1, {n_synapses}] (the synapse count), got {rho!r}")
        return int(n_synapses / rho)
    if n_rules is not None and not is_integer(n_rules):
        raise ValueError(f"n_rules must be an integer count of rules, got {n_rules!r}")
    m = n_synapses if n_rules is None else int(n_rules)
    if not 1 <= m <= n_synapses:
        raise ValueError(f"n_rules must be in [1, {n_synapses}] (the synapse count), got {n_rules}")
    return m


def expand(rules: np.ndarray, assignment: np.ndarray) -> np.ndarray:
    """Per-synapse coefficients of a compact candidate: rules (M, k), assignment (N,) ints in
    [0, M) -> (N * k,) float64 in the project's flat coefficient layout (see the module docstring)."""
    rules = np.asarray(rules, dtype=np.float64)
    assignment = np.asarray(assignment)
    if rules.ndim != 2 or assignment.ndim != 1:
        raise ValueError(f"rules must be (M, k) and assignment (N,), got {rules.shape} and {assignment.shape}")
    if assignment.size and (assignment.min() < 0 or assignment.max() >= rules.shape[0]):
        raise ValueError(f"assignment entries must be in [0, {rules.shape[0]}), got {assignment.min()}..{assignment.max()}")
    return rules[assignment].reshape(-1)


def layer_assignments(assignment: np.ndarray, sizes: Sequence[int]) -> list[np.ndarray]:
    """Split an assignment (N,) into per layer ``(n_pre, n_post)`` rule indices (for the run file)."""
    assignment = np.asarray(assignment)
    shapes = [(a, b) for a, b in zip(sizes[:-1], sizes[1:])]
    n = sum(a * b for a, b in shapes)
    if assignment.shape != (n,):
        raise ValueError(f"assignment for sizes {tuple(sizes)} must be ({n},), got {assignment.shape}")
    out, start = [], 0
    for a, b in shapes:
        out.append(assignment[start : start + a * b].reshape(a, b))
        start += a * b
    return out


def _index_dtype(n_rules: int) -> np.dtype:
    return np.min_scalar_type(max(n_rules - 1, 0))


def _row_blocks(n_rows: int, n_cols: int, block: int):
    """Slices of rows covering 0..n_rows, each about ``block`` elements of an (n_rows, n_cols) array."""
    step = max(1, block // max(n_cols, 1))
    return (slice(s, min(s + step, n_rows)) for s in range(0, n_rows, step))


def _softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (b, M) logits."""
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def assignment_uniforms(seed: int, generation: int, index: int, n_synapses: int) -> np.ndarray:
    """U[0, 1) of candidate ``index``'s assignment: (N,) float64, from its own Philox stream."""
    seq = np.random.SeedSequence(seed, spawn_key=(ASSIGN_STREAM, generation, index))
    return np.random.Generator(np.random.Philox(seq)).random(n_synapses)


def sample_assignments(
    logits: np.ndarray, seed: int, generation: int, indices: Sequence[int], block: int = BLOCK
) -> np.ndarray:
    """z_ci ~ Categorical(softmax(logits_i)) for candidates ``indices``: (len(indices), N) unsigned.

    Inverse CDF: z = #{m : cdf_i[m] <= u_ci} with u from :func:`assignment_uniforms`, the CDF built
    in row blocks (never an (N, M) temporary beyond ``block`` floats). A candidate's row depends
    only on (logits, seed, generation, index), not on which other candidates are sampled with it.
    """
    n, m = logits.shape
    u = np.stack([assignment_uniforms(seed, generation, int(c), n) for c in indices]) if len(indices) else np.empty((0, n))
    z = np.empty((len(indices), n), dtype=_index_dtype(m))
    for rows in _row_blocks(n, m, block):
        cdf = np.cumsum(_softmax(logits[rows]), axis=1)
        cdf /= cdf[:, -1:]
        for r, i in enumerate(range(rows.start, rows.stop)):
            z[:, i] = np.minimum(np.searchsorted(cdf[r], u[:, i], side="right"), m - 1)
    return z


# ------------------------------------------------------------------------------- sampler
@dataclass(frozen=True, eq=False)
class SharedRuleSampler:
    """Expands the keys of one generation into per-synapse coefficients (picklable, small).

    seed, generation, popsize: which keys. noise: ``"rule"`` or ``"synapse"`` (module docstring).
    sigma: this generation's noise scale. means: (M, k) float64, read-only.
    assignments: (n_rows, N) unsigned, read-only: row r is the assignment of candidate
    ``indices[r]``; with ``indices=None`` a single row serves every candidate (random assignment).
    """

    seed: int
    generation: int
    popsize: int
    noise: str
    sigma: float
    means: np.ndarray
    assignments: np.ndarray
    indices: tuple[int, ...] | None

    def __post_init__(self) -> None:
        object.__setattr__(self, "means", _readonly(self.means))
        object.__setattr__(self, "assignments", _readonly(self.assignments, dtype=None))
        if self.indices is not None:
            object.__setattr__(self, "indices", tuple(int(i) for i in self.indices))
            if self.assignments.shape[0] != len(self.indices):
                raise ValueError(f"assignments must have {len(self.indices)} rows, got {self.assignments.shape}")
        elif self.assignments.shape[0] != 1:
            raise ValueError(f"a shared assignment must be one row (1, N), got {self.assignments.shape}")

    @property
    def n_synapses(self) -> int:
        return self.assignments.shape[1]

    @property
    def n_params(self) -> int:
        return self.n_synapses * self.means.shape[1]

    def assignment(self, key: CandidateKey) -> np.ndarray:
        """Rule index of every synapse for this candidate: (N,) unsigned, read-only."""
        _check_generation(key, self.generation, self.popsize)
        if key.sign != 1:
            raise ValueError(f"key {tuple(key)} must have sign 1: shared-rule candidates are unpaired")
        if self.indices is None:
            return self.assignments[0]
        try:
            return self.assignments[self.indices.index(key.index)]
        except ValueError:
            raise ValueError(f"this sampler does not hold candidate {key.index}") from None

    def noise_of(self, key: CandidateKey) -> np.ndarray:
        """eps of the candidate: (M, k) with noise "rule", (N, k) with noise "synapse"."""
        rows = self.means.shape[0] if self.noise == "rule" else self.n_synapses
        k = self.means.shape[1]
        return normal_stream(self.seed, (RULE_STREAM, self.generation, key.index), rows * k).reshape(rows, k)

    def compact(self, key: CandidateKey) -> tuple[np.ndarray, np.ndarray]:
        """(rules (M, k) float64, assignment (N,)) of a ``noise="rule"`` candidate; ``expand`` of
        the two is :meth:`params`."""
        if self.noise != "rule":
            raise ValueError("only noise='rule' candidates are compact: with noise='synapse' every synapse has its own draw")
        assignment = self.assignment(key)
        return self.means + self.sigma * self.noise_of(key), assignment

    def params(self, key: CandidateKey) -> np.ndarray:
        """The candidate's per-synapse coefficients: (N * k,) float64, a fresh writable array."""
        assignment = self.assignment(key)
        if self.noise == "rule":
            return expand(self.means + self.sigma * self.noise_of(key), assignment)
        return (self.means[assignment] + self.sigma * self.noise_of(key)).reshape(-1)

    def subset(self, keys: list[CandidateKey]) -> "SharedRuleSampler":
        """A sampler holding only the assignment rows of ``keys``: what one worker needs."""
        if self.indices is None:
            return self
        rows = []
        for key in keys:
            self.assignment(key)  # checks generation, sign and that this sampler holds it
            rows.append(self.indices.index(key.index))
        return SharedRuleSampler(
            self.seed, self.generation, self.popsize, self.noise, self.sigma, self.means,
            self.assignments[rows], tuple(self.indices[r] for r in rows),
        )


# ------------------------------------------------------------------------------ strategy
class SharedRules(Strategy):
    """Shared Hebbian rules searched as Palm et al.'s Gaussian mixture. Fitness is MAXIMISED.

    Args:
        n_params: length of a candidate's vector, N * k (the network's coefficient count).
        popsize: candidates per generation ([1]: 500).
        seed: run seed; see the module docstring for the streams.
        n_fields: k, coefficients per rule (5 for ABCD_lr); n_params must be a multiple of it.
        rho / n_rules: synapses per rule (M = floor(N / rho)) or M itself; neither: M = N.
        assign: ``"gmm"`` (evolved assignment logits) or ``"random"`` (a fixed seeded assignment).
        noise: ``"rule"`` (one draw per rule, the bottleneck in every candidate) or ``"synapse"``
            (one draw per synapse from its mixture, [1]'s code).
        lr, lr_decay, lr_floor: step size, factor per generation, decay stops at the floor.
        sigma, sigma_decay, sigma_floor: noise scale, the same way.
        l2_coeff: fitness penalty ``-l2_coeff * mean(params**2)`` ([1]'s HebbianAnt.fitness).
        init: initial means, ``"normal"`` N(0, 1) ([1]), ``"uniform"`` U[-1, 1], or an (M, k) array
            (or its (M * k,) ravel).
        standardise_ranks: divide the centred ranks by their std ([1]'s ``normalize``).
        optimizer: ``"sgd"`` or ``"adam"`` (Palm's best shared-rule ant: adam, lr=1.0,
            lr_decay=0.99309).
        block: floats per row block of the (N, M) computations (memory against Python overhead).
    """

    name = "gmm"

    def __init__(
        self,
        n_params: int,
        popsize: int,
        seed: int = 0,
        n_fields: int = 1,
        rho: float | None = None,
        n_rules: int | None = None,
        assign: str = "gmm",
        noise: str = "rule",
        lr: float = 0.2,  # Palm et al. 2021 (main.py at 784de3f, SGD lr=0.2)
        lr_decay: float = 0.995,  # Palm et al. 2021 (MultiplicativeLR 0.995)
        lr_floor: float = 0.0,  # Palm et al. 2021: no floor
        sigma: float = 0.1,  # Palm et al. 2021 (GaussianMixturePopulation std 0.1)
        sigma_decay: float = 0.999,  # Palm et al. 2021 (population.std *= 0.999)
        sigma_floor: float = 0.0,  # Palm et al. 2021: no floor
        l2_coeff: float = 0.01,  # Palm et al. 2021 (HebbianAnt.fitness)
        init: str | np.ndarray = "normal",  # Palm et al. 2021 (t.randn component means)
        standardise_ranks: bool = True,  # Palm et al. 2021 (normalize(compute_centered_ranks))
        optimizer: str = "sgd",  # Palm et al. 2021 (Adam lr 1.0 for their best run)
        block: int = BLOCK,
    ) -> None:
        super().__init__(n_params, popsize, seed, l2_coeff)
        if not (is_integer(n_fields) and n_fields >= 1) or self.n_params % int(n_fields):
            raise ValueError(f"n_params ({self.n_params}) must be a multiple of n_fields, a positive integer, got n_fields={n_fields!r}")
        if not (is_integer(block) and block >= 1):
            raise ValueError(f"block must be a positive integer, got {block!r}")
        if assign not in ASSIGNMENTS:
            raise ValueError(f"assign must be one of {ASSIGNMENTS}, got {assign!r}")
        if noise not in NOISE:
            raise ValueError(f"noise must be one of {NOISE}, got {noise!r}")
        check_search_settings(self.popsize, False, optimizer, sigma, lr, lr_decay, lr_floor, sigma_decay, sigma_floor)
        self.k = int(n_fields)
        self.n_synapses = self.n_params // self.k
        self.n_rules = n_rules_for(self.n_synapses, rho, n_rules)
        self.assign = assign
        self.noise = noise
        self.lr, self.lr_decay, self.lr_floor = float(lr), float(lr_decay), float(lr_floor)
        self._sigma, self.sigma_decay, self.sigma_floor = float(sigma), float(sigma_decay), float(sigma_floor)
        self.standardise_ranks = bool(standardise_ranks)
        self.block = int(block)
        self._means = self._initial_means(init)
        self._means_opt = OPTIMIZERS[optimizer](self._means.size)
        if assign == "gmm":
            self._logits = np.zeros((self.n_synapses, self.n_rules))
            self._logits_opt = OPTIMIZERS[optimizer](self._logits.size)
            self._fixed = None
        else:
            self._logits = None
            self._logits_opt = None
            rng = np.random.Generator(np.random.Philox(np.random.SeedSequence(self.seed, spawn_key=(INIT_STREAM, 1))))
            # [1]: Categorical(logits=zeros).sample(), a uniform rule per synapse
            self._fixed = rng.integers(0, self.n_rules, self.n_synapses).astype(_index_dtype(self.n_rules))
        self._assignments: np.ndarray | None = None

    def _initial_means(self, init) -> np.ndarray:
        shape = (self.n_rules, self.k)
        if isinstance(init, str):
            rng = np.random.Generator(np.random.Philox(np.random.SeedSequence(self.seed, spawn_key=(INIT_STREAM, 0))))
            if init == "normal":
                return rng.standard_normal(shape)
            if init == "uniform":
                return rng.uniform(-1.0, 1.0, shape)
            raise ValueError(f"init must be 'normal', 'uniform' or an {shape} array, got {init!r}")
        means = np.array(init, dtype=np.float64, copy=True)
        if means.shape == (self.n_rules * self.k,):
            means = means.reshape(shape)
        if means.shape != shape:
            raise ValueError(f"initial means must be {shape} (n_rules, n_fields), got {means.shape}")
        if not np.all(np.isfinite(means)):
            raise ValueError("initial means must be finite, got NaN or inf")
        return means

    # --------------------------------------------------------------------------- accessors
    @property
    def sigma(self) -> float:
        return self._sigma

    @property
    def rule_means(self) -> np.ndarray:
        """mu: (M, k) float64 (a copy)."""
        return self._means.copy()

    @property
    def logits(self) -> np.ndarray | None:
        """l: (N, M) float64 (a copy), None with a random assignment."""
        return None if self._logits is None else self._logits.copy()

    def mode_assignment(self) -> np.ndarray:
        """Most likely rule of every synapse, argmax_m l_im (ties: the lowest m), or the fixed
        random assignment: (N,) unsigned."""
        if self._fixed is not None:
            return self._fixed.copy()
        out = np.empty(self.n_synapses, dtype=_index_dtype(self.n_rules))
        for rows in _row_blocks(self.n_synapses, self.n_rules, self.block):
            out[rows] = np.argmax(self._logits[rows], axis=1)
        return out

    def rule_table(self) -> tuple[np.ndarray, np.ndarray]:
        """(rules (M, k), assignment (N,)) of the distribution's centre: the means and every
        synapse's most likely rule (copies); ``expand`` of the two is :attr:`mean`."""
        return self.rule_means, self.mode_assignment()

    @property
    def mean(self) -> np.ndarray:
        """The distribution's centre as a network: mu at each synapse's most likely rule,
        ``expand(mu, mode_assignment())``: (n_params,) float64."""
        return expand(self._means, self.mode_assignment())

    # ----------------------------------------------------------------------------- ask/tell
    def _ask(self) -> None:
        if self._logits is not None:
            self._assignments = sample_assignments(
                self._logits, self.seed, self.generation, range(self.popsize), self.block
            )

    def _sampler(self) -> SharedRuleSampler:
        if self._fixed is not None:
            table, indices = self._fixed[None], None
        else:
            table, indices = self._assignments, tuple(range(self.popsize))
        return SharedRuleSampler(
            self.seed, self.generation, self.popsize, self.noise, self._sigma, self._means, table, indices
        )

    def score_gradient(self, weights: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
        """(1/P) sum_c w_c * grad log p_c of the asked generation, in closed form.

        weights: (popsize,) float, e.g. the shaped fitness. Returns (d/d logits (N, M) or None with
        a random assignment, d/d means (M, k)), both float64. Accumulated candidate by candidate;
        see the module docstring for the formulas.
        """
        self._require_asked("score_gradient")
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (self.popsize,):
            raise ValueError(f"weights must have shape ({self.popsize},), got {w.shape}")
        sampler = self.sampler()
        sigma, mu = self._sigma, self._means
        g_mu = np.zeros_like(mu)
        g_logits = None if self._logits is None else np.zeros_like(self._logits)
        synapses = np.arange(self.n_synapses)
        mu_scaled = mu.T / sigma**2  # (k, M)
        bias = -0.5 * np.einsum("mk,mk->m", mu, mu) / sigma**2  # (M,)
        for c, key in enumerate(self.ask()):
            if w[c] == 0:
                continue
            z = sampler.assignment(key)
            eps = sampler.noise_of(key)
            if self.noise == "rule":
                g_mu += (w[c] / sigma) * eps
                if g_logits is not None:
                    g_logits[synapses, z] += w[c]  # one (i, z_i) per row: no repeated index
            elif g_logits is None:
                # fixed assignment: sum_{i: a_i = m} eps_i / sigma, per field
                for j in range(self.k):
                    g_mu[:, j] += (w[c] / sigma) * np.bincount(z, weights=eps[:, j], minlength=self.n_rules)
            else:
                # log r_im = l_im - |x_i - mu_m|^2 / (2 sigma^2) + const_i, in cache-sized row
                # blocks and in place: this loop is the cost of noise="synapse" (N x M x k per candidate)
                x = mu[z] + sigma * eps
                rx = np.zeros_like(mu)
                r_sum = np.zeros(self.n_rules)
                for rows in _row_blocks(self.n_synapses, self.n_rules, SMALL_BLOCK):
                    r = x[rows] @ mu_scaled
                    r += bias
                    r += self._logits[rows]
                    r -= r.max(axis=1, keepdims=True)
                    np.exp(r, out=r)
                    r /= r.sum(axis=1, keepdims=True)  # responsibilities p(z_i = m | x_i)
                    rx += r.T @ x[rows]
                    r_sum += r.sum(axis=0)
                    r *= w[c]
                    g_logits[rows] += r
                g_mu += (w[c] / sigma**2) * (rx - r_sum[:, None] * mu)
        if g_logits is not None:
            total = w.sum()
            for rows in _row_blocks(self.n_synapses, self.n_rules, self.block):
                g_logits[rows] -= total * _softmax(self._logits[rows])
            g_logits /= self.popsize
        return g_logits, g_mu / self.popsize

    def log_prob(self, key: CandidateKey, logits: np.ndarray | None = None, means: np.ndarray | None = None) -> float:
        """log p of an asked candidate under (logits, means), default the current ones: the joint
        log p(z, theta) (noise "rule") or sum_i log p(x_i) of the mixture (noise "synapse"); with
        a random assignment only the Gaussian terms. Dense in (N, M): for tests on small cases."""
        sampler = self.sampler()
        logits = self._logits if logits is None else np.asarray(logits, dtype=np.float64)
        mu0, mu = self._means, self._means if means is None else np.asarray(means, dtype=np.float64)
        sigma, k = self._sigma, self.k
        z = sampler.assignment(key).astype(np.int64)
        eps = sampler.noise_of(key)
        norm = -0.5 * k * np.log(2 * np.pi * sigma**2)
        if self.noise == "rule":
            theta = mu0 + sigma * eps  # the sample stays fixed while the parameters move
            out = np.sum(norm - 0.5 * np.sum((theta - mu) ** 2, axis=1) / sigma**2)
            if logits is not None:
                out += np.sum(_log_softmax(logits)[np.arange(z.size), z])
            return float(out)
        x = mu0[z] + sigma * eps
        sq = np.sum((x[:, None, :] - mu[None, :, :]) ** 2, axis=2)  # (N, M)
        if logits is None:
            return float(np.sum(norm - 0.5 * sq[np.arange(z.size), z] / sigma**2))
        joint = _log_softmax(logits) + norm - 0.5 * sq / sigma**2
        peak = joint.max(axis=1, keepdims=True)
        return float(np.sum(peak[:, 0] + np.log(np.exp(joint - peak).sum(axis=1))))

    def _tell(self, fitness: np.ndarray) -> np.ndarray:
        shaped = centred_ranks(fitness)
        if shaped.any():
            if self.standardise_ranks:
                shaped = standardise(shaped)
            g_logits, g_mu = self.score_gradient(shaped)
            self._means = self._means + self._means_opt.step(g_mu.reshape(-1), self.lr).reshape(self._means.shape)
            if g_logits is not None:
                step = self._logits_opt.step(g_logits.reshape(-1), self.lr)
                self._logits += step.reshape(self._logits.shape)
        # else every candidate tied: no information, no step (as OpenAIES)
        if self.lr > self.lr_floor:
            self.lr *= self.lr_decay
        if self._sigma > self.sigma_floor:
            self._sigma *= self.sigma_decay
        self._assignments = None
        return shaped

    # -------------------------------------------------------------------------------- state
    def _state_dict(self) -> dict[str, Any]:
        state = {
            "assign": self.assign,
            "noise": self.noise,
            "n_fields": self.k,
            "n_rules": self.n_rules,
            "means": self._means.copy(),
            "sigma": self._sigma,
            "lr": self.lr,
            "means_optimizer": self._means_opt.state_dict(),
        }
        if self._logits is not None:
            state["logits"] = self._logits.copy()
            state["logits_optimizer"] = self._logits_opt.state_dict()
        else:
            state["assignment"] = self._fixed.copy()
        return state

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        for field, value, read in (("assign", self.assign, state_text), ("noise", self.noise, state_text),
                                   ("n_fields", self.k, state_count), ("n_rules", self.n_rules, state_count)):
            got = read(state, field)
            if got != value:
                raise ValueError(f"state_dict {field} must be {value!r}, got {got!r}")
        means = state_vector(state, "means", self._means.shape)
        opt = self._means_opt.name
        means_opt = loaded_optimizer(state, "means_optimizer", opt, self._means.size, what="optimizer")
        logits = logits_opt = None
        fixed = self._fixed
        if self._logits is not None:
            logits = state_vector(state, "logits", self._logits.shape)
            logits_opt = loaded_optimizer(state, "logits_optimizer", opt, self._logits.size)
        else:
            fixed = state_indices(state, "assignment", len(self._fixed), self.n_rules).astype(self._fixed.dtype)
        sigma = state_number(state, "sigma", positive=True)
        lr = state_number(state, "lr", positive=True)
        # all checked: now change
        self._means, self._means_opt = means, means_opt
        if logits is not None:
            self._logits, self._logits_opt = logits, logits_opt
        self._fixed = fixed
        self._sigma, self.lr = sigma, lr
        self._assignments = None
