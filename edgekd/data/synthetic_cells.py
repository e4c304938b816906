"""Synthetic bright-field lymphocyte images (B, T4, T8) for testing the pipeline without real data.

Each image is a 64x64 uint8 frame with one cell near the centre on a mid-grey background: a dark
membrane rim with a faint bright halo outside it, a darker textured nucleus and dark cytoplasmic
granules. The three classes differ only in overlapping *distributions* of

- cell size (B smallest, T4 largest, T8 in between),
- nucleus-to-cytoplasm ratio (B highest),
- granularity: number of cytoplasmic granules (T8 most) and nucleus texture scale,
- membrane roughness (B roughest),

under nuisances that do not depend on the class: defocus blur, an uneven illumination gradient,
vignetting, shot and read noise, a random offset of the cell from the centre (sd 6 px, at most
14 px: a translation-invariant teacher copes, a tiny student with a dense head finds it harder),
small debris and partial neighbouring cells at the border. `difficulty` scales the distance between the class means
(2.0 = half the separation), so 1.0 is the tuned default.

`CellDomain` sets how one source of cells differs from another, as a public dataset differs from a lab's
cells: class priors, illumination (brightness and gradient), defocus blur, cell scale, noise and staining
contrast. The default domain is the generator as it always was (same arrays, bit for bit); a teacher pool
from another domain is a teacher "trained elsewhere" that is not the lab's distribution under another seed.

Everything is drawn from one `np.random.Generator` per call, in a fixed order and in chunks, so the
same (n, seed, difficulty, domain) always gives identical arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SIZE = 64
CLASS_NAMES = ["B", "T4", "T8"]
_CHUNK = 512  # images rendered at once; bounds memory at ~ a few (512, 64, 64) float32 arrays

# Class-conditional means (index = label). Chosen so B vs T is easier than T4 vs T8.
_RADIUS = np.array([10.25, 13.9, 12.25])  # px
_RADIUS_SD = 0.9
_NC_RATIO = np.array([0.845, 0.61, 0.745])  # nucleus radius / cell radius
_NC_SD = 0.035
_ROUGH = np.array([0.058, 0.022, 0.033])  # relative amplitude of membrane harmonics
_ROUGH_SD = 0.008
_GRANULES = np.array([0.0, 0.55, 6.0])  # Poisson mean of dark cytoplasmic granules
_TEX_FREQ = np.array([0.28, 0.10, 0.22])  # centre frequency (cycles/px) of nucleus texture
_TEX_FREQ_SD = 0.02
_MAX_GRANULES = 8
_HARMONICS = (2, 3, 4, 5, 6, 7)

_ANGLE_BINS = 256
_ANGLES = (np.arange(_ANGLE_BINS, dtype=np.float32) + 0.5) * (2 * np.pi / _ANGLE_BINS) - np.pi
_yy, _xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
_fy = np.fft.fftfreq(SIZE).astype(np.float32)[:, None]
_fx = np.fft.rfftfreq(SIZE).astype(np.float32)[None, :]
_FREQ = np.sqrt(_fy**2 + _fx**2)  # (64, 33) radial frequency of rfft2 bins


@dataclass(frozen=True)
class CellDomain:
    """How a source of cells looks; the defaults are the lab's (the generator's original) settings.

    class_priors: share of B, T4, T8 (None: a near-equal split); brightness: gain on the whole frame;
    gradient: the largest illumination gradient (0.12 by default); blur: range of the defocus sigma in px;
    scale: gain on the cell radius; noise: gain on shot and read noise; contrast: gain on the staining
    contrast (cytoplasm, nucleus, nucleus texture and granules against the background).
    """

    class_priors: tuple[float, float, float] | None = None
    brightness: float = 1.0
    gradient: float = 0.12
    blur: tuple[float, float] = (0.3, 1.0)
    scale: float = 1.0
    noise: float = 1.0
    contrast: float = 1.0

    def __post_init__(self) -> None:
        if self.class_priors is not None:
            p = np.asarray(self.class_priors, float)
            if p.shape != (3,) or (p < 0).any() or not np.isclose(p.sum(), 1.0):
                raise ValueError(f"class_priors must be 3 shares (B, T4, T8) >= 0 summing to 1, got {self.class_priors}")
        lo, hi = self.blur
        if not 0.0 <= lo <= hi <= 4.0:
            raise ValueError(f"blur must be (min, max) with 0 <= min <= max <= 4 px, got {self.blur}")
        for name in ("brightness", "scale", "noise", "contrast"):
            if not 0.0 < getattr(self, name) <= 4.0:
                raise ValueError(f"{name} must be in (0, 4], got {getattr(self, name)}")
        if not 0.0 <= self.gradient <= 0.5:
            raise ValueError(f"gradient must be in [0, 0.5], got {self.gradient}")


LAB = CellDomain()


def _class_param(rng: np.random.Generator, means: np.ndarray, sd: float, labels: np.ndarray, difficulty: float) -> np.ndarray:
    """Draw one value per image around its class mean, with class separation shrunk by `difficulty`."""
    centre = means.mean()
    mu = centre + (means[labels] - centre) / difficulty
    return (mu + sd * rng.standard_normal(labels.shape[0])).astype(np.float32)


def _shape_field(
    cx: np.ndarray, cy: np.ndarray, radius: np.ndarray, aspect: np.ndarray, angle: np.ndarray, rough_amp: np.ndarray, phases: np.ndarray
) -> np.ndarray:
    """Signed distance (px, negative inside) to a rough ellipse boundary, per image: (c, 64, 64).

    The boundary r * (1 + sum_k a_k cos(k theta + phi_k)) is tabulated at _ANGLE_BINS angles per image
    and looked up by each pixel's angle: one gather instead of a cos per harmonic per pixel.
    """
    c = cx.shape[0]
    dx = _xx[None] - cx[:, None, None]
    dy = _yy[None] - cy[:, None, None]
    ca, sa = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    u = dx * ca + dy * sa
    v = (-dx * sa + dy * ca) / aspect[:, None, None]
    rho = np.sqrt(u * u + v * v)
    k = np.array(_HARMONICS, np.float32)
    table = 1.0 + np.einsum(
        "ck,cka->ca", rough_amp / np.sqrt(k), np.cos(k[None, :, None] * _ANGLES[None, None] + phases[:, :, None])
    ).astype(np.float32)
    idx = ((np.arctan2(v, u) + np.pi) * (_ANGLE_BINS / (2 * np.pi))).astype(np.intp) % _ANGLE_BINS
    boundary = np.take_along_axis(table, idx.reshape(c, -1), axis=1).reshape(rho.shape)
    return rho - radius[:, None, None] * boundary


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -30, 30)))


def _gauss_otf(sigma: float) -> np.ndarray:
    """Frequency response of a unit-area Gaussian blur of width sigma (px) on the rfft2 grid."""
    return np.exp(-2 * np.pi**2 * sigma**2 * _FREQ**2).astype(np.float32)


def _splat(out: np.ndarray, rows: np.ndarray, x: np.ndarray, y: np.ndarray, mass: np.ndarray) -> None:
    """Add point masses at sub-pixel positions (c, k) into out (c, 64, 64), bilinearly, in place."""
    x = np.clip(x, 0, SIZE - 1.001)
    y = np.clip(y, 0, SIZE - 1.001)
    x0, y0 = np.floor(x).astype(np.intp), np.floor(y).astype(np.intp)
    fx, fy = x - x0, y - y0
    r = np.broadcast_to(rows[:, None], x.shape)
    for oy, ox, w in ((0, 0, (1 - fx) * (1 - fy)), (0, 1, fx * (1 - fy)), (1, 0, (1 - fx) * fy), (1, 1, fx * fy)):
        np.add.at(out, (r, y0 + oy, x0 + ox), mass * w)


def _render_chunk(rng: np.random.Generator, labels: np.ndarray, difficulty: float, dom: CellDomain = LAB) -> np.ndarray:
    c = labels.shape[0]
    nh = len(_HARMONICS)
    f32 = np.float32

    # --- class-dependent cell parameters ---
    radius = np.clip(_class_param(rng, _RADIUS, _RADIUS_SD, labels, difficulty), 8.0, 17.0) * np.float32(dom.scale)
    nc_ratio = np.clip(_class_param(rng, _NC_RATIO, _NC_SD, labels, difficulty), 0.5, 0.92)
    rough = np.clip(_class_param(rng, _ROUGH, _ROUGH_SD, labels, difficulty), 0.0, 0.12)
    tex_freq = np.clip(_class_param(rng, _TEX_FREQ, _TEX_FREQ_SD, labels, difficulty), 0.08, 0.4)
    centre_g = _GRANULES.mean()
    lam = np.clip(centre_g + (_GRANULES[labels] - centre_g) / difficulty, 0.0, None)
    n_gran = np.minimum(rng.poisson(lam), _MAX_GRANULES)

    # --- class-independent nuisances ---
    cx = (SIZE / 2 - 0.5 + np.clip(rng.normal(0, 6.0, c), -14, 14)).astype(f32)
    cy = (SIZE / 2 - 0.5 + np.clip(rng.normal(0, 6.0, c), -14, 14)).astype(f32)
    aspect = rng.uniform(0.85, 1.0, c).astype(f32)
    angle = rng.uniform(0, np.pi, c).astype(f32)
    rough_w = rng.dirichlet(np.ones(nh), c).astype(f32) * np.sqrt(nh)
    phases = rng.uniform(0, 2 * np.pi, (c, nh)).astype(f32)
    background = rng.uniform(0.46, 0.56, c).astype(f32)
    stain = f32(dom.contrast)  # staining contrast: what the cell's inside adds to the background
    cyto_delta = rng.normal(0.03, 0.015, c).astype(f32) * stain
    nuc_delta = rng.normal(-0.10, 0.02, c).astype(f32) * stain
    rim_dark = rng.uniform(0.10, 0.22, c).astype(f32)
    halo = rng.uniform(0.02, 0.08, c).astype(f32)
    tex_amp = rng.uniform(0.04, 0.07, c).astype(f32) * stain

    d_cell = _shape_field(cx, cy, radius, aspect, angle, rough[:, None] * rough_w, phases)
    cell = _sigmoid(-d_cell / 0.6)
    rim = np.exp(-(d_cell**2) / (2 * 1.0**2))
    halo_f = np.exp(-((d_cell - 2.5) ** 2) / (2 * 1.8**2))

    # nucleus: smaller, slightly off-centre inside the cell, gently irregular
    off_r = rng.uniform(0, 0.18, c).astype(f32) * radius
    off_a = rng.uniform(0, 2 * np.pi, c).astype(f32)
    ncx, ncy = cx + off_r * np.cos(off_a), cy + off_r * np.sin(off_a)
    nuc_rough = (0.03 * rng.dirichlet(np.ones(nh), c) * np.sqrt(nh)).astype(f32)
    d_nuc = _shape_field(
        ncx, ncy, nc_ratio * radius, rng.uniform(0.85, 1.0, c).astype(f32), rng.uniform(0, np.pi, c).astype(f32),
        nuc_rough, rng.uniform(0, 2 * np.pi, (c, nh)).astype(f32),
    )
    nucleus = _sigmoid(-d_nuc / 0.8) * cell

    # nucleus texture: band-pass noise around a class-dependent spatial frequency
    # (the spectrum of white noise is itself complex white noise, so draw it there directly)
    spec = rng.standard_normal((c, SIZE, SIZE // 2 + 1), dtype=f32) + 1j * rng.standard_normal((c, SIZE, SIZE // 2 + 1), dtype=f32)
    band = np.exp(-((_FREQ[None] - tex_freq[:, None, None]) ** 2) / (2 * 0.04**2))
    tex = np.fft.irfft2(spec * band, s=(SIZE, SIZE)).astype(f32)
    tex /= tex.std(axis=(1, 2), keepdims=True) + 1e-6

    img = (
        background[:, None, None]
        + cyto_delta[:, None, None] * cell
        + nuc_delta[:, None, None] * nucleus
        + tex_amp[:, None, None] * tex * nucleus
        - rim_dark[:, None, None] * rim
        + halo[:, None, None] * halo_f * (d_cell > 0)
    )

    # dark granules in the cytoplasm ring between nucleus and membrane: point masses, given their
    # Gaussian shape later in the frequency domain (far cheaper than one exp per granule per pixel)
    spots = np.zeros((c, SIZE, SIZE), f32)
    rows = np.arange(c)
    gr = radius[:, None] * rng.uniform(0.55, 0.9, (c, _MAX_GRANULES)).astype(f32)
    ga = rng.uniform(0, 2 * np.pi, (c, _MAX_GRANULES)).astype(f32)
    gamp = rng.uniform(0.08, 0.15, (c, _MAX_GRANULES)).astype(f32) * stain * (np.arange(_MAX_GRANULES)[None] < n_gran[:, None])
    _splat(spots, rows, cx[:, None] + gr * np.cos(ga), cy[:, None] + gr * np.sin(ga), -gamp * 2 * np.pi * 0.8**2)

    # partial neighbouring cell at the border (half of the frames)
    has_nb = (rng.uniform(size=c) < 0.5).astype(f32)
    nb_a = rng.uniform(0, 2 * np.pi, c).astype(f32)
    nb_d = rng.uniform(36, 46, c).astype(f32)
    nb_r = rng.uniform(10, 14, c).astype(f32)
    d_nb = _shape_field(
        SIZE / 2 + nb_d * np.cos(nb_a), SIZE / 2 + nb_d * np.sin(nb_a), nb_r, rng.uniform(0.85, 1.0, c).astype(f32),
        rng.uniform(0, np.pi, c).astype(f32), np.full((c, nh), 0.03, f32), rng.uniform(0, 2 * np.pi, (c, nh)).astype(f32),
    )
    nb_cell = _sigmoid(-d_nb / 0.6)
    img += has_nb[:, None, None] * (0.02 * nb_cell - 0.06 * nb_cell * _sigmoid(-(d_nb + 0.3 * nb_r[:, None, None]))
                                    - rim_dark[:, None, None] * np.exp(-(d_nb**2) / 2.0))

    # small debris anywhere, including over the cell (same point-mass trick, wider kernel)
    debris = np.zeros((c, SIZE, SIZE), f32)
    dpos = rng.uniform(0, SIZE - 1, (2, c, 3)).astype(f32)
    damp = rng.uniform(-0.10, 0.06, (c, 3)).astype(f32) * (rng.uniform(size=(c, 3)) < 0.35)
    _splat(debris, rows, dpos[0], dpos[1], damp * 2 * np.pi * 1.5**2)
    # kept as a spectrum and added at the blur step below (one inverse FFT instead of two)
    spot_spec = np.fft.rfft2(spots) * _gauss_otf(0.8) + np.fft.rfft2(debris) * _gauss_otf(1.5)

    # uneven illumination: linear gradient plus vignetting
    gdir = rng.uniform(0, 2 * np.pi, c).astype(f32)
    gamp = rng.uniform(0.0, dom.gradient, c).astype(f32)
    ramp = ((_xx[None] - 31.5) * np.cos(gdir)[:, None, None] + (_yy[None] - 31.5) * np.sin(gdir)[:, None, None]) / 32
    vig = ((_xx - 31.5) ** 2 + (_yy - 31.5) ** 2)[None] / (2 * 32.0**2)
    img *= 1 + gamp[:, None, None] * ramp - rng.uniform(0.0, 0.12, c).astype(f32)[:, None, None] * vig
    if dom.brightness != 1.0:
        img *= f32(dom.brightness)

    # defocus: Gaussian blur of per-image width, applied in the frequency domain
    blur = rng.uniform(dom.blur[0], dom.blur[1], c).astype(f32)
    otf = np.exp(-2 * np.pi**2 * blur[:, None, None] ** 2 * _FREQ[None] ** 2)
    img = np.fft.irfft2((np.fft.rfft2(img) + spot_spec) * otf, s=(SIZE, SIZE))

    # shot noise (Gaussian limit of Poisson: ~200-750 photons per pixel, per-image exposure) + read noise
    img = np.clip(img.astype(f32), 0, None)
    photons = rng.uniform(400, 1500, c).astype(f32)[:, None, None]
    img += (np.sqrt(img / photons) + 0.006) * f32(dom.noise) * rng.standard_normal(img.shape, dtype=f32)
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)


def _labels(rng: np.random.Generator, n: int, priors: tuple[float, float, float] | None) -> np.ndarray:
    if priors is None:
        return rng.permutation(np.arange(n) % 3).astype(np.int64)
    exact = np.asarray(priors, float) * n  # counts by largest remainder, then shuffled
    counts = np.floor(exact).astype(int)
    counts[np.argsort(-(exact - counts), kind="stable")[: n - counts.sum()]] += 1
    return rng.permutation(np.repeat(np.arange(3), counts)).astype(np.int64)


def generate_cells(n: int, seed: int, difficulty: float = 1.0, domain: CellDomain = LAB) -> tuple[np.ndarray, np.ndarray]:
    """n synthetic cells: uint8 images (n, 64, 64) and int64 labels (0=B, 1=T4, 2=T8).

    Labels are a shuffled split of the three classes by `domain.class_priors` (default near-equal). Same
    arguments, same arrays; the default domain gives the arrays the generator always gave.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if not 0.0 < difficulty <= 10.0:
        raise ValueError(f"difficulty must be in (0, 10], got {difficulty}")
    rng = np.random.default_rng(seed)
    labels = _labels(rng, n, domain.class_priors)
    images = np.empty((n, SIZE, SIZE), dtype=np.uint8)
    for start in range(0, n, _CHUNK):
        stop = min(start + _CHUNK, n)
        images[start:stop] = _render_chunk(rng, labels[start:stop], difficulty, domain)
    return images, labels
