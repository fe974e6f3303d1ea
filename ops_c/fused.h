// fused.h: the fused CPU kernels (chapter 08), each the equal of a composite of primitives, in
// one or two passes over memory instead of five to ten. The same list as FUSED in
// tinytensor/backend/base.py. Every array is flat and contiguous from its first element; `rows`
// is the product of the leading dims and `n` the last dim. Statistics (mean, rstd, lse) are of
// the compute type: double for float64, float for float32, float16 and bfloat16.
#pragma once

#include <cstdint>
#include <vector>

namespace tt {

// out, x: (rows, n). log_softmax when `log`, else softmax, over the last dim.
void softmax(void* out, int dt, const void* x, int64_t rows, int64_t n, bool log);
// gx, y, gy: (rows, n); y is the forward's output.
void softmax_backward(void* gx, int dt, const void* y, const void* gy, int64_t rows, int64_t n, bool log);

// loss: (rows,); dlogits: (rows, n) or null, grad_scale times the gradient of each row's loss;
// logits: (rows, n); target: int64 (rows,).
void cross_entropy(void* loss, void* dlogits, int dt, const void* logits, const int64_t* target,
                   int64_t rows, int64_t n, int64_t ignore_index, double label_smoothing, double grad_scale);

// out, x: (rows, n); mean, rstd: (rows,) stats; weight, bias: (n,) or null.
void layer_norm(void* out, void* mean, void* rstd, int dt, const void* x, const void* weight, const void* bias,
                int64_t rows, int64_t n, double eps);
// gx, gy, x: (rows, n); gweight, gbias: (n,) or null; weight: (n,) or null.
void layer_norm_backward(void* gx, void* gweight, void* gbias, int dt, const void* gy, const void* x,
                         const void* mean, const void* rstd, const void* weight, int64_t rows, int64_t n);
void rms_norm(void* out, void* rstd, int dt, const void* x, const void* weight, int64_t rows, int64_t n, double eps);
void rms_norm_backward(void* gx, void* gweight, int dt, const void* gy, const void* x, const void* rstd,
                       const void* weight, int64_t rows, int64_t n);

// out, x, gx, gy: (n,). The tanh approximation when `tanh`, else the exact erf form.
void gelu(void* out, int dt, const void* x, int64_t n, bool tanh);
void gelu_backward(void* gx, int dt, const void* gy, const void* x, int64_t n, bool tanh);

// q, out: (bh, t, d); k, v: (bh, s, d); lse: (bh, t) stats. causal: query i sees keys j <= i.
void attention(void* out, void* lse, int dt, const void* q, const void* k, const void* v,
               int64_t bh, int64_t t, int64_t s, int64_t d, double scale, bool causal);
// gq like q, gk and gv like k; go like out.
void attention_backward(void* gq, void* gk, void* gv, int dt, const void* go, const void* q, const void* k,
                        const void* v, const void* out, const void* lse,
                        int64_t bh, int64_t t, int64_t s, int64_t d, double scale, bool causal);

// Element strides of a (batch, heads, rows, d) operand whose last dim is contiguous.
struct Strides3 {
  int64_t batch, head, row;
};
// out, q: (batch, nh, t, d) contiguous; k, v: (batch, nkv, >= s, d) at strides ks, vs; start: int64 (batch,) or
// null. Query i of row b (key index s - t + i) sees keys max(start[b], 0) <= j <= s - t + i, from key/value head
// h / (nh / nkv); a query that sees none gets zeros. Forward only (chapter 12's kv-cache decoding).
void decode_attention(void* out, int dt, const void* q, const void* k, const void* v, const int64_t* start,
                      int64_t batch, int64_t nh, int64_t nkv, int64_t t, int64_t s, int64_t d, const Strides3& ks,
                      const Strides3& vs, double scale);

// One AdamW step in place over many tensors of one dtype; sizes[i] elements each.
void adamw(const std::vector<void*>& params, const std::vector<const void*>& grads,
           const std::vector<void*>& exp_avgs, const std::vector<void*>& exp_avg_sqs,
           const std::vector<int64_t>& sizes, int dt, double lr, double beta1, double beta2, double eps,
           double weight_decay, int64_t step);

}  // namespace tt
