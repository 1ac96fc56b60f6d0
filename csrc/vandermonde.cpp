// Vandermonde kernel on the CPU. Powers x^l = x^(qT) * x^j (l = qT + j, j < T): the anchors x^(qT)
// advance in double precision and the per-row table x^j (j < T) is built in double, so complex64 results
// keep ~1e-6 relative accuracy for |x| near 1 and L in the tens of thousands (no log/exp per element).
// Registers the schemas of ssm::vandermonde_fwd / ssm::vandermonde_bwd.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <complex>
#include <limits>
#include <vector>

#include "ops.h"

namespace ssm {
namespace {

constexpr int64_t kT = 64;  // table length: positions per anchor

using cd = std::complex<double>;

// Below this magnitude a term cannot matter and would only produce slow subnormal arithmetic.
template <typename T>
constexpr double tiny() { return double(std::numeric_limits<T>::min()) * 16777216.0; }

// Per-row tables: x^j (j < kT) split into re/im of type T, and x^kT in double.
template <typename T>
void tables(const c10::complex<T>* x, int64_t N, T* tr, T* ti, cd* step) {
  for (int64_t n = 0; n < N; ++n) {
    const cd xn(x[n].real(), x[n].imag());
    cd p(1.0, 0.0);
    for (int64_t j = 0; j < kT; ++j) {
      const bool keep = std::abs(p) >= tiny<T>();
      tr[n * kT + j] = keep ? T(p.real()) : T(0);
      ti[n * kT + j] = keep ? T(p.imag()) : T(0);
      p *= xn;
    }
    step[n] = p;
  }
}

template <typename T>
SSM_SIMD_CLONES void fwd_row(const c10::complex<T>* v, const T* tr, const T* ti, const cd* step, int64_t N, int64_t L,
             cd* anchor, c10::complex<T>* out) {
  for (int64_t n = 0; n < N; ++n) anchor[n] = cd(v[n].real(), v[n].imag());  // v_n x_n^(qT)
  alignas(64) T ar[kT], ai[kT];
  for (int64_t l0 = 0; l0 < L; l0 += kT) {
    const int64_t len = std::min(kT, L - l0);
    std::fill(ar, ar + kT, T(0));
    std::fill(ai, ai + kT, T(0));
    for (int64_t n = 0; n < N; ++n) {
      const cd a = anchor[n];
      anchor[n] = a * step[n];
      if (std::abs(a.real()) + std::abs(a.imag()) < tiny<T>()) continue;  // negligible term: skip the work
      const T cr = T(a.real()), ci = T(a.imag());
      const T* pr = tr + n * kT;
      const T* pi = ti + n * kT;
#pragma omp simd
      for (int64_t j = 0; j < kT; ++j) {
        ar[j] += cr * pr[j] - ci * pi[j];
        ai[j] += cr * pi[j] + ci * pr[j];
      }
    }
    for (int64_t j = 0; j < len; ++j) out[l0 + j] = c10::complex<T>(ar[j], ai[j]);
  }
}

template <typename T>
SSM_SIMD_CLONES void bwd_row(const T* hr, const T* hi, const T* tr, const T* ti, const cd* step, int64_t N, int64_t L,
             c10::complex<T>* A, c10::complex<T>* D) {
  for (int64_t n = 0; n < N; ++n) {
    cd a(1.0, 0.0), sa(0.0, 0.0), sd(0.0, 0.0);
    const T* pr = tr + n * kT;
    const T* pi = ti + n * kT;
    for (int64_t l0 = 0; l0 < L; l0 += kT) {
      if (std::abs(a.real()) + std::abs(a.imag()) < tiny<T>()) break;  // |x| < 1: the rest underflows
      const int64_t len = std::min(kT, L - l0);
      const T* hr0 = hr + l0;
      const T* hi0 = hi + l0;
      T s0r = 0, s0i = 0, s1r = 0, s1i = 0;
#pragma omp simd reduction(+ : s0r, s0i, s1r, s1i)
      for (int64_t j = 0; j < len; ++j) {
        const T er = hr0[j] * pr[j] - hi0[j] * pi[j], ei = hr0[j] * pi[j] + hi0[j] * pr[j];
        s0r += er;
        s0i += ei;
        s1r += T(j) * er;
        s1i += T(j) * ei;
      }
      const cd s0(s0r, s0i), s1(s1r, s1i);
      sa += a * s0;
      sd += a * (double(l0) * s0 + s1);
      a *= step[n];
    }
    A[n] = c10::complex<T>(T(sa.real()), T(sa.imag()));
    D[n] = c10::complex<T>(T(sd.real()), T(sd.imag()));
  }
}

void check_vx(const at::Tensor& a, const at::Tensor& x, const char* na) {
  check_rows(a, na);
  check_rows(x, "x");
  check_same(a, x, na, "x");
  TORCH_CHECK(x.size(0) > 0 && a.size(0) % x.size(0) == 0, "rows of ", na, " (", a.size(0),
              ") must be a multiple of rows of x (", x.size(0), ")");
}

}  // namespace

at::Tensor vandermonde_fwd_cpu(const at::Tensor& v_, const at::Tensor& x_, int64_t L) {
  check_vx(v_, x_, "v");
  TORCH_CHECK(v_.size(1) == x_.size(1), "v and x must have the same N, got ", v_.size(1), " and ", x_.size(1));
  TORCH_CHECK(L >= 1, "L must be >= 1, got ", L);
  auto v = v_.contiguous(), x = x_.contiguous();
  const int64_t B = v.size(0), Bx = x.size(0), N = v.size(1);
  auto out = at::empty({B, L}, v.options());
  AT_DISPATCH_COMPLEX_TYPES(v.scalar_type(), "vandermonde_fwd_cpu", [&] {
    using T = typename scalar_t::value_type;
    const scalar_t* vp = v.data_ptr<scalar_t>();
    const scalar_t* xp = x.data_ptr<scalar_t>();
    scalar_t* op = out.data_ptr<scalar_t>();
    at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
      std::vector<T> tr(N * kT), ti(N * kT);
      std::vector<cd> step(N), anchor(N);
      int64_t built = -1;
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t bx = b % Bx;
        if (bx != built) { tables<T>(xp + bx * N, N, tr.data(), ti.data(), step.data()); built = bx; }
        fwd_row<T>(vp + b * N, tr.data(), ti.data(), step.data(), N, L, anchor.data(), op + b * L);
      }
    });
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> vandermonde_bwd_cpu(const at::Tensor& h_, const at::Tensor& x_) {
  check_vx(h_, x_, "h");
  auto h = h_.contiguous(), x = x_.contiguous();
  const int64_t B = h.size(0), L = h.size(1), Bx = x.size(0), N = x.size(1);
  auto A = at::empty({B, N}, x.options()), D = at::empty({B, N}, x.options());
  AT_DISPATCH_COMPLEX_TYPES(x.scalar_type(), "vandermonde_bwd_cpu", [&] {
    using T = typename scalar_t::value_type;
    const scalar_t* hp = h.data_ptr<scalar_t>();
    const scalar_t* xp = x.data_ptr<scalar_t>();
    scalar_t* Ap = A.data_ptr<scalar_t>();
    scalar_t* Dp = D.data_ptr<scalar_t>();
    at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
      std::vector<T> tr(N * kT), ti(N * kT), hr(L), hi(L);
      std::vector<cd> step(N);
      int64_t built = -1;
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t bx = b % Bx;
        if (bx != built) { tables<T>(xp + bx * N, N, tr.data(), ti.data(), step.data()); built = bx; }
        for (int64_t l = 0; l < L; ++l) { hr[l] = hp[b * L + l].real(); hi[l] = hp[b * L + l].imag(); }
        bwd_row<T>(hr.data(), hi.data(), tr.data(), ti.data(), step.data(), N, L, Ap + b * N, Dp + b * N);
      }
    });
  });
  return {A, D};
}

TORCH_LIBRARY_FRAGMENT(ssm, m) {
  m.def("vandermonde_fwd(Tensor v, Tensor x, int L) -> Tensor");
  m.def("vandermonde_bwd(Tensor h, Tensor x) -> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(ssm, CPU, m) {
  m.impl("vandermonde_fwd", &vandermonde_fwd_cpu);
  m.impl("vandermonde_bwd", &vandermonde_bwd_cpu);
}

}  // namespace ssm
