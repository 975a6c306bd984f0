"""Gradient-ascent steps for OpenAI-ES: plain SGD (Najarro & Risi 2020) and Adam (Salimans et al. 2017).

Both ASCEND: ``step(grad, lr)`` returns the update to ADD to the mean, since fitness is maximised.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from spikehebb.es.state_checks import state_count, state_text, state_vector


class SGD:
    """``update = lr * grad``: the authors' ``coeffs += lr/(n*sigma) * sum(F_i*eps_i)``."""

    name = "sgd"

    def __init__(self, n_params: int) -> None:
        self.n_params = n_params

    def step(self, grad: np.ndarray, lr: float) -> np.ndarray:
        """grad: (n_params,) float64 -> update: (n_params,) float64."""
        return lr * grad

    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name}

    def load_state_dict(self, state: dict[str, Any], path: str | None = None) -> None:
        """Nothing to read: plain SGD has no state."""


class Adam:
    """Adam (Kingma & Ba 2015, in its usual form: eps added to the bias-corrected sqrt(v)) on the
    ES gradient estimate, as Palm et al.'s shared-rule runs used it (torch.optim.Adam). Salimans et
    al.'s own optimizer differs in small ways (eps on the uncorrected sqrt(v), an L2 decay term in
    the gradient).

    m: (n_params,) float64 first moment; v: (n_params,) float64 second moment; t: steps taken.
    """

    name = "adam"

    def __init__(
        self,
        n_params: int,
        beta1: float = 0.9,  # Kingma & Ba 2015
        beta2: float = 0.999,  # Kingma & Ba 2015
        eps: float = 1e-8,  # Kingma & Ba 2015
    ) -> None:
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.m = np.zeros(n_params)
        self.v = np.zeros(n_params)
        self.t = 0

    def step(self, grad: np.ndarray, lr: float) -> np.ndarray:
        """grad: (n_params,) float64 -> update: (n_params,) float64."""
        self.t += 1
        self.m = self.beta1 * self.m + (1 - self.beta1) * grad
        self.v = self.beta2 * self.v + (1 - self.beta2) * grad * grad
        m_hat = self.m / (1 - self.beta1**self.t)
        v_hat = self.v / (1 - self.beta2**self.t)
        return lr * m_hat / (np.sqrt(v_hat) + self.eps)

    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name, "m": self.m.copy(), "v": self.v.copy(), "t": self.t}

    def load_state_dict(self, state: dict[str, Any], path: str | None = None) -> None:
        """Checks every field (one-line ValueError) before changing anything.

        state: this optimizer's :meth:`state_dict`, or with ``path`` the enclosing state and the
        dotted path of this optimizer's part in it (``"logits_optimizer"``), which the messages name.
        """
        n = len(self.m)
        prefix = "" if path is None else f"{path}."
        m = state_vector(state, prefix + "m", n)
        v = state_vector(state, prefix + "v", n)
        if np.any(v < 0):
            raise ValueError(f"state_dict {prefix}v (Adam's second moment) must be >= 0")
        t = state_count(state, prefix + "t")
        self.m, self.v, self.t = m, v, t


OPTIMIZERS = {"sgd": SGD, "adam": Adam}


def loaded_optimizer(state: dict[str, Any], path: str, name: str, n_params: int, what: str | None = None):
    """A new ``name`` optimizer over ``n_params`` numbers with the saved state at ``path`` of a
    strategy's state, checked whole (a one-line ValueError, ``what``, default ``path``, naming
    the field) before the caller changes anything."""
    got = state_text(state, f"{path}.name")
    if got != name:
        raise ValueError(f"state_dict {what or path} must be {name!r}, got {got!r}")
    optimizer = OPTIMIZERS[name](n_params)
    optimizer.load_state_dict(state, path)
    return optimizer
