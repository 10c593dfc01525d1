#include "runtime/cpu_backend.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include "cpu/matmul.hpp"
#include "cpu/moe.hpp"
#include "cpu/ops.hpp"

namespace hymoe {

namespace {

template <typename T>
T* grow(std::vector<T>& buffer, int64_t n) {
    if (buffer.size() < static_cast<size_t>(n)) buffer.resize(static_cast<size_t>(n));
    return buffer.data();
}

class CpuContext final : public BackendContext {
public:
    CpuContext(const ModelConfig& c, cpu::ThreadPool& pool, int64_t n_ctx) : c_(c), pool_(pool) {
        kv_.resize(static_cast<size_t>(c.n_layers));
        for (KvStorage& l : kv_) {
            if (c.is_mla()) {
                l.k.assign(static_cast<size_t>(n_ctx * (c.kv_lora_rank + c.head_dim_rope)), 0.0f);
            } else {
                l.k.assign(static_cast<size_t>(n_ctx * c.n_kv_heads * c.head_dim), 0.0f);
                l.v.assign(static_cast<size_t>(n_ctx * c.n_kv_heads * c.head_dim_v), 0.0f);
            }
        }
    }

    void begin_pass(int64_t) override {}
    void end_pass() override {}

    bool host_memory() const override { return true; }

    KvLayer kv_layer(int64_t layer) override {
        KvStorage& l = kv_[static_cast<size_t>(layer)];
        return {l.k.data(), l.v.empty() ? nullptr : l.v.data()};
    }
    float* buffer(Buf which, int64_t n) override { return grow(buffers_[static_cast<size_t>(which)], n); }
    int32_t* expert_ids(int64_t n) override { return grow(expert_ids_, n); }

    void embed(const cpu::MatrixRef& e, std::span<const int32_t> tokens, float* x) override {
        const uint64_t row = row_bytes(e.type, static_cast<uint64_t>(e.cols)).value_or(0);
        for (size_t t = 0; t < tokens.size(); ++t)
            cpu::dequantize_row(e.type, e.data + row * static_cast<uint64_t>(tokens[t]), e.cols,
                                x + static_cast<int64_t>(t) * e.cols);
    }

    void rms_norm(const float* x, int64_t x_stride, const float* w, int64_t rows, int64_t width, float eps, float* out,
                  int64_t out_stride) override {
        for (int64_t r = 0; r < rows; ++r) cpu::rms_norm(x + r * x_stride, w, width, eps, out + r * out_stride);
    }

    void linear(const Linear& l, const float* x, int64_t n, float* out) override {
        cpu::matmul(l.w, x, n, out, pool_);
        if (l.bias != nullptr)
            for (int64_t t = 0; t < n; ++t)
                for (int64_t r = 0; r < l.w.rows; ++r) out[t * l.w.rows + r] += l.bias[r];
    }

    void linear_per_head(const PerHeadLinear& p, int64_t n) override {
        for (size_t i = 0; i < p.w.size(); ++i) {
            const cpu::MatrixRef& w = p.w[i];
            const auto head = static_cast<int64_t>(i);
            float* in = grow(gather_, n * w.cols);    // [n][cols]
            float* res = grow(scatter_, n * w.rows);  // [n][rows]
            for (int64_t t = 0; t < n; ++t)
                std::memcpy(in + t * w.cols, p.x + t * p.x_token_stride + head * p.x_head_stride,
                            sizeof(float) * static_cast<size_t>(w.cols));
            cpu::matmul(w, in, n, res, pool_);
            for (int64_t t = 0; t < n; ++t)
                std::memcpy(p.out + t * p.out_token_stride + head * p.out_head_stride, res + t * w.rows,
                            sizeof(float) * static_cast<size_t>(w.rows));
        }
    }

    void add(float* x, const float* a, int64_t n) override {
        for (int64_t i = 0; i < n; ++i) x[i] += a[i];
    }

    void add_gated(float* out, const float* src, const float* gate_logit, int64_t rows, int64_t width) override {
        for (int64_t t = 0; t < rows; ++t) {
            const float s = gate_logit != nullptr ? cpu::sigmoid(gate_logit[t]) : 1.0f;
            for (int64_t j = 0; j < width; ++j) out[t * width + j] += s * src[t * width + j];
        }
    }

    void glu(const float* gate, const float* up, int64_t n, float* out) override {
        switch (c_.activation) {
            case FfnActivation::SwiGlu: cpu::swiglu(gate, up, n, out); break;
            case FfnActivation::SwiGluOai: cpu::swiglu_oai(gate, up, n, c_.swiglu_alpha, c_.swiglu_limit, out); break;
        }
    }

    void copy_rows(float* dst, int64_t dst_stride, const float* src, int64_t src_stride, int64_t rows,
                   int64_t width) override {
        for (int64_t r = 0; r < rows; ++r)
            std::memmove(dst + r * dst_stride, src + r * src_stride, sizeof(float) * static_cast<size_t>(width));
    }

    void rope(float* x, int64_t n, int64_t n_heads, int64_t token_stride, int64_t head_stride, int64_t pos0) override {
        const int64_t pairs = c_.rope.n_dims / 2;
        // q and k of a layer (and every layer) rotate the same positions: the angles are computed
        // once per pass, not once per call.
        if (pos0 != angles_pos0_ || n > angles_n_) {
            cos_.resize(static_cast<size_t>(n * pairs));  // [n][pairs]
            sin_.resize(cos_.size());
            for (int64_t t = 0; t < n; ++t)
                cpu::rope_angles(c_.rope, pos0 + t, cos_.data() + t * pairs, sin_.data() + t * pairs);
            angles_pos0_ = pos0;
            angles_n_ = n;
        }
        for (int64_t t = 0; t < n; ++t)
            for (int64_t i = 0; i < n_heads; ++i)
                cpu::rope_rotate(c_.rope, cos_.data() + t * pairs, sin_.data() + t * pairs,
                                 x + t * token_stride + i * head_stride);
    }

    void attention(const AttentionArgs& a) override { cpu_attention(a, pool_); }

    void route(const float* logits, const float* selection_bias, int64_t n, int32_t* experts, float* weights) override {
        const int64_t ne = c_.n_experts, k = c_.n_experts_used;
        for (int64_t t = 0; t < n; ++t) cpu::route(c_, logits + t * ne, selection_bias, experts + t * k, weights + t * k);
    }

    void moe_experts(int64_t, const ExpertSet& x, const float* h, int64_t n, const int32_t* expert_ids,
                     const float* weights, float* out) override {
        cpu::moe_experts(c_, x, h, n, expert_ids, weights, out, false, moe_, pool_);
    }

    void download(const float* src, int64_t n, float* host) override {
        if (src != host) std::memcpy(host, src, sizeof(float) * static_cast<size_t>(n));
    }

private:
    struct KvStorage {
        std::vector<float> k, v;
    };

    const ModelConfig& c_;
    cpu::ThreadPool& pool_;
    std::vector<KvStorage> kv_;
    std::array<std::vector<float>, static_cast<size_t>(Buf::Count)> buffers_;
    std::vector<int32_t> expert_ids_;
    std::vector<float> cos_, sin_;  // [angles_n_][rope.n_dims / 2] for positions angles_pos0_, ...
    int64_t angles_pos0_ = -1, angles_n_ = 0;
    std::vector<float> gather_, scatter_;
    cpu::MoeScratch moe_;
};

class CpuBackend final : public Backend {
public:
    CpuBackend(const ModelConfig& c, const ModelWeights& w, cpu::ThreadPool& pool) : c_(c), w_(w), pool_(pool) {}
    std::string name() const override { return "cpu"; }
    const ModelWeights& weights() const override { return w_; }
    std::unique_ptr<BackendContext> new_context(int64_t n_ctx) const override {
        return std::make_unique<CpuContext>(c_, pool_, n_ctx);
    }

private:
    const ModelConfig& c_;
    const ModelWeights& w_;
    cpu::ThreadPool& pool_;
};

}  // namespace

// One (token, head) per work item; each thread keeps its own score row.
void cpu_attention(const AttentionArgs& a, cpu::ThreadPool& pool) {
    const int64_t nh = a.n_heads, group = a.n_heads / a.n_kv_heads;
    pool.parallel_for(a.n_tokens * nh, [&](int64_t begin, int64_t end) {
        std::vector<float> scores(static_cast<size_t>(a.n_past + a.n_tokens));
        for (int64_t i = begin; i < end; ++i) {
            const int64_t t = i / nh, head = i % nh, kvh = head / group, pos = a.n_past + t;
            cpu::AttentionHead h;
            h.q = a.q + t * a.q_token_stride + head * a.q_head_stride;
            h.k = a.k + kvh * a.k_head_stride;
            h.v = a.v + kvh * a.v_head_stride;
            h.k_stride = a.k_pos_stride;
            h.v_stride = a.v_pos_stride;
            h.dim_k = a.dim_k;
            h.dim_v = a.dim_v;
            h.k_begin = a.window > 0 ? std::max<int64_t>(0, pos - a.window + 1) : 0;
            h.k_end = pos + 1;
            h.scale = a.scale;
            h.sink = a.sinks != nullptr ? a.sinks + head : nullptr;
            cpu::attention_head(h, scores.data(), a.out + t * a.out_token_stride + head * a.out_head_stride);
        }
    });
}

std::unique_ptr<Backend> make_cpu_backend(const ModelConfig& config, const ModelWeights& weights,
                                          cpu::ThreadPool& pool) {
    return std::make_unique<CpuBackend>(config, weights, pool);
}

}  // namespace hymoe
