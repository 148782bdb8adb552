"""`jaxface build-nvdiffrast`: nvcc compiles jaxface's FFI handlers with the installed
nvdiffrast's CUDA kernels into one library exporting every handler (checked here, on the CPU
machines too: nvcc needs no GPU), cached by its inputs; the errors name what is missing."""

import ctypes
import json
import shutil

import pytest

from jaxface.cli import main
from jaxface.render.nvdr_ffi import build, ops
from jaxface.render.nvdr_ffi.ops import TARGETS


@pytest.mark.skipif(shutil.which("nvcc") is None,
                    reason="nvcc is not installed here (the CUDA toolkit builds the library)")
def test_builds_every_handler_with_nvcc_and_caches_the_build(tmp_path, monkeypatch):
    out = tmp_path / "lib" / build.LIBRARY_NAME
    lines = []
    path = build.build_library(archs="80", out=out, log=lines.append)
    assert path == out and out.stat().st_size > 100_000
    library = ctypes.CDLL(str(out))
    for symbol in TARGETS.values():
        assert getattr(library, symbol) is not None  # AttributeError if not exported
    manifest = json.loads((tmp_path / "lib" / "build.json").read_text())
    assert manifest["archs"] == ["80"] and manifest["nvdiffrast"].startswith("0.3.3")
    assert any("csrc/nvdr_ffi.cpp" in line for line in lines)
    built_at = out.stat().st_mtime_ns
    lines.clear()
    build.build_library(archs="sm_80", out=out, log=lines.append)
    assert out.stat().st_mtime_ns == built_at and "up to date" in lines[0]
    # The backend finds it and registers its handlers with XLA (CUDA targets).
    monkeypatch.setenv("JAXFACE_NVDR_LIBRARY", str(out))
    monkeypatch.setattr(ops, "_registered_from", None)
    assert ops.register_targets() and ops._registered_from == str(out)


def test_architectures_parse_and_default():
    assert build.target_archs("sm_90, 80") == ("80", "90")
    assert build.target_archs(["8.6"]) == ("86",)
    with pytest.raises(ValueError, match="80,90"):
        build.target_archs("hopper")
    flags = build.gencode_flags(("80", "90"))
    assert flags == ["-gencode=arch=compute_80,code=sm_80", "-gencode=arch=compute_90,code=sm_90",
                     "-gencode=arch=compute_90,code=compute_90"]


def test_library_and_cache_locations_follow_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("JAXFACE_NVDR_LIBRARY", raising=False)
    monkeypatch.setenv("JAXFACE_CACHE_DIR", str(tmp_path))
    assert build.library_path() == tmp_path / "nvdiffrast" / build.LIBRARY_NAME
    monkeypatch.setenv("JAXFACE_NVDR_LIBRARY", str(tmp_path / "x.so"))
    assert build.library_path() == tmp_path / "x.so"


def test_missing_nvcc_is_named(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CUDA_HOME", raising=False)
    monkeypatch.delenv("CUDA_PATH", raising=False)
    with pytest.raises(build.BuildError, match="nvcc was not found"):
        build.find_nvcc()
    assert main(["build-nvdiffrast", "--out", str(tmp_path / "lib.so")]) == 2
    assert "nvcc was not found" in capsys.readouterr().err


def test_missing_nvdiffrast_sources_are_named(monkeypatch):
    monkeypatch.setattr(build.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(build.BuildError, match="diffrp-nvdiffrast"):
        build.nvdiffrast_dir()
