// libFuzzer target for the safetensors reader; see fuzz_entry.hpp and tests/fuzz/README.md.
#include "fuzz/fuzz_entry.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    return hymoe_fuzz_safetensors(data, size);
}
