// Cauchy kernel on the CPU (OpenMP threads over rows, SIMD over the long axis); registers the
// schemas of ssm::cauchy_fwd / ssm::cauchy_bwd (the CUDA file only adds implementations).
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "ops.h"

namespace ssm {
namespace {

constexpr int64_t kTile = 256;  // output positions kept in registers/L1 per pass over n

// Conjugate pairs are summed over their common denominator (one division per term instead of two):
//   v / (z - w) + conj(v) / (z - conj w) = (2 Re(v) z - 2 Re(v conj w)) / ((z - w)(z - conj w))
// and in the backward, with A = conj(z - w), B = z - conj w and P0 = 2 Re g, P1 = 2 Re(g z), P2 = 2 Re(g z^2):
//   g / A + conj(g) / B = (P1 - P0 conj w) / (A B),  g / A^2 + conj(g) / B^2 = (P2 - 2 P1 conj w + P0 conj(w)^2) / (A B)^2

// out[l0:l0+T] = sum_n v_n r_n^P (+ conj pair), r = 1 / (z - w), for one row; z as split re/im arrays.
template <typename T, bool CONJ, int P>
SSM_SIMD_CLONES void fwd_row(const c10::complex<T>* v, const c10::complex<T>* w, const T* zr, const T* zi, int64_t N,
                             int64_t L, c10::complex<T>* out) {
  alignas(64) T ar[kTile], ai[kTile];
  for (int64_t l0 = 0; l0 < L; l0 += kTile) {
    const int64_t len = std::min(kTile, L - l0);
    std::fill(ar, ar + len, T(0));
    std::fill(ai, ai + len, T(0));
    const T* zr0 = zr + l0;
    const T* zi0 = zi + l0;
    for (int64_t n = 0; n < N; ++n) {
      const T vr = v[n].real(), vi = v[n].imag(), wr = w[n].real(), wi = w[n].imag();
      const T a0 = T(2) * vr, a1 = T(2) * (vr * wr + vi * wi), wi2 = wi * wi;
      const T a2 = T(2) * (vr * (wr * wr - wi2) + T(2) * vi * wr * wi);
#pragma omp simd
      for (int64_t j = 0; j < len; ++j) {
        const T dr = zr0[j] - wr, zj = zi0[j];
        T nr, ni, er, ei;
        if (CONJ) {  // numerator over (z - w)(z - conj w) [squared for P = 2]
          er = dr * dr - zj * zj + wi2;
          ei = T(2) * dr * zj;
          if (P == 1) {
            nr = a0 * zr0[j] - a1;
            ni = a0 * zj;
          } else {
            nr = a0 * (zr0[j] * zr0[j] - zj * zj) - T(2) * a1 * zr0[j] + a2;
            ni = T(2) * zj * (a0 * zr0[j] - a1);
            const T t = er * er - ei * ei;
            ei = T(2) * er * ei;
            er = t;
          }
        } else {  // v over (z - w) [squared for P = 2]
          nr = vr;
          ni = vi;
          er = dr;
          ei = zj - wi;
          if (P == 2) { const T t = er * er - ei * ei; ei = T(2) * er * ei; er = t; }
        }
        const T s = T(1) / (er * er + ei * ei);
        ar[j] += (nr * er + ni * ei) * s;
        ai[j] += (ni * er - nr * ei) * s;
      }
    }
    for (int64_t j = 0; j < len; ++j) out[l0 + j] = c10::complex<T>(ar[j], ai[j]);
  }
}

// For each n: S1 = sum_l g_l / (zeta_l - conj w) (+ conj(sum_l g_l / (zeta_l - w))), S2 likewise squared, with
// c0..c2 per position: (g re, g im) or, for conj pairs, (P0, P1, P2).
template <typename T, bool CONJ>
SSM_SIMD_CLONES void bwd_row(const T* c0, const T* c1, const T* c2, const c10::complex<T>* w, const T* zr, const T* zi,
                             int64_t N, int64_t L, c10::complex<T>* s1, c10::complex<T>* s2) {
  for (int64_t n = 0; n < N; ++n) {
    const T wr = w[n].real(), wi = w[n].imag();
    const T cr = wr * wr - wi * wi, ci = -T(2) * wr * wi;  // conj(w)^2
    T p1r = 0, p1i = 0, p2r = 0, p2i = 0;
#pragma omp simd reduction(+ : p1r, p1i, p2r, p2i)
    for (int64_t l = 0; l < L; ++l) {
      const T dr = zr[l] - wr;
      if (CONJ) {
        const T e1 = zi[l] - wi, e2 = zi[l] + wi;
        const T Dr = dr * dr + e1 * e2, Di = T(2) * dr * wi;  // conj(z - w)(z - conj w)
        const T s = T(1) / (Dr * Dr + Di * Di);
        const T qr = Dr * s, qi = -Di * s;  // 1 / D
        const T nr = c1[l] - c0[l] * wr, ni = c0[l] * wi;
        const T mr = c2[l] - T(2) * c1[l] * wr + c0[l] * cr, mi = T(2) * c1[l] * wi + c0[l] * ci;
        const T q2r = qr * qr - qi * qi, q2i = T(2) * qr * qi;
        p1r += nr * qr - ni * qi;
        p1i += nr * qi + ni * qr;
        p2r += mr * q2r - mi * q2i;
        p2i += mr * q2i + mi * q2r;
      } else {
        const T ai = wi - zi[l];  // zeta - conj w = dr + i(wi - zi)
        const T s = T(1) / (dr * dr + ai * ai);
        const T qr = dr * s, qi = -ai * s;
        const T tr = c0[l] * qr - c1[l] * qi, ti = c0[l] * qi + c1[l] * qr;
        p1r += tr;
        p1i += ti;
        p2r += tr * qr - ti * qi;
        p2i += tr * qi + ti * qr;
      }
    }
    s1[n] = c10::complex<T>(p1r, p1i);
    s2[n] = c10::complex<T>(p2r, p2i);
  }
}

template <typename T>
void split(const c10::complex<T>* a, int64_t n, T* re, T* im) {
  for (int64_t i = 0; i < n; ++i) { re[i] = a[i].real(); im[i] = a[i].imag(); }
}

void check_inputs(const at::Tensor& a, const at::Tensor& z, const at::Tensor& w, const char* na) {
  check_rows(a, na);
  check_rows(w, "w");
  check_same(a, w, na, "w");
  check_same(z, w, "z", "w");
  TORCH_CHECK(z.dim() == 1, "z must be 1-D (L,), got ", z.dim(), "-D");
  TORCH_CHECK(w.size(0) > 0 && a.size(0) % w.size(0) == 0, "rows of ", na, " (", a.size(0),
              ") must be a multiple of rows of w (", w.size(0), ")");
}

}  // namespace

at::Tensor cauchy_fwd_cpu(const at::Tensor& v_, const at::Tensor& z_, const at::Tensor& w_, bool conj, int64_t power) {
  check_inputs(v_, z_, w_, "v");
  TORCH_CHECK(v_.size(1) == w_.size(1), "v and w must have the same N, got ", v_.size(1), " and ", w_.size(1));
  TORCH_CHECK(power == 1 || power == 2, "power must be 1 or 2, got ", power);
  auto v = v_.contiguous(), z = z_.contiguous(), w = w_.contiguous();
  const int64_t B = v.size(0), Bw = w.size(0), N = v.size(1), L = z.size(0);
  auto out = at::empty({B, L}, v.options());
  AT_DISPATCH_COMPLEX_TYPES(v.scalar_type(), "cauchy_fwd_cpu", [&] {
    using T = typename scalar_t::value_type;
    std::vector<T> zr(L), zi(L);
    split(z.data_ptr<scalar_t>(), L, zr.data(), zi.data());
    const scalar_t* vp = v.data_ptr<scalar_t>();
    const scalar_t* wp = w.data_ptr<scalar_t>();
    scalar_t* op = out.data_ptr<scalar_t>();
    at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        const auto* vb = vp + b * N;
        const auto* wb = wp + (b % Bw) * N;
        auto* ob = op + b * L;
        if (conj && power == 2) fwd_row<T, true, 2>(vb, wb, zr.data(), zi.data(), N, L, ob);
        else if (conj) fwd_row<T, true, 1>(vb, wb, zr.data(), zi.data(), N, L, ob);
        else if (power == 2) fwd_row<T, false, 2>(vb, wb, zr.data(), zi.data(), N, L, ob);
        else fwd_row<T, false, 1>(vb, wb, zr.data(), zi.data(), N, L, ob);
      }
    });
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> cauchy_bwd_cpu(const at::Tensor& g_, const at::Tensor& z_, const at::Tensor& w_,
                                                  bool conj) {
  check_inputs(g_, z_, w_, "g");
  TORCH_CHECK(g_.size(1) == z_.size(0), "g must have L = len(z) columns, got ", g_.size(1), " and ", z_.size(0));
  auto g = g_.contiguous(), z = z_.contiguous(), w = w_.contiguous();
  const int64_t B = g.size(0), Bw = w.size(0), N = w.size(1), L = z.size(0);
  auto s1 = at::empty({B, N}, w.options()), s2 = at::empty({B, N}, w.options());
  AT_DISPATCH_COMPLEX_TYPES(w.scalar_type(), "cauchy_bwd_cpu", [&] {
    using T = typename scalar_t::value_type;
    std::vector<T> zr(L), zi(L);
    split(z.data_ptr<scalar_t>(), L, zr.data(), zi.data());
    const scalar_t* gp = g.data_ptr<scalar_t>();
    const scalar_t* wp = w.data_ptr<scalar_t>();
    scalar_t* s1p = s1.data_ptr<scalar_t>();
    scalar_t* s2p = s2.data_ptr<scalar_t>();
    at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
      std::vector<T> c0(L), c1(L), c2(L);
      for (int64_t b = b0; b < b1; ++b) {
        const scalar_t* g = gp + b * L;
        for (int64_t l = 0; l < L; ++l) {  // per-position constants of the row (see bwd_row)
          const T gr = g[l].real(), gi = g[l].imag();
          if (conj) {
            c0[l] = T(2) * gr;
            c1[l] = T(2) * (gr * zr[l] - gi * zi[l]);
            c2[l] = T(2) * (gr * (zr[l] * zr[l] - zi[l] * zi[l]) - T(2) * gi * zr[l] * zi[l]);
          } else {
            c0[l] = gr;
            c1[l] = gi;
          }
        }
        const auto* wb = wp + (b % Bw) * N;
        if (conj) bwd_row<T, true>(c0.data(), c1.data(), c2.data(), wb, zr.data(), zi.data(), N, L, s1p + b * N, s2p + b * N);
        else bwd_row<T, false>(c0.data(), c1.data(), c2.data(), wb, zr.data(), zi.data(), N, L, s1p + b * N, s2p + b * N);
      }
    });
  });
  return {s1, s2};
}

TORCH_LIBRARY_FRAGMENT(ssm, m) {
  m.def("cauchy_fwd(Tensor v, Tensor z, Tensor w, bool conj, int power) -> Tensor");
  m.def("cauchy_bwd(Tensor g, Tensor z, Tensor w, bool conj) -> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(ssm, CPU, m) {
  m.impl("cauchy_fwd", &cauchy_fwd_cpu);
  m.impl("cauchy_bwd", &cauchy_bwd_cpu);
}

}  // namespace ssm
