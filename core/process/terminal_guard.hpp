// What a program writes to its terminal, made safe for libvterm before it parses it. libvterm
// (0.1.x as Debian ships it) trusts its input in ways a hostile or broken program can exploit:
//  - REP (CSI n b) with no graphic character before it loops forever;
//  - a CSI with more than 16 parameters writes past its argument array, and long digit runs
//    overflow the parameters and the cursor arithmetic;
//  - OSC, DCS, SOS, PM and APC strings reach code paths we never need (titles, queries);
//  - C1 control characters encoded in UTF-8, and DEL, get a negative width as glyphs.
// The guard rewrites the byte stream so that none of these reaches libvterm and everything else
// passes unchanged: it tracks the escape-sequence grammar across chunk boundaries, clamps CSI
// parameters, expands REP itself (the preceding graphic character, repeated), and drops the
// string sequences and the non-printing code points.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace pmcp::process {

class TerminalGuard {
 public:
  static constexpr std::size_t kMaxCsiParams = 16;  // libvterm's CSI_ARGS_MAX
  static constexpr uint32_t kMaxCsiNumber = 9999;   // larger than any screen or count
  static constexpr std::size_t kMaxCsiBytes = 128;  // longer sequences are dropped
  static constexpr std::size_t kMaxIntermediates = 2;

  // Appends the safe form of `bytes` to `out`. cols bounds a REP expansion (a repeat never
  // needs more than a row). State carries over between calls.
  void filter(std::string_view bytes, uint16_t cols, std::string& out);

  // Whether the scrolling margins are known to be the whole screen during all of the last
  // filter() call: no top/bottom margins (DECSTBM) and no left/right margin mode (DECLRMM) in
  // force before it, and no sequence in it that sets or resets them. Conservative: "CSI 1;24 r"
  // counts as margins. The terminal's fast scrolling relies on it.
  bool margins_full() const { return !margins_set_ && !lr_margin_mode_ && !margins_touched_; }
  // Whether a line attribute (DECDHL, DECSWL, DECDWL: "ESC # 3" to "ESC # 6") may be in force:
  // from the first one until a full reset (RIS) resets every line. A double-width row is half
  // as wide, and libvterm moves the attributes with the rows they scroll, differently for one
  // "CSI n S" than for n line feeds, so the terminal's fast scrolling stays off meanwhile.
  bool line_attributes_used() const { return line_attributes_; }
  // Whether a character set may be other than ASCII: from the first designation ("ESC (" and
  // the like), locking or single shift (SO, SI, "ESC n", "ESC N", ...) until a full reset
  // (RIS). Until then the terminal does not turn plain lines into scrollback text itself.
  bool charsets_used() const { return charsets_; }
  // The terminal reset the margins itself (after a resize).
  void margins_were_reset() { margins_set_ = false; }

 private:
  enum class State : uint8_t {
    ground,
    escape,
    escape_intermediate,
    csi,
    csi_ignore,
    string,
    string_escape
  };

  void ground_byte(unsigned char c, std::string& out);
  // ESC, CAN, SUB, C0, DEL and bytes >= 0x80 inside an escape or CSI; false for other bytes.
  bool control_inside_sequence(unsigned char c, std::string& out);
  void finish_csi(unsigned char final, uint16_t cols, std::string& out);

  State state_ = State::ground;
  std::string pending_;        // escape or CSI bytes not yet passed on
  std::string utf8_;           // an incomplete UTF-8 sequence in the ground state
  std::size_t utf8_need_ = 0;  // continuation bytes still expected for utf8_
  std::string last_graphic_;   // the UTF-8 bytes of the last printed character (for REP)
  bool margins_set_ = false;   // a DECSTBM with parameters is in force
  bool lr_margin_mode_ = false;   // DECLRMM (CSI ? 69 h) is on
  bool margins_touched_ = false;  // the last filter() passed a margin-related sequence
  bool line_attributes_ = false;  // a DECDHL/DECSWL/DECDWL passed since the last RIS
  bool charsets_ = false;         // a designation or shift passed since the last RIS
};

}  // namespace pmcp::process
