#include "process/output_buffer.hpp"

#include <algorithm>
#include <cstring>

namespace pmcp::process {

namespace {

// The first allocation for a stream that starts to speak; later ones double up to capacity.
constexpr std::size_t initial_allocation = 4096;

uint64_t count_newlines(const char* data, std::size_t size) {
  return static_cast<uint64_t>(std::count(data, data + size, '\n'));
}

}  // namespace

OutputBuffer::OutputBuffer(std::size_t capacity) : capacity_(capacity) {}

template <class F>
void OutputBuffer::for_each_piece(uint64_t from, uint64_t to, F&& f) const {
  if (from >= to) return;
  const std::size_t size = storage_.size();
  const std::size_t start = (head_ + static_cast<std::size_t>(from - begin_offset())) % size;
  const std::size_t count = static_cast<std::size_t>(to - from);
  const std::size_t first = std::min(count, size - start);
  f(storage_.data() + start, first);
  if (first < count) f(storage_.data(), count - first);
}

void OutputBuffer::grow_storage(std::size_t needed) {
  if (storage_.capacity() >= needed) return;
  const std::size_t doubled = std::max(storage_.capacity() * 2, initial_allocation);
  storage_.reserve(std::min(capacity_, std::max(needed, doubled)));
}

void OutputBuffer::append(std::string_view bytes) {
  if (bytes.empty()) return;
  const uint64_t incoming_newlines = count_newlines(bytes.data(), bytes.size());
  newlines_total_ += incoming_newlines;
  end_ += bytes.size();

  if (capacity_ == 0) {
    newlines_dropped_ += incoming_newlines;
    return;
  }

  if (bytes.size() >= capacity_) {
    // Everything retained so far and the head of `bytes` fall out; keep the last capacity_.
    const std::size_t skipped = bytes.size() - capacity_;
    newlines_dropped_ += newlines_total_ - incoming_newlines - newlines_dropped_;
    newlines_dropped_ += count_newlines(bytes.data(), skipped);
    grow_storage(capacity_);
    storage_.assign(bytes.begin() + static_cast<std::ptrdiff_t>(skipped), bytes.end());
    head_ = 0;
    return;
  }

  // Fill the free room first (head_ stays 0 while the buffer is not full)...
  const std::size_t room = capacity_ - storage_.size();
  const std::size_t fill = std::min(room, bytes.size());
  if (fill > 0) {
    grow_storage(storage_.size() + fill);
    storage_.insert(storage_.end(), bytes.begin(),
                    bytes.begin() + static_cast<std::ptrdiff_t>(fill));
    bytes.remove_prefix(fill);
  }
  // ...then overwrite the oldest bytes in place, piece by piece around the end of storage.
  while (!bytes.empty()) {
    const std::size_t piece = std::min(bytes.size(), capacity_ - head_);
    newlines_dropped_ += count_newlines(storage_.data() + head_, piece);
    std::memcpy(storage_.data() + head_, bytes.data(), piece);
    head_ = (head_ + piece) % capacity_;
    bytes.remove_prefix(piece);
  }
}

OutputBuffer::Slice OutputBuffer::read(uint64_t since, std::size_t max_bytes) const {
  Slice slice{{}, 0, 0, 0};
  since = std::min(since, end_);
  const uint64_t begin = begin_offset();
  if (since < begin) {
    slice.dropped = begin - since;
    since = begin;
  }
  const uint64_t to = since + std::min<uint64_t>(max_bytes, end_ - since);
  slice.data.reserve(static_cast<std::size_t>(to - since));
  for_each_piece(since, to,
                 [&](const char* data, std::size_t size) { slice.data.append(data, size); });
  slice.from = since;
  slice.next = to;
  return slice;
}

std::string OutputBuffer::tail_lines(std::size_t n) const {
  if (n == 0 || storage_.empty()) return {};
  const uint64_t begin = begin_offset();
  // Scan backwards for the n-th '\n' before the last byte (a trailing '\n' ends the last line
  // rather than starting a new one); the tail starts just after it, or at begin if none.
  uint64_t start = begin;
  uint64_t scan_end = end_ - 1;  // exclusive: the last byte never starts a line break search
  std::size_t seen = 0;
  while (scan_end > begin) {
    // Work on the contiguous piece that ends at scan_end.
    const std::size_t size = storage_.size();
    const std::size_t phys_last = (head_ + static_cast<std::size_t>(scan_end - 1 - begin)) % size;
    const std::size_t piece = std::min<uint64_t>(phys_last + 1, scan_end - begin);
    const char* piece_begin = storage_.data() + (phys_last + 1 - piece);
    const char* p = piece_begin + piece;
    bool found = false;
    while (p > piece_begin) {
      const void* hit = memrchr(piece_begin, '\n', static_cast<std::size_t>(p - piece_begin));
      if (hit == nullptr) break;
      p = static_cast<const char*>(hit);
      if (++seen == n) {
        start = scan_end - static_cast<uint64_t>(piece_begin + piece - p) + 1;
        found = true;
        break;
      }
    }
    if (found) break;
    scan_end -= piece;
  }
  std::string out;
  out.reserve(static_cast<std::size_t>(end_ - start));
  for_each_piece(start, end_, [&](const char* data, std::size_t size) { out.append(data, size); });
  return out;
}

uint64_t OutputBuffer::lines_before(uint64_t offset) const {
  const uint64_t begin = begin_offset();
  offset = std::clamp(offset, begin, end_);
  // Count over whichever side of `offset` is shorter.
  if (offset - begin <= end_ - offset) {
    uint64_t count = newlines_dropped_;
    for_each_piece(begin, offset, [&](const char* data, std::size_t size) {
      count += count_newlines(data, size);
    });
    return count;
  }
  uint64_t after = 0;
  for_each_piece(offset, end_,
                 [&](const char* data, std::size_t size) { after += count_newlines(data, size); });
  return newlines_total_ - after;
}

}  // namespace pmcp::process
