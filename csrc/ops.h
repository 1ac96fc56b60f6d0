// Shared declarations and checks for the Cauchy / Vandermonde ops (CPU and CUDA implementations).
#pragma once
#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <tuple>

// CPU inner loops are compiled for AVX-512, AVX2+FMA and baseline x86-64; the loader picks the best the CPU
// supports at run time (GCC function multiversioning), so one build runs fast and everywhere.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__)
#define SSM_SIMD_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define SSM_SIMD_CLONES
#endif

namespace ssm {

// Rows of a (B, K) complex tensor; every op works on 2-D contiguous inputs prepared by ssm/kernels/ext.py.
inline void check_rows(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.dim() == 2, name, " must be 2-D (rows, K), got ", t.dim(), "-D");
  TORCH_CHECK(t.is_complex(), name, " must be complex, got ", t.scalar_type());
}

inline void check_same(const at::Tensor& a, const at::Tensor& b, const char* na, const char* nb) {
  TORCH_CHECK(a.scalar_type() == b.scalar_type(), na, " and ", nb, " must have the same dtype, got ",
              a.scalar_type(), " and ", b.scalar_type());
  TORCH_CHECK(a.device() == b.device(), na, " and ", nb, " must be on the same device");
}

// The log-space Vandermonde ops take a (R, K) (complex, or real for the transpose) and log_x (Rx, N) complex128
// with R a multiple of Rx: row r uses log_x[r % Rx].
inline void check_log_x(const at::Tensor& a, const at::Tensor& log_x, const char* na) {
  TORCH_CHECK(a.dim() == 2, na, " must be 2-D (rows, K), got ", a.dim(), "-D");
  TORCH_CHECK(log_x.dim() == 2 && log_x.scalar_type() == at::kComplexDouble, "log_x must be 2-D complex128, got ",
              log_x.dim(), "-D ", log_x.scalar_type());
  TORCH_CHECK(a.device() == log_x.device(), na, " and log_x must be on the same device");
  TORCH_CHECK(log_x.size(0) > 0 && a.size(0) % log_x.size(0) == 0, "rows of ", na, " (", a.size(0),
              ") must be a multiple of rows of log_x (", log_x.size(0), ")");
}


}  // namespace ssm
