"""NumPy backend of :class:`~spikehebb.network.base.PlasticNetwork`: batched matmuls.

Used for tests, small runs and machines without a compiler. The rule is applied with the
learning rate folded into the coefficients (:func:`spikehebb.rules.fold_eta`) and the terms
grouped as ``o_i*(A*o_j + B) + (C*o_j + D)``, which equals the paper's form up to rounding.
Normalisations run after the rule on every layer, in place
(:meth:`~spikehebb.network.base.PlasticNetwork.max_abs_normalise`).
"""

from __future__ import annotations

import numpy as np

from spikehebb.network.base import ACTIVATIONS, PlasticNetwork
from spikehebb.rules import fold_eta


class NumpyPlasticNetwork(PlasticNetwork):
    """P plastic networks as NumPy arrays; see :class:`PlasticNetwork` for the arguments."""

    def _arm(self, coefficients, weights):
        self._w = [w.astype(self.dtype) for w in weights]
        self._coef = [
            {f: c.astype(self.dtype) for f, c in fold_eta(layer, self.rule).items()}
            for layer in coefficients
        ]  # empty for a static network: no update
        self._rates = [np.zeros((self.population, n), self.dtype) for n in self.sizes]
        self._act = [ACTIVATIONS[name][1] for name in self.activation]

    def _step(self, inputs):
        rates = [inputs.copy()]  # the caller may reuse its input array for the next step
        for w, f in zip(self._w, self._act):
            rates.append(f(np.matmul(rates[-1][:, None, :], w)[:, 0]).astype(self.dtype, copy=False))
        self._rates = rates
        if self.frozen:
            return rates[-1].copy()
        for w, c, pre, post in zip(self._w, self._coef, rates[:-1], rates[1:]):
            o_i, o_j = pre[:, :, None], post[:, None, :]
            inner = c["A"] * o_j if "A" in c else 0
            if "B" in c:
                inner = inner + c["B"]
            dw = o_i * inner
            if "C" in c:
                dw = dw + c["C"] * o_j
            if "D" in c:
                dw = dw + c["D"]
            w += dw
        for w, norm in zip(self._w, self.normalise):
            if norm == "max_abs":
                self.max_abs_normalise(w)
        return rates[-1].copy()

    def _weights(self):
        return [w.copy() for w in self._w]

    def _set_weights(self, weights):
        for w, new in zip(self._w, weights):
            w[...] = new

    def _activations(self):
        return [r.copy() for r in self._rates]
