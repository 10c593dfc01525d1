// Placing the model's weights on the GPU: one walk over every weight the forward pass reads
// (the same walk sizes the upload, checks types, and patches the device mirror), then a chunked
// upload through double-buffered pinned staging.
#include "runtime/cuda_backend_weights.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <map>
#include <string>
#include <tuple>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "cuda/memory.hpp"
#include "format/tensor_type.hpp"
#include "hymoe/error.hpp"

namespace hymoe::cuda_backend {

namespace {

using cpu::MatrixRef;

bool gpu_reads(TensorType t) {
    return static_cast<uint32_t>(t) < 1000 && kernels::supports_weight_type(static_cast<int32_t>(t));
}

std::string gpu_type_list() {
    std::string s;
    for (const TypeTraits& t : all_tensor_types()) {
        if (!t.in_gguf || !gpu_reads(t.type)) continue;
        if (!s.empty()) s += ", ";
        s += t.name;
    }
    return s;
}

ModelWeights shallow_copy(const ModelWeights& h) {
    ModelWeights m;
    m.token_embd = h.token_embd;
    m.output_norm = h.output_norm;
    m.output = h.output;
    m.layers = h.layers;
    return m;
}

// Every weight of a (mirror) ModelWeights as an item of an arena, and the field that points at it.
// Arena 0 holds the non-expert weights; each MoE layer's experts get an arena of their own.
class Plan {
public:
    struct Item {
        const void* host;
        uint64_t bytes;
        size_t arena;
        uint64_t offset;
    };
    // A field of the mirror to repoint at its item's device copy.
    struct Slot {
        const std::byte** matrix = nullptr;
        const float** vec = nullptr;
        size_t item = 0;
    };

    std::vector<Item> items;
    std::vector<Slot> slots;
    std::vector<uint64_t> arena_bytes{0};
    std::vector<std::string> arena_what{"uploading the non-expert weights"};
    std::vector<size_t> layer_arena;     // [n_layers] the layer's expert arena, or 0 for a dense layer
    std::vector<uint64_t> table_offset;  // [n_layers] offset of its expert pointer arrays in that arena

    Plan(const ModelConfig& c, ModelWeights& m, bool routed_experts = true) : c_(c), routed_experts_(routed_experts) {
        const int64_t d = c.d_model;
        add_matrix(m.token_embd, "token_embd", 0);
        add_vector(m.output_norm, d, "output_norm", 0);
        add_linear(m.output, "output", 0);
        layer_arena.assign(m.layers.size(), 0);
        table_offset.assign(m.layers.size(), 0);
        for (size_t il = 0; il < m.layers.size(); ++il) add_layer(static_cast<int64_t>(il), m.layers[il]);
    }

    uint64_t total() const {
        uint64_t t = 0;
        for (uint64_t b : arena_bytes) t += b;
        return t;
    }

private:
    void add_layer(int64_t il, LayerWeights& l) {
        const ModelConfig& c = c_;
        const int64_t d = c.d_model;
        const std::string blk = fmt::format("blk.{}.", il);
        add_vector(l.attn_norm, d, blk + "attn_norm", 0);
        add_linear(l.q, blk + "attn_q", 0);
        add_linear(l.k, blk + "attn_k", 0);
        add_linear(l.v, blk + "attn_v", 0);
        add_linear(l.out, blk + "attn_output", 0);
        const bool per_head = c.qk_norm == QkNorm::PerHead;
        add_vector(l.q_norm, per_head ? c.head_dim : c.n_heads * c.head_dim, blk + "attn_q_norm", 0);
        add_vector(l.k_norm, per_head ? c.head_dim : c.n_kv_heads * c.head_dim, blk + "attn_k_norm", 0);
        add_vector(l.sinks, c.n_heads, blk + "attn_sinks", 0);
        add_linear(l.q_a, blk + "attn_q_a", 0);
        add_vector(l.q_a_norm, c.q_lora_rank, blk + "attn_q_a_norm", 0);
        add_linear(l.q_b, blk + "attn_q_b", 0);
        add_linear(l.kv_a, blk + "attn_kv_a_mqa", 0);
        add_vector(l.kv_a_norm, c.kv_lora_rank, blk + "attn_kv_a_norm", 0);
        for (size_t i = 0; i < l.k_b.size(); ++i) add_matrix(l.k_b[i], fmt::format("{}attn_k_b[{}]", blk, i), 0);
        for (size_t i = 0; i < l.v_b.size(); ++i) add_matrix(l.v_b[i], fmt::format("{}attn_v_b[{}]", blk, i), 0);
        add_vector(l.ffn_norm, d, blk + "ffn_norm", 0);
        add_linear(l.ffn_gate, blk + "ffn_gate", 0);
        add_linear(l.ffn_up, blk + "ffn_up", 0);
        add_linear(l.ffn_down, blk + "ffn_down", 0);
        add_linear(l.router, blk + "ffn_gate_inp", 0);
        add_vector(l.selection_bias, c.n_experts, blk + "exp_probs_b", 0);
        add_linear(l.shared_gate, blk + "ffn_gate_shexp", 0);
        add_linear(l.shared_up, blk + "ffn_up_shexp", 0);
        add_linear(l.shared_down, blk + "ffn_down_shexp", 0);
        add_linear(l.shared_expert_gate, blk + "ffn_gate_inp_shexp", 0);

        ExpertSet& x = l.experts;
        if (x.gate.empty()) return;
        const size_t arena = arena_bytes.size();
        arena_bytes.push_back(0);
        arena_what.push_back(fmt::format("uploading blk.{}'s experts", il));
        layer_arena[static_cast<size_t>(il)] = arena;
        if (routed_experts_) {
            add_experts(x.gate, blk + "ffn_gate_exps", arena);
            add_experts(x.up, blk + "ffn_up_exps", arena);
            add_experts(x.down, blk + "ffn_down_exps", arena);
        } else {
            check_experts(x.gate, blk + "ffn_gate_exps");
            check_experts(x.up, blk + "ffn_up_exps");
            check_experts(x.down, blk + "ffn_down_exps");
        }
        const int64_t ne = static_cast<int64_t>(x.gate.size()), f = c.d_ff_expert;
        add_vector(x.gate_bias, ne * f, blk + "ffn_gate_exps.bias", arena);
        add_vector(x.up_bias, ne * f, blk + "ffn_up_exps.bias", arena);
        add_vector(x.down_bias, ne * d, blk + "ffn_down_exps.bias", arena);
        // The gate, up and down pointer arrays ([3][n_experts] device pointers) close the arena.
        table_offset[static_cast<size_t>(il)] = arena_bytes[arena];
        arena_bytes[arena] += cuda::align_up(3 * static_cast<uint64_t>(ne) * sizeof(void*));
    }

    void add_experts(std::vector<MatrixRef>& set, const std::string& name, size_t arena) {
        check_experts(set, name);
        for (size_t e = 0; e < set.size(); ++e) add_matrix(set[e], fmt::format("{}[{}]", name, e), arena);
    }

    // One type and shape for every expert of a layer, a type the kernels read.
    void check_experts(const std::vector<MatrixRef>& set, const std::string& name) const {
        for (size_t e = 0; e < set.size(); ++e) {
            if (set[e].type != set[0].type || set[e].rows != set[0].rows || set[e].cols != set[0].cols) {
                throw Error(
                    fmt::format("{}: expert {} is {} [{}, {}] but expert 0 is {} [{}, {}]; the GPU expert "
                                "kernels need one type and shape for every expert of a layer",
                                name, e, type_name(set[e].type), set[e].rows, set[e].cols, type_name(set[0].type),
                                set[0].rows, set[0].cols));
            }
        }
        if (!set.empty() && !gpu_reads(set[0].type))
            throw Error(fmt::format("{} has type {}, which the GPU kernels do not read (they read {}); run on the "
                                    "CPU (--device cpu) or requantize the model",
                                    name, type_name(set[0].type), gpu_type_list()));
    }

    void add_linear(Linear& l, const std::string& name, size_t arena) {
        add_matrix(l.w, name, arena);
        add_vector(l.bias, l.w.rows, name + ".bias", arena);
    }

    void add_matrix(MatrixRef& m, const std::string& name, size_t arena) {
        if (m.data == nullptr) return;
        if (!gpu_reads(m.type)) {
            throw Error(
                fmt::format("{} has type {}, which the GPU kernels do not read (they read {}); run on the "
                            "CPU (--device cpu) or requantize the model",
                            name, type_name(m.type), gpu_type_list()));
        }
        slots.push_back({&m.data, nullptr, add_item(m.data, matrix_bytes(m), arena)});
    }

    void add_vector(const float*& v, int64_t n, const std::string& name, size_t arena) {
        if (v == nullptr) return;
        if (n <= 0) throw Error(fmt::format("{}: the configuration gives it no size", name));
        slots.push_back({nullptr, &v, add_item(v, static_cast<uint64_t>(n) * sizeof(float), arena)});
    }

    // One device copy per distinct host range of an arena (a tied output matrix is token_embd).
    size_t add_item(const void* host, uint64_t bytes, size_t arena) {
        const auto key = std::make_tuple(host, bytes, arena);
        if (auto it = seen_.find(key); it != seen_.end()) return it->second;
        items.push_back({host, bytes, arena, arena_bytes[arena]});
        arena_bytes[arena] += cuda::align_up(bytes);
        seen_.emplace(key, items.size() - 1);
        return items.size() - 1;
    }

    const ModelConfig& c_;
    bool routed_experts_;
    std::map<std::tuple<const void*, uint64_t, size_t>, size_t> seen_;
};

// Host -> device copies through two pinned staging buffers: the host fills one while the DMA
// engine drains the other. Pageable memory (the mapped file) cannot be copied asynchronously.
class Uploader {
public:
    explicit Uploader(uint64_t largest_copy)
        : chunk_(std::max<uint64_t>(1, std::min<uint64_t>(largest_copy, kChunk))),
          staging_{cuda::PinnedBuffer(chunk_), cuda::PinnedBuffer(chunk_)} {}

    void copy(void* device, const void* host, uint64_t bytes) {
        for (uint64_t done = 0; done < bytes; done += chunk_) {
            const uint64_t n = std::min(chunk_, bytes - done);
            const size_t i = next_;
            next_ ^= 1;
            drained_[i].synchronize();  // the previous copy out of this buffer is done
            std::memcpy(staging_[i].get(), static_cast<const std::byte*>(host) + done, n);
            cuda::check(cudaMemcpyAsync(static_cast<std::byte*>(device) + done, staging_[i].get(), n,
                                        cudaMemcpyHostToDevice, stream_.get()),
                        "cudaMemcpyAsync (weight upload)");
            drained_[i].record(stream_.get());
        }
    }
    void finish() { stream_.synchronize(); }

private:
    static constexpr uint64_t kChunk = 32ull << 20;
    uint64_t chunk_;
    cuda::Stream stream_;
    std::array<cuda::PinnedBuffer, 2> staging_;
    std::array<cuda::Event, 2> drained_;
    size_t next_ = 0;
};

}  // namespace

uint64_t matrix_bytes(const MatrixRef& m) {
    return row_bytes(m.type, static_cast<uint64_t>(m.cols)).value_or(0) * static_cast<uint64_t>(m.rows);
}

kernels::WeightMatrix weight_matrix(const MatrixRef& w) {
    kernels::WeightMatrix m;
    m.type = static_cast<kernels::WeightType>(static_cast<int32_t>(w.type));
    m.data = w.data;
    m.rows = w.rows;
    m.cols = w.cols;
    m.row_bytes = static_cast<int64_t>(row_bytes(w.type, static_cast<uint64_t>(w.cols)).value_or(0));
    return m;
}

uint64_t device_weight_bytes(const ModelConfig& config, const ModelWeights& host) {
    ModelWeights m = shallow_copy(host);
    return Plan(config, m).total();
}

uint64_t device_weight_bytes_without_experts(const ModelConfig& config, const ModelWeights& host) {
    ModelWeights m = shallow_copy(host);
    return Plan(config, m, false).total();
}

DeviceWeights upload_weights(const ModelConfig& config, const ModelWeights& host, cuda::DevicePool& pool,
                             bool routed_experts) {
    const auto start = std::chrono::steady_clock::now();
    DeviceWeights dw;
    dw.mirror = shallow_copy(host);
    const Plan plan(config, dw.mirror, routed_experts);
    dw.bytes = plan.total();
    pool.require(dw.bytes, "uploading the weights");

    std::vector<std::byte*> base;
    for (size_t a = 0; a < plan.arena_bytes.size(); ++a) {
        dw.arenas.push_back(pool.allocate(plan.arena_bytes[a], cuda::MemoryUse::Weights, plan.arena_what[a]));
        base.push_back(dw.arenas.back().as<std::byte>());
    }
    uint64_t largest = 0;
    for (const Plan::Item& it : plan.items) largest = std::max(largest, it.bytes);
    Uploader up(largest);
    for (const Plan::Item& it : plan.items) up.copy(base[it.arena] + it.offset, it.host, it.bytes);
    for (const Plan::Slot& s : plan.slots) {
        const Plan::Item& it = plan.items[s.item];
        std::byte* p = base[it.arena] + it.offset;
        if (s.matrix != nullptr) *s.matrix = p;
        if (s.vec != nullptr) *s.vec = reinterpret_cast<const float*>(p);
    }

    // Each MoE layer's expert pointer arrays, [gate | up | down] x [n_experts], now that the
    // mirror holds the device addresses.
    dw.experts.resize(dw.mirror.layers.size());
    std::vector<const void*> table;
    for (size_t il = 0; il < dw.mirror.layers.size(); ++il) {
        const ExpertSet& x = dw.mirror.layers[il].experts;
        if (x.gate.empty()) continue;
        const size_t ne = x.gate.size();
        table.clear();
        for (const auto* set : {&x.gate, &x.up, &x.down})
            for (const MatrixRef& m : *set) table.push_back(routed_experts ? m.data : nullptr);
        auto* dev_table = reinterpret_cast<const void**>(base[plan.layer_arena[il]] + plan.table_offset[il]);
        up.copy(dev_table, table.data(), table.size() * sizeof(void*));

        kernels::ExpertWeights& w = dw.experts[il];
        w.gate_type = weight_matrix(x.gate[0]).type;
        w.up_type = weight_matrix(x.up[0]).type;
        w.down_type = weight_matrix(x.down[0]).type;
        w.gate = dev_table;
        w.up = dev_table + ne;
        w.down = dev_table + 2 * ne;
        w.gate_row_bytes = weight_matrix(x.gate[0]).row_bytes;
        w.up_row_bytes = weight_matrix(x.up[0]).row_bytes;
        w.down_row_bytes = weight_matrix(x.down[0]).row_bytes;
        w.gate_bias = x.gate_bias;
        w.up_bias = x.up_bias;
        w.down_bias = x.down_bias;
        w.n_experts = static_cast<int64_t>(ne);
        w.d_model = config.d_model;
        w.d_ff = config.d_ff_expert;
    }
    up.finish();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    spdlog::info("cuda:{}: uploaded {} of weights in {:.1f} s ({:.1f} GB/s)", pool.device(), cuda::format_gib(dw.bytes),
                 seconds, seconds > 0 ? static_cast<double>(dw.bytes) / seconds / 1e9 : 0.0);
    return dw;
}

// ---- the kernels' parameters, from the config -----------------------------------------------

kernels::RouterParams router_params(const ModelConfig& c) {
    kernels::RouterParams p;
    switch (c.gating) {
        case Gating::Softmax: p.gating = kernels::Gating::Softmax; break;
        case Gating::Sigmoid: p.gating = kernels::Gating::Sigmoid; break;
        case Gating::SoftmaxOverTopK: p.gating = kernels::Gating::SoftmaxOverTopK; break;
    }
    switch (c.group_score) {
        case GroupScore::Max: p.group_score = kernels::GroupScore::Max; break;
        case GroupScore::TopTwoSum: p.group_score = kernels::GroupScore::TopTwoSum; break;
    }
    p.n_experts = static_cast<int32_t>(c.n_experts);
    p.n_used = static_cast<int32_t>(c.n_experts_used);
    p.n_groups = static_cast<int32_t>(c.n_groups);
    p.n_groups_used = static_cast<int32_t>(c.n_groups_used);
    p.norm_topk = c.norm_topk;
    p.routed_scale = c.routed_scale;
    return p;
}

kernels::GluParams glu_params(const ModelConfig& c) {
    kernels::GluParams p;
    switch (c.activation) {
        case FfnActivation::SwiGlu: p.kind = kernels::Glu::SwiGlu; break;
        case FfnActivation::SwiGluOai: p.kind = kernels::Glu::SwiGluOai; break;
    }
    p.alpha = c.swiglu_alpha;
    p.limit = c.swiglu_limit;
    return p;
}

kernels::RopeParams rope_params(const ModelConfig& c) {
    kernels::RopeParams p;
    switch (c.rope.style) {
        case RopeStyle::Interleaved: p.neox = false; break;
        case RopeStyle::Neox: p.neox = true; break;
    }
    p.n_dims = static_cast<int32_t>(c.rope.n_dims);
    p.base = c.rope.base;
    p.freq_scale = c.rope.freq_scale;
    p.ext_factor = c.rope.ext_factor;
    p.corr_low = c.rope.corr_low;
    p.corr_high = c.rope.corr_high;
    p.mscale = c.rope.mscale;
    return p;
}

}  // namespace hymoe::cuda_backend
