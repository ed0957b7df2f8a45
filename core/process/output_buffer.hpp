// A bounded ring buffer for one output stream of one process, addressed by absolute byte offsets
// so that readers can follow a cursor and learn exactly how much was overwritten before they read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pmcp::process {

// Offsets count bytes from the process's first byte on this stream and are never reset: the
// buffer retains the window [begin_offset(), end_offset()) of at most capacity() bytes.
// Thread rule: used from the core's io thread only; no member is safe to call concurrently.
class OutputBuffer {
 public:
  // capacity: the most bytes ever retained. Storage grows on demand up to it, so an idle or
  // quiet stream costs (almost) nothing. A capacity of 0 retains nothing but still counts.
  explicit OutputBuffer(std::size_t capacity);

  // Appends bytes; once capacity() bytes are retained, the oldest ones are overwritten.
  void append(std::string_view bytes);

  // Offset of the oldest retained byte (== end_offset() when nothing is retained).
  uint64_t begin_offset() const { return end_ - storage_.size(); }
  // Total bytes ever appended: the offset the next appended byte will have.
  uint64_t end_offset() const { return end_; }

  struct Slice {
    std::string data;  // the bytes [from, next)
    uint64_t from;     // offset of data[0]
    uint64_t next;     // from + data.size(): the cursor to pass as `since` next time
    uint64_t dropped;  // bytes in [since, begin_offset()) overwritten before they were read
  };

  // Reads at most max_bytes from `since`. A `since` older than begin_offset() starts at
  // begin_offset() and reports the gap in `dropped`; a `since` past end_offset() is clamped to
  // end_offset() (empty slice). Following `next` reads every retained byte exactly once.
  // Example: read(0, 4096) after 10 bytes into a 4-byte buffer -> {data of 6..10, 6, 10, 6}.
  Slice read(uint64_t since, std::size_t max_bytes) const;

  // The last n lines of the retained bytes, as the raw suffix of the buffer (terminators
  // included), so it starts at offset end_offset() - result.size(). A final line without '\n'
  // counts as a line; a trailing '\n' does not start an empty one. The first retained line may
  // be partial if its start was overwritten. n == 0 gives "".
  std::string tail_lines(std::size_t n) const;

  // Number of '\n' bytes ever appended before `offset`, dropped ones included, so that
  // lines_before(o) + 1 is the absolute 1-based number of the line holding offset o. Offsets
  // before begin_offset() are treated as begin_offset() (the exact count inside an overwritten
  // region is not kept); offsets past end_offset() as end_offset().
  uint64_t lines_before(uint64_t offset) const;

  std::size_t capacity() const { return capacity_; }
  // Bytes currently retained: end_offset() - begin_offset(), never more than capacity().
  std::size_t retained() const { return storage_.size(); }
  // Bytes of storage currently allocated (for accounting and tests); at most capacity() once
  // the buffer is full, much less before.
  std::size_t allocated_bytes() const { return storage_.capacity(); }

 private:
  // Calls f(const char* data, std::size_t size) for the retained bytes in [from, to), in order,
  // as at most two contiguous pieces. Requires begin_offset() <= from <= to <= end_offset().
  template <class F>
  void for_each_piece(uint64_t from, uint64_t to, F&& f) const;
  void grow_storage(std::size_t needed);

  std::size_t capacity_;
  std::vector<char> storage_;  // size() == retained(); physical ring once size() == capacity_
  std::size_t head_ = 0;       // physical index of begin_offset(); 0 until the buffer is full
  uint64_t end_ = 0;
  uint64_t newlines_total_ = 0;    // '\n' bytes ever appended
  uint64_t newlines_dropped_ = 0;  // '\n' bytes among those overwritten
};

}  // namespace pmcp::process
