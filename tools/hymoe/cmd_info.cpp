// `hymoe info`: how this hymoe was built and which GPUs it sees.
#include <memory>

#include <fmt/core.h>

#include "commands.hpp"
#include "hymoe/build_info.hpp"
#include "hymoe/error.hpp"

namespace hymoe::cli {

void add_info_command(CLI::App& app) {
    auto* cmd = app.add_subcommand("info", "Show the build configuration and the GPUs hymoe can use");
    auto selftest = std::make_shared<bool>(false);
    cmd->add_flag("--gpu-selftest", *selftest, "Run a kernel on GPU 0 and check its result");
    cmd->callback([selftest] {
        const BuildInfo b = build_info();
        fmt::print("hymoe {}\ncompiler: {}\ncuda: {}\n", b.version, b.compiler, b.cuda ? "built" : "not built");
        std::string why;
        const auto gpus = list_gpus(&why);
        if (gpus.empty()) fmt::print("gpus: none ({}); running on the CPU\n", why);
        for (const auto& g : gpus) {
            fmt::print("gpu {}: {} (sm_{}), {:.1f} GiB\n", g.index, g.name, g.compute_capability,
                       static_cast<double>(g.memory_bytes) / (1u << 30));
        }
        if (*selftest) {
            const std::string failure = gpu_selftest();
            if (!failure.empty()) throw Error("GPU self-test failed: " + failure);
            fmt::print("gpu self-test: ok\n");
        }
    });
}

}  // namespace hymoe::cli
