"""Building the nvdiffrast FFI library: nvcc over jaxface's XLA FFI handlers
(``csrc/nvdr_ffi.cpp``) and the CUDA kernels of the installed ``diffrp-nvdiffrast`` package.

nvdiffrast's sources are compiled from where pip installed them, never copied into jaxface;
``third_party/nvdiffrast/`` holds the glue header that lets them build without PyTorch and the
licence notice. The result is one shared library, cached as
``<cache>/nvdiffrast/libjaxface_nvdr.so`` with a ``build.json`` manifest, where ``<cache>`` is
``$JAXFACE_CACHE_DIR``, else ``$XDG_CACHE_HOME/jaxface``, else ``~/.cache/jaxface``;
``$JAXFACE_NVDR_LIBRARY`` points at a library built elsewhere. A build whose inputs (sources,
nvcc, architectures, flags) are unchanged is skipped.

CUDA architectures: ``archs`` argument, else ``$JAXFACE_NVDR_ARCHS`` ("80,90"), else the GPUs
``nvidia-smi`` reports, else :data:`DEFAULT_ARCHS`; PTX of the newest is embedded too, so newer
GPUs JIT-compile it.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

LIBRARY_NAME = "libjaxface_nvdr.so"
NVDIFFRAST_DISTRIBUTION = "diffrp-nvdiffrast"
DEFAULT_ARCHS = ("80", "86", "89", "90")  # A100, RTX 30xx/A6000, RTX 40xx/L4, H100/H200
# nvdiffrast's framework-independent sources: the CUDA rasterizer (not OpenGL) and the kernels.
NVDIFFRAST_SOURCES = (
    "common/common.cpp",
    "common/texture.cpp",
    "common/rasterize.cu",
    "common/interpolate.cu",
    "common/texture.cu",
    "common/antialias.cu",
    "common/cudaraster/impl/Buffer.cpp",
    "common/cudaraster/impl/CudaRaster.cpp",
    "common/cudaraster/impl/RasterImpl.cpp",
    "common/cudaraster/impl/RasterImpl.cu",
)
_FLAGS = ("-O3", "-std=c++17", "-Xcompiler", "-fPIC", "-w")
_REPO_ROOT = Path(__file__).resolve().parents[3]


class BuildError(RuntimeError):
    """The FFI library cannot be built here (no nvcc, no nvdiffrast sources, a compile error)."""


def cache_dir() -> Path:
    """Where the built library and its manifest live."""
    root = os.environ.get("JAXFACE_CACHE_DIR")
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = Path(xdg) / "jaxface" if xdg else Path.home() / ".cache" / "jaxface"
    return Path(root) / "nvdiffrast"


def library_path() -> Path:
    """The library the nvdiffrast backend loads (it may not exist yet)."""
    override = os.environ.get("JAXFACE_NVDR_LIBRARY")
    return Path(override) if override else cache_dir() / LIBRARY_NAME


def handler_source() -> Path:
    return Path(__file__).resolve().parent / "csrc" / "nvdr_ffi.cpp"


def glue_dir() -> Path:
    """``third_party/nvdiffrast`` of the jaxface checkout (its glue header)."""
    glue = _REPO_ROOT / "third_party" / "nvdiffrast"
    if not (glue / "nvdr_glue.h").exists():
        raise BuildError(f"{glue / 'nvdr_glue.h'} is missing: build-nvdiffrast needs jaxface's "
                         "source checkout (install it with `pip install -e .`)")
    return glue


def nvdiffrast_dir() -> Path:
    """The installed nvdiffrast package folder (from ``diffrp-nvdiffrast``), with its sources."""
    spec = importlib.util.find_spec("nvdiffrast")
    hint = (f"install it with `pip install '{NVDIFFRAST_DISTRIBUTION}>=0.3.3'` (or jaxface's "
            "`nvdiffrast` extra); it ships nvdiffrast's CUDA sources")
    if spec is None or not spec.submodule_search_locations:
        raise BuildError(f"the nvdiffrast package is not installed: {hint}")
    root = Path(list(spec.submodule_search_locations)[0])
    missing = [s for s in NVDIFFRAST_SOURCES if not (root / s).exists()]
    if missing:
        raise BuildError(f"{root} lacks nvdiffrast's CUDA sources ({', '.join(missing)}): {hint}")
    return root


def nvdiffrast_version() -> str:
    try:
        return importlib.metadata.version(NVDIFFRAST_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def find_nvcc() -> Path:
    """nvcc from ``$CUDA_HOME``/``$CUDA_PATH``, else the PATH."""
    for var in ("CUDA_HOME", "CUDA_PATH"):
        if os.environ.get(var) and (Path(os.environ[var]) / "bin" / "nvcc").exists():
            return Path(os.environ[var]) / "bin" / "nvcc"
    found = shutil.which("nvcc")
    if found is None:
        raise BuildError("nvcc was not found: install the CUDA toolkit (12.x or 13.x) and put "
                         "nvcc on the PATH, or set CUDA_HOME")
    return Path(found)


def _detected_archs() -> tuple[str, ...]:
    """Compute capabilities of the visible GPUs ("90"), or () when nvidia-smi has none."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return ()
    try:
        out = subprocess.run([smi, "--query-gpu=compute_cap", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30, check=True).stdout
    except (subprocess.SubprocessError, OSError):
        return ()
    return tuple(sorted({line.strip().replace(".", "") for line in out.splitlines()
                         if line.strip()}))


def target_archs(archs: str | Sequence[str] | None = None) -> tuple[str, ...]:
    """The CUDA architectures to build for, as ("80", "90")."""
    if archs is None:
        archs = os.environ.get("JAXFACE_NVDR_ARCHS") or _detected_archs() or DEFAULT_ARCHS
    if isinstance(archs, str):
        archs = archs.split(",")
    cleaned = {a.strip().lower().removeprefix("sm_").replace(".", "") for a in archs
               if a.strip()}
    if not cleaned or not all(a.isdigit() for a in cleaned):
        raise ValueError(f"CUDA architectures must look like '80,90', got {archs!r}")
    return tuple(sorted(cleaned, key=int))


def gencode_flags(archs: Sequence[str]) -> list[str]:
    """SASS for each architecture and PTX for the newest."""
    flags = [f"-gencode=arch=compute_{a},code=sm_{a}" for a in archs]
    return flags + [f"-gencode=arch=compute_{archs[-1]},code=compute_{archs[-1]}"]


def _jax_include_dir() -> Path:
    import jax.ffi

    return Path(jax.ffi.include_dir())


def _nvcc_version(nvcc: Path) -> str:
    out = subprocess.run([str(nvcc), "--version"], capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def _build_key(sources: Sequence[Path], nvcc_version: str, archs, flags) -> str:
    digest = hashlib.sha256()
    for path in sources:
        digest.update(str(path.name).encode())
        digest.update(path.read_bytes())
    digest.update(nvcc_version.encode())
    digest.update(" ".join(list(archs) + list(flags)).encode())
    return digest.hexdigest()[:24]


def build_info(path: Path | None = None) -> dict | None:
    """The manifest written next to a built library, or None."""
    manifest = (path or library_path()).with_name("build.json")
    return json.loads(manifest.read_text()) if manifest.exists() else None


def build_library(archs: str | Sequence[str] | None = None, jobs: int | None = None,
                  force: bool = False, out: Path | None = None,
                  log: Callable[[str], None] = print) -> Path:
    """Builds (or finds cached) the nvdiffrast FFI library and returns its path.

    Args:
      archs: CUDA architectures ("80,90"), see :func:`target_archs`.
      jobs: parallel nvcc processes (default: the CPU count).
      force: rebuild even when the cached library matches.
      out: where to write the library (default :func:`library_path`).
    """
    nvcc = find_nvcc()
    nvdr = nvdiffrast_dir()
    glue = glue_dir()
    archs = target_archs(archs)
    out = Path(out) if out is not None else library_path()
    include = _jax_include_dir()
    sources = [nvdr / s for s in NVDIFFRAST_SOURCES] + [handler_source()]
    headers = sorted((nvdr / "common").rglob("*.h*")) + sorted((nvdr / "common").rglob("*.inl"))
    headers += [glue / "nvdr_glue.h", include / "xla" / "ffi" / "api" / "ffi.h"]
    nvcc_version = _nvcc_version(nvcc)
    flags = list(_FLAGS) + gencode_flags(archs)
    key = _build_key(sources + headers, nvcc_version, archs, flags)
    info = build_info(out)
    if out.exists() and info is not None and info.get("key") == key and not force:
        log(f"nvdiffrast FFI library up to date: {out}")
        return out

    log(f"building the nvdiffrast FFI library for sm_{',sm_'.join(archs)} with {nvcc} "
        f"({nvcc_version}) from {nvdr} (nvdiffrast {nvdiffrast_version()})")
    started = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="jaxface-nvdr-", dir=out.parent) as tmp:
        commands = []
        for i, src in enumerate(sources):
            obj = Path(tmp) / f"{i:02d}_{src.name}.o"
            argv = [str(nvcc), "-c", *flags, "-I", str(nvdr), "-I", str(glue), "-I", str(include)]
            if src != handler_source():
                # nvdiffrast's sources get the framework macros from the glue header.
                argv += ["-include", str(glue / "nvdr_glue.h")]
            commands.append((src, obj, argv + [str(src), "-o", str(obj)]))
        workers = max(1, jobs or os.cpu_count() or 1)
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            runs = {pool.submit(subprocess.run, argv, capture_output=True, text=True): src
                    for src, _, argv in commands}
            for run in concurrent.futures.as_completed(runs):
                result = run.result()
                if result.returncode != 0:
                    raise BuildError(f"nvcc failed on {runs[run]}:\n{result.stderr[-4000:]}")
                log(f"  compiled {runs[run].relative_to(runs[run].parents[1])}")
        staged = Path(tmp) / LIBRARY_NAME
        link = subprocess.run([str(nvcc), "-shared", *gencode_flags(archs), "-o", str(staged),
                               *(str(obj) for _, obj, _ in commands)],
                              capture_output=True, text=True)
        if link.returncode != 0:
            raise BuildError(f"linking {LIBRARY_NAME} failed:\n{link.stderr[-4000:]}")
        os.replace(staged, out)
    manifest = {"key": key, "archs": list(archs), "nvcc": nvcc_version,
                "nvdiffrast": nvdiffrast_version(), "nvdiffrast_dir": str(nvdr),
                "seconds": round(time.perf_counter() - started, 1)}
    out.with_name("build.json").write_text(json.dumps(manifest, indent=2) + "\n")
    log(f"built {out} in {manifest['seconds']} s")
    return out
