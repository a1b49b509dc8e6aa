// `tdl serve M.tdlm` (SPEC §12; docs/commands/serve.md): TensorFlow Serving's REST API for an
// exported model, on Boost.Beast over Asio (asynchronous sessions on a few network threads,
// never one thread per connection; no HTTP code of our own).
//
//   GET  /v1/models/NAME            the model's status
//   GET  /v1/models/NAME/metadata   its signatures
//   POST /v1/models/NAME:predict    {"signature_name": FN, "instances": [...]} (rows) or
//                                   {"inputs": ...} (columns) → {"predictions"|"outputs": ...}
//   GET  /metrics                   Prometheus text: requests, errors, latency, batch sizes
//
// Dynamic batching: the rows of concurrent requests to a fn whose inputs and outputs all
// have one symbolic batch dim first (and static dims otherwise) are joined into one call of
// up to --max-batch rows, waiting at most --batch-timeout-us for more after the first; the
// compiled code takes any batch size, so nothing is padded or retraced. One worker thread
// runs the model; the network threads only parse, check and answer.
//
// Limits: bodies over --max-body-bytes get 413 without being read; a request that has not
// arrived whole after --request-timeout seconds gets 408 (slow clients hold no thread); JSON
// nested deeper than 64 is refused. SIGTERM or SIGINT stops accepting, answers the requests
// already read, then exits 0.
#include <fmt/format.h>

#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <functional>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "model/Model.h"
#include "runtime/DType.h"
#include "runtime/Error.h"
#include "runtime/JsonText.h"
#include "runtime/Print.h"
#include "tools/Commands.h"

namespace tdl {

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr int kMaxJsonDepth = 64;

// An error answer: its HTTP status and message (sent as {"error": message}).
// A NUL in the message (echoed from a request: a %00 in the path, \u0000 in a key) is shown
// as \0: what() is a C string and would end there.
std::string withoutNul(const std::string& m) {
  std::string out;
  for (char c : m) out += c == '\0' ? std::string("\\0") : std::string(1, c);
  return out;
}
struct HttpError : std::runtime_error {
  HttpError(http::status s, const std::string& m, std::string allowed = "")
      : std::runtime_error(withoutNul(m)), status(s), allow(std::move(allowed)) {}
  http::status status;
  std::string allow;  // for 405: the methods the resource takes
};
[[noreturn]] void badRequest(const std::string& m) { throw HttpError(http::status::bad_request, m); }

// A response body. Text that is not valid UTF-8 (a request's bytes echoed in an error) has its
// bad bytes replaced by U+FFFD; a float that is not finite is written NaN, Infinity or
// -Infinity, as TensorFlow Serving writes them (JSON has no such numbers; nlohmann would
// write null, losing which one it was).
void appendJson(std::string& out, const json& j) {
  switch (j.type()) {
    case json::value_t::array: {
      out += '[';
      for (size_t i = 0; i < j.size(); ++i) {
        if (i) out += ',';
        appendJson(out, j[i]);
      }
      out += ']';
      return;
    }
    case json::value_t::object: {
      out += '{';
      bool first = true;
      for (auto it = j.begin(); it != j.end(); ++it) {
        if (!first) out += ',';
        first = false;
        out += json(it.key()).dump(-1, ' ', false, json::error_handler_t::replace);
        out += ':';
        appendJson(out, it.value());
      }
      out += '}';
      return;
    }
    case json::value_t::number_float: {
      double d = j.get<double>();
      if (std::isnan(d)) return void(out += "NaN");
      if (std::isinf(d)) return void(out += d > 0 ? "Infinity" : "-Infinity");
      break;
    }
    default: break;
  }
  out += j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// A request path with its %XX escapes decoded (RFC 3986 section 2.1); a malformed escape is
// the request's error.
std::string percentDecoded(const std::string& p) {
  auto hexv = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] != '%') {
      out += p[i];
      continue;
    }
    int hi = i + 2 < p.size() ? hexv(p[i + 1]) : -1, lo = i + 2 < p.size() ? hexv(p[i + 2]) : -1;
    if (hi < 0 || lo < 0) badRequest("the request path has a malformed %-escape");
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

bool allFinite(const json& j) {
  if (j.is_number_float()) return std::isfinite(j.get<double>());
  if (j.is_array() || j.is_object())
    for (const auto& e : j)
      if (!allFinite(e)) return false;
  return true;
}

std::string jsonText(const json& j) {
  if (allFinite(j)) return j.dump(-1, ' ', false, json::error_handler_t::replace);
  std::string out;
  appendJson(out, j);
  return out;
}

// ---- metrics (Prometheus text format)

struct Histogram {
  std::vector<double> bounds;
  std::vector<std::atomic<uint64_t>> counts;
  std::atomic<uint64_t> count{0};
  std::atomic<double> sum{0};
  explicit Histogram(std::vector<double> b) : bounds(std::move(b)), counts(bounds.size()) {}
  void observe(double v) {
    for (size_t i = 0; i < bounds.size(); ++i)
      if (v <= bounds[i]) counts[i].fetch_add(1, std::memory_order_relaxed);
    count.fetch_add(1, std::memory_order_relaxed);
    double s = sum.load(std::memory_order_relaxed);
    while (!sum.compare_exchange_weak(s, s + v, std::memory_order_relaxed)) {
    }
  }
  void write(std::string& out, const std::string& name, const std::string& help) const {
    out += fmt::format("# HELP {} {}\n# TYPE {} histogram\n", name, help, name);
    for (size_t i = 0; i < bounds.size(); ++i) out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, bounds[i], counts[i].load());
    out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n{}_sum {}\n{}_count {}\n", name, count.load(), name, sum.load(), name,
                       count.load());
  }
};

struct Metrics {
  std::mutex m;
  std::map<std::pair<std::string, int>, uint64_t> requests;  // (route, status) → count
  Histogram latency{{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}};
  Histogram batch{{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}};
  std::atomic<uint64_t> rows{0}, calls{0};
  void request(const std::string& route, int status, double seconds) {
    {
      std::lock_guard<std::mutex> l(m);
      ++requests[{route, status}];
    }
    latency.observe(seconds);
  }
  std::string text() {
    std::string out = "# HELP tdl_requests_total HTTP requests answered, by route and status.\n"
                      "# TYPE tdl_requests_total counter\n";
    uint64_t errors = 0;
    {
      std::lock_guard<std::mutex> l(m);
      for (auto& [k, n] : requests) {
        out += fmt::format("tdl_requests_total{{route=\"{}\",code=\"{}\"}} {}\n", k.first, k.second, n);
        if (k.second >= 400) errors += n;
      }
    }
    out += fmt::format("# HELP tdl_request_errors_total Requests answered with a 4xx or 5xx status.\n"
                       "# TYPE tdl_request_errors_total counter\ntdl_request_errors_total {}\n", errors);
    latency.write(out, "tdl_request_duration_seconds", "Time from a request's arrival to its answer.");
    batch.write(out, "tdl_batch_size", "Rows per call of the model (dynamic batching).");
    out += fmt::format("# HELP tdl_model_calls_total Calls of the model.\n# TYPE tdl_model_calls_total counter\n"
                       "tdl_model_calls_total {}\n# HELP tdl_rows_total Rows predicted.\n# TYPE tdl_rows_total counter\n"
                       "tdl_rows_total {}\n", calls.load(), rows.load());
    return out;
  }
};

// ---- JSON ↔ tensors

// The shape of nested JSON lists (from the first element at each level).
rt::Shape jsonShape(const json& j) {
  rt::Shape s;
  const json* p = &j;
  while (p->is_array()) {
    s.push_back(static_cast<int64_t>(p->size()));
    if (p->empty()) break;
    p = &(*p)[0];
  }
  return s;
}

void fillTensor(const json& j, const rt::Shape& shape, size_t level, rt::Tensor& t, int64_t& at, const std::string& what) {
  if (level == shape.size()) {
    rt::dispatch(t.dtype(), [&](auto tag) {
      using T = decltype(tag);
      T* p = t.mutable_data<T>();
      if constexpr (std::is_same_v<T, bool>) {
        if (!j.is_boolean()) badRequest(fmt::format("{} holds {} where a bool (true or false) belongs", what, j.dump()));
        p[at] = j.get<bool>();
      } else if constexpr (std::is_floating_point_v<T>) {
        if (!j.is_number()) badRequest(fmt::format("{} holds {} where a number belongs", what, j.dump()));
        double d = j.get<double>();
        if (!(std::fabs(d) <= static_cast<double>(std::numeric_limits<T>::max())))
          badRequest(fmt::format("{} holds {}, out of range for {}", what, j.dump(), rt::dtype_name(t.dtype())));
        p[at] = static_cast<T>(d);
      } else {
        if (!j.is_number_integer())
          badRequest(fmt::format("{} holds {} where an integer belongs ({})", what, j.dump(), rt::dtype_name(t.dtype())));
        bool fits = j.is_number_unsigned() ? j.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<T>::max())
                                           : j.get<int64_t>() >= std::numeric_limits<T>::min() &&
                                                 j.get<int64_t>() <= std::numeric_limits<T>::max();
        if (!fits) badRequest(fmt::format("{} holds {}, out of range for {}", what, j.dump(), rt::dtype_name(t.dtype())));
        p[at] = static_cast<T>(j.get<int64_t>());
      }
    });
    ++at;
    return;
  }
  if (!j.is_array() || static_cast<int64_t>(j.size()) != shape[level])
    badRequest(fmt::format("{} is not rectangular: a list along axis {} should hold {} items, got {}", what, level,
                           shape[level], j.is_array() ? std::to_string(j.size()) : (j.is_object() ? "an " : "a ") + std::string(j.type_name())));
  for (const json& x : j) fillTensor(x, shape, level + 1, t, at, what);
}

// `limit`: the most elements the request can hold (its body's size: a number takes a byte
// at least), checked before anything is allocated for the shape its first items suggest.
rt::Tensor toTensor(const json& j, rt::DType dt, const std::string& what, size_t limit) {
  rt::Shape shape = jsonShape(j);
  if (shape.size() > static_cast<size_t>(rt::kMaxRank)) badRequest(fmt::format("{} has too many axes", what));
  unsigned __int128 n = 1;
  for (int64_t d : shape) {
    n *= static_cast<unsigned __int128>(d);
    if (n > limit) badRequest(fmt::format("{} is not rectangular (it cannot hold {} elements)", what, fmt::join(shape, " x ")));
  }
  rt::Tensor t = rt::Tensor::empty(dt, shape);
  int64_t at = 0;
  fillTensor(j, shape, 0, t, at, what);
  return t;
}

json toJson(const rt::Tensor& t, int64_t row = -1) {
  // Row `row` of the first axis, or the whole tensor.
  rt::Shape shape = t.shape();
  int64_t offset = 0;
  if (row >= 0) {
    int64_t inner = 1;
    for (size_t d = 1; d < shape.size(); ++d) inner *= shape[d];
    offset = row * inner;
    shape.erase(shape.begin());
  }
  std::function<json(size_t, int64_t&)> build = [&](size_t level, int64_t& at) -> json {
    if (level == shape.size()) {
      json v;
      rt::dispatch(t.dtype(), [&](auto tag) {
        using T = decltype(tag);
        T x = t.data<T>()[at];
        if constexpr (std::is_same_v<T, float>) {
          // The shortest decimal that reads back as this f32 (as TensorFlow Serving writes
          // floats), not the 17 digits of its double.
          char buf[32];
          auto r = std::to_chars(buf, buf + sizeof buf, x);
          v = std::isfinite(x) ? json(std::strtod(std::string(buf, r.ptr).c_str(), nullptr)) : json(static_cast<double>(x));
        } else if constexpr (std::is_floating_point_v<T>) {
          v = x;  // not finite: written NaN, Infinity or -Infinity (jsonText)
        } else {
          v = x;
        }
      });
      ++at;
      return v;
    }
    json a = json::array();
    for (int64_t i = 0; i < shape[level]; ++i) a.push_back(build(level + 1, at));
    return a;
  };
  int64_t at = offset;
  return build(0, at);
}

std::string tfDtype(rt::DType d) {
  switch (d) {
    case rt::DType::Bool: return "DT_BOOL";
    case rt::DType::I32: return "DT_INT32";
    case rt::DType::I64: return "DT_INT64";
    case rt::DType::F32: return "DT_FLOAT";
    case rt::DType::F64: return "DT_DOUBLE";
    case rt::DType::I8: return "DT_INT8";
  }
  return "DT_INVALID";
}

// ---- the model worker: one thread runs every call, joining the rows of queued requests.

struct Job {
  size_t fn;
  std::vector<rt::Tensor> inputs;
  int64_t rows = 0;      // along the batch dim (batchable fns), else 0
  bool batchable = false;
  // Called on the worker thread with the outputs (this job's rows), or an error.
  std::function<void(std::vector<rt::Tensor>, std::exception_ptr)> done;
};

class Worker {
 public:
  // `clients`: open connections that have sent a predict request (Service::clients).
  Worker(const model::Model& m, Metrics& metrics, int maxBatch, int timeoutUs, const std::atomic<int>& clients)
      : m_(m), metrics_(metrics), maxBatch_(maxBatch), timeout_(timeoutUs), clients_(clients) {
    thread_ = std::thread([this] { loop(); });
  }
  ~Worker() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void submit(Job j) {
    {
      std::lock_guard<std::mutex> l(mu_);
      queue_.push_back(std::move(j));
    }
    cv_.notify_all();
  }

 private:
  void loop() {
    std::unique_lock<std::mutex> l(mu_);
    for (;;) {
      cv_.wait(l, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;
      std::vector<Job> batch;
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
      if (batch[0].batchable && batch[0].rows < maxBatch_) {
        // More rows of the same fn, until the batch is full or the timeout since the first
        // passes — but only while some connection that sends predictions has no request in
        // the batch (HTTP/1.1 answers one request at a time per connection, so only those
        // can add rows): a lone client never waits for company.
        auto deadline = Clock::now() + timeout_;
        int64_t rows = batch[0].rows;
        auto sweep = [&] {
          for (auto it = queue_.begin(); it != queue_.end() && rows < maxBatch_;) {
            if (it->batchable && it->fn == batch[0].fn && rows + it->rows <= maxBatch_) {
              rows += it->rows;
              batch.push_back(std::move(*it));
              it = queue_.erase(it);
            } else {
              ++it;
            }
          }
        };
        sweep();
        while (rows < maxBatch_ && !stop_ && clients_.load() > static_cast<int>(batch.size())) {
          auto now = Clock::now();
          if (now >= deadline) break;
          // In slices, to notice when those connections close instead.
          cv_.wait_until(l, std::min(deadline, now + std::chrono::microseconds(100)));
          sweep();
        }
      }
      l.unlock();
      run(batch);
      l.lock();
    }
  }

  // Answers a job; a failure inside its answer never reaches the worker.
  static void finish(Job& j, std::vector<rt::Tensor> out, std::exception_ptr err) {
    try {
      j.done(std::move(out), err);
    } catch (...) {
    }
  }

  void run(std::vector<Job>& batch) {
    const Job& first = batch[0];
    std::vector<rt::Tensor> out;
    int64_t rows = 0;
    for (auto& j : batch) rows += j.rows;
    try {
      std::vector<rt::Tensor> inputs;
      if (batch.size() == 1) {
        inputs = first.inputs;
      } else {
        for (size_t k = 0; k < first.inputs.size(); ++k) {
          rt::Shape shape = first.inputs[k].shape();
          shape[0] = rows;
          rt::Tensor t = rt::Tensor::empty(first.inputs[k].dtype(), shape);
          auto* p = static_cast<char*>(t.mutable_raw());
          for (auto& j : batch) {
            std::memcpy(p, j.inputs[k].raw(), j.inputs[k].nbytes());
            p += j.inputs[k].nbytes();
          }
          inputs.push_back(std::move(t));
        }
      }
      out = m_.call(first.fn, inputs);
    } catch (...) {
      if (batch.size() > 1) {
        // One request's rows may be what fails: run each alone so that the others succeed.
        for (auto& j : batch) {
          std::vector<Job> one;
          one.push_back(std::move(j));
          run(one);
        }
        return;
      }
      finish(batch[0], {}, std::current_exception());
      return;
    }
    metrics_.calls.fetch_add(1);
    metrics_.rows.fetch_add(static_cast<uint64_t>(first.batchable ? rows : 1));
    metrics_.batch.observe(static_cast<double>(first.batchable ? rows : 1));
    if (batch.size() == 1) {
      finish(batch[0], std::move(out), nullptr);
      return;
    }
    int64_t start = 0;
    for (auto& j : batch) {
      std::vector<rt::Tensor> mine;
      try {
        for (const rt::Tensor& o : out) {
          rt::Shape shape = o.shape();
          int64_t inner = 1;
          for (size_t d = 1; d < shape.size(); ++d) inner *= shape[d];
          shape[0] = j.rows;
          rt::Tensor t = rt::Tensor::empty(o.dtype(), shape);
          size_t item = rt::itemsize(o.dtype());
          std::memcpy(t.mutable_raw(), static_cast<const char*>(o.raw()) + static_cast<size_t>(start * inner) * item,
                      static_cast<size_t>(j.rows * inner) * item);
          mine.push_back(std::move(t));
        }
      } catch (...) {
        start += j.rows;
        finish(j, {}, std::current_exception());
        continue;
      }
      start += j.rows;
      finish(j, std::move(mine), nullptr);
    }
  }

  const model::Model& m_;
  Metrics& metrics_;
  int64_t maxBatch_;
  std::chrono::microseconds timeout_;
  const std::atomic<int>& clients_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  bool stop_ = false;
  std::thread thread_;
};

// ---- the service: routes and the predict request

struct Service {
  const model::Model& model;
  std::string name;
  int64_t maxResponseValues = int64_t{1} << 25;
  Metrics metrics;
  std::unique_ptr<Worker> worker;
  std::atomic<int> inFlight{0};
  std::atomic<int> clients{0};  // open connections that have sent a predict request
  std::atomic<bool> draining{false};

  std::vector<char> batchOk;  // per fn: rows of its calls may be joined (checkBatching)

  // Whether fn i's calls may be joined: one symbolic batch dim first in every input and
  // output leaf, used nowhere else, every other input dim static — and rows independent:
  // at startup, 3 rows of test inputs called together give what each row gives alone (a fn
  // that mixes rows, such as a softmax over the batch, is served one request per call).
  bool checkBatching(size_t i, std::string& why) const {
    const model::Signature& s = model.signatures()[i];
    std::string b = s.batchSym();
    if (b.empty()) {
      why = "no batch dim";
      return false;
    }
    for (const auto& t : s.inputs)
      for (size_t d = 1; d < t.dims.size(); ++d)
        if (!t.dims[d].sym.empty()) {
          why = "an input has another symbolic dim";
          return false;
        }
    for (const auto& t : s.outputs)
      for (size_t d = 1; d < t.dims.size(); ++d)
        if (t.dims[d].sym == b) {
          why = "an output uses the batch dim twice";
          return false;
        }
    try {
      const int64_t rows = 3;
      std::vector<rt::Tensor> all;
      for (const auto& t : s.inputs) {
        rt::Shape shape{rows};
        for (size_t d = 1; d < t.dims.size(); ++d) shape.push_back(t.dims[d].size);
        rt::Tensor x = rt::Tensor::zeros(t.dtype, shape);
        if (t.dtype == rt::DType::F32 || t.dtype == rt::DType::F64)
          for (int64_t k = 0; k < x.numel(); ++k) {
            double v = static_cast<double>((k * 7919) % 1000) / 1000.0 - 0.25;
            if (t.dtype == rt::DType::F32) x.mutable_data<float>()[k] = static_cast<float>(v);
            else x.mutable_data<double>()[k] = v;
          }
        all.push_back(std::move(x));
      }
      std::vector<rt::Tensor> together = model.call(i, all);
      for (int64_t r = 0; r < rows; ++r) {
        std::vector<rt::Tensor> one;
        for (const auto& x : all) {
          rt::Shape shape = x.shape();
          shape[0] = 1;
          rt::Tensor y = rt::Tensor::empty(x.dtype(), shape);
          std::memcpy(y.mutable_raw(), static_cast<const char*>(x.raw()) + r * static_cast<int64_t>(y.nbytes()), y.nbytes());
          one.push_back(std::move(y));
        }
        std::vector<rt::Tensor> alone = model.call(i, one);
        for (size_t k = 0; k < alone.size(); ++k) {
          json a = toJson(alone[k], 0), t = toJson(together[k], r);
          if (!closeEnough(a, t)) {
            why = "its rows are not independent (a row's result depends on the others)";
            return false;
          }
        }
      }
    } catch (const std::exception& e) {
      why = std::string("its test call failed: ") + e.what();
      return false;
    }
    return true;
  }

  static bool closeEnough(const json& a, const json& b) {
    if (a.is_array() != b.is_array()) return false;
    if (a.is_array()) {
      if (a.size() != b.size()) return false;
      for (size_t i = 0; i < a.size(); ++i)
        if (!closeEnough(a[i], b[i])) return false;
      return true;
    }
    if (a.is_number_float() || b.is_number_float()) {
      if (!a.is_number() || !b.is_number()) return false;
      double x = a.get<double>(), y = b.get<double>();
      if (!std::isfinite(x) || !std::isfinite(y)) return (std::isnan(x) && std::isnan(y)) || x == y;
      return std::fabs(x - y) <= 1e-5 + 1e-4 * std::fabs(y);
    }
    return a == b;
  }

  json status() const {
    return json{{"model_version_status",
                 json::array({json{{"version", "1"},
                                   {"state", "AVAILABLE"},
                                   {"status", json{{"error_code", "OK"}, {"error_message", ""}}}}})}};
  }

  json metadata() const {
    json defs = json::object();
    auto specs = [](const std::vector<model::TensorSpec>& ts) {
      json o = json::object();
      for (const auto& t : ts) {
        json dims = json::array();
        for (const auto& d : t.dims) dims.push_back(json{{"size", d.sym.empty() ? std::to_string(d.size) : "-1"}, {"name", d.sym}});
        o[t.name] = json{{"dtype", tfDtype(t.dtype)}, {"tensor_shape", json{{"dim", dims}, {"unknown_rank", false}}},
                         {"name", t.name}, {"tdl_type", t.typeText()}};
      }
      return o;
    };
    for (size_t i = 0; i < model.signatures().size(); ++i) {
      const auto& s = model.signatures()[i];
      defs[s.name] = json{{"inputs", specs(s.inputs)}, {"outputs", specs(s.outputs)},
                          {"method_name", "tensorflow/serving/predict"}, {"tdl_signature", s.text()},
                          {"batch_dim", s.batchSym()}, {"default", i == 0}};
    }
    return json{{"model_spec", json{{"name", name}, {"signature_name", ""}, {"version", "1"}}},
                {"metadata", json{{"signature_def", json{{"signature_def", defs}}}}}};
  }

  // Parses and checks a predict request; submits it; `reply` gets the answer's body later.
  void predict(const std::string& body, std::function<void(http::status, std::string)> reply) {
    json req;
    // (JSON has no raw NUL byte; the parser would stop at one and ignore the rest.)
    if (size_t z = body.find('\0'); z != std::string::npos)
      badRequest(fmt::format("the request body is not valid JSON: a NUL byte at offset {}", z));
    try {
      req = json::parse(body, [&](int depth, json::parse_event_t, json&) {
        if (depth > kMaxJsonDepth) throw HttpError(http::status::bad_request, "the request JSON is nested too deeply");
        return true;
      });
    } catch (const json::exception& e) {
      badRequest(fmt::format("the request body is not valid JSON: {}", rt::json_error_text(e.what())));
    }
    if (!req.is_object()) badRequest("the request body must be a JSON object with \"instances\" or \"inputs\"");
    size_t fn = 0;
    if (req.contains("signature_name")) {
      if (!req["signature_name"].is_string()) badRequest("\"signature_name\" must be a string");
      std::string sn = req["signature_name"].get<std::string>();
      if (sn != "serving_default" && !sn.empty()) {
        int k = model.find(sn);
        if (k < 0) {
          std::string names;
          for (auto& s : model.signatures()) names += (names.empty() ? "" : ", ") + s.name;
          badRequest(fmt::format("the model has no signature '{}' (it has {})", sn, names));
        }
        fn = static_cast<size_t>(k);
      }
    }
    bool rows = req.contains("instances"), cols = req.contains("inputs");
    if (rows == cols) badRequest("the request needs exactly one of \"instances\" (rows) and \"inputs\" (columns)");
    for (auto it = req.begin(); it != req.end(); ++it)
      if (it.key() != "instances" && it.key() != "inputs" && it.key() != "signature_name")
        badRequest(fmt::format("unknown field \"{}\" in the request", it.key()));
    const model::Signature& sig = model.signatures()[fn];
    std::vector<rt::Tensor> inputs;
    int64_t n = 0;
    const size_t limit = body.size();
    if (rows) {
      const json& inst = req["instances"];
      if (!inst.is_array() || inst.empty()) badRequest("\"instances\" must be a non-empty list of rows");
      if (sig.batchSym().empty())
        badRequest(fmt::format("'{}' has no batch dim ({}): send its arguments whole in \"inputs\"", sig.name, sig.text()));
      n = static_cast<int64_t>(inst.size());
      bool named = inst[0].is_object();
      if (sig.inputs.size() > 1 && !named)
        badRequest(fmt::format("'{}' takes {} inputs: each instance must be an object with keys {}", sig.name,
                               sig.inputs.size(), inputNames(sig)));
      for (const auto& spec : sig.inputs) {
        if (!named) {
          inputs.push_back(toTensor(inst, spec.dtype, "\"instances\"", limit));
          continue;
        }
        json col = json::array();
        for (size_t r = 0; r < inst.size(); ++r) {
          if (!inst[r].is_object() || !inst[r].contains(spec.name))
            badRequest(fmt::format("instance {} has no \"{}\" (each instance is an object with keys {})", r, spec.name,
                                   inputNames(sig)));
          col.push_back(inst[r][spec.name]);
        }
        inputs.push_back(toTensor(col, spec.dtype, fmt::format("\"instances\" at \"{}\"", spec.name), limit));
      }
      if (named)  // every instance had each input; a key beyond them is a mistake, not ignored
        for (size_t r = 0; r < inst.size(); ++r)
          if (inst[r].size() != sig.inputs.size())
            for (auto it = inst[r].begin(); it != inst[r].end(); ++it)
              if (std::none_of(sig.inputs.begin(), sig.inputs.end(), [&](const auto& in) { return in.name == it.key(); }))
                badRequest(fmt::format("instance {} has an unknown key \"{}\" (each instance is an object with keys {})", r,
                                       it.key(), inputNames(sig)));
    } else {
      const json& in = req["inputs"];
      // One input: its value, or an object keyed by its name (a value is never an object).
      if (sig.inputs.size() == 1 && !in.is_object()) {
        inputs.push_back(toTensor(in, sig.inputs[0].dtype, "\"inputs\"", limit));
      } else {
        if (!in.is_object()) badRequest(fmt::format("\"inputs\" must be an object with keys {}", inputNames(sig)));
        for (auto it = in.begin(); it != in.end(); ++it)  // a misspelt name first: it says more than the missing one
          if (std::none_of(sig.inputs.begin(), sig.inputs.end(), [&](const auto& s) { return s.name == it.key(); }))
            badRequest(fmt::format("\"inputs\" has an unknown key \"{}\" (its keys are {})", it.key(), inputNames(sig)));
        for (const auto& spec : sig.inputs) {
          if (!in.contains(spec.name)) badRequest(fmt::format("\"inputs\" has no \"{}\"", spec.name));
          inputs.push_back(toTensor(in[spec.name], spec.dtype, fmt::format("\"inputs\".\"{}\"", spec.name), limit));
        }
      }
      if (!sig.batchSym().empty() && !inputs.empty() && inputs[0].rank() > 0) n = inputs[0].dim(0);
    }
    try {
      model.check(fn, inputs);
    } catch (const rt::Error& e) {
      badRequest(e.what());
    }
    Job job;
    job.fn = fn;
    job.batchable = batchOk[fn] && n > 0;
    job.rows = n;
    job.inputs = std::move(inputs);
    job.done = [this, fn, rows, reply = std::move(reply)](std::vector<rt::Tensor> out, std::exception_ptr err) {
      if (err) {
        try {
          std::rethrow_exception(err);
        } catch (const rt::Error& e) {
          // The model's own run-time errors (an index out of range, ...) are the input's fault.
          reply(http::status::bad_request, jsonText(json{{"error", e.what()}}));
        } catch (const std::exception& e) {
          reply(http::status::internal_server_error, jsonText(json{{"error", std::string("internal error: ") + e.what()}}));
        }
        return;
      }
      // The answer is built in memory before it is sent: a result too large for that (a
      // size the request chose) is refused before it takes the memory, and the worker's time.
      int64_t values = 0;
      for (const rt::Tensor& t : out) values += t.numel();
      if (values > maxResponseValues) {
        reply(http::status::bad_request,
              jsonText(json{{"error", fmt::format("the answer would hold {} numbers, more than this server sends in one "
                                                  "answer ({}, --max-response-values)",
                                                  values, maxResponseValues)}}));
        return;
      }
      reply(http::status::ok, jsonText(answer(fn, out, rows)));
    };
    worker->submit(std::move(job));
  }

  static std::string inputNames(const model::Signature& s) {
    std::string o;
    for (auto& t : s.inputs) o += (o.empty() ? "\"" : ", \"") + t.name + "\"";
    return o;
  }

  json answer(size_t fn, const std::vector<rt::Tensor>& out, bool rows) const {
    const model::Signature& sig = model.signatures()[fn];
    if (!rows) {
      if (out.size() == 1) return json{{"outputs", toJson(out[0])}};
      json o = json::object();
      for (size_t k = 0; k < out.size(); ++k) o[sig.outputs[k].name] = toJson(out[k]);
      return json{{"outputs", o}};
    }
    json preds = json::array();
    int64_t n = out.empty() || out[0].rank() == 0 ? 0 : out[0].dim(0);
    for (int64_t r = 0; r < n; ++r) {
      if (out.size() == 1) {
        preds.push_back(toJson(out[0], r));
      } else {
        json o = json::object();
        for (size_t k = 0; k < out.size(); ++k) o[sig.outputs[k].name] = toJson(out[k], r);
        preds.push_back(o);
      }
    }
    return json{{"predictions", preds}};
  }
};

// ---- HTTP sessions

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket s, Service& svc, const ServeOptions& o)
      : stream_(std::move(s)), timer_(stream_.get_executor()), svc_(svc), opts_(o) {}
  ~Session() {
    if (client_) --svc_.clients;
  }
  void start() { read(); }

 private:
  // A deadline for the current read or write: when it passes, the socket's operations are
  // cancelled (timedOut_ says why). A generation count makes a stale timer harmless.
  void arm(std::chrono::milliseconds after) {
    uint64_t g = ++gen_;
    timedOut_ = false;
    timer_.expires_after(after);
    timer_.async_wait([self = shared_from_this(), g](beast::error_code ec) {
      if (ec || g != self->gen_) return;
      self->timedOut_ = true;
      beast::error_code ignored;
      self->stream_.socket().cancel(ignored);
    });
  }
  void disarm() {
    ++gen_;
    timer_.cancel();
  }

  void read() {
    parser_.emplace();
    parser_->body_limit(opts_.maxBodyBytes);
    parser_->header_limit(16 * 1024);
    arm(std::chrono::seconds(opts_.requestTimeoutS));
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = shared_from_this()](beast::error_code ec, size_t) { self->onHeader(ec); });
  }

  void onHeader(beast::error_code ec) {
    if (ec) {
      onRead(ec);
      return;
    }
    auto body = [self = shared_from_this()] {
      http::async_read(self->stream_, self->buffer_, *self->parser_,
                       [self](beast::error_code e, size_t) { self->onRead(e); });
    };
    if (beast::iequals(parser_->get()[http::field::expect], "100-continue")) {
      // curl and others wait for this before sending a larger body.
      auto cont = std::make_shared<http::response<http::empty_body>>(http::status::continue_, 11);
      http::async_write(stream_, *cont, [self = shared_from_this(), cont, body](beast::error_code e, size_t) {
        if (e) {
          self->onRead(e);
          return;
        }
        body();
      });
      return;
    }
    body();
  }

  void onRead(beast::error_code ec) {
    disarm();
    if (!ec) {
      handle(parser_->release());
      return;
    }
    bool partial = parser_->got_some();
    if (timedOut_) {
      if (partial) fail(http::status::request_timeout, "the request did not arrive in time", "other");
      else close();
      return;
    }
    if (ec == http::error::body_limit) {
      fail(http::status::payload_too_large, fmt::format("the request body is larger than {} bytes", opts_.maxBodyBytes), "predict");
      return;
    }
    if (ec == http::error::header_limit) {
      fail(http::status::request_header_fields_too_large, "the request's header is too large", "other");
      return;
    }
    if (!partial || ec == http::error::end_of_stream || ec == net::error::connection_reset || ec == net::error::eof) {
      close();
      return;
    }
    fail(http::status::bad_request, fmt::format("malformed HTTP request: {}", ec.message()), "other");
  }

  void handle(http::request<http::string_body> req) {
    start_ = Clock::now();
    route_ = "other";
    keepAlive_ = req.keep_alive() && !svc_.draining.load();
    version_ = req.version();
    std::string target(req.target());
    std::string prefix = "/v1/models/" + svc_.name;
    try {
      // The path's query (unused) is dropped and its %XX escapes decoded (`m%3Apredict`).
      if (size_t q = target.find('?'); q != std::string::npos) target.resize(q);
      target = percentDecoded(target);
      if (target == "/metrics") {
        route_ = "metrics";
        if (req.method() != http::verb::get) throw HttpError(http::status::method_not_allowed, "use GET for /metrics", "GET");
        send(http::status::ok, svc_.metrics.text(), "text/plain; version=0.0.4");
        return;
      }
      if (target.rfind("/v1/models/", 0) != 0)
        throw HttpError(http::status::not_found, fmt::format("no such path '{}' (the API is under {})", target, prefix));
      std::string rest = target.substr(11);
      std::string model = rest.substr(0, rest.find_first_of(":/"));
      std::string tail = rest.substr(model.size());
      if (model != svc_.name)
        throw HttpError(http::status::not_found, fmt::format("Servable not found for request: Latest({}) (this server "
                                                             "serves '{}')", model, svc_.name));
      if (tail == "" || tail == "/versions/1") {
        route_ = "status";
        if (req.method() != http::verb::get)
          throw HttpError(http::status::method_not_allowed, "use GET for the model's status", "GET");
        send(http::status::ok, jsonText(svc_.status()), "application/json");
      } else if (tail == "/metadata" || tail == "/versions/1/metadata") {
        route_ = "metadata";
        if (req.method() != http::verb::get) throw HttpError(http::status::method_not_allowed, "use GET for the metadata", "GET");
        send(http::status::ok, jsonText(svc_.metadata()), "application/json");
      } else if (tail == ":predict" || tail == "/versions/1:predict") {
        route_ = "predict";
        if (req.method() != http::verb::post) throw HttpError(http::status::method_not_allowed, "use POST for :predict", "POST");
        if (!client_) {
          client_ = true;
          ++svc_.clients;
        }
        // Counted until its answer is written: a drain waits for it.
        ++svc_.inFlight;
        pending_ = true;
        auto self = shared_from_this();
        try {
          svc_.predict(req.body(), [self](http::status s, std::string body) {
            net::post(self->stream_.get_executor(), [self, s, body = std::move(body)]() mutable {
              self->send(s, std::move(body), "application/json");
            });
          });
        } catch (...) {
          pending_ = false;
          --svc_.inFlight;
          throw;
        }
      } else {
        throw HttpError(http::status::not_found, fmt::format("no such path '{}'", target));
      }
    } catch (const HttpError& e) {
      send(e.status, jsonText(json{{"error", e.what()}}), "application/json", e.allow);
    } catch (const rt::Error& e) {
      send(http::status::bad_request, jsonText(json{{"error", e.what()}}), "application/json");
    } catch (const std::exception& e) {
      send(http::status::internal_server_error, jsonText(json{{"error", std::string("internal error: ") + e.what()}}),
           "application/json");
    }
  }

  void fail(http::status s, const std::string& msg, const char* route) {
    start_ = Clock::now();
    route_ = route;
    keepAlive_ = false;
    version_ = 11;
    send(s, jsonText(json{{"error", msg}}), "application/json");
  }

  void send(http::status s, std::string body, const char* type, const std::string& allow = "") {
    auto res = std::make_shared<http::response<http::string_body>>(s, version_);
    res->set(http::field::server, "tdl-serve");
    res->set(http::field::content_type, type);
    if (!allow.empty()) res->set(http::field::allow, allow);
    if (svc_.draining.load()) keepAlive_ = false;
    res->keep_alive(keepAlive_);
    res->body() = std::move(body);
    res->prepare_payload();
    svc_.metrics.request(route_, static_cast<int>(s), std::chrono::duration<double>(Clock::now() - start_).count());
    arm(std::chrono::seconds(opts_.requestTimeoutS));
    http::async_write(stream_, *res, [self = shared_from_this(), res](beast::error_code ec, size_t) {
      self->disarm();
      if (self->pending_) {
        self->pending_ = false;
        --self->svc_.inFlight;
      }
      if (ec) {
        self->close();
        return;
      }
      if (!self->keepAlive_) {
        self->linger();
        return;
      }
      self->read();
    });
  }

  // Closing after an answer: stop sending, then read and drop what the client still sends
  // (a body we refused) for up to a second, so that closing does not reset the connection
  // before the client has read the answer.
  void linger() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    arm(std::chrono::seconds(1));
    lingerRead();
  }
  void lingerRead() {
    stream_.socket().async_read_some(net::buffer(discard_), [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) {
        self->disarm();
        self->close();
        return;
      }
      self->lingerRead();
    });
  }

  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.socket().close(ec);
  }

  beast::tcp_stream stream_;
  net::steady_timer timer_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  Service& svc_;
  const ServeOptions& opts_;
  uint64_t gen_ = 0;
  bool timedOut_ = false, keepAlive_ = false, pending_ = false, client_ = false;
  unsigned version_ = 11;
  std::string route_ = "other";
  Clock::time_point start_;
  std::array<char, 4096> discard_{};
};

// Accepts connections on the acceptor's strand (which the signal handler shares); after an
// accept error (too many open files) it waits a little instead of spinning.
void accept(tcp::acceptor& acc, net::steady_timer& backoff, net::io_context& ioc, Service& svc, const ServeOptions& o) {
  acc.async_accept(net::make_strand(ioc), [&acc, &backoff, &ioc, &svc, &o](beast::error_code ec, tcp::socket s) {
    if (!acc.is_open()) return;
    if (ec) {
      backoff.expires_after(std::chrono::milliseconds(50));
      backoff.async_wait([&acc, &backoff, &ioc, &svc, &o](beast::error_code) {
        if (acc.is_open()) accept(acc, backoff, ioc, svc, o);
      });
      return;
    }
    std::make_shared<Session>(std::move(s), svc, o)->start();
    accept(acc, backoff, ioc, svc, o);
  });
}

}  // namespace

int serveModel(const ServeOptions& o) {
  std::unique_ptr<model::Model> m;
  try {
    m = model::Model::load(o.model);
  } catch (const rt::Error& e) {
    fmt::print(stderr, "tdl: error: {}\n", e.what());
    return 1;
  }
  Service svc{*m, o.name.empty() ? std::filesystem::path(o.model).stem().string() : o.name, o.maxResponseValues};
  // A name a request's path can reach as it is: no URL syntax, no percent escapes (they are
  // decoded), no dot segments (clients drop them), no control characters.
  bool control = std::any_of(svc.name.begin(), svc.name.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
  if (svc.name.empty() || svc.name == "." || svc.name == ".." || control ||
      svc.name.find_first_of("/:?#% \\") != std::string::npos) {
    fmt::print(stderr, "tdl: error: the model name '{}' cannot stand in a URL (choose one with --name)\n", svc.name);
    return 2;
  }
  std::vector<std::string> batching;
  for (size_t i = 0; i < m->signatures().size(); ++i) {
    std::string why = "--max-batch 1";
    rt::QuietStdout quiet;  // trial calls: what the fns print is not the server's output
    bool ok = o.maxBatch > 1 && svc.checkBatching(i, why);
    svc.batchOk.push_back(ok);
    batching.push_back(ok ? fmt::format("batched up to {} rows", o.maxBatch) : "one request per call: " + why);
  }
  svc.worker = std::make_unique<Worker>(*m, svc.metrics, o.maxBatch, o.batchTimeoutUs, svc.clients);
  int threads = o.threads > 0 ? o.threads : static_cast<int>(std::min(4u, std::max(1u, std::thread::hardware_concurrency())));
  net::io_context ioc(threads);
  auto strand = net::make_strand(ioc);
  tcp::acceptor acc(strand);
  net::steady_timer backoff(strand);
  // --host: an address, or a name resolved to its first address (localhost); [::1] too.
  std::string host = o.host.size() > 2 && o.host.front() == '[' && o.host.back() == ']' ? o.host.substr(1, o.host.size() - 2)
                                                                                          : o.host;
  net::ip::address addr;
  {
    boost::system::error_code ec;
    addr = net::ip::make_address(host, ec);
    if (ec) {
      tcp::resolver resolver(ioc);
      auto found = resolver.resolve(host, "", ec);
      if (ec || found.empty()) {
        fmt::print(stderr, "tdl: error: --host '{}' is neither an IP address nor a name this machine resolves\n", o.host);
        return 1;
      }
      addr = found.begin()->endpoint().address();
    }
  }
  try {
    tcp::endpoint ep(addr, static_cast<unsigned short>(o.port));
    acc.open(ep.protocol());
    acc.set_option(net::socket_base::reuse_address(true));
    acc.bind(ep);
    acc.listen(net::socket_base::max_listen_connections);
  } catch (const boost::system::system_error& e) {
    fmt::print(stderr, "tdl: error: cannot listen on {}:{}: {}\n", o.host, o.port, e.code().message());
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "tdl: error: cannot listen on {}:{}: {}\n", o.host, o.port, e.what());
    return 1;
  }
  unsigned short port = acc.local_endpoint().port();
  std::string shown = addr.is_v6() ? "[" + addr.to_string() + "]" : addr.to_string();  // a URL's form
  fmt::print("tdl serve: model '{}' ({}) at http://{}:{}/v1/models/{}\n", svc.name, o.model, shown, port, svc.name);
  for (size_t i = 0; i < m->signatures().size(); ++i)
    fmt::print("  {}{}   [{}; {}]\n", m->signatures()[i].text(), i == 0 ? " (default)" : "", m->how(i), batching[i]);
  std::fflush(stdout);
  accept(acc, backoff, ioc, svc, o);

  // SIGTERM/SIGINT: stop accepting; answer what was read; then stop (at most 30 s).
  net::signal_set signals(strand, SIGTERM, SIGINT);
  net::steady_timer drain(strand);
  auto deadline = std::make_shared<Clock::time_point>();
  std::function<void()> poll = [&] {
    if (svc.inFlight.load() == 0 || Clock::now() >= *deadline) {
      ioc.stop();
      return;
    }
    drain.expires_after(std::chrono::milliseconds(20));
    drain.async_wait([&](beast::error_code) { poll(); });
  };
  signals.async_wait([&](beast::error_code ec, int sig) {
    if (ec) return;
    fmt::print("tdl serve: {} received, draining {} request{} in flight\n", sig == SIGTERM ? "SIGTERM" : "SIGINT",
               svc.inFlight.load(), svc.inFlight.load() == 1 ? "" : "s");
    std::fflush(stdout);
    svc.draining = true;
    beast::error_code ignored;
    acc.close(ignored);
    backoff.cancel();
    *deadline = Clock::now() + std::chrono::seconds(30);
    poll();
  });
  std::vector<std::thread> pool;
  for (int i = 1; i < threads; ++i) pool.emplace_back([&] { ioc.run(); });
  ioc.run();
  for (auto& t : pool) t.join();
  svc.worker.reset();
  fmt::print("tdl serve: stopped\n");
  std::fflush(stdout);
  return 0;
}

}  // namespace tdl
