// Diagonal linear recurrence h_l = a_l * h_{l-1} + b_l (reverse: h_l = a_l * h_{l+1} + b_l), CPU kernel.
//
// ssm::scan_fwd(a, b, h0, reverse) -> h with b (M, L, N) contiguous, a (M, La, N) any strides (La in {1, L};
// stride 0 over broadcast dims is fine), h0 (M, N) contiguous or None. Real or complex (float/double).
// The backward is not a separate kernel: the adjoint of the recurrence is itself a scan in the other
// direction with conj(a) shifted by one step, so ssm/kernels/scan_ext.py calls scan_fwd again.
// Parallel over (batch row, block of channels) with at::parallel_for (OpenMP); each worker walks L
// sequentially over a contiguous block of channels, which the compiler vectorises.
#include <torch/library.h>
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>

namespace {

constexpr int64_t kBlock = 64;

template <typename T>
void scan_rows(const T* a, int64_t sa_m, int64_t sa_l, int64_t sa_n, bool time_varying, const T* b,
               const T* h0, T* out, int64_t M, int64_t L, int64_t N, bool reverse) {
  const int64_t nblk = (N + kBlock - 1) / kBlock;
  // at least ~32k element-steps per task, so tiny scans stay on the calling thread
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 15) / std::max<int64_t>(1, L * kBlock));
  at::parallel_for(0, M * nblk, grain, [&](int64_t begin, int64_t end) {
    T h[kBlock];
    for (int64_t job = begin; job < end; ++job) {
      const int64_t m = job / nblk, n0 = (job % nblk) * kBlock, n1 = std::min(N, n0 + kBlock);
      const int64_t w = n1 - n0;
      for (int64_t j = 0; j < w; ++j) h[j] = h0 ? h0[m * N + n0 + j] : T(0);
      for (int64_t s = 0; s < L; ++s) {
        const int64_t t = reverse ? L - 1 - s : s;
        const T* at = a + m * sa_m + (time_varying ? t * sa_l : 0) + n0 * sa_n;
        const T* bt = b + (m * L + t) * N + n0;
        T* ot = out + (m * L + t) * N + n0;
        for (int64_t j = 0; j < w; ++j) {
          h[j] = at[j * sa_n] * h[j] + bt[j];
          ot[j] = h[j];
        }
      }
    }
  });
}

void check_args(const at::Tensor& a, const at::Tensor& b, const c10::optional<at::Tensor>& h0) {
  TORCH_CHECK(b.dim() == 3, "scan_fwd: b must have shape (M, L, N), got ", b.sizes());
  TORCH_CHECK(a.dim() == 3, "scan_fwd: a must have shape (M, La, N), got ", a.sizes());
  TORCH_CHECK(a.size(0) == b.size(0) && a.size(2) == b.size(2) && (a.size(1) == 1 || a.size(1) == b.size(1)),
              "scan_fwd: a must have shape (M, 1 or L, N) matching b ", b.sizes(), ", got ", a.sizes());
  TORCH_CHECK(a.scalar_type() == b.scalar_type(), "scan_fwd: a and b must have one dtype, got ",
              a.scalar_type(), " and ", b.scalar_type());
  if (h0.has_value()) {
    TORCH_CHECK(h0->dim() == 2 && h0->size(0) == b.size(0) && h0->size(1) == b.size(2),
                "scan_fwd: h0 must have shape (M, N) = (", b.size(0), ", ", b.size(2), "), got ", h0->sizes());
    TORCH_CHECK(h0->scalar_type() == b.scalar_type(), "scan_fwd: h0 must have the dtype of b");
  }
}

at::Tensor scan_fwd_cpu(const at::Tensor& a, const at::Tensor& b_in, const c10::optional<at::Tensor>& h0_in,
                        bool reverse) {
  check_args(a, b_in, h0_in);
  const at::Tensor b = b_in.contiguous();
  at::Tensor h0;
  if (h0_in.has_value()) h0 = h0_in->contiguous();
  at::Tensor out = at::empty_like(b);
  const int64_t M = b.size(0), L = b.size(1), N = b.size(2);
  if (b.numel() == 0) return out;
  AT_DISPATCH_FLOATING_AND_COMPLEX_TYPES(b.scalar_type(), "scan_fwd_cpu", [&] {
    scan_rows<scalar_t>(a.const_data_ptr<scalar_t>(), a.stride(0), a.stride(1), a.stride(2), a.size(1) != 1,
                        b.const_data_ptr<scalar_t>(), h0.defined() ? h0.const_data_ptr<scalar_t>() : nullptr,
                        out.mutable_data_ptr<scalar_t>(), M, L, N, reverse);
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(ssm, m) {
  m.def("scan_fwd(Tensor a, Tensor b, Tensor? h0, bool reverse) -> Tensor");
}

TORCH_LIBRARY_IMPL(ssm, CPU, m) {
  m.impl("scan_fwd", &scan_fwd_cpu);
}
