"""CMA-ES through the ``cma`` package: full covariance for small problems, separable above a threshold.

[1] Hansen & Ostermeier 2001, Completely Derandomized Self-Adaptation in Evolution Strategies;
    Hansen 2016, The CMA Evolution Strategy: A Tutorial, https://arxiv.org/abs/1604.00772.
[2] Ros & Hansen 2008, A Simple Modification in CMA-ES Achieving Linear Time and Space Complexity
    (separable CMA-ES, cma's ``CMA_diagonal=True``).

A full covariance of 61,440 or 456,640 dimensions cannot exist (28 GB / 1.7 TB), so above
``diagonal_threshold`` dimensions the strategy switches to the diagonal (separable) variant.

cma MINIMISES; this strategy MAXIMISES like every spikehebb strategy and hands cma the negated
fitness. Candidates are index keys. cma's normal draws come from our ``randn`` option instead of
``numpy.random``'s global state: row r of the c-th draw in generation g is the counter-based stream
(seed, g, c, r) (:func:`~spikehebb.es.candidates.cma_row`). So the RNG has no state beyond the
generation counter, and for separable CMA a worker rebuilds candidate r from the mean, sigma and
diagonal scaling alone, plus the two mean-shift candidates of cma's TPA step-size rule which it
holds verbatim (:class:`~spikehebb.es.candidates.DiagonalSampler`). The strategy checks at
every ask that this rebuild equals cma's vectors bit for bit, and falls back to shipping the vectors
(:class:`~spikehebb.es.candidates.PopulationSampler`) with a warning if a cma version ever samples
differently. Full CMA always uses the PopulationSampler (its problems are small). The rest of cma's
state is captured as arrays and scalars by :mod:`spikehebb.es.cma_state`.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from spikehebb.checks import is_finite_real, is_integer
from spikehebb.es.base import Strategy
from spikehebb.es.candidates import CandidateKey, DiagonalSampler, PopulationSampler, cma_row
from spikehebb.es.cma_state import capture, restore
from spikehebb.es.open_es import initial_mean
from spikehebb.es.state_checks import state_field, state_text

if TYPE_CHECKING:
    import cma

_QUIET = {
    "verbose": -9,  # no printing
    "verb_disp": 0,
    "verb_log": 0,  # no output files
    "verb_plot": 0,
    "seed": np.nan,  # cma must not reseed numpy's global RNG; our randn is keyed by our seed
}


def _cma():
    """The ``cma`` package, imported when a CMA-ES is first made: it imports scipy.stats and
    matplotlib (1.5-3 s of CPU), which every process that imports the strategies (each worker, each
    command) would otherwise pay for the OpenAI-ES default."""
    import cma

    return cma


class CMAES(Strategy):
    """CMA-ES (``cma`` package) behind the spikehebb ask/tell interface. Fitness is MAXIMISED.

    Args:
        n_params: length of the searched vector.
        popsize: candidates per generation (cma's ``popsize``).
        seed: run seed; keys the initial mean (if drawn) and every normal cma draws.
        sigma0: initial step size (cma's ``sigma0``); 0.1 matches OpenAI-ES's initial sigma.
        init: ``"normal"`` | ``"uniform"`` | (n_params,) vector, as for OpenAI-ES.
        diagonal: ``"auto"`` (separable iff n_params > diagonal_threshold), True or False.
        diagonal_threshold: dimension above which ``"auto"`` picks the separable variant.
        l2_coeff: optional fitness penalty ``-l2_coeff * mean(h_i**2)``; off by default (the paper's
            penalty belongs to its OpenAI-ES; :class:`~spikehebb.config.StrategyConfig` runs CMA-ES
            without it).
        cma_options: further ``cma`` options, merged over the quiet defaults (not over popsize,
            seed, CMA_diagonal or randn, which this class owns; options that make cma search in
            coordinates of its own, typical_x, scaling_of_variables, fixed_variables and
            transformation, are refused: its mean would not be where the candidates are).

    A generation in which every candidate failed (NaN fitness) moves nothing: the search stays
    where it was before that generation's ask.
    """

    name = "cma"

    def __init__(
        self,
        n_params: int,
        popsize: int,
        seed: int = 0,
        sigma0: float = 0.1,
        init: str | np.ndarray = "normal",  # Najarro & Risi 2020 (train_hebb.py --distribution)
        diagonal: bool | str = "auto",
        diagonal_threshold: int = 1000,
        l2_coeff: float = 0.0,
        cma_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(n_params, popsize, seed, l2_coeff)
        if diagonal not in ("auto", True, False):
            raise ValueError(f"diagonal must be 'auto', True or False, got {diagonal!r}")
        if not (is_finite_real(sigma0) and sigma0 > 0):
            raise ValueError(f"sigma0 must be a finite number > 0, got {sigma0!r}")
        if not (is_integer(diagonal_threshold) and diagonal_threshold >= 0):
            raise ValueError(f"diagonal_threshold must be an integer >= 0 (a number of parameters), got {diagonal_threshold!r}")
        owned = {"popsize", "seed", "CMA_diagonal", "randn"} & set(cma_options or {})
        if owned:
            raise ValueError(f"cma_options must not set {sorted(owned)}: use the constructor arguments")
        self.diagonal = self.n_params > diagonal_threshold if diagonal == "auto" else bool(diagonal)
        self._randn_calls: list[tuple[int, ...]] = []
        options = {**_QUIET, **(cma_options or {})}
        options.update(popsize=self.popsize, CMA_diagonal=self.diagonal, randn=self._randn)
        self._x0 = initial_mean(init, self.n_params, self.seed)
        self._sigma0 = float(sigma0)
        self._options = options
        self._es = self._new_es()
        if not self._es.gp.isidentity:
            raise ValueError("cma_options must not change cma's coordinates (typical_x, scaling_of_variables, fixed_variables, "
                             "transformation; deprecated by cma): search the vector as it is and shift or scale it in the objective")
        if isinstance(self._es.adapt_sigma, _cma().sigma_adaptation.CMAAdaptSigmaTPA) and self.popsize < 3:
            # two-point step-size adaptation injects two candidates a generation, besides one to sample
            raise ValueError(f"separable CMA-ES with {self.n_params} parameters adapts its step size with two "
                             f"injected candidates a generation: popsize must be at least 3, got {self.popsize}")
        self._population: np.ndarray | None = None
        self._diagonal_sampler: DiagonalSampler | None = None
        self._before_ask: dict[str, Any] | None = None

    def _new_es(self) -> cma.CMAEvolutionStrategy:
        return _cma().CMAEvolutionStrategy(self._x0, self._sigma0, dict(self._options))

    def _randn(self, *shape: int) -> np.ndarray:
        """cma's ``randn(lam, N)``: row r of this generation's c-th call is stream (seed, g, c, r)."""
        call = len(self._randn_calls)
        self._randn_calls.append(shape)
        rows = int(np.prod(shape[:-1]))
        out = np.empty((rows, shape[-1]))
        for row in range(rows):
            out[row] = cma_row(self.seed, self.generation, call, row, shape[-1])
        return out.reshape(shape)

    @property
    def mean(self) -> np.ndarray:
        """The distribution's centre where the candidates live: (n_params,) float64.

        cma keeps its mean in internal ("genotype") coordinates; this is cma's own phenotype of it
        (its ``result.xfavorite``). The two are the same array while cma's coordinate map is the
        identity, as it is from the start (the options that change it are refused), until full
        CMA-ES passes an ill-conditioned covariance into the map (cma's ``conditioncov_alleviate``).
        """
        es = self._es
        return np.array(es.gp.pheno(es.mean, copy=True, into_bounds=es.boundary_handler.repair), dtype=np.float64)

    @property
    def sigma(self) -> float:
        return float(self._es.sigma)

    def _ask(self) -> None:
        self._before_ask = capture(self._es)  # what an all-failed generation goes back to
        self._randn_calls = []
        mean, sigma = np.array(self._es.mean, dtype=np.float64), self._es.sigma  # cma's expression, in its coordinates
        scaling = None if self._es.sigma_vec.is_identity else np.array(self._es.sigma_vec.scaling)
        self._population = np.asarray(self._es.ask(), dtype=np.float64)
        self._diagonal_sampler = None
        if self.diagonal:
            self._diagonal_sampler = self._checked_diagonal_sampler(mean, sigma, scaling)

    def _checked_diagonal_sampler(self, mean, sigma, scaling) -> DiagonalSampler | None:
        """A DiagonalSampler if it rebuilds every asked vector bit for bit, else None (and a warning).

        cma's population is its injected solutions (TPA's mean-shift pair) followed by the rows of
        one ``randn(popsize - n_injected, n)`` draw: the last draw of that width is the one.
        """
        calls = [
            (c, s[0])
            for c, s in enumerate(self._randn_calls)
            if len(s) == 2 and s[1] == self.n_params and 0 < s[0] <= self.popsize
        ]
        if scaling is not None and scaling.shape != (self.n_params,):
            calls = []
        if calls:
            call, rows = calls[-1]
            held = self._population[: self.popsize - rows]
            sampler = DiagonalSampler(
                self.seed, self.generation, call, mean, sigma, scaling, held, self.popsize
            )
            if all(
                np.array_equal(sampler.params(CandidateKey(self.generation, i, 1)), x)
                for i, x in enumerate(self._population)
            ):
                return sampler
        warnings.warn(
            "cma's separable sampling no longer matches DiagonalSampler's expression; "
            "workers will receive the population vectors instead of keys",
            RuntimeWarning,
            stacklevel=3,
        )
        return None

    def _sampler(self) -> DiagonalSampler | PopulationSampler:
        if self._diagonal_sampler is not None:
            return self._diagonal_sampler
        return PopulationSampler(
            self.generation, self._population, tuple(range(self.popsize)), self.popsize
        )

    def _tell(self, fitness: np.ndarray) -> np.ndarray:
        """``fitness``: (popsize,), larger is better, -inf for failed candidates; returns cma's
        cost, ``-fitness`` (the run file's ``fitness_shaped`` for CMA-ES, docs/run-file.md)."""
        if np.isfinite(fitness).any():
            self._es.tell(list(self._population), (-fitness).tolist())
        else:
            # Every candidate failed: no information. cma would rank the tied candidates in index
            # order (its injected TPA pair first) and move anyway; instead the search stays where
            # it was before this generation's ask (as OpenAI-ES takes no step), and the next
            # generation draws fresh candidates (its normals are keyed by the generation).
            self._es = self._restored(self._before_ask)
        self._population = None
        self._diagonal_sampler = None
        self._before_ask = None
        return -fitness

    def _state_dict(self) -> dict[str, Any]:
        return {
            "diagonal": self.diagonal,
            "cma_version": _cma().__version__,
            "cma": capture(self._es),
        }

    def _restored(self, cma_state: dict[str, Any]) -> cma.CMAEvolutionStrategy:
        """A fresh cma strategy with ``cma_state`` (a :func:`capture`) written into it."""
        es = self._new_es()
        restore(es, cma_state)
        if not es.gp.isidentity and es.gp.tf_pheno is None and getattr(es.gp, "_tf_matrix", None) is not None:
            # full CMA-ES passed its covariance into a linear coordinate map (cma's alleviate_conditioning):
            # the matrices are restored data, the two maps that apply them are methods (as cma binds them)
            es.gp.tf_pheno, es.gp.tf_geno = es._tfp, es._tfg
        if not hasattr(es, "timer"):
            # cma creates its wall-clock timer in the first ask(); a resumed run has already had that
            es.timer = _cma().utilities.utils.ElapsedWCTime()
        return es

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        diagonal = bool(state_field(state, "diagonal"))
        if diagonal != self.diagonal:
            raise ValueError(f"state_dict diagonal must be {self.diagonal}, got {diagonal}")
        written_by = state_text(state, "cma_version") if "cma_version" in state else None
        versions = f"cma {written_by}" if written_by else "an earlier cma (its version unrecorded)"
        cma_state = state_field(state, "cma")
        try:
            es = self._restored(cma_state)
        except (AttributeError, KeyError, TypeError, ValueError) as e:
            raise ValueError(f"state_dict cma state does not fit cma {_cma().__version__} (written by {versions}; "
                             f"{type(e).__name__}: {e})") from None
        mean, sigma = np.asarray(es.mean, dtype=np.float64), es.sigma
        if mean.shape != (self.n_params,) or not np.all(np.isfinite(mean)):
            raise ValueError(f"state_dict cma mean must be finite of shape ({self.n_params},), got shape {mean.shape}")
        if not (np.isfinite(sigma) and sigma > 0):
            raise ValueError(f"state_dict cma sigma must be finite and > 0, got {sigma!r}")
        if written_by is not None and written_by != _cma().__version__:
            warnings.warn(
                f"this run's CMA-ES state was written by cma {written_by}; cma {_cma().__version__} is installed: "
                f"the resumed search may differ from an uninterrupted one (install cma=={written_by} to continue it exactly)",
                RuntimeWarning,
                stacklevel=3,
            )
        self._es = es
        self._population = None
        self._diagonal_sampler = None
        self._before_ask = None

