// Builtins that talk to people rather than compute: `progress` (a progress
// bar around a loop, on stderr) and `plot` (an SVG line chart).
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>

#include "frontend/Doc.h"
#include "runtime/Dist.h"
#include "runtime/Error.h"
#include "runtime/Io.h"
#include "runtime/Print.h"
#include "vm/Builtins.h"
#include "vm/Format.h"
#include "vm/Interpreter.h"
#include "vm/ValueOps.h"

namespace tdl::vm {

namespace {
const DisplayHooks* g_hooks = nullptr;
}  // namespace

void setDisplayHooks(const DisplayHooks* hooks) { g_hooks = hooks; }

namespace {

// ------------------------------------------------------------- progress
// Redraws of the bar on a terminal are at least this far apart.
constexpr double kRedrawSeconds = 0.05;
constexpr int kBarWidth = 20;

std::string clock(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  auto t = static_cast<long>(s + 0.5);
  if (t >= 3600) return fmt::format("{}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60);
  return fmt::format("{:02}:{:02}", t / 60, t % 60);
}

// The iterable returned by progress(xs): yields the items of xs and reports
// how far the loop got — a bar redrawn in place on a terminal (tqdm style),
// otherwise one line per 10% (Keras verbose=2 style).
struct ProgressObj : NativeObj {
  Value inner;
  std::string desc;
  int64_t total;
  bool tty;
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  double lastDraw = -1;
  int64_t nextTenth = 1;  // the next 10% mark to report (non-terminal)
  int64_t done = 0;
  bool finished = false;

  ProgressObj(Value xs, std::string d)
      : inner(std::move(xs)), desc(std::move(d)), total(vm::iterLength(inner)), tty(isatty(2) != 0) {}
  ~ProgressObj() override { finish(); }

  std::string typeName() const override { return "progress"; }
  int64_t iterLength() const override { return total; }
  Value iterItem(int64_t i) override {
    done = i;  // items 0..i-1 are finished when item i is asked for
    report(false);
    return vm::iterItem(inner, i);
  }

  double elapsed() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }

  std::string line(double t) const { return line(t, tty); }
  std::string line(double t, bool withBar) const {
    double rate = t > 0 ? static_cast<double>(done) / t : 0;
    double left = rate > 0 ? static_cast<double>(total - done) / rate : NAN;
    int pct = total > 0 ? static_cast<int>(100 * done / total) : 100;
    std::string head = desc.empty() ? "" : desc + ": ";
    std::string tail = fmt::format(" {}/{} [{}<{}, {:.1f}it/s]", done, total, clock(t), clock(left), rate);
    if (!withBar) return fmt::format("{}{:3}%{}", head, pct, tail);
    int fill = total > 0 ? static_cast<int>(kBarWidth * done / total) : kBarWidth;
    std::string bar;
    for (int k = 0; k < kBarWidth; ++k) bar += k < fill ? "\u2588" : " ";
    return fmt::format("{}{:3}%|{}|{}", head, pct, bar, tail);
  }

  void report(bool last) {
    if (!rt::dist::prints_here(false)) return;  // rank 0's bar only (SPEC §12)
    double t = elapsed();
    if (g_hooks && g_hooks->progress) {  // a notebook: one output, updated in place
      bool first = lastDraw < 0;
      if (!last && !first && t - lastDraw < kRedrawSeconds * 4) return;
      lastDraw = t;
      g_hooks->progress(this, line(t, true), last);
      return;
    }
    if (tty) {
      if (!last && lastDraw >= 0 && t - lastDraw < kRedrawSeconds) return;
      lastDraw = t;
      std::string text = line(t);
      std::string s = fmt::format("\r{}\033[K{}", text, last ? "\n" : "");
      std::fwrite(s.data(), 1, s.size(), stderr);
      std::fflush(stderr);
      rt::set_status_line(last ? "" : text);  // print() clears and redraws it (rt::write_output)
      return;
    }
    // One line at each 10% passed (and at the end).
    bool due = last || (total > 0 && done * 10 >= nextTenth * total);
    if (!due) return;
    while (total > 0 && done * 10 >= nextTenth * total) ++nextTenth;
    std::string s = fmt::format("{}\n", line(t));
    std::fwrite(s.data(), 1, s.size(), stderr);
  }

  // Called when the loop lets go of the iterable (finished, broken or failed).
  void finish() {
    if (finished) return;
    finished = true;
    if (done + 1 == total) done = total;  // the last item's body has run
    report(true);
  }
};

Value progressFn(Interpreter&, CallArgs& call) {
  Args a("progress", call, {"iterable", "desc"}, 1);
  std::string desc = a.has(1) ? a.string(1) : "";
  (void)vm::iterLength(a[0]);  // "cannot iterate over ..." for anything else
  return Value::object(Tag::Native, new ProgressObj(a[0], desc));
}

// ----------------------------------------------------------------- plot
constexpr double kWidth = 640, kHeight = 400;
constexpr double kLeft = 70, kRight = 20, kTop = 40, kBottom = 55;
const char* const kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"};

std::string esc(const std::string& s) { return xmlEscape(s); }

// About five round tick values covering [lo, hi].
std::vector<double> ticks(double lo, double hi) {
  double span = hi - lo;
  double step = std::pow(10.0, std::floor(std::log10(span / 5)));
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (span / (step * m) <= 6) {
      step *= m;
      break;
    }
  }
  std::vector<double> out;
  for (double v = std::ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push_back(std::abs(v) < step * 1e-9 ? 0 : v);
  return out;
}

std::vector<double> seriesValues(const Value& v, size_t index) {
  rt::Tensor t;
  try {
    t = toTensor(v);
  } catch (const rt::Error&) {
    throw rt::Error(fmt::format("plot: series {} must be a 1-D tensor of numbers, got {}", index + 1, typeText(v)));
  }
  if (t.rank() != 1)
    throw rt::Error(fmt::format("plot: series {} must be a 1-D tensor, got {}", index + 1, t.type_str()));
  std::vector<double> out(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) out[static_cast<size_t>(i)] = t.item_double(i);
  return out;
}

Value plotFn(Interpreter&, CallArgs& call) {
  int npos = call.numPos();
  if (npos < 2) throw rt::Error("plot: expected plot(path, series..., title=, xlabel=, ylabel=, labels=)");
  const Value& pathV = call.args[0];
  if (!pathV.isStr()) throw rt::Error(fmt::format("plot: 'path' must be a string, got {}", typeText(pathV)));
  std::string title, xlabel, ylabel;
  std::vector<std::string> labels;
  for (int k = 0; k < call.numKw(); ++k) {
    const std::string& name = (*call.kwNames)[static_cast<size_t>(k)];
    const Value& v = call.args[npos + k];
    if (name == "labels") {
      if (!v.isSeq()) throw rt::Error("plot: 'labels' must be a list of strings");
      for (const Value& s : v.as<SeqObj>()->items) labels.push_back(s.isStr() ? s.as<StrObj>()->s : str(s));
      continue;
    }
    if (!v.isStr()) throw rt::Error(fmt::format("plot: '{}' must be a string, got {}", name, typeText(v)));
    if (name == "title") title = v.as<StrObj>()->s;
    else if (name == "xlabel") xlabel = v.as<StrObj>()->s;
    else if (name == "ylabel") ylabel = v.as<StrObj>()->s;
    else throw rt::Error(fmt::format("plot: unknown keyword argument '{}'", name));
  }
  std::vector<std::vector<double>> series;
  for (int i = 1; i < npos; ++i) series.push_back(seriesValues(call.args[i], static_cast<size_t>(i - 1)));
  double ymin = INFINITY, ymax = -INFINITY;
  size_t n = 1;
  for (auto& s : series) {
    n = std::max(n, s.size());
    for (double y : s)
      if (std::isfinite(y)) ymin = std::min(ymin, y), ymax = std::max(ymax, y);
  }
  if (!std::isfinite(ymin)) ymin = 0, ymax = 1;
  if (ymax == ymin) ymin -= 0.5, ymax += 0.5;
  double pad = (ymax - ymin) * 0.05;
  ymin -= pad, ymax += pad;
  double xmax = std::max<double>(1, static_cast<double>(n - 1));
  double pw = kWidth - kLeft - kRight, ph = kHeight - kTop - kBottom;
  auto X = [&](double x) { return kLeft + pw * x / xmax; };
  auto Y = [&](double y) { return kTop + ph * (1 - (y - ymin) / (ymax - ymin)); };

  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
      kWidth, kHeight);
  for (double t : ticks(ymin, ymax)) {
    svg += fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#e0e0e0\"/>\n", kLeft, Y(t),
                       kWidth - kRight, Y(t));
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n", kLeft - 6, Y(t) + 4,
                       esc(fmt::format("{:.4g}", t)));
  }
  for (double t : ticks(0, xmax)) {
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n", X(t), kTop + ph + 18,
                       esc(fmt::format("{:.4g}", t)));
  }
  svg += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#333\"/>\n", kLeft,
                     kTop, pw, ph);
  for (size_t s = 0; s < series.size(); ++s) {
    std::string pts;
    for (size_t i = 0; i < series[s].size(); ++i) {
      double y = series[s][i];
      if (!std::isfinite(y)) continue;
      pts += fmt::format("{:.1f},{:.1f} ", X(static_cast<double>(i)), Y(y));
    }
    const char* color = kColors[s % (sizeof(kColors) / sizeof(kColors[0]))];
    svg += fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\"/>\n", color, pts);
    std::string label = s < labels.size() ? labels[s] : (series.size() > 1 ? fmt::format("series {}", s + 1) : "");
    if (!label.empty()) {
      double ly = kTop + 14 + 16 * static_cast<double>(s);
      svg += fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"{}\" stroke-width=\"2\"/>\n",
                         kWidth - kRight - 120, ly - 4, kWidth - kRight - 100, ly - 4, color);
      svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\">{}</text>\n", kWidth - kRight - 94, ly, esc(label));
    }
  }
  if (!title.empty())
    svg += fmt::format("<text x=\"{:.1f}\" y=\"24\" text-anchor=\"middle\" font-size=\"16\">{}</text>\n", kWidth / 2,
                       esc(title));
  if (!xlabel.empty())
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n", kLeft + pw / 2,
                       kHeight - 12, esc(xlabel));
  if (!ylabel.empty())
    svg += fmt::format("<text x=\"16\" y=\"{:.1f}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {:.1f})\">{}</text>\n",
                       kTop + ph / 2, kTop + ph / 2, esc(ylabel));
  svg += "</svg>\n";
  const std::string& path = pathV.as<StrObj>()->s;
  if (!rt::dist::prints_here(false)) return Value();  // rank 0 writes the plot (SPEC §12)
  try {
    rt::write_file_atomic(path, svg);
  } catch (const rt::Error& e) {
    throw rt::Error(fmt::format("plot: {}", e.what()));
  }
  if (g_hooks && g_hooks->svg) g_hooks->svg(svg);  // a notebook shows it too
  return Value();
}

}  // namespace

// help(x) (issue 19): the reference entry of a builtin, of a fn (its signature with defaults
// and its doc comment), or of a name given as a string ("sum", "nn", "nn.softmax").
Value helpFn(Interpreter& vm, CallArgs& call) {
  Args a("help", call, {"x"}, 1);
  const Value& v = a[0];
  std::string out, err;
  if (v.tag() == Tag::Builtin) {
    DType dt;
    std::string name = builtinName(v.builtinId());
    if (builtinIsDType(v.builtinId(), dt)) out = fmt::format("{}: a dtype (cast(x, {}), zeros(shape, dtype={}))\n", name, name, name);
    else if (const DocEntry* d = builtinDoc(name)) out = docText(*d);
    else out = name + "(...)\n";
  } else if (v.tag() == Tag::Closure) {
    const FnProto* p = v.as<ClosureObj>()->proto;
    if (p->decl && !p->decl->isLambda) {
      std::string q;
      if (p->module > 0 && static_cast<size_t>(p->module) < vm.modules().size()) {
        const std::string& m = vm.modules()[static_cast<size_t>(p->module)]->name;
        if (m.find('/') == std::string::npos && m.find('.') == std::string::npos) q = m;  // a standard module
      }
      out = docText(fnDoc(vm.sources(), *p->decl, q));
    } else {
      std::string sig = "fn(";
      for (size_t i = 0; i < p->paramNames.size(); ++i) sig += (i ? ", " : "") + p->paramNames[i];
      out = sig + ")\n    (a lambda)\n";
    }
  } else if (v.isStr()) {
    if (!lookupDoc(v.as<StrObj>()->s, out, err)) throw rt::Error(err);
  } else {
    out = fmt::format("a value of type {}: help describes a builtin, a fn, or a name given as a string "
                      "(help(\"nn\"), help(\"nn.softmax\"))\n", typeText(v));
  }
  std::fwrite(out.data(), 1, out.size(), vm.out());
  return Value();
}

void registerUiBuiltins(BuiltinTable& t) {
  t.add("help", helpFn);
  t.add("progress", progressFn);
  t.add("plot", plotFn);
}

}  // namespace tdl::vm
