#include "model/quantize_model.hpp"

#include <algorithm>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "cpu/thread_pool.hpp"
#include "format/gguf_writer.hpp"
#include "format/model_file.hpp"
#include "hymoe/error.hpp"
#include "quant/quant.hpp"

namespace hymoe {

namespace {

MixModel mix_model_of(const ModelFile& file) {
    const auto arch = file.metadata().get_string("general.architecture");
    if (!arch) throw Error(fmt::format("quantize: {}: no general.architecture", file.path()));
    const std::string a(*arch);
    MixModel m;
    m.n_layers = static_cast<int64_t>(file.metadata().get_u64(a + ".block_count").value_or(0));
    m.n_experts = static_cast<int64_t>(file.metadata().get_u64(a + ".expert_count").value_or(0));
    if (m.n_layers <= 0) throw Error(fmt::format("quantize: {}: no {}.block_count", file.path(), a));
    return m;
}

// Converts tensor `t` to `to`, row by row, into `out` (rows of row_bytes(to, cols)).
void convert_tensor(const TensorView& t, TensorType to, std::span<std::byte> out, cpu::ThreadPool& pool) {
    const int64_t cols = t.ne(0);
    const int64_t rows = cols > 0 ? static_cast<int64_t>(t.n_elements()) / cols : 0;
    const auto in_row = static_cast<size_t>(*row_bytes(t.type, static_cast<uint64_t>(cols)));
    const auto out_row = static_cast<size_t>(*row_bytes(to, static_cast<uint64_t>(cols)));
    if (!quant::can_dequantize(t.type))
        throw Error(fmt::format("quantize: tensor {}: cannot read type {}", t.name, type_name(t.type)));
    if (!quant::can_quantize(to))
        throw Error(fmt::format("quantize: tensor {}: cannot write type {}", t.name, type_name(to)));
    pool.parallel_for(rows, [&](int64_t begin, int64_t end) {
        std::vector<float> row(static_cast<size_t>(cols));  // [cols]
        for (int64_t r = begin; r < end; ++r) {
            const std::byte* src = t.data + static_cast<size_t>(r) * in_row;
            quant::dequantize_row(t.type, src, cols, row.data());
            quant::quantize_row(to, row.data(), cols, out.data() + static_cast<size_t>(r) * out_row);
        }
    });
}

}  // namespace

QuantizeResult quantize_model(const QuantizeOptions& options,
                              const std::function<void(const QuantizedTensor&)>& on_tensor) {
    const ModelFile file = open_model_file(options.input);
    if (file.format() != FileFormat::Gguf)
        throw Error(fmt::format("quantize: {} is {}, not GGUF (convert it to GGUF first)", options.input,
                                format_name(file.format())));
    if (options.output.empty()) throw Error("quantize: no output path given");
    if (std::filesystem::exists(options.output) && std::filesystem::equivalent(options.input, options.output))
        throw Error(fmt::format("quantize: the output {} is the input", options.output));

    std::vector<MixTensor> mix;
    for (const TensorView& t : file.tensors()) mix.push_back({t.name, t.shape, t.type});
    const std::vector<TensorType> types = plan_tensor_types(options.ftype, mix_model_of(file), mix);

    GgufWriter w(static_cast<uint32_t>(file.gguf().alignment > 0 ? file.gguf().alignment : 32));
    for (const auto& [key, value] : file.metadata().entries()) {
        if (key == "general.file_type" || key == "general.quantization_version") continue;
        w.add_metadata(key, value);
    }
    w.add_metadata("general.quantization_version", MetaValue::unsigned_int(MetaType::U32, 2));  // GGML_QNT_VERSION
    w.add_metadata("general.file_type", MetaValue::unsigned_int(MetaType::U32, static_cast<uint32_t>(options.ftype)));

    QuantizeResult result;
    const auto tensors = file.tensors();
    for (size_t i = 0; i < tensors.size(); ++i) {
        const TensorView& t = tensors[i];
        if (types[i] != t.type && type_traits(t.type).block_size > 1 && !options.allow_requantize)
            throw Error(
                fmt::format("quantize: tensor {} is already {}; converting it to {} loses precision twice "
                            "(pass --allow-requantize to do it anyway)",
                            t.name, type_name(t.type), type_name(types[i])));
        w.add_tensor(t.name, types[i], t.shape);
        result.tensors.push_back({t.name, t.shape, t.type, types[i], t.nbytes, w.tensor_bytes(i)});
    }

    cpu::ThreadPool pool(options.n_threads);
    w.write(options.output, [&](size_t index, std::span<std::byte> out) {
        const TensorView& t = tensors[index];
        if (types[index] == t.type) {
            std::memcpy(out.data(), t.data, std::min<size_t>(out.size(), t.nbytes));
        } else {
            convert_tensor(t, types[index], out, pool);
        }
        if (on_tensor) on_tensor(result.tensors[index]);
    });
    result.file_bytes = std::filesystem::file_size(options.output);
    return result;
}

}  // namespace hymoe
