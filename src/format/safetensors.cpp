#include "format/safetensors.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <system_error>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "hymoe/error.hpp"
#include "util/checked.hpp"

namespace hymoe {

namespace {

namespace fs = std::filesystem;
// The safetensors header and index use std::map-backed objects: a header may list hundreds of
// thousands of tensors, and ordered_json looks keys up linearly while parsing. config.json is
// small and its key order is worth keeping for display, so it is parsed ordered.
using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

constexpr uint64_t kLengthBytes = 8;               // the u64 header length that starts the file
constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // the Rust library's MAX_HEADER_SIZE
constexpr uint64_t kInt64Max = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
constexpr std::string_view kIndexFileName = "model.safetensors.index.json";

struct Dtype {
    std::string_view name;
    TensorType type;
};

constexpr std::array kDtypes = {
    Dtype{"F64", TensorType::F64},         Dtype{"F32", TensorType::F32},         Dtype{"F16", TensorType::F16},
    Dtype{"BF16", TensorType::BF16},       Dtype{"I64", TensorType::I64},         Dtype{"I32", TensorType::I32},
    Dtype{"I16", TensorType::I16},         Dtype{"I8", TensorType::I8},           Dtype{"U8", TensorType::U8},
    Dtype{"BOOL", TensorType::BOOL},       Dtype{"F8_E4M3", TensorType::F8_E4M3}, Dtype{"F8_E5M2", TensorType::F8_E5M2},
    Dtype{"F8_E8M0", TensorType::F8_E8M0}, Dtype{"U16", TensorType::U16},         Dtype{"U32", TensorType::U32},
    Dtype{"U64", TensorType::U64},
};

std::optional<TensorType> type_from_dtype(std::string_view dtype) {
    for (const auto& d : kDtypes) {
        if (d.name == dtype) return d.type;
    }
    return std::nullopt;
}

// Names and JSON excerpts come from the file; errors must stay on one line and readable, so
// control bytes (and, for raw parser excerpts, non-ASCII bytes) are escaped and length is capped.
std::string printable(std::string_view text, bool escape_non_ascii = false) {
    constexpr size_t kMaxChars = 200;
    std::string out;
    for (size_t i = 0; i < text.size(); ++i) {
        if (out.size() >= kMaxChars) {
            // Back up to a UTF-8 character boundary so the clipped text stays valid.
            while (!out.empty() && (static_cast<unsigned char>(out.back()) & 0xC0) == 0x80) out.pop_back();
            if (!out.empty() && static_cast<unsigned char>(out.back()) >= 0xC0) out.pop_back();
            out += "...";
            break;
        }
        const auto c = static_cast<unsigned char>(text[i]);
        if (c < 0x20 || c == 0x7F || (escape_non_ascii && c >= 0x80)) {
            out += fmt::format("\\x{:02x}", c);
        } else {
            out += static_cast<char>(c);
        }
    }
    return out;
}

std::string shape_string(const std::vector<int64_t>& shape) {
    return fmt::format("[{}]", fmt::join(shape, ", "));
}

// "an array", "a number", ... for messages that say what a JSON value was instead.
template <typename JsonT>
std::string a_json_kind(const JsonT& value) {
    const std::string_view kind = value.type_name();
    if (kind == "null") return "null";
    return fmt::format("{} {}", kind.find_first_of("aeiou") == 0 ? "an" : "a", kind);
}

uint64_t read_u64_le(const std::byte* p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint64_t>(p[i]);
    return v;
}

// Parses JSON text; a syntax error becomes a hymoe::Error naming `source` and the absolute byte
// offset (`base` is where the text starts in its file).
template <typename JsonT>
JsonT parse_json(std::string_view text, std::string_view source, std::string_view what, uint64_t base,
                 typename JsonT::parser_callback_t callback = nullptr) {
    // nlohmann parses iteratively, but flattening and dump() recurse once per level: a file of
    // nested brackets must not be able to exhaust the stack. Real headers and configs nest < 5.
    constexpr int kMaxDepth = 64;
    auto limit_depth = [&](int depth, typename JsonT::parse_event_t event, JsonT& parsed) {
        if (depth > kMaxDepth) throw Error(fmt::format("{}: {} nests deeper than {} levels", source, what, kMaxDepth));
        return callback ? callback(depth, event, parsed) : true;
    };
    try {
        return JsonT::parse(text.begin(), text.end(), limit_depth);
    } catch (const typename JsonT::parse_error& e) {
        // what() is "[json.exception.parse_error.101] parse error at line L, column C: <reason>";
        // the line and column are replaced by the byte offset, the reason is kept.
        std::string_view reason = e.what();
        if (auto column = reason.find("column "); column != std::string_view::npos) {
            if (auto colon = reason.find(": ", column); colon != std::string_view::npos) {
                reason.remove_prefix(colon + 2);
            }
        }
        const uint64_t at = base + (e.byte > 0 ? e.byte - 1 : 0);
        throw Error(fmt::format("{}: malformed {} at byte {}: {}", source, what, at, printable(reason, true)));
    } catch (const typename JsonT::out_of_range& e) {
        // A number beyond double's range ("1e400") is out_of_range.406, thrown without a position;
        // what() is "[json.exception.out_of_range.406] number overflow parsing '1e400'".
        std::string_view reason = e.what();
        if (auto bracket = reason.find("] "); bracket != std::string_view::npos) reason.remove_prefix(bracket + 2);
        throw Error(fmt::format("{}: malformed {}: {}", source, what, printable(reason, true)));
    }
}

// ---- one safetensors file ---------------------------------------------------------------

struct HeaderLayout {
    std::string_view source;
    std::span<const std::byte> bytes;
    uint64_t data_start = 0;  // absolute offset of the data section (8 + N)
    uint64_t data_size = 0;
};

// Reads one shape dimension or data offset: a JSON integer in [0, max].
std::optional<uint64_t> read_count(const Json& value, uint64_t max, std::string& problem) {
    if (value.is_number_unsigned()) {
        const auto v = value.get<uint64_t>();
        if (v <= max) return v;
        problem = fmt::format("{} is above the limit {}", v, max);
    } else if (value.is_number_integer()) {
        problem = fmt::format("{} is negative", value.get<int64_t>());
    } else if (value.is_number_float()) {
        problem = fmt::format("{} is not an integer", printable(value.dump()));
    } else {
        problem = fmt::format("is {}, not an integer", a_json_kind(value));
    }
    return std::nullopt;
}

// Bytes a tensor of this type and shape takes, or nullopt when that overflows 64 bits.
std::optional<uint64_t> tensor_bytes(TensorType type, const std::vector<int64_t>& shape) {
    // A zero dimension makes the tensor empty however large the others are.
    if (std::find(shape.begin(), shape.end(), 0) != shape.end()) return 0;
    std::optional<uint64_t> n_elements = 1;
    for (int64_t d : shape) {
        n_elements = checked_mul(*n_elements, static_cast<uint64_t>(d));
        if (!n_elements) return std::nullopt;
    }
    return row_bytes(type, *n_elements);
}

TensorView read_tensor_entry(const std::string& name, const Json& entry, const HeaderLayout& layout) {
    auto fail = [&](const std::string& what) {
        return Error(fmt::format("{}: tensor '{}': {}", layout.source, printable(name), what));
    };
    if (!entry.is_object()) throw fail(fmt::format("header entry is {}, not an object", a_json_kind(entry)));

    TensorView view;
    view.name = name;

    const auto dtype = entry.find("dtype");
    if (dtype == entry.end() || !dtype->is_string()) throw fail("\"dtype\" is missing or not a string");
    const auto& dtype_text = dtype->get_ref<const std::string&>();
    const auto type = type_from_dtype(dtype_text);
    if (!type) throw fail(fmt::format("unsupported dtype '{}'", printable(dtype_text)));
    view.type = *type;

    const auto shape = entry.find("shape");
    if (shape == entry.end() || !shape->is_array()) throw fail("\"shape\" is missing or not an array");
    view.shape.reserve(shape->size());
    for (size_t i = 0; i < shape->size(); ++i) {
        std::string problem;
        const auto dim = read_count((*shape)[i], kInt64Max, problem);
        if (!dim) throw fail(fmt::format("shape dimension {} {}", i, problem));
        view.shape.push_back(static_cast<int64_t>(*dim));
    }

    const auto offsets = entry.find("data_offsets");
    if (offsets == entry.end() || !offsets->is_array() || offsets->size() != 2) {
        throw fail("\"data_offsets\" is missing or not a pair [begin, end]");
    }
    std::array<uint64_t, 2> range{};
    for (size_t i = 0; i < 2; ++i) {
        std::string problem;
        const auto v = read_count((*offsets)[i], std::numeric_limits<uint64_t>::max(), problem);
        if (!v) throw fail(fmt::format("data_offsets[{}] {}", i, problem));
        range[i] = *v;
    }
    const auto [begin, end] = range;
    if (begin > end) throw fail(fmt::format("data_offsets [{}, {}] end before they begin", begin, end));
    if (end > layout.data_size) {
        throw fail(fmt::format("data_offsets [{}, {}] run past the end of the data section ({} bytes from byte {})",
                               begin, end, layout.data_size, layout.data_start));
    }

    const auto needed = tensor_bytes(view.type, view.shape);
    if (!needed) {
        throw fail(fmt::format("shape {} of {} is too large (its byte size overflows 64 bits)",
                               shape_string(view.shape), dtype_text));
    }
    if (*needed != end - begin) {
        throw fail(fmt::format("shape {} of {} needs {} bytes but data_offsets [{}, {}] hold {} bytes",
                               shape_string(view.shape), dtype_text, *needed, begin, end, end - begin));
    }

    view.nbytes = *needed;
    view.file_offset = layout.data_start + begin;
    view.data = layout.bytes.data() + view.file_offset;
    return view;
}

void read_header_metadata(const Json& value, std::string_view source,
                          std::vector<std::pair<std::string, std::string>>& out) {
    if (value.is_null()) return;  // the Rust library reads "__metadata__": null as absent
    if (!value.is_object()) {
        throw Error(fmt::format("{}: \"__metadata__\" is {}, not an object", source, a_json_kind(value)));
    }
    for (const auto& [key, v] : value.items()) {
        if (!v.is_string()) {
            throw Error(fmt::format("{}: \"__metadata__\" value of '{}' is {}, not a string", source, printable(key),
                                    a_json_kind(v)));
        }
        out.emplace_back(key, v.get<std::string>());
    }
}

void check_no_overlap(const std::vector<TensorView>& tensors, std::string_view source) {
    // Sorted by offset, so a tensor overlaps some earlier one iff it starts before the end of
    // the last non-empty tensor seen (earlier ones passed this check, so that one ends furthest).
    const TensorView* previous = nullptr;
    for (const auto& t : tensors) {
        if (t.nbytes == 0) continue;
        if (previous != nullptr && t.file_offset < previous->file_offset + previous->nbytes) {
            throw Error(fmt::format("{}: tensors '{}' (bytes {}..{}) and '{}' (bytes {}..{}) overlap", source,
                                    printable(previous->name), previous->file_offset,
                                    previous->file_offset + previous->nbytes, printable(t.name), t.file_offset,
                                    t.file_offset + t.nbytes));
        }
        previous = &t;
    }
}

// ---- config.json flattening ---------------------------------------------------------------

template <typename JsonT>
std::optional<MetaValue> to_meta_value(const JsonT& value) {
    using enum MetaType;
    if (value.is_number_unsigned()) {
        const auto v = value.template get<uint64_t>();
        return v <= kInt64Max ? MetaValue::signed_int(I64, static_cast<int64_t>(v)) : MetaValue::unsigned_int(U64, v);
    }
    if (value.is_number_integer()) return MetaValue::signed_int(I64, value.template get<int64_t>());
    if (value.is_number_float()) return MetaValue::floating(F64, value.template get<double>());
    if (value.is_boolean()) return MetaValue::boolean(value.template get<bool>());
    if (value.is_string()) return MetaValue::string(value.template get<std::string>());
    if (value.is_object()) return MetaValue::string(value.dump());  // only reached inside arrays
    if (value.is_array()) {
        MetaArray array;
        for (const auto& item : value) {
            auto converted = to_meta_value(item);
            if (!converted) continue;
            if (array.items.empty()) array.element_type = converted->type();
            array.items.push_back(std::move(*converted));
        }
        return MetaValue::array(std::move(array));
    }
    return std::nullopt;  // null
}

// Adds every leaf under `object` as "prefix.key.subkey"; an existing key keeps its first value.
template <typename JsonT>
void flatten_into(Metadata& out, const std::string& prefix, const JsonT& object) {
    for (const auto& [key, value] : object.items()) {
        std::string full_key = prefix;
        if (!full_key.empty()) full_key += '.';
        full_key += key;
        if (value.is_object()) {
            flatten_into(out, full_key, value);
        } else if (auto converted = to_meta_value(value)) {
            out.add(std::move(full_key), std::move(*converted));
        }
    }
}

// ---- files on disk ------------------------------------------------------------------------

std::string_view as_text(std::span<const std::byte> bytes) {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

struct ShardIndex {
    std::vector<fs::path> shard_paths;                              // sorted by file name
    std::vector<std::pair<std::string, uint32_t>> tensor_to_shard;  // weight_map, shard as index
    Metadata metadata;  // the index's "metadata", flattened under "safetensors.index."
};

ShardIndex read_shard_index(const fs::path& index_path) {
    const std::string source = index_path.string();
    const MappedFile file(source);
    const Json index = parse_json<Json>(as_text(file.bytes()), source, "JSON", 0);
    if (!index.is_object()) throw Error(fmt::format("{}: index is {}, not a JSON object", source, a_json_kind(index)));

    ShardIndex out;
    if (auto metadata = index.find("metadata"); metadata != index.end() && !metadata->is_null()) {
        if (!metadata->is_object()) {
            throw Error(fmt::format("{}: \"metadata\" is {}, not an object", source, a_json_kind(*metadata)));
        }
        flatten_into(out.metadata, "safetensors.index", *metadata);
    }

    const auto weight_map = index.find("weight_map");
    if (weight_map == index.end() || !weight_map->is_object()) {
        throw Error(fmt::format("{}: \"weight_map\" is missing or not an object", source));
    }
    if (weight_map->empty()) throw Error(fmt::format("{}: \"weight_map\" lists no tensors", source));

    std::map<std::string, std::string> first_tensor_of_shard;  // sorted by shard file name
    for (const auto& [tensor, shard] : weight_map->items()) {
        if (!shard.is_string()) {
            throw Error(fmt::format("{}: weight_map entry of tensor '{}' is {}, not a file name", source,
                                    printable(tensor), a_json_kind(shard)));
        }
        first_tensor_of_shard.emplace(shard.get<std::string>(), tensor);
    }
    const fs::path directory = index_path.parent_path();
    std::unordered_map<std::string, uint32_t> shard_position;
    for (const auto& [shard, tensor] : first_tensor_of_shard) {
        const fs::path shard_path = directory / shard;
        std::error_code ec;
        if (!fs::is_regular_file(shard_path, ec)) {
            throw Error(fmt::format("{}: shard '{}' named in weight_map (for tensor '{}') does not exist", source,
                                    printable(shard), printable(tensor)));
        }
        shard_position.emplace(shard, static_cast<uint32_t>(out.shard_paths.size()));
        out.shard_paths.push_back(shard_path);
    }
    for (const auto& [tensor, shard] : weight_map->items()) {
        out.tensor_to_shard.emplace_back(tensor, shard_position.at(shard.get<std::string>()));
    }
    return out;
}

// The *.safetensors files of a directory that has neither an index nor model.safetensors.
std::vector<fs::path> list_safetensors_files(const fs::path& directory) {
    std::vector<fs::path> found;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(directory, ec)) {
        std::error_code type_ec;
        if (entry.is_regular_file(type_ec) && entry.path().filename().string().ends_with(".safetensors")) {
            found.push_back(entry.path());
        }
    }
    if (ec) throw Error(fmt::format("{}: cannot list directory: {}", directory.string(), ec.message()));
    std::sort(found.begin(), found.end(),
              [](const fs::path& a, const fs::path& b) { return a.filename().string() < b.filename().string(); });
    return found;
}

}  // namespace

SafetensorsContents parse_safetensors(std::span<const std::byte> bytes, std::string_view source) {
    if (bytes.size() < kLengthBytes) {
        throw Error(fmt::format("{}: file is {} bytes, too short for the 8-byte header length of a safetensors file",
                                source, bytes.size()));
    }
    const uint64_t header_size = read_u64_le(bytes.data());
    if (header_size > kMaxHeaderBytes) {
        throw Error(fmt::format("{}: header length {} (byte 0) is above the {}-byte limit", source, header_size,
                                kMaxHeaderBytes));
    }
    if (header_size > bytes.size() - kLengthBytes) {
        throw Error(fmt::format("{}: header length {} (byte 0) runs past the end of the file ({} bytes)", source,
                                header_size, bytes.size()));
    }
    HeaderLayout layout{source, bytes, kLengthBytes + header_size, bytes.size() - kLengthBytes - header_size};

    // nlohmann keeps the last of duplicate keys silently; a header naming a tensor twice is corrupt.
    std::unordered_set<std::string> seen_names;
    std::optional<std::string> duplicate;
    auto find_duplicates = [&](int depth, Json::parse_event_t event, Json& parsed) {
        if (depth == 1 && event == Json::parse_event_t::key && !duplicate) {
            if (!seen_names.insert(parsed.get<std::string>()).second) duplicate = parsed.get<std::string>();
        }
        return true;
    };
    const std::string_view header_text = as_text(bytes.subspan(kLengthBytes, header_size));
    const Json header = parse_json<Json>(header_text, source, "JSON header", kLengthBytes, find_duplicates);
    if (!header.is_object()) {
        throw Error(fmt::format("{}: JSON header (bytes 8..{}) is {}, not an object", source, layout.data_start,
                                a_json_kind(header)));
    }
    if (duplicate) throw Error(fmt::format("{}: JSON header lists '{}' twice", source, printable(*duplicate)));

    SafetensorsContents out;
    out.tensors.reserve(header.size());
    for (const auto& [name, entry] : header.items()) {
        if (name == "__metadata__") {
            read_header_metadata(entry, source, out.header_metadata);
        } else {
            out.tensors.push_back(read_tensor_entry(name, entry, layout));
        }
    }
    std::sort(out.tensors.begin(), out.tensors.end(), [](const TensorView& a, const TensorView& b) {
        return std::tie(a.file_offset, a.nbytes, a.name) < std::tie(b.file_offset, b.nbytes, b.name);
    });
    check_no_overlap(out.tensors, source);
    return out;
}

Metadata metadata_from_json(std::string_view json_text, std::string_view source) {
    const auto root = parse_json<OrderedJson>(json_text, source, "JSON", 0);
    if (!root.is_object()) {
        throw Error(fmt::format("{}: JSON top level is {}, not an object", source, a_json_kind(root)));
    }
    Metadata out;
    flatten_into(out, "", root);
    return out;
}

ModelFile read_safetensors(const std::string& path) {
    std::error_code ec;
    const auto status = fs::status(path, ec);
    if (ec || !fs::exists(status)) throw Error(fmt::format("{}: no such file or directory", path));

    fs::path directory;
    std::optional<fs::path> index_path;
    std::vector<fs::path> shard_paths;
    if (fs::is_directory(status)) {
        directory = path;
        if (fs::exists(directory / kIndexFileName, ec)) {
            index_path = directory / kIndexFileName;
        } else if (fs::exists(directory / "model.safetensors", ec)) {
            shard_paths.push_back(directory / "model.safetensors");
        } else {
            shard_paths = list_safetensors_files(directory);
            if (shard_paths.empty()) {
                throw Error(fmt::format("{}: directory has no model weights (no {}, model.safetensors, *.safetensors)",
                                        path, kIndexFileName));
            }
        }
    } else {
        directory = fs::path(path).parent_path();
        if (directory.empty()) directory = ".";
        if (path.ends_with(".json")) {
            index_path = path;
        } else {
            shard_paths.push_back(path);
        }
    }

    std::optional<ShardIndex> index;
    if (index_path) {
        index = read_shard_index(*index_path);
        shard_paths = index->shard_paths;
    }

    // config.json first, so a model's own settings win over anything the headers carry.
    Metadata metadata;
    const fs::path config_path = directory / "config.json";
    if (fs::is_regular_file(config_path, ec)) {
        const MappedFile config(config_path.string());
        metadata = metadata_from_json(as_text(config.bytes()), config.path());
    }

    std::vector<MappedFile> files;
    std::vector<TensorView> tensors;
    std::unordered_map<std::string, uint32_t> shard_of_tensor;
    for (const auto& shard_path : shard_paths) {
        const auto file_index = static_cast<uint32_t>(files.size());
        files.emplace_back(shard_path.string());
        auto contents = parse_safetensors(files.back().bytes(), files.back().path());
        for (auto& [key, value] : contents.header_metadata) {
            metadata.add("safetensors." + key, MetaValue::string(std::move(value)));
        }
        for (auto& tensor : contents.tensors) {
            const auto [existing, inserted] = shard_of_tensor.emplace(tensor.name, file_index);
            if (!inserted) {
                throw Error(fmt::format("{}: tensor '{}' is in both {} and {}", path, printable(tensor.name),
                                        files[existing->second].path(), files.back().path()));
            }
            tensor.file_index = file_index;
            tensors.push_back(std::move(tensor));
        }
    }

    if (index) {
        for (const auto& [tensor, shard] : index->tensor_to_shard) {
            const auto found = shard_of_tensor.find(tensor);
            if (found == shard_of_tensor.end() || found->second != shard) {
                const std::string elsewhere = found == shard_of_tensor.end()
                                                  ? std::string()
                                                  : fmt::format(" (it is in {})", files[found->second].path());
                throw Error(fmt::format("{}: weight_map puts tensor '{}' in {}, but that shard does not contain it{}",
                                        index_path->string(), printable(tensor), files[shard].path(), elsewhere));
            }
        }
        for (const auto& [key, value] : index->metadata.entries()) metadata.add(key, value);
    }
    return ModelFile(FileFormat::Safetensors, path, std::move(files), std::move(metadata), std::move(tensors));
}

}  // namespace hymoe
