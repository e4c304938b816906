import numpy as np
import pytest

from edgekd.data.synthetic_cells import generate_cells


@pytest.fixture(scope="module")
def cells():
    return generate_cells(600, seed=3)


def test_same_seed_identical():
    a_x, a_y = generate_cells(40, seed=7)
    b_x, b_y = generate_cells(40, seed=7)
    np.testing.assert_array_equal(a_x, b_x)
    np.testing.assert_array_equal(a_y, b_y)


def test_different_seed_differs():
    a_x, _ = generate_cells(40, seed=7)
    b_x, _ = generate_cells(40, seed=8)
    assert (a_x != b_x).mean() > 0.5


def test_zero_images():
    x, y = generate_cells(0, seed=1)
    assert x.shape == (0, 64, 64) and y.shape == (0,)


def test_shapes_dtypes_balance(cells):
    x, y = cells
    assert x.shape == (600, 64, 64) and x.dtype == np.uint8
    assert y.shape == (600,) and y.dtype == np.int64
    assert set(np.unique(y)) == {0, 1, 2}
    assert np.bincount(y).tolist() == [200, 200, 200]


def test_bright_field_look(cells):
    x, _ = cells
    border = np.concatenate([x[:, :4, 16:48].ravel(), x[:, -4:, 16:48].ravel()]).astype(float)
    assert 95 < np.median(border) < 160  # mid-grey background
    centre = x[:, 24:40, 24:40].astype(float)
    # not saturated, and there is structure (cells) beyond the noise
    assert x.min() >= 0 and (x == 255).mean() < 0.001
    assert centre.std() > 5


def rim_radius(x: np.ndarray) -> np.ndarray:
    """Per image, the radius (px) of the darkest ring around the cell: the membrane, i.e. the cell size.

    Centre = centroid of the clearly dark pixels (after 2x2 pooling to halve the noise); then the
    radial intensity profile's minimum between 7 and 18 px.
    """
    n = len(x)
    xf = x.astype(np.float32)
    pooled = xf.reshape(n, 32, 2, 32, 2).mean(axis=(2, 4))
    bg = np.median(pooled.reshape(n, -1), axis=1)[:, None, None]
    dark = (pooled < bg - 10).astype(np.float32)
    dark[:, :6], dark[:, 26:], dark[:, :, :6], dark[:, :, 26:] = 0, 0, 0, 0  # ignore border debris
    grid = np.arange(32) * 2 + 0.5
    w = dark.sum(axis=(1, 2)) + 1e-6
    cy = (dark.sum(axis=2) * grid).sum(axis=1) / w
    cx = (dark.sum(axis=1) * grid).sum(axis=1) / w
    yy, xx = np.mgrid[0:64, 0:64]
    r = np.sqrt((yy[None] - cy[:, None, None]) ** 2 + (xx[None] - cx[:, None, None]) ** 2).astype(int)
    radii = np.arange(7, 19)
    profile = np.stack([np.where(r == k, xf, 0).sum(axis=(1, 2)) / np.maximum((r == k).sum(axis=(1, 2)), 1) for k in radii], 1)
    return radii[profile.argmin(axis=1)].astype(float)


def test_classes_differ_in_size(cells):
    # B cells are smallest and T4 the largest, but their size distributions overlap
    x, y = cells
    rim = rim_radius(x)
    b, t4, t8 = (rim[y == c] for c in range(3))
    assert t4.mean() - b.mean() > 1.0, (b.mean(), t4.mean())
    assert b.mean() < t8.mean() < t4.mean()
    assert (b >= np.percentile(t4, 25)).mean() > 0.03  # overlap: some B cells are as large as many T4


def test_difficulty_shrinks_separation():
    x_easy, y_easy = generate_cells(600, seed=3, difficulty=0.5)
    x_hard, y_hard = generate_cells(600, seed=3, difficulty=3.0)

    def gap(x, y):
        rim = rim_radius(x)
        return rim[y == 1].mean() - rim[y == 0].mean()

    assert gap(x_easy, y_easy) > 2 * gap(x_hard, y_hard)


def test_bad_arguments():
    with pytest.raises(ValueError, match="difficulty"):
        generate_cells(4, seed=0, difficulty=0.0)
    with pytest.raises(ValueError, match="n must be"):
        generate_cells(-1, seed=0)


def test_domain_sets_priors_and_looks():
    from edgekd.data.synthetic_cells import CellDomain

    lab_x, _ = generate_cells(90, seed=5)
    _, y = generate_cells(90, seed=5, domain=CellDomain(class_priors=(0.6, 0.2, 0.2)))
    assert np.bincount(y).tolist() == [54, 18, 18]  # largest-remainder counts of the priors
    bright_x, _ = generate_cells(90, seed=5, domain=CellDomain(brightness=1.2))
    # brightness is a gain on the frame before noise and rounding: the mean grows by ~20% (noise averages out)
    assert bright_x.mean() / lab_x.mean() == pytest.approx(1.2, abs=0.02)
    blurred, _ = generate_cells(90, seed=5, domain=CellDomain(blur=(2.0, 2.5)))
    sharp = lambda x: np.abs(np.diff(x.astype(float), axis=2)).mean()  # noqa: E731
    assert sharp(blurred) < sharp(lab_x)  # noise stays, the cell's edges soften
    flat, _ = generate_cells(90, seed=5, domain=CellDomain(contrast=0.3, noise=0.01))
    crisp, _ = generate_cells(90, seed=5, domain=CellDomain(noise=0.01))
    assert flat[:, 24:40, 24:40].std() < crisp[:, 24:40, 24:40].std()  # weaker staining: less structure inside
    for bad in (dict(class_priors=(0.5, 0.5, 0.5)), dict(blur=(1.0, 0.5)), dict(scale=0.0), dict(gradient=0.9)):
        with pytest.raises(ValueError):
            CellDomain(**bad)


def test_domain_from_config_reaches_the_generator():
    from edgekd.config import DataConfig, parse_config
    from edgekd.data.cells import load_cell_splits

    s = load_cell_splits(DataConfig(synthetic={"n_train": 100, "n_test": 10, "domain": {"class_priors": [0.8, 0.1, 0.1]}},
                                    num_classes=3, val_fraction=0.1))
    assert np.bincount(np.concatenate([s.y_train, s.y_val])).tolist() == [80, 10, 10]
    with pytest.raises(Exception, match="class_priors must be 3 shares"):
        parse_config({"name": "x", "data": {"synthetic": {"domain": {"class_priors": [0.5, 0.2, 0.2]}}}})
