// Vandermonde kernel on CUDA: implementations of ssm::vandermonde_fwd / ssm::vandermonde_bwd (schemas in
// vandermonde.cpp). x^l = exp(l log x) with the product l*log(x) formed in double and its phase reduced
// modulo 2 pi before the exp/sincos in T, so float results keep ~1e-6 accuracy for |x| near 1 and long L.
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "ops.h"

namespace ssm {
namespace {

constexpr int kThreads = 256;
constexpr int kAnchor = 32;  // backward: recompute the power from the log every kAnchor steps

// x^l from lr = log|x|, li = arg x (double); x^0 = 1 also for x = 0.
template <typename T>
__device__ __forceinline__ void power(double lr, double li, int64_t l, T& pr, T& pi) {
  if (l == 0) { pr = T(1); pi = T(0); return; }
  const double two_pi = 6.283185307179586;
  const double dl = double(l);
  double th = dl * li;
  th -= two_pi * rint(th / two_pi);
  const T mag = exp(T(dl * lr));
  T s, c;
  sincos(T(th), &s, &c);
  pr = mag * c;
  pi = mag * s;
}

// One thread per output position l of row b; v and log x of the row staged through shared memory.
template <typename T>
__global__ void fwd_kernel(const T* __restrict__ v, const double* __restrict__ lx, T* __restrict__ out, int64_t N,
                           int64_t L, int64_t Rx) {
  __shared__ T sv[2 * kThreads];
  __shared__ double sx[2 * kThreads];
  const int64_t b = blockIdx.y;
  const int64_t l = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const T* vb = v + b * 2 * N;
  const double* xb = lx + (b % Rx) * 2 * N;
  T ar = 0, ai = 0;
  for (int64_t n0 = 0; n0 < N; n0 += blockDim.x) {
    const int64_t n = n0 + threadIdx.x;
    __syncthreads();
    if (n < N) {
      sv[2 * threadIdx.x] = vb[2 * n];
      sv[2 * threadIdx.x + 1] = vb[2 * n + 1];
      sx[2 * threadIdx.x] = xb[2 * n];
      sx[2 * threadIdx.x + 1] = xb[2 * n + 1];
    }
    __syncthreads();
    const int cnt = int(min(int64_t(blockDim.x), N - n0));
    if (l < L) {
      for (int k = 0; k < cnt; ++k) {
        T pr, pi;
        power<T>(sx[2 * k], sx[2 * k + 1], l, pr, pi);
        const T vr = sv[2 * k], vi = sv[2 * k + 1];
        ar += vr * pr - vi * pi;
        ai += vr * pi + vi * pr;
      }
    }
  }
  if (l < L) {
    out[b * 2 * L + 2 * l] = ar;
    out[b * 2 * L + 2 * l + 1] = ai;
  }
}

// One thread per (b, n): A = sum_l h x^l, D = sum_l l h x^l; powers by recurrence re-anchored every kAnchor steps.
template <typename T>
__global__ void bwd_kernel(const T* __restrict__ h, const T* __restrict__ x, const double* __restrict__ lx,
                           T* __restrict__ A, T* __restrict__ D, int64_t N, int64_t L, int64_t Rx) {
  __shared__ T sh[2 * kThreads];
  const int64_t b = blockIdx.y;
  const int64_t n = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t bx = b % Rx;
  const bool active = n < N;
  const T xr = active ? x[bx * 2 * N + 2 * n] : T(0), xi = active ? x[bx * 2 * N + 2 * n + 1] : T(0);
  const double lr = active ? lx[bx * 2 * N + 2 * n] : 0.0, li = active ? lx[bx * 2 * N + 2 * n + 1] : 0.0;
  const T* hb = h + b * 2 * L;
  T ar = 0, ai = 0, dr = 0, di = 0, pr = 1, pi = 0;
  for (int64_t l0 = 0; l0 < L; l0 += blockDim.x) {
    const int64_t l = l0 + threadIdx.x;
    __syncthreads();
    if (l < L) {
      sh[2 * threadIdx.x] = hb[2 * l];
      sh[2 * threadIdx.x + 1] = hb[2 * l + 1];
    }
    __syncthreads();
    const int cnt = int(min(int64_t(blockDim.x), L - l0));
    if (active) {
      for (int k = 0; k < cnt; ++k) {
        const int64_t ll = l0 + k;
        if (ll % kAnchor == 0) power<T>(lr, li, ll, pr, pi);
        const T hr = sh[2 * k], hi = sh[2 * k + 1];
        const T er = hr * pr - hi * pi, ei = hr * pi + hi * pr;
        ar += er;
        ai += ei;
        dr += T(ll) * er;
        di += T(ll) * ei;
        const T t = pr * xr - pi * xi;
        pi = pr * xi + pi * xr;
        pr = t;
      }
    }
  }
  if (active) {
    A[b * 2 * N + 2 * n] = ar;
    A[b * 2 * N + 2 * n + 1] = ai;
    D[b * 2 * N + 2 * n] = dr;
    D[b * 2 * N + 2 * n + 1] = di;
  }
}

template <typename T>
const T* re(const at::Tensor& t) { return reinterpret_cast<const T*>(t.data_ptr()); }
template <typename T>
T* re_mut(at::Tensor& t) { return reinterpret_cast<T*>(t.data_ptr()); }

void check(const at::Tensor& a, const at::Tensor& x, const char* na) {
  check_rows(a, na);
  check_rows(x, "x");
  check_same(a, x, na, "x");
  TORCH_CHECK(a.is_cuda(), na, " must be a CUDA tensor");
  TORCH_CHECK(x.size(0) > 0 && a.size(0) % x.size(0) == 0, "rows of ", na, " must be a multiple of rows of x");
}

// (Rx, N) complex -> (Rx, N, 2) double [log|x|, arg x]
at::Tensor log_pairs(const at::Tensor& x) { return at::view_as_real(at::log(x.to(at::kComplexDouble))).contiguous(); }

at::Tensor vandermonde_fwd_cuda(const at::Tensor& v_, const at::Tensor& x_, int64_t L) {
  check(v_, x_, "v");
  TORCH_CHECK(v_.size(1) == x_.size(1), "v and x must have the same N");
  TORCH_CHECK(L >= 1, "L must be >= 1, got ", L);
  const c10::cuda::CUDAGuard guard(v_.device());
  auto v = v_.contiguous();
  auto lx = log_pairs(x_);
  const int64_t B = v.size(0), N = v.size(1), Rx = x_.size(0);
  auto out = at::empty({B, L}, v.options());
  if (B == 0) return out;
  const dim3 grid(unsigned((L + kThreads - 1) / kThreads), unsigned(B));
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_COMPLEX_TYPES(v.scalar_type(), "vandermonde_fwd_cuda", [&] {
    using T = typename scalar_t::value_type;
    fwd_kernel<T><<<grid, kThreads, 0, stream>>>(re<T>(v), lx.data_ptr<double>(), re_mut<T>(out), N, L, Rx);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

std::tuple<at::Tensor, at::Tensor> vandermonde_bwd_cuda(const at::Tensor& h_, const at::Tensor& x_) {
  check(h_, x_, "h");
  const c10::cuda::CUDAGuard guard(h_.device());
  auto h = h_.contiguous(), x = x_.contiguous();
  auto lx = log_pairs(x);
  const int64_t B = h.size(0), L = h.size(1), Rx = x.size(0), N = x.size(1);
  auto A = at::empty({B, N}, x.options()), D = at::empty({B, N}, x.options());
  if (B == 0 || N == 0) return {A, D};
  const dim3 grid(unsigned((N + kThreads - 1) / kThreads), unsigned(B));
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_COMPLEX_TYPES(x.scalar_type(), "vandermonde_bwd_cuda", [&] {
    using T = typename scalar_t::value_type;
    bwd_kernel<T><<<grid, kThreads, 0, stream>>>(re<T>(h), re<T>(x), lx.data_ptr<double>(), re_mut<T>(A), re_mut<T>(D),
                                                 N, L, Rx);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {A, D};
}

}  // namespace

TORCH_LIBRARY_IMPL(ssm, CUDA, m) {
  m.impl("vandermonde_fwd", &vandermonde_fwd_cuda);
  m.impl("vandermonde_bwd", &vandermonde_bwd_cuda);
}

}  // namespace ssm
