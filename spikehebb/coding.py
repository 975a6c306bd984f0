"""Encoders (observations -> input rates) and decoders (output rates -> actions).

Both work on a batch of B members at once: an encoder maps ``(B, *observation_shape)`` to
``(B, n_inputs)`` rates, a decoder maps the network's outputs ``(B, n_outputs)`` to actions
``(B, *action_shape)``. Tasks pick theirs; other tasks plug in their own objects with the same
two methods.

An encoder may have evolved, non-plastic parameters of its own (the car's convolution weights).
It lists their per-layer shapes in ``param_shapes`` (without the member axis); the run's
:class:`~spikehebb.genome.GenomeMap` gets them as the ``"encoder"`` part, and before every
lifetime the rollout hands the batch's values to ``set_params`` as per-layer ``(B, *shape)``
arrays, one row per member. Encoders without parameters have ``param_shapes = ()``.

The car (Najarro & Risi 2020, their ``CNN_heb`` and gym wrappers): the 96x96x3 uint8 frame is
resized to 84x84 with area interpolation (:func:`resize_area`, OpenCV's ``INTER_AREA`` as two
resampling matrices), rounded back to uint8 as OpenCV returns it for uint8 frames, scaled to
[0, 1], then conv(3->6, 3x3) tanh, maxpool 2, conv(6->8, 5x5, stride 2) tanh, maxpool 2 ->
8*9*9 = 648 features (:class:`CarEncoder`). Actions are ``[tanh(o0), sigmoid(o1), sigmoid(o2)]``
of the raw last layer (:class:`CarDecoder`).
"""

from __future__ import annotations

import math
from typing import Protocol, Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


class Encoder(Protocol):
    """Observations ``(B, *obs_shape)`` -> input rates ``(B, n_inputs)``; with ``members`` (k
    indices into the batch), observations ``(k, *obs_shape)`` of those members -> ``(k, n_inputs)``
    with their own parameters."""

    n_inputs: int
    param_shapes: tuple[tuple[int, ...], ...]
    """Shapes of the encoder's evolved parameters per layer, without the member axis."""

    def __call__(self, observations: np.ndarray, members: np.ndarray | None = None) -> np.ndarray: ...

    def set_params(self, params: Sequence[np.ndarray], members: Sequence[int] | None = None) -> None:
        """The batch's parameters for the coming lifetimes: per layer ``(B, *shape)``, or
        ``(n, *shape)`` for the n slots ``members`` (the others keep theirs)."""


class Decoder(Protocol):
    """Network outputs ``(B, n_outputs)`` -> actions ``(B, *action_shape)``."""

    def __call__(self, outputs: np.ndarray) -> np.ndarray: ...


class RawEncoder:
    """The observation vector itself as input rates (the ant's first layer reads the raw
    28-dim observation, unsquashed, as in Najarro & Risi's code)."""

    param_shapes: tuple[tuple[int, ...], ...] = ()

    def __init__(self, n_inputs: int):
        self.n_inputs = int(n_inputs)

    def set_params(self, params: Sequence[np.ndarray], members: Sequence[int] | None = None) -> None:
        if len(params):
            raise ValueError(f"{type(self).__name__} has no parameters, got {len(params)} arrays")

    def __call__(self, observations: np.ndarray, members: np.ndarray | None = None) -> np.ndarray:
        observations = np.asarray(observations, dtype=np.float64)
        if observations.ndim != 2 or observations.shape[1] != self.n_inputs:
            raise ValueError(
                f"observations must be (B, {self.n_inputs}), got {observations.shape}"
            )
        return observations


class IdentityDecoder:
    """The outputs are the actions (the ant's last layer is tanh, already in [-1, 1])."""

    pairable = True
    """Signed actions read as they are: a difference of two non-negative rates serves too
    (:class:`PairDecoder`)."""

    def __call__(self, outputs: np.ndarray) -> np.ndarray:
        return np.asarray(outputs)


class OnOffEncoder:
    """Signed inputs as on/off pairs of non-negative rates (``--positive``): the wrapped
    encoder's ``(B, n)`` inputs x become ``(B, 2n)``, ``[max(x, 0) | max(-x, 0)]`` (all "on"
    units first, then all "off" units, each in the wrapped encoder's order), like ON and OFF
    cells. Evolved parameters are the wrapped encoder's."""

    def __init__(self, inner: Encoder):
        self.inner = inner
        self.n_inputs = 2 * int(inner.n_inputs)
        self.param_shapes = tuple(getattr(inner, "param_shapes", ()))

    def set_params(self, params: Sequence[np.ndarray], members: Sequence[int] | None = None) -> None:
        self.inner.set_params(params, members)

    def __call__(self, observations: np.ndarray, members: np.ndarray | None = None) -> np.ndarray:
        x = self.inner(observations, members)
        return np.concatenate([np.maximum(x, 0), np.maximum(-x, 0)], axis=1)


class PairDecoder:
    """Each action from an agonist/antagonist pair of non-negative outputs (``--positive``),
    like opposing muscles: outputs ``(B, 2n)`` ``[r+ | r-]`` -> the wrapped decoder applied to
    ``r+ - r-`` ``(B, n)``. With rectified-tanh outputs in [0, 1) the difference is in (-1, 1)."""

    def __init__(self, inner: Decoder):
        if not getattr(inner, "pairable", False):
            raise ValueError(f"{type(inner).__name__} cannot decode output pairs (r+ - r-)")
        self.inner = inner

    def __call__(self, outputs: np.ndarray) -> np.ndarray:
        outputs = np.asarray(outputs)
        if outputs.ndim != 2 or outputs.shape[1] % 2:
            raise ValueError(f"paired outputs must be (B, 2n), got {outputs.shape}")
        n = outputs.shape[1] // 2
        return self.inner(outputs[:, :n] - outputs[:, n:])


# ------------------------------------------------------------------------------ area resize
#: OpenCV ignores source cells that overlap an output cell by less than this (``resize.cpp``).
AREA_EPSILON = 1e-3


def area_resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Resampling matrix ``(n_out, n_in)`` of area interpolation along one axis (downscaling).

    Output cell d covers the source interval ``[d*s, (d+1)*s)`` with ``s = n_in / n_out``; each
    source cell weighs by its overlap with that interval divided by s, so every row sums to 1.
    This is OpenCV's ``computeResizeAreaTab`` (``INTER_AREA`` for non-integer scales) term for
    term, including its float32 weights; a 2-D resize is ``R_h @ image @ R_w.T``.
    """
    if not (0 < n_out <= n_in):
        raise ValueError(f"area resizing shrinks: need 0 < n_out <= n_in, got n_in={n_in}, n_out={n_out}")
    scale = n_in / n_out
    matrix = np.zeros((n_out, n_in), dtype=np.float64)
    for d in range(n_out):
        f1 = d * scale
        f2 = f1 + scale
        cell = min(scale, n_in - f1)
        s2 = min(math.floor(f2), n_in - 1)
        s1 = min(math.ceil(f1), s2)
        if s1 - f1 > AREA_EPSILON:
            matrix[d, s1 - 1] = np.float32((s1 - f1) / cell)
        matrix[d, s1:s2] = np.float32(1.0 / cell)
        if f2 - s2 > AREA_EPSILON:
            matrix[d, s2] = np.float32(min(f2 - s2, 1.0, cell) / cell)
    return matrix


def resize_area(frames: np.ndarray, size: tuple[int, int], quantise: bool = True) -> np.ndarray:
    """Area-resize a batch of frames ``(B, H, W, C)`` to ``(B, h, w, C)`` float32.

    ``quantise=True`` rounds to the nearest integer in [0, 255], as ``cv2.resize`` returns for
    uint8 frames (gym's ``ResizeObservation``); the result can differ from OpenCV's by 1 only
    where its float sum lands within rounding error of a .5 tie.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4:
        raise ValueError(f"frames must be (B, H, W, C), got shape {frames.shape}")
    B, H, W, C = frames.shape
    rows = area_resize_matrix(H, size[0]).astype(np.float32)
    cols = area_resize_matrix(W, size[1]).astype(np.float32)
    out = _resize_channels_first(frames, rows, cols, quantise)  # (B, C, w, h)
    return out.transpose(0, 3, 2, 1)


def _resize_channels_first(frames: np.ndarray, rows: np.ndarray, cols: np.ndarray, quantise: bool) -> np.ndarray:
    """``(B, H, W, C)`` -> ``(B, C, w, h)`` float32: two single large matmuls (columns, then rows)."""
    B, H, W, C = frames.shape
    h, w = rows.shape[0], cols.shape[0]
    x = np.ascontiguousarray(frames.transpose(0, 3, 1, 2), dtype=np.float32)  # (B, C, H, W)
    x = (x.reshape(B * C * H, W) @ cols.T).reshape(B * C, H, w)
    x = (np.ascontiguousarray(x.transpose(0, 2, 1)).reshape(B * C * w, H) @ rows.T).reshape(B, C, w, h)
    if quantise:
        np.clip(np.rint(x, out=x), 0, 255, out=x)
    return x


# ------------------------------------------------------------------------- batched convolution
def conv2d(x: np.ndarray, weights: np.ndarray, stride: int = 1) -> np.ndarray:
    """Valid 2-D cross-correlation (PyTorch's ``Conv2d``, no bias) with per-member kernels.

    x: ``(B, C, H, W)``; weights: ``(B, O, C, k, k)``. Returns ``(B, O, H', W')`` with
    ``H' = (H - k) // stride + 1``: ``out[b, o, y, x] = sum_{c,i,j} w[b, o, c, i, j] *
    x[b, c, y*stride + i, x*stride + j]``. The windows are gathered with
    ``sliding_window_view`` (im2col) and contracted with one batched matmul per call.
    """
    B, C, H, W = x.shape
    if weights.ndim != 5 or weights.shape[0] != B or weights.shape[2] != C or weights.shape[3] != weights.shape[4]:
        raise ValueError(f"weights must be (B, O, C, k, k) = ({B}, O, {C}, k, k), got {weights.shape}")
    O, k = weights.shape[1], weights.shape[3]
    windows = sliding_window_view(x, (k, k), axis=(2, 3))[:, :, ::stride, ::stride]  # (B, C, H', W', k, k)
    Ho, Wo = windows.shape[2:4]
    cols = windows.transpose(0, 2, 3, 1, 4, 5).reshape(B, Ho * Wo, C * k * k)
    out = np.matmul(cols, weights.reshape(B, O, C * k * k).transpose(0, 2, 1))  # (B, H'W', O)
    return out.transpose(0, 2, 1).reshape(B, O, Ho, Wo)


def max_pool2d(x: np.ndarray, size: int = 2) -> np.ndarray:
    """Max over non-overlapping ``size x size`` windows of ``(B, C, H, W)`` (PyTorch's
    ``MaxPool2d(size, size)``: a last partial row or column is dropped)."""
    h, w = x.shape[2] // size, x.shape[3] // size
    out = None
    for i in range(size):  # elementwise maxima of strided views: several times faster than .max(axis)
        for j in range(size):
            view = x[:, :, i : h * size : size, j : w * size : size]
            out = view.copy() if out is None else np.maximum(out, view, out=out)
    return out


#: The car's frame after resizing (Najarro & Risi 2020: gym's ResizeObservation(env, 84)).
CAR_FRAME = 84
#: The car's convolutions (Najarro & Risi 2020, ``CNN_heb``): (out channels, kernel, stride), no bias.
CAR_CONVS = ((6, 3, 1), (8, 5, 2))
CAR_POOL = 2


class CarEncoder:
    """The car's frame -> 648 features: area resize to 84x84, uint8 rounding, /255, then
    conv(3->6, 3x3) tanh, maxpool 2, conv(6->8, 5x5, stride 2) tanh, maxpool 2, flattened.

    The convolution weights are evolved per member (``param_shapes`` ``(6, 3, 3, 3)`` and
    ``(8, 6, 5, 5)``, PyTorch's ``(out, in, kh, kw)``; 1,362 numbers) and fixed for a lifetime:
    :meth:`set_params` takes them for the batch. Observations ``(B, 96, 96, 3)`` (any numeric
    dtype holding 0..255) -> features ``(B, 648)`` float32, flattened channel-major.

    ``transpose=True`` feeds the frame to the convolutions as ``(C, W, H)``, as Najarro & Risi's
    code does (``np.swapaxes(obs, 0, 2)``); with evolved kernels this only mirrors what each
    kernel sees, but it keeps their published weights usable here.
    """

    def __init__(self, frame: int = CAR_FRAME, quantise: bool = True, transpose: bool = True, in_shape=(96, 96, 3)):
        self.frame, self.quantise, self.transpose = int(frame), bool(quantise), bool(transpose)
        self.in_shape = tuple(in_shape)
        self._rows = area_resize_matrix(self.in_shape[0], self.frame).astype(np.float32)
        self._cols = area_resize_matrix(self.in_shape[1], self.frame).astype(np.float32)
        self._scale = np.float32(1 / 255)
        shapes, channels, side = [], self.in_shape[2], self.frame
        for out, k, stride in CAR_CONVS:
            shapes.append((out, channels, k, k))
            channels, side = out, ((side - k) // stride + 1) // CAR_POOL
        self.param_shapes: tuple[tuple[int, ...], ...] = tuple(shapes)
        self.n_inputs = channels * side * side
        self._weights: list[np.ndarray] | None = None

    def set_params(self, params: Sequence[np.ndarray], members: Sequence[int] | None = None) -> None:
        """Per layer ``(B, *param_shapes[l])`` convolution weights for the coming lifetime; with
        ``members`` (n slot indices), ``(n, *shape)`` weights for those slots only (the others
        keep theirs)."""
        if len(params) != len(self.param_shapes):
            raise ValueError(f"{type(self).__name__} takes {len(self.param_shapes)} weight arrays, got {len(params)}")
        weights = []
        for l, (p, shape) in enumerate(zip(params, self.param_shapes), start=1):
            p = np.asarray(p)
            if p.ndim != len(shape) + 1 or p.shape[1:] != shape:
                raise ValueError(f"convolution {l} weights must be (B, {', '.join(map(str, shape))}), got {p.shape}")
            if not np.all(np.isfinite(p)):
                raise ValueError(f"convolution {l} weights contain NaN or inf")
            # always a copy (ascontiguousarray would keep the caller's own float32 array, and a later
            # set_params(..., members) would write into it)
            weights.append(np.array(p, dtype=np.float32, order="C"))
        if len({w.shape[0] for w in weights}) != 1:
            raise ValueError(f"convolution weights disagree on the batch size: {[w.shape for w in weights]}")
        if members is None:
            self._weights = weights
            return
        if self._weights is None:
            raise RuntimeError("CarEncoder: set every slot's weights (members=None) before replacing some")
        members = np.asarray(members)
        if len(members) != weights[0].shape[0]:
            raise ValueError(f"{len(members)} members but weights for {weights[0].shape[0]}")
        for mine, new in zip(self._weights, weights):
            mine[members] = new

    def frames(self, observations: np.ndarray) -> np.ndarray:
        """The network's view of the frames, channels first: ``(B, 3, 84, 84)`` float32 in
        [0, 1], axes (C, W, H) with ``transpose`` (the original's), else (C, H, W)."""
        obs = np.asarray(observations)
        if obs.ndim != 4 or obs.shape[1:] != self.in_shape:
            raise ValueError(f"observations must be (B, {', '.join(map(str, self.in_shape))}), got {obs.shape}")
        x = _resize_channels_first(obs, self._rows, self._cols, self.quantise)  # (B, C, W, H)
        x *= self._scale
        return x if self.transpose else x.transpose(0, 1, 3, 2)

    def __call__(self, observations: np.ndarray, members: np.ndarray | None = None) -> np.ndarray:
        """Features ``(B, 648)``; with ``members``, the frames of those batch members only."""
        if self._weights is None:
            raise RuntimeError("CarEncoder has no convolution weights: call set_params first")
        x = self.frames(observations)
        B = x.shape[0]
        weights = self._weights if members is None else [w[np.asarray(members)] for w in self._weights]
        if B != weights[0].shape[0]:
            raise ValueError(f"observations hold {B} members, the convolution weights {weights[0].shape[0]}")
        for w, (_, _, stride) in zip(weights, CAR_CONVS):
            x = max_pool2d(np.tanh(conv2d(x, w, stride)), CAR_POOL)
        return x.reshape(B, -1)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # exp(-x) = inf below x = -709 gives the right 0, not a warning per step
        return 1 / (1 + np.exp(-x))


class CarDecoder:
    """Raw last-layer outputs ``(B, 3)`` -> actions ``[tanh(o0), sigmoid(o1), sigmoid(o2)]``:
    steering in [-1, 1], gas and brake in [0, 1] (Najarro & Risi 2020)."""

    def __call__(self, outputs: np.ndarray) -> np.ndarray:
        o = np.asarray(outputs, dtype=np.float64)
        if o.ndim != 2 or o.shape[1] != 3:
            raise ValueError(f"car outputs must be (B, 3), got {o.shape}")
        return np.stack([np.tanh(o[:, 0]), _sigmoid(o[:, 1]), _sigmoid(o[:, 2])], axis=1)
