// bpe.cpp: the two inner loops of byte-level BPE for tinytensor/tokenizer/: training (bpe_train)
// and applying merges to one chunk of bytes (BPEEncoder). Python does everything around them:
// splitting text into chunks with a regex, counting and caching chunks, special tokens, files.
// Token ids are int32; a pair of ids (a, b) is packed into one uint64 key, a in the high half,
// so ordering keys orders pairs lexicographically.
//
// Training works on deduplicated chunks ("words"), each with a weight (how often it occurs):
//   - all words live in one flat array of symbols, linked into per-word lists (prev/next, -1 at
//     the ends); a merge rewrites a symbol in place and unlinks its right neighbour;
//   - every pair has an exact weighted count and a list of positions where it may occur (entries
//     go stale when a neighbour changes; they are checked when used, never removed eagerly);
//   - a max-heap of (count, pair) with lazy deletion picks the best pair: an entry whose count is
//     out of date is pushed again with the current count. Counts are counted once at the start;
//     a merge only updates the pairs around the positions it rewrites.
//   - ties: the highest count wins; among equal counts the smallest pair (a, b), comparing a and
//     then b as token ids, wins. So training is deterministic and independent of hash order.
//   - a merge whose bytes equal an existing token's bytes (e.g. "ab"+"c" and "a"+"bc") reuses
//     that id, so every id has distinct bytes (as the Hugging Face and tiktoken formats need).
// Encoding applies merges by rank: repeatedly the lowest-ranked adjacent pair, leftmost first.
// Short chunks use a flat array (O(n^2), fast for words); long ones a linked list and a min-heap.
// Leaves out: multithreading (chunks are tiny; the Python-side cache removes most calls).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstdint>
#include <functional>
#include <queue>
#include <stdexcept>
#include <string>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace py = pybind11;

namespace tt {
namespace {

inline uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }
inline int32_t key_first(uint64_t k) { return int32_t(k >> 32); }
inline int32_t key_second(uint64_t k) { return int32_t(k & 0xffffffffu); }

// ---------------------------------------------------------------------------------------------
// Training

using Merge = std::tuple<int32_t, int32_t, int32_t, int64_t>;  // (a, b, new id, count when merged)

struct PairStat {
  int64_t count = 0;           // sum of the weights of the words, once per occurrence
  std::vector<int32_t> where;  // positions of the left symbol; may hold stale entries
};

struct HeapItem {
  int64_t count;
  uint64_t key;
  // std::priority_queue pops the largest: larger count first, then the smaller pair.
  bool operator<(const HeapItem& o) const { return count != o.count ? count < o.count : key > o.key; }
};

class Trainer {
 public:
  Trainer(const std::vector<std::string>& words, const std::vector<int64_t>& weights) {
    for (int b = 0; b < 256; ++b) {
      token_bytes_.push_back(std::string(1, char(b)));
      bytes_to_id_[token_bytes_.back()] = b;
    }
    for (size_t w = 0; w < words.size(); ++w) {
      const std::string& s = words[w];
      int32_t start = int32_t(sym_.size());
      for (size_t i = 0; i < s.size(); ++i) {
        int32_t pos = start + int32_t(i);
        sym_.push_back(uint8_t(s[i]));
        prev_.push_back(i == 0 ? -1 : pos - 1);
        next_.push_back(i + 1 == s.size() ? -1 : pos + 1);
        weight_.push_back(weights[w]);
        if (i > 0) add(pos - 1, sym_[pos - 1], sym_[pos], weights[w]);
      }
    }
    for (auto& [key, stat] : pairs_) heap_.push({stat.count, key});
    grown_.clear();
  }

  // Merges until n_new new ids exist or no pair is left; returns the merges in order.
  std::vector<Merge> run(int64_t n_new) {
    std::vector<Merge> merges;
    int64_t added = 0;
    while (added < n_new && !heap_.empty()) {
      HeapItem top = heap_.top();
      heap_.pop();
      auto it = pairs_.find(top.key);
      if (it == pairs_.end()) continue;         // merged already, or count fell to 0
      if (it->second.count != top.count) {      // stale: queue again with the true count
        heap_.push({it->second.count, top.key});
        continue;
      }
      int32_t a = key_first(top.key), b = key_second(top.key);
      std::string merged = token_bytes_[a] + token_bytes_[b];
      auto found = bytes_to_id_.find(merged);
      int32_t id;
      if (found != bytes_to_id_.end()) {
        id = found->second;
        if (merged_.count(top.key)) {  // a pair merged before came back (through a reused id):
          apply(top.key, id);          // its rule exists already, so only rewrite the words
          continue;
        }
      } else {
        id = int32_t(token_bytes_.size());
        token_bytes_.push_back(merged);
        bytes_to_id_.emplace(std::move(merged), id);
        ++added;
      }
      merges.emplace_back(a, b, id, top.count);
      merged_.insert(top.key);
      apply(top.key, id);
    }
    return merges;
  }

 private:
  // Adds `delta` to the count of (a, b), which occurs (or occurred) at position `pos`.
  void add(int32_t pos, int32_t a, int32_t b, int64_t delta) {
    uint64_t key = pair_key(a, b);
    PairStat& st = pairs_[key];
    st.count += delta;
    if (delta > 0) {
      st.where.push_back(pos);
      grown_.push_back(key);
    } else if (st.count == 0) {
      pairs_.erase(key);  // every occurrence is gone: its positions are all stale
    }
  }

  // Rewrites every occurrence of the pair `key` as `id`, left to right, and updates the
  // counts of the neighbouring pairs; pairs whose count grew are queued once at the end.
  void apply(uint64_t key, int32_t id) {
    int32_t a = key_first(key), b = key_second(key);
    std::vector<int32_t> where = std::move(pairs_[key].where);
    std::sort(where.begin(), where.end());  // leftmost first, as encoding does: "aaa" -> "(aa)a"
    where.erase(std::unique(where.begin(), where.end()), where.end());
    grown_.clear();
    for (int32_t pos : where) {
      int32_t j = next_[pos];
      if (sym_[pos] != a || j < 0 || sym_[j] != b) continue;  // stale entry
      int64_t w = weight_[pos];
      int32_t left = prev_[pos], right = next_[j];
      if (left >= 0) {
        add(left, sym_[left], a, -w);
        add(left, sym_[left], id, w);
      }
      if (right >= 0) {
        add(j, b, sym_[right], -w);
        add(pos, id, sym_[right], w);
      }
      add(pos, a, b, -w);
      sym_[pos] = id;
      sym_[j] = -1;
      next_[pos] = right;
      if (right >= 0) prev_[right] = pos;
    }
    pairs_.erase(key);
    std::sort(grown_.begin(), grown_.end());
    grown_.erase(std::unique(grown_.begin(), grown_.end()), grown_.end());
    for (uint64_t k : grown_) {
      auto it = pairs_.find(k);
      if (it != pairs_.end()) heap_.push({it->second.count, k});
    }
  }

  std::vector<int32_t> sym_, prev_, next_;  // (total symbols,): flat linked lists, one per word
  std::vector<int64_t> weight_;             // (total symbols,): the weight of the symbol's word
  std::unordered_map<uint64_t, PairStat> pairs_;
  std::priority_queue<HeapItem> heap_;
  std::vector<uint64_t> grown_;             // pairs whose count grew during the current merge
  std::vector<std::string> token_bytes_;    // id -> bytes
  std::unordered_map<std::string, int32_t> bytes_to_id_;
  std::unordered_set<uint64_t> merged_;     // pairs that already have a merge rule
};

// ---------------------------------------------------------------------------------------------
// Encoding

// Open-addressing hash table from a packed pair to (rank, new id); faster than unordered_map here.
class PairTable {
 public:
  struct Entry {
    uint64_t key;
    int32_t rank, id;
  };

  explicit PairTable(size_t n) {
    size_t cap = 16;
    while (cap < 2 * n) cap <<= 1;
    slots_.assign(cap, Entry{kEmpty, 0, 0});
    mask_ = cap - 1;
  }
  void insert(uint64_t key, int32_t rank, int32_t id) {  // the first (lowest) rank of a pair wins
    size_t i = hash(key) & mask_;
    while (slots_[i].key != kEmpty && slots_[i].key != key) i = (i + 1) & mask_;
    if (slots_[i].key == kEmpty) slots_[i] = Entry{key, rank, id};
  }
  const Entry* find(int32_t a, int32_t b) const {
    uint64_t key = pair_key(a, b);
    for (size_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
      if (slots_[i].key == key) return &slots_[i];
      if (slots_[i].key == kEmpty) return nullptr;
    }
  }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t(0);  // no pair of int32 ids >= 0 packs to this
  static size_t hash(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return size_t(k);
  }
  std::vector<Entry> slots_;
  size_t mask_ = 0;
};

class BPEEncoder {
 public:
  // byte_ids: (256,) the token id of each byte; merges: (n, 3) rows (a, b, new id), by rank.
  // Throws std::invalid_argument (ValueError in Python) unless byte_ids has 256 entries and every
  // id is >= 0: encode() indexes byte_ids by byte, and negative ids mark removed symbols.
  BPEEncoder(const std::vector<int32_t>& byte_ids, const std::vector<std::array<int32_t, 3>>& merges)
      : byte_ids_(byte_ids), table_(merges.size()) {
    if (byte_ids.size() != 256)
      throw std::invalid_argument("BPEEncoder: byte_ids needs 256 ids (one per byte), got " +
                                  std::to_string(byte_ids.size()));
    for (size_t i = 0; i < 256; ++i)
      if (byte_ids[i] < 0)
        throw std::invalid_argument("BPEEncoder: byte_ids[" + std::to_string(i) + "] is negative (" +
                                    std::to_string(byte_ids[i]) + ")");
    for (size_t r = 0; r < merges.size(); ++r)
      if (merges[r][0] < 0 || merges[r][1] < 0 || merges[r][2] < 0)
        throw std::invalid_argument("BPEEncoder: merge " + std::to_string(r) + " (" + std::to_string(merges[r][0]) +
                                    ", " + std::to_string(merges[r][1]) + ") -> " + std::to_string(merges[r][2]) +
                                    " has a negative id");
    for (size_t r = 0; r < merges.size(); ++r) table_.insert(pair_key(merges[r][0], merges[r][1]), int32_t(r),
                                                              merges[r][2]);
  }

  std::vector<int32_t> encode(const std::string& bytes) const {
    std::vector<int32_t> sym(bytes.size());
    for (size_t i = 0; i < bytes.size(); ++i) sym[i] = byte_ids_[uint8_t(bytes[i])];
    if (sym.size() <= 64) return encode_short(std::move(sym));
    return encode_long(sym);
  }

 private:
  int32_t rank(int32_t a, int32_t b) const {
    const PairTable::Entry* e = table_.find(a, b);
    return e ? e->rank : INT_MAX;
  }

  // Flat arrays: ranks[i] is the rank of (sym[i], sym[i + 1]); each merge scans for the minimum.
  std::vector<int32_t> encode_short(std::vector<int32_t> sym) const {
    std::vector<int32_t> ranks;
    for (size_t i = 0; i + 1 < sym.size(); ++i) ranks.push_back(rank(sym[i], sym[i + 1]));
    while (!ranks.empty()) {
      size_t best = std::min_element(ranks.begin(), ranks.end()) - ranks.begin();  // leftmost minimum
      if (ranks[best] == INT_MAX) break;
      sym[best] = table_.find(sym[best], sym[best + 1])->id;
      sym.erase(sym.begin() + best + 1);
      ranks.erase(ranks.begin() + best);
      if (best > 0) ranks[best - 1] = rank(sym[best - 1], sym[best]);
      if (best < ranks.size()) ranks[best] = rank(sym[best], sym[best + 1]);
    }
    return sym;
  }

  // Linked list plus a min-heap of (rank << 32 | position); positions keep their order, so the
  // smallest key is the lowest rank, leftmost. Entries are checked when popped (lazy deletion).
  std::vector<int32_t> encode_long(std::vector<int32_t> sym) const {
    int32_t n = int32_t(sym.size());
    std::vector<int32_t> next(n), prev(n);
    std::priority_queue<uint64_t, std::vector<uint64_t>, std::greater<uint64_t>> heap;
    auto push = [&](int32_t i, int32_t j) {
      int32_t r = rank(sym[i], sym[j]);
      if (r != INT_MAX) heap.push((uint64_t(r) << 32) | uint32_t(i));
    };
    for (int32_t i = 0; i < n; ++i) {
      next[i] = i + 1 < n ? i + 1 : -1;
      prev[i] = i - 1;
      if (i + 1 < n) push(i, i + 1);
    }
    while (!heap.empty()) {
      uint64_t top = heap.top();
      heap.pop();
      int32_t i = int32_t(top & 0xffffffffu), j = next[i];
      if (sym[i] < 0 || j < 0) continue;
      const PairTable::Entry* e = table_.find(sym[i], sym[j]);
      if (!e || uint64_t(e->rank) != (top >> 32)) continue;  // the pair changed since it was pushed
      sym[i] = e->id;
      sym[j] = -1;
      next[i] = next[j];
      if (next[j] >= 0) prev[next[j]] = i;
      if (prev[i] >= 0) push(prev[i], i);
      if (next[i] >= 0) push(i, next[i]);
    }
    std::vector<int32_t> out;
    for (int32_t i = 0; i >= 0; i = next[i]) out.push_back(sym[i]);
    return out;
  }

  std::vector<int32_t> byte_ids_;
  PairTable table_;
};

}  // namespace
}  // namespace tt

void init_bpe(py::module_& m) {
  m.def(
      "bpe_train",
      [](const std::vector<std::string>& words, const std::vector<int64_t>& weights, int64_t n_new) {
        if (words.size() != weights.size())
          throw std::invalid_argument("bpe_train: " + std::to_string(words.size()) + " words but " +
                                      std::to_string(weights.size()) + " weights");
        if (n_new < 0) throw std::invalid_argument("bpe_train: n_new must be >= 0, got " + std::to_string(n_new));
        py::gil_scoped_release nogil;
        tt::Trainer trainer(words, weights);
        return trainer.run(n_new);
      },
      py::arg("words"), py::arg("weights"), py::arg("n_new"),
      "Byte-level BPE training on deduplicated chunks. words: list of bytes; weights: how often each "
      "occurs; n_new: how many new token ids to create (ids 256, 257, ...). Returns [(a, b, new_id, "
      "count)] in merge order. Ties: highest count, then smallest (a, b).");
  py::class_<tt::BPEEncoder>(m, "BPEEncoder",
                             "Applies BPE merges by rank to chunks of bytes (lowest rank first, leftmost first).")
      .def(py::init<const std::vector<int32_t>&, const std::vector<std::array<int32_t, 3>>&>(),
           py::arg("byte_ids"), py::arg("merges"))
      .def("encode", &tt::BPEEncoder::encode, py::arg("chunk"), "bytes -> list of token ids")
      .def(
          "encode_chunks",
          [](const tt::BPEEncoder& self, const std::vector<std::string>& chunks) {
            std::vector<std::vector<int32_t>> out(chunks.size());
            {
              py::gil_scoped_release nogil;
              for (size_t i = 0; i < chunks.size(); ++i) out[i] = self.encode(chunks[i]);
            }
            return out;
          },
          py::arg("chunks"), "list of bytes -> list of lists of token ids");
}
