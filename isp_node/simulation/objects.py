"""Non-head objects for the "irrelevant" localizer class: a bottle phantom, a knee, and empty noise.

Volumes come with a 4x4 voxel -> LPS mm affine, like the head templates, so the
localizer simulator samples slices from them the same way. Intensities are in
the T1 template units of ``contrast.py`` (white matter = 1): water-like fluid
and CSF-like tissue are dark, fat and fatty marrow bright, cortical bone,
tendon and plastic near zero. A ``ContrastMap`` built with ``reference=1``
therefore gives them a T2 or PD look as well.

Patient orientation is supine: gravity points to +y (posterior), so an oil
layer or an air bubble in a bottle sits on the anterior side.
"""

import functools

import numpy as np
from scipy import ndimage

FAT = 1.15
BONE = 0.06


def _grid(half_extent_mm: np.ndarray, spacing: float, centre: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Open-grid LPS coordinates (x, y, z broadcastable) of a box around ``centre`` and its affine."""
    counts = np.ceil(2 * half_extent_mm / spacing).astype(int) + 1
    origin = centre - (counts - 1) / 2 * spacing
    axes = [(origin[d] + spacing * np.arange(counts[d])).astype(np.float32) for d in range(3)]
    coords = [a.reshape([-1 if d == i else 1 for d in range(3)]) for i, a in enumerate(axes)]
    affine = np.eye(4)
    affine[:3, :3] *= spacing
    affine[:3, 3] = origin
    return coords, affine


def _occupancy(distance: np.ndarray, spacing: float) -> np.ndarray:
    """Partial-volume fraction inside a surface from an (approximate) signed distance in mm."""
    return np.clip(0.5 - distance / np.float32(spacing), 0.0, 1.0).astype(np.float32)


def _ellipsoid(x: np.ndarray, y: np.ndarray, z: np.ndarray, centre, semi) -> np.ndarray:
    """Approximate signed distance (mm) to an axis-aligned ellipsoid."""
    r = np.sqrt(((x - centre[0]) / semi[0]) ** 2 + ((y - centre[1]) / semi[1]) ** 2 + ((z - centre[2]) / semi[2]) ** 2)
    return (r - 1.0) * np.float32(min(semi))


def _union(*distances: np.ndarray, blend_mm: float = 12.0) -> np.ndarray:
    """Signed distance of the union of shapes, rounded over ``blend_mm`` where they meet (polynomial smooth min)."""
    def smooth_min(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        h = np.maximum(blend_mm - np.abs(a - b), 0.0) / blend_mm
        return np.minimum(a, b) - h * h * (blend_mm / 4)
    return functools.reduce(smooth_min, distances)


def _paint(volume: np.ndarray, occupancy: np.ndarray, value: float | np.ndarray) -> None:
    """Blend ``value`` into ``volume`` where ``occupancy`` > 0 (in place, on a volume this module owns)."""
    volume *= 1.0 - occupancy
    volume += occupancy * value


def cylinder_phantom(rng: np.random.Generator, spacing_mm: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """A plastic bottle of doped water (sometimes with an oil layer, air bubble, rods, spheres, a hole plate).

    100-200 mm in diameter, 160-300 mm long, lying along the bore (S-I) or across it (L-R).
    """
    radius, half_length = rng.uniform(50, 100), rng.uniform(80, 150)
    wall = rng.uniform(2.0, 5.0)
    along_z = rng.uniform() < 0.7
    offset = rng.uniform(-20, 20, size=3)
    half = np.array([half_length, radius, radius] if not along_z else [radius, radius, half_length]) + 8
    (x, y, z), affine = _grid(half, spacing_mm, offset)
    x, y, z = x - offset[0], y - offset[1], z - offset[2]
    along, across = (z, x) if along_z else (x, z)

    # The plastic wall gives no signal: only the fluid inside it is drawn.
    inner = np.maximum(np.sqrt(across ** 2 + y ** 2) - radius, np.abs(along) - half_length) + wall
    volume = np.zeros(np.broadcast_shapes(x.shape, y.shape, z.shape), dtype=np.float32)
    water = rng.uniform(0.2, 1.1)
    fluid = np.broadcast_to(np.float32(water), volume.shape)
    if rng.uniform() < 0.3:  # oil floats on water, towards anterior
        level = rng.uniform(-0.6, 0.2) * radius
        fluid = np.where(y < level, np.float32(rng.uniform(1.1, 1.3)), np.float32(water))
    _paint(volume, _occupancy(inner, spacing_mm), fluid)
    if rng.uniform() < 0.4:  # air bubble against the anterior wall
        depth = rng.uniform(3, 15)
        _paint(volume, _occupancy(np.maximum(inner, y - (-radius + wall + depth)), spacing_mm), 0.0)

    if rng.uniform() < 0.6:
        for _ in range(int(rng.integers(0, 4))):  # rods parallel to the axis
            r = rng.uniform(3, 15)
            c1, c2 = rng.uniform(-1, 1, size=2) * (radius - wall - r) / np.sqrt(2)
            rod = np.maximum(np.sqrt((across - c1) ** 2 + (y - c2) ** 2) - r, np.abs(along) - 0.8 * half_length)
            _paint(volume, _occupancy(rod, spacing_mm), rng.choice([0.0, rng.uniform(0.1, 1.3)]))
        for _ in range(int(rng.integers(0, 4))):  # spheres
            r = rng.uniform(5, 20)
            c = rng.uniform(-1, 1, size=3) * [0.7 * half_length, (radius - r) / 2, (radius - r) / 2]
            sphere = np.sqrt((along - c[0]) ** 2 + (across - c[1]) ** 2 + (y - c[2]) ** 2) - r
            _paint(volume, _occupancy(sphere, spacing_mm), rng.uniform(0.1, 1.3))
        if rng.uniform() < 0.5:  # plastic plate across the bottle with a grid of holes
            position, thickness, pitch = rng.uniform(-0.6, 0.6) * half_length, rng.uniform(4, 10), rng.uniform(6, 16)
            plate = np.maximum(inner, np.abs(along - position) - thickness / 2)
            holes = np.cos(2 * np.pi * across / pitch) * np.cos(2 * np.pi * y / pitch) > 0.3
            _paint(volume, _occupancy(plate, spacing_mm) * ~holes, 0.0)
    return volume, affine


def knee_like(rng: np.random.Generator, spacing_mm: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """An extended knee in a knee coil: femur, tibia, fibula, patella in muscle and subcutaneous fat.

    Bones have a dark cortex and bright fatty marrow, as on MR; the leg runs
    along S-I, fades out beyond 70-95 mm either side of the joint (coil
    sensitivity), is 110-160 mm across and may be slightly flexed.
    """
    size = rng.uniform(0.85, 1.15)
    lateral = rng.choice([-1.0, 1.0])  # +x (patient left) for a left knee
    offset = rng.uniform(-15, 15, size=3)
    half = np.array([95, 95, 140]) * max(size, 1.0)
    (x, y, z), affine = _grid(half, spacing_mm, offset)
    x, y, z = x - offset[0], y - offset[1], z - offset[2]
    x, y, z = x / size, y / size, z / size  # anatomy below is written for an average knee
    spacing_mm = spacing_mm / size

    # Slight flexion: the lower leg turns about the L-R axis through the joint.
    angle = np.radians(rng.uniform(0, 15)) * np.clip(-z / 30.0, 0.0, 1.0)
    cos, sin = np.cos(angle), np.sin(angle)
    yl, zl = y * cos - z * sin, y * sin + z * cos

    # Skin outline: an ellipse whose size and centre change along the leg (thigh, knee, calf).
    levels = np.array([-140, -60, -20, 0, 30, 80, 140], dtype=np.float32)
    width = np.interp(zl, levels, np.array([45, 55, 55, 55, 56, 66, 75]) * rng.uniform(0.9, 1.1, 7))
    depth = np.interp(zl, levels, np.array([48, 58, 55, 50, 52, 62, 70]) * rng.uniform(0.9, 1.1, 7))
    middle = np.interp(zl, levels, np.array([8, 12, 8, 0, 0, 0, 0], dtype=np.float32))
    outline = np.sqrt((x / width) ** 2 + ((yl - middle) / depth) ** 2)
    fat_mm = rng.uniform(5, 15)
    volume = np.zeros(outline.shape, dtype=np.float32)
    _paint(volume, _occupancy((outline - 1) * np.minimum(width, depth), spacing_mm), np.float32(FAT))
    muscle = _occupancy((outline - 1) * np.minimum(width, depth) + fat_mm, spacing_mm)
    _paint(volume, muscle, _muscle_texture(volume.shape, rng))

    marrow = rng.uniform(0.95, 1.2)
    femur = _union(
        np.maximum(np.sqrt(x ** 2 + (y - 2) ** 2) - 15, 40 - z),  # shaft
        _ellipsoid(x, y, z, (0, -6, 30), (30, 16, 18)),  # trochlea
        _ellipsoid(x, y, z, (-20, 6, 20), (19, 28, 19)),  # condyles
        _ellipsoid(x, y, z, (20, 6, 20), (19, 28, 19)), blend_mm=15)
    tibia = _union(
        _ellipsoid(x, yl, zl, (0, 6, -16), (38, 27, 12)),  # plateau
        np.maximum(np.sqrt(x ** 2 + (yl - 4) ** 2) - 13, zl + 30), blend_mm=25)  # shaft
    fibula = _union(_ellipsoid(x, yl, zl, (lateral * 30, 20, -38), (10, 10, 12)),
                    np.maximum(np.sqrt((x - lateral * 31) ** 2 + (yl - 21) ** 2) - 6, zl + 38), blend_mm=6)
    patella = _ellipsoid(x, y, z, (0, -38, 34), (22, 10, 20))
    # Patellar tendon (patella to tibial tuberosity) and fat pad behind it; popliteal fat behind the joint.
    tendon = np.maximum(np.abs(x) - 12, np.maximum(np.abs(yl + 37 - 0.1 * zl) - 3.5, np.abs(zl + 8) - 24))
    _paint(volume, _occupancy(_ellipsoid(x, yl, zl, (0, -22, -6), (22, 12, 18)), spacing_mm), np.float32(FAT))
    _paint(volume, _occupancy(_ellipsoid(x, y, zl, (0, 38, 0), (22, 14, 45)), spacing_mm), np.float32(FAT))
    _paint(volume, _occupancy(tendon, spacing_mm), np.float32(BONE))
    cartilage = rng.uniform(0.45, 0.65)
    for bone, cortex_mm in ((femur, 2.5), (tibia, 2.0), (fibula, 1.5), (patella, 1.5)):
        _paint(volume, _occupancy(bone - 2.0, spacing_mm) * (np.abs(zl) < 22), np.float32(cartilage))
        _paint(volume, _occupancy(bone, spacing_mm), np.float32(BONE))
        _paint(volume, _occupancy(bone + cortex_mm, spacing_mm), np.float32(marrow))

    coil = np.exp(-np.maximum(np.abs(z) - rng.uniform(70, 95) / size, 0) ** 2 / (2 * (20.0 / size) ** 2))
    return (volume * coil.astype(np.float32)).astype(np.float32), affine


def _muscle_texture(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Muscle intensity with thin fat septa between muscle bellies (a level set of smooth noise)."""
    coarse = rng.standard_normal([max(s // 12, 2) for s in shape]).astype(np.float32)
    smooth = ndimage.zoom(coarse, [s / c for s, c in zip(shape, coarse.shape)], order=1, grid_mode=True,
                          mode="nearest")[tuple(slice(0, s) for s in shape)]
    septa = np.clip(1.0 - np.abs(smooth) / 0.12, 0.0, 1.0)
    base = np.float32(rng.uniform(0.45, 0.6))
    return base + septa * (np.float32(FAT) - base) * np.float32(0.8)


def pure_noise(shape: tuple[int, ...], rng: np.random.Generator, sigma: float = 1.0) -> np.ndarray:
    """A magnitude image of nothing: Rayleigh noise with slow shading, sometimes an RF zipper line."""
    real = rng.standard_normal(shape, dtype=np.float32)
    imag = rng.standard_normal(shape, dtype=np.float32)
    image = np.hypot(real, imag) * np.float32(sigma)
    grids = np.meshgrid(*[np.linspace(-1, 1, s, dtype=np.float32) for s in shape], indexing="ij")
    tilt = rng.uniform(-0.3, 0.3, size=len(shape)).astype(np.float32)
    image *= 1.0 + sum(t * g for t, g in zip(tilt, grids))
    if len(shape) >= 2 and rng.uniform() < 0.3:  # RF interference: a bright line across the image
        index = [slice(None)] * len(shape)
        axis = int(rng.integers(len(shape)))
        index[axis] = int(rng.integers(shape[axis]))
        image[tuple(index)] += np.float32(sigma * rng.uniform(2, 6)) * rng.random(image[tuple(index)].shape,
                                                                                      dtype=np.float32)
    return image.astype(np.float32)
