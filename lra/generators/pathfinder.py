"""Pathfinder generator: snakes of dashes on a dark background, two markers; is there a path between them?

Every image holds two target snakes of `contour_length` dashes ("paddles") and `n_distractors` snakes of
`distractor_length` dashes. A snake starts at a random point and direction; each next dash starts `margin`
pixels beyond the previous one's end, turned by an angle drawn from a grid over
[-continuity * pi/4, continuity * pi/4] with weight cos^2(turn) (smooth, mostly straight contours). No dash
comes closer than 2 * thickness + margin to another snake's dashes (or to its own, but the previous),
and all stay `border` pixels inside the window. Two discs of radius `marker_radius` are drawn on snake ends
at least `seed_distance` apart: label 1 when they sit on the two ends of the same target snake, label 0 when
they sit on ends of the two different target snakes (so each class shows the same kinds of objects).
Dashes are drawn with intensity `contrast`, markers with 1, at 4x resolution and box-averaged (anti-aliased).

Output, in the release layout: OUT/curv_contour_length_14/imgs/<batch>/sample_<k>.png (8-bit grayscale) and
OUT/curv_contour_length_14/metadata/<batch>.npy, whose lines read
`imgs/<batch> sample_<k>.png <k> <label> <continuity> <contour_length> <distractor_length> <paddle_length>
<thickness> <margin> 1`. Image i is drawn from its own generator seeded by (seed, i): the output does not
depend on the number of worker processes. Labels are balanced exactly within every batch of images.
"""
from __future__ import annotations

import math
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import process_pool

LEVEL = "curv_contour_length_14"
BATCH = 1000  # images per imgs/<batch> folder
SUPERSAMPLE = 4
N_TURNS = 9
SEPARATION = 1.0  # snakes keep 2 * thickness + SEPARATION * margin apart
GRID = 2  # occupancy cells per pixel


@dataclass(frozen=True)
class PathfinderSpec:
    """Generator parameters (lengths in output pixels)."""

    window: int = 32
    contour_length: int = 14
    distractor_length: int = 4
    n_distractors: int = 5
    paddle_length: float = 2.0
    thickness: float = 0.5  # half the stroke width
    margins: Tuple[float, ...] = (1.0,)  # gap between consecutive dashes, one drawn per image
    contrast: float = 0.75
    marker_radius: float = 1.5
    seed_distance: float = 7.0
    continuity: float = 1.0
    border: float = 1.0


SPECS: Dict[int, PathfinderSpec] = {
    32: PathfinderSpec(),
    64: PathfinderSpec(window=64, paddle_length=3.0, thickness=1.0, margins=(1.5, 2.0), marker_radius=2.25,
                       seed_distance=13.0, continuity=1.4, border=1.5),
    128: PathfinderSpec(window=128, paddle_length=5.0, thickness=1.5, margins=(2.0, 3.0), marker_radius=3.0,
                        seed_distance=20.0, continuity=1.8, border=2.0),
}


@dataclass
class Sample:
    """One image (S, S) uint8, its label, the snakes' dashes [(n, 2, 2)] (targets first) and the markers."""

    image: np.ndarray
    label: int
    margin: float
    snakes: List[np.ndarray] = field(default_factory=list)
    markers: np.ndarray = field(default_factory=lambda: np.zeros((2, 2)))
    marked: List[Tuple[int, int]] = field(default_factory=list)  # (snake, 0 = start | 1 = end) per marker


def point_segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distances (m, M) from points p (m, 2) to segments a (M, 2) -> b (M, 2)."""
    ab = b - a
    ap = p[:, None, :] - a[None]
    t = np.clip((ap * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-12), 0.0, 1.0)
    return np.linalg.norm(ap - t[..., None] * ab, axis=-1)


class Canvas:
    """Occupancy images (GRID cells per pixel) of the room taken so far, and the fit test.

    `taken` marks every cell within `sep` of a finished snake's dash (and, for distractors, the room kept
    around the target ends); `own` the same for the snake being drawn, but its last dash, which the next
    dash may approach. Both are PIL images, stamped with round-capped thick lines.
    """

    def __init__(self, spec: PathfinderSpec, margin: float):
        from PIL import Image, ImageDraw

        self.spec, self.margin = spec, margin
        self.sep = 2 * spec.thickness + SEPARATION * margin
        self.clear = spec.marker_radius + spec.thickness + margin  # room kept around marked ends
        self._new = lambda: Image.new("L", (spec.window * GRID, spec.window * GRID), 0)
        self._draw = ImageDraw.Draw
        self.taken, self.own = self._new(), self._new()
        self._taken, self._own = self.taken.load(), self.own.load()
        self.n_probe = max(2, int(math.ceil(spec.paddle_length / max(spec.thickness, 0.5))) + 1)

    def fits(self, a: Tuple[float, float], b: Tuple[float, float]) -> bool:
        """Whether dash a -> b stays `border` inside the window and off the taken room."""
        lo, hi = self.spec.border, self.spec.window - self.spec.border
        if not (lo <= a[0] <= hi and lo <= a[1] <= hi and lo <= b[0] <= hi and lo <= b[1] <= hi):
            return False
        taken, own, m = self._taken, self._own, self.n_probe - 1
        for i in range(m + 1):
            xy = (int((a[0] + (b[0] - a[0]) * i / m) * GRID), int((a[1] + (b[1] - a[1]) * i / m) * GRID))
            if taken[xy] or own[xy]:
                return False
        return True

    def stamp(self, which: str, a: Sequence[float], b: Sequence[float], radius: float) -> None:
        """Mark the cells within `radius` of segment a -> b in the `which` ("taken" | "own") image."""
        draw = self._draw(getattr(self, which))
        r = radius * GRID
        (ax, ay), (bx, by) = (a[0] * GRID, a[1] * GRID), (b[0] * GRID, b[1] * GRID)
        draw.line([(ax, ay), (bx, by)], fill=255, width=max(1, round(2 * r)))
        for x, y in ((ax, ay), (bx, by)):
            draw.ellipse([x - r, y - r, x + r, y + r], fill=255)

    def restore(self, taken) -> None:
        """Go back to an earlier copy of `taken`."""
        self.taken = taken.copy()
        self._taken = self.taken.load()

    def clear_own(self) -> None:
        self.own = self._new()
        self._own = self.own.load()


def turn_grid(spec: PathfinderSpec) -> Tuple[np.ndarray, np.ndarray]:
    """Candidate turns and their probabilities (cos^2 of the turn)."""
    turns = np.linspace(-1.0, 1.0, N_TURNS) * spec.continuity * math.pi / 4
    w = np.cos(turns) ** 2
    return turns, w / w.sum()


def draw_snake(rng: np.random.Generator, canvas: Canvas, n: int, tries: int = 20) -> Optional[np.ndarray]:
    """n dashes (n, 2, 2) placed on `canvas` (its room then taken), or None when `tries` starts all failed."""
    spec = canvas.spec
    turns, p = turn_grid(spec)
    logp = -np.log(p)  # ascending -log p - Gumbel noise: a weighted draw of every candidate without replacement
    for _ in range(tries):
        canvas.clear_own()
        x, y = rng.uniform(spec.border, spec.window - spec.border, 2)
        theta = rng.uniform(0.0, 2 * math.pi)
        dashes: List[Tuple[Tuple[float, float], Tuple[float, float]]] = []
        for k in range(n):
            order = [0.0] if k == 0 else turns[np.argsort(logp - rng.gumbel(size=N_TURNS))]
            for turn in order:
                dx, dy = math.cos(theta + turn), math.sin(theta + turn)
                if k:
                    x, y = dashes[-1][1][0] + canvas.margin * dx, dashes[-1][1][1] + canvas.margin * dy
                a, b = (x, y), (x + spec.paddle_length * dx, y + spec.paddle_length * dy)
                if canvas.fits(a, b):
                    if dashes:
                        canvas.stamp("own", dashes[-1][0], dashes[-1][1], canvas.sep)
                    theta += turn
                    dashes.append((a, b))
                    break
            else:
                break
        if len(dashes) == n:
            out = np.array(dashes, dtype=np.float64)
            for a, b in dashes:
                canvas.stamp("taken", a, b, canvas.sep)
            return out
    return None


def layout(rng: np.random.Generator, spec: PathfinderSpec, label: int, tries: int = 200) -> Sample:
    """The geometry of one image with the given label (re-drawn until the two targets and markers fit).

    A distractor that finds no room is left out, so an image holds up to `n_distractors` of them (the same
    procedure for both labels: the markers are chosen after every end has its room).
    """
    for _ in range(tries):
        margin = float(spec.margins[rng.integers(len(spec.margins))])
        canvas = Canvas(spec, margin)
        first = draw_snake(rng, canvas, spec.contour_length)
        if first is None:
            continue
        _keep_room(canvas, first)
        second = _second_target(rng, canvas, first)
        if second is None:
            continue
        _keep_room(canvas, second)
        ends = np.array([[t[0, 0], t[-1, 1]] for t in (first, second)])  # (snake, end, xy)
        marked = [(0, 0), (0, 1)] if label else [(0, int(rng.integers(2))), (1, int(rng.integers(2)))]
        markers = np.array([ends[s, e] for s, e in marked])
        if np.linalg.norm(markers[0] - markers[1]) < spec.seed_distance:
            continue
        distractors = [draw_snake(rng, canvas, spec.distractor_length, tries=10) for _ in range(spec.n_distractors)]
        snakes = [first, second] + [d for d in distractors if d is not None]
        return Sample(np.zeros(0, np.uint8), label, margin, snakes, markers, marked)
    raise RuntimeError(f"no layout fits the window {spec.window} in {tries} tries; loosen the PathfinderSpec")


def _keep_room(canvas: Canvas, snake: np.ndarray) -> None:
    """Reserve a marker's room around both ends of a target snake."""
    for end in (snake[0, 0], snake[-1, 1]):
        canvas.stamp("taken", end, end, canvas.clear)


def _second_target(rng: np.random.Generator, canvas: Canvas, first: np.ndarray, tries: int = 5) -> Optional[np.ndarray]:
    """The second target snake, its ends a marker's room away from the first snake."""
    before = canvas.taken.copy()
    for _ in range(tries):
        second = draw_snake(rng, canvas, canvas.spec.contour_length)
        if second is None:
            return None
        ends = np.array([second[0, 0], second[-1, 1]])
        if point_segment_distance(ends, first[:, 0], first[:, 1]).min() >= canvas.clear:
            return second
        canvas.restore(before)
    return None


def render(sample: Sample, spec: PathfinderSpec) -> np.ndarray:
    """Anti-aliased uint8 image (S, S): dashes at `contrast`, markers at full intensity."""
    from PIL import Image, ImageDraw

    f = SUPERSAMPLE
    img = Image.new("L", (spec.window * f, spec.window * f), 0)
    draw = ImageDraw.Draw(img)
    width = max(1, round(2 * spec.thickness * f))
    ink = round(255 * spec.contrast)
    for snake in sample.snakes:
        for a, b in snake * f - 0.5:
            draw.line([tuple(a), tuple(b)], fill=ink, width=width)
    r = spec.marker_radius * f
    for x, y in sample.markers * f - 0.5:
        draw.ellipse([x - r, y - r, x + r, y + r], fill=255)
    return np.asarray(img.reduce(f), dtype=np.uint8)


def draw_sample(seed: int, index: int, spec: PathfinderSpec) -> Sample:
    """Image `index` of the data set for `seed`: its label (balanced per batch), geometry and pixels."""
    batch, k = divmod(index, BATCH)
    labels = np.random.default_rng([seed, batch, 1 << 20]).permutation(BATCH) % 2
    sample = layout(np.random.default_rng([seed, index]), spec, int(labels[k]))
    sample.image = render(sample, spec)
    return sample


def _write_block(args: Tuple[str, int, int, int, PathfinderSpec]) -> List[Tuple[int, int, float]]:
    """Draw and save images [lo, hi); returns (index, label, margin) for the metadata."""
    from PIL import Image

    root, seed, lo, hi, spec = args
    out = []
    for i in range(lo, hi):
        s = draw_sample(seed, i, spec)
        batch, k = divmod(i, BATCH)
        Image.fromarray(s.image, mode="L").save(Path(root) / "imgs" / str(batch) / f"sample_{k}.png")
        out.append((i, s.label, s.margin))
    return out


def metadata_line(index: int, label: int, margin: float, spec: PathfinderSpec) -> str:
    batch, k = divmod(index, BATCH)
    return (f"imgs/{batch} sample_{k}.png {k} {label} {spec.continuity:g} {spec.contour_length} "
            f"{spec.distractor_length} {spec.paddle_length:g} {spec.thickness:g} {margin:g} 1")


def generate(out: str, size: int, n: int, seed: int = 0, workers: Optional[int] = None, block: int = 50) -> Path:
    """Write n images of `size` into out/curv_contour_length_14 (built aside, then renamed); returns that path."""
    if size not in SPECS:
        raise ValueError(f"size must be one of {sorted(SPECS)}, got {size!r}")
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    spec = SPECS[size]
    dest = Path(out).expanduser() / LEVEL
    if dest.exists():
        raise FileExistsError(f"{dest} exists; remove it or choose another --out")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{LEVEL}.", suffix=".tmp"))
    try:
        for b in range(-(-n // BATCH)):
            (tmp / "imgs" / str(b)).mkdir(parents=True)
        (tmp / "metadata").mkdir()
        jobs = [(str(tmp), seed, lo, min(lo + block, n), spec) for lo in range(0, n, block)]
        workers = workers or min(os.cpu_count() or 1, 8)
        rows = _run(jobs, workers)
        for b in range(-(-n // BATCH)):
            lines = [metadata_line(i, lab, m, spec) for i, lab, m in rows if i // BATCH == b]
            (tmp / "metadata" / f"{b}.npy").write_text("\n".join(lines) + "\n")
        os.replace(tmp, dest)
        return dest
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _run(jobs: Sequence[tuple], workers: int) -> List[Tuple[int, int, float]]:
    if workers <= 1 or len(jobs) == 1:
        return [r for job in jobs for r in _write_block(job)]
    with process_pool(workers) as pool:
        return [r for part in pool.imap(_write_block, jobs) for r in part]
