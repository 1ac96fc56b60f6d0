// CUDA kernels of ssm::scan_fwd / scan_bwd (schemas and CPU kernels in scan.cpp): h_l = a_l * h_{l-1} + b_l.
// One thread per (row m, channel n) walks L sequentially; consecutive threads take consecutive channels,
// so every step's loads/stores of b, a and out are coalesced. The recurrence is memory-bound, so this
// reads each element once and needs no workspace. Same argument layout as the CPU kernel.
#include <torch/library.h>
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>

namespace {

template <typename T>
__global__ void scan_kernel(const T* __restrict__ a, int64_t sa_m, int64_t sa_l, int64_t sa_n, bool time_varying,
                            const T* __restrict__ b, const T* __restrict__ h0, T* __restrict__ out, int64_t M,
                            int64_t L, int64_t N, bool reverse) {
  const int64_t nblk = (N + blockDim.x - 1) / blockDim.x;
  const int64_t m = blockIdx.x / nblk;
  const int64_t n = (blockIdx.x % nblk) * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (n >= N || m >= M) return;
  T h = h0 ? h0[m * N + n] : T(0);
  const T* arow = a + m * sa_m + n * sa_n;
  for (int64_t s = 0; s < L; ++s) {
    const int64_t t = reverse ? L - 1 - s : s;
    const T at = arow[time_varying ? t * sa_l : 0];
    h = at * h + b[(m * L + t) * N + n];
    out[(m * L + t) * N + n] = h;
  }
}

template <typename T>
__device__ inline T cj(T x) { return x; }
template <typename T>
__device__ inline c10::complex<T> cj(c10::complex<T> x) { return c10::complex<T>(x.real(), -x.imag()); }

// The adjoint scan fused with grad_a and grad_h0 (see scan.cpp for the formulas); one thread per (m, n).
template <typename T>
__global__ void scan_bwd_kernel(const T* __restrict__ a, int64_t sa_m, int64_t sa_l, int64_t sa_n, bool time_varying,
                                const T* __restrict__ h, const T* __restrict__ h0, const T* __restrict__ g,
                                T* __restrict__ gb, T* __restrict__ ga, T* __restrict__ gh0, int64_t M, int64_t L,
                                int64_t N, bool reverse) {
  const int64_t nblk = (N + blockDim.x - 1) / blockDim.x;
  const int64_t m = blockIdx.x / nblk;
  const int64_t n = (blockIdx.x % nblk) * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (n >= N || m >= M) return;
  const T* arow = a + m * sa_m + n * sa_n;
  T lam = T(0), acc = T(0);
  for (int64_t s = 0; s < L; ++s) {
    const int64_t t = reverse ? s : L - 1 - s;
    const int64_t nxt = reverse ? t - 1 : t + 1, prv = reverse ? t + 1 : t - 1;
    const bool has_next = nxt >= 0 && nxt < L, has_prev = prv >= 0 && prv < L;
    lam = g[(m * L + t) * N + n] + (has_next ? cj(arow[time_varying ? nxt * sa_l : 0]) * lam : T(0));
    gb[(m * L + t) * N + n] = lam;
    if (ga) {
      const T hp = has_prev ? h[(m * L + prv) * N + n] : (h0 ? h0[m * N + n] : T(0));
      if (time_varying)
        ga[(m * L + t) * N + n] = lam * cj(hp);
      else
        acc += lam * cj(hp);
    }
  }
  if (ga && !time_varying) ga[m * N + n] = acc;
  if (gh0) gh0[m * N + n] = cj(arow[time_varying ? (reverse ? L - 1 : 0) * sa_l : 0]) * lam;
}

at::Tensor scan_fwd_cuda(const at::Tensor& a, const at::Tensor& b_in, const c10::optional<at::Tensor>& h0_in,
                         bool reverse) {
  TORCH_CHECK(b_in.dim() == 3 && a.dim() == 3, "scan_fwd: a and b must be 3-d (M, L, N), got ", a.sizes(), " and ",
              b_in.sizes());
  TORCH_CHECK(a.size(0) == b_in.size(0) && a.size(2) == b_in.size(2) &&
                  (a.size(1) == 1 || a.size(1) == b_in.size(1)),
              "scan_fwd: a must have shape (M, 1 or L, N) matching b ", b_in.sizes(), ", got ", a.sizes());
  TORCH_CHECK(a.scalar_type() == b_in.scalar_type(), "scan_fwd: a and b must have one dtype");
  TORCH_CHECK(a.is_cuda() && b_in.is_cuda(), "scan_fwd: CUDA kernel called with non-CUDA tensors");
  const c10::cuda::CUDAGuard guard(b_in.device());
  const at::Tensor b = b_in.contiguous();
  at::Tensor h0;
  if (h0_in.has_value()) {
    h0 = h0_in->contiguous();
    TORCH_CHECK(h0.dim() == 2 && h0.size(0) == b.size(0) && h0.size(1) == b.size(2) &&
                    h0.scalar_type() == b.scalar_type(),
                "scan_fwd: h0 must have shape (M, N) and the dtype of b, got ", h0.sizes());
  }
  at::Tensor out = at::empty_like(b);
  const int64_t M = b.size(0), L = b.size(1), N = b.size(2);
  if (b.numel() == 0) return out;
  const int threads = N >= 128 ? 128 : 32;
  const int64_t blocks = M * ((N + threads - 1) / threads);
  TORCH_CHECK(blocks < (int64_t{1} << 31), "scan_fwd: too many rows for one launch: ", M);
  const dim3 grid(static_cast<unsigned>(blocks));
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_AND_COMPLEX_TYPES(b.scalar_type(), "scan_fwd_cuda", [&] {
    scan_kernel<scalar_t><<<grid, threads, 0, stream>>>(
        a.const_data_ptr<scalar_t>(), a.stride(0), a.stride(1), a.stride(2), a.size(1) != 1,
        b.const_data_ptr<scalar_t>(), h0.defined() ? h0.const_data_ptr<scalar_t>() : nullptr,
        out.mutable_data_ptr<scalar_t>(), M, L, N, reverse);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> scan_bwd_cuda(const at::Tensor& a, const at::Tensor& h_in,
                                                             const c10::optional<at::Tensor>& h0_in,
                                                             const at::Tensor& g_in, bool reverse, bool need_grad_a) {
  TORCH_CHECK(h_in.dim() == 3 && a.dim() == 3 && a.size(0) == h_in.size(0) && a.size(2) == h_in.size(2) &&
                  (a.size(1) == 1 || a.size(1) == h_in.size(1)) && g_in.sizes() == h_in.sizes(),
              "scan_bwd: shapes a ", a.sizes(), ", h ", h_in.sizes(), ", grad ", g_in.sizes(), " do not match");
  TORCH_CHECK(a.scalar_type() == h_in.scalar_type() && g_in.scalar_type() == h_in.scalar_type(),
              "scan_bwd: a, h and grad must have one dtype");
  const c10::cuda::CUDAGuard guard(h_in.device());
  const at::Tensor h = h_in.contiguous(), g = g_in.contiguous();
  at::Tensor h0;
  if (h0_in.has_value()) h0 = h0_in->contiguous();
  const int64_t M = h.size(0), L = h.size(1), N = h.size(2);
  at::Tensor gb = at::empty_like(h);
  at::Tensor ga = need_grad_a ? at::empty({M, a.size(1), N}, h.options()) : at::Tensor();
  at::Tensor gh0 = h0.defined() ? at::empty({M, N}, h.options()) : at::Tensor();
  if (h.numel() == 0) return {gb, ga, gh0};
  const int threads = N >= 128 ? 128 : 32;
  const int64_t blocks = M * ((N + threads - 1) / threads);
  TORCH_CHECK(blocks < (int64_t{1} << 31), "scan_bwd: too many rows for one launch: ", M);
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_AND_COMPLEX_TYPES(h.scalar_type(), "scan_bwd_cuda", [&] {
    scan_bwd_kernel<scalar_t><<<static_cast<unsigned>(blocks), threads, 0, stream>>>(
        a.const_data_ptr<scalar_t>(), a.stride(0), a.stride(1), a.stride(2), a.size(1) != 1,
        h.const_data_ptr<scalar_t>(), h0.defined() ? h0.const_data_ptr<scalar_t>() : nullptr,
        g.const_data_ptr<scalar_t>(), gb.mutable_data_ptr<scalar_t>(),
        ga.defined() ? ga.mutable_data_ptr<scalar_t>() : nullptr,
        gh0.defined() ? gh0.mutable_data_ptr<scalar_t>() : nullptr, M, L, N, reverse);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {gb, ga, gh0};
}

}  // namespace

TORCH_LIBRARY_IMPL(ssm, CUDA, m) {
  m.impl("scan_fwd", &scan_fwd_cuda);
  m.impl("scan_bwd", &scan_bwd_cuda);
}
