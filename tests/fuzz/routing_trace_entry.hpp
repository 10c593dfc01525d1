// The body of the routing trace fuzz target (fuzz_routing_trace), shared with test_routing_trace,
// which replays the checked-in corpus (tests/corpus/routing_trace) in every build.
//
// It parses the bytes as a routing trace, accepting hymoe::Error as the answer to a bad file and
// letting anything else escape. A trace the reader accepts must hold what the reader promises
// (every expert in range and distinct, probabilities in [0, 1] and descending, ...), else it
// aborts; a small one is then replayed through every cache policy and Belady's optimum, whose
// counts must add up and never beat the optimum.
#pragma once

#include <cstddef>
#include <cstdint>

int hymoe_fuzz_routing_trace(const uint8_t* data, size_t size);
