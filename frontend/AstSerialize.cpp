#include "frontend/AstSerialize.h"

#include <cstring>
#include <map>
#include <stdexcept>

namespace tdl {

namespace {

constexpr char kMagic[] = "TDLAST\x04";  // 2: type aliases (TypeExpr::qualifier); 3: //= %= **=, chained comparisons;
                                          // 4: `...` subscripts

// ------------------------------------------------------------------ writing

class Writer {
 public:
  std::string out;

  void u(uint64_t v) {  // LEB128
    do {
      uint8_t b = v & 0x7f;
      v >>= 7;
      out.push_back(static_cast<char>(b | (v ? 0x80 : 0)));
    } while (v);
  }
  void i(int64_t v) { u((static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63)); }
  void b(bool v) { out.push_back(v ? 1 : 0); }
  void f(double v) {
    char buf[8];
    std::memcpy(buf, &v, 8);
    out.append(buf, 8);
  }
  void s(const std::string& v) {
    u(v.size());
    out += v;
  }
  void loc(const Loc& l) {
    u(l.file), u(l.line), u(l.col), u(l.bline), u(l.bcol), u(l.eline), u(l.ecol);
  }
  void ref(const Ref& r) {
    u(static_cast<uint8_t>(r.kind));
    i(r.index);
    i(r.module);
  }

  void type(const TypeExpr* t) {
    b(t != nullptr);
    if (!t) return;
    u(t->kind);
    loc(t->loc);
    s(t->dtype);
    s(t->qualifier);
    b(t->anyShape);
    u(t->dims.size());
    for (const Dim& d : t->dims) {
      u(d.kind);
      i(d.size);
      s(d.name);
    }
    u(t->names.size());
    for (auto& n : t->names) s(n);
    u(t->elems.size());
    for (auto& e : t->elems) type(e.get());
  }

  void pattern(const Pattern& p) {
    u(p.kind);
    loc(p.loc);
    s(p.name);
    u(p.elems.size());
    for (auto& e : p.elems) pattern(e);
    i(p.slot);
    b(p.global);
  }

  void expr(const Expr* e) {
    b(e != nullptr);
    if (!e) return;
    u(static_cast<uint8_t>(e->kind));
    loc(e->loc);
    i(e->ival);
    f(e->fval);
    b(e->bval);
    u(static_cast<uint8_t>(e->unop));
    u(static_cast<uint8_t>(e->binop));
    s(e->str);
    s(e->text);
    u(e->kids.size());
    for (auto& k : e->kids) expr(k.get());
    u(e->names.size());
    for (auto& n : e->names) s(n);
    u(e->subs.size());
    for (auto& sub : e->subs) {
      b(sub.isSlice);
      b(sub.isEllipsis);
      expr(sub.index.get());
      expr(sub.lo.get());
      expr(sub.hi.get());
      expr(sub.step.get());
      loc(sub.loc);
    }
    u(e->parts.size());
    for (auto& p : e->parts) {
      s(p.literal);
      expr(p.expr.get());
      s(p.spec);
    }
    fn(e->fn.get());
    ref(e->ref);
    loc(e->declLoc);
    s(e->declDesc);
    b(e->isTensorLit);
    i(e->depth);
  }

  void stmt(const Stmt* st) {
    b(st != nullptr);
    if (!st) return;
    u(static_cast<uint8_t>(st->kind));
    loc(st->loc);
    b(st->isVar);
    out.push_back(st->assignOp);
    pattern(st->pattern);
    type(st->type.get());
    u(st->exprs.size());
    for (auto& e : st->exprs) expr(e.get());
    u(st->stmts.size());
    for (auto& x : st->stmts) stmt(x.get());
    stmt(st->body.get());
    stmt(st->orelse.get());
    fn(st->fn.get());
    s(st->str);
    s(st->alias);
    loc(st->pathLoc);
    b(st->isFileImport);
    i(st->module);
    i(st->slot);
    b(st->global);
  }

  // A FnDecl may be shared (shared_ptr): each is written once, later mentions by number.
  void fn(const FnDecl* d) {
    if (!d) {
      u(0);
      return;
    }
    auto it = fnIds_.find(d);
    if (it != fnIds_.end()) {
      u(2);
      u(it->second);
      return;
    }
    u(1);
    fnIds_[d] = fnIds_.size();
    s(d->name);
    loc(d->loc);
    b(d->isGraph);
    b(d->isLambda);
    u(d->params.size());
    for (auto& p : d->params) {
      s(p.name);
      loc(p.loc);
      type(p.type.get());
      expr(p.deflt.get());
    }
    type(d->ret.get());
    stmt(d->body.get());
    i(d->numLocals);
    u(d->captures.size());
    for (auto& c : d->captures) ref(c);
    u(d->captureNames.size());
    for (auto& n : d->captureNames) s(n);
    i(d->globalSlot);
    i(d->module);
  }

 private:
  std::map<const FnDecl*, uint64_t> fnIds_;
};

// ------------------------------------------------------------------ reading

struct BadInput : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Reader {
 public:
  explicit Reader(const std::string& in) : in_(in) {}

  uint64_t u() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      uint8_t b = byte();
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    throw BadInput("bad number");
  }
  uint32_t u32() { return static_cast<uint32_t>(u()); }
  int64_t i() {
    uint64_t z = u();
    return static_cast<int64_t>((z >> 1) ^ (~(z & 1) + 1));
  }
  int i32() { return static_cast<int>(i()); }
  bool b() { return byte() != 0; }
  double f() {
    need(8);
    double v;
    std::memcpy(&v, in_.data() + pos_, 8);
    pos_ += 8;
    return v;
  }
  std::string s() {
    uint64_t n = u();
    need(n);
    std::string v = in_.substr(pos_, n);
    pos_ += n;
    return v;
  }
  // A count of items that each take at least one byte.
  size_t count() {
    uint64_t n = u();
    if (n > in_.size() - pos_) throw BadInput("bad count");
    return static_cast<size_t>(n);
  }
  Loc loc() {
    Loc l;
    l.file = u32(), l.line = u32(), l.col = u32(), l.bline = u32(), l.bcol = u32(), l.eline = u32(), l.ecol = u32();
    return l;
  }
  Ref ref() {
    Ref r;
    r.kind = static_cast<RefKind>(byte());
    r.index = i32();
    r.module = i32();
    return r;
  }

  TypePtr type() {
    if (!b()) return nullptr;
    auto t = std::make_unique<TypeExpr>();
    t->kind = static_cast<TypeExpr::Kind>(u());
    t->loc = loc();
    t->dtype = s();
    t->qualifier = s();
    t->anyShape = b();
    for (size_t n = count(); n-- > 0;) {
      Dim d;
      d.kind = static_cast<Dim::Kind>(u());
      d.size = i();
      d.name = s();
      t->dims.push_back(std::move(d));
    }
    for (size_t n = count(); n-- > 0;) t->names.push_back(s());
    for (size_t n = count(); n-- > 0;) t->elems.push_back(type());
    return t;
  }

  Pattern pattern() {
    Pattern p;
    p.kind = static_cast<Pattern::Kind>(u());
    p.loc = loc();
    p.name = s();
    for (size_t n = count(); n-- > 0;) p.elems.push_back(pattern());
    p.slot = i32();
    p.global = b();
    return p;
  }

  ExprPtr expr() {
    if (!b()) return nullptr;
    auto kind = static_cast<ExprKind>(byte());
    auto e = std::make_unique<Expr>(kind, loc());
    e->ival = i();
    e->fval = f();
    e->bval = b();
    e->unop = static_cast<UnOp>(byte());
    e->binop = static_cast<BinOp>(byte());
    e->str = s();
    e->text = s();
    for (size_t n = count(); n-- > 0;) e->kids.push_back(expr());
    for (size_t n = count(); n-- > 0;) e->names.push_back(s());
    for (size_t n = count(); n-- > 0;) {
      Subscript sub;
      sub.isSlice = b();
      sub.isEllipsis = b();
      sub.index = expr();
      sub.lo = expr();
      sub.hi = expr();
      sub.step = expr();
      sub.loc = loc();
      e->subs.push_back(std::move(sub));
    }
    for (size_t n = count(); n-- > 0;) {
      FStrPart p;
      p.literal = s();
      p.expr = expr();
      p.spec = s();
      e->parts.push_back(std::move(p));
    }
    e->fn = fn();
    e->ref = ref();
    e->declLoc = loc();
    e->declDesc = s();
    e->isTensorLit = b();
    e->depth = i32();
    return e;
  }

  StmtPtr stmt() {
    if (!b()) return nullptr;
    auto kind = static_cast<StmtKind>(byte());
    auto st = std::make_unique<Stmt>(kind, loc());
    st->isVar = b();
    st->assignOp = static_cast<char>(byte());
    st->pattern = pattern();
    st->type = type();
    for (size_t n = count(); n-- > 0;) st->exprs.push_back(expr());
    for (size_t n = count(); n-- > 0;) st->stmts.push_back(stmt());
    st->body = stmt();
    st->orelse = stmt();
    st->fn = fn();
    st->str = s();
    st->alias = s();
    st->pathLoc = loc();
    st->isFileImport = b();
    st->module = i32();
    st->slot = i32();
    st->global = b();
    return st;
  }

  std::shared_ptr<FnDecl> fn() {
    uint64_t tag = u();
    if (tag == 0) return nullptr;
    if (tag == 2) {
      uint64_t id = u();
      if (id >= fns_.size()) throw BadInput("bad fn reference");
      return fns_[id];
    }
    if (tag != 1) throw BadInput("bad fn tag");
    auto d = std::make_shared<FnDecl>();
    fns_.push_back(d);
    d->name = s();
    d->loc = loc();
    d->isGraph = b();
    d->isLambda = b();
    for (size_t n = count(); n-- > 0;) {
      Param p;
      p.name = s();
      p.loc = loc();
      p.type = type();
      p.deflt = expr();
      d->params.push_back(std::move(p));
    }
    d->ret = type();
    d->body = stmt();
    d->numLocals = i32();
    for (size_t n = count(); n-- > 0;) d->captures.push_back(ref());
    for (size_t n = count(); n-- > 0;) d->captureNames.push_back(s());
    d->globalSlot = i32();
    d->module = i32();
    return d;
  }

  bool atEnd() const { return pos_ == in_.size(); }
  uint8_t byte() {
    need(1);
    return static_cast<uint8_t>(in_[pos_++]);
  }

 private:
  void need(uint64_t n) const {
    if (n > in_.size() - pos_) throw BadInput("truncated");
  }
  const std::string& in_;
  size_t pos_ = 0;
  std::vector<std::shared_ptr<FnDecl>> fns_;
};

}  // namespace

std::string serializeProgram(const SourceManager& sources, const std::vector<std::unique_ptr<Module>>& modules) {
  Writer w;
  w.out = kMagic;
  w.u(sources.size());
  for (size_t i = 0; i < sources.size(); ++i) {
    w.s(sources.file(static_cast<uint32_t>(i)).path);
    w.s(sources.file(static_cast<uint32_t>(i)).text);
  }
  w.u(modules.size());
  for (auto& m : modules) {
    w.i(m->id);
    w.s(m->name);
    w.s(m->path);
    w.u(m->file);
    w.u(m->stmts.size());
    for (auto& st : m->stmts) w.stmt(st.get());
    w.u(m->globalNames.size());
    for (auto& n : m->globalNames) w.s(n);
    w.u(m->globalIsVar.size());
    for (bool v : m->globalIsVar) w.b(v);
    w.u(m->importedModules.size());
    for (int v : m->importedModules) w.i(v);
    w.i(m->numTopLocals);
  }
  return w.out;
}

bool deserializeProgram(const std::string& bytes, SourceManager& sources, std::vector<std::unique_ptr<Module>>& modules,
                        std::string& why) {
  if (bytes.compare(0, sizeof kMagic - 1, kMagic) != 0) {
    why = "not a TDL program image (or one of another version)";
    return false;
  }
  try {
    std::string body = bytes.substr(sizeof kMagic - 1);
    Reader r(body);
    for (size_t n = r.count(); n-- > 0;) {
      std::string path = r.s();
      std::string text = r.s();
      sources.add(std::move(path), std::move(text));
    }
    for (size_t n = r.count(); n-- > 0;) {
      auto m = std::make_unique<Module>();
      m->id = r.i32();
      m->name = r.s();
      m->path = r.s();
      m->file = r.u32();
      for (size_t k = r.count(); k-- > 0;) m->stmts.push_back(r.stmt());
      for (size_t k = r.count(); k-- > 0;) m->globalNames.push_back(r.s());
      for (size_t k = r.count(); k-- > 0;) m->globalIsVar.push_back(r.b());
      for (size_t k = r.count(); k-- > 0;) m->importedModules.push_back(r.i32());
      m->numTopLocals = r.i32();
      modules.push_back(std::move(m));
    }
    if (!r.atEnd()) throw BadInput("trailing bytes");
  } catch (const BadInput& e) {
    why = std::string("corrupt program image: ") + e.what();
    return false;
  }
  return true;
}

}  // namespace tdl
