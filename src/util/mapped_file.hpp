// A whole file mapped read-only into memory (RAII). Model files are never copied: tensor views
// point into the mapping, and the OS pages weights in on first touch.
#pragma once

#include <cstddef>
#include <span>
#include <string>

namespace hymoe {

class MappedFile {
public:
    // Throws hymoe::Error naming the path when it cannot be opened, is not a regular file, or
    // cannot be mapped. An empty file maps to an empty span.
    explicit MappedFile(std::string path);
    ~MappedFile();
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;
    MappedFile(MappedFile&& other) noexcept;
    MappedFile& operator=(MappedFile&& other) noexcept;

    const std::string& path() const { return path_; }
    std::span<const std::byte> bytes() const { return {data_, size_}; }
    size_t size() const { return size_; }

private:
    void release() noexcept;

    std::string path_;
    const std::byte* data_ = nullptr;
    size_t size_ = 0;
};

}  // namespace hymoe
