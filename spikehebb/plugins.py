"""Extensions kept outside the package: modules that register rules, agent kinds, weight
constraints or tasks when imported.

A registry (``rules.RULES``, ``agents.AGENTS``, ``network.constraints.CONSTRAINTS``,
``tasks.TASKS``) asked for a name it does not hold imports the plug-ins once, then looks again,
in every process: the commands, the training workers and the test pools, which Python starts
fresh and which import only the package. Two ways to name a plug-in:

- the environment variable ``SPIKEHEBB_PLUGINS``, module names separated by commas
  (``SPIKEHEBB_PLUGINS=my_rules spikehebb train --rule Oja_lr``; the module must be importable,
  e.g. on ``PYTHONPATH``); the workers inherit it, and Ray actors on a cluster this process
  joins get it and the modules' code with the job (:func:`ray_runtime_env`);
- an installed package's entry point in the group ``spikehebb.plugins`` (pyproject.toml:
  ``[project.entry-points."spikehebb.plugins"] my_rules = "my_package.rules"``).

A plug-in registers by adding to the registries, e.g. ``RULES["Oja_lr"] = RuleSpec(...)`` (README.md).
"""

from __future__ import annotations

import importlib
import os

#: Comma-separated module names imported as plug-ins.
ENV_VAR = "SPIKEHEBB_PLUGINS"
#: Entry-point group of installed plug-ins.
ENTRY_POINT_GROUP = "spikehebb.plugins"

_loaded: list[str] | None = None
_loading = False  # while they import, a lookup of theirs that misses does not import them again
_failed: ValueError | None = None


def load_plugins() -> list[str]:
    """Import every plug-in once per process; the modules imported (later calls return them at
    once). A plug-in that fails to import is a one-line ValueError naming it and where it was
    named, raised again by later calls (the same error would come again)."""
    global _loaded, _loading, _failed
    if _failed is not None:
        raise _failed
    if _loaded is not None or _loading:
        return _loaded or []
    from importlib.metadata import entry_points  # here: 25 ms that `import spikehebb.rules` need not pay

    named = [(name.strip(), ENV_VAR, None) for name in os.environ.get(ENV_VAR, "").split(",") if name.strip()]
    named += [(point.value, f"the entry point {point.name!r} of {ENTRY_POINT_GROUP}", point)
              for point in entry_points(group=ENTRY_POINT_GROUP)]
    loaded = []
    _loading = True
    try:
        for module, where, point in named:
            try:
                importlib.import_module(module) if point is None else point.load()
            except Exception as err:  # a plug-in's own error, whatever its type: said in one line
                detail = str(err).splitlines()[0] if str(err) else ""
                _failed = ValueError(f"the plug-in {module!r} ({where}) failed to import: {type(err).__name__}"
                                     f"{': ' + detail if detail else ''}")
                raise _failed from err
            loaded.append(module)
    finally:  # a Ctrl-C meanwhile leaves them to be imported by the next lookup
        _loading = False
    _loaded = loaded
    return _loaded


def missing(name, registry) -> bool:
    """Whether ``name`` is still not in ``registry`` after the plug-ins are loaded (loads them
    only when it is missing; an unhashable name is missing)."""
    try:
        if name in registry:
            return False
    except TypeError:
        return True
    load_plugins()
    return name not in registry


def ray_runtime_env(runtime_env: dict | None = None) -> dict | None:
    """The Ray job's ``runtime_env`` for a cluster this process joins: ``runtime_env`` (the
    user's, unchanged where it names the same things) plus ``SPIKEHEBB_PLUGINS`` among its
    ``env_vars`` and the top-level package or module of each plug-in it names among its
    ``py_modules`` (Ray packs and ships their files, so the actors import them without the
    cluster having them: a cluster's processes have its environment, not this one's). None when
    there is nothing to add or give. Entry-point plug-ins are installed packages: install them on
    the nodes, as spikehebb itself. :class:`~spikehebb.evaluators.RayEvaluator` uses it when it
    joins a cluster; a Ray connected before is used as it is (give this to its ``ray.init``)."""
    value = os.environ.get(ENV_VAR, "")
    names = [name.strip() for name in value.split(",") if name.strip()]
    env = dict(runtime_env or {})
    if not names:
        return env or None
    load_plugins()  # each imported here first, or one line saying which failed
    shipped = list(env.get("py_modules") or [])
    for top in dict.fromkeys(name.split(".")[0] for name in names):
        module = importlib.import_module(top)
        if module not in shipped:
            shipped.append(module)
    env["env_vars"] = {ENV_VAR: value, **(env.get("env_vars") or {})}
    env["py_modules"] = shipped
    return env
