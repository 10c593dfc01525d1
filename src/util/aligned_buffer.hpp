// Heap memory at a chosen alignment (RAII): what direct I/O reads into.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>

namespace hymoe {

class AlignedBuffer {
public:
    AlignedBuffer() = default;
    AlignedBuffer(size_t bytes, size_t alignment)
        : data_(bytes == 0 ? nullptr : static_cast<std::byte*>(::operator new(bytes, std::align_val_t(alignment)))),
          size_(bytes),
          alignment_(alignment) {}
    ~AlignedBuffer() { release(); }
    AlignedBuffer(const AlignedBuffer&) = delete;
    AlignedBuffer& operator=(const AlignedBuffer&) = delete;
    AlignedBuffer(AlignedBuffer&& o) noexcept : data_(o.data_), size_(o.size_), alignment_(o.alignment_) {
        o.data_ = nullptr;
        o.size_ = 0;
    }
    AlignedBuffer& operator=(AlignedBuffer&& o) noexcept {
        if (this != &o) {
            release();
            data_ = o.data_;
            size_ = o.size_;
            alignment_ = o.alignment_;
            o.data_ = nullptr;
            o.size_ = 0;
        }
        return *this;
    }

    std::byte* data() const { return data_; }
    size_t size() const { return size_; }

private:
    void release() noexcept {
        if (data_ != nullptr) ::operator delete(data_, std::align_val_t(alignment_));
        data_ = nullptr;
    }
    std::byte* data_ = nullptr;
    size_t size_ = 0;
    size_t alignment_ = 1;
};

}  // namespace hymoe
