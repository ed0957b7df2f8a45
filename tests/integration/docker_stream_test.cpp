// Tests of the docker executor's pure protocol pieces (plugins/docker/stream.cpp and
// config.cpp): the pid marker, the 8-byte-header demultiplexer, exit status mapping and the
// [docker] table. No engine needed; the sources are compiled into this test.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "../../plugins/docker/config.cpp"
#include "../../plugins/docker/stream.cpp"

namespace {

using pmcp::docker::Demuxer;
using pmcp::docker::MarkerReader;

std::string frame(int stream, const std::string& payload) {
  std::string f(8, '\0');
  f[0] = static_cast<char>(stream);
  const auto n = static_cast<uint32_t>(payload.size());
  f[4] = static_cast<char>(n >> 24);
  f[5] = static_cast<char>((n >> 16) & 0xff);
  f[6] = static_cast<char>((n >> 8) & 0xff);
  f[7] = static_cast<char>(n & 0xff);
  return f + payload;
}

TEST(DockerStream, DemuxerSplitsFramesWhateverTheChunking) {
  const std::string wire =
      frame(1, "hello ") + frame(2, "oops") + frame(1, std::string(70000, 'x'));
  for (std::size_t chunk : {1u, 3u, 7u, 8u, 9u, 4096u, 100000u}) {
    Demuxer d;
    std::string out, err;
    for (std::size_t i = 0; i < wire.size(); i += chunk) {
      d.feed(wire.data() + i, std::min(chunk, wire.size() - i),
             [&](int s, const char* p, std::size_t n) { (s == 2 ? err : out).append(p, n); });
    }
    EXPECT_EQ(out, "hello " + std::string(70000, 'x')) << "chunk " << chunk;
    EXPECT_EQ(err, "oops") << "chunk " << chunk;
    EXPECT_FALSE(d.mid_frame());
  }
}

TEST(DockerStream, MarkerGivesThePidAndLeavesTheRest) {
  MarkerReader m;
  const std::string a = "12";
  EXPECT_EQ(m.feed(a.data(), a.size()), 2u);
  EXPECT_EQ(m.state(), MarkerReader::State::reading);
  const std::string b = "34\r\nuser output";
  EXPECT_EQ(m.feed(b.data(), b.size()), 4u);
  EXPECT_EQ(m.state(), MarkerReader::State::started);
  EXPECT_EQ(m.pid(), 1234);

  MarkerReader cwd;
  const std::string c = "!cwd\n";
  cwd.feed(c.data(), c.size());
  EXPECT_EQ(cwd.state(), MarkerReader::State::failed);
  EXPECT_EQ(cwd.failure(), "cwd");

  MarkerReader engine;
  const std::string e = "OCI runtime exec failed: no such file\n";
  engine.feed(e.data(), e.size());
  EXPECT_EQ(engine.state(), MarkerReader::State::failed);
  EXPECT_EQ(engine.failure(), "OCI runtime exec failed: no such file");
}

TEST(DockerStream, WrapperCarriesCwdSizeAndArgv) {
  const auto cmd = pmcp::docker::wrap_command({"/bin/sh", "-c", "echo hi"}, "/work", true, 120, 30);
  ASSERT_EQ(cmd.size(), 10u);
  EXPECT_EQ(cmd[0], "/bin/sh");
  EXPECT_EQ(cmd[4], "/work");
  EXPECT_EQ(cmd[5], "30");
  EXPECT_EQ(cmd[6], "120");
  EXPECT_EQ(cmd[9], "echo hi");
  const auto pipes = pmcp::docker::wrap_command({"ls"}, "/", false, 120, 30);
  EXPECT_EQ(pipes[5], "0");
}

TEST(DockerStream, ExitStatusOfASignalBecomesTheSignal) {
  int32_t code = 0, sig = 0;
  pmcp::docker::map_exit_status(0, code, sig);
  EXPECT_EQ(code, 0);
  pmcp::docker::map_exit_status(3, code, sig);
  EXPECT_EQ(code, 3);
  EXPECT_EQ(sig, 0);
  pmcp::docker::map_exit_status(137, code, sig);
  EXPECT_EQ(code, -1);
  EXPECT_EQ(sig, 9);
  pmcp::docker::map_exit_status(255, code, sig);
  EXPECT_EQ(code, 255);
  EXPECT_EQ(sig, 0);
}

TEST(DockerConfig, DefaultsKeysAndErrors) {
  const auto d = pmcp::docker::parse_config("{}");
  EXPECT_EQ(d.image, "ubuntu:22.04");
  EXPECT_EQ(d.container, "process-mcp-main");
  EXPECT_EQ(d.volume, "process-mcp-volume");
  EXPECT_EQ(d.memory, 512LL << 20);
  EXPECT_EQ(d.pids_limit, 4096);
  EXPECT_EQ(d.workdir, "/home/agent");
  const auto c = pmcp::docker::parse_config(
      R"({"memory":"2g","cpus":1.5,"keep_alive":"tail -f /dev/null","network":"none"})");
  EXPECT_EQ(c.memory, 2LL << 30);
  EXPECT_DOUBLE_EQ(c.cpus, 1.5);
  EXPECT_EQ(c.keep_alive, (std::vector<std::string>{"/bin/sh", "-c", "tail -f /dev/null"}));
  EXPECT_EQ(pmcp::docker::parse_memory("512m"), 512LL << 20);
  EXPECT_EQ(pmcp::docker::parse_memory("12x"), -1);
  try {
    pmcp::docker::parse_config(R"({"pids":5})");
    ADD_FAILURE() << "an unknown key was accepted";
  } catch (const pmcp::sdk::Error& e) {
    EXPECT_NE(e.message.find("[docker] pids"), std::string::npos) << e.message;
  }
  EXPECT_THROW(pmcp::docker::parse_config(R"({"use_existing":"yes"})"), pmcp::sdk::Error);
  EXPECT_THROW(pmcp::docker::parse_config(R"({"cpus":-1})"), pmcp::sdk::Error);
}

}  // namespace
