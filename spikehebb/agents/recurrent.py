"""Recurrent baselines: the static network with its first dense layer replaced by an LSTM or GRU.

Palm, Najarro & Risi 2021, "Testing the genomic bottleneck hypothesis in Hebbian meta-learning",
https://arxiv.org/abs/2011.06811; code: github.com/rasmusbergpalm/hebbian-evolution (commit
f11c2ce). What is taken from their code, and where:

- **The network** (``agents/ant/rnn_ant.py``, ``RecurrentAnt``, lines 17-40): one LSTM cell,
  28 inputs -> 128 hidden units (``lstm_hidden_size = 128``), then ``linear.2`` (128, 64) and
  ``linear.3`` (64, 8), each followed by tanh and without biases (``f.linear(x, W.t())``), exactly
  the static ant's layers 2 and 3 (``agents/ant/static_ant.py``, lines 14-26). The car's LSTM
  (``agents/racer/rnn_racer.py``, lines 17-49) is built the same way behind the CNN.
- **The recurrent layer's output** is the LSTM's hidden state h itself (``x = tanh(f.linear(
  hx.squeeze(), ...))``, rnn_ant.py line 38): no extra activation on h, which is already
  ``o * tanh(c)``; the raw observation goes in (no squashing), as in the static and Hebbian ants.
- **Biases**: the LSTM has both of torch's biases, ``bias_ih`` and ``bias_hh`` (rnn_ant.py lines
  23-24), searched independently although only their sum acts; the dense layers have none.
- **State**: h and c start at zero (``zeros = t.zeros(1, 128); self.hxcx = (zeros, zeros)``, lines
  14-15) when the agent is built, i.e. once per lifetime (``BaseAnt.fitness`` builds a fresh
  environment and the agent lives one episode), and are carried from step to step.
- **Equations and gate layout** are torch's ``LSTMCell`` (called as ``_VF.lstm_cell``, lines
  30-37), gate blocks in the order (i, f, g, o)::

      a = x @ W_ih + b_ih + h @ W_hh + b_hh            (B, 4H), blocks [i | f | g | o]
      i = sigmoid(a_i)  f = sigmoid(a_f)  g = tanh(a_g)  o = sigmoid(a_o)
      c' = f * c + i * g
      h' = o * tanh(c')

  Palm et al. used no GRU. :class:`GRUAgent` follows torch's ``GRUCell`` the same way, gate blocks
  (r, z, n)::

      a = x @ W_ih + b_ih  (B, 3H)   b = h @ W_hh + b_hh  (B, 3H), blocks [r | z | n]
      r = sigmoid(a_r + b_r)  z = sigmoid(a_z + b_z)  n = tanh(a_n + r * b_n)
      h' = (1 - z) * n + z * h

- **Search** (not this module): their LSTM ant was evolved like the static ant, by OpenAI-ES with
  every parameter drawn N(0, 1) at the start (``main.py`` at commit dc83f87: ``t.randn`` means,
  sigma 0.1, SGD lr 0.2 decaying x0.995, sigma x0.999).

Layouts (B = batch size, H = hidden units, G = 4 for the LSTM, 3 for the GRU):

- Genome parts (:meth:`RecurrentAgent.genome_parts`), per member:
  ``"recurrent"``: ``[W_ih (n_in, G*H), W_hh (H, G*H), b_ih (G*H,), b_hh (G*H,)]``; each weight
  matrix is ``(pre, post)``, the TRANSPOSE of torch's ``weight_ih``/``weight_hh`` (torch stores
  ``(G*H, n_in)``), with the gate blocks along the last axis in torch's order, so
  ``W_ih = state_dict["weight_ih"].T`` (see :func:`parts_from_torch`).
  ``"weights"``: the dense layers after the recurrent one, ``[(H, n_2), ..., (n_{L-1}, n_out)]``,
  ``(pre, post)`` like the static network's (Palm's ``linear.2``, ``linear.3``).
- ``parts`` given to :meth:`RecurrentAgent.reset` carry the member axis first: ``(n, *shape)``.
- ``step``: inputs ``(B, n_in)`` -> outputs ``(B, n_out)`` (the last layer's activation: tanh for
  the ant, linear for the car, whose decoder squashes).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from spikehebb.agents.base import GenomePart
from spikehebb.checks import is_integer
from spikehebb.network.base import active_slots, batched_matvec, check_move

GATES = {"lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n")}
"""Gate blocks of each kind, in torch's order along the recurrent arrays' last axis."""


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function, computed from tanh so large |x| neither overflows nor warns."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _check_sizes(sizes: Sequence[int]) -> tuple[int, ...]:
    """Layer sizes as a tuple of ints, or a one-line ValueError (``int()`` would cut 28.9 to 28
    and read True as 1)."""
    try:
        given = tuple(sizes)
    except TypeError:
        given = None
    if given is None or len(given) < 3 or not all(is_integer(s) and s >= 1 for s in given):
        raise ValueError(
            "sizes must be (n_in, hidden, ..., n_out), at least 3 positive integers, "
            f"e.g. (28, 128, 64, 8), got {sizes!r}"
        )
    return tuple(int(s) for s in given)


def genome_parts(kind: str, sizes: Sequence[int]) -> tuple[GenomePart, ...]:
    """Searched parts of a ``kind`` ("lstm" or "gru") agent: see :meth:`RecurrentAgent.genome_parts`."""
    if kind not in GATES:
        raise ValueError(f"recurrent kind must be one of {sorted(GATES)}, got {kind!r}")
    sizes = _check_sizes(sizes)
    n_in, hidden = sizes[0], sizes[1]
    width = len(GATES[kind]) * hidden
    return (
        GenomePart("recurrent", ((n_in, width), (hidden, width), (width,), (width,))),
        GenomePart("weights", tuple((a, b) for a, b in zip(sizes[1:-1], sizes[2:]))),
    )


def parameter_count(kind: str, sizes: Sequence[int], rule: str | None = None,
                    task_parts: Sequence[GenomePart] = ()) -> int:
    """Searched parameters of one agent of ``kind``, for printing the baselines side by side.

    kind: ``"lstm"``, ``"gru"`` (:func:`genome_parts`), ``"static"`` (every dense layer's
    weights, no biases: 12,288 for the ant) or ``"hebbian"`` (the rule's coefficients, per synapse
    ``k`` fields: 61,440 for the ant with ``rule="ABCD_lr"``).
    task_parts: the task's searched genome parts (:meth:`~spikehebb.tasks.Task.genome_parts`),
    which every kind searches besides its own; counted in, so the total is the genome's length.
    Ant (28, 128, 64, 8), no task parts: lstm 89,600 (4*128*28 + 4*128*128 + 2*4*128 + 128*64 +
    64*8), gru 69,376. Car (648, 128, 64, 3) with its encoder (1,362 convolution weights):
    hebbian ABCD_lr 458,002, static 92,690, lstm 408,082 (Palm et al.'s LSTM car), gru 308,498.
    """
    task_parts = tuple(task_parts)
    if not all(isinstance(p, GenomePart) for p in task_parts):
        raise ValueError(f"task_parts must be GenomeParts (Task.genome_parts()), got {task_parts!r}")
    extra = sum(p.size for p in task_parts if p.searched)
    if kind == "static":
        sizes = _check_sizes(sizes)
        return extra + sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    if kind == "hebbian":
        if rule is None:
            raise ValueError("parameter_count('hebbian', ...) needs rule=, e.g. rule='ABCD_lr'")
        from spikehebb.rules import n_coefficients

        return extra + n_coefficients(_check_sizes(sizes), rule)
    if kind not in GATES:
        raise ValueError(
            f"kind must be one of {sorted(GATES) + ['hebbian', 'static']}, got {kind!r}"
        )
    return extra + sum(part.size for part in genome_parts(kind, sizes))


def parts_from_torch(
    kind: str,
    weight_ih: np.ndarray,
    weight_hh: np.ndarray,
    bias_ih: np.ndarray,
    bias_hh: np.ndarray,
    dense: Sequence[np.ndarray],
) -> dict[str, list[np.ndarray]]:
    """One member's parts from torch's arrays (``LSTMCell``/``GRUCell`` state dict, as NumPy).

    weight_ih ``(G*H, n_in)``, weight_hh ``(G*H, H)``, bias_ih and bias_hh ``(G*H,)``; dense: the
    following layers ``(n_pre, n_post)`` (Palm's ``linear.2``, ``linear.3``). Returns ``parts``
    with a member axis of 1, ready for :meth:`RecurrentAgent.reset`.
    """
    if kind not in GATES:
        raise ValueError(f"recurrent kind must be one of {sorted(GATES)}, got {kind!r}")
    recurrent = [np.asarray(weight_ih).T, np.asarray(weight_hh).T, np.asarray(bias_ih), np.asarray(bias_hh)]
    return {
        "recurrent": [np.array(a)[None] for a in recurrent],
        "weights": [np.array(w)[None] for w in dense],
    }


class RecurrentAgent:
    """B recurrent controllers in lockstep, batched in NumPy (one per member, no Python loop).

    Built by the agent registry (``make_agent(AgentConfig(kind="lstm", rule=None), task, B)``)
    or directly with :meth:`build`. Args:
        config: the :class:`~spikehebb.agents.AgentConfig` (kind, dtype; the network backend and
            the weight init do not apply: the recurrent agents run in NumPy and draw nothing).
        sizes: ``(n_in, H, n_2, ..., n_out)``; the ant is ``(28, 128, 64, 8)``: an LSTM/GRU layer
            n_in -> H, then dense layers without biases.
        activation: the task's, one name of :data:`spikehebb.network.ACTIVATIONS` or one per
            layer; the dense layers use theirs (the ant: tanh; the car's last layer: linear, its
            decoder squashes). The recurrent layer's output is h whatever its entry says.
        batch_size: B, the number of slots.
        constraints: the task's weight constraints; they act on plastic weights, so they do not
            apply here (nothing changes within a lifetime).

    Follows the protocol of :mod:`spikehebb.agents.base` (``reset``, ``step``, ``weights``,
    ``activations``); the layouts are in this module's docstring. A slot never armed holds zero
    parameters and outputs zeros.
    """

    kind: str = ""
    takes_rule = False
    """Recurrent agents have no plasticity rule (``AgentConfig.rule`` must be None)."""

    def __init__(self, config, sizes: Sequence[int], activation="tanh", batch_size: int = 1,
                 constraints=(), **kwargs) -> None:
        from spikehebb.network.base import ACTIVATIONS

        if kwargs:
            raise ValueError(f"a {self.kind} agent takes no network options, got {sorted(kwargs)}")
        self.config = config
        dtype = "float64" if config is None else config.dtype
        self.sizes = _check_sizes(sizes)
        if not (is_integer(batch_size) and batch_size >= 1):
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if np.dtype(dtype) not in (np.dtype("float64"), np.dtype("float32")):
            raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
        n_layers = len(self.sizes) - 1
        names = [activation] * n_layers if isinstance(activation, str) else list(activation)
        if len(names) != n_layers or any(n not in ACTIVATIONS for n in names):
            raise ValueError(
                f"activation must be one of {tuple(ACTIVATIONS)} or {n_layers} of them (one per layer), got {activation!r}"
            )
        self.activation = tuple(names)
        self._act = [ACTIVATIONS[n][1] for n in names[1:]]
        self.batch_size = int(batch_size)
        self.dtype = np.dtype(dtype)
        self.n_inputs = self.sizes[0]
        self.n_outputs = self.sizes[-1]
        self.hidden = self.sizes[1]
        self.n_gates = len(GATES[self.kind])
        self._parts = genome_parts(self.kind, self.sizes)
        B = self.batch_size
        self._params = {
            part.name: [np.zeros((B,) + shape, self.dtype) for shape in part.shapes]
            for part in self._parts
        }
        self._h = np.zeros((B, self.hidden), self.dtype)
        self._c = np.zeros((B, self.hidden), self.dtype)
        self._activations = [np.zeros((B, n), self.dtype) for n in self.sizes]
        self._armed = False
        self._active = B  # slots stepped: a prefix once the rollout compacts (set_active)

    @classmethod
    def build(cls, sizes: Sequence[int], batch_size: int, dtype: str = "float64", activation="tanh") -> "RecurrentAgent":
        """An agent without a run's config: ``LSTMAgent.build((28, 128, 64, 8), 16)``."""
        from spikehebb.agents.config import AgentConfig

        return cls(AgentConfig(kind=cls.kind, rule=None, dtype=dtype), sizes, activation, batch_size)

    @classmethod
    def genome_parts(cls, config, sizes: Sequence[int]) -> tuple[GenomePart, ...]:
        """What the strategy searches for one member, in this order (all ``searched=True``):

        ``GenomePart("recurrent", ((n_in, G*H), (H, G*H), (G*H,), (G*H,)))``: W_ih, W_hh, b_ih,
        b_hh, gate blocks along the last axis in torch's order ((i, f, g, o) for the LSTM, G = 4;
        (r, z, n) for the GRU, G = 3); W_ih and W_hh are torch's ``weight_ih``/``weight_hh``
        transposed. ``GenomePart("weights", ((H, n_2), ..., (n_{L-1}, n_out)))``: the dense
        layers, ``(pre, post)``. A flat candidate is the parts in this order, each array raveled in
        C order (the genome map's convention). ``config`` (the AgentConfig) changes nothing.
        """
        return genome_parts(cls.kind, sizes)

    @classmethod
    def draw_part(cls, config, sizes: Sequence[int], name: str, rng: np.random.Generator) -> list[np.ndarray]:
        """Recurrent agents draw nothing per lifetime: every part is searched."""
        raise KeyError(f"{cls.kind} agents draw no part {name!r}: every part is searched")

    # ------------------------------------------------------------------------------ lifetimes
    def reset(self, parts: Mapping[str, Sequence[np.ndarray]], members: Sequence[int] | None = None) -> None:
        """Arm new lifetimes in the slots ``members`` (None: all B, in order).

        parts: ``{"recurrent": [W_ih, W_hh, b_ih, b_hh], "weights": [dense layers]}``, each array
        ``(n, *shape)`` with n = len(members). Hidden (and cell) state of those slots is set to
        zero; other slots keep running untouched.
        """
        slots = self._slots(members)
        n = slots.size
        for part in self._parts:
            if part.name not in parts:
                raise ValueError(f"parts must contain {[p.name for p in self._parts]}, got {sorted(parts)}")
            arrays = list(parts[part.name])
            if len(arrays) != len(part.shapes):
                raise ValueError(
                    f"parts[{part.name!r}] must hold {len(part.shapes)} arrays of shapes "
                    f"{[(n,) + s for s in part.shapes]}, got {len(arrays)}"
                )
            for j, (array, shape) in enumerate(zip(arrays, part.shapes)):
                array = np.asarray(array)
                if array.shape != (n,) + shape:
                    raise ValueError(
                        f"parts[{part.name!r}][{j}] must be {(n,) + shape} for {n} members, "
                        f"got {array.shape}"
                    )
                if not np.all(np.isfinite(array)):
                    raise ValueError(f"parts[{part.name!r}][{j}] must be finite, got NaN or inf")
        for part in self._parts:
            for store, array in zip(self._params[part.name], parts[part.name]):
                store[slots] = array
        self._h[slots] = 0
        self._c[slots] = 0
        for a in self._activations:
            a[slots] = 0
        self._armed = True

    def _slots(self, members: Sequence[int] | None) -> np.ndarray:
        if members is None:
            return np.arange(self.batch_size)
        given = np.asarray(members)
        if given.ndim != 1 or (given.size and not np.issubdtype(given.dtype, np.integer)):  # True or 0.7 is no slot
            raise ValueError(f"members must be a list of slot indices (integers), got {np.atleast_1d(given).tolist()}")
        slots = given.astype(np.int64)
        if slots.size and (slots.min() < 0 or slots.max() >= self.batch_size):
            raise ValueError(f"members must be slot indices in [0, {self.batch_size}), got {slots.tolist()}")
        if np.unique(slots).size != slots.size:
            raise ValueError(f"members must not repeat a slot, got {slots.tolist()}")
        return slots

    # ---------------------------------------------------------------------------------- steps
    def step(self, inputs: np.ndarray, modulator: np.ndarray | None = None) -> np.ndarray:
        """One step of every slot: inputs ``(B, n_in)`` -> outputs ``(B, n_out)`` (a copy).

        modulator: ``(B,)`` or None; recurrent agents read no third factor and ignore it.
        """
        if not self._armed:
            raise RuntimeError("step() needs armed lifetimes: call reset(parts) first")
        x = np.asarray(inputs)
        if x.shape != (self.batch_size, self.n_inputs):
            raise ValueError(f"inputs must be ({self.batch_size}, {self.n_inputs}), got {x.shape}")
        if modulator is not None and np.shape(modulator) != (self.batch_size,):
            raise ValueError(f"modulator must be ({self.batch_size},) or None, got {np.shape(modulator)}")
        x = x.astype(self.dtype, copy=False)
        self._step(x[: self._active])  # after compaction a prefix; the other slots stay as they are
        return self._activations[-1].copy()

    def _step(self, x: np.ndarray) -> None:
        """Step the first ``len(x)`` slots in place: h, c and every layer's activation."""
        rows = slice(len(x))
        w_ih, w_hh, b_ih, b_hh = (p[rows] for p in self._params["recurrent"])
        h, c = self._h[rows], self._c[rows]
        a = batched_matvec(x, w_ih) + b_ih
        b = batched_matvec(h, w_hh) + b_hh
        h, c = self._cell(a, b, h, c)
        self._h[rows], self._c[rows] = h, c
        self._activations[0][rows] = x
        self._activations[1][rows] = h
        out = h
        for layer, (w, act) in enumerate(zip(self._params["weights"], self._act), start=2):
            out = act(batched_matvec(out, w[rows]))
            self._activations[layer][rows] = out

    # ------------------------------------------------------------------------------ compaction
    can_compact = True
    """The rollout may move lifetimes between slots and step a prefix (a generation's tail)."""

    def move_members(self, sources: Sequence[int], targets: Sequence[int]) -> None:
        """Move the lifetimes of slots ``sources`` into slots ``targets`` (distinct slots): every
        parameter, h, c and the last activations, so the moved lifetimes go on as in their old
        slots. The sources keep their values, to be re-armed or ignored."""
        src, dst = self._slots(sources), self._slots(targets)
        check_move(src, dst)
        arrays = [a for part in self._parts for a in self._params[part.name]]
        for array in (*arrays, self._h, self._c, *self._activations):
            array[dst] = array[src]

    def set_active(self, n: int | None) -> None:
        """Step only the first ``n`` slots from now on (None: all B); the others keep their state
        and last outputs."""
        self._active = active_slots(n, self.batch_size)

    def _cell(self, a, b, h, c):
        """New (h, c) from ``a = x @ W_ih + b_ih`` and ``b = h @ W_hh + b_hh``, both (B, G*H)."""
        raise NotImplementedError

    # ------------------------------------------------------------------------------- readouts
    def weights(self) -> list[np.ndarray]:
        """Per layer ``(B, n_pre, n_post)`` copies; for the recurrent layer its INPUT weights
        W_ih ``(B, n_in, G*H)``, gate blocks along the last axis (W_hh and the biases are in
        :meth:`recurrent_weights`). Nothing here changes within a lifetime."""
        return [self._params["recurrent"][0].copy()] + [w.copy() for w in self._params["weights"]]

    def recurrent_weights(self) -> dict[str, np.ndarray]:
        """The recurrent layer's arrays as copies: ``W_ih (B, n_in, G*H)``, ``W_hh (B, H, G*H)``,
        ``b_ih (B, G*H)``, ``b_hh (B, G*H)``."""
        return dict(zip(("W_ih", "W_hh", "b_ih", "b_hh"), (a.copy() for a in self._params["recurrent"])))

    def activations(self) -> list[np.ndarray]:
        """Last step's activations per layer ``(B, n_l)``, inputs first: the inputs, the recurrent
        layer's hidden state h, then each dense layer's output after its activation (copies): tanh
        on the ant; on the car tanh, then the last layer linear (its decoder squashes)."""
        return [a.copy() for a in self._activations]

    def state(self) -> dict[str, np.ndarray]:
        """The recurrent state, copies: ``h`` (B, H), and ``c`` (B, H) for the LSTM (zeros for the GRU)."""
        return {"h": self._h.copy(), "c": self._c.copy()}


class LSTMAgent(RecurrentAgent):
    """Palm et al.'s LSTM baseline (torch ``LSTMCell`` equations, gate blocks (i, f, g, o))."""

    kind = "lstm"

    def _cell(self, a, b, h, c):
        H = self.hidden
        z = a + b
        i = _sigmoid(z[:, 0:H])
        f = _sigmoid(z[:, H : 2 * H])
        g = np.tanh(z[:, 2 * H : 3 * H])
        o = _sigmoid(z[:, 3 * H : 4 * H])
        c = f * c + i * g
        return o * np.tanh(c), c


class GRUAgent(RecurrentAgent):
    """The GRU variant (torch ``GRUCell`` equations, gate blocks (r, z, n)); not in Palm et al."""

    kind = "gru"

    def _cell(self, a, b, h, c):
        H = self.hidden
        r = _sigmoid(a[:, 0:H] + b[:, 0:H])
        z = _sigmoid(a[:, H : 2 * H] + b[:, H : 2 * H])
        n = np.tanh(a[:, 2 * H :] + r * b[:, 2 * H :])
        return (1 - z) * n + z * h, c


AGENTS = {LSTMAgent.kind: LSTMAgent, GRUAgent.kind: GRUAgent}
"""The recurrent agents by kind, for the agent registry."""
