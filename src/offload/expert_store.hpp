// Every routed expert of the model, addressable as (layer, expert), and the way its bytes get
// into a slot: read from the model file (pread, with O_DIRECT where the file system allows it,
// so the page cache does not quietly hold what the RAM budget leaves out), or copied from
// memory for the few layouts converted at load (GPT-OSS's fused gate_up).
//
// A slot of layer l is slot_bytes(l) bytes, 4096-aligned, laid out as three regions (gate, up,
// down); a matrix read from the file starts where its file offset falls within a 4096-byte page
// so the read itself stays aligned.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "cpu/matmul.hpp"
#include "format/model_file.hpp"
#include "model/config.hpp"
#include "model/weights.hpp"

namespace hymoe::offload {

// An expert's three matrices as they lie in a slot (or in the mapped file).
struct ExpertView {
    cpu::MatrixRef gate, up, down;
};

class ExpertStore {
public:
    static constexpr uint64_t kAlign = 4096;

    // Takes the expert matrices from `weights` (views into `file`). Opens the model's files for
    // reading; throws hymoe::Error naming a file that cannot be opened.
    ExpertStore(const ModelConfig& config, const ModelWeights& weights, const ModelFile& file);
    ~ExpertStore();
    ExpertStore(const ExpertStore&) = delete;
    ExpertStore& operator=(const ExpertStore&) = delete;

    int64_t n_layers() const { return static_cast<int64_t>(layers_.size()); }
    int64_t n_experts() const { return n_experts_; }
    bool is_moe(int64_t layer) const { return layers_[static_cast<size_t>(layer)].moe; }
    // Bytes of one expert's gate, up and down (0 for a layer without routed experts).
    uint64_t expert_bytes(int64_t layer) const;
    // Bytes of a slot that holds one expert of this layer, alignment padding included.
    uint64_t slot_bytes(int64_t layer) const;
    // Whether every expert of the layer comes from the file (not from memory).
    bool from_file(int64_t layer) const;

    // Fills `slot` (slot_bytes(layer), kAlign-aligned) with the expert and returns its matrices
    // there. Safe to call from several threads. Throws hymoe::Error naming the file, offset and
    // system error when a read fails or comes up short.
    ExpertView read(int64_t layer, int32_t expert, std::byte* slot) const;
    // The matrices of an expert already in `slot`.
    ExpertView view(int64_t layer, int32_t expert, const std::byte* slot) const;
    // The expert where it lies in the mapped file (touching it pages it in).
    ExpertView mapped(int64_t layer, int32_t expert) const;

private:
    struct Matrix {
        cpu::MatrixRef ref;   // in the mapping (or a converted copy)
        uint64_t bytes = 0;   // of one expert's matrix
        int32_t file = -1;    // index into files_, -1: copied from ref.data
        uint64_t offset = 0;  // in that file
        uint64_t region = 0;  // bytes this matrix takes in a slot
        uint64_t region_start = 0;
    };
    struct Layer {
        bool moe = false;
        std::vector<Matrix> matrices;  // [n_experts * 3]: gate, up, down of expert 0, then 1, ...
        uint64_t slot_bytes = 0;
    };
    struct OpenFile;

    const Matrix& matrix(int64_t layer, int32_t expert, int which) const;
    void read_matrix(const Matrix& m, std::byte* region) const;
    uint64_t skew(const Matrix& m) const;  // where the data starts within its region

    int64_t n_experts_ = 0;
    std::vector<Layer> layers_;
    std::vector<std::unique_ptr<OpenFile>> files_;
};

}  // namespace hymoe::offload
