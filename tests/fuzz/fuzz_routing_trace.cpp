// libFuzzer target for the routing trace reader; see routing_trace_entry.hpp and tests/fuzz/README.md.
#include "fuzz/routing_trace_entry.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    return hymoe_fuzz_routing_trace(data, size);
}
