"""NumPy backend of :class:`~spikehebb.network.base.PlasticNetwork`: batched matrix-vector products.

Used for tests, small runs and machines without a compiler. The rule's update is
:func:`spikehebb.rules.numpy_delta`, generated from the rule's term table with the learning rate
folded into the coefficients (:func:`spikehebb.rules.fold_eta`), which equals the paper's form up
to rounding. Constraints run after the rule on every layer, in place. A rule with state (the
three-factor rules' eligibility trace) keeps it per layer ``(P, n_pre, n_post)``; with
``rate_tau`` every layer keeps its rates' moving average ``(P, n_l)``, which the rule reads; a
reparametrising constraint (smooth Dale) keeps the latent the rule changes. A rule's factor ``w``
reads the layer's weights as they are before the update (with a latent, the weights the last
step's constraint set from it), as the Brian2 backend's code reads ``w``.
"""

from __future__ import annotations

import numpy as np

from spikehebb.network.base import ACTIVATIONS, PlasticNetwork, batched_matvec
from spikehebb.rules import fold_eta, numpy_delta


class NumpyPlasticNetwork(PlasticNetwork):
    """P plastic networks as NumPy arrays; see :class:`PlasticNetwork` for the arguments."""

    backend = "numpy"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        P = self.population
        self._w = [np.zeros(s, self.dtype) for s in self.weight_shapes]
        self._coef = [
            {f: np.zeros(s, self.dtype) for f in fold_eta(np.zeros((1, self.rule.k)), self.rule)}
            for s in self.weight_shapes
        ] if self.plastic else [{} for _ in self.weight_shapes]
        self._rates = [np.zeros((P, n), self.dtype) for n in self.sizes]
        self._act = [ACTIVATIONS[name][1] for name in self.activation]
        self._state = [
            {st.name: np.zeros(s, self.dtype) for st in self.rule.state} for s in self.weight_shapes
        ] if self.plastic else [{} for _ in self.weight_shapes]
        self._averages = [np.zeros((P, n), self.dtype) for n in self.sizes] if self.rate_tau else None
        self._latent = [None if c is None else np.zeros(s, self.dtype)
                        for c, s in zip(self.latent_constraints, self.weight_shapes)]
        self._gains = [None if g is None else g.astype(self.dtype) for g in self.input_gains]

    def _arm(self, coefficients, weights, members):
        where = slice(None) if members is None else members
        weights, latents = self._latents_of(weights)
        for w, new in zip(self._w, weights):
            w[where] = new
        for v, new in zip(self._latent, latents):
            if v is not None:
                v[where] = new
        for coef, layer in zip(self._coef, coefficients):
            with np.errstate(over="ignore"):  # a blown-up candidate: its lifetime ends with NaN
                for f, c in fold_eta(layer, self.rule).items():
                    coef[f][where] = c
        for r in self._rates + (self._averages or []):
            r[where] = 0
        for state in self._state:
            for array in state.values():
                array[where] = 0

    def _step(self, inputs, modulator):
        rates = [inputs.copy()]  # the caller may reuse its input array for the next step
        for w, f, gain in zip(self._w, self._act, self._gains):
            sent = rates[-1] if gain is None else rates[-1] * gain
            rates.append(f(batched_matvec(sent, w)).astype(self.dtype, copy=False))
        self._rates = rates
        if self._averages is not None:
            for avg, r in zip(self._averages, rates):
                avg += (r - avg) / self.dtype.type(self.rate_tau)
        if self.frozen or not self.plastic:
            return rates[-1].copy()
        seen = self._averages if self._averages is not None else rates
        for layer, (c, pre, post) in enumerate(zip(self._coef, seen[:-1], seen[1:])):
            target = self._w[layer] if self._latent[layer] is None else self._latent[layer]
            target += numpy_delta(c, pre, post, modulator, self.rule, self._state[layer], self.rule_constants, self._gate,
                                  weights=self._w[layer])
        self._apply_constraints(self._w, latents=self._latent)
        return rates[-1].copy()

    def _weights(self):
        return [w.copy() for w in self._w]

    def _set_weights(self, weights):
        weights, latents = self._latents_of(weights)
        for w, new in zip(self._w, weights):
            w[...] = new
        for v, new in zip(self._latent, latents):
            if v is not None:
                v[...] = new

    def _activations(self):
        return [r.copy() for r in self._rates]
