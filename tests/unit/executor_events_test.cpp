// The core's executor wrapper (process/executor.cpp): the sink callbacks of a plugin, called
// from a plugin thread, become events on the core thread in the order the plugin emitted them.
// A terminal's output is batched while the core is busy; nothing is lost, reordered or delayed
// past the exit. The plugin here is a minimal one written against the C ABI: the sink is
// driven by the test's own thread, as a plugin's reader thread would drive it.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <ctime>
#include <string>
#include <thread>
#include <vector>

#include "allocation_count.hpp"
#include "minimal_executor.hpp"
#include "process/executor.hpp"

namespace pmcp::process {
namespace {

using test_plugin::g_factory;
using test_plugin::g_sink;

struct Event {
  enum Kind { output, exit } kind;
  int stream = 0;
  std::string bytes;
};

int64_t thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

// Records what reaches the core thread; each output event takes `render_time` (a slow
// terminal), so that the plugin's thread runs ahead and pieces pile up. That time is spent
// asleep, which costs the core thread no CPU (rendering that is cheap per byte); cpu_per_byte
// is spent computing (rendering that is costly per byte).
struct Recorder : ExecutorEvents {
  boost::asio::io_context* io = nullptr;
  std::chrono::microseconds render_time{0};
  int64_t cpu_per_byte_ns = 0;
  std::vector<Event> events;
  void on_spawned(uint64_t, Result<void>, int64_t) override {}
  void on_output(uint64_t, int stream, std::string_view bytes) override {
    if (render_time.count() > 0) std::this_thread::sleep_for(render_time);
    if (cpu_per_byte_ns > 0) {
      const int64_t until = thread_cpu_ns() + cpu_per_byte_ns * int64_t(bytes.size());
      while (thread_cpu_ns() < until) {
      }
    }
    events.push_back(Event{Event::output, stream, std::string(bytes)});
  }
  void on_exit(uint64_t, int, int, std::string) override {
    events.push_back(Event{Event::exit, 0, {}});
    io->stop();
  }
};

// Creates the instance of the minimal plugin and spawns process `id` on it (with a terminal
// when `tty`); returns the sink that the test then drives as the plugin would.
const pmcp_executor_sink* start_flood(Executor& executor, ExecutorEvents& events, uint64_t id,
                                      bool tty) {
  EXPECT_TRUE(executor.create(&g_factory, nullptr, "{}", events).ok());
  SpawnRequest request;
  request.id = id;
  request.argv = {"flood"};
  request.tty = tty;
  request.cols = 80;
  request.rows = 24;
  EXPECT_TRUE(executor.spawn(request).ok());
  return g_sink;
}

// The piece the plugin reports each time (a read of a flooded PTY), `count` of them, each
// piece's stream given by stream_of(k), then the exit. Each output event takes the core
// render_time asleep and cpu_per_byte_ns of CPU per byte (Recorder). Returns the events the core
// saw.
template <typename StreamOf>
std::vector<Event> run_flood(
    bool tty, std::size_t piece, std::size_t count, StreamOf stream_of, std::string& sent_stdout,
    std::string& sent_stderr, std::vector<int>& sent_streams, int64_t cpu_per_byte_ns = 0,
    std::chrono::microseconds render_time = std::chrono::microseconds(300)) {
  boost::asio::io_context io;
  auto work = boost::asio::make_work_guard(io);
  Recorder recorder;
  recorder.io = &io;
  recorder.render_time = render_time;
  recorder.cpu_per_byte_ns = cpu_per_byte_ns;
  Executor executor(io);
  const pmcp_executor_sink* sink = start_flood(executor, recorder, 7, tty);
  // Made before the plugin starts, so that it reports as fast as it can (under a sanitizer too).
  std::string all;
  for (std::size_t i = 0; i < piece * count; ++i) all += static_cast<char>('a' + (i % 26));

  std::thread plugin([&] {
    sink->on_spawned(sink->ctx, 7, PMCP_OK, 1234, pmcp_str{nullptr, 0});
    for (std::size_t k = 0; k < count; ++k) {
      const std::string_view bytes(all.data() + k * piece, piece);
      const int stream = stream_of(k);
      (stream == PMCP_STREAM_STDERR ? sent_stderr : sent_stdout) += bytes;
      sent_streams.push_back(stream);
      sink->on_output(sink->ctx, 7, stream, reinterpret_cast<const uint8_t*>(bytes.data()),
                      bytes.size());
    }
    sink->on_exit(sink->ctx, 7, 0, 0, pmcp_str{nullptr, 0});
  });
  io.run();
  plugin.join();
  executor.destroy();
  return std::move(recorder.events);
}

TEST(ExecutorEvents, TerminalFloodIsBatchedWholeAndInOrderBeforeTheExit) {
  std::string out, err;
  std::vector<int> streams;
  const std::size_t piece = 1000, count = 400;
  // 2 ms per event asleep: time enough for the plugin to report far more than 20 KiB meanwhile.
  auto events = run_flood(
      true, piece, count, [](std::size_t) { return PMCP_STREAM_STDOUT; }, out, err, streams, 0,
      std::chrono::microseconds(2000));
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().kind, Event::exit);
  std::string got;
  std::size_t outputs = 0;
  std::size_t largest = 0;
  for (std::size_t i = 0; i + 1 < events.size(); ++i) {
    ASSERT_EQ(events[i].kind, Event::output) << "the exit must come after the last output";
    got += events[i].bytes;
    ++outputs;
    largest = std::max(largest, events[i].bytes.size());
    // At most what may ever be queued for the core (64 KiB) plus one piece of 4 KiB.
    EXPECT_LE(events[i].bytes.size(), std::size_t{68} << 10);
  }
  EXPECT_EQ(got, out);
  // The core took 2 ms per event while the plugin kept reporting: the pieces were batched.
  EXPECT_LT(outputs, count / 2) << outputs << " output events for " << count << " pieces";
  // Rendering cost the core no CPU (it slept): the batches grew past the 16 KiB that costly
  // rendering gets (the next test).
  EXPECT_GT(largest, std::size_t{20} << 10) << "the batches did not grow";
}

TEST(ExecutorEvents, TerminalFloodThatIsCostlyToRenderIsTakenInSmallBatches) {
  std::string out, err;
  std::vector<int> streams;
  // 150 ns of the core's CPU per byte: a batch of 16 KiB takes 2.5 ms, more than the budget
  // that larger batches would need, so none is larger than 16 KiB plus one piece of 4 KiB.
  auto events = run_flood(
      true, 1000, 400, [](std::size_t) { return PMCP_STREAM_STDOUT; }, out, err, streams, 150);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().kind, Event::exit);
  std::string got;
  for (std::size_t i = 0; i + 1 < events.size(); ++i) {
    ASSERT_EQ(events[i].kind, Event::output);
    got += events[i].bytes;
    EXPECT_LE(events[i].bytes.size(), std::size_t{20} << 10) << "event " << i;
  }
  EXPECT_EQ(got, out);
}

TEST(ExecutorEvents, TerminalBatchesKeepTheOrderOfStreams) {
  std::string out, err;
  std::vector<int> streams;
  // A plugin may report stderr for a terminal process too; runs of each stream alternate.
  auto events = run_flood(
      true, 700, 300,
      [](std::size_t k) { return (k / 5) % 2 == 0 ? PMCP_STREAM_STDOUT : PMCP_STREAM_STDERR; }, out,
      err, streams);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().kind, Event::exit);
  std::string got_out, got_err;
  std::vector<int> runs;  // the streams of the events, consecutive repeats merged
  for (std::size_t i = 0; i + 1 < events.size(); ++i) {
    ASSERT_EQ(events[i].kind, Event::output);
    (events[i].stream == PMCP_STREAM_STDERR ? got_err : got_out) += events[i].bytes;
    if (runs.empty() || runs.back() != events[i].stream) runs.push_back(events[i].stream);
  }
  EXPECT_EQ(got_out, out);
  EXPECT_EQ(got_err, err);
  std::vector<int> sent_runs;
  for (int s : streams) {
    if (sent_runs.empty() || sent_runs.back() != s) sent_runs.push_back(s);
  }
  EXPECT_EQ(runs, sent_runs);
}

TEST(ExecutorEvents, PipeOutputIsDeliveredWholeAndInOrderBeforeTheExit) {
  std::string out, err;
  std::vector<int> streams;
  auto events = run_flood(
      false, 3000, 200,
      [](std::size_t k) { return k % 3 == 0 ? PMCP_STREAM_STDERR : PMCP_STREAM_STDOUT; }, out, err,
      streams);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().kind, Event::exit);
  std::string got_out, got_err;
  for (std::size_t i = 0; i + 1 < events.size(); ++i) {
    ASSERT_EQ(events[i].kind, Event::output);
    (events[i].stream == PMCP_STREAM_STDERR ? got_err : got_out) += events[i].bytes;
  }
  EXPECT_EQ(got_out, out);
  EXPECT_EQ(got_err, err);
}

// The order in which the core thread saw exits and other work.
struct ExitOrder : ExecutorEvents {
  boost::asio::io_context* io = nullptr;
  std::vector<std::string> seen;
  uint64_t last = 0;
  void on_spawned(uint64_t, Result<void>, int64_t) override {}
  void on_output(uint64_t id, int, std::string_view) override {
    seen.push_back("output " + std::to_string(id));
  }
  void on_exit(uint64_t id, int, int, std::string) override {
    seen.push_back("exit " + std::to_string(id));
    if (id == last) io->stop();
  }
};

// An exit may cost the core a large answer (a foreground spawn's result with all its output).
// Exits that reach the core in one batch are handled one at a time: work posted to the core
// thread meanwhile (a ping, another session's call) runs after the first, not after them all.
// The events of the batch keep their order, and a drain posted in between resumes them first.
TEST(ExecutorEvents, WorkPostedMeanwhileRunsBetweenTheExitsOfOneBatch) {
  boost::asio::io_context io;
  auto work = boost::asio::make_work_guard(io);
  ExitOrder order;
  order.io = &io;
  order.last = 4;
  Executor executor(io);
  ASSERT_TRUE(executor.create(&g_factory, nullptr, "{}", order).ok());
  for (uint64_t id = 1; id <= 4; ++id) {
    SpawnRequest request;
    request.id = id;
    request.argv = {"true"};
    ASSERT_TRUE(executor.spawn(request).ok());
  }
  const pmcp_executor_sink* sink = g_sink;
  // The core thread is not running yet, so these wait as one batch behind one drain.
  for (uint64_t id = 1; id <= 3; ++id) {
    sink->on_spawned(sink->ctx, id, PMCP_OK, 100 + static_cast<int64_t>(id), pmcp_str{nullptr, 0});
    sink->on_output(sink->ctx, id, PMCP_STREAM_STDOUT, reinterpret_cast<const uint8_t*>("x"), 1);
    sink->on_exit(sink->ctx, id, 0, 0, pmcp_str{nullptr, 0});
  }
  boost::asio::post(io, [&] {
    order.seen.push_back("probe");
    // Reported while the batch is being handled: it waits until the batch is done.
    sink->on_spawned(sink->ctx, 4, PMCP_OK, 104, pmcp_str{nullptr, 0});
    sink->on_exit(sink->ctx, 4, 0, 0, pmcp_str{nullptr, 0});
  });
  io.run();
  executor.destroy();
  const std::vector<std::string> expected = {"output 1", "exit 1",   "probe",  "output 2",
                                             "exit 2",   "output 3", "exit 3", "exit 4"};
  EXPECT_EQ(order.seen, expected);
}

// Takes output without allocating: a count and a checksum of the bytes in order.
struct Counter : ExecutorEvents {
  boost::asio::io_context* io = nullptr;
  uint64_t bytes = 0;
  uint64_t checksum = 0;
  uint64_t outputs = 0;
  void on_spawned(uint64_t, Result<void>, int64_t) override {}
  void on_output(uint64_t, int, std::string_view data) override {
    for (char c : data) checksum = checksum * 31 + static_cast<unsigned char>(c);
    bytes += data.size();
    ++outputs;
  }
  void on_exit(uint64_t, int, int, std::string) override { io->stop(); }
};

// The core's hot path must not allocate per chunk once output flows: the buffers of posted
// output are reused, and the handler that takes them to the core thread has memory of its
// own. Counted over all threads while the chunks go through, after the first 100; the wrapper
// as it was allocated about once per chunk.
void expect_steady_output_allocates_nothing(bool tty, std::size_t chunk, std::size_t count) {
  boost::asio::io_context io;
  auto work = boost::asio::make_work_guard(io);
  Counter counter;
  counter.io = &io;
  Executor executor(io);
  const pmcp_executor_sink* sink = start_flood(executor, counter, 9, tty);
  const std::string data(chunk, 'x');
  uint64_t expected_checksum = 0;
  for (std::size_t k = 0; k < count; ++k) {
    for (char c : data) expected_checksum = expected_checksum * 31 + static_cast<unsigned char>(c);
  }
  uint64_t before = 0, after = 0;
  std::thread plugin([&] {
    sink->on_spawned(sink->ctx, 9, PMCP_OK, 1, pmcp_str{nullptr, 0});
    for (std::size_t k = 0; k < count; ++k) {
      if (k == 100) before = g_allocations.load();
      sink->on_output(sink->ctx, 9, PMCP_STREAM_STDOUT,
                      reinterpret_cast<const uint8_t*>(data.data()), data.size());
    }
    after = g_allocations.load();
    sink->on_exit(sink->ctx, 9, 0, 0, pmcp_str{nullptr, 0});
  });
  io.run();
  plugin.join();
  executor.destroy();
  EXPECT_EQ(counter.bytes, count * chunk);
  EXPECT_EQ(counter.checksum, expected_checksum);
  // None per chunk: a handful may come once, when more output than ever before waits at once
  // (a spare buffer more, a longer queue), which on a loaded machine can happen late.
  EXPECT_LE(after - before, 6u) << (after - before) << " allocations for " << count - 100
                                << " chunks of " << chunk << " bytes (" << counter.outputs
                                << " output events)";
}

TEST(ExecutorEvents, SteadyPipeOutputAllocatesNothing) {
  expect_steady_output_allocates_nothing(false, 64 << 10, 700);
}

TEST(ExecutorEvents, SteadyTerminalOutputAllocatesNothing) {
  expect_steady_output_allocates_nothing(true, 4 << 10, 3100);
}

}  // namespace
}  // namespace pmcp::process
