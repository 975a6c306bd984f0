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
    end slot:    rule on layer 1, ..., rule on layer L, then the weight constraints in order

then the closed loop's callback. The network is prepared once by a zero-length ``Network.run``
(which compiles the code objects); after that :meth:`step` and :meth:`run` execute the compiled
code objects in the network's schedule order from Python, as ``Network.run``'s own loop does,
without its per-call setup: each ``Network.run`` call re-creates every code object and runs a full
``gc.collect()``, 80-90 ms here (4.7 us per member-step in a 300-step lifetime at B=64, enough to
push a rollout below 0.8 of the bare physics' step rate).

Weight constraints (:mod:`spikehebb.network.constraints`) run as synaptic code where Brian2 can
express them; otherwise (the car's max-|w| normalisation is a reduction over a member's
synapses, which summed variables cannot take) as a ``NetworkOperation`` running the
constraint's NumPy function in place on the arrays the compiled code reads, the same function
the NumPy backend calls. :meth:`step` runs them too: they are scheduled step objects. The
constraints with synaptic code that come before any NumPy one (Dale's law) are appended to each
layer's rule code, so the rule and they share one pass over the synapses.

A modulated rule (one whose terms read ``mod``) gets a variable ``m`` on every post group, written
each step from the member's modulator value; the synapses read it as ``m_post``. The same way a
gated rule (``rule_every > 1``) reads ``g_post``, 1 on the member's rule steps, 0 otherwise. A
rule with state (the three-factor rules' eligibility trace ``elig``) declares it in the synapse
model with its shared constants (``decay_e``), and its update runs in the rule's code before
the weight change (:func:`spikehebb.rules.brian_update`). With ``rate_tau`` every group keeps
``rbar += (r - rbar) / TAU`` after its rates and the rule reads ``rbar_pre``, ``rbar_post``. A
reparametrising constraint (smooth Dale) adds its latent ``v`` to the synapses; the rule then
writes ``v += ...`` and the constraint's code sets ``w`` from it. A rule's factor ``w`` reads the
synapse's ``w`` under every constraint (``v += E * w`` with a latent): the weight as the last
step's constraints left it, which the NumPy backend reads too.

By default the learning rate is folded into the coefficients at ``reset`` (``fold_eta=True``):
each synapse then stores and reads four coefficients instead of five.

Code generation: target "cython" (C++ through Cython, the default) or "numpy". If no C++
compiler works, "cython" falls back to "numpy" with one warning. Compiled modules land in
Brian2's cache (``prefs.codegen.runtime.cython.cache_dir``), shared by later processes and guarded
by a file lock so that processes building the same network at once do not break each other.
"""

from __future__ import annotations

import contextlib
import threading
import warnings

import numpy as np

from spikehebb.network.base import ACTIVATIONS, PlasticNetwork
from spikehebb.rule_names import check_brian_names
from spikehebb.rules import RuleSpec, brian_model_lines, brian_update, fold_eta, synapse_fields

TARGETS = ("cython", "numpy")

_cython_checked: bool | None = None


def synapse_model(rule: RuleSpec | None, fold_eta: bool = True, constraints=(), layer: int = 0) -> str:
    """Brian2 model of one synaptic layer: weight, per-synapse coefficients (from the rule's term
    table), variables the constraints read, and the forward pass."""
    lines = ["w : 1  # weight, dimensionless"]
    if rule is not None:
        lines += brian_model_lines(rule, fold_eta)
    gain = ""
    for c in constraints:
        if c.acts_on(layer):
            lines += c.brian_model(layer)
            if c.input_gain(layer) is not None:
                gain = " * g_dale_pre"  # the presynaptic unit's gain (E/I balance), read from its group
    lines.append(f"I_post = w * r_pre{gain} : 1 (summed)  # forward pass: input to the post layer")
    return "\n".join(lines)


def rule_update(rule: RuleSpec, fold_eta: bool = True, target: str = "w", rate: str = "r", gate: str | None = None) -> str:
    """Brian2 code of the rule, applied once per step after the forward pass (see
    :func:`spikehebb.rules.brian_update` for the options)."""
    return brian_update(rule, fold_eta, target, rate, gate)


#: Seconds a build may take before the user is told that Brian2 is compiling.
COMPILE_NOTICE_AFTER_S = 3.0


@contextlib.contextmanager
def _compile_notice():
    """Print one line to stderr, when it is a terminal, if the block runs longer than
    :data:`COMPILE_NOTICE_AFTER_S` (a first build compiles the network's C++, about a minute;
    later builds hit the cache).

    While it compiles, Brian2 points fds 1 and 2 at its log files (``brian2.utils.logger.
    std_silent``, with ``os.dup2``), so the notice is written to a duplicate of stderr's fd taken
    on entry, before the build starts: it reaches the terminal whatever Brian2 does meanwhile.
    Worker processes building at once (a run's, an evaluation's) share one terminal and wait on
    one compile: only the first to be due says it (:func:`_notice_turn`)."""
    import os
    import sys

    stream = sys.stderr
    # A person watches a terminal; logs and test captures need no notice.
    if stream is None or not stream.isatty():
        yield
        return
    from brian2 import prefs

    cache = prefs.codegen.runtime.cython.cache_dir or "~/.cython/brian_extensions"
    message = (f"spikehebb: compiling the Brian2 network to C++ (first use of this rule and dtype: "
               f"about a minute; cached in {cache})")
    with contextlib.ExitStack() as cleanup:  # callbacks run last first: cancel, join, release the turn, close the fd
        try:
            stream.flush()
            terminal = os.dup(stream.fileno())
        except (AttributeError, OSError, ValueError):  # a stand-in stream with no fd: write to it
            terminal = None
        else:
            cleanup.callback(os.close, terminal)
        turn: list[int] = []
        cleanup.callback(lambda: [os.close(fd) for fd in turn])

        def notice():
            fd = _notice_turn(cache)
            if fd is False:  # another process said it
                return
            if fd is not None:
                turn.append(fd)
            if terminal is None:
                print(message, file=stream, flush=True)
                return
            data = (message + "\n").encode(getattr(stream, "encoding", None) or "utf-8", "replace")
            with contextlib.suppress(OSError):  # the terminal went away: nothing to tell
                while data:
                    data = data[os.write(terminal, data):]

        timer = threading.Timer(COMPILE_NOTICE_AFTER_S, notice)
        timer.daemon = True
        timer.start()
        cleanup.callback(timer.join)  # a notice being written still needs its fd
        cleanup.callback(timer.cancel)
        yield


#: The file whose lock gives one process at a time the compile notice (in Brian2's cache folder).
NOTICE_LOCK = ".spikehebb-compile-notice.lock"


def _notice_turn(cache: str):
    """The compile notice's turn: an fd holding the lock on :data:`NOTICE_LOCK` in ``cache``
    (kept until the build ends), False if another process holds it (it has said the notice for
    the compile this one waits on), None if there is no lock to take (no folder yet, no
    ``fcntl``): say it anyway."""
    import os

    try:
        import fcntl

        fd = os.open(os.path.join(os.path.expanduser(cache), NOTICE_LOCK), os.O_CREAT | os.O_RDWR, 0o644)
    except (ImportError, OSError):
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False
    return fd


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

    backend = "brian2"

    def __init__(self, *args, target: str = "cython", fold_eta: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        if self.rule is not None:
            check_brian_names(self.rule)  # in one line, before Brian2's own many
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
            if layer > 0 and self.modulated:
                model += "\nm : 1  # the member's modulator m(t), the same for all its units"
            if layer > 0 and self.gated:
                model += "\ng : 1  # 1 when the member's rule fires this step, else 0 (rule_every)"
            if self.rate_tau is not None:
                model += "\nrbar : 1  # moving average of r, read by the rule (rate_tau)"
            pre_of = [c for c in self.constraints if layer < self.n_layers and c.acts_on(layer)]
            for c in pre_of:  # variables of this group as the presynaptic side of layer `layer`
                model += "".join("\n" + line for line in c.brian_pre_model(layer))
            # The summed-variable update of a group runs just before it (order - 1), so even
            # orders for the groups give: input 1, rates 1, input 2, rates 2, ...
            group = b2.NeuronGroup(
                P * n, model, clock=clock, order=2 * layer, dtype=dtype,
                codeobj_class=codeobj, name=f"spikehebb_layer{layer}",
            )
            for c in pre_of:
                for name, values in c.brian_pre_values(layer, P).items():
                    group.variables[name].get_value()[:] = values
            # Rate groups have no differential equations: their state updater has nothing to do.
            group.state_updater.active = False
            # The moving average (rate_tau) shares the rate's loop; the inputs get a loop of their own.
            average = f"rbar += (r - rbar) / {self.rate_tau!r}" if self.rate_tau is not None else ""
            if layer > 0:
                expr = ACTIVATIONS[self.activation[layer - 1]][0]
                group.run_regularly(f"r = {expr}" + (f"\n{average}" if average else ""), when="groups", order=2 * layer)
            elif average:
                group.run_regularly(average, when="groups", order=0)
            groups.append(group)
        # Constraints with synaptic code before the first NumPy one run in the rule's own loop
        # (one pass over the synapses instead of two; each only reads its own synapse, so this
        # equals running them after every layer's rule).
        fused = 0
        while fused < len(self.constraints) and all(
            self.constraints[fused].brian_code(l) for l in range(self.n_layers) if self.constraints[fused].acts_on(l)
        ):
            fused += 1

        synapses, n_rules = [], self.n_layers
        for layer, (n_pre, n_post) in enumerate(zip(self.sizes[:-1], self.sizes[1:]), start=1):
            syn = b2.Synapses(
                groups[layer - 1], groups[layer], synapse_model(self.rule, self.fold_eta, self.constraints, layer - 1),
                clock=clock, dtype=dtype, codeobj_class=codeobj, name=f"spikehebb_synapses{layer}",
            )
            member, i, j = np.meshgrid(np.arange(P), np.arange(n_pre), np.arange(n_post), indexing="ij")
            pre, post = (member * n_pre + i).ravel(), (member * n_post + j).ravel()
            syn.connect(i=pre, j=post)
            if not (np.array_equal(syn.i[:], pre) and np.array_equal(syn.j[:], post)):
                raise RuntimeError("Brian2 reordered the synapses; the (member, pre, post) layout is broken")
            if self.plastic:
                code = rule_update(self.rule, self.fold_eta, self.rule_target[layer - 1],
                                   "rbar" if self.rate_tau is not None else "r", "g" if self.gated else None)
                code = "\n".join([code] + [c.brian_code(layer - 1) for c in self.constraints[:fused] if c.acts_on(layer - 1)])
                syn.run_regularly(code, when="end", order=layer)
                for name, value in self.rule_constants.items():
                    if name in self.rule.constants:
                        syn.variables[name].set_value(value)
            for k, c in enumerate(self.constraints):
                if c.acts_on(layer - 1):
                    for name, values in c.brian_values(layer - 1, P).items():
                        syn.variables[name].get_value()[:] = values
                    code = c.brian_code(layer - 1)
                    if code and (k >= fused or not self.plastic):  # after every rule, constraints in list order
                        syn.run_regularly(code, when="end", order=n_rules + 1 + k)
            synapses.append(syn)

        # Constraints Brian2 cannot express run as NumPy on the compiled code's arrays.
        extra = []
        for k, c in enumerate(self.constraints):
            if any(c.acts_on(l) and not c.brian_code(l) for l in range(self.n_layers)):
                extra.append(b2.NetworkOperation(
                    self._numpy_constraint_operation(c), when="end", order=n_rules + 1 + k,
                    clock=clock, name=f"spikehebb_constraint{k}_{c.name}",
                ))
        self._net = b2.Network(groups, synapses, *extra)
        # A zero-length run compiles every code object once (cached on disk for later processes)
        # and prepares them; one step is then these objects run in the network's schedule order.
        with _compile_notice():
            self._net.run(0 * b2.ms, namespace={})
        self._step_objects = [
            o for o in self._net.sorted_objects if o.active and (o._code_objects or o in extra)
        ]
        # What a frozen step skips: everything in the "end" slot (the rules and the constraints).
        self._forward_objects = [o for o in self._step_objects if o.when != "end"]
        # Compaction (see PlasticNetwork.set_active): every code object loops over its P blocks
        # up to the constant N it reads from its namespace at each call, so a prefix of k members
        # is N * k / P; every per-member variable is one of the model's own (not Brian2's indices).
        from brian2.core.variables import ArrayVariable

        self._loop_bounds = [
            (c, int(c.namespace["N"])) for o in self._step_objects for c in getattr(o, "_code_objects", ())
        ]
        self._member_arrays = [
            obj.variables[name].get_value()
            for obj in (*groups, *synapses) for name in obj.equations.names
            if isinstance(obj.variables[name], ArrayVariable) and not obj.variables[name].scalar
            and obj.variables[name].size == len(obj)
        ]
        # The arrays the compiled code reads and writes; writing into them re-arms the network.
        self._rates = [g.variables["r"].get_value() for g in groups]
        self._modulators = [g.variables["m"].get_value() for g in groups[1:]] if self.modulated else []
        self._gates = [g.variables["g"].get_value() for g in groups[1:]] if self.gated else []
        self._averages = [g.variables["rbar"].get_value() for g in groups] if self.rate_tau is not None else []
        self._state = [
            {st.name: s.variables[st.name].get_value() for st in self.rule.state} if self.plastic else {}
            for s in synapses
        ]
        self._latent = [None if c is None else s.variables[c.latent].get_value()
                        for c, s in zip(self.latent_constraints, synapses)]
        self._w = [s.variables["w"].get_value() for s in synapses]
        self._coef = [
            {f: s.variables[f].get_value() for f in synapse_fields(self.rule, self.fold_eta)}
            for s in synapses
        ]

    # ------------------------------------------------------------------------- lifetime
    def _arm(self, coefficients, weights, members):
        P = self.population
        where = slice(None) if members is None else members
        weights, latents = self._latents_of(weights)
        for layer, w in enumerate(weights):
            self._w[layer].reshape(P, -1)[where] = w.reshape(len(w), -1)
        for v, new in zip(self._latent, latents):
            if v is not None:
                v.reshape(P, -1)[where] = new.reshape(len(new), -1)
        for state in self._state:
            for array in state.values():
                array.reshape(P, -1)[where] = 0
        for avg in self._averages:
            avg.reshape(P, -1)[where] = 0
        for layer, c in enumerate(coefficients):
            if self.fold_eta:
                values = fold_eta(c, self.rule)
            else:
                values = {f: c[..., self.rule.index(f)] for f in self.rule.fields}
            with np.errstate(over="ignore"):  # a blown-up candidate: its lifetime ends with NaN
                for field, array in self._coef[layer].items():
                    array.reshape(P, -1)[where] = values[field].reshape(len(c), -1)
        for r in self._rates:
            r.reshape(P, -1)[where] = 0

    def _numpy_constraint_operation(self, constraint):
        """A zero-argument function for a NetworkOperation (Brian2 passes ``t`` to one-argument ones)."""

        def operation():
            self._apply_numpy_constraint(constraint)

        return operation

    def _apply_numpy_constraint(self, constraint) -> None:
        for layer, (w, shape) in enumerate(zip(self._w, self.weight_shapes)):
            if constraint.acts_on(layer) and not constraint.brian_code(layer):
                constraint.apply(w.reshape(shape), layer)

    def _step(self, inputs, modulator):
        self._rates[0][:] = inputs.reshape(-1)
        if self._modulators:
            m = np.zeros(self.population, self.dtype) if modulator is None else modulator
            for array, n in zip(self._modulators, self.sizes[1:]):
                array.reshape(self.population, n)[:] = m[:, None]
        for array, n in zip(self._gates, self.sizes[1:]):
            array.reshape(self.population, n)[:] = self._gate[:, None]
        for obj in self._forward_objects if self.frozen else self._step_objects:
            obj.run()
        return self._outputs()

    # ---------------------------------------------------------------------- compaction
    @property
    def can_compact(self) -> bool:
        """Compiled code loops to the ``N`` it reads at each call; Brian2's numpy target works on
        whole arrays and cannot step a prefix (the fallback without a C++ compiler)."""
        return self.target == "cython"

    def _move_members(self, sources, targets):
        for array in self._member_arrays:
            blocks = array.reshape(self.population, -1)
            blocks[targets] = blocks[sources]

    def _set_active(self, n):
        for code, full in self._loop_bounds:
            code.namespace["N"] = full // self.population * n

    # --------------------------------------------------------------------------- state
    def _outputs(self) -> np.ndarray:
        return self._rates[-1].reshape(self.population, self.sizes[-1]).copy()

    def _weights(self):
        return [w.reshape(shape).copy() for w, shape in zip(self._w, self.weight_shapes)]

    def _set_weights(self, weights):
        weights, latents = self._latents_of(weights)
        for w, new in zip(self._w, weights):
            w[:] = new.reshape(-1)
        for v, new in zip(self._latent, latents):
            if v is not None:
                v[:] = new.reshape(-1)

    def _activations(self):
        return [r.reshape(self.population, n).copy() for r, n in zip(self._rates, self.sizes)]
