"""Encoders and decoders: the car's area resize, convolutions, pooling, CNN and decoder, checked
against slow independent loops and hand-computed numbers."""

import numpy as np
import pytest

from spikehebb.coding import (
    CarDecoder,
    CarEncoder,
    RawEncoder,
    area_resize_matrix,
    conv2d,
    max_pool2d,
    resize_area,
)


def slow_area_resize(image, out_h, out_w):
    """Each output pixel is the mean of the source over its cell [y*s, (y+1)*s) x [x*s, (x+1)*s),
    every source pixel weighted by its overlap area: a direct double integral per pixel."""
    H, W, C = image.shape
    sy, sx = H / out_h, W / out_w
    out = np.zeros((out_h, out_w, C))
    for y in range(out_h):
        for x in range(out_w):
            y0, y1, x0, x1 = y * sy, (y + 1) * sy, x * sx, (x + 1) * sx
            total = np.zeros(C)
            for i in range(int(np.floor(y0)), min(H, int(np.ceil(y1)))):
                oy = min(y1, i + 1) - max(y0, i)
                for j in range(int(np.floor(x0)), min(W, int(np.ceil(x1)))):
                    ox = min(x1, j + 1) - max(x0, j)
                    total += oy * ox * image[i, j]
            out[y, x] = total / (sy * sx)
    return out


def slow_conv(x, w, stride):
    """Cross-correlation by explicit loops: x (C, H, W), w (O, C, k, k) -> (O, H', W')."""
    C, H, W = x.shape
    O, _, k, _ = w.shape
    Ho, Wo = (H - k) // stride + 1, (W - k) // stride + 1
    out = np.zeros((O, Ho, Wo))
    for o in range(O):
        for y in range(Ho):
            for xx in range(Wo):
                s = 0.0
                for c in range(C):
                    for i in range(k):
                        for j in range(k):
                            s += w[o, c, i, j] * x[c, y * stride + i, xx * stride + j]
                out[o, y, xx] = s
    return out


# ------------------------------------------------------------------------------ area resize
def test_area_matrix_rows_are_cell_averages():
    m = area_resize_matrix(96, 84)
    assert m.shape == (84, 96)
    np.testing.assert_allclose(m.sum(axis=1), 1.0, atol=1e-6)
    # Output 0 covers [0, 8/7): source 0 whole (weight 7/8) and 1/7 of source 1 (weight 1/8).
    np.testing.assert_allclose(m[0, :3], [7 / 8, 1 / 8, 0], atol=1e-7)
    # Integer factor: 2x2 block means.
    np.testing.assert_array_equal(area_resize_matrix(4, 2), [[0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5]])


def test_resize_96_to_84_matches_slow_area_average():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (2, 96, 96, 3)).astype(np.uint8)
    got = resize_area(frames, (84, 84), quantise=False)
    assert got.shape == (2, 84, 84, 3)
    for b in range(2):
        want = slow_area_resize(frames[b].astype(np.float64), 84, 84)
        np.testing.assert_allclose(got[b], want, atol=2e-3)
        # Quantised as cv2.resize returns uint8: nearest integer, except at (near) .5 ties.
        rounded = resize_area(frames[b : b + 1], (84, 84))[0]
        clear = np.abs(want - np.floor(want) - 0.5) > 1e-3
        np.testing.assert_array_equal(rounded[clear], np.rint(want)[clear])


def test_resize_by_hand():
    image = np.arange(16, dtype=np.float64).reshape(1, 4, 4, 1)
    # 2x2 block means of [[0..3], [4..7], [8..11], [12..15]]
    np.testing.assert_allclose(resize_area(image, (2, 2), quantise=False)[0, :, :, 0], [[2.5, 4.5], [10.5, 12.5]])


# --------------------------------------------------------------------- convolution, pooling
def test_conv_by_hand():
    x = np.arange(1, 10, dtype=np.float64).reshape(1, 1, 3, 3)  # [[1,2,3],[4,5,6],[7,8,9]]
    w = np.array([[1.0, 0.0], [0.0, -1.0]]).reshape(1, 1, 1, 2, 2)
    # out[y, x] = x[y, x] - x[y+1, x+1] = -4 everywhere
    np.testing.assert_array_equal(conv2d(x, w)[0, 0], [[-4, -4], [-4, -4]])
    w2 = np.ones((1, 1, 1, 2, 2))
    # stride 2 on 3x3 with a 2x2 kernel: one window, 1+2+4+5
    np.testing.assert_array_equal(conv2d(x, w2, stride=2)[0, 0], [[12.0]])


@pytest.mark.parametrize("stride", [1, 2])
def test_conv_matches_loops_with_per_member_kernels(stride):
    rng = np.random.default_rng(stride)
    x = rng.normal(size=(3, 2, 9, 8))
    w = rng.normal(size=(3, 4, 2, 3, 3))
    got = conv2d(x, w, stride)
    for b in range(3):
        np.testing.assert_allclose(got[b], slow_conv(x[b], w[b], stride), atol=1e-12)


def test_max_pool_by_hand():
    x = np.arange(25, dtype=np.float64).reshape(1, 1, 5, 5)
    x[0, 0, 0, 0] = 100  # the max of the first window
    # windows [[0,1],[5,6]] -> 100, [[2,3],[7,8]] -> 8, [[10,11],[15,16]] -> 16, [[12,13],[17,18]] -> 18;
    # the last row and column are dropped (floor), as torch's MaxPool2d(2, 2)
    np.testing.assert_array_equal(max_pool2d(x)[0, 0], [[100, 8], [16, 18]])


# ------------------------------------------------------------------------------ the car's CNN
def reference_car_features(frame, w1, w2):
    """One frame (96, 96, 3) uint8 -> 648 features, independently: slow resize, rint, /255,
    (C, W, H) as the original's swapaxes, slow convolutions, tanh, 2x2 max by loops."""
    # For 96 -> 84 every weight is a multiple of 1/8 per axis, so the true average is a multiple
    # of 1/64: snap the slow float sum to it before rounding, or its rounding noise breaks the
    # exact .5 ties (rint rounds them to even, as OpenCV's saturate_cast does).
    x = np.rint(np.round(slow_area_resize(frame.astype(np.float64), 84, 84) * 64) / 64) / 255
    x = x.transpose(2, 1, 0)

    def pool(a):
        C, H, W = a.shape
        return np.array([[[a[c, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2].max() for j in range(W // 2)] for i in range(H // 2)] for c in range(C)])

    x = pool(np.tanh(slow_conv_fast(x, w1, 1)))
    x = pool(np.tanh(slow_conv_fast(x, w2, 2)))
    return x.reshape(-1)


def slow_conv_fast(x, w, stride):
    """Shift-and-add over kernel offsets (another algorithm than the encoder's im2col)."""
    C, H, W = x.shape
    O, _, k, _ = w.shape
    Ho, Wo = (H - k) // stride + 1, (W - k) // stride + 1
    out = np.zeros((O, Ho, Wo))
    for i in range(k):
        for j in range(k):
            patch = x[:, i : i + stride * (Ho - 1) + 1 : stride, j : j + stride * (Wo - 1) + 1 : stride]
            out += np.einsum("oc,chw->ohw", w[:, :, i, j], patch)
    return out


def test_car_encoder_against_reference():
    enc = CarEncoder()
    assert enc.n_inputs == 648 and enc.param_shapes == ((6, 3, 3, 3), (8, 6, 5, 5))
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (2, 96, 96, 3)).astype(np.uint8)
    params = [rng.normal(0, 0.5, (2,) + s) for s in enc.param_shapes]
    enc.set_params(params)
    got = enc(frames)
    assert got.shape == (2, 648) and got.dtype == np.float32
    for b in range(2):
        want = reference_car_features(frames[b], params[0][b], params[1][b])
        np.testing.assert_allclose(got[b], want, atol=2e-5)
    # float64 observations (what the rollout batches) give the same features
    np.testing.assert_array_equal(enc(frames.astype(np.float64)), got)
    # a subset of the batch (the members still alive) uses those members' own kernels
    np.testing.assert_array_equal(enc(frames[1:], members=np.array([1])), got[1:])
    with pytest.raises(ValueError, match="observations hold 2 members, the convolution weights 1"):
        enc(frames, members=np.array([0]))


def test_car_encoder_transpose_only_mirrors_the_kernels():
    rng = np.random.default_rng(2)
    frames = rng.integers(0, 256, (3, 96, 96, 3)).astype(np.uint8)
    params = [rng.normal(0, 0.5, (3,) + s) for s in CarEncoder().param_shapes]
    original, plain = CarEncoder(transpose=True), CarEncoder(transpose=False)
    original.set_params(params)
    plain.set_params([p.swapaxes(-1, -2) for p in params])
    a = original(frames).reshape(3, 8, 9, 9)
    b = plain(frames).reshape(3, 8, 9, 9)
    np.testing.assert_allclose(a, b.swapaxes(-1, -2), atol=2e-5)  # float32 sums in another order


def test_car_encoder_keeps_its_own_copy_of_the_weights():
    """float32 C-contiguous weights were kept as the caller's own arrays: a later re-arm of some
    slots wrote into them, and a change of the caller's arrays changed the encoder's kernels."""
    enc = CarEncoder()
    rng = np.random.default_rng(3)
    params = [rng.normal(0, 0.5, (2,) + s).astype(np.float32) for s in enc.param_shapes]
    given = [p.copy() for p in params]
    frames = rng.integers(0, 256, (2, 96, 96, 3)).astype(np.uint8)
    enc.set_params(params)
    before = enc(frames)
    enc.set_params([np.zeros((1,) + s) for s in enc.param_shapes], members=[1])
    for p, g in zip(params, given):
        np.testing.assert_array_equal(p, g)  # the caller's arrays are untouched
    for p in params:
        p[...] = 0.0
    np.testing.assert_array_equal(enc(frames)[0], before[0])  # slot 0 kept its kernels
    assert np.all(enc(frames)[1] == 0)  # slot 1 re-armed with zero kernels


def test_car_encoder_bad_input():
    enc = CarEncoder()
    with pytest.raises(RuntimeError, match="set_params"):
        enc(np.zeros((1, 96, 96, 3)))
    with pytest.raises(ValueError, match=r"convolution 2 weights must be \(B, 8, 6, 5, 5\)"):
        enc.set_params([np.zeros((1, 6, 3, 3, 3)), np.zeros((1, 8, 6, 3, 3))])
    with pytest.raises(ValueError, match="NaN"):
        enc.set_params([np.full((1, 6, 3, 3, 3), np.nan), np.zeros((1, 8, 6, 5, 5))])
    enc.set_params([np.zeros((2, 6, 3, 3, 3)), np.zeros((2, 8, 6, 5, 5))])
    with pytest.raises(ValueError, match=r"observations must be \(B, 96, 96, 3\)"):
        enc(np.zeros((2, 84, 84, 3)))
    with pytest.raises(ValueError, match="hold 1 members"):
        enc(np.zeros((1, 96, 96, 3)))
    with pytest.raises(ValueError, match="no parameters"):
        RawEncoder(3).set_params([np.zeros((1, 2))])


def test_car_decoder():
    out = CarDecoder()(np.array([[0.0, 0.0, 0.0], [1.0, -2.0, 3.0]]))
    np.testing.assert_allclose(out[0], [0.0, 0.5, 0.5])
    np.testing.assert_allclose(out[1], [np.tanh(1.0), 1 / (1 + np.exp(2.0)), 1 / (1 + np.exp(-3.0))])
    with pytest.raises(ValueError, match=r"\(B, 3\)"):
        CarDecoder()(np.zeros((2, 4)))


def test_the_car_decoder_saturates_without_an_overflow_warning():
    import warnings

    from spikehebb.coding import CarDecoder

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow warning would fail here
        actions = CarDecoder()(np.array([[1e3, -1e3, 1e3]]))
    np.testing.assert_array_equal(actions, [[1.0, 0.0, 1.0]])
