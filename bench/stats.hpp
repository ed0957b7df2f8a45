// Median, p99 and spread of a series of samples, for every bench.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

namespace pmcp::bench {

struct Stats {
  std::size_t n = 0;
  double p50 = 0, p99 = 0, min = 0, max = 0;
};

inline Stats stats(std::vector<double> v) {
  Stats s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  auto at = [&](double q) { return v[static_cast<std::size_t>(q * double(v.size() - 1))]; };
  s.n = v.size();
  s.p50 = at(0.5);
  s.p99 = at(0.99);
  s.min = v.front();
  s.max = v.back();
  return s;
}

}  // namespace pmcp::bench
