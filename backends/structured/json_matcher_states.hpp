// backends/structured/json_matcher_states.hpp — the frame states json_matcher's two sources share.
//
// Owns: the numbering of json_matcher frame states and flag bits, the
// number-length bounds, and the UTF-8 continuation ranges.
// Must not touch: anything outside json_matcher*.cpp (include it nowhere else).
// Thread-safety: constants only.
#pragma once

#include <cstdint>

namespace yard::backends::structured::matcher_states {

// root
inline constexpr std::uint8_t root_before = 0, root_done = 1;
// object: in_key while a key frame sits above; after_value also while the value's frame sits above
inline constexpr std::uint8_t obj_open = 0, obj_in_key = 1, obj_after_key = 2, obj_after_colon = 3, obj_after_value = 4,
                              obj_after_comma = 5;
// array: after_value also while an item's frame sits above
inline constexpr std::uint8_t arr_open = 0, arr_after_value = 1, arr_after_comma = 2;
// string and key lexer
inline constexpr std::uint8_t lex_plain = 0, lex_utf8 = 1, lex_escape = 2, lex_hex = 3;
// number
inline constexpr std::uint8_t num_minus = 0, num_zero = 1, num_int = 2, num_dot = 3, num_frac = 4, num_exp_mark = 5,
                              num_exp_sign = 6, num_exp = 7;

// flags
inline constexpr std::uint8_t ws_used = 1;         // this gap already holds its one whitespace byte
inline constexpr std::uint8_t hex_surrogate = 2;   // \uD was typed: the next hex digit must be 0-7
inline constexpr int range_shift = 2;              // bits 2-4: range of the next UTF-8 continuation byte
inline constexpr std::uint8_t range_mask = 7 << range_shift;

// UTF-8 continuation ranges by code: after E0, ED, F0, F4 the first one is narrower.
inline constexpr unsigned char range_lo[5] = {0x80, 0xA0, 0x80, 0x90, 0x80};
inline constexpr unsigned char range_hi[5] = {0xBF, 0xBF, 0x9F, 0xBF, 0x8F};

inline constexpr int max_int_digits = 16, max_frac_digits = 16, max_exp_digits = 2;

}  // namespace yard::backends::structured::matcher_states
