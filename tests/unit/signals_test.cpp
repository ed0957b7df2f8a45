#include "process/signals.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <string>

namespace pmcp::process {
namespace {

int parsed(std::string_view text) {
  const pmcp::Result<int> result = parse_signal(text);
  if (!result.ok()) {
    ADD_FAILURE() << "'" << text << "': " << result.error().message;
    return -1;
  }
  return *result;
}

TEST(Signals, AcceptsTheUsualSpellings) {
  for (const char* text : {"SIGTERM", "TERM", "sigterm", "term", "SigTerm", "15", " TERM "}) {
    EXPECT_EQ(parsed(text), SIGTERM) << text;
  }
  EXPECT_EQ(parsed("KILL"), SIGKILL);
  EXPECT_EQ(parsed("9"), SIGKILL);
  EXPECT_EQ(parsed("int"), SIGINT);
  EXPECT_EQ(parsed("SIGWINCH"), SIGWINCH);
}

TEST(Signals, KnowsEveryStandardLinuxSignal) {
  const std::pair<const char*, int> expected[] = {
      {"HUP", SIGHUP},   {"INT", SIGINT},       {"QUIT", SIGQUIT}, {"ILL", SIGILL},
      {"TRAP", SIGTRAP}, {"ABRT", SIGABRT},     {"BUS", SIGBUS},   {"FPE", SIGFPE},
      {"KILL", SIGKILL}, {"USR1", SIGUSR1},     {"SEGV", SIGSEGV}, {"USR2", SIGUSR2},
      {"PIPE", SIGPIPE}, {"ALRM", SIGALRM},     {"TERM", SIGTERM}, {"STKFLT", SIGSTKFLT},
      {"CHLD", SIGCHLD}, {"CONT", SIGCONT},     {"STOP", SIGSTOP}, {"TSTP", SIGTSTP},
      {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU},     {"URG", SIGURG},   {"XCPU", SIGXCPU},
      {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"WINCH", SIGWINCH},
      {"IO", SIGIO},     {"PWR", SIGPWR},       {"SYS", SIGSYS},
  };
  for (const auto& [name, number] : expected) {
    EXPECT_EQ(parsed(name), number) << name;
    EXPECT_EQ(parsed(std::string("SIG") + name), number) << name;
    EXPECT_EQ(signal_name(number), std::string("SIG") + name);
  }
}

TEST(Signals, AcceptsAliasesButNamesCanonically) {
  EXPECT_EQ(parsed("IOT"), SIGABRT);
  EXPECT_EQ(parsed("SIGCLD"), SIGCHLD);
  EXPECT_EQ(parsed("poll"), SIGIO);
  EXPECT_EQ(signal_name(SIGABRT), "SIGABRT");
  EXPECT_EQ(signal_name(SIGCHLD), "SIGCHLD");
  EXPECT_EQ(signal_name(SIGIO), "SIGIO");
}

TEST(Signals, NumbersFromOneTo64) {
  EXPECT_EQ(parsed("1"), 1);
  EXPECT_EQ(parsed("64"), 64);
  EXPECT_EQ(parsed("SIG42"), 42);
  EXPECT_EQ(parsed("sig42"), 42);
  EXPECT_EQ(parsed("015"), 15);
}

TEST(Signals, RealTimeSignals) {
  EXPECT_EQ(parsed("SIGRTMIN"), SIGRTMIN);
  EXPECT_EQ(parsed("rtmin+2"), SIGRTMIN + 2);
  EXPECT_EQ(parsed("RTMAX"), SIGRTMAX);
  EXPECT_EQ(parsed("SIGRTMAX-1"), SIGRTMAX - 1);
  EXPECT_EQ(signal_name(SIGRTMIN), "SIG" + std::to_string(SIGRTMIN));
  EXPECT_EQ(signal_name(42), "SIG42");
  EXPECT_FALSE(parse_signal("RTMIN+100").ok());
  EXPECT_FALSE(parse_signal("RTMIN-1").ok());
  EXPECT_FALSE(parse_signal("RTMAX+1").ok());
}

TEST(Signals, EveryNumberRoundTripsThroughItsName) {
  for (int signo = 1; signo <= 64; ++signo) {
    EXPECT_EQ(parsed(signal_name(signo)), signo) << signal_name(signo);
  }
}

TEST(Signals, RejectsOtherTextAndSaysWhatIsAccepted) {
  for (const char* text : {"", "   ", "0", "65", "-1", "+15", "1.5", "15x", "SIG", "SIGFOO",
                           "TERMINATE", "SIG TERM", "99999999999999999999"}) {
    const pmcp::Result<int> result = parse_signal(text);
    ASSERT_FALSE(result.ok()) << text;
    EXPECT_EQ(result.error().code, pmcp::ErrorCode::invalid_argument);
    const std::string& message = result.error().message;
    std::string quoted = "'";
    quoted.append(text).append("'");
    EXPECT_NE(message.find(quoted), std::string::npos) << message;
    EXPECT_NE(message.find("SIGTERM"), std::string::npos) << message;
    EXPECT_NE(message.find("1..64"), std::string::npos) << message;
  }
  EXPECT_NE(parse_signal("0").error().message.find("from 1 to 64"), std::string::npos);
}

}  // namespace
}  // namespace pmcp::process
