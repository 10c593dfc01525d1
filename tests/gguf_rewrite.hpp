// Writes a modified copy of a GGUF file: one metadata string changed, tensors dropped, reshaped
// or re-encoded. For load-error tests and for quantized copies of the reference models.
#pragma once

#include <algorithm>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "format/gguf_writer.hpp"
#include "format/model_file.hpp"

namespace hymoe::test {

struct TensorRewrite {
    bool drop = false;
    std::optional<std::vector<int64_t>> shape;  // new shape (data zero-filled)
    std::optional<TensorType> type;             // new type, data from `encode`
};

struct GgufRewrite {
    std::string meta_key, meta_value;  // a string value to replace
    // Per tensor: what to change (nullopt: copy as is).
    std::function<std::optional<TensorRewrite>(const TensorView&)> tensor;
    // Re-encodes a tensor's f32 data into its new type.
    std::function<void(const TensorView& src, TensorType type, std::span<std::byte> out)> encode;
};

inline std::filesystem::path rewrite_gguf(const std::filesystem::path& src, const std::filesystem::path& dst,
                                          const GgufRewrite& edit) {
    const ModelFile in = open_model_file(src.string());
    GgufWriter w;
    for (const auto& [k, v] : in.metadata().entries())
        w.add_metadata(k, !edit.meta_key.empty() && k == edit.meta_key ? MetaValue::string(edit.meta_value) : v);
    struct Source {
        const TensorView* view;
        std::optional<TensorRewrite> change;
    };
    std::vector<Source> sources;
    for (const TensorView& t : in.tensors()) {
        std::optional<TensorRewrite> change = edit.tensor ? edit.tensor(t) : std::nullopt;
        if (change && change->drop) continue;
        w.add_tensor(t.name, change && change->type ? *change->type : t.type,
                     change && change->shape ? *change->shape : t.shape);
        sources.push_back({&t, change});
    }
    w.write(dst.string(), [&](size_t i, std::span<std::byte> data) {
        const Source& s = sources[i];
        if (s.change && s.change->type) {
            edit.encode(*s.view, *s.change->type, data);
        } else if (s.change && s.change->shape) {
            std::fill(data.begin(), data.end(), std::byte{0});
        } else {
            std::copy_n(s.view->data, data.size(), data.begin());
        }
    });
    return dst;
}

}  // namespace hymoe::test
