"""Vectorised drawing of CarRacing's background, grass and road, pixel for pixel as gymnasium's.

Credits: the scene (playfield, grass squares, road tiles and kerbs, colours, camera) is gymnasium's
``gymnasium/envs/box2d/car_racing.py`` (CarRacing-v3, Oleg Klimov and the Farama Foundation).

gymnasium's ``CarRacing._render_road`` turns every one of about 1,200 polygons (400 grass squares,
about 300 road tiles and their kerbs) into ``pygame.math.Vector2`` objects, rotates, zooms and
translates them one by one in Python, and draws the ~50 near the camera. :class:`TrackRenderer`
keeps all their vertices in one float64 array built once per track, transforms the whole array in
a few NumPy operations per frame and calls the same ``pygame.gfxdraw`` functions, with the same
float coordinates and colours, in the same order, for the polygons that can touch the picture.

Why the pixels are identical:

- Coordinates. ``Vector2.rotate_rad`` computes ``(c*x - s*y, s*x + c*y)`` in double precision with
  ``c, s`` from libm (and exact values near multiples of 90 degrees). We take ``c, s`` from pygame
  itself (``Vector2(1, 0).rotate_rad(angle)``) and evaluate the same expression element-wise in
  float64, then ``* zoom + translation`` as the original does: every vertex is bit-identical
  (``tests/envs/test_car.py`` checks this against ``Vector2`` directly).
- Which polygons. A polygon is drawn when the original draws it (any vertex within
  ``MAX_SHAPE_DIM`` of the window) and its bounding box reaches within ``CULL_MARGIN`` pixels of
  the part of the canvas that stays visible. The polygons skipped besides the original's lie
  wholly outside that part, where gfxdraw writes nothing that survives.
- The background. The playfield square is drawn with gfxdraw as in the original, except when it
  covers the visible canvas with ``CULL_MARGIN`` to spare; then every visible pixel would get the
  background colour, and filling the rows with the very pixel value gfxdraw writes does the same
  four times faster.
- The indicator bar. After the vertical flip the original paints the bottom ``INDICATOR_ROWS``
  rows black (``_render_indicators``), so nothing drawn into the top ``INDICATOR_ROWS`` rows of
  the unflipped canvas can be seen: polygons wholly inside them are skipped and the background
  fill (black or the playfield's colour) leaves them alone. (A clip rectangle would be simpler
  but is not exact: gfxdraw clips each antialiased edge to the clip rectangle before stepping
  along it, which moves its pixels.)
- Memory, not pixels: the background is written by NumPy rather than ``Surface.fill`` (see
  :func:`fill_rows`), so the canvas stays in cache for gfxdraw's blending and for smoothscale.
- The car (:class:`CarPainter`) is drawn with the original's pygame.draw calls and coordinates;
  only the per-vertex arithmetic is batched.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pygame
from gymnasium.envs.box2d.car_dynamics import SIZE, WHEEL_R, WHEEL_W, WHEEL_WHITE
from gymnasium.envs.box2d.car_racing import GRASS_DIM, MAX_SHAPE_DIM, PLAYFIELD, WINDOW_H, WINDOW_W
from pygame import gfxdraw

# Rows at the bottom of the finished frame that _render_indicators paints black
# (polygon from y = H - 5 * H / 40 down to H).
INDICATOR_ROWS = int(5 * WINDOW_H / 40.0)
# Pixels around the visible canvas within which a polygon is still drawn. gfxdraw truncates float
# coordinates to integers and its antialiased outline touches at most one pixel beside the edge,
# so 2 would do; 4 leaves room.
CULL_MARGIN = 4.0

# Vertices of the playfield and of the 400 grass squares, in the original's order (world units).
FIELD_VERTICES = np.array(
    [
        (PLAYFIELD, PLAYFIELD),
        (PLAYFIELD, -PLAYFIELD),
        (-PLAYFIELD, -PLAYFIELD),
        (-PLAYFIELD, PLAYFIELD),
    ]
)
GRASS_VERTICES = np.array(
    [
        [
            (GRASS_DIM * x + GRASS_DIM, GRASS_DIM * y + 0),
            (GRASS_DIM * x + 0, GRASS_DIM * y + 0),
            (GRASS_DIM * x + 0, GRASS_DIM * y + GRASS_DIM),
            (GRASS_DIM * x + GRASS_DIM, GRASS_DIM * y + GRASS_DIM),
        ]
        for x in range(-20, 20, 2)
        for y in range(-20, 20, 2)
    ]
)


def rotation(angle: float) -> tuple[float, float]:
    """(cos, sin) of ``angle`` (rad) exactly as ``pygame.math.Vector2.rotate_rad`` uses them."""
    cos, sin = pygame.math.Vector2(1.0, 0.0).rotate_rad(angle)
    return cos, sin


def transform(
    vertices: np.ndarray, zoom: float, translation: Sequence[float], angle: float
) -> np.ndarray:
    """World -> canvas pixels for ``vertices`` (..., 2), bit for bit as CarRacing does per vertex.

    ``CarRacing._draw_colored_polygon`` computes ``Vector2(v).rotate_rad(angle) * zoom +
    translation`` component by component; this is the same sequence of float64 operations.
    """
    cos, sin = rotation(angle)
    x = vertices[..., 0]
    y = vertices[..., 1]
    out = np.empty(vertices.shape, dtype=np.float64)
    out[..., 0] = (cos * x - sin * y) * zoom + translation[0]
    out[..., 1] = (sin * x + cos * y) * zoom + translation[1]
    return out


def fill_rows(canvas: pygame.Surface, top: int, pixel: int) -> None:
    """Set every pixel of ``canvas`` from row ``top`` down to the mapped value ``pixel``.

    The same as ``canvas.fill(pixel, (0, top, width, height - top))``, but written by NumPy: SDL's
    fill stores large rectangles with non-temporal (cache-bypassing) instructions, so the
    smoothscale that reads the canvas a moment later fetches it from main memory, which made it
    twice as slow (390 instead of 180 us for the 1000x700 scene); NumPy's ordinary stores leave
    the rows in cache.
    """
    if canvas.get_bytesize() != 4:  # a display of another depth: no uint32 view to fill
        canvas.fill(pixel, (0, top, canvas.get_width(), canvas.get_height() - top))
        return
    pixels = pygame.surfarray.pixels2d(canvas)  # (x, y) view; locks the canvas until deleted
    pixels.T[top:].fill(pixel)  # rows are contiguous in memory
    del pixels


class TrackRenderer:
    """Background, grass and road of one CarRacing env, drawn as ``CarRacing._render_road`` does.

    The canvas is a ``WINDOW_W x WINDOW_H`` surface kept from frame to frame (see
    :meth:`make_canvas`); the caller flips it and draws the indicators afterwards, as
    CarRacing._render does. Rows above :attr:`visible_rect` may hold anything: the indicator bar
    covers them.
    """

    visible_rect = pygame.Rect(0, INDICATOR_ROWS, WINDOW_W, WINDOW_H - INDICATOR_ROWS)

    def __init__(self) -> None:
        self._road_poly: list | None = None  # the env's road_poly list the arrays were built from
        self._n_road = 0
        self._road_colors: list = []  # the colour objects of road_poly (tile colours change)
        self._set_polygons(GRASS_VERTICES)
        self._fill_pixels: dict[tuple, int] = {}

    @staticmethod
    def make_canvas() -> pygame.Surface:
        """A surface like the one CarRacing._render creates for each frame."""
        return pygame.Surface((WINDOW_W, WINDOW_H))

    def _set_polygons(self, vertices: np.ndarray) -> None:
        """Keep ``vertices`` (P, 4, 2) with each polygon's centre and radius for the coarse cull."""
        self._vertices = vertices
        centre = vertices.mean(axis=1)
        self._centre_x = np.ascontiguousarray(centre[:, 0])
        self._centre_y = np.ascontiguousarray(centre[:, 1])
        self._radius = np.sqrt(((vertices - centre[:, None, :]) ** 2).sum(axis=2)).max(axis=1)

    def _sync_track(self, road_poly: list) -> None:
        """Rebuild the vertex arrays when the env has a new track (a new road_poly list)."""
        if road_poly is self._road_poly and len(road_poly) == self._n_road:
            return
        road = np.array([poly for poly, _ in road_poly], dtype=np.float64).reshape(-1, 4, 2)
        self._set_polygons(np.concatenate([GRASS_VERTICES, road]))
        self._road_colors = [color for _, color in road_poly]
        self._road_poly = road_poly
        self._n_road = len(road_poly)

    def _fill_pixel(self, canvas: pygame.Surface, color) -> int:
        """The mapped pixel value gfxdraw.filled_polygon writes for ``color`` on ``canvas``."""
        key = tuple(np.asarray(color).ravel().tolist())
        if key not in self._fill_pixels:
            probe = pygame.Surface((4, 4), 0, canvas)
            gfxdraw.filled_polygon(probe, [(-8, -8), (12, -8), (12, 12), (-8, 12)], color)
            self._fill_pixels[key] = probe.get_at_mapped((2, 2))
        return self._fill_pixels[key]

    def draw(
        self,
        canvas: pygame.Surface,
        road_poly: list,
        bg_color,
        grass_color,
        zoom: float,
        translation: Sequence[float],
        angle: float,
    ) -> None:
        """Draw playfield, grass and road onto ``canvas`` (the original's _render_road)."""
        self._sync_track(road_poly)
        cos, sin = rotation(angle)
        tx, ty = translation
        rect = self.visible_rect
        m = CULL_MARGIN

        # Where the visible canvas lies in the world: pixel p = R (v zoom) + t, so
        # v = R^T (p - t) / zoom.
        # Used only with margins far above rounding, to pick candidates and the fill shortcut.
        cx = 0.5 * (rect.left + rect.right) - tx
        cy = 0.5 * (rect.top + rect.bottom) - ty
        centre_x = (cos * cx + sin * cy) / zoom
        centre_y = (-sin * cx + cos * cy) / zoom
        reach = (0.5 * math.hypot(rect.width, rect.height) + 2 * m) / zoom  # world units

        # The playfield covers the visible canvas with margin: every visible pixel gets bg_color.
        if max(abs(centre_x), abs(centre_y)) + reach < PLAYFIELD:
            fill_rows(canvas, rect.top, self._fill_pixel(canvas, bg_color))
        else:
            fill_rows(canvas, rect.top, 0)  # the original draws onto a fresh (black) surface
            points = transform(FIELD_VERTICES, zoom, translation, angle).tolist()
            gfxdraw.aapolygon(canvas, points, bg_color)
            gfxdraw.filled_polygon(canvas, points, bg_color)

        # Coarse cull in the world: polygons whose circle reaches the canvas's circle.
        dx = self._centre_x - centre_x
        dy = self._centre_y - centre_y
        limit = self._radius + reach
        candidates = np.flatnonzero(dx * dx + dy * dy <= limit * limit)
        if len(candidates) == 0:
            return
        pixels = transform(self._vertices[candidates], zoom, translation, angle)  # (K, 4, 2)
        x0, x1, x2, x3 = (pixels[:, k, 0] for k in range(4))
        y0, y1, y2, y3 = (pixels[:, k, 1] for k in range(4))
        # The original's test: some vertex lies within MAX_SHAPE_DIM of the window.
        lo_x, hi_x = -MAX_SHAPE_DIM, WINDOW_W + MAX_SHAPE_DIM
        lo_y, hi_y = -MAX_SHAPE_DIM, WINDOW_H + MAX_SHAPE_DIM
        near = np.zeros(len(candidates), dtype=bool)
        for x, y in ((x0, y0), (x1, y1), (x2, y2), (x3, y3)):
            near |= (x >= lo_x) & (x <= hi_x) & (y >= lo_y) & (y <= hi_y)
        # Ours on top: the bounding box reaches the visible canvas.
        min_x = np.minimum(np.minimum(x0, x1), np.minimum(x2, x3))
        max_x = np.maximum(np.maximum(x0, x1), np.maximum(x2, x3))
        min_y = np.minimum(np.minimum(y0, y1), np.minimum(y2, y3))
        max_y = np.maximum(np.maximum(y0, y1), np.maximum(y2, y3))
        near &= (max_x >= rect.left - m) & (min_x <= rect.right + m)
        near &= (max_y >= rect.top - m) & (min_y <= rect.bottom + m)
        drawn = np.flatnonzero(near)

        # The road colours go to pygame as they are (float arrays or tuples): pygame truncates
        # each component as the original's ``[int(c) for c in color]`` does, and a tile's colour
        # changes in place when a wheel first touches it, so it is read anew every frame.
        n_grass = len(GRASS_VERTICES)
        road_colors = self._road_colors
        aapolygon = gfxdraw.aapolygon
        filled_polygon = gfxdraw.filled_polygon
        for i, points in zip(candidates[drawn].tolist(), pixels[drawn].tolist()):
            color = road_colors[i - n_grass] if i >= n_grass else grass_color
            aapolygon(canvas, points, color)
            filled_polygon(canvas, points, color)


class CarPainter:
    """The car's hull and wheels, drawn as ``car_dynamics.Car.draw`` does without skid marks.

    The original maps each vertex through Box2D's ``b2Transform * b2Vec2`` (float32 arithmetic in
    C++: ``(c*x - s*y) + p``), then through ``Vector2.rotate_rad``, zoom and translation in float64,
    one vertex at a time. We do the float32 step in NumPy float32 (same operations, same rounding;
    the fixtures' vertices and the wheels' white stripes are rounded to float32 first, as Box2D's
    b2Vec2 does) and the rest as :func:`transform`, then call ``pygame.draw.polygon`` in the
    original's order: per wheel its body then its white stripe, then the hull's four parts.
    """

    def __init__(self, car) -> None:
        self.car = car
        self._bodies = car.drawlist  # wheels, then hull
        colors = [[int(c * 255) for c in body.color] for body in self._bodies]
        is_wheel = ["phase" in body.__dict__ for body in self._bodies]
        # float32 vertices of every fixture, stacked, with the index of its body
        shapes, owners = [], []
        for b, body in enumerate(self._bodies):
            for fixture in body.fixtures:
                shapes.append(np.array(fixture.shape.vertices, dtype=np.float32))
                owners.append(b)
        self._local = np.concatenate(shapes)  # (V, 2)
        self._owner = np.repeat(owners, [len(shape) for shape in shapes])  # (V,)
        # the fixtures in drawing order: rows start:stop of _local, colour, body if a wheel
        self._fixtures = []
        start = 0
        for shape, b in zip(shapes, owners):
            self._fixtures.append((start, start + len(shape), colors[b], b if is_wheel[b] else -1))
            start += len(shape)
        self._wheels = [b for b, wheel in enumerate(is_wheel) if wheel]

    def draw(self, canvas: pygame.Surface, zoom: float, translation: Sequence[float], angle: float):
        """Draw hull and wheels onto ``canvas``; same arguments as Car.draw."""
        bodies = self._bodies
        transforms = [body.transform for body in bodies]
        rot = np.array(  # c, s, px, py of each body, float32 as Box2D keeps them
            [(xf.q.c, xf.q.s, xf.position[0], xf.position[1]) for xf in transforms],
            dtype=np.float32,
        )
        # the white stripes, appended after the fixtures' vertices: 4 rows each
        stripe_rows: list[tuple[float, float]] = []
        stripe_start = {}
        for b in self._wheels:
            stripe = _wheel_stripe(bodies[b].phase)
            if stripe is not None:
                stripe_start[b] = len(self._local) + len(stripe_rows)
                stripe_rows.extend(stripe)
        if stripe_rows:
            local = np.concatenate((self._local, np.array(stripe_rows, dtype=np.float32)))
            owner = np.concatenate((self._owner, np.repeat(list(stripe_start), 4)))
        else:
            local, owner = self._local, self._owner
        c, s, px, py = rot[owner].T
        world = np.empty(local.shape, dtype=np.float64)
        world[:, 0] = (c * local[:, 0] - s * local[:, 1]) + px  # float32, as b2Mul
        world[:, 1] = (s * local[:, 0] + c * local[:, 1]) + py
        points = transform(world, zoom, translation, angle).tolist()

        polygon = pygame.draw.polygon
        for start, stop, color, wheel in self._fixtures:
            polygon(canvas, color, points[start:stop])
            if wheel in stripe_start:
                start = stripe_start[wheel]
                polygon(canvas, WHEEL_WHITE, points[start : start + 4])


def _wheel_stripe(phase: float) -> list[tuple[float, float]] | None:
    """The white stripe of a wheel at ``phase`` (rad): 4 vertices in float64, or None; as Car.draw.

    The caller rounds them to float32, as Box2D's b2Vec2 does with the original's tuples.
    """
    a1 = phase
    a2 = phase + 1.2  # radians
    s1 = math.sin(a1)
    s2 = math.sin(a2)
    c1 = math.cos(a1)
    c2 = math.cos(a2)
    if s1 > 0 and s2 > 0:
        return None
    if s1 > 0:
        c1 = np.sign(c1)
    if s2 > 0:
        c2 = np.sign(c2)
    return [
        (-WHEEL_W * SIZE, +WHEEL_R * c1 * SIZE),
        (+WHEEL_W * SIZE, +WHEEL_R * c1 * SIZE),
        (+WHEEL_W * SIZE, +WHEEL_R * c2 * SIZE),
        (-WHEEL_W * SIZE, +WHEEL_R * c2 * SIZE),
    ]
