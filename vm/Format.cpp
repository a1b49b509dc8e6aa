#include "vm/Format.h"

#include <fmt/format.h>

#include "runtime/Error.h"
#include "runtime/Print.h"
#include "vm/Builtins.h"
#include "vm/Chunk.h"

namespace tdl::vm {

namespace {

std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default: out += c;
    }
  }
  return out + "\"";
}

std::string scalarText(const Value& v) {
  switch (v.dtype()) {
    case DType::Bool: return v.rawInt() ? "true" : "false";
    case DType::I8:
    case DType::I32:
    case DType::I64: return fmt::format("{}", v.rawInt());
    case DType::F32: return rt::format_float(static_cast<float>(v.rawFloat()), DType::F32);
    case DType::F64: return rt::format_float(v.rawFloat(), DType::F64);
  }
  return "?";
}

void appendText(rt::TextLayout& out, const Value& v, bool quote);

// A tuple or list: its items joined by ", " (SPEC §8's text at top level; inside a record
// or dict, rt::TextLayout keeps each item's rows under its first).
void appendSeq(rt::TextLayout& out, const std::vector<Value>& items, const char* open, const char* close,
               bool oneTuple) {
  out.text(open);
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out.text(", ");
    appendText(out, items[i], true);
  }
  if (oneTuple && items.size() == 1) out.text(",");
  out.text(close);
}

// A record or dict: `{key: value, ...}`, its fields laid out by rt::TextLayout (one line, or
// one field per line when one of them spans lines), as compiled print does.
template <class Key>
void appendFields(rt::TextLayout& out, const std::vector<Value>& vals, Key&& key) {
  out.open("{");
  for (size_t i = 0; i < vals.size(); ++i) {
    if (i) out.next();
    out.text(key(i) + ": ");
    appendText(out, vals[i], true);
  }
  out.close();
  out.text("}");
}

void appendText(rt::TextLayout& out, const Value& v, bool quote) {
  switch (v.tag()) {
    case Tag::Undef: out.text("<undefined>"); return;
    case Tag::None: out.text("none"); return;
    case Tag::Scalar: out.text(scalarText(v)); return;
    case Tag::DType: out.text(rt::dtype_name(v.dtype())); return;
    case Tag::Builtin: out.text(fmt::format("<builtin {}>", builtinName(v.builtinId()))); return;
    case Tag::Tensor: out.text(rt::format_tensor(v.as<TensorObj>()->t)); return;
    case Tag::Str: out.text(quote ? quoted(v.as<StrObj>()->s) : v.as<StrObj>()->s); return;
    case Tag::Tuple: appendSeq(out, v.as<SeqObj>()->items, "(", ")", true); return;
    case Tag::List: appendSeq(out, v.as<SeqObj>()->items, "[", "]", false); return;
    case Tag::Record: {
      auto* r = v.as<RecordObj>();
      appendFields(out, r->vals, [&](size_t i) { return (*r->names)[i]; });
      return;
    }
    case Tag::Dict: {
      auto* d = v.as<DictObj>();
      appendFields(out, d->vals, [&](size_t i) { return quoted(d->keys[i]); });
      return;
    }
    case Tag::Closure: out.text(fmt::format("<fn {}>", v.as<ClosureObj>()->proto->name)); return;
    case Tag::Range: {
      auto* r = v.as<RangeObj>();
      out.text(r->step == 1 ? fmt::format("range({}, {})", r->start, r->stop)
                            : fmt::format("range({}, {}, {})", r->start, r->stop, r->step));
      return;
    }
    case Tag::Native: out.text(v.as<NativeObj>()->repr()); return;
  }
}

}  // namespace

std::string str(const Value& v) {
  if (v.isStr()) return v.as<StrObj>()->s;
  rt::TextLayout out;
  appendText(out, v, false);
  return out.take();
}

std::string repr(const Value& v) {
  rt::TextLayout out;
  appendText(out, v, true);
  return out.take();
}

std::string formatWithSpec(const Value& v, const std::string& spec) {
  if (spec.empty()) return str(v);
  // Numbers and tensors: the runtime's (compiled print uses the same function).
  if (v.isScalar()) return rt::format_with_spec(toTensor(strong(v)), spec);
  if (v.isTensor()) return rt::format_with_spec(v.as<TensorObj>()->t, spec);
  try {
    if (!v.isStr()) return fmt::format(fmt::runtime("{:" + spec + "}"), str(v));
    // A string's width and precision count code points, as Python's (fmt counts display
    // columns, an emoji two): formatted as that many placeholder bytes, which are then its
    // code points.
    const StrObj& so = *v.as<StrObj>();
    int64_t n = so.length();
    if (n == static_cast<int64_t>(so.s.size())) return fmt::format(fmt::runtime("{:" + spec + "}"), so.s);
    std::string out = fmt::format(fmt::runtime("{:" + spec + "}"), std::string(static_cast<size_t>(n), '\x01'));
    size_t at = out.find('\x01'), k = 0;
    while (at != std::string::npos && at + k < out.size() && out[at + k] == '\x01') ++k;
    if (at == std::string::npos) return out;
    std::string text;
    for (size_t i = 0; i < k; ++i) text += so.at(static_cast<int64_t>(i));
    return out.replace(at, k, text);
  } catch (const fmt::format_error& e) {
    throw rt::Error(fmt::format("invalid format spec '{}' for {}: {}", spec, typeText(v), e.what()));
  }
}

std::string xmlEscape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '<') o += "&lt;";
    else if (c == '>') o += "&gt;";
    else if (c == '&') o += "&amp;";
    else if (c == '"') o += "&quot;";
    else o += c;
  }
  return o;
}

}  // namespace tdl::vm
