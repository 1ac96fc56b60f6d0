// Log-space Vandermonde kernels on the CPU: out[r, l] = sum_n v[r, n] exp(l log_x[r % Rx, n]) and its adjoints.
// log_x arrives in complex128. Powers x^l = x^(qT) * x^j (l = qT + j, j < T): per row of log_x a table x^j
// (j < T) built in double and anchors x^(qT) advanced in double, so complex64 results keep ~1e-7 relative
// accuracy for |x| near 1 and L in the tens of thousands with one complex multiply-add per term in the input
// precision. x^0 = 1 for every x (also 0 and NaN); NaN anywhere propagates. Rows sharing a log_x row are
// processed by one task so each table is built once per task.
// Registers the schemas of ssm::log_vandermonde_fwd / _bwd / _transpose (the CUDA file only adds kernels).
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

// Below this magnitude a term cannot matter in T and would only produce slow subnormal arithmetic.
template <typename T>
constexpr double tiny() { return double(std::numeric_limits<T>::min()) * 16777216.0; }

// negligible(a) is false for NaN, so NaN terms are never skipped
inline bool negligible(cd a, double t) { return std::abs(a.real()) + std::abs(a.imag()) < t; }

// Tables of one log_x row: x^j (j < kT) split into re/im in T, and x^kT in double.
template <typename T>
void tables(const cd* lx, int64_t N, T* tr, T* ti, cd* step) {
  for (int64_t n = 0; n < N; ++n) {
    const cd x = std::exp(lx[n]);
    cd p(1.0, 0.0);
    for (int64_t j = 0; j < kT; ++j) {
      const bool keep = !negligible(p, tiny<T>());
      tr[n * kT + j] = keep ? T(p.real()) : T(0);
      ti[n * kT + j] = keep ? T(p.imag()) : T(0);
      p *= x;
    }
    step[n] = p;
  }
}

// out[l] = sum_n v_n x_n^l for one row.
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
      if (negligible(a, tiny<T>())) continue;  // this and (for |x| <= 1) every later anchor adds nothing
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

// A[n] = sum_l h_l x_n^l and D[n] = sum_l l h_l x_n^l for one row with h complex (hi != nullptr); A alone for h real.
template <typename T>
SSM_SIMD_CLONES void sums_row(const T* hr, const T* hi, const T* tr, const T* ti, const cd* step, int64_t N, int64_t L,
                              c10::complex<T>* A, c10::complex<T>* D) {
  for (int64_t n = 0; n < N; ++n) {
    cd a(1.0, 0.0), sa(0.0, 0.0), sd(0.0, 0.0);
    const T* pr = tr + n * kT;
    const T* pi = ti + n * kT;
    for (int64_t l0 = 0; l0 < L; l0 += kT) {
      if (l0 > 0 && negligible(a, tiny<T>())) break;  // |x| < 1: the rest underflows
      const int64_t len = std::min(kT, L - l0);
      const T* hr0 = hr + l0;
      T s0r = 0, s0i = 0, s1r = 0, s1i = 0;
      if (hi != nullptr) {
        const T* hi0 = hi + l0;
#pragma omp simd reduction(+ : s0r, s0i, s1r, s1i)
        for (int64_t j = 0; j < len; ++j) {
          const T er = hr0[j] * pr[j] - hi0[j] * pi[j], ei = hr0[j] * pi[j] + hi0[j] * pr[j];
          s0r += er;
          s0i += ei;
          s1r += T(j) * er;
          s1i += T(j) * ei;
        }
      } else {  // real h, A only
#pragma omp simd reduction(+ : s0r, s0i)
        for (int64_t j = 0; j < len; ++j) {
          s0r += hr0[j] * pr[j];
          s0i += hr0[j] * pi[j];
        }
      }
      const cd s0(s0r, s0i), s1(s1r, s1i);
      sa += a * s0;
      sd += a * (double(l0) * s0 + s1);
      a *= step[n];
    }
    if (A != nullptr) A[n] = c10::complex<T>(T(sa.real()), T(sa.imag()));
    if (D != nullptr) D[n] = c10::complex<T>(T(sd.real()), T(sd.imag()));
  }
}

// Calls row(bx, r, tr, ti, step) for every row r (r % Rx == bx) in parallel; a task covers one bx and a block of
// its repeats, so the tables of log_x[bx] are built once per task.
template <typename T, typename F>
void for_rows(const cd* lx, int64_t R, int64_t Rx, int64_t N, F row) {
  const int64_t reps = R / Rx;
  const int64_t want = std::max<int64_t>(1, (8 * at::get_num_threads() + Rx - 1) / Rx);  // tasks per bx
  const int64_t blk = std::max<int64_t>(1, (reps + want - 1) / want);
  const int64_t nblk = (reps + blk - 1) / blk;
  at::parallel_for(0, Rx * nblk, 1, [&](int64_t j0, int64_t j1) {
    std::vector<T> tr(N * kT), ti(N * kT);
    std::vector<cd> step(N);
    int64_t built = -1;
    for (int64_t j = j0; j < j1; ++j) {
      const int64_t bx = j / nblk, c0 = (j % nblk) * blk, c1 = std::min(reps, c0 + blk);
      if (bx != built) { tables<T>(lx + bx * N, N, tr.data(), ti.data(), step.data()); built = bx; }
      for (int64_t c = c0; c < c1; ++c) row(c * Rx + bx, tr.data(), ti.data(), step.data());
    }
  });
}

const cd* lx_ptr(const at::Tensor& log_x) { return reinterpret_cast<const cd*>(log_x.data_ptr<c10::complex<double>>()); }

}  // namespace

at::Tensor log_vandermonde_fwd_cpu(const at::Tensor& v_, const at::Tensor& log_x_, int64_t L) {
  check_log_x(v_, log_x_, "v");
  TORCH_CHECK(v_.is_complex(), "v must be complex, got ", v_.scalar_type());
  TORCH_CHECK(v_.size(1) == log_x_.size(1), "v and log_x must have the same N, got ", v_.size(1), " and ", log_x_.size(1));
  TORCH_CHECK(L >= 0, "L must be >= 0, got ", L);
  auto v = v_.contiguous(), log_x = log_x_.contiguous();
  const int64_t R = v.size(0), Rx = log_x.size(0), N = v.size(1);
  auto out = at::empty({R, L}, v.options());
  if (R == 0 || L == 0) return out;
  AT_DISPATCH_COMPLEX_TYPES(v.scalar_type(), "log_vandermonde_fwd_cpu", [&] {
    using T = typename scalar_t::value_type;
    const scalar_t* vp = v.data_ptr<scalar_t>();
    scalar_t* op = out.data_ptr<scalar_t>();
    for_rows<T>(lx_ptr(log_x), R, Rx, N, [&](int64_t r, const T* tr, const T* ti, const cd* step) {
      std::vector<cd> anchor(N);
      fwd_row<T>(vp + r * N, tr, ti, step, N, L, anchor.data(), op + r * L);
    });
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> log_vandermonde_bwd_cpu(const at::Tensor& h_, const at::Tensor& log_x_) {
  check_log_x(h_, log_x_, "h");
  TORCH_CHECK(h_.is_complex(), "h must be complex, got ", h_.scalar_type());
  auto h = h_.contiguous(), log_x = log_x_.contiguous();
  const int64_t R = h.size(0), L = h.size(1), Rx = log_x.size(0), N = log_x.size(1);
  auto A = at::zeros({R, N}, h.options()), D = at::zeros({R, N}, h.options());
  if (R == 0 || N == 0 || L == 0) return {A, D};
  AT_DISPATCH_COMPLEX_TYPES(h.scalar_type(), "log_vandermonde_bwd_cpu", [&] {
    using T = typename scalar_t::value_type;
    const scalar_t* hp = h.data_ptr<scalar_t>();
    scalar_t* Ap = A.data_ptr<scalar_t>();
    scalar_t* Dp = D.data_ptr<scalar_t>();
    for_rows<T>(lx_ptr(log_x), R, Rx, N, [&](int64_t r, const T* tr, const T* ti, const cd* step) {
      std::vector<T> hr(L), hi(L);
      for (int64_t l = 0; l < L; ++l) { hr[l] = hp[r * L + l].real(); hi[l] = hp[r * L + l].imag(); }
      sums_row<T>(hr.data(), hi.data(), tr, ti, step, N, L, Ap + r * N, Dp + r * N);
    });
  });
  return {A, D};
}

at::Tensor log_vandermonde_transpose_cpu(const at::Tensor& u_, const at::Tensor& log_x_, bool weighted) {
  check_log_x(u_, log_x_, "u");
  TORCH_CHECK(u_.is_floating_point() && (u_.scalar_type() == at::kFloat || u_.scalar_type() == at::kDouble),
              "u must be float32 or float64, got ", u_.scalar_type());
  auto u = u_.contiguous(), log_x = log_x_.contiguous();
  const int64_t R = u.size(0), L = u.size(1), Rx = log_x.size(0), N = log_x.size(1);
  auto out = at::zeros({R, N}, u.options().dtype(c10::toComplexType(u.scalar_type())));
  if (R == 0 || N == 0 || L == 0) return out;
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "log_vandermonde_transpose_cpu", [&] {
    using T = scalar_t;
    const T* up = u.data_ptr<T>();
    auto* op = out.data_ptr<c10::complex<T>>();
    for_rows<T>(lx_ptr(log_x), R, Rx, N, [&](int64_t r, const T* tr, const T* ti, const cd* step) {
      if (!weighted) {
        sums_row<T>(up + r * L, nullptr, tr, ti, step, N, L, op + r * N, nullptr);
        return;
      }
      std::vector<T> lu(L);  // sum_l l u_l x^l is the plain sum of the input l u_l: the cheaper loop
      for (int64_t l = 0; l < L; ++l) lu[l] = T(l) * up[r * L + l];
      sums_row<T>(lu.data(), nullptr, tr, ti, step, N, L, op + r * N, nullptr);
    });
  });
  return out;
}

TORCH_LIBRARY_FRAGMENT(ssm, m) {
  m.def("log_vandermonde_fwd(Tensor v, Tensor log_x, int L) -> Tensor");
  m.def("log_vandermonde_bwd(Tensor h, Tensor log_x) -> (Tensor, Tensor)");
  m.def("log_vandermonde_transpose(Tensor u, Tensor log_x, bool weighted) -> Tensor");
}

TORCH_LIBRARY_IMPL(ssm, CPU, m) {
  m.impl("log_vandermonde_fwd", &log_vandermonde_fwd_cpu);
  m.impl("log_vandermonde_bwd", &log_vandermonde_bwd_cpu);
  m.impl("log_vandermonde_transpose", &log_vandermonde_transpose_cpu);
}

}  // namespace ssm
