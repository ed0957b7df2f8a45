// Signal names and numbers as agents write them ("SIGTERM", "term", "15", "SIGRTMIN+2"), parsed
// to the number the kernel expects and named back for results and exit reports.
#pragma once

#include <string>
#include <string_view>

#include "util/result.hpp"

namespace pmcp::process {

// Accepts, case-insensitively and ignoring surrounding spaces: a name with or without the SIG
// prefix ("SIGTERM", "TERM", "sigterm", "term", aliases such as "IOT", "CLD", "POLL"), a number
// 1..64 ("15", "SIG42"), and real-time signals relative to the C library's bounds ("RTMIN",
// "SIGRTMIN+3", "RTMAX-1"). Anything else is an invalid_argument error listing what is accepted.
pmcp::Result<int> parse_signal(std::string_view text);

// The canonical name of a signal number: "SIGTERM" for a named signal, "SIG42" for a real-time
// or otherwise unnamed one (parse_signal accepts both back).
std::string signal_name(int signo);

}  // namespace pmcp::process
