#include "process/signals.hpp"

#include <array>
#include <csignal>
#include <cstdint>
#include <optional>

namespace pmcp::process {

namespace {

// Linux numbers differ between architectures, so the table uses the C library's macros.
// Canonical names come first; aliases follow and are only used for parsing.
struct SignalEntry {
  std::string_view name;  // without the SIG prefix
  int number;
};

constexpr auto signal_table = std::to_array<SignalEntry>({
    {"HUP", SIGHUP},
    {"INT", SIGINT},
    {"QUIT", SIGQUIT},
    {"ILL", SIGILL},
    {"TRAP", SIGTRAP},
    {"ABRT", SIGABRT},
    {"BUS", SIGBUS},
    {"FPE", SIGFPE},
    {"KILL", SIGKILL},
    {"USR1", SIGUSR1},
    {"SEGV", SIGSEGV},
    {"USR2", SIGUSR2},
    {"PIPE", SIGPIPE},
    {"ALRM", SIGALRM},
    {"TERM", SIGTERM},
#ifdef SIGSTKFLT
    {"STKFLT", SIGSTKFLT},
#endif
    {"CHLD", SIGCHLD},
    {"CONT", SIGCONT},
    {"STOP", SIGSTOP},
    {"TSTP", SIGTSTP},
    {"TTIN", SIGTTIN},
    {"TTOU", SIGTTOU},
    {"URG", SIGURG},
    {"XCPU", SIGXCPU},
    {"XFSZ", SIGXFSZ},
    {"VTALRM", SIGVTALRM},
    {"PROF", SIGPROF},
    {"WINCH", SIGWINCH},
    {"IO", SIGIO},
#ifdef SIGPWR
    {"PWR", SIGPWR},
#endif
    {"SYS", SIGSYS},
    // Aliases.
    {"IOT", SIGIOT},
    {"CLD", SIGCHLD},
    {"POLL", SIGPOLL},
});

constexpr int max_signal = 64;

constexpr std::string_view accepted_forms =
    "accepted: a name with or without SIG, in any case (SIGTERM, TERM, term, SIGKILL, INT, HUP, "
    "QUIT, USR1, USR2, STOP, CONT, WINCH, ...), a number 1..64 (15, SIG42), or a real-time "
    "signal (RTMIN, SIGRTMIN+3, RTMAX-1)";

std::string upper(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return out;
}

std::optional<int> parse_decimal(std::string_view digits) {
  if (digits.empty() || digits.size() > 9) return std::nullopt;
  int value = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return value;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// "RTMIN", "RTMIN+N", "RTMAX", "RTMAX-N" (name already upper-cased, SIG stripped).
std::optional<int> parse_realtime(std::string_view name) {
  const bool from_min = name.starts_with("RTMIN");
  const bool from_max = name.starts_with("RTMAX");
  if (!from_min && !from_max) return std::nullopt;
  const int base = from_min ? SIGRTMIN : SIGRTMAX;
  std::string_view rest = name.substr(5);
  if (rest.empty()) return base;
  if (rest.front() != (from_min ? '+' : '-')) return std::nullopt;
  const std::optional<int> delta = parse_decimal(rest.substr(1));
  if (!delta) return std::nullopt;
  const int signo = from_min ? base + *delta : base - *delta;
  if (signo < SIGRTMIN || signo > SIGRTMAX) return std::nullopt;
  return signo;
}

pmcp::Error invalid(std::string_view text, std::string_view why) {
  return pmcp::make_error(pmcp::ErrorCode::invalid_argument,
                          "invalid signal '" + std::string(text) + "': " + std::string(why) + "; " +
                              std::string(accepted_forms));
}

}  // namespace

pmcp::Result<int> parse_signal(std::string_view text) {
  const std::string_view trimmed = trim(text);
  if (trimmed.empty()) return invalid(text, "empty");
  std::string name = upper(trimmed);
  if (name.starts_with("SIG")) name.erase(0, 3);

  if (const std::optional<int> number = parse_decimal(name)) {
    if (*number < 1 || *number > max_signal) return invalid(text, "numbers go from 1 to 64");
    return *number;
  }
  for (const SignalEntry& entry : signal_table) {
    if (entry.name == name) return entry.number;
  }
  if (const std::optional<int> realtime = parse_realtime(name)) return *realtime;
  return invalid(text, "unknown signal name");
}

std::string signal_name(int signo) {
  for (const SignalEntry& entry : signal_table) {
    if (entry.number == signo) return "SIG" + std::string(entry.name);
  }
  return "SIG" + std::to_string(signo);
}

}  // namespace pmcp::process
