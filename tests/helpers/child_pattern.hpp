// The byte pattern that `pmcp-test-child spam N` writes, so that tests can check that output
// arrived complete and in order: printable characters in 64-byte lines, shifting every line.
#pragma once

#include <cstdint>

namespace pmcp::test {

inline char spam_byte(uint64_t offset) {
  constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  if (offset % 64 == 63) return '\n';
  return kAlphabet[(offset / 64 + offset % 64) % 62];
}

}  // namespace pmcp::test
