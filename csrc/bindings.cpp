// The Python module ssm._C. It exports nothing itself: loading the shared library runs the
// TORCH_LIBRARY_FRAGMENT / TORCH_LIBRARY_IMPL registrations of every op file in csrc/, after which
// the ops are reachable as torch.ops.ssm.<op>. Plain CPython API (no pybind11) keeps the build fast.
#include <Python.h>

static struct PyModuleDef ssm_c_module = {
    PyModuleDef_HEAD_INIT, "_C",
    "ssm compiled kernels; the ops live in torch.ops.ssm (cauchy_fwd, cauchy_bwd, vandermonde_fwd, ...)",
    -1, nullptr};

PyMODINIT_FUNC PyInit__C(void) {
  PyObject* m = PyModule_Create(&ssm_c_module);
#ifdef SSM_WITH_CUDA
  if (m != nullptr) PyModule_AddIntConstant(m, "with_cuda", 1);
#else
  if (m != nullptr) PyModule_AddIntConstant(m, "with_cuda", 0);
#endif
  return m;
}
