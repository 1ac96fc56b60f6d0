// Cauchy kernel on CUDA: implementations of ssm::cauchy_fwd / ssm::cauchy_bwd (schemas in cauchy.cpp).
// Complex data is read as interleaved (re, im) pairs of T = float or double.
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "ops.h"

namespace ssm {
namespace {

constexpr int kThreads = 256;

// (1 / (dr + i di))^P
template <typename T, int P>
__device__ __forceinline__ void recip(T dr, T di, T& rr, T& ri) {
  const T s = T(1) / (dr * dr + di * di);
  rr = dr * s;
  ri = -di * s;
  if (P == 2) {
    const T t = rr * rr - ri * ri;
    ri = T(2) * rr * ri;
    rr = t;
  }
}

// One thread per output position l of row b; rows of v and w staged through shared memory.
template <typename T, bool CONJ, int P>
__global__ void fwd_kernel(const T* __restrict__ v, const T* __restrict__ z, const T* __restrict__ w,
                           T* __restrict__ out, int64_t N, int64_t L, int64_t Rw) {
  __shared__ T sv[2 * kThreads], sw[2 * kThreads];
  const int64_t b = blockIdx.y;
  const int64_t l = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const T* vb = v + b * 2 * N;
  const T* wb = w + (b % Rw) * 2 * N;
  const T zr = l < L ? z[2 * l] : T(0), zi = l < L ? z[2 * l + 1] : T(1);
  T ar = 0, ai = 0;
  for (int64_t n0 = 0; n0 < N; n0 += blockDim.x) {
    const int64_t n = n0 + threadIdx.x;
    __syncthreads();
    if (n < N) {
      sv[2 * threadIdx.x] = vb[2 * n];
      sv[2 * threadIdx.x + 1] = vb[2 * n + 1];
      sw[2 * threadIdx.x] = wb[2 * n];
      sw[2 * threadIdx.x + 1] = wb[2 * n + 1];
    }
    __syncthreads();
    const int cnt = int(min(int64_t(blockDim.x), N - n0));
    for (int k = 0; k < cnt; ++k) {
      const T vr = sv[2 * k], vi = sv[2 * k + 1], wr = sw[2 * k], wi = sw[2 * k + 1];
      const T dr = zr - wr;
      T rr, ri;
      recip<T, P>(dr, zi - wi, rr, ri);
      ar += vr * rr - vi * ri;
      ai += vr * ri + vi * rr;
      if (CONJ) {
        recip<T, P>(dr, zi + wi, rr, ri);
        ar += vr * rr + vi * ri;
        ai += vr * ri - vi * rr;
      }
    }
  }
  if (l < L) {
    out[b * 2 * L + 2 * l] = ar;
    out[b * 2 * L + 2 * l + 1] = ai;
  }
}

// One thread per (b, n): S1 = sum_l g/(zeta - conj w) (+ conj(sum_l g/(zeta - w))), S2 the same squared.
template <typename T, bool CONJ>
__global__ void bwd_kernel(const T* __restrict__ g, const T* __restrict__ z, const T* __restrict__ w,
                           T* __restrict__ s1, T* __restrict__ s2, int64_t N, int64_t L, int64_t Rw) {
  __shared__ T sg[2 * kThreads], sz[2 * kThreads];
  const int64_t b = blockIdx.y;
  const int64_t n = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const T* gb = g + b * 2 * L;
  const T wr = n < N ? w[(b % Rw) * 2 * N + 2 * n] : T(0), wi = n < N ? w[(b % Rw) * 2 * N + 2 * n + 1] : T(0);
  T p1r = 0, p1i = 0, p2r = 0, p2i = 0;
  for (int64_t l0 = 0; l0 < L; l0 += blockDim.x) {
    const int64_t l = l0 + threadIdx.x;
    __syncthreads();
    if (l < L) {
      sg[2 * threadIdx.x] = gb[2 * l];
      sg[2 * threadIdx.x + 1] = gb[2 * l + 1];
      sz[2 * threadIdx.x] = z[2 * l];
      sz[2 * threadIdx.x + 1] = -z[2 * l + 1];  // zeta = conj z
    }
    __syncthreads();
    const int cnt = int(min(int64_t(blockDim.x), L - l0));
    for (int k = 0; k < cnt; ++k) {
      const T gr = sg[2 * k], gi = sg[2 * k + 1], yr = sz[2 * k], yi = sz[2 * k + 1];
      T ir, ii;
      recip<T, 1>(yr - wr, yi + wi, ir, ii);
      T tr = gr * ir - gi * ii, ti = gr * ii + gi * ir;
      p1r += tr;
      p1i += ti;
      p2r += tr * ir - ti * ii;
      p2i += tr * ii + ti * ir;
      if (CONJ) {
        recip<T, 1>(yr - wr, yi - wi, ir, ii);
        tr = gr * ir - gi * ii;
        ti = gr * ii + gi * ir;
        p1r += tr;
        p1i -= ti;
        p2r += tr * ir - ti * ii;
        p2i -= tr * ii + ti * ir;
      }
    }
  }
  if (n < N) {
    s1[b * 2 * N + 2 * n] = p1r;
    s1[b * 2 * N + 2 * n + 1] = p1i;
    s2[b * 2 * N + 2 * n] = p2r;
    s2[b * 2 * N + 2 * n + 1] = p2i;
  }
}

template <typename T>
const T* re(const at::Tensor& t) { return reinterpret_cast<const T*>(t.data_ptr()); }
template <typename T>
T* re_mut(at::Tensor& t) { return reinterpret_cast<T*>(t.data_ptr()); }

void check(const at::Tensor& a, const at::Tensor& z, const at::Tensor& w, const char* na) {
  check_rows(a, na);
  check_rows(w, "w");
  check_same(a, w, na, "w");
  check_same(z, w, "z", "w");
  TORCH_CHECK(a.is_cuda(), na, " must be a CUDA tensor");
  TORCH_CHECK(z.dim() == 1, "z must be 1-D (L,), got ", z.dim(), "-D");
  TORCH_CHECK(w.size(0) > 0 && a.size(0) % w.size(0) == 0, "rows of ", na, " must be a multiple of rows of w");
}

at::Tensor cauchy_fwd_cuda(const at::Tensor& v_, const at::Tensor& z_, const at::Tensor& w_, bool conj, int64_t power) {
  check(v_, z_, w_, "v");
  TORCH_CHECK(v_.size(1) == w_.size(1), "v and w must have the same N");
  TORCH_CHECK(power == 1 || power == 2, "power must be 1 or 2, got ", power);
  const c10::cuda::CUDAGuard guard(v_.device());
  auto v = v_.contiguous(), z = z_.contiguous(), w = w_.contiguous();
  const int64_t B = v.size(0), N = v.size(1), L = z.size(0), Rw = w.size(0);
  auto out = at::empty({B, L}, v.options());
  if (B == 0 || L == 0) return out;
  const dim3 grid(unsigned((L + kThreads - 1) / kThreads), unsigned(B));
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_COMPLEX_TYPES(v.scalar_type(), "cauchy_fwd_cuda", [&] {
    using T = typename scalar_t::value_type;
    auto args = std::make_tuple(re<T>(v), re<T>(z), re<T>(w), re_mut<T>(out), N, L, Rw);
    auto launch = [&](auto kernel) {
      std::apply([&](auto... a) { kernel<<<grid, kThreads, 0, stream>>>(a...); }, args);
    };
    if (conj && power == 2) launch(fwd_kernel<T, true, 2>);
    else if (conj) launch(fwd_kernel<T, true, 1>);
    else if (power == 2) launch(fwd_kernel<T, false, 2>);
    else launch(fwd_kernel<T, false, 1>);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

std::tuple<at::Tensor, at::Tensor> cauchy_bwd_cuda(const at::Tensor& g_, const at::Tensor& z_, const at::Tensor& w_,
                                                   bool conj) {
  check(g_, z_, w_, "g");
  TORCH_CHECK(g_.size(1) == z_.size(0), "g must have L = len(z) columns");
  const c10::cuda::CUDAGuard guard(g_.device());
  auto g = g_.contiguous(), z = z_.contiguous(), w = w_.contiguous();
  const int64_t B = g.size(0), N = w.size(1), L = z.size(0), Rw = w.size(0);
  auto s1 = at::empty({B, N}, w.options()), s2 = at::empty({B, N}, w.options());
  if (B == 0 || N == 0) return {s1, s2};
  const dim3 grid(unsigned((N + kThreads - 1) / kThreads), unsigned(B));
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_COMPLEX_TYPES(w.scalar_type(), "cauchy_bwd_cuda", [&] {
    using T = typename scalar_t::value_type;
    if (conj)
      bwd_kernel<T, true><<<grid, kThreads, 0, stream>>>(re<T>(g), re<T>(z), re<T>(w), re_mut<T>(s1), re_mut<T>(s2), N, L, Rw);
    else
      bwd_kernel<T, false><<<grid, kThreads, 0, stream>>>(re<T>(g), re<T>(z), re<T>(w), re_mut<T>(s1), re_mut<T>(s2), N, L, Rw);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {s1, s2};
}

}  // namespace

TORCH_LIBRARY_IMPL(ssm, CUDA, m) {
  m.impl("cauchy_fwd", &cauchy_fwd_cuda);
  m.impl("cauchy_bwd", &cauchy_bwd_cuda);
}

}  // namespace ssm
