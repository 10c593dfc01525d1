// Key/value metadata of a model file, the same for every format: GGUF's header key/values, or
// for safetensors the model's config.json (nested objects flattened with '.', so
// "rope_scaling.factor") plus each header's __metadata__ under "safetensors.".
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

namespace hymoe {

// GGUF's value-type ids (gguf.h `enum gguf_type`).
enum class MetaType : uint32_t {
    U8 = 0,
    I8 = 1,
    U16 = 2,
    I16 = 3,
    U32 = 4,
    I32 = 5,
    F32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    U64 = 10,
    I64 = 11,
    F64 = 12,
};

std::string_view meta_type_name(MetaType type);

class MetaValue;

struct MetaArray {
    MetaType element_type = MetaType::U8;  // for JSON arrays of mixed types: the first element's
    std::vector<MetaValue> items;
};

class MetaValue {
public:
    MetaValue() = default;
    static MetaValue unsigned_int(MetaType type, uint64_t v) { return MetaValue(type, v); }
    static MetaValue signed_int(MetaType type, int64_t v) { return MetaValue(type, v); }
    static MetaValue floating(MetaType type, double v) { return MetaValue(type, v); }
    static MetaValue boolean(bool v) { return MetaValue(MetaType::Bool, v); }
    static MetaValue string(std::string v) { return MetaValue(MetaType::String, std::move(v)); }
    static MetaValue array(MetaArray v) { return MetaValue(MetaType::Array, std::move(v)); }

    MetaType type() const { return type_; }

    // Integer value of any integer type when it is representable; nullopt otherwise.
    std::optional<uint64_t> as_u64() const;
    std::optional<int64_t> as_i64() const;
    // Any integer or float type.
    std::optional<double> as_f64() const;
    std::optional<bool> as_bool() const;
    const std::string* as_string() const { return std::get_if<std::string>(&value_); }
    const MetaArray* as_array() const { return std::get_if<MetaArray>(&value_); }

    // Short human-readable form; arrays longer than max_items are elided ("[1, 2, ... 3 more]").
    std::string to_display(size_t max_items = 8, size_t max_string = 60) const;
    // The value as JSON text; arrays longer than max_items become {"array_of": type, "length": n}.
    std::string to_json(size_t max_items = 64) const;

private:
    template <typename T>
    MetaValue(MetaType type, T v) : type_(type), value_(std::move(v)) {}

    MetaType type_ = MetaType::U8;
    std::variant<uint64_t, int64_t, double, bool, std::string, MetaArray> value_{uint64_t{0}};
};

class Metadata {
public:
    // Adds a key; returns false (and changes nothing) if the key is already present.
    bool add(std::string key, MetaValue value);

    const MetaValue* find(std::string_view key) const;
    bool contains(std::string_view key) const { return find(key) != nullptr; }

    std::optional<uint64_t> get_u64(std::string_view key) const;
    std::optional<int64_t> get_i64(std::string_view key) const;
    std::optional<double> get_f64(std::string_view key) const;
    std::optional<bool> get_bool(std::string_view key) const;
    std::optional<std::string_view> get_string(std::string_view key) const;
    const MetaArray* get_array(std::string_view key) const;

    // In file order.
    std::span<const std::pair<std::string, MetaValue>> entries() const { return entries_; }
    size_t size() const { return entries_.size(); }

private:
    std::vector<std::pair<std::string, MetaValue>> entries_;
    std::unordered_map<std::string, size_t> index_;
};

}  // namespace hymoe
