import numpy as np

from jaxface import flame
from jaxface.cli import main


def test_flame_asset_writes_a_loadable_model(tmp_path, capsys, model):
    out = tmp_path / "new" / "folder" / "head.npz"
    assert main(["flame-asset", "--out", str(out)]) == 0
    assert "vertices 5023, triangles 9976" in capsys.readouterr().out
    loaded = flame.load_flame(out)
    np.testing.assert_array_equal(np.asarray(loaded.v_template), np.asarray(model.v_template))
    assert flame.load_flame(out, n_shape=300, n_expression=100).n_shape == 300
    assert flame.load_albedo(out).basis.shape == (256, 256, 3, 20)
    assert not list(out.parent.glob("*.partial*"))
    assert main(["flame-info", str(out)]) == 0
    assert "a valid FLAME model" in capsys.readouterr().out


def test_flame_info_reports_a_missing_file(tmp_path, capsys):
    assert main(["flame-info", str(tmp_path / "generic_model.pkl")]) == 2
    err = capsys.readouterr().err
    assert "flame file not found" in err and "flame.is.tue.mpg.de" in err


def test_flame_asset_reports_an_unwritable_path(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["flame-asset", "--out", str(blocker / "head.npz")]) == 2
    assert "error" in capsys.readouterr().err
    assert blocker.read_text() == "not a folder"
