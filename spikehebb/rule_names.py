"""Which names a rule may use, and the one-line errors that refuse the others.

A rule's coefficient names become Brian2 variables and NumPy keys (:mod:`spikehebb.rules`), and
its name is what run configs and ``--rule`` give. What is checked when:

- when a :class:`~spikehebb.rules.RuleSpec` is made (:func:`check_rule_name`,
  :func:`check_coefficient`): the rule's name is a non-empty string with no ``+`` but the
  ``NAME+mod`` of :func:`~spikehebb.rules.three_factor`'s rules; each coefficient's name is a
  Python identifier and no keyword, factor, state or state constant, ``eta``, ``dw_local`` or
  variable the Brian2 models already have (:data:`BACKEND_NAMES`);
- when a Brian2 network is built (:func:`check_brian_names`, called by ``network/brian.py`` and
  ``network/spiking.py``): no coefficient is a name Brian2 or its Cython target reserves (units,
  functions, constants, ``t``, ``xi_*``, ``*_pre``, ``cdef``, ...), by Brian2's own checks.
  Importing Brian2 costs about 1.9 s, which making a rule (a plug-in's, at every command's
  start) need not pay, and the NumPy backend never pays.

Imports: :mod:`spikehebb.rules` imports this module as it loads, and this module imports nothing
of the package at its top. The two checks a RuleSpec runs read the method's names (``FACTORS``,
``STATES``, ``GATED``, ``ELIGIBILITY``, ``THREE_FACTOR_SUFFIX``) from :mod:`spikehebb.rules`
when they are called, where they read them before: the registry's rules are made while rules.py
loads, after what those checks read of it is defined.
"""

from __future__ import annotations

import importlib
import keyword
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spikehebb.rules import RuleSpec

#: Variables the Brian2 backends' synapse models and the groups their code reads already define
#: (network/brian.py, network/spiking.py, network/constraints.py; Brian2's own per-synapse
#: ``i``, ``j``, ``delay``, ``lastupdate``, ``N_incoming``, ...): no coefficient may take one. A
#: name with a ``_pre`` or ``_post`` suffix is Brian2's (refused by its check). The rule's own
#: states and their constants are checked per rule. ``tests/test_rule_extension.py`` checks that
#: every variable of built networks is here or refused by Brian2.
BACKEND_NAMES = frozenset({
    # rate network (brian.py): synapses, rate groups, Dale's variables (constraints.py)
    "w", "v", "I", "r", "rbar", "m", "g", "s_dale", "g_dale",
    # lif network (spiking.py): synapses, unit group, neuron groups
    "J", "decay", "x_on", "x_off", "xs", "trace_norm", "x", "x_partner", "sgn", "count", "y", "tau_trace",
    "y_decay", "count_norm", "spike_in", "g_in", "v_rest", "v_threshold", "v_reset", "bias", "tau_m", "t_ref",
    "v_d", "I_d", "tau_d", "coupling", "v_sat", "lastspike", "not_refractory",
    # Brian2's per-synapse and per-group variables
    "i", "j", "delay", "lastupdate", "N", "N_incoming", "N_outgoing", "N_pre", "N_post", "t", "dt",
    "t_in_timesteps",
})

#: What a coefficient's name must be, as the one-line error says it.
COEFFICIENT_NAMES = ("a Python identifier that is no keyword, factor, state, state constant, eta, dw_local, "
                     "variable of the Brian2 models (rule_names.BACKEND_NAMES) or name Brian2 reserves (units, "
                     "functions, constants, t, xi_*, *_pre, *_post, _*, Cython's words)")

#: Coefficient names Brian2's and Cython's checks have passed in this process, seeded with the
#: registry's, which are known to pass (tests/test_rule_extension.py checks them against Brian2
#: itself): a network of a registered rule is built without parsing equations per name.
_BRIAN_ACCEPTED = {"A", "B", "C", "D", "D_out", "eta_m"}


#: Names Brian2 passes but its Cython target cannot compile as a variable (found by building a
#: network per name), besides Cython's reserved words (``Cython.Compiler.Scanning``).
CYTHON_NAMES = ("NULL", "sizeof")


def _brian_refusal(name: str) -> str | None:
    """Why Brian2 would refuse ``name`` as a synaptic variable (its registered identifier checks:
    syntax, keywords, a leading underscore, units, functions, constants, ``t``/``dt``/``xi*``/
    ``i``/``N``, the refractory mechanism's names; and the ``_pre``/``_post`` suffixes of
    synapses) or its Cython target could not compile it (``cdef``, ``include``, ...), or None.
    Imports Brian2 (once) for a name not seen before."""
    if name in _BRIAN_ACCEPTED:
        return None
    try:
        importlib.import_module("brian2.equations.refractory")  # registers the refractory names' check
        from brian2.equations.equations import Equations
        from brian2.groups.neurongroup import check_identifier_pre_post
    except ImportError:  # no Brian2: only the NumPy backend can run, which the other checks cover
        return None
    try:
        Equations.check_identifier(name)
        check_identifier_pre_post(name)
    except (SyntaxError, ValueError) as e:
        return str(e.msg if isinstance(e, SyntaxError) else e).strip()
    try:
        from Cython.Compiler.Scanning import pyx_reserved_words
    except ImportError:  # no Cython: Brian2 runs its numpy target
        pyx_reserved_words = ()
    if name in CYTHON_NAMES or name in pyx_reserved_words:
        return f"'{name}' is a word of its Cython target's code"
    _BRIAN_ACCEPTED.add(name)
    return None


def check_coefficient(rule: RuleSpec, name) -> None:
    """A one-line error unless ``name`` can name a coefficient of ``rule`` (:data:`COEFFICIENT_NAMES`)."""
    from spikehebb import rules  # (see the module's docstring)

    states = {s.name for s in (*rules.STATES.values(), *rule.state)}
    constants = {c for s in (*rules.STATES.values(), *rule.state) for c in s.constants}
    if not isinstance(name, str) or not name.isidentifier():
        why = "it is not a Python identifier"
    elif keyword.iskeyword(name):
        why = "it is a Python keyword"
    elif name in rules.FACTORS:
        why = "it is a factor"
    elif name in states or name in constants:
        why = "it is a rule state or a state's constant"
    elif name in ("eta", "dw_local"):
        why = "it names the learning rate or the rules' local update"
    elif name in BACKEND_NAMES:
        why = "the Brian2 models already use it"
    else:
        return
    _refuse_coefficient(rule, name, why)


def _refuse_coefficient(rule: RuleSpec, name: str, why: str) -> None:
    raise ValueError(f"rule {rule.name!r}: coefficient {name!r}: {why}; a coefficient's name must be "
                     f"{COEFFICIENT_NAMES}")


def check_brian_names(rule: RuleSpec) -> None:
    """A one-line error for a coefficient of ``rule`` Brian2 or its Cython target cannot take as
    a variable (:func:`_brian_refusal`); the Brian2 networks call it before they build, where
    Brian2 is imported anyway (a :class:`~spikehebb.rules.RuleSpec` checks the rest when made,
    without Brian2's 1.9 s import: a plug-in's rule costs nothing to register)."""
    for name in rule.fields:
        why = None if name == "eta" else _brian_refusal(name)
        if why is not None:
            _refuse_coefficient(rule, name, f"Brian2 reserves it ({why.rstrip('.')})")


def check_rule_name(rule: RuleSpec) -> None:
    """A one-line error unless the rule's name is a non-empty string with no ``+`` but for the
    ``NAME+mod`` of a three-factor rule (:func:`~spikehebb.rules.three_factor`'s shape: its last
    term ``GATED``, its last state ``ELIGIBILITY``). Run configs name the plain rule and
    ``modulated``, so a rule registered as ``X+mod`` could never be trained: register ``X``."""
    from spikehebb import rules  # (see the module's docstring)

    name = rule.name
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"a rule's name must be a non-empty string, got {name!r}")
    if "+" not in name:
        return
    suffix = rules.THREE_FACTOR_SUFFIX
    base = name[: -len(suffix)] if name.endswith(suffix) else None
    if not (base and "+" not in base and rule.terms and rule.terms[-1] == rules.GATED
            and rule.state and rule.state[-1] == rules.ELIGIBILITY):
        raise ValueError(f"rule {name!r}: a rule's name holds no '+' (NAME{suffix} is the three-factor "
                         f"version three_factor() builds of rule NAME): register the plain rule under a name without '+'")
