// The built-in vocabulary of `hymoe synth`: llama.cpp's ggml-vocab-llama-spm.gguf (Llama's
// 32000-token SentencePiece vocabulary, tools/hymoe/demo/), assembled into the library with
// .incbin so an installed hymoe needs no source tree. CMake passes the file's path.
#include <cstddef>
#include <span>

#if defined(__ELF__) && defined(HYMOE_BUILTIN_VOCAB_PATH)
#define HYMOE_HAVE_BUILTIN_VOCAB 1
// clang-format off
__asm__(".pushsection .rodata.hymoe_builtin_vocab, \"a\", @progbits\n"
        ".balign 64\n"
        "hymoe_builtin_vocab_begin:\n"
        ".incbin \"" HYMOE_BUILTIN_VOCAB_PATH "\"\n"
        "hymoe_builtin_vocab_end:\n"
        ".popsection\n");
// clang-format on
extern "C" const std::byte hymoe_builtin_vocab_begin[];  // NOLINT: defined by the assembly above
extern "C" const std::byte hymoe_builtin_vocab_end[];
#endif

namespace hymoe::synth {

// Empty when this build could not embed it (not an ELF target).
std::span<const std::byte> builtin_vocab() {
#ifdef HYMOE_HAVE_BUILTIN_VOCAB
    return {hymoe_builtin_vocab_begin, hymoe_builtin_vocab_end};
#else
    return {};
#endif
}

}  // namespace hymoe::synth
