"""Weight constraints: ordered objects applied to a layer's weights after the rule, every step.

A network takes a list of constraints and applies them in list order after the rule has updated
every layer (step order: forward pass, rule on every layer, constraints). Each constraint names
the layers it acts on and says how each backend applies it:

- :meth:`WeightConstraint.apply`: NumPy, in place on one layer's weights ``(P, n_pre, n_post)``
  (C-contiguous). The NumPy backend always calls it.
- :meth:`WeightConstraint.brian_code`: Brian2 synaptic code run after the rule (compiled), or
  None when Brian2's code cannot express it (a reduction over a member's synapses); the Brian2
  backend then runs :meth:`apply` in a ``NetworkOperation`` on the arrays its compiled code
  reads, so both backends call the same function and agree bit for bit.
- :meth:`WeightConstraint.brian_model`: extra per-synapse variables the code reads (e.g. a
  sign per synapse), set by :meth:`brian_values` at build.

The registry :data:`CONSTRAINTS` builds one by name (``make_constraint("max_abs")``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


class WeightConstraint:
    """Base class. ``layers``: synaptic layers it acts on, counted from 0 (None: all)."""

    name = ""

    def __init__(self, layers: Sequence[int] | None = None):
        self.layers = None if layers is None else tuple(int(l) for l in layers)

    def acts_on(self, layer: int) -> bool:
        return self.layers is None or layer in self.layers

    def apply(self, w: np.ndarray, layer: int) -> None:
        """Constrain one layer's weights ``(P, n_pre, n_post)`` in place."""
        raise NotImplementedError

    def brian_code(self, layer: int) -> str | None:
        """Brian2 synaptic code doing the same, or None (then :meth:`apply` runs as a NetworkOperation)."""
        return None

    def brian_model(self, layer: int) -> list[str]:
        """Extra per-synapse variable lines of the Brian2 model that :meth:`brian_code` reads."""
        return []

    def brian_values(self, layer: int, population: int) -> dict[str, np.ndarray]:
        """Values of :meth:`brian_model`'s variables, flat in (member, pre, post) order."""
        return {}

    def to_dict(self) -> dict:
        return {"name": self.name, "layers": None if self.layers is None else list(self.layers)}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(layers={self.layers})"

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and other.to_dict() == self.to_dict()

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.layers))


class MaxAbsNormalisation(WeightConstraint):
    """Each member's layer divided by its largest |w| (Najarro & Risi 2020's car code,
    ``w = w / abs(w).max()`` per layer after every update). A layer whose weights are all 0 is
    left as it is (the original would divide by 0). A reduction over a member's synapses, which
    Brian2's synaptic code cannot express: NumPy in both backends."""

    name = "max_abs"

    def apply(self, w: np.ndarray, layer: int) -> None:
        if not w.flags.c_contiguous:
            raise ValueError("max_abs normalisation works in place and needs a C-contiguous array")
        flat = w.reshape(w.shape[0], -1)
        scale = np.abs(flat).max(axis=1)
        scale[scale == 0] = 1  # an all-zero layer stays as it is
        flat /= scale[:, None]


#: Every constraint by name.
CONSTRAINTS: dict[str, type[WeightConstraint]] = {MaxAbsNormalisation.name: MaxAbsNormalisation}


def make_constraint(spec: "str | dict | WeightConstraint") -> WeightConstraint:
    """A constraint from its name, its ``to_dict()`` form, or itself."""
    if isinstance(spec, WeightConstraint):
        return spec
    if isinstance(spec, str):
        spec = {"name": spec}
    spec = dict(spec)
    name = spec.pop("name", None)
    if name not in CONSTRAINTS:
        raise ValueError(f"unknown weight constraint {name!r}; expected one of {tuple(CONSTRAINTS)}")
    return CONSTRAINTS[name](**spec)
