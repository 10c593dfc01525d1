#include "format/metadata.hpp"

#include <cmath>
#include <limits>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace hymoe {

std::string_view meta_type_name(MetaType type) {
    switch (type) {
        case MetaType::U8: return "u8";
        case MetaType::I8: return "i8";
        case MetaType::U16: return "u16";
        case MetaType::I16: return "i16";
        case MetaType::U32: return "u32";
        case MetaType::I32: return "i32";
        case MetaType::F32: return "f32";
        case MetaType::Bool: return "bool";
        case MetaType::String: return "string";
        case MetaType::Array: return "array";
        case MetaType::U64: return "u64";
        case MetaType::I64: return "i64";
        case MetaType::F64: return "f64";
    }
    return "?";
}

std::optional<uint64_t> MetaValue::as_u64() const {
    if (const auto* u = std::get_if<uint64_t>(&value_)) return *u;
    if (const auto* i = std::get_if<int64_t>(&value_); i && *i >= 0) return static_cast<uint64_t>(*i);
    return std::nullopt;
}

std::optional<int64_t> MetaValue::as_i64() const {
    if (const auto* i = std::get_if<int64_t>(&value_)) return *i;
    if (const auto* u = std::get_if<uint64_t>(&value_);
        u && *u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return static_cast<int64_t>(*u);
    }
    return std::nullopt;
}

std::optional<double> MetaValue::as_f64() const {
    if (const auto* d = std::get_if<double>(&value_)) return *d;
    if (const auto* u = std::get_if<uint64_t>(&value_)) return static_cast<double>(*u);
    if (const auto* i = std::get_if<int64_t>(&value_)) return static_cast<double>(*i);
    return std::nullopt;
}

std::optional<bool> MetaValue::as_bool() const {
    if (const auto* b = std::get_if<bool>(&value_)) return *b;
    return std::nullopt;
}

namespace {

std::string quote_and_clip(const std::string& s, size_t max_chars) {
    std::string out = "\"";
    size_t n = 0;
    for (char c : s) {
        if (n++ == max_chars) {
            out += "...";
            break;
        }
        switch (c) {
            case '\n': out += "\\n"; break;
            case '\t': out += "\\t"; break;
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            default:
                if (static_cast<unsigned char>(c) < 0x20) {
                    out += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
                } else {
                    out += c;
                }
        }
    }
    out += '"';
    return out;
}

}  // namespace

std::string MetaValue::to_display(size_t max_items, size_t max_string) const {
    if (const auto* u = std::get_if<uint64_t>(&value_)) return fmt::format("{}", *u);
    if (const auto* i = std::get_if<int64_t>(&value_)) return fmt::format("{}", *i);
    if (const auto* d = std::get_if<double>(&value_)) return fmt::format("{:g}", *d);
    if (const auto* b = std::get_if<bool>(&value_)) return *b ? "true" : "false";
    if (const auto* s = std::get_if<std::string>(&value_)) return quote_and_clip(*s, max_string);
    const auto& arr = std::get<MetaArray>(value_);
    std::string out = "[";
    const size_t shown = std::min(arr.items.size(), max_items);
    for (size_t i = 0; i < shown; ++i) {
        if (i > 0) out += ", ";
        out += arr.items[i].to_display(max_items, max_string);
    }
    if (shown < arr.items.size()) out += fmt::format("{}... {} more", shown > 0 ? ", " : "", arr.items.size() - shown);
    out += "]";
    return out;
}

namespace {

nlohmann::json json_of(const MetaValue& v, size_t max_items) {
    switch (v.type()) {
        case MetaType::U8:
        case MetaType::U16:
        case MetaType::U32:
        case MetaType::U64: return *v.as_u64();
        case MetaType::I8:
        case MetaType::I16:
        case MetaType::I32:
        case MetaType::I64: return *v.as_i64();
        case MetaType::F32:
        case MetaType::F64: return *v.as_f64();
        case MetaType::Bool: return *v.as_bool();
        case MetaType::String: return *v.as_string();
        case MetaType::Array: {
            const MetaArray& arr = *v.as_array();
            if (arr.items.size() > max_items) {
                return {{"array_of", meta_type_name(arr.element_type)}, {"length", arr.items.size()}};
            }
            auto out = nlohmann::json::array();
            for (const MetaValue& item : arr.items) out.push_back(json_of(item, max_items));
            return out;
        }
    }
    return nullptr;
}

}  // namespace

std::string MetaValue::to_json(size_t max_items) const {
    // Strings from files may hold invalid UTF-8; replace rather than throw.
    return json_of(*this, max_items).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

bool Metadata::add(std::string key, MetaValue value) {
    if (index_.contains(key)) return false;
    index_.emplace(key, entries_.size());
    entries_.emplace_back(std::move(key), std::move(value));
    return true;
}

const MetaValue* Metadata::find(std::string_view key) const {
    auto it = index_.find(std::string(key));
    return it == index_.end() ? nullptr : &entries_[it->second].second;
}

std::optional<uint64_t> Metadata::get_u64(std::string_view key) const {
    const auto* v = find(key);
    return v ? v->as_u64() : std::nullopt;
}

std::optional<int64_t> Metadata::get_i64(std::string_view key) const {
    const auto* v = find(key);
    return v ? v->as_i64() : std::nullopt;
}

std::optional<double> Metadata::get_f64(std::string_view key) const {
    const auto* v = find(key);
    return v ? v->as_f64() : std::nullopt;
}

std::optional<bool> Metadata::get_bool(std::string_view key) const {
    const auto* v = find(key);
    return v ? v->as_bool() : std::nullopt;
}

std::optional<std::string_view> Metadata::get_string(std::string_view key) const {
    const auto* v = find(key);
    const auto* s = v ? v->as_string() : nullptr;
    return s ? std::optional<std::string_view>(*s) : std::nullopt;
}

const MetaArray* Metadata::get_array(std::string_view key) const {
    const auto* v = find(key);
    return v ? v->as_array() : nullptr;
}

}  // namespace hymoe
