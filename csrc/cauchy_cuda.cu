// Cauchy kernels on CUDA: implementations of ssm::cauchy_fwd / ssm::cauchy_bwd (schemas in cauchy.cpp).
// Complex data is read as interleaved (re, im) pairs of T = float or double.
//
// Conjugate pairs are summed over their common denominator, one complex division per term instead of two:
//   v / (z - w) + conj(v) / (z - conj w) = (2 Re(v) z - 2 Re(v conj w)) / ((z - w)(z - conj w)),
// and in the backward, with A = conj(z - w), B = z - conj w, D = A B and per-position reals
// P0 = 2 Re g, P1 = 2 Re(g z), P2 = 2 Re(g z^2):
//   g / A + conj(g) / B     = (P1 - P0 conj w) / D                    (S1)
//   g / A^2 + conj(g) / B^2 = (P2 - 2 P1 conj w + P0 conj(w)^2) / D^2  (S2)
// Forward: one thread per output position, the row's n staged through shared memory.
// Backward: a block per (row, tile of 32 n, segment of L); lanes walk positions (tiles of L in shared memory),
// warps own n; each thread keeps both gradient sums of its n in registers, warps reduce by shuffles, and the
// L-segments (chosen to fill the GPU) are summed by one reduction afterwards. No atomics, no (R, N, L) temporary.
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "cuda_utils.cuh"
#include "ops.h"

namespace ssm {
namespace {

constexpr int kFwdThreads = 256;
constexpr int kWarps = 8;                  // backward block: 8 warps
constexpr int kPerWarp = 4;                // n per warp
constexpr int kTileN = kWarps * kPerWarp;  // n per backward block
constexpr int kTileL = 256;                // positions staged per step of the backward

// (nr + i ni) / (dr + i di)
template <typename T>
__device__ __forceinline__ void cdiv(T nr, T ni, T dr, T di, T& qr, T& qi) {
  const T s = T(1) / (dr * dr + di * di);
  qr = (nr * dr + ni * di) * s;
  qi = (ni * dr - nr * di) * s;
}

// Per-n constants of the forward, staged in shared memory.
template <typename T>
struct NTerm {
  T wr, wi, a0, a1, a2, vi;  // conj: a0 = 2 Re v, a1 = 2 Re(v conj w), a2 = 2 Re(v conj(w)^2); else a0 = Re v, vi
};

template <typename T, bool CONJ, int P>
__global__ void __launch_bounds__(kFwdThreads) fwd_kernel(const T* __restrict__ v, const T* __restrict__ z,
                                                          const T* __restrict__ w, T* __restrict__ out, int64_t N,
                                                          int64_t L, int64_t Rw) {
  __shared__ NTerm<T> sn[kFwdThreads];
  const int64_t b = blockIdx.x;
  const int64_t l = int64_t(blockIdx.y) * kFwdThreads + threadIdx.x;
  const T* vb = v + b * 2 * N;
  const T* wb = w + (b % Rw) * 2 * N;
  const T zr = l < L ? z[2 * l] : T(0), zi = l < L ? z[2 * l + 1] : T(1);
  const T zi2 = zi * zi;
  T ar = 0, ai = 0;
  for (int64_t n0 = 0; n0 < N; n0 += kFwdThreads) {
    const int64_t n = n0 + threadIdx.x;
    __syncthreads();
    if (n < N) {
      const T vr = vb[2 * n], vi = vb[2 * n + 1], wr = wb[2 * n], wi = wb[2 * n + 1];
      NTerm<T> t;
      t.wr = wr;
      t.wi = wi;
      t.vi = vi;
      if (CONJ) {
        t.a0 = T(2) * vr;
        t.a1 = T(2) * (vr * wr + vi * wi);
        t.a2 = T(2) * (vr * (wr * wr - wi * wi) + T(2) * vi * wr * wi);
      } else {
        t.a0 = vr;
        t.a1 = t.a2 = T(0);
      }
      sn[threadIdx.x] = t;
    }
    __syncthreads();
    const int cnt = int(min(int64_t(kFwdThreads), N - n0));
#pragma unroll 4
    for (int k = 0; k < cnt; ++k) {
      const NTerm<T> t = sn[k];
      const T dr = zr - t.wr;
      T qr, qi;
      if (CONJ) {
        const T er = dr * dr - zi2 + t.wi * t.wi, ei = T(2) * dr * zi;  // (z - w)(z - conj w)
        if (P == 1) {
          cdiv(t.a0 * zr - t.a1, t.a0 * zi, er, ei, qr, qi);
        } else {
          cdiv(t.a0 * (zr * zr - zi2) - T(2) * t.a1 * zr + t.a2, T(2) * zi * (t.a0 * zr - t.a1), er * er - ei * ei,
               T(2) * er * ei, qr, qi);
        }
      } else {
        const T di = zi - t.wi;
        if (P == 1) cdiv(t.a0, t.vi, dr, di, qr, qi);
        else cdiv(t.a0, t.vi, dr * dr - di * di, T(2) * dr * di, qr, qi);
      }
      ar += qr;
      ai += qi;
    }
  }
  if (l < L) {
    out[b * 2 * L + 2 * l] = ar;
    out[b * 2 * L + 2 * l + 1] = ai;
  }
}

// Partial S1, S2 of (row b, n-tile, L-segment) -> s1/s2[(seg * R + b) * N + n] (complex, interleaved).
template <typename T, bool CONJ>
__global__ void __launch_bounds__(kWarps * 32) bwd_kernel(const T* __restrict__ g, const T* __restrict__ z,
                                                          const T* __restrict__ w, T* __restrict__ s1,
                                                          T* __restrict__ s2, int64_t N, int64_t L, int64_t Rw,
                                                          int64_t R, int64_t seg_len) {
  // per staged position: zr, zi and (conj) P0, P1, P2 or (plain) gr, gi
  __shared__ T sz[5][kTileL];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t b = blockIdx.x, seg = blockIdx.z;
  const int64_t nbase = int64_t(blockIdx.y) * kTileN + warp;
  const T* gb = g + b * 2 * L;
  T wr[kPerWarp], wi[kPerWarp], p1r[kPerWarp], p1i[kPerWarp], p2r[kPerWarp], p2i[kPerWarp];
#pragma unroll
  for (int k = 0; k < kPerWarp; ++k) {
    const int64_t n = nbase + kWarps * k;
    wr[k] = n < N ? w[(b % Rw) * 2 * N + 2 * n] : T(0);
    wi[k] = n < N ? w[(b % Rw) * 2 * N + 2 * n + 1] : T(0);
    p1r[k] = p1i[k] = p2r[k] = p2i[k] = T(0);
  }
  const int64_t lbeg = seg * seg_len, lend = min(L, lbeg + seg_len);
  for (int64_t t0 = lbeg; t0 < lend; t0 += kTileL) {
    __syncthreads();
    for (int j = threadIdx.x; j < kTileL; j += kWarps * 32) {
      const int64_t l = t0 + j;
      const bool in = l < lend;
      const T zr = in ? z[2 * l] : T(0), zi = in ? z[2 * l + 1] : T(1);
      const T gr = in ? gb[2 * l] : T(0), gi = in ? gb[2 * l + 1] : T(0);
      sz[0][j] = zr;
      sz[1][j] = zi;
      if (CONJ) {
        sz[2][j] = T(2) * gr;
        sz[3][j] = T(2) * (gr * zr - gi * zi);
        sz[4][j] = T(2) * (gr * (zr * zr - zi * zi) - T(2) * gi * zr * zi);
      } else {
        sz[2][j] = gr;
        sz[3][j] = gi;
      }
    }
    __syncthreads();
    const int cnt = int(min(int64_t(kTileL), lend - t0));
    for (int j = lane; j < cnt; j += 32) {
      const T zr = sz[0][j], zi = sz[1][j], c2 = sz[2][j], c3 = sz[3][j];
      const T c4 = CONJ ? sz[4][j] : T(0);
#pragma unroll
      for (int k = 0; k < kPerWarp; ++k) {
        const T dr = zr - wr[k];
        if (CONJ) {
          const T e1 = zi - wi[k], e2 = zi + wi[k];
          T qr, qi;
          cdiv(T(1), T(0), dr * dr + e1 * e2, T(2) * dr * wi[k], qr, qi);  // 1 / D
          const T nr = c3 - c2 * wr[k], ni = c2 * wi[k];
          const T mr = c4 - T(2) * c3 * wr[k] + c2 * (wr[k] * wr[k] - wi[k] * wi[k]);
          const T mi = T(2) * c3 * wi[k] - T(2) * c2 * wr[k] * wi[k];
          const T q2r = qr * qr - qi * qi, q2i = T(2) * qr * qi;
          p1r[k] += nr * qr - ni * qi;
          p1i[k] += nr * qi + ni * qr;
          p2r[k] += mr * q2r - mi * q2i;
          p2i[k] += mr * q2i + mi * q2r;
        } else {
          T qr, qi;
          cdiv(T(1), T(0), dr, wi[k] - zi, qr, qi);  // 1 / conj(z - w)
          const T tr = c2 * qr - c3 * qi, ti = c2 * qi + c3 * qr;
          p1r[k] += tr;
          p1i[k] += ti;
          p2r[k] += tr * qr - ti * qi;
          p2i[k] += tr * qi + ti * qr;
        }
      }
    }
  }
#pragma unroll
  for (int k = 0; k < kPerWarp; ++k) {
    const T a = warp_sum(p1r[k]), bb = warp_sum(p1i[k]), c = warp_sum(p2r[k]), d = warp_sum(p2i[k]);
    const int64_t n = nbase + kWarps * k;
    if (lane == 0 && n < N) {
      const int64_t o = 2 * ((seg * R + b) * N + n);
      s1[o] = a;
      s1[o + 1] = bb;
      s2[o] = c;
      s2[o + 1] = d;
    }
  }
}

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
  TORCH_CHECK((L + kFwdThreads - 1) / kFwdThreads < 65536, "cauchy_fwd: L too large for one launch: ", L);
  const dim3 grid{unsigned(B), unsigned((L + kFwdThreads - 1) / kFwdThreads)};
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_COMPLEX_TYPES(v.scalar_type(), "cauchy_fwd_cuda", [&] {
    using T = typename scalar_t::value_type;
    auto launch = [&](auto kernel) {
      kernel<<<grid, kFwdThreads, 0, stream>>>(re<T>(v), re<T>(z), re<T>(w), re_mut<T>(out), N, L, Rw);
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
  if (B == 0 || N == 0 || L == 0) return {at::zeros({B, N}, w.options()), at::zeros({B, N}, w.options())};
  TORCH_CHECK(N < 65536 * kTileN, "cauchy_bwd: N too large for one launch: ", N);
  const int64_t tiles = (N + kTileN - 1) / kTileN;
  const int64_t S = l_splits(B * tiles, L, 2 * kTileL);
  const int64_t seg = ((L + S - 1) / S + kTileL - 1) / kTileL * kTileL;
  const int64_t nseg = (L + seg - 1) / seg;
  auto s1 = at::empty({nseg, B, N}, w.options()), s2 = at::empty({nseg, B, N}, w.options());
  const dim3 grid{unsigned(B), unsigned(tiles), unsigned(nseg)};
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_COMPLEX_TYPES(w.scalar_type(), "cauchy_bwd_cuda", [&] {
    using T = typename scalar_t::value_type;
    auto launch = [&](auto kernel) {
      kernel<<<grid, kWarps * 32, 0, stream>>>(re<T>(g), re<T>(z), re<T>(w), re_mut<T>(s1), re_mut<T>(s2), N, L, Rw,
                                               B, seg);
    };
    if (conj) launch(bwd_kernel<T, true>);
    else launch(bwd_kernel<T, false>);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {fold_splits(s1), fold_splits(s2)};
}

}  // namespace

TORCH_LIBRARY_IMPL(ssm, CUDA, m) {
  m.impl("cauchy_fwd", &cauchy_fwd_cuda);
  m.impl("cauchy_bwd", &cauchy_bwd_cuda);
}

}  // namespace ssm
