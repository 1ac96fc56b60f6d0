// Diagonal linear recurrence h_l = a_l * h_{l-1} + b_l (reverse: h_l = a_l * h_{l+1} + b_l), CPU kernel.
//
// ssm::scan_fwd(a, b, h0, reverse) -> h with b (M, L, N) contiguous, a (M, La, N) any strides (La in {1, L};
// stride 0 over broadcast dims is fine), h0 (M, N) contiguous or None. Real or complex (float/double).
// ssm::scan_bwd(a, h, h0, grad, reverse) -> (grad_b, grad_a, grad_h0): the adjoint recurrence
// lambda_l = grad_l + conj(a_l+1) lambda_l+1 walked the other way in one pass, fused with
// grad_a = lambda_l conj(h_l-1) (summed over L inside the kernel when a is time-invariant) and
// grad_h0 = conj(a_0) lambda_0. grad_a has a's (M, La, N) shape (contiguous).
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

template <typename T>
inline T cj(T x) { return x; }
template <typename T>
inline c10::complex<T> cj(c10::complex<T> x) { return c10::complex<T>(x.real(), -x.imag()); }

template <typename T>
void scan_rows_bwd(const T* a, int64_t sa_m, int64_t sa_l, int64_t sa_n, bool time_varying, const T* h,
                   const T* h0, const T* g, T* gb, T* ga, T* gh0, int64_t M, int64_t L, int64_t N, bool reverse) {
  const int64_t nblk = (N + kBlock - 1) / kBlock;
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 15) / std::max<int64_t>(1, L * kBlock));
  at::parallel_for(0, M * nblk, grain, [&](int64_t begin, int64_t end) {
    T lam[kBlock], acc[kBlock];
    for (int64_t job = begin; job < end; ++job) {
      const int64_t m = job / nblk, n0 = (job % nblk) * kBlock, n1 = std::min(N, n0 + kBlock);
      const int64_t w = n1 - n0;
      const T* arow = a + m * sa_m + n0 * sa_n;
      for (int64_t j = 0; j < w; ++j) lam[j] = acc[j] = T(0);
      for (int64_t s = 0; s < L; ++s) {
        const int64_t t = reverse ? s : L - 1 - s;      // the adjoint runs against the recurrence
        const int64_t nxt = reverse ? t - 1 : t + 1;    // the step whose a multiplies h_t
        const int64_t prv = reverse ? t + 1 : t - 1;    // the step whose h enters h_t
        const bool has_next = nxt >= 0 && nxt < L, has_prev = prv >= 0 && prv < L;
        const T* an = arow + (time_varying ? nxt * sa_l : 0);
        const T* gt = g + (m * L + t) * N + n0;
        const T* hp = has_prev ? h + (m * L + prv) * N + n0 : (h0 ? h0 + m * N + n0 : nullptr);
        T* gbt = gb + (m * L + t) * N + n0;
        for (int64_t j = 0; j < w; ++j) {
          lam[j] = gt[j] + (has_next ? cj(an[j * sa_n]) * lam[j] : T(0));
          gbt[j] = lam[j];
        }
        if (ga) {
          if (time_varying) {
            T* gat = ga + (m * L + t) * N + n0;
            for (int64_t j = 0; j < w; ++j) gat[j] = hp ? lam[j] * cj(hp[j]) : T(0);
          } else if (hp) {
            for (int64_t j = 0; j < w; ++j) acc[j] += lam[j] * cj(hp[j]);
          }
        }
      }
      if (ga && !time_varying)
        for (int64_t j = 0; j < w; ++j) ga[m * N + n0 + j] = acc[j];
      if (gh0) {
        const T* a0 = arow + (time_varying ? (reverse ? L - 1 : 0) * sa_l : 0);
        for (int64_t j = 0; j < w; ++j) gh0[m * N + n0 + j] = cj(a0[j * sa_n]) * lam[j];
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

std::tuple<at::Tensor, at::Tensor, at::Tensor> scan_bwd_cpu(const at::Tensor& a, const at::Tensor& h_in,
                                                            const c10::optional<at::Tensor>& h0_in,
                                                            const at::Tensor& g_in, bool reverse, bool need_grad_a) {
  check_args(a, h_in, h0_in);
  TORCH_CHECK(g_in.sizes() == h_in.sizes() && g_in.scalar_type() == h_in.scalar_type(),
              "scan_bwd: grad must match h ", h_in.sizes(), ", got ", g_in.sizes());
  const at::Tensor h = h_in.contiguous(), g = g_in.contiguous();
  at::Tensor h0;
  if (h0_in.has_value()) h0 = h0_in->contiguous();
  const int64_t M = h.size(0), L = h.size(1), N = h.size(2);
  at::Tensor gb = at::empty_like(h);
  at::Tensor ga = need_grad_a ? at::empty({M, a.size(1), N}, h.options()) : at::Tensor();
  at::Tensor gh0 = h0.defined() ? at::empty({M, N}, h.options()) : at::Tensor();
  if (h.numel() == 0) return {gb, ga, gh0};
  AT_DISPATCH_FLOATING_AND_COMPLEX_TYPES(h.scalar_type(), "scan_bwd_cpu", [&] {
    scan_rows_bwd<scalar_t>(a.const_data_ptr<scalar_t>(), a.stride(0), a.stride(1), a.stride(2), a.size(1) != 1,
                            h.const_data_ptr<scalar_t>(), h0.defined() ? h0.const_data_ptr<scalar_t>() : nullptr,
                            g.const_data_ptr<scalar_t>(), gb.mutable_data_ptr<scalar_t>(),
                            ga.defined() ? ga.mutable_data_ptr<scalar_t>() : nullptr,
                            gh0.defined() ? gh0.mutable_data_ptr<scalar_t>() : nullptr, M, L, N, reverse);
  });
  return {gb, ga, gh0};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(ssm, m) {
  m.def("scan_fwd(Tensor a, Tensor b, Tensor? h0, bool reverse) -> Tensor");
  m.def("scan_bwd(Tensor a, Tensor h, Tensor? h0, Tensor grad, bool reverse, bool need_grad_a) -> "
        "(Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(ssm, CPU, m) {
  m.impl("scan_fwd", &scan_fwd_cpu);
  m.impl("scan_bwd", &scan_bwd_cpu);
}
