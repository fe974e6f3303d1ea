// emu.h: a CPU emulator for the CUDA kernels of ops_cuda/, for the GPU tests on machines without a
// GPU (tests/cuda_emulator/__init__.py compiles each .cu file with it and g++). Blocks run one after
// another; the threads of a block are coroutines (ucontext) that switch at every __syncthreads and
// warp shuffle, so shared memory, barriers and shuffles behave as the kernels expect. Atomics are
// plain read-modify-writes (one thread runs at a time). Not emulated: real parallelism and memory
// ordering, warp divergence, timing; a kernel that is right here can still race on a GPU.
#pragma once
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <type_traits>
#include <utility>
#include <vector>
#include <ucontext.h>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static

struct dim3 { unsigned x = 1, y = 1, z = 1; };
namespace emu {
inline dim3 tIdx, bIdx, bDim, gDim;
inline std::vector<ucontext_t> ctx;
inline std::vector<char> done;
inline ucontext_t main_ctx;
inline int cur = 0;
inline std::function<void()>* body = nullptr;
inline std::vector<char> stacks;
inline std::vector<double> dyn;   // dynamic shared memory
inline std::vector<unsigned long long> xbuf(1024);
inline const size_t kStack = 256 * 1024;
inline void yield() { swapcontext(&ctx[cur], &main_ctx); }
inline void entry() { (*body)(); done[cur] = 1; swapcontext(&ctx[cur], &main_ctx); }
}  // namespace emu
#define threadIdx emu::tIdx
#define blockIdx emu::bIdx
#define blockDim emu::bDim
#define gridDim emu::gDim

inline void __syncthreads() { emu::yield(); }

template <class S> S __shfl_xor_sync(unsigned, S v, int o) {
  int t = emu::cur;
  std::memcpy(&emu::xbuf[t], &v, sizeof(S));
  emu::yield();
  S w;
  std::memcpy(&w, &emu::xbuf[(t & ~31) | ((t & 31) ^ o)], sizeof(S));
  emu::yield();
  return w;
}

inline float atomicAdd(float* p, float v) { float o = *p; *p = o + v; return o; }
inline double atomicAdd(double* p, double v) { double o = *p; *p = o + v; return o; }
inline int atomicAdd(int* p, int v) { int o = *p; *p = o + v; return o; }
inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) { auto o = *p; *p = o + v; return o; }
inline unsigned atomicCAS(unsigned* p, unsigned c, unsigned v) { unsigned o = *p; if (o == c) *p = v; return o; }

inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline int min(int a, int b) { return a < b ? a : b; }
inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
inline double __longlong_as_double(long long i) { double f; std::memcpy(&f, &i, 8); return f; }

namespace emu {
inline void run_block(unsigned n, std::function<void()>& f) {
  body = &f;
  ctx.assign(n, ucontext_t{});
  done.assign(n, 0);
  if (stacks.size() < n * kStack) stacks.resize(n * kStack);
  for (unsigned t = 0; t < n; ++t) {
    getcontext(&ctx[t]);
    ctx[t].uc_stack.ss_sp = stacks.data() + t * kStack;
    ctx[t].uc_stack.ss_size = kStack;
    ctx[t].uc_link = nullptr;
    makecontext(&ctx[t], (void (*)())entry, 0);
  }
  for (;;) {
    unsigned finished = 0, waiting = 0;
    for (unsigned t = 0; t < n; ++t) {
      if (done[t]) continue;
      cur = int(t);
      tIdx.x = t;
      swapcontext(&main_ctx, &ctx[t]);
      if (done[t]) ++finished; else ++waiting;
    }
    if (waiting == 0) break;
    if (finished) { std::fprintf(stderr, "emu: divergent __syncthreads\n"); std::abort(); }
  }
}

template <class... A, size_t... I>
void call_with(void (*k)(A...), void** args, std::index_sequence<I...>) {
  k(*static_cast<std::remove_reference_t<A>*>(args[I])...);
}

template <class A> int arg_size() {
  if constexpr (std::is_pointer_v<A>) {
    using E = std::remove_cv_t<std::remove_pointer_t<A>>;
    if constexpr (std::is_void_v<E>) return -1;
    else return -int(sizeof(E)) - 100;   // a pointer to E: -100 - sizeof(E)
  } else {
    return int(sizeof(A));
  }
}

template <class... A>
int launch(void (*k)(A...), dim3 grid, dim3 block, size_t shmem, void** args, const int* sizes, int nargs) {
  if (nargs != int(sizeof...(A))) { std::fprintf(stderr, "emu: %d args for %d params\n", nargs, int(sizeof...(A))); return 1; }
  int want[] = {arg_size<A>()...};
  for (int i = 0; i < nargs; ++i) {
    bool ok = want[i] == sizes[i] || (want[i] == -1 && sizes[i] <= -100);
    if (!ok) { std::fprintf(stderr, "emu: arg %d: kernel wants %d, given %d\n", i, want[i], sizes[i]); return 2; }
  }
  if (block.y != 1 || block.z != 1) return 3;
  size_t words = (shmem + 7) / 8;
  dyn.assign(words + 64, 0.0);
  for (size_t i = words; i < words + 64; ++i) dyn[i] = 12345.678;   // a canary past the declared size
  gDim = grid;
  bDim = block;
  std::function<void()> f = [&]() { call_with(k, args, std::index_sequence_for<A...>{}); };
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) {
        bIdx.x = x, bIdx.y = y, bIdx.z = z;
        run_block(block.x, f);
        for (size_t i = words; i < words + 64; ++i)
          if (dyn[i] != 12345.678) { std::fprintf(stderr, "emu: shared memory overflow\n"); return 4; }
      }
  return 0;
}
}  // namespace emu
