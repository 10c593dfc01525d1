// Byte-level BPE as llama.cpp's llm_tokenizer_bpe_session does it: pre-tokenize, then within
// each word merge the adjacent pair of lowest merge rank (leftmost on ties) until none is left.
#include <queue>
#include <string>
#include <vector>

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
    std::string text;
    int32_t rank;
};

struct BigramOrder {
    // priority_queue pops the "largest": lowest rank first, then leftmost.
    bool operator()(const Bigram& l, const Bigram& r) const {
        return l.rank > r.rank || (l.rank == r.rank && l.left > r.left);
    }
};

using BigramQueue = std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder>;

void add_bigram(const Vocab& vocab, const std::vector<Symbol>& symbols, int left, int right, BigramQueue& queue) {
    if (left == -1 || right == -1) return;
    std::string l(symbols[left].text, symbols[left].n);
    std::string r(symbols[right].text, symbols[right].n);
    const int32_t rank = vocab.bpe_rank(l, r);
    if (rank < 0) return;
    queue.push(Bigram{left, right, l + r, rank});
}

}  // namespace

void bpe_tokenize(const Vocab& vocab, const PreTokenizer& pre, bool ignore_merges, std::string_view text,
                  std::vector<int32_t>& out) {
    for (const std::string& word : pre.split(text)) {
        std::vector<Symbol> symbols;
        size_t offset = 0;
        if (ignore_merges && vocab.find(word) >= 0) {
            symbols.push_back(Symbol{-1, -1, word.data(), word.size()});
            offset = word.size();
        }
        int index = 0;
        while (offset < word.size()) {
            const size_t n = std::min(word.size() - offset, utf8_len(word[offset]));
            offset += n;
            symbols.push_back(Symbol{index - 1, offset == word.size() ? -1 : index + 1, word.data() + offset - n, n});
            ++index;
        }
        BigramQueue queue;
        for (int i = 1; i < static_cast<int>(symbols.size()); ++i) add_bigram(vocab, symbols, i - 1, i, queue);
        while (!queue.empty()) {
            const Bigram bigram = queue.top();
            queue.pop();
            Symbol& left = symbols[bigram.left];
            Symbol& right = symbols[bigram.right];
            if (left.n == 0 || right.n == 0) continue;
            // Skip pairs made stale by an earlier merge of one of their symbols.
            if (std::string(left.text, left.n) + std::string(right.text, right.n) != bigram.text) continue;
            left.n += right.n;
            right.n = 0;
            left.next = right.next;
            if (right.next >= 0) symbols[right.next].prev = bigram.left;
            add_bigram(vocab, symbols, left.prev, bigram.left, queue);
            add_bigram(vocab, symbols, bigram.left, left.next, queue);
        }
        for (const Symbol& sym : symbols) {
            if (sym.n == 0) continue;
            const std::string_view piece(sym.text, sym.n);
            const int32_t id = vocab.find(piece);
            if (id >= 0) {
                out.push_back(id);
                continue;
            }
            // No token for the merged piece: llama.cpp looks up each single byte of the
            // byte-encoded piece and drops those that are not tokens; kept for identical ids.
            for (const char c : piece) {
                const int32_t byte_id = vocab.find(std::string_view(&c, 1));
                if (byte_id >= 0) out.push_back(byte_id);
            }
        }
    }
}

}  // namespace hymoe::tok
