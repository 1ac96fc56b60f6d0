// Helpers shared by the CUDA kernel files: raw (re, im) pointers of complex tensors, warp sums, work splitting.
#pragma once
#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAFunctions.h>
#include <cuda_runtime.h>

#include <algorithm>

namespace ssm {

template <typename T>
const T* re(const at::Tensor& t) { return reinterpret_cast<const T*>(t.data_ptr()); }
template <typename T>
T* re_mut(at::Tensor& t) { return reinterpret_cast<T*>(t.data_ptr()); }

template <typename T>
__device__ __forceinline__ T warp_sum(T x) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
  return x;
}

// Number of L-segments for a reduction over L with `blocks` blocks per segment: enough blocks for ~4 per SM,
// segments of at least `min_len` positions.
inline int64_t l_splits(int64_t blocks, int64_t L, int64_t min_len) {
  int sms = 0;  // (ATen/cuda/CUDAContext.h would need the cuSPARSE/cuBLAS headers)
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, c10::cuda::current_device()));
  const int64_t want = (4 * sms + std::max<int64_t>(blocks, 1) - 1) / std::max<int64_t>(blocks, 1);
  return std::max<int64_t>(1, std::min(want, (L + min_len - 1) / min_len));
}

// (S, R, N) partial sums -> (R, N): a view for S == 1, else one reduction (no atomics in the kernels).
inline at::Tensor fold_splits(const at::Tensor& partial) {
  return partial.size(0) == 1 ? partial.select(0, 0) : partial.sum(0);
}

}  // namespace ssm
