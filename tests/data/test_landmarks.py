"""The FAN landmark backend's offline loading path: a 2D-FAN of random weights planted where
face_alignment looks (torch hub's checkpoints folder) is found and run on a real photo; a
missing file is an error naming it. (The dlib backend's tests are in test_prepare.py.)"""

import numpy as np
import pytest

from jaxface.assets import AssetError

pytest.importorskip("dlib", reason="needs the `face` extra (dlib-bin)")
face_alignment = pytest.importorskip("face_alignment", reason="the fan backend's package")
torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    from face_alignment.api import models_urls
    from face_alignment.models import FAN

    hub = tmp_path_factory.mktemp("torch_hub")
    (hub / "checkpoints").mkdir()
    torch.manual_seed(0)
    torch.save(FAN(4).state_dict(),
               hub / "checkpoints" / models_urls["2DFAN-4"].rsplit("/", 1)[1])
    return hub


def test_fan_backend_runs_with_planted_weights(planted, sample_photos):
    from PIL import Image

    from jaxface.data.landmarks import landmark_backend

    before = torch.hub.get_dir()
    fan = landmark_backend("fan", weights_dir=planted, flip_input=False)
    assert torch.hub.get_dir() == before          # the hub directory is restored
    rgb = np.asarray(Image.open(sample_photos / "astronaut.png").convert("RGB"))
    face = fan(rgb)
    assert face.landmarks.shape == (68, 2) and face.landmarks.dtype == np.float32
    # Random weights put the points anywhere in FAN's crop: around dlib's face box.
    left, top, right, bottom = face.box
    w, h = right - left, bottom - top
    assert np.all((face.landmarks[:, 0] > left - w) & (face.landmarks[:, 0] < right + w))
    assert np.all((face.landmarks[:, 1] > top - h) & (face.landmarks[:, 1] < bottom + h))


def test_missing_fan_weights_name_the_file(tmp_path):
    from jaxface.data.landmarks import landmark_backend

    with pytest.raises(AssetError, match=r"checkpoints/2DFAN4-11f355bf06\.pth\.tar.*download "
                                         r"https://"):
        landmark_backend("fan", weights_dir=tmp_path)
    with pytest.raises(ValueError, match="must be one of"):
        landmark_backend("sfd")
