"""OpenAI-ES as Najarro & Risi (NeurIPS 2020) ran it to evolve Hebbian rules.

[1] Salimans et al. 2017, Evolution Strategies as a Scalable Alternative to Reinforcement Learning,
    https://arxiv.org/abs/1703.03864 (Algorithm 2: antithetic sampling, centred ranks).
[2] Najarro & Risi 2020, Meta-Learning through Hebbian Plasticity in Random Networks,
    https://arxiv.org/abs/2007.02686; code: github.com/enajx/HebbianMetaLearning,
    ``evolution_strategy_hebb.py`` (referred to below as "the authors' code").

One generation, with n = popsize and pairs sharing one noise stream eps_p:
    candidates      h_{2p} = h + sigma*eps_p,  h_{2p+1} = h - sigma*eps_p
    fitness         F_i = reward_i - l2_coeff * mean(h_i**2)          (penalty before ranking)
    shaped          c_i = centred_ranks(F)_i in [-0.5, 0.5], then standardised (authors' code)
    update          h += lr / (n*sigma) * sum_i c_i * sign_i * eps_i   (or an Adam step on it)
    schedules       lr *= 0.995 while lr > 0.001;  sigma *= 0.999 while sigma > 0.01
"""

from __future__ import annotations

from typing import Any

import numpy as np

from spikehebb.checks import is_finite_real
from spikehebb.es.base import Strategy
from spikehebb.es.candidates import NoiseSampler, noise_vector
from spikehebb.es.optim import OPTIMIZERS, loaded_optimizer
from spikehebb.es.shaping import centred_ranks, standardise
from spikehebb.es.state_checks import state_field, state_number, state_vector

INIT_STREAM = 1
"""Spawn-key entry of the initial-mean stream (noise streams use ``candidates.NOISE_STREAM``)."""


def _init_rng(seed: int) -> np.random.Generator:
    """The run's initial-mean stream."""
    return np.random.Generator(np.random.Philox(np.random.SeedSequence(seed, spawn_key=(INIT_STREAM,))))


def initial_mean(init: str | np.ndarray, n_params: int, seed: int) -> np.ndarray:
    """Starting point of the search: (n_params,) float64.

    init: ``"normal"`` N(0, 1) (the authors' default ``distribution='normal'``, torch.randn),
    ``"uniform"`` U[-1, 1] (their ``distribution='uniform'``), ``"zeros"`` (evostrat's
    ``NormalPopulation``; Palm et al.'s code replaced it with N(0, 1), so no paper's run started
    there), or an explicit (n_params,) vector.
    """
    if isinstance(init, str):
        rng = _init_rng(seed)
        if init == "normal":
            return rng.standard_normal(n_params)
        if init == "uniform":
            return rng.uniform(-1.0, 1.0, n_params)
        if init == "zeros":
            return np.zeros(n_params)
        raise ValueError(f"init must be 'normal', 'uniform', 'zeros' or a vector, got {init!r}")
    mean = np.array(init, dtype=np.float64, copy=True)
    if mean.shape != (n_params,):
        raise ValueError(f"initial vector must have shape ({n_params},), got {mean.shape}")
    if not np.all(np.isfinite(mean)):
        raise ValueError("initial vector must be finite, got NaN or inf")
    return mean


def check_search_settings(
    popsize: int, antithetic: bool, optimizer: str, sigma: float, lr: float,
    lr_decay: float = 1.0, lr_floor: float = 0.0, sigma_decay: float = 1.0, sigma_floor: float = 0.0,
) -> None:
    """The checks every OpenAI-ES-style strategy makes of its settings (one-line ValueErrors):
    sigma and lr finite and > 0, decays in (0, 1], floors finite and >= 0."""
    if antithetic and popsize % 2:
        raise ValueError(f"population must be even for antithetic sampling, got {popsize}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, got {optimizer!r}")
    if not (is_finite_real(sigma) and is_finite_real(lr) and sigma > 0 and lr > 0):
        raise ValueError(f"sigma and lr must be finite numbers > 0, got sigma={sigma!r}, lr={lr!r}")
    for name, decay in (("lr_decay", lr_decay), ("sigma_decay", sigma_decay)):
        if not (is_finite_real(decay) and 0 < decay <= 1):
            raise ValueError(f"{name} must be a number in (0, 1] (a factor per generation), got {decay!r}")
    for name, floor in (("lr_floor", lr_floor), ("sigma_floor", sigma_floor)):
        if not (is_finite_real(floor) and floor >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {floor!r}")


def fan_in_mean(layer_shapes, seed: int) -> np.ndarray:
    """Weight matrices drawn as torch's ``nn.Linear`` draws them by default, each entry
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)), flattened in order: the starting point of the authors'
    static-weights baseline (enajx/ES ``train_static.py`` starts its search at a fresh
    ``MLP(...).get_weights()``). ``layer_shapes``: ``(n_pre, n_post)`` per layer, fan_in = n_pre.
    Drawn from the initial-mean stream of ``seed``; (sum n_pre n_post,) float64."""
    rng = _init_rng(seed)
    layers = []
    for shape in layer_shapes:
        if len(shape) != 2:
            raise ValueError(f"fan-in init draws weight matrices (n_pre, n_post), got a layer of shape {tuple(shape)}")
        bound = 1.0 / np.sqrt(shape[0])
        layers.append(rng.uniform(-bound, bound, int(np.prod(shape))))
    return np.concatenate(layers) if layers else np.zeros(0)


class OpenAIES(Strategy):
    """OpenAI-ES with the constants and protocol of Najarro & Risi 2020. Fitness is MAXIMISED.

    Args:
        n_params: length of the searched vector.
        popsize: candidates per generation (paper: 500 for the ant, 200 for the car); must be even
            with antithetic sampling.
        seed: run seed; noise of candidate pair p in generation g is stream (seed, g, p).
        lr: initial learning rate. lr_decay: factor per generation. lr_floor: decay stops once
            lr <= lr_floor (the authors' ``if self.learning_rate > 0.001``).
        sigma: initial noise scale. sigma_decay: factor per generation. sigma_floor: decay stops
            once sigma <= sigma_floor (the authors' ``if self.SIGMA > 0.01``).
        l2_coeff: fitness penalty ``-l2_coeff * mean(h_i**2)`` added to each raw reward before the
            ranks (the authors' ``worker_process_hebb``).
        init: ``"normal"`` | ``"uniform"`` | (n_params,) vector, see :func:`initial_mean`.
        antithetic: mirrored pairs (+eps, -eps), interleaved as in the authors' ``_get_population``.
        standardise_ranks: divide the centred ranks by their std after centring (the authors'
            ``_update_coeffs``); False gives the bare centred ranks of Salimans et al.
        optimizer: ``"sgd"`` (paper) or ``"adam"`` (Salimans et al. 2017).
    """

    name = "openai-es"

    def __init__(
        self,
        n_params: int,
        popsize: int,
        seed: int = 0,
        lr: float = 0.2,  # Najarro & Risi 2020 (train_hebb.py --lr)
        lr_decay: float = 0.995,  # Najarro & Risi 2020 (train_hebb.py --decay)
        lr_floor: float = 0.001,  # Najarro & Risi 2020 code (_update_coeffs)
        sigma: float = 0.1,  # Najarro & Risi 2020 (train_hebb.py --sigma)
        sigma_decay: float = 0.999,  # Najarro & Risi 2020 code (_update_coeffs)
        sigma_floor: float = 0.01,  # Najarro & Risi 2020 code (_update_coeffs)
        l2_coeff: float = 0.01,  # Najarro & Risi 2020 code (worker_process_hebb)
        init: str | np.ndarray = "normal",  # Najarro & Risi 2020 (train_hebb.py --distribution)
        antithetic: bool = True,  # Salimans et al. 2017; Najarro & Risi 2020
        standardise_ranks: bool = True,  # Najarro & Risi 2020 code (_update_coeffs)
        optimizer: str = "sgd",  # Najarro & Risi 2020
    ) -> None:
        super().__init__(n_params, popsize, seed, l2_coeff)
        check_search_settings(self.popsize, antithetic, optimizer, sigma, lr, lr_decay, lr_floor, sigma_decay, sigma_floor)
        self.lr = float(lr)
        self.lr_decay = float(lr_decay)
        self.lr_floor = float(lr_floor)
        self._sigma = float(sigma)
        self.sigma_decay = float(sigma_decay)
        self.sigma_floor = float(sigma_floor)
        self.antithetic = bool(antithetic)
        self.standardise_ranks = bool(standardise_ranks)
        self.optimizer = OPTIMIZERS[optimizer](self.n_params)
        self._mean = initial_mean(init, self.n_params, self.seed)

    @property
    def mean(self) -> np.ndarray:
        return self._mean.copy()

    @property
    def sigma(self) -> float:
        return self._sigma

    def _sign(self, index: int) -> int:
        return -1 if self.antithetic and index % 2 else 1

    def _ask(self) -> None:
        pass

    def _sampler(self) -> NoiseSampler:
        return NoiseSampler(
            self.seed, self.generation, self._mean, self._sigma, self.antithetic, self.popsize
        )

    def _streams(self):
        """(stream, population indices sharing it) in stream order."""
        if self.antithetic:
            return ((p, (2 * p, 2 * p + 1)) for p in range(self.popsize // 2))
        return ((i, (i,)) for i in range(self.popsize))

    def _noise(self, stream: int) -> np.ndarray:
        return noise_vector(self.seed, self.generation, stream, self.n_params)

    def _mean_squares(self) -> np.ndarray:
        """One noise draw per pair serves both members (the base class would draw it twice)."""
        out = np.empty(self.popsize)
        for stream, members in self._streams():
            eps = self._noise(stream)
            for i in members:
                out[i] = np.mean(np.square(self._mean + (self._sign(i) * self._sigma) * eps))
        return out

    def _tell(self, fitness: np.ndarray) -> np.ndarray:
        shaped = centred_ranks(fitness)
        if shaped.any():
            if self.standardise_ranks:
                shaped = standardise(shaped)
            weighted = np.zeros(self.n_params)
            for stream, members in self._streams():
                weight = sum(self._sign(i) * shaped[i] for i in members)
                weighted += weight * self._noise(stream)
            grad = weighted / (self.popsize * self._sigma)
            self._mean = self._mean + self.optimizer.step(grad, self.lr)
        # else every candidate tied (e.g. all evaluations failed): no information, so no step; the
        # authors' code raises here, which would end a long run over one bad generation
        if self.lr > self.lr_floor:
            self.lr *= self.lr_decay
        if self._sigma > self.sigma_floor:
            self._sigma *= self.sigma_decay
        return shaped

    def _state_dict(self) -> dict[str, Any]:
        return {
            "mean": self._mean.copy(),
            "sigma": self._sigma,
            "lr": self.lr,
            "antithetic": self.antithetic,
            "optimizer": self.optimizer.state_dict(),
        }

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        antithetic = bool(state_field(state, "antithetic"))
        if antithetic != self.antithetic:
            raise ValueError(f"state_dict antithetic must be {self.antithetic}, got {antithetic}")
        optimizer = loaded_optimizer(state, "optimizer", self.optimizer.name, self.n_params)
        mean = state_vector(state, "mean", self.n_params)
        sigma = state_number(state, "sigma", positive=True)
        lr = state_number(state, "lr", positive=True)
        self._mean, self._sigma, self.lr, self.optimizer = mean, sigma, lr, optimizer
