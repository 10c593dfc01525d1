// SentencePiece BPE as llama.cpp's llm_tokenizer_spm_session does it: start from UTF-8
// characters, repeatedly merge the adjacent pair whose concatenation is the token with the
// highest score (leftmost on ties), then emit tokens, falling back to <0xNN> byte tokens.
#include <map>
#include <queue>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "hymoe/error.hpp"
#include "tokenizer/pretokenize.hpp"
#include "tokenizer/vocab.hpp"

namespace hymoe::tok {

namespace {

struct Symbol {
    int prev;
    int next;
    const char* text;
    size_t n;
};

struct Bigram {
    int left;
    int right;
    float score;
    size_t size;
};

struct BigramOrder {
    bool operator()(const Bigram& l, const Bigram& r) const {
        return l.score < r.score || (l.score == r.score && l.left > r.left);
    }
};

class SpmSession {
public:
    explicit SpmSession(const Vocab& vocab) : vocab_(vocab) {}

    void tokenize(std::string_view text, std::vector<int32_t>& out) {
        size_t offset = 0;
        int index = 0;
        while (offset < text.size()) {
            const size_t n = std::min(utf8_len(text[offset]), text.size() - offset);
            offset += n;
            symbols_.push_back(Symbol{index - 1, offset == text.size() ? -1 : index + 1, text.data() + offset - n, n});
            ++index;
        }
        for (int i = 1; i < static_cast<int>(symbols_.size()); ++i) try_add_bigram(i - 1, i);
        while (!queue_.empty()) {
            const Bigram bigram = queue_.top();
            queue_.pop();
            Symbol& left = symbols_[bigram.left];
            Symbol& right = symbols_[bigram.right];
            if (left.n == 0 || right.n == 0 || left.n + right.n != bigram.size) continue;  // stale
            left.n += right.n;
            right.n = 0;
            left.next = right.next;
            if (right.next >= 0) symbols_[right.next].prev = bigram.left;
            try_add_bigram(left.prev, bigram.left);
            try_add_bigram(bigram.left, left.next);
        }
        if (symbols_.empty()) return;
        for (int i = 0; i != -1; i = symbols_[i].next) resegment(symbols_[i], out);
    }

private:
    void try_add_bigram(int left, int right) {
        if (left == -1 || right == -1) return;
        const std::string text(symbols_[left].text, symbols_[left].n + symbols_[right].n);
        const int32_t id = vocab_.find(text);
        if (id < 0) return;
        queue_.push(Bigram{left, right, vocab_.tokens[static_cast<size_t>(id)].score, text.size()});
        rev_merge_[text] = {left, right};
    }

    // A merged piece that is not itself a token is split back along the merges that made it.
    void resegment(const Symbol& symbol, std::vector<int32_t>& out) {
        const std::string text(symbol.text, symbol.n);
        const int32_t id = vocab_.find(text);
        if (id >= 0) {
            out.push_back(id);
            return;
        }
        const auto it = rev_merge_.find(text);
        if (it == rev_merge_.end()) {
            for (const char c : text) out.push_back(byte_token(static_cast<unsigned char>(c)));
            return;
        }
        resegment(symbols_[it->second.first], out);
        resegment(symbols_[it->second.second], out);
    }

    int32_t byte_token(unsigned char byte) const {
        int32_t id = vocab_.find(fmt::format("<0x{:02X}>", byte));
        if (id < 0) id = vocab_.find(std::string(1, static_cast<char>(byte)));
        if (id < 0) throw Error(fmt::format("tokenizer: no token for byte 0x{:02X} (no <0x{:02X}> token)", byte, byte));
        return id;
    }

    const Vocab& vocab_;
    std::vector<Symbol> symbols_;
    std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue_;
    std::map<std::string, std::pair<int, int>> rev_merge_;
};

}  // namespace

void spm_tokenize(const Vocab& vocab, std::string_view text, std::vector<int32_t>& out) {
    SpmSession(vocab).tokenize(text, out);
}

int spm_token_byte(std::string_view text) {
    if (text.size() != 6 || text.substr(0, 3) != "<0x" || text[5] != '>') return -1;
    int value = 0;
    for (size_t i = 3; i < 5; ++i) {
        const char c = text[i];
        int d = -1;
        if (c >= '0' && c <= '9') d = c - '0';
        if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        if (d < 0) return -1;
        value = value * 16 + d;
    }
    return value;
}

}  // namespace hymoe::tok
