// The Jinja interpreter against Python's jinja2: every case of tests/fixtures/jinja/cases.json
// (made by tests/fixtures/make_jinja_cases.py through transformers' own template environment)
// must render byte for byte as Python did, or fail where Python failed. Then the error messages,
// the resource bounds, and random input, which must give hymoe::Error and nothing worse.
#include <pthread.h>

#include <ctime>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "chat/jinja.hpp"
#include "hymoe/error.hpp"
#include "test_support.hpp"

namespace {

using hymoe::jinja::RenderOptions;
using hymoe::jinja::Template;
using json = nlohmann::ordered_json;

const json& cases_doc() {
    static const json doc = [] {
        const std::string text = hymoe::test::read_text(hymoe::test::fixtures_dir() / "jinja" / "cases.json");
        return text.empty() ? json::object() : json::parse(text);
    }();
    return doc;
}

std::vector<std::string> case_names() {
    std::vector<std::string> names;
    if (cases_doc().contains("cases"))
        for (const json& c : cases_doc()["cases"]) names.push_back(c["name"].get<std::string>());
    return names;
}

const json& find_case(const std::string& name) {
    for (const json& c : cases_doc()["cases"])
        if (c["name"] == name) return c;
    throw std::runtime_error("no case " + name);
}

// The fixed local time the fixture's strftime_now used, with weekday and day of year filled in.
RenderOptions fixed_now() {
    const json& now = cases_doc()["now"];
    std::tm tm{};
    tm.tm_year = now[0].get<int>() - 1900;
    tm.tm_mon = now[1].get<int>() - 1;
    tm.tm_mday = now[2].get<int>();
    tm.tm_hour = now[3].get<int>();
    tm.tm_min = now[4].get<int>();
    tm.tm_sec = now[5].get<int>();
    const std::time_t t = timegm(&tm);
    gmtime_r(&t, &tm);
    RenderOptions options;
    options.now = tm;
    return options;
}

std::string escaped(std::string_view s) {
    std::string out;
    for (char c : s) {
        if (c == '\n') {
            out += "\\n";
        } else if (c == '\t') {
            out += "\\t";
        } else if (static_cast<unsigned char>(c) < 0x20) {
            out += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
        } else {
            out += c;
        }
    }
    return out;
}

// Where two renders part, with some text around it, escaped onto one line each.
std::string diff(const std::string& expected, const std::string& actual) {
    size_t at = 0;
    while (at < expected.size() && at < actual.size() && expected[at] == actual[at]) ++at;
    const size_t from = at > 60 ? at - 60 : 0;
    return fmt::format(
        "first difference at byte {} (expected {} bytes, got {})\n  expected: ...{}\n  actual:   ...{}\n"
        "  (the line starts at byte {})",
        at, expected.size(), actual.size(), escaped(expected.substr(from, 120)), escaped(actual.substr(from, 120)),
        from);
}

class JinjaCase : public ::testing::TestWithParam<std::string> {};

TEST_P(JinjaCase, RendersAsPythonJinja2) {
    const json& c = find_case(GetParam());
    const std::string source = c["template"].get<std::string>();
    const bool want_error = c.contains("error");
    SCOPED_TRACE("template: " + escaped(source.substr(0, 300)));
    std::string rendered;
    try {
        const Template tmpl(source);
        rendered = tmpl.render(c["context"], fixed_now());
    } catch (const hymoe::Error& e) {
        if (want_error) return;
        FAIL() << "unexpected error: " << e.what();
    } catch (const std::exception& e) {
        FAIL() << "an exception other than hymoe::Error: " << e.what();
    }
    if (want_error) {
        FAIL() << "Python failed with \"" << c["message"].get<std::string>() << "\" but this rendered \""
               << escaped(rendered) << "\"";
    }
    const std::string expected = c["expected"].get<std::string>();
    EXPECT_EQ(expected, rendered) << diff(expected, rendered);
}

INSTANTIATE_TEST_SUITE_P(Fixture, JinjaCase, ::testing::ValuesIn(case_names()), hymoe::test::ParamName{});

TEST(Jinja, FixtureIsThere) {
    ASSERT_TRUE(cases_doc().contains("cases")) << "tests/fixtures/jinja/cases.json is missing; run "
                                                  "tests/fixtures/make_jinja_cases.py";
    EXPECT_GE(cases_doc()["cases"].size(), 150u);
}

std::string error_of(const std::string& source, const json& context = json::object()) {
    try {
        Template(source).render(context);
    } catch (const hymoe::Error& e) {
        return e.what();
    }
    return "(no error)";
}

TEST(Jinja, SyntaxErrorNamesLineAndColumn) {
    EXPECT_EQ(error_of("line one\n  {{ 1 + }}"),
              "chat template: line 2, column 10: unexpected 'end of print statement'");
    EXPECT_EQ(error_of("{% if x %}\n{% endfor %}").rfind("chat template: line 2, column 4: ", 0), 0u)
        << error_of("{% if x %}\n{% endfor %}");
    EXPECT_EQ(error_of("{{ x|nosuchfilter }}"), "chat template: line 1, column 6: No filter named 'nosuchfilter'.");
}

TEST(Jinja, RaiseExceptionMessageSurfaces) {
    EXPECT_EQ(error_of("{{ raise_exception('Only user and assistant roles are supported!') }}"),
              "chat template: Only user and assistant roles are supported!");
}

TEST(Jinja, RuntimeErrorNamesTheLine) {
    EXPECT_EQ(error_of("a\nb\n{{ messages.role.x }}", {{"messages", json::object()}}),
              "chat template: line 3: UndefinedError: 'dict object' has no attribute 'role'");
    EXPECT_EQ(error_of("{% for m in messages %}\n{{ m + 1 }}{% endfor %}", {{"messages", {"a"}}}),
              "chat template: line 2: TypeError: can only concatenate str (not \"int\") to str");
}

TEST(Jinja, RecursionIsBounded) {
    const std::string err = error_of("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}");
    EXPECT_NE(err.find("RecursionError"), std::string::npos) << err;
    const std::string loop = error_of("{% for x in [1] recursive %}{{ loop([1]) }}{% endfor %}");
    EXPECT_NE(loop.find("RecursionError"), std::string::npos) << loop;
}

// A render on a thread with a small stack stops with an error before the stack runs out.
TEST(Jinja, SmallThreadStackIsRespected) {
    struct Job {
        std::string error;
        static void* run(void* arg) {
            auto* job = static_cast<Job*>(arg);
            job->error = error_of("{% macro f(n) %}{{ (((f(n + 1)))) }}{% endmacro %}{{ f(0) }}");
            return nullptr;
        }
    } job;
    pthread_attr_t attr;
    ASSERT_EQ(pthread_attr_init(&attr), 0);
    ASSERT_EQ(pthread_attr_setstacksize(&attr, 512 * 1024), 0);
    pthread_t thread;
    ASSERT_EQ(pthread_create(&thread, &attr, &Job::run, &job), 0);
    pthread_join(thread, nullptr);
    pthread_attr_destroy(&attr);
    EXPECT_NE(job.error.find("RecursionError"), std::string::npos) << job.error;
}

TEST(Jinja, DeepNestingIsASyntaxError) {
    const std::string deep = "{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}";
    EXPECT_NE(error_of(deep).find("nests too deeply"), std::string::npos);
    std::string blocks;
    for (int i = 0; i < 5000; ++i) blocks += "{% if true %}";
    EXPECT_NE(error_of(blocks).find("nests too deeply"), std::string::npos);
    const std::string lists = "{{ " + std::string(5000, '[') + " }}";
    EXPECT_NE(error_of(lists).find("chat template: line 1"), std::string::npos);
}

TEST(Jinja, HugeResultsAreRefused) {
    EXPECT_NE(error_of("{{ 'x' * 1000000000000 }}").find("MemoryError"), std::string::npos);
    EXPECT_NE(error_of("{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}"
                       "{% endfor %}")
                  .find("MemoryError"),
              std::string::npos);
}

TEST(Jinja, ReferenceCyclesAreReleased) {
    // A namespace holding itself and a macro in its own scope: leak checkers see these if the
    // interpreter does not break the cycles when the render ends.
    EXPECT_EQ(Template("{% set ns = namespace() %}{% set ns.me = ns %}{% macro m() %}{% endmacro %}"
                       "{% set ns.m = m %}{% for x in [1] %}{% set ns.l = loop %}{% endfor %}ok")
                  .render(json::object()),
              "ok");
}

TEST(Jinja, TemplateIsMovableAndReusable) {
    Template a("{{ x }}!");
    Template b = std::move(a);
    EXPECT_EQ(b.render({{"x", 1}}), "1!");
    EXPECT_EQ(b.render({{"x", "two"}}), "two!");
    EXPECT_EQ(b.render(json()), "!");
}

TEST(Jinja, StrftimeNowUsesTheGivenTime) {
    RenderOptions options;
    options.now = std::tm{};
    options.now->tm_year = 2025 - 1900;
    options.now->tm_mon = 11;
    options.now->tm_mday = 31;
    EXPECT_EQ(Template("{{ strftime_now('%d %B %Y') }}").render(json::object(), options), "31 December 2025");
    EXPECT_FALSE(Template("{{ strftime_now('%Y') }}").render(json::object()).empty());
}

// Random templates built from Jinja's own pieces and from mutated real chat templates: whatever
// comes in, the answer is a string or a hymoe::Error.
TEST(Jinja, RandomInputNeverCrashes) {
    static const char* kPieces[] = {
        "{{",         "}}",
        "{%",         "%}",
        "{#",         "#}",
        "-",          "+",
        " ",          "\n",
        "x",          "messages",
        "m",          "for",
        "in",         "if",
        "else",       "elif",
        "endif",      "endfor",
        "set",        "=",
        "ns",         "namespace(",
        ")",          "(",
        "[",          "]",
        "{",          "}",
        ",",          ":",
        ".",          "|",
        "tojson",     "join",
        "length",     "is",
        "not",        "defined",
        "and",        "or",
        "'a'",        "\"b\"",
        "1",          "2.5",
        "none",       "true",
        "loop",       "index",
        "macro",      "endmacro",
        "call",       "endcall",
        "caller()",   "raw",
        "endraw",     "~",
        "*",          "**",
        "//",         "%",
        "<",          "==",
        "!=",         "range(",
        "items()",    "break",
        "continue",   "\\",
        "'",          "\xc3",
        "\xff",       "filter",
        "endfilter",  "upper",
        "map(",       "attribute=",
        "select(",    "recursive",
        "generation", "endgeneration",
        "with",       "endwith",
        "x.y",        "[0]",
        "[::-1]",     "raise_exception(",
        "dict(",      "e9",
    };
    const json context = {{"messages", {{{"role", "user"}, {"content", "hi"}}}}, {"x", {{"y", {1, 2}}}}, {"m", "text"}};
    std::mt19937 rng(1234);
    auto render_any = [&](const std::string& source) {
        try {
            Template(source).render(context);
        } catch (const hymoe::Error&) {
        } catch (const std::exception& e) {
            ADD_FAILURE() << "non-hymoe exception " << e.what() << " for: " << escaped(source);
        }
    };
    for (int i = 0; i < 3000; ++i) {
        std::string source;
        const int n = 1 + static_cast<int>(rng() % 40);
        for (int k = 0; k < n; ++k) source += kPieces[rng() % std::size(kPieces)];
        render_any(source);
    }
    std::vector<std::string> real;
    for (const json& c : cases_doc()["cases"])
        if (c["name"].get<std::string>().rfind("real_", 0) == 0) real.push_back(c["template"].get<std::string>());
    for (int i = 0; i < 1500 && !real.empty(); ++i) {
        std::string source = real[rng() % real.size()];
        const int edits = 1 + static_cast<int>(rng() % 4);
        for (int k = 0; k < edits && !source.empty(); ++k) {
            const size_t at = rng() % source.size();
            switch (rng() % 4) {
                case 0: source.erase(at, 1 + rng() % 8); break;
                case 1: source[at] = static_cast<char>(rng() % 256); break;
                case 2: source.insert(at, kPieces[rng() % std::size(kPieces)]); break;
                default: source.resize(at); break;
            }
        }
        render_any(source);
    }
}

}  // namespace
