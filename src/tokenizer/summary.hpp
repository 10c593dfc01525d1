// A summary of a model's tokenizer for `hymoe inspect`: which kind, how many tokens, the special
// tokens, whether a chat template is present. From GGUF metadata (tokenizer.ggml.*), or from
// tokenizer.json / tokenizer_config.json / chat_template.jinja beside a safetensors model.
#pragma once

#include "format/model_file.hpp"
#include "hymoe/inspect.hpp"

namespace hymoe {

// Throws hymoe::Error naming the file when a tokenizer file exists but is malformed.
TokenizerSummary summarize_tokenizer(const ModelFile& model);

}  // namespace hymoe
