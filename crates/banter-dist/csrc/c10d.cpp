// banter's C shim over libtorch's c10d: a TCPStore (behind a PrefixStore per torchrun attempt), a Gloo or NCCL
// process group, and the collectives banter uses, over the `torch::Tensor*` handles tch passes (C_tensor).
// Every entry point catches C++ exceptions and hands the message back through `err` (free with bd_free_str).
//
// ProcessGroupGloo.hpp and ProcessGroupNCCL.hpp cannot be included: they need gloo's headers (which the PyPI
// wheel does not ship) and CUDA's. libtorch exports both classes, so each is declared below with only what is
// called here — its constructor and its Options — and an opaque tail that is larger than the real object. Every
// other call goes through the virtual interface of c10d::Backend, whose header the wheel ships. No vtable or
// destructor of these declarations is ever emitted here (the objects are built by libtorch's own constructors
// and released through Backend's virtual destructor); `make test` checks the object file for that.

#include <cstring>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <c10/util/Logging.h>
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

namespace c10d {
class ProcessGroupGloo : public Backend {
 public:
  struct Options : public Backend::Options {
    static c10::intrusive_ptr<Options> create_default(std::chrono::milliseconds timeout);
  };
  ProcessGroupGloo(const c10::intrusive_ptr<Store>& store, int rank, int size, c10::intrusive_ptr<Options> options);

 private:
  char opaque_[1 << 14];
};

#ifdef BANTER_NCCL
class ProcessGroupNCCL : public Backend {
 public:
  struct Options : public Backend::Options {
    explicit Options(bool is_high_priority_stream);

   private:
    char opaque_[1 << 12];
  };
  ProcessGroupNCCL(c10::intrusive_ptr<Store> store, int rank, int size, c10::intrusive_ptr<Options> options);

 private:
  char opaque_[1 << 16];
};
#endif
}  // namespace c10d

namespace {

char* dup(const std::string& s) {
  char* out = static_cast<char*>(std::malloc(s.size() + 1));
  std::memcpy(out, s.c_str(), s.size() + 1);
  return out;
}

template <typename F>
int guarded(char** err, F f) {
  try {
    f();
    return 0;
  } catch (const c10::Error& e) {
    *err = dup(e.what_without_backtrace());
  } catch (const std::exception& e) {
    *err = dup(e.what());
  } catch (...) {
    *err = dup("unknown C++ exception");
  }
  return -1;
}

c10d::ReduceOp reduce_op(int op) {
  switch (op) {
    case 1:
      return c10d::ReduceOp::MAX;
    case 2:
      return c10d::ReduceOp::MIN;
    default:
      return c10d::ReduceOp::SUM;
  }
}

void wait_all(std::vector<c10::intrusive_ptr<c10d::Work>>& works) {
  for (auto& w : works) w->wait();
}

}  // namespace

struct bd_group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> backend;
};

extern "C" {

void bd_free_str(char* s) { std::free(s); }

int bd_has_nccl() {
#ifdef BANTER_NCCL
  return 1;
#else
  return 0;
#endif
}

// Connects to (or, with is_server, hosts) the TCPStore at host:port, under `prefix`, then creates the
// process group: backend 0 = Gloo, 1 = NCCL.
int bd_init(const char* host, int port, int is_server, int rank, int world, const char* prefix, int backend,
            long timeout_ms, bd_group** out, char** err) {
  return guarded(err, [&] {
    // c10d logs each retry while the store is unreachable, and the failure with a C++ stack; banter reports it
    // once, in one line. c10d's logging is raised to FATAL unless the user set TORCH_CPP_LOG_LEVEL.
    if (std::getenv("TORCH_CPP_LOG_LEVEL") == nullptr && FLAGS_caffe2_log_level < 3) FLAGS_caffe2_log_level = 3;
    c10d::TCPStoreOptions o;
    o.port = static_cast<std::uint16_t>(port);
    o.isServer = is_server != 0;
    if (o.isServer) o.numWorkers = world;
    o.waitWorkers = false;
    o.timeout = std::chrono::milliseconds(timeout_ms);
    auto tcp = c10::make_intrusive<c10d::TCPStore>(std::string(host), o);
    c10::intrusive_ptr<c10d::Store> store = c10::make_intrusive<c10d::PrefixStore>(std::string(prefix), tcp);
    auto* g = new bd_group();
    g->store = store;
    if (backend == 1) {
#ifdef BANTER_NCCL
      auto* raw_opts = new c10d::ProcessGroupNCCL::Options(false);
      auto opts = c10::intrusive_ptr<c10d::ProcessGroupNCCL::Options>::unsafe_steal_from_new(raw_opts);
      opts->timeout = std::chrono::milliseconds(timeout_ms);
      auto* pg = new c10d::ProcessGroupNCCL(store, rank, world, opts);
      g->backend = c10::intrusive_ptr<c10d::Backend>::unsafe_steal_from_new(static_cast<c10d::Backend*>(pg));
#else
      delete g;
      throw std::runtime_error("this build of banter has no NCCL (libtorch_cuda was not found when it was built)");
#endif
    } else {
      auto opts = c10d::ProcessGroupGloo::Options::create_default(std::chrono::milliseconds(timeout_ms));
      auto* pg = new c10d::ProcessGroupGloo(store, rank, world, opts);
      g->backend = c10::intrusive_ptr<c10d::Backend>::unsafe_steal_from_new(static_cast<c10d::Backend*>(pg));
    }
    *out = g;
  });
}

void bd_free(bd_group* g) { delete g; }

// In-place all-reduce of each tensor (each its own collective, all in flight together).
int bd_allreduce(bd_group* g, at::Tensor** ts, int n, int op, char** err) {
  return guarded(err, [&] {
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    for (int i = 0; i < n; i++) {
      std::vector<at::Tensor> v{*ts[i]};
      c10d::AllreduceOptions o;
      o.reduceOp = reduce_op(op);
      works.push_back(g->backend->allreduce(v, o));
    }
    wait_all(works);
  });
}

int bd_broadcast(bd_group* g, at::Tensor** ts, int n, int root, char** err) {
  return guarded(err, [&] {
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    for (int i = 0; i < n; i++) {
      std::vector<at::Tensor> v{*ts[i]};
      c10d::BroadcastOptions o;
      o.rootRank = root;
      works.push_back(g->backend->broadcast(v, o));
    }
    wait_all(works);
  });
}

// `output` (numel N) gets the sum over ranks of this rank's chunk of `input` (numel N × world).
int bd_reduce_scatter(bd_group* g, at::Tensor* output, at::Tensor* input, char** err) {
  return guarded(err, [&] {
    c10d::ReduceScatterOptions o;
    o.reduceOp = c10d::ReduceOp::SUM;
    g->backend->_reduce_scatter_base(*output, *input, o)->wait();
  });
}

// `output` (numel N × world) gets every rank's `input` (numel N), in rank order.
int bd_all_gather(bd_group* g, at::Tensor* output, at::Tensor* input, char** err) {
  return guarded(err, [&] { g->backend->_allgather_base(*output, *input)->wait(); });
}

int bd_barrier(bd_group* g, char** err) {
  return guarded(err, [&] { g->backend->barrier()->wait(); });
}

}  // extern "C"
