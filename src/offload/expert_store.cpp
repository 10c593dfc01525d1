#include "offload/expert_store.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "format/tensor_type.hpp"
#include "hymoe/error.hpp"

namespace hymoe::offload {

namespace {

uint64_t align_up(uint64_t x, uint64_t a) {
    return (x + a - 1) / a * a;
}

bool direct_io_allowed() {
    const char* v = std::getenv("HYMOE_DIRECT_IO");
    return v == nullptr || std::string(v) != "0";
}

}  // namespace

// One model file opened twice: with O_DIRECT where the file system supports it (reads bypass
// the page cache), and buffered for the reads direct I/O refuses.
struct ExpertStore::OpenFile {
    std::string path;
    int direct_fd = -1;
    int buffered_fd = -1;
    mutable std::atomic<bool> direct_ok{false};

    explicit OpenFile(std::string p) : path(std::move(p)) {
        buffered_fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (buffered_fd < 0)
            throw Error(fmt::format("{}: cannot open for reading experts: {}", path, std::strerror(errno)));
#ifdef O_DIRECT
        if (direct_io_allowed()) direct_fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT);
#endif
        direct_ok = direct_fd >= 0;
    }
    ~OpenFile() {
        if (direct_fd >= 0) ::close(direct_fd);
        if (buffered_fd >= 0) ::close(buffered_fd);
    }
    OpenFile(const OpenFile&) = delete;
    OpenFile& operator=(const OpenFile&) = delete;

    // Reads [offset, offset + n) into dst, stopping early only at the end of the file; returns
    // the bytes read. Throws on a read error.
    uint64_t read_until_eof(std::byte* dst, uint64_t n, uint64_t offset, bool direct) const {
        const int fd = direct ? direct_fd : buffered_fd;
        uint64_t done = 0;
        while (done < n) {
            const ssize_t got = ::pread(fd, dst + done, n - done, static_cast<off_t>(offset + done));
            if (got < 0) {
                if (errno == EINTR) continue;
                throw Error(fmt::format("{}: reading {} bytes of expert weights at byte offset {}: {}", path, n - done,
                                        offset + done, std::strerror(errno)));
            }
            if (got == 0) break;
            done += static_cast<uint64_t>(got);
        }
        return done;
    }
    void require(uint64_t got, uint64_t needed, uint64_t offset) const {
        if (got < needed)
            throw Error(fmt::format("{}: the file ends before byte offset {} (expert weights, {} bytes short)", path,
                                    offset + needed, needed - got));
    }
};

ExpertStore::ExpertStore(const ModelConfig& c, const ModelWeights& w, const ModelFile& file)
    : n_experts_(c.n_experts) {
    for (const std::string& path : file.file_paths()) files_.push_back(std::make_unique<OpenFile>(path));
    layers_.resize(static_cast<size_t>(c.n_layers));
    for (int64_t il = 0; il < c.n_layers; ++il) {
        Layer& L = layers_[static_cast<size_t>(il)];
        const ExpertSet& x = w.layers[static_cast<size_t>(il)].experts;
        L.moe = c.layer_moe[static_cast<size_t>(il)] != 0 && static_cast<int64_t>(x.gate.size()) == c.n_experts;
        if (!L.moe) continue;
        L.matrices.resize(static_cast<size_t>(c.n_experts * 3));
        for (int64_t e = 0; e < c.n_experts; ++e) {
            const cpu::MatrixRef* refs[3] = {&x.gate[static_cast<size_t>(e)], &x.up[static_cast<size_t>(e)],
                                             &x.down[static_cast<size_t>(e)]};
            uint64_t start = 0;
            for (int j = 0; j < 3; ++j) {
                Matrix& m = L.matrices[static_cast<size_t>(e * 3 + j)];
                m.ref = *refs[j];
                m.bytes = row_bytes(m.ref.type, static_cast<uint64_t>(m.ref.cols)).value_or(0) *
                          static_cast<uint64_t>(m.ref.rows);
                if (const auto at = file.locate(m.ref.data, m.bytes)) {
                    m.file = static_cast<int32_t>(at->file_index);
                    m.offset = at->offset;
                }
                // Room for the matrix starting anywhere within its first page.
                m.region = align_up(m.bytes + kAlign - 1, kAlign);
                m.region_start = start;
                start += m.region;
            }
            L.slot_bytes = std::max(L.slot_bytes, start);
        }
    }
}

ExpertStore::~ExpertStore() = default;

const ExpertStore::Matrix& ExpertStore::matrix(int64_t layer, int32_t expert, int which) const {
    return layers_[static_cast<size_t>(layer)].matrices[static_cast<size_t>(expert) * 3 + static_cast<size_t>(which)];
}

uint64_t ExpertStore::expert_bytes(int64_t layer) const {
    if (!is_moe(layer)) return 0;
    return matrix(layer, 0, 0).bytes + matrix(layer, 0, 1).bytes + matrix(layer, 0, 2).bytes;
}

uint64_t ExpertStore::slot_bytes(int64_t layer) const {
    return layers_[static_cast<size_t>(layer)].slot_bytes;
}

bool ExpertStore::from_file(int64_t layer) const {
    if (!is_moe(layer)) return false;
    for (const Matrix& m : layers_[static_cast<size_t>(layer)].matrices)
        if (m.file < 0) return false;
    return true;
}

uint64_t ExpertStore::skew(const Matrix& m) const {
    return m.file >= 0 ? m.offset % kAlign : 0;
}

void ExpertStore::read_matrix(const Matrix& m, std::byte* region) const {
    if (m.file < 0) {
        std::memcpy(region, m.ref.data, m.bytes);
        return;
    }
    const OpenFile& f = *files_[static_cast<size_t>(m.file)];
    const uint64_t first = m.offset - m.offset % kAlign;
    const uint64_t n = align_up(m.offset + m.bytes, kAlign) - first;  // <= m.region
    if (f.direct_ok.load(std::memory_order_relaxed)) {
        try {
            // The last page may run past the end of the file: only what the matrix needs must come.
            f.require(f.read_until_eof(region, n, first, true), m.offset % kAlign + m.bytes, first);
            return;
        } catch (const Error&) {
            // Some file systems refuse O_DIRECT reads they accepted at open (EINVAL): read buffered
            // from now on. A real I/O error shows again on the buffered read.
            f.direct_ok = false;
        }
    }
    f.require(f.read_until_eof(region + m.offset % kAlign, m.bytes, m.offset, false), m.bytes, m.offset);
}

ExpertView ExpertStore::read(int64_t layer, int32_t expert, std::byte* slot) const {
    for (int j = 0; j < 3; ++j) {
        const Matrix& m = matrix(layer, expert, j);
        read_matrix(m, slot + m.region_start);
    }
    return view(layer, expert, slot);
}

ExpertView ExpertStore::view(int64_t layer, int32_t expert, const std::byte* slot) const {
    ExpertView v;
    cpu::MatrixRef* out[3] = {&v.gate, &v.up, &v.down};
    for (int j = 0; j < 3; ++j) {
        const Matrix& m = matrix(layer, expert, j);
        *out[j] = m.ref;
        out[j]->data = slot + m.region_start + skew(m);
    }
    return v;
}

ExpertView ExpertStore::mapped(int64_t layer, int32_t expert) const {
    return {matrix(layer, expert, 0).ref, matrix(layer, expert, 1).ref, matrix(layer, expert, 2).ref};
}

}  // namespace hymoe::offload
