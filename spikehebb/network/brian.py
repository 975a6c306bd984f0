"""Brian2 backend: the plasticity rule as rate-based (SRDP) synaptic equations, compiled to C++.

Every layer is a ``NeuronGroup`` of ``P * n_l`` rate units (``r``, dimensionless, one value per
step) and every synaptic layer a ``Synapses`` object holding the weight ``w`` and the rule's
coefficients per synapse. The forward pass is a summed variable (``I_post = w * r_pre``), the
activation a ``run_regularly`` on the group, the rule a ``run_regularly`` on the synapses. Their
text is generated from the rule spec by :func:`synapse_model` and :func:`rule_update`, so the
science can be read off the equations::

    w : 1
    A : 1 (constant)
    ...
    I_post = w * r_pre : 1 (summed)
    w += A * r_pre * r_post + B * r_pre + C * r_post + D      # eta folded in, see below

All P members live in ONE Brian2 ``Network``: synapses are block diagonal and ordered
pre-major, ``(member, pre, post)``, which is the C-order ravel of the documented
``(P, n_pre, n_post)`` layout and about 2x faster than post-major order (see
``shared/notes/brian2-performance.md``). The network is built and compiled once; ``reset`` only
writes into the arrays the compiled code reads.

Schedule of one time step (one env step), checked against the reference in the tests:

    groups slot: layer-1 input (summed), layer-1 rates, layer-2 input, ..., layer-L rates
    end slot:    rule on layer 1, ..., rule on layer L, the normalisation (if any)

then the closed loop's callback. The network is prepared once by a zero-length ``Network.run``
(which compiles the code objects); after that :meth:`step` and :meth:`run` execute the compiled
code objects in the network's schedule order from Python, as ``Network.run``'s own loop does,
without its per-call setup: each ``Network.run`` call re-creates every code object and runs a full
``gc.collect()``, 80-90 ms here (4.7 us per member-step in a 300-step lifetime at B=64, enough to
push a rollout below 0.8 of the bare physics' step rate).

The normalisation (``normalise="max_abs"``: each member's layer divided by its max |w|) is a
reduction over a member's synapses, which Brian2's synaptic code cannot express (summed
variables sum onto the post group, they do not take maxima), so it is a ``NetworkOperation``
running NumPy in place on the arrays the compiled code reads, the same function the NumPy
backend calls. :meth:`step` runs it too: it is one of the scheduled step objects.

By default the learning rate is folded into the coefficients at ``reset`` (``fold_eta=True``):
each synapse then stores and reads four coefficients instead of five.

Code generation: target "cython" (C++ through Cython, the default) or "numpy". If no C++
compiler works, "cython" falls back to "numpy" with one warning. Compiled modules land in
Brian2's cache (``prefs.codegen.runtime.cython.cache_dir``), shared by later processes and guarded
by a file lock so that processes building the same network at once do not break each other.
"""

from __future__ import annotations

import warnings

import numpy as np

from spikehebb.network.base import ACTIVATIONS, PlasticNetwork
from spikehebb.rules import RuleSpec, fold_eta

TARGETS = ("cython", "numpy")

#: Each coefficient's term in the rule (Najarro & Risi 2020, eq. 1), as synaptic Brian2 code.
RULE_TERMS = {"A": "A * r_pre * r_post", "B": "B * r_pre", "C": "C * r_post", "D": "D"}

#: What each coefficient multiplies, for the comments in the generated model.
_FIELD_DOC = {
    "eta": "learning rate",
    "A": "coefficient of the correlation o_i*o_j",
    "B": "coefficient of the presynaptic rate o_i",
    "C": "coefficient of the postsynaptic rate o_j",
    "D": "constant drift",
}

_cython_checked: bool | None = None


def synapse_fields(rule: RuleSpec | None, fold_eta: bool = True) -> tuple[str, ...]:
    """The coefficient variables the synapses store (the rule's fields, less eta if folded)."""
    if rule is None:
        return ()
    return tuple(f for f in rule.fields if not (fold_eta and f == "eta"))


def synapse_model(rule: RuleSpec | None, fold_eta: bool = True) -> str:
    """Brian2 model of one synaptic layer: weight, per-synapse coefficients, forward pass."""
    lines = ["w : 1  # weight, dimensionless"]
    for f in synapse_fields(rule, fold_eta):
        folded = " (times eta)" if fold_eta and rule.has_eta else ""
        lines.append(f"{f} : 1 (constant)  # {_FIELD_DOC[f]}{folded}")
    lines.append("I_post = w * r_pre : 1 (summed)  # forward pass: input to the post layer")
    return "\n".join(lines)


def rule_update(rule: RuleSpec, fold_eta: bool = True) -> str:
    """Brian2 code of the rule, applied once per step after the forward pass."""
    terms = " + ".join(RULE_TERMS[f] for f in rule.fields if f != "eta")
    if rule.has_eta and not fold_eta:
        return f"w += eta * ({terms})"
    return f"w += {terms}"


def _code_object_class(target: str):
    """Brian2's code-object class for ``target``, falling back from Cython to NumPy once."""
    global _cython_checked
    from brian2.codegen.runtime.cython_rt import CythonCodeObject
    from brian2.codegen.runtime.numpy_rt import NumpyCodeObject

    if target not in TARGETS:
        raise ValueError(f"unknown code-generation target {target!r}; expected one of {TARGETS}")
    if target == "numpy":
        return NumpyCodeObject
    if _cython_checked is None:
        _cython_checked = bool(CythonCodeObject.is_available())
        if not _cython_checked:
            warnings.warn(
                "Brian2 cannot compile with Cython here (no working C++ compiler or Cython); "
                "spikehebb falls back to the much slower numpy target. Install a C++ compiler "
                "(e.g. `apt-get install g++`) and Cython to get compiled code.",
                RuntimeWarning,
                stacklevel=3,
            )
    return CythonCodeObject if _cython_checked else NumpyCodeObject


class BrianPlasticNetwork(PlasticNetwork):
    """P plastic networks as one Brian2 network; see :class:`PlasticNetwork` for the arguments.

    Extra arguments:
        target: "cython" (default) or "numpy" code generation.
        fold_eta: store eta*A, eta*B, ... instead of eta and A, B, ... (faster, same numbers up
            to rounding).
    """

    def __init__(self, *args, target: str = "cython", fold_eta: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.fold_eta = bool(fold_eta)
        self._codeobj_class = _code_object_class(target)
        self.target = "cython" if self._codeobj_class.__name__.startswith("Cython") else "numpy"
        self._build()

    # ---------------------------------------------------------------------------- build
    def _build(self) -> None:
        import brian2 as b2

        P, dtype, codeobj = self.population, self.dtype.type, self._codeobj_class
        clock = b2.Clock(dt=1 * b2.ms, name="spikehebb_clock")
        groups = []
        for layer, n in enumerate(self.sizes):
            model = "r : 1  # rate" if layer == 0 else "I : 1  # summed input\nr : 1  # rate"
            # The summed-variable update of a group runs just before it (order - 1), so even
            # orders for the groups give: input 1, rates 1, input 2, rates 2, ...
            group = b2.NeuronGroup(
                P * n, model, clock=clock, order=2 * layer, dtype=dtype,
                codeobj_class=codeobj, name=f"spikehebb_layer{layer}",
            )
            # Rate groups have no differential equations: their state updater has nothing to do.
            group.state_updater.active = False
            if layer > 0:
                expr = ACTIVATIONS[self.activation[layer - 1]][0]
                group.run_regularly(f"r = {expr}", when="groups", order=2 * layer)
            groups.append(group)

        model = synapse_model(self.rule, self.fold_eta)
        synapses = []
        for layer, (n_pre, n_post) in enumerate(zip(self.sizes[:-1], self.sizes[1:]), start=1):
            syn = b2.Synapses(
                groups[layer - 1], groups[layer], model, clock=clock, dtype=dtype,
                codeobj_class=codeobj, name=f"spikehebb_synapses{layer}",
            )
            member, i, j = np.meshgrid(np.arange(P), np.arange(n_pre), np.arange(n_post), indexing="ij")
            pre, post = (member * n_pre + i).ravel(), (member * n_post + j).ravel()
            syn.connect(i=pre, j=post)
            if not (np.array_equal(syn.i[:], pre) and np.array_equal(syn.j[:], post)):
                raise RuntimeError("Brian2 reordered the synapses; the (member, pre, post) layout is broken")
            if self.plastic:
                syn.run_regularly(rule_update(self.rule, self.fold_eta), when="end", order=layer)
            synapses.append(syn)

        extra = []
        self._norm_op = None
        if any(self.normalise):
            self._norm_op = b2.NetworkOperation(
                self._normalise, when="end", order=self.n_layers + 1, clock=clock, name="spikehebb_normalise"
            )
            extra.append(self._norm_op)
        self._net = b2.Network(groups, synapses, *extra)
        # A zero-length run compiles every code object once (cached on disk for later processes)
        # and prepares them; one step is then these objects run in the network's schedule order.
        self._net.run(0 * b2.ms, namespace={})
        self._step_objects = [
            o for o in self._net.sorted_objects if o.active and (o._code_objects or o is self._norm_op)
        ]
        # What a frozen step skips: everything in the "end" slot (the rules and the normalisation).
        self._forward_objects = [o for o in self._step_objects if o.when != "end"]
        # The arrays the compiled code reads and writes; writing into them re-arms the network.
        self._rates = [g.variables["r"].get_value() for g in groups]
        self._w = [s.variables["w"].get_value() for s in synapses]
        self._coef = [
            {f: s.variables[f].get_value() for f in synapse_fields(self.rule, self.fold_eta)}
            for s in synapses
        ]

    # ------------------------------------------------------------------------- lifetime
    def _arm(self, coefficients, weights):
        for layer, w in enumerate(weights):
            self._w[layer][:] = w.reshape(-1)
        for layer, c in enumerate(coefficients):
            if self.fold_eta:
                values = fold_eta(c, self.rule)
            else:
                values = {f: c[..., self.rule.index(f)] for f in self.rule.fields}
            for field, array in self._coef[layer].items():
                array[:] = values[field].reshape(-1)
        for r in self._rates:
            r[:] = 0

    def _normalise(self):
        for w, norm in zip(self._w, self.normalise):
            if norm == "max_abs":
                self.max_abs_normalise(w.reshape(self.population, -1))

    def _step(self, inputs):
        self._rates[0][:] = inputs.reshape(-1)
        for obj in self._forward_objects if self.frozen else self._step_objects:
            obj.run()
        return self._outputs()

    # --------------------------------------------------------------------------- state
    def _outputs(self) -> np.ndarray:
        return self._rates[-1].reshape(self.population, self.sizes[-1]).copy()

    def _weights(self):
        return [w.reshape(shape).copy() for w, shape in zip(self._w, self.weight_shapes)]

    def _set_weights(self, weights):
        for w, new in zip(self._w, weights):
            w[:] = new.reshape(-1)

    def _activations(self):
        return [r.reshape(self.population, n).copy() for r, n in zip(self._rates, self.sizes)]
