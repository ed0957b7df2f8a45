// Counts the allocations of the unit test program (operator new, on every thread), for tests
// that check that a hot path allocates nothing. Defined in allocation_count.cpp, a translation
// unit of its own so that the replaced operators are never inlined into a caller.
#pragma once

#include <atomic>
#include <cstdint>

extern std::atomic<uint64_t> g_allocations;
