"""What a strategy searches: the layout of one candidate's flat parameter vector.

A candidate is a flat float vector made of named parts, in order, each a list of per-layer
arrays whose shapes exclude the population axis:

- ``"coefficients"``: the rule's coefficients, per layer ``(n_pre, n_post, k)`` (the layout of
  :mod:`spikehebb.rules`)
- ``"weights"``: initial (co-evolved) or fixed (static baseline) weights, per layer
  ``(n_pre, n_post)``

Within a part the layers are concatenated, each raveled in C order. A Hebbian run searches
``coefficients``; ``coevolve`` adds ``weights`` after them (Najarro & Risi 2020, appendix 6.4); the
static baseline searches ``weights`` only. Tasks may add parts of their own (e.g. the car's
evolved, non-plastic convolution weights).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from spikehebb.rules import coefficient_shapes

MODES = ("hebbian", "coevolve", "static")


@dataclass(frozen=True)
class ParamLayout:
    """Named parts of a flat parameter vector; ``parts`` maps a name to per-layer shapes."""

    parts: tuple[tuple[str, tuple[tuple[int, ...], ...]], ...]

    @classmethod
    def for_network(
        cls,
        sizes: Sequence[int],
        rule: str | None,
        mode: str = "hebbian",
        extra: Sequence[tuple[str, Sequence[tuple[int, ...]]]] = (),
    ) -> "ParamLayout":
        """The layout of a run: ``mode`` is "hebbian", "coevolve" or "static"; ``extra`` parts
        (name, shapes) come first (encoder parameters)."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}")
        if (mode == "static") != (rule is None):
            raise ValueError(f"mode {mode!r} needs {'no rule' if mode == 'static' else 'a rule'}, got rule={rule!r}")
        weights = tuple((a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        parts = [(name, tuple(tuple(s) for s in shapes)) for name, shapes in extra]
        if mode != "static":
            parts.append(("coefficients", tuple(coefficient_shapes(sizes, rule))))
        if mode != "hebbian":
            parts.append(("weights", weights))
        return cls(tuple(parts))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.parts)

    @property
    def n_params(self) -> int:
        """Length of the flat vector."""
        return sum(int(np.prod(s)) for _, shapes in self.parts for s in shapes)

    def part_sizes(self) -> dict[str, int]:
        return {name: sum(int(np.prod(s)) for s in shapes) for name, shapes in self.parts}

    def split(self, flat: np.ndarray) -> dict[str, list[np.ndarray]]:
        """Flat vectors ``(B, n_params)`` (or one ``(n_params,)``) -> per part, per layer
        ``(B, *shape)`` views."""
        flat = np.asarray(flat)
        if flat.ndim == 1:
            flat = flat[None]
        if flat.ndim != 2 or flat.shape[1] != self.n_params:
            raise ValueError(
                f"parameters must be (B, {self.n_params}) for parts {self.names}, got {flat.shape}"
            )
        out, start = {}, 0
        for name, shapes in self.parts:
            layers = []
            for shape in shapes:
                size = int(np.prod(shape))
                layers.append(flat[:, start : start + size].reshape((flat.shape[0],) + tuple(shape)))
                start += size
            out[name] = layers
        return out

    def join(self, parts: dict[str, Sequence[np.ndarray]]) -> np.ndarray:
        """Inverse of :meth:`split`: per part, per layer ``(B, *shape)`` -> ``(B, n_params)``."""
        missing = set(self.names) - set(parts)
        if missing:
            raise ValueError(f"missing parts {sorted(missing)}; the layout has {self.names}")
        arrays = [np.reshape(a, (np.shape(a)[0], -1)) for name in self.names for a in parts[name]]
        return np.concatenate(arrays, axis=1)
