// Log-space Vandermonde kernels on CUDA: implementations of ssm::log_vandermonde_fwd / _bwd / _transpose (schemas
// and CPU kernels in vandermonde.cpp). log_x arrives in complex128; x^l = exp(l log x) with the phase l * arg x
// formed in double and reduced modulo 2 pi before the exp/sincos in T, and x^0 = 1 for every x.
//
// Forward: one thread per run of kRun consecutive positions of a row: one exp/sincos for the first power of the run,
// then kRun - 1 complex multiplications by x (error grows by ~1 ulp each), n staged through shared memory.
// Sums (backward, transpose): a block per (row, tile of 32 n, segment of L); lanes walk positions l = t0 + 32 i +
// lane with x^l = x^t0 * x^lane * (x^32)^i (x^t0 per tile and n from the log, x^lane and x^32 per thread and n,
// at most kTile / 32 - 1 chained multiplications); values staged in shared memory, both sums of a thread's n in
// registers, warp shuffles, L-segments summed by one reduction afterwards. No atomics, no (R, N, L) temporary.
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "cuda_utils.cuh"
#include "ops.h"

namespace ssm {
namespace {

constexpr int kFwdThreads = 128;
constexpr int kRun = 4;                    // forward positions per thread
constexpr int kWarps = 8;                  // sums block: 8 warps
constexpr int kPerWarp = 4;                // n per warp
constexpr int kTileN = kWarps * kPerWarp;  // n per sums block
constexpr int kTile = 128;                 // positions per anchor x^t0 (chains of <= kTile / 32 - 1 products)

// x^l = exp(l (lr + i li)) in T; l = 0 gives 1 for every x (also x = 0 and NaN).
template <typename T>
__device__ __forceinline__ void power(double lr, double li, int64_t l, T& pr, T& pi) {
  if (l == 0) { pr = T(1); pi = T(0); return; }
  const double two_pi = 6.283185307179586;
  const double dl = double(l);
  double th = dl * li;
  th -= two_pi * rint(th * (1.0 / two_pi));
  const T mag = exp(T(dl * lr));
  T s, c;
  sincos(T(th), &s, &c);
  pr = mag * c;
  pi = mag * s;
}

template <typename T>
__device__ __forceinline__ void cmul(T ar, T ai, T br, T bi, T& cr, T& ci) {
  const T t = ar * br - ai * bi;
  ci = ar * bi + ai * br;
  cr = t;
}

template <typename T>
struct NVal {
  T vr, vi, xr, xi;
  double lr, li;
};

template <typename T>
__global__ void __launch_bounds__(kFwdThreads) fwd_kernel(const T* __restrict__ v, const double* __restrict__ lx,
                                                          T* __restrict__ out, int64_t N, int64_t L, int64_t Rx) {
  __shared__ NVal<T> sn[kFwdThreads];
  const int64_t b = blockIdx.x;
  const int64_t l0 = (int64_t(blockIdx.y) * kFwdThreads + threadIdx.x) * kRun;
  const T* vb = v + b * 2 * N;
  const double* xb = lx + (b % Rx) * 2 * N;
  T ar[kRun], ai[kRun];
#pragma unroll
  for (int k = 0; k < kRun; ++k) ar[k] = ai[k] = T(0);
  for (int64_t n0 = 0; n0 < N; n0 += kFwdThreads) {
    const int64_t n = n0 + threadIdx.x;
    __syncthreads();
    if (n < N) {
      NVal<T> t;
      t.vr = vb[2 * n];
      t.vi = vb[2 * n + 1];
      t.lr = xb[2 * n];
      t.li = xb[2 * n + 1];
      power<T>(t.lr, t.li, 1, t.xr, t.xi);
      sn[threadIdx.x] = t;
    }
    __syncthreads();
    const int cnt = int(min(int64_t(kFwdThreads), N - n0));
    if (l0 < L) {
      for (int k = 0; k < cnt; ++k) {
        const NVal<T> t = sn[k];
        T pr, pi;
        power<T>(t.lr, t.li, l0, pr, pi);
#pragma unroll
        for (int j = 0; j < kRun; ++j) {
          if (j > 0) cmul(pr, pi, t.xr, t.xi, pr, pi);
          ar[j] += t.vr * pr - t.vi * pi;
          ai[j] += t.vr * pi + t.vi * pr;
        }
      }
    }
  }
#pragma unroll
  for (int j = 0; j < kRun; ++j) {
    if (l0 + j < L) {
      out[b * 2 * L + 2 * (l0 + j)] = ar[j];
      out[b * 2 * L + 2 * (l0 + j) + 1] = ai[j];
    }
  }
}

// Partial A = sum_l h_l x^l and D = sum_l l h_l x^l of (row b, n-tile, L-segment) -> A/D[(seg * R + b) * N + n].
// h complex (COMPLEX_H) or real; A or D may be null when not wanted.
template <typename T, bool COMPLEX_H>
__global__ void __launch_bounds__(kWarps * 32) sums_kernel(const T* __restrict__ h, const double* __restrict__ lx,
                                                           T* __restrict__ A, T* __restrict__ D, int64_t N,
                                                           int64_t L, int64_t Rx, int64_t R, int64_t seg_len) {
  __shared__ T sh[2][kTile];
  __shared__ T sanc[2][kTileN];
  __shared__ double slx[2][kTileN];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t b = blockIdx.x, seg = blockIdx.z;
  const int64_t ntile = int64_t(blockIdx.y) * kTileN;
  const double* xb = lx + (b % Rx) * 2 * N;
  if (threadIdx.x < kTileN) {
    const int64_t n = ntile + threadIdx.x;
    slx[0][threadIdx.x] = n < N ? xb[2 * n] : 0.0;
    slx[1][threadIdx.x] = n < N ? xb[2 * n + 1] : 0.0;
  }
  __syncthreads();
  T xlr[kPerWarp], xli[kPerWarp], x32r[kPerWarp], x32i[kPerWarp];
  T sar[kPerWarp], sai[kPerWarp], sdr[kPerWarp], sdi[kPerWarp];
#pragma unroll
  for (int k = 0; k < kPerWarp; ++k) {
    const int nl = warp + kWarps * k;
    power<T>(slx[0][nl], slx[1][nl], lane, xlr[k], xli[k]);
    power<T>(slx[0][nl], slx[1][nl], 32, x32r[k], x32i[k]);
    sar[k] = sai[k] = sdr[k] = sdi[k] = T(0);
  }
  const int W = COMPLEX_H ? 2 : 1;
  const T* hb = h + b * W * L;
  const int64_t lbeg = seg * seg_len, lend = min(L, lbeg + seg_len);
  for (int64_t t0 = lbeg; t0 < lend; t0 += kTile) {
    __syncthreads();
    for (int j = threadIdx.x; j < kTile; j += kWarps * 32) {
      const int64_t l = t0 + j;
      sh[0][j] = l < lend ? hb[W * l] : T(0);
      sh[1][j] = (COMPLEX_H && l < lend) ? hb[W * l + 1] : T(0);
    }
    if (threadIdx.x < kTileN) power<T>(slx[0][threadIdx.x], slx[1][threadIdx.x], t0, sanc[0][threadIdx.x],
                                       sanc[1][threadIdx.x]);
    __syncthreads();
#pragma unroll
    for (int k = 0; k < kPerWarp; ++k) {
      const int nl = warp + kWarps * k;
      T pr, pi;
      cmul(sanc[0][nl], sanc[1][nl], xlr[k], xli[k], pr, pi);  // x^(t0 + lane)
#pragma unroll
      for (int i = 0; i < kTile / 32; ++i) {
        const int j = 32 * i + lane;
        if (i > 0) cmul(pr, pi, x32r[k], x32i[k], pr, pi);
        if (t0 + j < lend) {  // skip padding: 0 * inf or 0 * NaN powers must not leak into the sums
          const T hr = sh[0][j];
          T er, ei;
          if (COMPLEX_H) {
            const T hi = sh[1][j];
            er = hr * pr - hi * pi;
            ei = hr * pi + hi * pr;
          } else {
            er = hr * pr;
            ei = hr * pi;
          }
          sar[k] += er;
          sai[k] += ei;
          const T lf = T(t0 + j);
          sdr[k] += lf * er;
          sdi[k] += lf * ei;
        }
      }
    }
  }
#pragma unroll
  for (int k = 0; k < kPerWarp; ++k) {
    const T a_r = warp_sum(sar[k]), a_i = warp_sum(sai[k]), d_r = warp_sum(sdr[k]), d_i = warp_sum(sdi[k]);
    const int64_t n = ntile + warp + kWarps * k;
    if (lane == 0 && n < N) {
      const int64_t o = 2 * ((seg * R + b) * N + n);
      if (A != nullptr) { A[o] = a_r; A[o + 1] = a_i; }
      if (D != nullptr) { D[o] = d_r; D[o + 1] = d_i; }
    }
  }
}

void check(const at::Tensor& a, const at::Tensor& log_x, const char* na) {
  check_log_x(a, log_x, na);
  TORCH_CHECK(a.is_cuda(), na, " must be a CUDA tensor");
}

const double* lx_ptr(const at::Tensor& log_x) { return reinterpret_cast<const double*>(log_x.data_ptr()); }

at::Tensor log_vandermonde_fwd_cuda(const at::Tensor& v_, const at::Tensor& log_x_, int64_t L) {
  check(v_, log_x_, "v");
  TORCH_CHECK(v_.is_complex(), "v must be complex, got ", v_.scalar_type());
  TORCH_CHECK(v_.size(1) == log_x_.size(1), "v and log_x must have the same N");
  TORCH_CHECK(L >= 0, "L must be >= 0, got ", L);
  const c10::cuda::CUDAGuard guard(v_.device());
  auto v = v_.contiguous(), log_x = log_x_.contiguous();
  const int64_t B = v.size(0), N = v.size(1), Rx = log_x.size(0);
  auto out = at::empty({B, L}, v.options());
  if (B == 0 || L == 0) return out;
  const int64_t per_block = int64_t(kFwdThreads) * kRun;
  TORCH_CHECK((L + per_block - 1) / per_block < 65536, "log_vandermonde_fwd: L too large for one launch: ", L);
  const dim3 grid{unsigned(B), unsigned((L + per_block - 1) / per_block)};
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_COMPLEX_TYPES(v.scalar_type(), "log_vandermonde_fwd_cuda", [&] {
    using T = typename scalar_t::value_type;
    fwd_kernel<T><<<grid, kFwdThreads, 0, stream>>>(re<T>(v), lx_ptr(log_x), re_mut<T>(out), N, L, Rx);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

// A and/or D (R, N) complex of dtype `ctype` from h (R, L) complex or real.
std::tuple<at::Tensor, at::Tensor> sums(const at::Tensor& h, const at::Tensor& log_x, bool want_a, bool want_d,
                                        at::ScalarType ctype) {
  const int64_t B = h.size(0), L = h.size(1), Rx = log_x.size(0), N = log_x.size(1);
  auto opts = h.options().dtype(ctype);
  if (B == 0 || N == 0 || L == 0) return {at::zeros({B, N}, opts), at::zeros({B, N}, opts)};
  TORCH_CHECK(N < 65536 * kTileN, "log_vandermonde: N too large for one launch: ", N);
  const int64_t tiles = (N + kTileN - 1) / kTileN;
  const int64_t S = l_splits(B * tiles, L, 4 * kTile);
  const int64_t seg = ((L + S - 1) / S + kTile - 1) / kTile * kTile;
  const int64_t nseg = (L + seg - 1) / seg;
  auto A = want_a ? at::empty({nseg, B, N}, opts) : at::Tensor();
  auto D = want_d ? at::empty({nseg, B, N}, opts) : at::Tensor();
  const dim3 grid{unsigned(B), unsigned(tiles), unsigned(nseg)};
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(c10::toRealValueType(ctype), "log_vandermonde_sums_cuda", [&] {
    using T = scalar_t;
    T* ap = want_a ? re_mut<T>(A) : nullptr;
    T* dp = want_d ? re_mut<T>(D) : nullptr;
    if (h.is_complex())
      sums_kernel<T, true><<<grid, kWarps * 32, 0, stream>>>(re<T>(h), lx_ptr(log_x), ap, dp, N, L, Rx, B, seg);
    else
      sums_kernel<T, false><<<grid, kWarps * 32, 0, stream>>>(re<T>(h), lx_ptr(log_x), ap, dp, N, L, Rx, B, seg);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {want_a ? fold_splits(A) : at::Tensor(), want_d ? fold_splits(D) : at::Tensor()};
}

std::tuple<at::Tensor, at::Tensor> log_vandermonde_bwd_cuda(const at::Tensor& h_, const at::Tensor& log_x_) {
  check(h_, log_x_, "h");
  TORCH_CHECK(h_.is_complex(), "h must be complex, got ", h_.scalar_type());
  const c10::cuda::CUDAGuard guard(h_.device());
  return sums(h_.contiguous(), log_x_.contiguous(), true, true, h_.scalar_type());
}

at::Tensor log_vandermonde_transpose_cuda(const at::Tensor& u_, const at::Tensor& log_x_, bool weighted) {
  check(u_, log_x_, "u");
  TORCH_CHECK(u_.scalar_type() == at::kFloat || u_.scalar_type() == at::kDouble, "u must be float32 or float64, got ",
              u_.scalar_type());
  const c10::cuda::CUDAGuard guard(u_.device());
  auto r = sums(u_.contiguous(), log_x_.contiguous(), !weighted, weighted, c10::toComplexType(u_.scalar_type()));
  return weighted ? std::get<1>(r) : std::get<0>(r);
}

}  // namespace

TORCH_LIBRARY_IMPL(ssm, CUDA, m) {
  m.impl("log_vandermonde_fwd", &log_vandermonde_fwd_cuda);
  m.impl("log_vandermonde_bwd", &log_vandermonde_bwd_cuda);
  m.impl("log_vandermonde_transpose", &log_vandermonde_transpose_cuda);
}

}  // namespace ssm
