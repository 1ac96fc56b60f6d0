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
    _check_distinct_objects(sources + cuda_sources)
    why_not = _cuda_problem(cpp_extension.CUDA_HOME)
    use_cuda = bool(cuda_sources) and (mode == "1" or (mode == "auto" and why_not is None))
    if mode == "1" and why_not is not None:
        raise RuntimeError(
            f"SSM_BUILD_CUDA=1 but CUDA cannot be built: {why_not}. "
            "Install a CUDA build of torch and set CUDA_HOME to the toolkit (e.g. /usr/local/cuda)."
        )
    if mode == "auto" and cuda_sources and why_not is not None:
        print(f"ssm: building the CPU kernels only ({why_not}; set SSM_BUILD_CUDA=1 to require CUDA)")
    omp = ["-fopenmp"]
    cxx = ["-O3", "-std=c++20"] + omp  # torch >= 2.10 headers need C++20
    if use_cuda:
        os.environ.setdefault("TORCH_CUDA_ARCH_LIST", "8.0;9.0")
        ext = cpp_extension.CUDAExtension(
            "ssm._C",
            sources + cuda_sources,
            define_macros=[("SSM_WITH_CUDA", "1")],
            extra_compile_args={"cxx": cxx, "nvcc": ["-O3", "-std=c++20"]},
            extra_link_args=omp,
        )
    else:
        ext = cpp_extension.CppExtension("ssm._C", sources, extra_compile_args=cxx, extra_link_args=omp)
    # ninja compiles the sources in parallel (MAX_JOBS) when it is installed; plain setuptools otherwise
    use_ninja = cpp_extension.is_ninja_available()
    return [ext], {"build_ext": cpp_extension.BuildExtension.with_options(use_ninja=use_ninja)}


def _check_distinct_objects(paths):
    """foo.cpp and foo.cu would both compile to foo.o: refuse such pairs (name the CUDA file foo_cuda.cu)."""
    stems = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    clash = sorted({s for s in stems if stems.count(s) > 1})
    if clash:
        raise RuntimeError(f"csrc/ sources {clash} exist as both .cpp and .cu; name the CUDA file <name>_cuda.cu")


def _cuda_problem(cuda_home):
    """None if the CUDA kernels can be built, else why not."""
    if _torch_cuda_version() is None:
        return "torch is a CPU-only build (torch.version.cuda is None)"
    if cuda_home is None:
        return "no CUDA toolkit found (nvcc not on PATH and CUDA_HOME unset)"
    if not os.path.isfile(os.path.join(cuda_home, "include", "cuda_runtime.h")):
        return f"CUDA_HOME={cuda_home!r} has no include/cuda_runtime.h (set CUDA_HOME, e.g. /usr/local/cuda)"
    return None


def _torch_cuda_version():
    import torch

    return torch.version.cuda


ext_modules, cmdclass = _ext_modules()
setup(ext_modules=ext_modules, cmdclass=cmdclass)
