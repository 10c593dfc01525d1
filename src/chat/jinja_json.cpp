// JSON in and out: the render context from nlohmann::ordered_json (key order kept), and
// json.dumps as transformers' tojson filter calls it (ensure_ascii=False by default; Python's
// float repr; "Infinity"/"NaN"; keys that are numbers, booleans or None become strings).
#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "chat/jinja_pystr.hpp"
#include "chat/jinja_value.hpp"

namespace hymoe::jinja {

namespace {

void json_string(std::string& out, std::string_view s, bool ensure_ascii) {
    out += '"';
    size_t pos = 0;
    while (pos < s.size()) {
        const char32_t cp = pystr::decode(s, pos);
        switch (cp) {
            case '"': out += "\\\""; continue;
            case '\\': out += "\\\\"; continue;
            case '\n': out += "\\n"; continue;
            case '\r': out += "\\r"; continue;
            case '\t': out += "\\t"; continue;
            case '\b': out += "\\b"; continue;
            case '\f': out += "\\f"; continue;
            default: break;
        }
        if (cp < 0x20 || (ensure_ascii && cp >= 0x7F)) {
            if (cp >= 0x10000) {
                const char32_t v = cp - 0x10000;
                out += fmt::format("\\u{:04x}\\u{:04x}", static_cast<uint32_t>(0xD800 | (v >> 10)),
                                   static_cast<uint32_t>(0xDC00 | (v & 0x3FF)));
            } else {
                out += fmt::format("\\u{:04x}", static_cast<uint32_t>(cp));
            }
        } else {
            pystr::encode(out, cp);
        }
    }
    out += '"';
}

std::string json_float(double f) {
    if (std::isnan(f)) return "NaN";
    if (std::isinf(f)) return f < 0 ? "-Infinity" : "Infinity";
    return pystr::float_repr(f);
}

void dump(std::string& out, const Value& v, const JsonOptions& o, int level) {
    const NestingGuard guard;
    auto newline = [&](int lvl) {
        if (!o.indent) return;
        out += '\n';
        for (int i = 0; i < lvl; ++i) out += *o.indent;
    };
    switch (v.kind()) {
        case Kind::None: out += "null"; return;
        case Kind::Bool: out += v.as_bool() ? "true" : "false"; return;
        case Kind::Int: out += std::to_string(v.as_int()); return;
        case Kind::Float: out += json_float(v.as_float()); return;
        case Kind::String: json_string(out, v.str(), o.ensure_ascii); return;
        case Kind::List:
        case Kind::Tuple: {
            if (v.items().empty()) {
                out += "[]";
                return;
            }
            out += '[';
            for (size_t i = 0; i < v.items().size(); ++i) {
                if (i > 0) out += o.item_separator;
                newline(level + 1);
                dump(out, v.items()[i], o, level + 1);
            }
            newline(level);
            out += ']';
            return;
        }
        case Kind::Dict: {
            if (v.dict().items.empty()) {
                out += "{}";
                return;
            }
            std::vector<const std::pair<Value, Value>*> items;
            for (const auto& kv : v.dict().items) items.push_back(&kv);
            if (o.sort_keys) {
                std::stable_sort(items.begin(), items.end(),
                                 [](const auto* a, const auto* b) { return py_lt(a->first, b->first); });
            }
            out += '{';
            for (size_t i = 0; i < items.size(); ++i) {
                const Value& key = items[i]->first;
                if (i > 0) out += o.item_separator;
                newline(level + 1);
                switch (key.kind()) {
                    case Kind::String: json_string(out, key.str(), o.ensure_ascii); break;
                    case Kind::Float: out += '"' + json_float(key.as_float()) + '"'; break;
                    case Kind::Int:
                    case Kind::Bool:
                    case Kind::None:
                        out += '"';
                        dump(out, key, o, level);
                        out += '"';
                        break;
                    default:
                        fail(fmt::format("TypeError: keys must be str, int, float, bool or None, not {}",
                                         type_name(key)));
                }
                out += o.key_separator;
                dump(out, items[i]->second, o, level + 1);
            }
            newline(level);
            out += '}';
            return;
        }
        default: fail(fmt::format("TypeError: Object of type {} is not JSON serializable", type_name(v)));
    }
}

}  // namespace

// ---- JSON ---------------------------------------------------------------------------------------

namespace {
Value from_json_at(const nlohmann::ordered_json& j, int depth) {
    if (depth > 512) fail("ValueError: the context nests too deeply");
    switch (j.type()) {
        case nlohmann::json::value_t::object: {
            auto d = std::make_shared<DictData>();
            d->items.reserve(j.size());
            for (const auto& [k, v] : j.items()) d->items.emplace_back(Value::string(k), from_json_at(v, depth + 1));
            return Value::dict(std::move(d));
        }
        case nlohmann::json::value_t::array: {
            std::vector<Value> items;
            items.reserve(j.size());
            for (const auto& v : j) items.push_back(from_json_at(v, depth + 1));
            return Value::list(std::move(items));
        }
        case nlohmann::json::value_t::string: return Value::string(j.get<std::string>());
        case nlohmann::json::value_t::boolean: return Value::boolean(j.get<bool>());
        case nlohmann::json::value_t::number_integer: return Value::integer(j.get<int64_t>());
        case nlohmann::json::value_t::number_unsigned: {
            const auto u = j.get<uint64_t>();
            if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
                return Value::integer(static_cast<int64_t>(u));
            return Value::real(static_cast<double>(u));
        }
        case nlohmann::json::value_t::number_float: return Value::real(j.get<double>());
        default: return Value::none();
    }
}
}  // namespace

Value from_json(const nlohmann::ordered_json& j) {
    return from_json_at(j, 0);
}

std::string dump_json(const Value& v, const JsonOptions& options) {
    std::string out;
    dump(out, v, options, 0);
    return out;
}

}  // namespace hymoe::jinja
