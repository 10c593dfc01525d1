// The bodies of the fuzz targets, shared by the libFuzzer binaries (fuzz_gguf, fuzz_safetensors)
// and by test_corpus, which replays the checked-in corpus in every ordinary build.
//
// Each parses the bytes, accepts hymoe::Error as a valid outcome and lets anything else escape.
// For an accepted file it aborts unless every tensor view lies inside the input, overlaps no
// other, and has the size its type and shape give. So another exception type, a crash, or a
// view a caller would trust wrongly is a finding.
#pragma once

#include <cstddef>
#include <cstdint>

int hymoe_fuzz_gguf(const uint8_t* data, size_t size);
int hymoe_fuzz_safetensors(const uint8_t* data, size_t size);
