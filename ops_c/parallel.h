// parallel.h: the thread count every kernel uses and parallel_for(), the one way kernels split
// work over OpenMP threads. Small jobs run inline on the calling thread, so tiny tensors never
// pay for starting a parallel region.
#pragma once

#include <omp.h>
#include <pthread.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace tt {

// True in a child made by fork(). GNU OpenMP's worker threads do not survive a fork, and the first
// parallel region in the child waits for them forever, so a forked child runs every kernel on
// its calling thread (as PyTorch's DataLoader workers do by choice): set_num_threads() there is
// capped at 1. A pthread_atfork handler, registered once when the extension loads, sets it.
inline bool& forked_child() {
  static bool forked = false;
  return forked;
}

// The number of threads kernels use. It starts at OpenMP's default (OMP_NUM_THREADS, else the
// number of cores) and is a process-wide setting, so Python threads all see the same value.
inline int& thread_setting() {
  static int n = omp_get_max_threads();
  return n;
}
inline int num_threads() { return thread_setting(); }
inline void set_num_threads(int n) { thread_setting() = forked_child() ? 1 : std::max(1, n); }

// Registers the fork handler above; bindings.cpp calls it once at import.
inline void install_fork_handler() {
  pthread_atfork(nullptr, nullptr, [] {
    forked_child() = true;
    thread_setting() = 1;
  });
}

// Work below this many elements per thread is not worth waking another thread for.
constexpr int64_t kGrain = 32768;

// Splits [0, n) into one contiguous chunk per thread and calls body(begin, end) for each chunk;
// uses at most n / grain threads, so with fewer than 2 * grain items everything runs inline.
template <class Body>
void parallel_for(int64_t n, int64_t grain, const Body& body) {
  int64_t nt = std::min<int64_t>(num_threads(), n / std::max<int64_t>(grain, 1));
  if (nt <= 1 || omp_in_parallel()) {
    if (n > 0) body(int64_t(0), n);
    return;
  }
#pragma omp parallel num_threads(int(nt))
  {
    int64_t t = omp_get_thread_num(), nth = omp_get_num_threads();
    int64_t begin = n * t / nth, end = n * (t + 1) / nth;
    if (begin < end) body(begin, end);
  }
}

// Reduces [0, n) in parallel: each thread computes fn(begin, end) over its chunk, then the
// chunk results are merged left to right with merge(earlier, later). `empty` is the result of
// an empty chunk and must be neutral for merge.
template <class Acc, class Fn, class Merge>
Acc parallel_reduce(int64_t n, int64_t grain, const Acc& empty, const Fn& fn, const Merge& merge) {
  int64_t nt = std::min<int64_t>(num_threads(), n / std::max<int64_t>(grain, 1));
  if (nt <= 1 || omp_in_parallel()) return n > 0 ? fn(int64_t(0), n) : empty;
  std::vector<Acc> parts(nt, empty);
#pragma omp parallel num_threads(int(nt))
  {
    int64_t t = omp_get_thread_num(), nth = omp_get_num_threads();
    int64_t begin = n * t / nth, end = n * (t + 1) / nth;
    if (begin < end) parts[t] = fn(begin, end);
  }
  Acc acc = parts[0];
  for (int64_t t = 1; t < nt; ++t) acc = merge(acc, parts[t]);
  return acc;
}

}  // namespace tt
