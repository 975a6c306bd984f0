"""Hebbian and static rate networks as agents (Najarro & Risi 2020).

- ``hebbian``: a :class:`~spikehebb.network.PlasticNetwork` whose weights start random in every
  lifetime (U[-0.1, 0.1], drawn per lifetime from its seed, not searched) and change by the
  evolved rule after every step. Genome: ``"coefficients"``, per layer ``(n_pre, n_post, k)``;
  with ``evolve_initial_weights`` (the paper's appendix 6.4, "co-evolved") also ``"weights"``,
  the searched initial weights, per layer ``(n_pre, n_post)``.
- ``static``: the same network with no rule; its weights are the genome (``"weights"``), the
  paper's static-weights baseline.

The biology-minded options of :class:`~spikehebb.agents.AgentConfig` (Dale's law, the
three-factor rule, lognormal weights, a slower rule on averaged rates; :mod:`spikehebb.biology`)
become the network's rule, constraints and options in :meth:`NetworkAgent.network_options`.

Either runs on the Brian2 backend (the rule as equations compiled to C++, default) or NumPy
(``AgentConfig.backend``). The task's weight constraints (the car's max-|w| normalisation) apply
to plastic networks only.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from spikehebb.agents.base import GenomePart
from spikehebb.agents.config import AgentConfig
from spikehebb.network import make_network, sample_weights
from spikehebb.rules import coefficient_shapes


def _weight_shapes(sizes: Sequence[int]) -> tuple[tuple[int, int], ...]:
    return tuple((a, b) for a, b in zip(sizes[:-1], sizes[1:]))


def _rows_i_plus_j(n_pre: int, n_post: int) -> np.ndarray:
    """Synapse (i, j) reads row ``i + j`` of its layer's ``n_pre * n_post`` rows: the index of
    Najarro & Risi's ``hebbian_weights_update.py`` at commit 6991484 (``heb_coeffs[heb_offset +
    i+j]``, i the presynaptic unit), replaced by ``n_post * i + j`` in their commit 99821ea
    (2020-10-13, "fix bug"). Only ``n_pre + n_post - 1`` rows are read."""
    return np.add.outer(np.arange(n_pre), np.arange(n_post))


def _i_plus_j(sizes: Sequence[int], rule: str) -> list[tuple[np.ndarray, None]]:
    return [(_rows_i_plus_j(a, b), None) for a, b in _weight_shapes(sizes)]


def _mirror(sizes: Sequence[int], rule: str):
    from spikehebb.agents.mirror import mirror_rows

    return mirror_rows(sizes, rule)


#: Which coefficient row of its layer each synapse (i, j) reads: ``rows(sizes, rule)`` gives per
#: weight layer the row numbers ``(n_pre, n_post)`` and a factor per field ``(n_pre, n_post, k)``
#: or None (1); None for the registry's "per_synapse": its own row (``n_post * i + j``, the
#: genome's layout as it is).
COEFFICIENT_ROWS = {"per_synapse": None, "i_plus_j": _i_plus_j, "mirror": _mirror}


def distinct_rules(sizes: Sequence[int], coefficient_rows: str, rule: str = "ABCD_lr") -> int:
    """How many different coefficient rows the network reads (one rule per row)."""
    rows = COEFFICIENT_ROWS[coefficient_rows]
    if rows is None:
        return sum(a * b for a, b in _weight_shapes(sizes))
    return sum(np.unique(r).size for r, _ in rows(sizes, rule))


def _read_rows(coefficients: np.ndarray, rows: np.ndarray, factors: np.ndarray | None) -> np.ndarray:
    """A layer's coefficients ``(P, n_pre, n_post, k)`` as its synapses read them."""
    read = coefficients.reshape(coefficients.shape[0], -1, coefficients.shape[-1])[:, rows]
    return read if factors is None else read * factors


def coefficients_as_read(config: AgentConfig, sizes: Sequence[int], coefficients: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The rule coefficients each synapse reads, per layer ``(P, n_pre, n_post, k)``, from the
    genome's ``coefficients`` part (per layer ``(P, n_pre, n_post, k)``, as a run file stores it
    with P = 1): the same arrays for per-synapse rows, the tied rows' gather (and, for ``mirror``,
    signs) otherwise."""
    rows = COEFFICIENT_ROWS[config.coefficient_rows]
    if rows is None:
        return [np.asarray(c) for c in coefficients]
    return [_read_rows(np.asarray(c), r, f) for c, (r, f) in zip(coefficients, rows(sizes, config.network_rule))]


class NetworkAgent:
    """An agent backed by one batched :class:`~spikehebb.network.PlasticNetwork`.

    Arguments:
        config: the agent's :class:`AgentConfig`.
        sizes, activation: the task's network.
        batch_size: B, the network's population.
        constraints: weight constraints after the rule (ignored without a rule).
        network_kwargs: passed to the backend (``target``, ``fold_eta``).
    """

    kind = ""
    takes_rule = False
    """Whether the kind has a plasticity rule (``AgentConfig.rule``)."""

    def __init__(self, config: AgentConfig, sizes, activation, batch_size: int, constraints=(), **network_kwargs):
        self.config = config
        rule = self.rule_name(config)
        options = self.network_options(config, sizes)
        constraints = tuple(options.pop("constraints", ())) + tuple(constraints)
        self.network = make_network(
            sizes, rule, batch_size, backend=config.backend, activation=activation, dtype=config.dtype,
            constraints=constraints if rule is not None else (), **options, **network_kwargs,
        )
        self.batch_size = int(batch_size)
        self.n_inputs, self.n_outputs = self.network.sizes[0], self.network.sizes[-1]
        rows = COEFFICIENT_ROWS[config.coefficient_rows]
        self._rows = None if rows is None else rows(self.network.sizes, rule)

    @staticmethod
    def rule_name(config: AgentConfig) -> str | None:
        raise NotImplementedError

    @staticmethod
    def signs(config: AgentConfig, sizes: Sequence[int]) -> list[np.ndarray] | None:
        """Dale's E/I signs per layer of units (None without Dale's law)."""
        from spikehebb.biology import dale_signs

        return None if config.dale is None else dale_signs(sizes, config.dale, config.dale_seed)

    @classmethod
    def network_options(cls, config: AgentConfig, sizes: Sequence[int]) -> dict:
        """The network's options from the config's biology-minded fields: Dale's constraint
        (before the task's own), the rule's schedule, the modulator baseline, tau_e."""
        if cls.rule_name(config) is None:
            return {}
        from spikehebb.biology import dale_constraint

        options: dict = {}
        if config.dale is not None:
            options["constraints"] = [dale_constraint(sizes, config.dale, config.dale_mode, config.dale_seed,
                                                              config.dale_balance)]
        if config.rule_every != 1:
            options["rule_every"] = config.rule_every
        if config.rate_average is not None:
            options["rate_tau"] = float(config.rate_average)
        if config.modulated:
            options["baseline_tau"] = float(config.baseline_tau)
            options["eligibility_tau"] = float(config.eligibility_tau)
        return options

    # ---- genome
    @classmethod
    def genome_parts(cls, config: AgentConfig, sizes: Sequence[int]) -> tuple[GenomePart, ...]:
        raise NotImplementedError

    @classmethod
    def draw_part(cls, config: AgentConfig, sizes: Sequence[int], name: str, rng: np.random.Generator) -> list[np.ndarray]:
        """A lifetime's value of a part that is not searched: per layer ``(1, *shape)``."""
        if name != "weights":
            raise KeyError(f"{cls.kind} agents draw no part {name!r}")
        return sample_weights(sizes, 1, config.weight_init, config.weight_scale, rng, signs=cls.signs(config, sizes))

    # ---- the protocol
    def reset(self, parts: Mapping[str, Sequence[np.ndarray]], members: Sequence[int] | None = None) -> None:
        """Arm lifetimes in slots ``members`` (None: all): ``parts`` maps ``"weights"`` (and, with a
        rule, ``"coefficients"``) to per-layer arrays with one row per slot armed."""
        self._check_parts(parts)
        coefficients = parts.get("coefficients")
        if self._rows is not None and coefficients is not None:  # each synapse reads its row of the layer
            # the genome's layout, checked here: the gather would take any array with enough rows
            shapes = [s[1:] for s in self.network.coefficient_shapes]
            got = [np.shape(c)[1:] for c in coefficients]
            if len(got) != len(shapes) or got != shapes:
                raise ValueError(f"coefficients must be per layer (P, n_pre, n_post, k) with (n_pre, n_post, k) = "
                                 f"{shapes}, got {got}")
            coefficients = [_read_rows(c, rows, factors) for c, (rows, factors) in zip(coefficients, self._rows)]
        self.network.reset(coefficients, parts["weights"], members)

    def _check_parts(self, parts) -> None:
        """A one-line error unless ``parts`` maps every part :meth:`reset` needs to its arrays."""
        need = ("coefficients", "weights") if self.network.plastic else ("weights",)
        if not isinstance(parts, Mapping) or any(name not in parts for name in need):
            got = sorted(map(str, parts)) if isinstance(parts, Mapping) else f"a {type(parts).__name__}"
            raise ValueError(f"a {self.kind} agent's reset takes a mapping of the parts {list(need)} to per-layer "
                             f"arrays, got {got}")

    def step(self, inputs: np.ndarray, modulator: np.ndarray | None = None) -> np.ndarray:
        return self.network.step(inputs, modulator)

    @property
    def can_compact(self) -> bool:
        """Whether the network can move members between slots and step a prefix (the rollout
        then steps only its live lifetimes at a generation's tail)."""
        return self.network.can_compact

    def move_members(self, sources: Sequence[int], targets: Sequence[int]) -> None:
        self.network.move_members(sources, targets)

    def set_active(self, n: int | None) -> None:
        self.network.set_active(n)

    def weights(self) -> list[np.ndarray]:
        return self.network.weights

    def activations(self) -> list[np.ndarray]:
        return self.network.activations

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        """Replace every slot's weights mid-lifetime, per layer ``(B, n_pre, n_post)``."""
        self.network.set_weights(weights)

    @property
    def frozen(self) -> bool:
        """While True the rule is paused (forward pass only)."""
        return self.network.frozen

    @frozen.setter
    def frozen(self, value: bool) -> None:
        self.network.frozen = bool(value)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.network!r})"


class HebbianAgent(NetworkAgent):
    """Random initial weights, an evolved plasticity rule (see the module docstring)."""

    kind = "hebbian"
    takes_rule = True

    @staticmethod
    def rule_name(config: AgentConfig) -> str:
        return config.network_rule

    @classmethod
    def genome_parts(cls, config: AgentConfig, sizes: Sequence[int]) -> tuple[GenomePart, ...]:
        return (
            GenomePart("coefficients", tuple(coefficient_shapes(sizes, config.network_rule))),
            GenomePart("weights", _weight_shapes(sizes), searched=config.evolve_initial_weights),
        )


class StaticAgent(NetworkAgent):
    """Evolved fixed weights, no plasticity: the paper's static-weights baseline."""

    kind = "static"

    @staticmethod
    def rule_name(config: AgentConfig) -> None:
        return None

    @classmethod
    def genome_parts(cls, config: AgentConfig, sizes: Sequence[int]) -> tuple[GenomePart, ...]:
        return (GenomePart("weights", _weight_shapes(sizes)),)
