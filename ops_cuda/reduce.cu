// reduce.cu: sum, prod, max, min, argmax, argmin over the trailing dims of a strided tensor
// (Python moves the reduced dims last). One block per output element: its threads stride over
// the reduced elements, each keeping a partial result, and then combine them as a tree in shared
// memory. Sums and products accumulate in double for every float type and in i64 for integers, as
// the CPU kernels do; max and min propagate nan; argmax/argmin give the first index of the extreme
// value, a nan counting as extreme. Codes follow backend/base.py REDUCE_OPS.
// Left out: splitting one huge reduction over several blocks (a full sum of 10^8 elements runs in
// one block: correct, not fast), and mean/var/logsumexp (composites in Python).
#include "common.cuh"

enum ReduceOp { SUM, PROD, MAX, MIN, ARGMAX, ARGMIN };

#define TT_REDUCE_THREADS 256   // the most threads a reduce block has (a power of two)

template <class T> __device__ typename Traits<T>::Acc reduce_init(int op) {
  typedef typename Traits<T>::Acc A;
  if (op == SUM) return A(0);
  if (op == PROD) return A(1);
  if constexpr (Traits<T>::fp) {
    return op == MAX ? neg_inf<double>() : -neg_inf<double>();   // so all-infinite inputs reduce to themselves
  } else if constexpr (Same<T, bool>::value) {
    return op == MAX ? A(0) : A(1);
  } else {   // the smallest / largest value of T, as the start of max / min
    bool is_signed = i64(T(-1)) < 0;
    unsigned long long ones = ~0ull >> (64 - 8 * sizeof(T));   // the bits of T, all set
    A hi = A(is_signed ? ones >> 1 : ones), lo = is_signed ? -hi - 1 : A(0);
    return op == MAX ? lo : hi;
  }
}

// a combined with b; for max/min a nan in either wins (a nan already in a stays).
template <class A> __device__ __forceinline__ A reduce_combine(int op, A a, A b) {
  switch (op) {
    case SUM: return a + b;
    case PROD: return a * b;
    case MAX: return (b > a || is_nan(b)) && !is_nan(a) ? b : a;
    default: return (b < a || is_nan(b)) && !is_nan(a) ? b : a;
  }
}

// out: contiguous (n_out,); x: strided, kept dims then reduced dims, from x_off;
// meta: kept shape (nk), kept strides (nk), reduced shape (nr), reduced strides (nr).
template <class T>
__global__ void reduce_kernel(T* out, const T* x, const i64* meta, int nk, int nr, i64 n_out, i64 n_red,
                              i64 x_off, int op) {
  typedef typename Traits<T>::Acc A;
  __shared__ A part[TT_REDUCE_THREADS];
  for (i64 o = blockIdx.x; o < n_out; o += gridDim.x) {
    i64 base[1], off[1];
    walk<1>(o, meta, nk, base);
    A acc = reduce_init<T>(op);
    for (i64 r = threadIdx.x; r < n_red; r += blockDim.x) {
      walk<1>(r, meta + 2 * nk, nr, off);
      acc = reduce_combine(op, acc, A(load(x[x_off + base[0] + off[0]])));
    }
    part[threadIdx.x] = acc;
    __syncthreads();
    for (int w = blockDim.x / 2; w > 0; w >>= 1) {
      if (threadIdx.x < w) part[threadIdx.x] = reduce_combine(op, part[threadIdx.x], part[threadIdx.x + w]);
      __syncthreads();
    }
    if (threadIdx.x == 0) out[o] = store<T>(part[0]);
    __syncthreads();   // part is reused by the next output
  }
}

// A candidate for argmax/argmin: value v at reduced index i (i < 0: nothing seen yet).
template <class C> struct Arg {
  C v;
  i64 i;
};

// Does b replace a? The extreme value wins, the first nan above all, and ties go to the lower index,
// so the answer does not depend on the order in which threads combine.
template <class C> __device__ __forceinline__ bool arg_takes(int op, const Arg<C>& a, const Arg<C>& b) {
  if (b.i < 0) return false;
  if (a.i < 0) return true;
  bool na = is_nan(a.v), nb = is_nan(b.v);
  if (na || nb) return nb && (!na || b.i < a.i);
  if (b.v == a.v) return b.i < a.i;
  return op == ARGMAX ? b.v > a.v : b.v < a.v;
}

// out: contiguous int64 (n_out,); x, meta: as reduce_kernel.
template <class T>
__global__ void arg_reduce_kernel(i64* out, const T* x, const i64* meta, int nk, int nr, i64 n_out, i64 n_red,
                                  i64 x_off, int op) {
  typedef typename Traits<T>::C C;
  __shared__ Arg<C> part[TT_REDUCE_THREADS];
  for (i64 o = blockIdx.x; o < n_out; o += gridDim.x) {
    i64 base[1], off[1];
    walk<1>(o, meta, nk, base);
    Arg<C> acc = {C(0), -1};
    for (i64 r = threadIdx.x; r < n_red; r += blockDim.x) {
      walk<1>(r, meta + 2 * nk, nr, off);
      Arg<C> b = {load(x[x_off + base[0] + off[0]]), r};
      if (arg_takes(op, acc, b)) acc = b;
    }
    part[threadIdx.x] = acc;
    __syncthreads();
    for (int w = blockDim.x / 2; w > 0; w >>= 1) {
      if (threadIdx.x < w && arg_takes(op, part[threadIdx.x], part[threadIdx.x + w]))
        part[threadIdx.x] = part[threadIdx.x + w];
      __syncthreads();
    }
    if (threadIdx.x == 0) out[o] = part[0].i;
    __syncthreads();
  }
}
