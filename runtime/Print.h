// Printing of tensors and scalars, exactly as SPEC §8 says.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

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
// While one lives, write_output drops program output meant for stdout (tdl serve's trial
// calls of a model at startup: their prints would come before the line saying where it
// listens).
struct QuietStdout {
  QuietStdout();
  ~QuietStdout();
  QuietStdout(const QuietStdout&) = delete;
  QuietStdout& operator=(const QuietStdout&) = delete;
};

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

// The layout of records and dicts (docs/decisions.md "Nested printing"): their fields print
// on one line joined by ", " unless one of them spans lines; then each field starts a line
// of its own, aligned under the first, and everything inside a record keeps its rows at
// their column (a matrix's rows under its first row, in tuples and lists too):
//
//   {w: [[1.0, 2.0],
//        [3.0, 4.0]],
//    b: [0.5, 0.25]}
//
// Outside every record text is appended as it is, so top-level values, tuples and lists
// print exactly as SPEC §8 says. The eager VM (vm/Format.cpp) and compiled print
// (fill_format's directives below) both lay out through this one class.
class TextLayout {
 public:
  // Appends s. Inside a record, s's lines after its first are indented to the column
  // (within the current item) at which s starts.
  void text(std::string_view s);
  void open(std::string_view bracket);  // a record begins: its opening brace, then its first field
  void next();   // its next field begins (the separator is the layout's)
  void close();  // its fields end (call before its closing brace)
  std::string take();

 private:
  struct Group {
    std::string bracket;
    std::vector<std::string> items;
    std::string cur;
  };
  std::string top_;
  std::vector<Group> groups_;
};

// A print format (graph fns' print and assert messages, strings of run-time values) filled:
// `{}` holes by format_tensor, `{:spec}` holes by format_with_spec, `{{`/`}}` as braces,
// and the layout directives `{<}` (TextLayout::open of the bracket just before it), `{,}`
// (next) and `{>}` (close).
std::string fill_format(const std::string& format, const std::vector<Tensor>& in);

}  // namespace tdl::rt
