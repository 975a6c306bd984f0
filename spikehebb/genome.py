"""The genome map: a candidate's flat vector <-> the named parts an agent needs.

An evolution strategy searches one flat float vector per candidate. The run's :class:`GenomeMap`
says what it is made of: an ordered list of :class:`~spikehebb.agents.base.GenomePart` (a name and
per-layer shapes without the member axis), concatenated in order, each layer raveled in C order.
The parts come from the task (an encoder with evolved parameters, the car's convolutions:
``"encoder"``) and the agent kind (a Hebbian network's ``"coefficients"``, per layer
``(n_pre, n_post, k)`` in :mod:`spikehebb.rules` layout; a static network's ``"weights"``, per
layer ``(n_pre, n_post)``; an LSTM's recurrent weights, ...). Parts that are not searched (a
Hebbian network's random initial weights, drawn afresh for every lifetime) are listed by the
agent but are not in the vector.

The map is stored in the run file as JSON (:meth:`GenomeMap.to_json`), so any agent can be
rebuilt from the file alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from spikehebb.agents.base import GenomePart


@dataclass(frozen=True)
class GenomeMap:
    """Named parts of a flat parameter vector, in order (searched parts only)."""

    parts: tuple[GenomePart, ...]

    def __post_init__(self) -> None:
        names = [p.name for p in self.parts]
        if len(set(names)) != len(names):
            raise ValueError(f"genome parts must have distinct names, got {names}")
        if any(not p.searched for p in self.parts):
            raise ValueError("a genome map lists searched parts only")

    @classmethod
    def of(cls, parts: Sequence[GenomePart]) -> "GenomeMap":
        """The map of the searched parts among ``parts`` (in their order)."""
        return cls(tuple(p for p in parts if p.searched))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parts)

    @property
    def n_params(self) -> int:
        """Length of the flat vector."""
        return sum(p.size for p in self.parts)

    def part_sizes(self) -> dict[str, int]:
        return {p.name: p.size for p in self.parts}

    def shapes(self, name: str) -> tuple[tuple[int, ...], ...]:
        for p in self.parts:
            if p.name == name:
                return p.shapes
        raise KeyError(f"no part {name!r}; the genome has {self.names}")

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
        for part in self.parts:
            layers = []
            for shape in part.shapes:
                size = int(np.prod(shape))
                layers.append(flat[:, start : start + size].reshape((flat.shape[0],) + tuple(shape)))
                start += size
            out[part.name] = layers
        return out

    def join(self, parts: Mapping[str, Sequence[np.ndarray]]) -> np.ndarray:
        """Inverse of :meth:`split`: per part, per layer ``(B, *shape)`` -> ``(B, n_params)``.

        parts: every part of the map (others are ignored), each a sequence of exactly its layers,
        layer l of shape ``(B, *shapes[l])`` with one B for all; anything else is a one-line
        ValueError naming the part and layer (a transposed or missing layer is never reshaped in).
        """
        missing = set(self.names) - set(parts)
        if missing:
            raise ValueError(f"missing parts {sorted(missing)}; the genome has {self.names}")
        arrays, batch = [], None
        for part in self.parts:
            layers = list(parts[part.name])
            if len(layers) != len(part.shapes):
                raise ValueError(f"part {part.name!r} must have {len(part.shapes)} layers, got {len(layers)}")
            for l, (layer, shape) in enumerate(zip(layers, part.shapes), 1):
                layer = np.asarray(layer)
                b = layer.shape[0] if layer.ndim else None
                if layer.shape[1:] != tuple(shape) or b is None or batch not in (None, b):
                    expected = "(" + ", ".join(["B" if batch is None else str(batch), *map(str, shape)]) + ")"
                    raise ValueError(f"part {part.name!r} layer {l} must have shape {expected}, got {layer.shape}")
                batch = b
                arrays.append(layer.reshape(b, int(np.prod(shape))))
        return np.concatenate(arrays, axis=1)

    def to_json(self) -> str:
        """``{"parts": [[name, [shape, ...]], ...]}``, the run file's ``layout`` attribute
        (the format run files have used since version 1)."""
        return json.dumps({"parts": [[p.name, [list(s) for s in p.shapes]] for p in self.parts]})

    @classmethod
    def from_json(cls, text: str) -> "GenomeMap":
        parts = json.loads(text)["parts"]
        return cls(tuple(GenomePart(name, tuple(tuple(s) for s in shapes)) for name, shapes in parts))
