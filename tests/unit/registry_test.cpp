// The process registry (process/registry.cpp): the limit on running processes, and which ended
// processes it keeps for ps. The executor is a minimal plugin written against the C ABI whose
// sink the test drives itself, as a plugin's thread would.
#include "process/registry.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <string>
#include <vector>

#include "minimal_executor.hpp"
#include "process/executor.hpp"

namespace pmcp::process {
namespace {

using test_plugin::g_factory;
using test_plugin::g_sink;

// Runs the core thread's handlers until `done` holds (or a second has passed).
template <typename Done>
void run_until(boost::asio::io_context& io, Done done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    io.restart();
    io.run_for(std::chrono::milliseconds(5));
  }
}

struct Fixture {
  boost::asio::io_context io;
  Executor executor{io};
  std::unique_ptr<Registry> registry;

  explicit Fixture(RegistryLimits limits) {
    registry = std::make_unique<Registry>(executor, limits);
    EXPECT_TRUE(executor.create(&g_factory, nullptr, "{}", *registry).ok());
  }
  ~Fixture() {
    registry.reset();
    executor.destroy();
  }

  // Starts a process and reports it started; returns its outcome.
  Result<ProcessPtr> start(uint64_t expected_number) {
    std::optional<Result<ProcessPtr>> outcome;
    StartRequest request;
    request.command = "true";
    request.argv = {"true"};
    registry->start(std::move(request), [&](Result<ProcessPtr> r) { outcome = std::move(r); });
    if (!outcome) g_sink->on_spawned(g_sink->ctx, expected_number, PMCP_OK, 100, pmcp_str{});
    run_until(io, [&] { return outcome.has_value(); });
    EXPECT_TRUE(outcome.has_value());
    return outcome ? std::move(*outcome) : make_error(ErrorCode::internal, "no outcome");
  }

  void end(uint64_t number) {
    g_sink->on_exit(g_sink->ctx, number, 0, 0, pmcp_str{});
    run_until(io, [&] {
      auto p = registry->find("test-" + std::to_string(number));
      return !p || !p->running();
    });
  }

  std::vector<std::string> listed() const {
    std::vector<std::string> ids;
    for (const auto& p : registry->list()) ids.push_back(p->id + (p->running() ? "" : " ended"));
    return ids;
  }
};

TEST(Registry, RunningProcessesAreLimitedAndEndedOnesDoNotCount) {
  Fixture f(RegistryLimits{1 << 10, 100, 10, 3});
  for (uint64_t n = 1; n <= 3; ++n) ASSERT_TRUE(f.start(n).ok()) << n;
  EXPECT_EQ(f.registry->running_count(), 3u);

  auto refused = f.start(4);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().message,
            "too many processes: 3 are running, the limit is 3 (limits.max_processes); kill some "
            "with the kill tool first");

  f.end(2);
  EXPECT_EQ(f.registry->running_count(), 2u);
  // The refused start took no number; the next one is 4.
  auto started = f.start(4);
  ASSERT_TRUE(started.ok());
  EXPECT_EQ(started.value()->id, "test-4");
  EXPECT_EQ(f.registry->running_count(), 3u);
  EXPECT_FALSE(f.start(5).ok());
}

TEST(Registry, KeepsTheNewestEndedProcessesAndEveryRunningOne) {
  Fixture f(RegistryLimits{1 << 10, 100, 2, 100});
  for (uint64_t n = 1; n <= 6; ++n) ASSERT_TRUE(f.start(n).ok()) << n;
  // Ended out of order; the oldest-numbered ended ones go first, running ones never.
  f.end(4);
  f.end(2);
  EXPECT_EQ(f.listed(), (std::vector<std::string>{"test-1", "test-2 ended", "test-3",
                                                  "test-4 ended", "test-5", "test-6"}));
  f.end(5);
  EXPECT_EQ(f.listed(), (std::vector<std::string>{"test-1", "test-3", "test-4 ended",
                                                  "test-5 ended", "test-6"}));
  EXPECT_EQ(f.registry->find("test-2"), nullptr);
  f.end(1);
  f.end(6);
  EXPECT_EQ(f.listed(),
            (std::vector<std::string>{"test-3", "test-5 ended", "test-6 ended"}));
  EXPECT_EQ(f.registry->running_count(), 1u);
  // Up to the limit on running processes again, with ended ones still listed.
  for (uint64_t n = 7; n <= 105; ++n) ASSERT_TRUE(f.start(n).ok()) << n;
  EXPECT_EQ(f.registry->running_count(), 100u);
  EXPECT_FALSE(f.start(106).ok());
  EXPECT_EQ(f.listed().size(), 102u);
}

TEST(Registry, KeepingNoEndedProcessForgetsEachAtItsEnd) {
  Fixture f(RegistryLimits{1 << 10, 100, 0, 5});
  ASSERT_TRUE(f.start(1).ok());
  ASSERT_TRUE(f.start(2).ok());
  f.end(1);
  EXPECT_EQ(f.listed(), (std::vector<std::string>{"test-2"}));
  EXPECT_EQ(f.registry->running_count(), 1u);
}

}  // namespace
}  // namespace pmcp::process
