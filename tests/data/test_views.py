import numpy as np
import pytest
import torch

from edgekd.data.transforms import to_model_input
from edgekd.data.views import N_VIEWS, view_images, view_tensor


def test_eight_distinct_views_of_an_asymmetric_image():
    img = np.arange(16, dtype=np.uint8).reshape(1, 4, 4)
    views = {view_images(img, v).tobytes() for v in range(N_VIEWS)}
    assert len(views) == 8
    assert np.array_equal(view_images(img, 0), img)
    assert np.array_equal(view_images(img, 1), img[:, :, ::-1])
    assert np.array_equal(view_images(img, 2), np.rot90(img, 1, axes=(1, 2)))


@pytest.mark.parametrize("view", range(N_VIEWS))
def test_student_view_matches_the_view_the_teacher_saw(view):
    """Viewing the preprocessed student input equals preprocessing the viewed image (what the teacher saw)."""
    imgs = np.random.default_rng(view).integers(0, 256, (3, 64, 64), dtype=np.uint8)
    a = view_tensor(to_model_input(imgs, 48), view)
    b = to_model_input(view_images(imgs, view), 48)
    # Equal up to float rounding in the antialiased resampling (about 1e-5 of a normalised pixel).
    assert float((a - b).abs().max()) < 1e-4
