#include "process/output_buffer.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

namespace pmcp::process {
namespace {

// Deterministic, non-repeating-looking content so that an off-by-one shows up as a mismatch.
std::string pattern(uint64_t from, std::size_t size) {
  std::string out(size, '\0');
  for (std::size_t i = 0; i < size; ++i) out[i] = static_cast<char>('a' + (from + i) % 23);
  return out;
}

TEST(OutputBuffer, StartsEmptyAndAllocatesNothing) {
  OutputBuffer buffer(1 << 20);
  EXPECT_EQ(buffer.begin_offset(), 0u);
  EXPECT_EQ(buffer.end_offset(), 0u);
  EXPECT_EQ(buffer.retained(), 0u);
  EXPECT_EQ(buffer.capacity(), 1u << 20);
  EXPECT_EQ(buffer.allocated_bytes(), 0u);
  const OutputBuffer::Slice slice = buffer.read(0, 100);
  EXPECT_EQ(slice.data, "");
  EXPECT_EQ(slice.from, 0u);
  EXPECT_EQ(slice.next, 0u);
  EXPECT_EQ(slice.dropped, 0u);
}

TEST(OutputBuffer, GrowsLazily) {
  OutputBuffer buffer(1 << 20);
  buffer.append("hello\n");
  EXPECT_EQ(buffer.retained(), 6u);
  EXPECT_LT(buffer.allocated_bytes(), 64u * 1024);
}

TEST(OutputBuffer, ReadsBeforeWrap) {
  OutputBuffer buffer(16);
  buffer.append("hello ");
  buffer.append("world");
  EXPECT_EQ(buffer.end_offset(), 11u);
  const OutputBuffer::Slice all = buffer.read(0, 100);
  EXPECT_EQ(all.data, "hello world");
  EXPECT_EQ(all.from, 0u);
  EXPECT_EQ(all.next, 11u);
  EXPECT_EQ(all.dropped, 0u);

  const OutputBuffer::Slice middle = buffer.read(3, 4);
  EXPECT_EQ(middle.data, "lo w");
  EXPECT_EQ(middle.from, 3u);
  EXPECT_EQ(middle.next, 7u);
  EXPECT_EQ(middle.dropped, 0u);
}

TEST(OutputBuffer, ReadPastEndIsClampedToEnd) {
  OutputBuffer buffer(16);
  buffer.append("abc");
  const OutputBuffer::Slice slice = buffer.read(1000, 10);
  EXPECT_EQ(slice.data, "");
  EXPECT_EQ(slice.from, 3u);
  EXPECT_EQ(slice.next, 3u);
  EXPECT_EQ(slice.dropped, 0u);
}

TEST(OutputBuffer, ReadWithZeroMaxBytesReturnsNothingButReportsDrop) {
  OutputBuffer buffer(4);
  buffer.append("0123456789");
  const OutputBuffer::Slice slice = buffer.read(2, 0);
  EXPECT_EQ(slice.data, "");
  EXPECT_EQ(slice.from, 6u);
  EXPECT_EQ(slice.next, 6u);
  EXPECT_EQ(slice.dropped, 4u);
}

TEST(OutputBuffer, OverwritesOldestBytesAndReportsExactDrop) {
  OutputBuffer buffer(4);
  buffer.append("0123456789");
  EXPECT_EQ(buffer.begin_offset(), 6u);
  EXPECT_EQ(buffer.end_offset(), 10u);
  EXPECT_EQ(buffer.retained(), 4u);

  const OutputBuffer::Slice from_start = buffer.read(0, 100);
  EXPECT_EQ(from_start.data, "6789");
  EXPECT_EQ(from_start.from, 6u);
  EXPECT_EQ(from_start.next, 10u);
  EXPECT_EQ(from_start.dropped, 6u);

  const OutputBuffer::Slice from_five = buffer.read(5, 100);
  EXPECT_EQ(from_five.dropped, 1u);
  EXPECT_EQ(from_five.data, "6789");

  const OutputBuffer::Slice exact = buffer.read(6, 100);
  EXPECT_EQ(exact.dropped, 0u);
  EXPECT_EQ(exact.data, "6789");
}

TEST(OutputBuffer, ReadAcrossThePhysicalWrap) {
  OutputBuffer buffer(8);
  buffer.append("abcdef");  // fills 0..5
  buffer.append("ghijk");   // wraps: retained "defghijk", physically split
  EXPECT_EQ(buffer.begin_offset(), 3u);
  const OutputBuffer::Slice slice = buffer.read(4, 5);
  EXPECT_EQ(slice.data, "efghi");
  EXPECT_EQ(slice.from, 4u);
  EXPECT_EQ(slice.next, 9u);
  EXPECT_EQ(slice.dropped, 0u);
  EXPECT_EQ(buffer.read(0, 100).data, "defghijk");
}

TEST(OutputBuffer, AppendLargerThanCapacityKeepsTheLastBytes) {
  OutputBuffer buffer(5);
  buffer.append("ab");
  buffer.append("0123456789");
  EXPECT_EQ(buffer.begin_offset(), 7u);
  EXPECT_EQ(buffer.end_offset(), 12u);
  EXPECT_EQ(buffer.read(0, 100).data, "56789");
  buffer.append("xy");
  EXPECT_EQ(buffer.read(0, 100).data, "789xy");
}

TEST(OutputBuffer, FollowingNextReadsEveryByteExactlyOnce) {
  // A reader that keeps up, with reads that are smaller than the writes and straddle the wrap.
  OutputBuffer buffer(64);
  std::string written;
  std::string seen;
  uint64_t cursor = 0;
  uint64_t total_dropped = 0;
  for (int round = 0; round < 500; ++round) {
    const std::size_t size = 1 + (round * 7) % 40;
    const std::string chunk = pattern(written.size(), size);
    buffer.append(chunk);
    written += chunk;
    for (int reads = 0; reads < 3; ++reads) {
      const OutputBuffer::Slice slice = buffer.read(cursor, 17);
      EXPECT_EQ(slice.from, cursor + slice.dropped);
      EXPECT_EQ(slice.next, slice.from + slice.data.size());
      total_dropped += slice.dropped;
      seen += slice.data;
      cursor = slice.next;
    }
  }
  while (cursor < buffer.end_offset()) {
    const OutputBuffer::Slice slice = buffer.read(cursor, 17);
    total_dropped += slice.dropped;
    seen += slice.data;
    cursor = slice.next;
  }
  EXPECT_EQ(total_dropped, 0u);
  EXPECT_EQ(seen, written);
}

TEST(OutputBuffer, SlowReaderLearnsExactlyWhatWasDropped) {
  OutputBuffer buffer(100);
  std::string written;
  std::string seen;
  uint64_t cursor = 0;
  uint64_t total_dropped = 0;
  for (int round = 0; round < 200; ++round) {
    const std::string chunk = pattern(written.size(), 1 + (round * 13) % 90);
    buffer.append(chunk);
    written += chunk;
    if (round % 5 == 4) {  // reads rarely, so the buffer wraps between reads
      const OutputBuffer::Slice slice = buffer.read(cursor, 30);
      EXPECT_EQ(slice.dropped, slice.from > cursor ? slice.from - cursor : 0);
      // The bytes returned are exactly those written at those offsets.
      EXPECT_EQ(slice.data, written.substr(slice.from, slice.data.size()));
      total_dropped += slice.dropped;
      seen += slice.data;
      cursor = slice.next;
    }
  }
  while (cursor < buffer.end_offset()) {
    const OutputBuffer::Slice slice = buffer.read(cursor, 30);
    total_dropped += slice.dropped;
    seen += slice.data;
    cursor = slice.next;
  }
  EXPECT_GT(total_dropped, 0u);
  // Every byte was either read once or counted as dropped once.
  EXPECT_EQ(seen.size() + total_dropped, written.size());
}

TEST(OutputBuffer, HundredMegabytesThroughOneMegabyteStaysBounded) {
  constexpr std::size_t capacity = 1 << 20;
  OutputBuffer buffer(capacity);
  const std::string chunk = pattern(0, 64 * 1024 + 13);  // not a divisor of the capacity
  uint64_t total = 0;
  while (total < 100u * 1024 * 1024) {
    buffer.append(chunk);
    total += chunk.size();
    ASSERT_LE(buffer.retained(), capacity);
    ASSERT_LE(buffer.allocated_bytes(), capacity);
  }
  EXPECT_EQ(buffer.end_offset(), total);
  EXPECT_EQ(buffer.retained(), capacity);
  EXPECT_EQ(buffer.begin_offset(), total - capacity);
  const OutputBuffer::Slice slice = buffer.read(0, 10);
  EXPECT_EQ(slice.dropped, total - capacity);
  EXPECT_EQ(slice.from, total - capacity);
  // The oldest retained byte is the one written at that offset.
  const std::size_t in_chunk = static_cast<std::size_t>((total - capacity) % chunk.size());
  EXPECT_EQ(slice.data[0], chunk[in_chunk]);
}

TEST(OutputBuffer, ZeroCapacityCountsButRetainsNothing) {
  OutputBuffer buffer(0);
  buffer.append("a\nb\n");
  EXPECT_EQ(buffer.end_offset(), 4u);
  EXPECT_EQ(buffer.retained(), 0u);
  EXPECT_EQ(buffer.begin_offset(), 4u);
  const OutputBuffer::Slice slice = buffer.read(0, 10);
  EXPECT_EQ(slice.data, "");
  EXPECT_EQ(slice.dropped, 4u);
  EXPECT_EQ(buffer.tail_lines(3), "");
  EXPECT_EQ(buffer.lines_before(4), 2u);
}

TEST(OutputBuffer, TailLinesEdgeCases) {
  OutputBuffer buffer(1024);
  EXPECT_EQ(buffer.tail_lines(3), "");

  buffer.append("one\ntwo\nthree\n");
  EXPECT_EQ(buffer.tail_lines(0), "");
  EXPECT_EQ(buffer.tail_lines(1), "three\n");  // the trailing '\n' does not start a line
  EXPECT_EQ(buffer.tail_lines(2), "two\nthree\n");
  EXPECT_EQ(buffer.tail_lines(3), "one\ntwo\nthree\n");
  EXPECT_EQ(buffer.tail_lines(100), "one\ntwo\nthree\n");

  buffer.append("partial");  // a final line without '\n' counts
  EXPECT_EQ(buffer.tail_lines(1), "partial");
  EXPECT_EQ(buffer.tail_lines(2), "three\npartial");
}

TEST(OutputBuffer, TailLinesWithEmptyLinesAndOnlyNewlines) {
  OutputBuffer buffer(1024);
  buffer.append("\n");
  EXPECT_EQ(buffer.tail_lines(1), "\n");
  EXPECT_EQ(buffer.tail_lines(5), "\n");
  buffer.append("\n\n");
  EXPECT_EQ(buffer.tail_lines(2), "\n\n");
  buffer.append("x\n\n");
  EXPECT_EQ(buffer.tail_lines(1), "\n");
  EXPECT_EQ(buffer.tail_lines(2), "x\n\n");
}

TEST(OutputBuffer, TailLinesAfterWrapStartsAtOldestRetainedByte) {
  OutputBuffer buffer(10);
  buffer.append("line1\nline2\nline3\n");  // retained: offsets 8..17
  EXPECT_EQ(buffer.read(0, 100).data, "ne2\nline3\n");
  EXPECT_EQ(buffer.tail_lines(1), "line3\n");
  EXPECT_EQ(buffer.tail_lines(2), "ne2\nline3\n");  // the first retained line is partial
  EXPECT_EQ(buffer.tail_lines(9), "ne2\nline3\n");
  const std::string tail = buffer.tail_lines(1);
  EXPECT_EQ(buffer.end_offset() - tail.size(), 12u);  // the tail's start offset
}

TEST(OutputBuffer, TailLinesAcrossThePhysicalWrap) {
  OutputBuffer buffer(12);
  buffer.append("aaaa\nbbbb\n");  // 10 bytes, no wrap yet
  buffer.append("cc\ndd\n");      // wraps physically
  EXPECT_EQ(buffer.read(0, 100).data, "\nbbbb\ncc\ndd\n");
  EXPECT_EQ(buffer.tail_lines(1), "dd\n");
  EXPECT_EQ(buffer.tail_lines(2), "cc\ndd\n");
  EXPECT_EQ(buffer.tail_lines(3), "bbbb\ncc\ndd\n");
  EXPECT_EQ(buffer.tail_lines(4), "\nbbbb\ncc\ndd\n");
  EXPECT_EQ(buffer.tail_lines(5), "\nbbbb\ncc\ndd\n");
}

TEST(OutputBuffer, LinesBeforeCountsDroppedNewlines) {
  OutputBuffer buffer(8);
  buffer.append("a\nb\nc\n");  // offsets 0..5, newlines at 1, 3, 5
  EXPECT_EQ(buffer.lines_before(0), 0u);
  EXPECT_EQ(buffer.lines_before(1), 0u);
  EXPECT_EQ(buffer.lines_before(2), 1u);
  EXPECT_EQ(buffer.lines_before(6), 3u);
  EXPECT_EQ(buffer.lines_before(1000), 3u);  // clamped to end

  buffer.append("dd\neeee\n");  // 14 bytes total; retained offsets 6..13 = "dd\neeee\n"
  EXPECT_EQ(buffer.begin_offset(), 6u);
  EXPECT_EQ(buffer.lines_before(6), 3u);  // the three dropped newlines still count
  EXPECT_EQ(buffer.lines_before(8), 3u);
  EXPECT_EQ(buffer.lines_before(9), 4u);  // after "dd\n": line 5 starts here
  EXPECT_EQ(buffer.lines_before(13), 4u);
  EXPECT_EQ(buffer.lines_before(14), 5u);
  EXPECT_EQ(buffer.lines_before(0), 3u);  // before begin: treated as begin
}

TEST(OutputBuffer, LinesBeforeMatchesACountOverEverythingWritten) {
  OutputBuffer buffer(50);
  std::string written;
  for (int round = 0; round < 300; ++round) {
    std::string chunk = pattern(written.size(), 1 + (round * 11) % 37);
    for (std::size_t i = 0; i < chunk.size(); i += 1 + (round % 5)) chunk[i] = '\n';
    buffer.append(chunk);
    written += chunk;
    for (uint64_t offset = buffer.begin_offset(); offset <= buffer.end_offset(); offset += 3) {
      const auto expected = static_cast<uint64_t>(
          std::count(written.begin(), written.begin() + static_cast<std::ptrdiff_t>(offset), '\n'));
      ASSERT_EQ(buffer.lines_before(offset), expected) << "offset " << offset;
    }
  }
}

}  // namespace
}  // namespace pmcp::process
