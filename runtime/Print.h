// Printing of tensors and scalars, exactly as SPEC §8 says.
#pragma once

#include <cstdio>
#include <string>

#include "Tensor.h"

namespace tdl::rt {

// Tensors with more elements than this print summarised: the first and last
// kPrintEdgeItems entries of every axis longer than 2 * kPrintEdgeItems, with `...`.
inline constexpr int64_t kPrintSummarizeThreshold = 1000;
inline constexpr int64_t kPrintEdgeItems = 3;

// set_printoptions (SPEC §12; docs/decisions.md): `precision` digits at most after the
// point (-1: the shortest round-tripping text), more than `threshold` elements print
// summarised, rows longer than `linewidth` characters wrap (0: never, as SPEC §8 prints).
struct PrintOptions {
  int precision = -1;
  int64_t threshold = kPrintSummarizeThreshold;
  int64_t linewidth = 0;
};
PrintOptions& print_options();

// Program output that shares a terminal with a status line (progress's bar, redrawn in
// place on stderr): write_output clears the line first and draws it again after the text,
// as tqdm.write does, so a print inside a progress loop gets lines of its own.
// set_status_line("") when no bar is on screen (then write_output is a plain write).
void set_status_line(const std::string& line);
void write_output(const std::string& text, FILE* out);

// A float as its shortest round-tripping decimal for its dtype (F32: as a float), with
// ".0" added when it would look like an integer: 0.1, 1e-07, 2.5e+16, 6.0, nan, inf,
// -inf, -0.0.
std::string format_float(double v, DType dtype);
// One element of t: floats as above, integers plainly, bools true/false.
std::string format_element(const Tensor& t, int64_t flat);
// The whole tensor: a scalar as its element, rank 1 as [a, b], rank >= 2 nested, rows
// joined by ",\n" plus one space per open bracket.
std::string format_tensor(const Tensor& t);
// An f-string replacement field `{x:spec}` (Python's format-spec mini-language through
// fmt): a scalar by its dtype (a float type such as `.3f` or `e`, `%`, `d` for integers;
// no presentation type: the text above, aligned); any other tensor: the spec applied to
// each element (SPEC §12: format([3.14159, 2.0], ".2f") is [3.14, 2.00]), laid out as print.
// Throws Error("invalid format spec ...") naming the value's type.
std::string format_with_spec(const Tensor& t, const std::string& spec);
// A print format (graph fns' print and assert messages, strings of run-time values) filled:
// `{}` holes by format_tensor, `{:spec}` holes by format_with_spec, `{{`/`}}` as braces.
std::string fill_format(const std::string& format, const std::vector<Tensor>& in);

}  // namespace tdl::rt
