"""Build script: the compiled kernels `ssm._C` from csrc/ (C++/OpenMP always, CUDA when available).

Environment switches:
  SSM_BUILD_EXT=0          skip the extension entirely (pure-Python install)
  SSM_BUILD_CUDA=0|1|auto  CUDA kernels: never, always (fail if impossible), or when torch has CUDA and nvcc is found
  TORCH_CUDA_ARCH_LIST     honoured by torch.utils.cpp_extension (default here: "8.0;9.0")
"""
import glob
import os

from setuptools import setup


def _ext_modules():
    """Return the list of extension modules to build (possibly empty)."""
    if os.environ.get("SSM_BUILD_EXT", "1") == "0":
        return [], {}
    sources = sorted(glob.glob(os.path.join("csrc", "*.cpp")))
    if not sources:
        return [], {}
    from torch.utils import cpp_extension

    mode = os.environ.get("SSM_BUILD_CUDA", "auto").lower()
    if mode not in ("0", "1", "auto"):
        raise ValueError(f"SSM_BUILD_CUDA must be 0, 1 or auto, got {mode!r}")
    cuda_sources = sorted(glob.glob(os.path.join("csrc", "*.cu")))
    have_cuda = cpp_extension.CUDA_HOME is not None and _torch_has_cuda()
    use_cuda = bool(cuda_sources) and (mode == "1" or (mode == "auto" and have_cuda))
    if mode == "1" and not have_cuda:
        raise RuntimeError(
            "SSM_BUILD_CUDA=1 but CUDA cannot be built: torch.version.cuda="
            f"{_torch_cuda_version()!r}, CUDA_HOME={cpp_extension.CUDA_HOME!r}. "
            "Install a CUDA build of torch and set CUDA_HOME to the toolkit (e.g. /usr/local/cuda)."
        )
    omp = ["-fopenmp"]
    cxx = ["-O3", "-std=c++17"] + omp
    if use_cuda:
        os.environ.setdefault("TORCH_CUDA_ARCH_LIST", "8.0;9.0")
        ext = cpp_extension.CUDAExtension(
            "ssm._C",
            sources + cuda_sources,
            define_macros=[("SSM_WITH_CUDA", "1")],
            extra_compile_args={"cxx": cxx, "nvcc": ["-O3", "--use_fast_math", "-std=c++17"]},
            extra_link_args=omp,
        )
    else:
        ext = cpp_extension.CppExtension("ssm._C", sources, extra_compile_args=cxx, extra_link_args=omp)
    return [ext], {"build_ext": cpp_extension.BuildExtension.with_options(use_ninja=False)}


def _torch_has_cuda():
    return _torch_cuda_version() is not None


def _torch_cuda_version():
    import torch

    return torch.version.cuda


ext_modules, cmdclass = _ext_modules()
setup(ext_modules=ext_modules, cmdclass=cmdclass)
