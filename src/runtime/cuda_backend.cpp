// The CUDA backend (runtime/cuda_backend.hpp): the Backend that owns the weights on one GPU, and
// the per-session context that runs each op on its stream.
#include "runtime/cuda_backend.hpp"

#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "cuda/cublas.hpp"
#include "cuda/device.hpp"
#include "cuda/device_pool.hpp"
#include "cuda/memory.hpp"
#include "hymoe/error.hpp"
#include "launch.hpp"
#include "runtime/cuda_backend_weights.hpp"
#include "runtime/cuda_expert_tier.hpp"
#include "runtime/cuda_host_attention.hpp"

namespace hymoe {

namespace {

using cuda::MemoryUse;

// Up to this many tokens a product reads each weight once in the GEMV kernels; beyond, GEMMs.
constexpr int64_t kGemvMaxTokens = 8;

constexpr std::array<const char*, static_cast<size_t>(Buf::Count)> kBufNames = {
    "X",    "H",      "Attn",         "Q",      "K",          "V",     "TmpA", "TmpB",
    "TmpC", "Router", "RouteWeights", "Shared", "SharedGate", "Logits"};

class CudaBackend final : public Backend {
public:
    CudaBackend(const ModelConfig& c, const ModelWeights& host, const CudaBackendOptions& o,
                const cuda::DeviceInfo& info)
        : config_(c),
          info_(info),
          graphs_(o.graphs),
          pool_(std::make_shared<cuda::DevicePool>(info.index, o.gpu_mem)),
          weights_(cuda_backend::upload_weights(config_, host, *pool_, o.expert_cache < 0)),
          router_(cuda_backend::router_params(c)),
          glu_(cuda_backend::glu_params(c)),
          rope_(cuda_backend::rope_params(c)) {
        if (o.expert_cache >= 0) {
            if (o.cpu_pool == nullptr) throw Error("the GPU expert tier needs a CPU thread pool");
            tier_ = std::make_unique<CudaExpertTier>(
                config_, host, weights_.experts, *pool_, *o.cpu_pool,
                CudaExpertTierOptions{static_cast<uint64_t>(o.expert_cache), o.cache_policy, o.misses, o.prefetch});
            graphs_ = false;  // each MoE layer syncs with the host
        }
        if (o.cpu_attention) {
            if (o.cpu_pool == nullptr) throw Error("attention on the CPU (--attn cpu) needs a CPU thread pool");
            attention_pool_ = o.cpu_pool;
            host_sinks_ = cuda_backend::HostSinks(host, weights_.mirror, c.n_heads);
            graphs_ = false;  // each attention layer syncs with the host
        }
    }

    std::string name() const override { return fmt::format("cuda:{} ({})", info_.index, info_.name); }
    const ModelWeights& weights() const override { return weights_.mirror; }
    std::unique_ptr<BackendContext> new_context(int64_t n_ctx) const override;
    ExpertCacheStats expert_cache_stats() const override { return tier_ ? tier_->stats() : ExpertCacheStats{}; }
    CudaExpertTier* tier() const { return tier_.get(); }

    const ModelConfig& config() const { return config_; }
    cuda::DevicePool& pool() const { return *pool_; }
    int device() const { return info_.index; }
    bool graphs() const { return graphs_; }
    // The pool attention runs on with --attn cpu; null when attention runs on the GPU.
    cpu::ThreadPool* attention_pool() const { return attention_pool_; }
    const float* host_sinks(const float* device) const { return host_sinks_.find(device); }
    // Host memory held by the sessions' KV caches (--attn cpu), for the memory summary.
    void count_host_kv(int64_t bytes) const { host_kv_bytes_ += static_cast<uint64_t>(bytes); }
    uint64_t host_kv_bytes() const { return host_kv_bytes_.load(); }
    const kernels::RouterParams& router() const { return router_; }
    const kernels::GluParams& glu() const { return glu_; }
    const kernels::RopeParams& rope() const { return rope_; }
    const kernels::ExpertWeights& experts(int64_t layer) const {
        if (layer < 0 || static_cast<size_t>(layer) >= weights_.experts.size() ||
            weights_.experts[static_cast<size_t>(layer)].n_experts == 0)
            throw Error(fmt::format("moe_experts: layer {} has no routed experts on the GPU", layer));
        return weights_.experts[static_cast<size_t>(layer)];
    }

private:
    ModelConfig config_;
    cuda::DeviceInfo info_;
    bool graphs_;
    std::shared_ptr<cuda::DevicePool> pool_;  // before weights_: their allocations return to it
    cuda_backend::DeviceWeights weights_;
    std::unique_ptr<CudaExpertTier> tier_;  // after weights_ and pool_: its slots return to the pool first
    kernels::RouterParams router_;
    kernels::GluParams glu_;
    kernels::RopeParams rope_;
    cpu::ThreadPool* attention_pool_ = nullptr;  // --attn cpu
    cuda_backend::HostSinks host_sinks_;         // --attn cpu: every layer's sinks on the host
    mutable std::atomic<uint64_t> host_kv_bytes_{0};
};

cuda::Stream stream_on(int device) {
    cuda::ScopedDevice on(device);
    return cuda::Stream();
}

class CudaContext final : public BackendContext {
public:
    CudaContext(const CudaBackend& b, int64_t n_ctx)
        : b_(b), c_(b.config()), pool_(b.pool()), device_(b.device()), s_(stream_on(device_)), blas_(pool_, s_.get()) {
        cuda::ScopedDevice on(device_);
        // [n_layers] of k [n_ctx][k_row], v [n_ctx][v_row], carved from one allocation.
        const bool mla = c_.is_mla();
        const uint64_t k_row =
            static_cast<uint64_t>(mla ? c_.kv_lora_rank + c_.head_dim_rope : c_.n_kv_heads * c_.head_dim);
        const uint64_t v_row = mla ? 0 : static_cast<uint64_t>(c_.n_kv_heads * c_.head_dim_v);
        const uint64_t k_bytes = cuda::align_up(static_cast<uint64_t>(n_ctx) * k_row * sizeof(float));
        const uint64_t v_bytes = cuda::align_up(static_cast<uint64_t>(n_ctx) * v_row * sizeof(float));
        const uint64_t kv_bytes = static_cast<uint64_t>(c_.n_layers) * (k_bytes + v_bytes);
        std::byte* base = nullptr;
        if (cpu::ThreadPool* attn_pool = b.attention_pool()) {
            // --attn cpu: host memory, charged to nothing on the GPU (the pool's kv cache stays 0).
            host_attn_ = std::make_unique<cuda_backend::HostAttention>(kv_bytes, *attn_pool);
            base = host_attn_->kv_device();
            b.count_host_kv(static_cast<int64_t>(kv_bytes));
        } else {
            kv_ = pool_.allocate(kv_bytes, MemoryUse::KvCache, fmt::format("the KV cache ({} positions)", n_ctx));
            if (kv_) {
                // Positions past n_past are never read, but zeros make a stray read harmless.
                cuda::check(cudaMemsetAsync(kv_.get(), 0, kv_.bytes(), s_.get()), "cudaMemsetAsync (KV cache)");
                s_.synchronize();
            }
            base = kv_.as<std::byte>();
        }
        for (int64_t l = 0; l < c_.n_layers; ++l) {
            std::byte* k = base + static_cast<uint64_t>(l) * (k_bytes + v_bytes);
            kv_layers_.push_back({reinterpret_cast<float*>(k), mla ? nullptr : reinterpret_cast<float*>(k + k_bytes)});
        }
    }

    ~CudaContext() override {
        abandon_capture();
        if (exec_ != nullptr) cudaGraphExecDestroy(exec_);
        cudaStreamSynchronize(s_.get());  // nothing queued may outlive the buffers it uses
        cudaGetLastError();
        if (host_attn_) b_.count_host_kv(-static_cast<int64_t>(host_attn_->kv_bytes()));
    }

    CudaGraphStats stats() const { return stats_; }

    void begin_pass(int64_t n_tokens) override {
        cuda::check(cudaSetDevice(device_), "cudaSetDevice");
        if (capturing_) abandon_capture();  // the previous pass threw halfway through
        if (in_pass_) sync();               // ... and may have left copies out of the staging queued
        downloads_.clear();
        out_used_ = 0;
        ids_used_ = 0;
        in_pass_ = true;
        if (n_tokens != 1) return;
        // The first decode pass runs direct and sizes every buffer a decode pass needs, so the
        // captures after it normally never have to grow one.
        if (b_.graphs() && decode_passes_ > 0) {
            ck(cudaStreamBeginCapture(s_.get(), cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
            capturing_ = true;
        }
        ++decode_passes_;
    }

    void end_pass() override {
        if (capturing_) {
            cudaGraph_t graph = nullptr;
            const cudaError_t err = cudaStreamEndCapture(s_.get(), &graph);
            capturing_ = false;
            if (err != cudaSuccess && graph != nullptr) cudaGraphDestroy(graph);
            cuda::check(err, "cudaStreamEndCapture");
            launch_decode_graph(graph);
        } else {
            ++stats_.direct;
        }
        sync();
        for (const Download& d : downloads_)
            std::memcpy(d.host, static_cast<const std::byte*>(pinned_out_.get()) + d.offset,
                        static_cast<size_t>(d.n) * sizeof(float));
        downloads_.clear();
        in_pass_ = false;
    }

    KvLayer kv_layer(int64_t layer) override { return kv_layers_.at(static_cast<size_t>(layer)); }

    float* buffer(Buf which, int64_t n) override {
        const auto i = static_cast<size_t>(which);
        return static_cast<float*>(grow(bufs_.at(i), bytes_of<float>(n), kBufNames.at(i)));
    }

    int32_t* expert_ids(int64_t n) override {
        return static_cast<int32_t*>(grow(expert_ids_, bytes_of<int32_t>(n), "expert ids"));
    }

    void embed(const cpu::MatrixRef& table, std::span<const int32_t> tokens, float* x) override {
        const auto n = static_cast<int64_t>(tokens.size());
        auto* ids = static_cast<int32_t*>(grow(token_ids_, bytes_of<int32_t>(n), "token ids"));
        int32_t* staged = stage_ids(n);
        std::memcpy(staged, tokens.data(), static_cast<size_t>(n) * sizeof(int32_t));
        ck(cudaMemcpyAsync(ids, staged, static_cast<size_t>(n) * sizeof(int32_t), cudaMemcpyHostToDevice, s_.get()),
           "cudaMemcpyAsync (token ids)");
        const kernels::WeightMatrix w = cuda_backend::weight_matrix(table);
        ck(kernels::embed_rows(w.type, w.data, w.row_bytes, w.cols, ids, n, x, s_.get()), "kernels::embed_rows");
    }

    void rms_norm(const float* x, int64_t x_stride, const float* w, int64_t rows, int64_t width, float eps, float* out,
                  int64_t out_stride) override {
        ck(kernels::rms_norm(x, x_stride, w, rows, width, eps, out, out_stride, s_.get()), "kernels::rms_norm");
    }

    void linear(const Linear& l, const float* x, int64_t n, float* out) override {
        product(l.w, x, n, out);
        if (l.bias != nullptr) ck(kernels::add_bias(out, l.bias, n, l.w.rows, s_.get()), "kernels::add_bias");
    }

    // Per head: gather its input rows when they are not already contiguous, one product, scatter.
    // One token's rows are always contiguous, so a decode step runs the products alone.
    void linear_per_head(const PerHeadLinear& p, int64_t n) override {
        for (size_t i = 0; i < p.w.size(); ++i) {
            const cpu::MatrixRef& w = p.w[i];
            const auto head = static_cast<int64_t>(i);
            const float* x = p.x + head * p.x_head_stride;
            float* out = p.out + head * p.out_head_stride;
            const bool x_direct = n == 1 || p.x_token_stride == w.cols;
            const bool out_direct = n == 1 || p.out_token_stride == w.rows;
            float* in =
                x_direct ? nullptr : static_cast<float*>(grow(head_in_, bytes_of<float>(n * w.cols), "head input"));
            float* res =
                out_direct ? out : static_cast<float*>(grow(head_out_, bytes_of<float>(n * w.rows), "head output"));
            if (!x_direct) {
                ck(kernels::copy_rows(in, w.cols, x, p.x_token_stride, n, w.cols, s_.get()), "kernels::copy_rows");
                x = in;
            }
            product(w, x, n, res);
            if (!out_direct)
                ck(kernels::copy_rows(out, p.out_token_stride, res, w.rows, n, w.rows, s_.get()), "kernels::copy_rows");
        }
    }

    void add(float* x, const float* a, int64_t n) override { ck(kernels::add(x, a, n, s_.get()), "kernels::add"); }

    void add_gated(float* out, const float* src, const float* gate_logit, int64_t rows, int64_t width) override {
        ck(kernels::add_gated(out, src, gate_logit, rows, width, s_.get()), "kernels::add_gated");
    }

    void glu(const float* gate, const float* up, int64_t n, float* out) override {
        ck(kernels::glu(b_.glu(), gate, up, n, out, s_.get()), "kernels::glu");
    }

    void copy_rows(float* dst, int64_t dst_stride, const float* src, int64_t src_stride, int64_t rows,
                   int64_t width) override {
        ck(kernels::copy_rows(dst, dst_stride, src, src_stride, rows, width, s_.get()), "kernels::copy_rows");
    }

    void rope(float* x, int64_t n, int64_t n_heads, int64_t token_stride, int64_t head_stride, int64_t pos0) override {
        ck(kernels::rope(b_.rope(), x, n, n_heads, token_stride, head_stride, pos0, s_.get()), "kernels::rope");
    }

    void attention(const AttentionArgs& a) override {
        if (host_attn_) {
            host_attn_->run(a, b_.host_sinks(a.sinks), s_.get());
            return;
        }
        kernels::AttentionParams p;
        p.q = a.q;
        p.q_token_stride = a.q_token_stride;
        p.q_head_stride = a.q_head_stride;
        p.k = a.k;
        p.v = a.v;
        p.k_pos_stride = a.k_pos_stride;
        p.k_head_stride = a.k_head_stride;
        p.v_pos_stride = a.v_pos_stride;
        p.v_head_stride = a.v_head_stride;
        p.n_tokens = a.n_tokens;
        p.n_heads = a.n_heads;
        p.n_kv_heads = a.n_kv_heads;
        p.dim_k = a.dim_k;
        p.dim_v = a.dim_v;
        p.n_past = a.n_past;
        p.window = a.window;
        p.scale = a.scale;
        p.sinks = a.sinks;
        p.out = a.out;
        p.out_token_stride = a.out_token_stride;
        p.out_head_stride = a.out_head_stride;
        ck(kernels::attention(p, s_.get()), "kernels::attention");
    }

    void route(const float* logits, const float* selection_bias, int64_t n, int32_t* experts, float* weights) override {
        ck(kernels::route(b_.router(), logits, selection_bias, n, experts, weights, s_.get()), "kernels::route");
    }

    void moe_experts(int64_t layer, const ExpertSet&, const float* h, int64_t n, const int32_t* expert_ids,
                     const float* weights, float* out) override {
        if (CudaExpertTier* tier = b_.tier()) {
            tier->run(layer, h, n, expert_ids, weights, out, s_.get(), [&](const int32_t* gpu_ids, float* o) {
                gpu_experts(layer, h, n, gpu_ids, weights, o);
            });
            return;
        }
        gpu_experts(layer, h, n, expert_ids, weights, out);
    }

    // The layer's experts on the GPU over the pairs of expert_ids (those marked -1 skipped).
    void gpu_experts(int64_t layer, const float* h, int64_t n, const int32_t* expert_ids, const float* weights,
                     float* out) {
        const kernels::ExpertWeights& w = b_.experts(layer);
        const int64_t k = c_.n_experts_used, ne = w.n_experts, pairs = n * k;
        // Every buffer first, so a growth (which may end a capture) comes before this op's launches.
        // [pairs] pair_order | [pairs] pair_pos | [ne + 1] offsets | [ne] active | [1] n_active
        auto* ints =
            static_cast<int32_t*>(grow(routing_, bytes_of<int32_t>(2 * pairs + 2 * ne + 2), "expert grouping"));
        const size_t temp_bytes = kernels::group_by_expert_temp_bytes(pairs, ne);
        void* temp = grow(group_temp_, temp_bytes, "expert grouping temp");
        const size_t scratch_bytes = kernels::expert_ffn_scratch_bytes(w, n, k);
        void* scratch = grow(ffn_scratch_, scratch_bytes, "expert FFN scratch");

        kernels::ExpertRouting r;
        r.experts = expert_ids;
        r.weights = weights;
        int32_t* pair_order = ints;
        int32_t* pair_pos = pair_order + pairs;
        int32_t* offsets = pair_pos + pairs;
        int32_t* active = offsets + ne + 1;
        int32_t* n_active = active + ne;
        r.pair_order = pair_order;
        r.pair_pos = pair_pos;
        r.offsets = offsets;
        r.active = active;
        r.n_active = n_active;
        r.n_tokens = n;
        r.n_used = k;
        ck(kernels::group_by_expert(expert_ids, pairs, ne, pair_order, pair_pos, offsets, active, n_active, temp,
                                    temp_bytes, s_.get()),
           "kernels::group_by_expert");
        ck(kernels::expert_ffn(w, r, b_.glu(), h, out, scratch, scratch_bytes, s_.get()), "kernels::expert_ffn");
    }

    void download(const float* src, int64_t n, float* host) override {
        const uint64_t bytes = bytes_of<float>(n);
        const uint64_t offset = stage_download(bytes);
        ck(cudaMemcpyAsync(static_cast<std::byte*>(pinned_out_.get()) + offset, src, bytes, cudaMemcpyDeviceToHost,
                           s_.get()),
           "cudaMemcpyAsync (download)");
        downloads_.push_back({offset, n, host});
    }

private:
    struct Download {
        uint64_t offset;  // in pinned_out_
        int64_t n;
        float* host;
    };

    template <typename T>
    static uint64_t bytes_of(int64_t n) {
        return static_cast<uint64_t>(n < 0 ? 0 : n) * sizeof(T);
    }

    void sync() { ck(cudaStreamSynchronize(s_.get()), "cudaStreamSynchronize"); }

    // A failed op must not leave the stream capturing: drop the capture, then report.
    void ck(cudaError_t err, const char* what) {
        if (err == cudaSuccess) return;
        abandon_capture();
        cuda::check(err, what);
    }

    // y [n][w.rows] = x [n][w.cols] · Wᵀ on the stream.
    void product(const cpu::MatrixRef& w, const float* x, int64_t n, float* y) {
        if (n <= 0 || w.rows == 0) return;
        const bool half = w.type == TensorType::F16 || w.type == TensorType::BF16;
        if (n > kGemvMaxTokens && (half || w.type == TensorType::F32)) {
            // cuBLAS for float weights times many tokens. F16/BF16: x converted the way the CPU
            // converts it (its vec_dot_type), then a tensor-core GEMM with f32 accumulation. F32:
            // an f32 GEMM without TF32, so prefill of an f32 model stays within the CPU issue's
            // 1e-3 tolerance rather than carrying bf16 rounding.
            try {
                if (half) {
                    auto* xh = static_cast<uint16_t*>(grow(convert_, bytes_of<uint16_t>(n * w.cols), "cuBLAS input"));
                    if (w.type == TensorType::BF16) {
                        ck(kernels::f32_to_bf16(x, n * w.cols, xh, s_.get()), "kernels::f32_to_bf16");
                        cuda::gemm_bf16(blas_, w.data, xh, w.rows, w.cols, n, y);
                    } else {
                        ck(kernels::f32_to_f16(x, n * w.cols, xh, s_.get()), "kernels::f32_to_f16");
                        cuda::gemm_f16(blas_, w.data, xh, w.rows, w.cols, n, y);
                    }
                } else {
                    cuda::gemm_f32(blas_, reinterpret_cast<const float*>(w.data), x, w.rows, w.cols, n, y);
                }
            } catch (...) {
                abandon_capture();
                throw;
            }
            return;
        }
        ck(kernels::matmul(cuda_backend::weight_matrix(w), x, n, y, s_.get()), "kernels::matmul");
    }

    // At least `bytes` in `a`, from the pool; contents are dropped when it grows. Growing frees
    // memory queued work may still read, so it waits for the stream; during a capture it first
    // ends the capture and runs what was captured (see end_capture_early).
    void* grow(cuda::DeviceAllocation& a, uint64_t bytes, const char* what) {
        if (bytes <= a.bytes()) return a.get();
        if (capturing_) end_capture_early();
        sync();
        a.reset();
        a = pool_.allocate(bytes, MemoryUse::Scratch, fmt::format("the scratch buffer '{}'", what));
        return a.get();
    }

    int32_t* stage_ids(int64_t n) {
        const uint64_t bytes = bytes_of<int32_t>(n);
        uint64_t offset = cuda::align_up(ids_used_, 16);
        if (offset + bytes > pinned_ids_.bytes()) {
            if (capturing_) end_capture_early();
            sync();  // copies out of the old staging may be queued
            pinned_ids_ = cuda::PinnedBuffer(std::max<uint64_t>(bytes, 4096));
            offset = 0;
        }
        ids_used_ = offset + bytes;
        return reinterpret_cast<int32_t*>(static_cast<std::byte*>(pinned_ids_.get()) + offset);
    }

    uint64_t stage_download(uint64_t bytes) {
        uint64_t offset = cuda::align_up(out_used_, 64);
        if (offset + bytes > pinned_out_.bytes()) {
            if (capturing_) end_capture_early();
            sync();
            for (const Download& d : downloads_)  // hand over what the old staging holds
                std::memcpy(d.host, static_cast<const std::byte*>(pinned_out_.get()) + d.offset,
                            static_cast<size_t>(d.n) * sizeof(float));
            downloads_.clear();
            offset = 0;
            if (bytes > pinned_out_.bytes()) pinned_out_ = cuda::PinnedBuffer(std::max<uint64_t>(bytes, 4096));
        }
        out_used_ = offset + bytes;
        return offset;
    }

    // A buffer must grow in the middle of a capture: the ops captured so far have not run. End
    // the capture, run that partial graph once, and let the rest of the pass run direct.
    void end_capture_early() {
        cudaGraph_t graph = nullptr;
        cudaError_t err = cudaStreamEndCapture(s_.get(), &graph);
        capturing_ = false;
        ++stats_.split;
        if (err == cudaSuccess) {
            size_t nodes = 0;
            err = cudaGraphGetNodes(graph, nullptr, &nodes);
            if (err == cudaSuccess && nodes > 0) {
                cudaGraphExec_t once = nullptr;
                err = cudaGraphInstantiate(&once, graph, 0);
                if (err == cudaSuccess) err = cudaGraphLaunch(once, s_.get());
                if (err == cudaSuccess) err = cudaStreamSynchronize(s_.get());
                if (once != nullptr) cudaGraphExecDestroy(once);
            }
        }
        if (graph != nullptr) cudaGraphDestroy(graph);
        cuda::check(err, "running a partly captured decode pass");
    }

    // Drops a capture without running it (an op failed, or a pass was left unfinished).
    void abandon_capture() noexcept {
        if (!capturing_) return;
        cudaGraph_t graph = nullptr;
        cudaStreamEndCapture(s_.get(), &graph);
        if (graph != nullptr) cudaGraphDestroy(graph);
        cudaGetLastError();
        capturing_ = false;
    }

    // Updates the executable graph with this step's parameters (positions, pointers) when its
    // shape is the same, else instantiates a new one; then launches it.
    void launch_decode_graph(cudaGraph_t graph) {
        if (exec_ != nullptr) {
            cudaGraphExecUpdateResultInfo info{};
            if (cudaGraphExecUpdate(exec_, graph, &info) == cudaSuccess) {
                ++stats_.replayed;
            } else {
                cudaGetLastError();  // the update failure is not sticky; instantiate instead
                cudaGraphExecDestroy(exec_);
                exec_ = nullptr;
            }
        }
        if (exec_ == nullptr) {
            const cudaError_t err = cudaGraphInstantiate(&exec_, graph, 0);
            if (err != cudaSuccess) {
                exec_ = nullptr;
                cudaGraphDestroy(graph);
                cuda::check(err, "cudaGraphInstantiate");
            }
            ++stats_.instantiated;
        }
        cudaGraphDestroy(graph);
        ++stats_.captured;
        cuda::check(cudaGraphLaunch(exec_, s_.get()), "cudaGraphLaunch");
    }

    const CudaBackend& b_;
    const ModelConfig& c_;
    cuda::DevicePool& pool_;
    int device_;
    cuda::Stream s_;
    cuda::CublasHandle blas_;  // after s_: destroyed before it
    cuda::DeviceAllocation kv_;                               // the KV cache on the GPU, or
    std::unique_ptr<cuda_backend::HostAttention> host_attn_;  // ... in host memory (--attn cpu)
    std::vector<KvLayer> kv_layers_;  // [n_layers] views into kv_ or host_attn_'s cache (device addresses)
    std::array<cuda::DeviceAllocation, static_cast<size_t>(Buf::Count)> bufs_;
    cuda::DeviceAllocation expert_ids_;   // [n][n_used] int32
    cuda::DeviceAllocation routing_;      // group_by_expert's outputs, int32
    cuda::DeviceAllocation group_temp_;   // group_by_expert's temp
    cuda::DeviceAllocation ffn_scratch_;  // expert_ffn's scratch
    cuda::DeviceAllocation token_ids_;    // [n] int32
    cuda::DeviceAllocation convert_;      // [n][cols] bf16/f16 activations for cuBLAS
    cuda::DeviceAllocation head_in_;      // [n][cols] a head's gathered input
    cuda::DeviceAllocation head_out_;     // [n][rows] a head's output before the scatter
    cuda::PinnedBuffer pinned_ids_;       // token ids on their way to the device
    cuda::PinnedBuffer pinned_out_;       // downloads on their way to the host
    uint64_t ids_used_ = 0, out_used_ = 0;
    std::vector<Download> downloads_;
    bool in_pass_ = false;
    bool capturing_ = false;
    int64_t decode_passes_ = 0;
    cudaGraphExec_t exec_ = nullptr;  // the decode graph, updated each step
    CudaGraphStats stats_;
};

std::unique_ptr<BackendContext> CudaBackend::new_context(int64_t n_ctx) const {
    return std::make_unique<CudaContext>(*this, n_ctx);
}

bool graphs_disabled_by_environment() {
    const char* v = std::getenv("HYMOE_CUDA_GRAPHS");
    return v != nullptr && std::string_view(v) == "0";
}

}  // namespace

uint64_t cuda_weight_bytes(const ModelWeights& host, const ModelConfig& config) {
    return cuda_backend::device_weight_bytes(config, host);
}

std::unique_ptr<Backend> make_cuda_backend(const ModelConfig& config, const ModelWeights& host,
                                           const CudaBackendOptions& options) {
    std::string why;
    const std::vector<cuda::DeviceInfo> devices = cuda::list_devices(&why);
    if (devices.empty()) throw Error(fmt::format("no usable CUDA GPU: {}", why));
    const cuda::DeviceInfo* info = nullptr;
    for (const cuda::DeviceInfo& d : devices)
        if (d.index == options.device) info = &d;
    if (info == nullptr)
        throw Error(fmt::format("CUDA device {} does not exist ({} usable: cuda:0..cuda:{})", options.device,
                                devices.size(), devices.size() - 1));
    if (info->cc_major < 8)
        throw Error(fmt::format("cuda:{} ({}) has compute capability {}.{}; hymoe's GPU kernels need 8.0 or newer",
                                info->index, info->name, info->cc_major, info->cc_minor));
    cuda_backend::device_weight_bytes(config, host);  // the type checks, before any device memory is touched
    cuda::ScopedDevice on(info->index);
    CudaBackendOptions o = options;
    if (graphs_disabled_by_environment()) o.graphs = false;
    return std::make_unique<CudaBackend>(config, host, o, *info);
}

CudaGraphStats cuda_graph_stats(const BackendContext& context) {
    if (const auto* c = dynamic_cast<const CudaContext*>(&context)) return c->stats();
    return {};
}

std::string cuda_memory_summary(const Backend& backend) {
    if (const auto* b = dynamic_cast<const CudaBackend*>(&backend)) {
        std::string s = fmt::format("cuda:{}: {}", b->device(), b->pool().summary());
        if (b->attention_pool() != nullptr)
            s += fmt::format("; kv cache in host RAM {} (--attn cpu)", cuda::format_gib(b->host_kv_bytes()));
        return s;
    }
    return "";
}

}  // namespace hymoe
