// The table of cases: each competitor file adds its (workload, impl, variant)
// cases through one register_<workload>_<impl> function, listed in
// registry.cpp.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "harness.hpp"

namespace bench {

using RunFn = std::function<Report(const Params&)>;

struct Case {
  std::string bench, impl, variant;
  RunFn run;
  Fields tags;              // what tells apart cases of one variant (cutoff=0)
  bool sequential = false;  // ignores --threads: runs once, with threads=1
};

struct Workload {
  std::string name;
  std::uint64_t default_n;
  int default_reps = 0;  // measured runs unless --reps; 0: the harness's default
};

class Registry {
 public:
  /// A case run once per --threads value.
  void add(std::string bench, std::string impl, std::string variant, RunFn run, Fields tags = {}) {
    cases_.push_back({std::move(bench), std::move(impl), std::move(variant), std::move(run),
                      std::move(tags), false});
  }
  /// A sequential baseline: run once, with threads=1.
  void add_sequential(std::string bench, std::string impl, std::string variant, RunFn run,
                      Fields tags = {}) {
    cases_.push_back({std::move(bench), std::move(impl), std::move(variant), std::move(run),
                      std::move(tags), true});
  }
  const std::vector<Case>& cases() const noexcept { return cases_; }

 private:
  std::vector<Case> cases_;
};

/// The workloads in the order `all` runs them.
const std::vector<Workload>& workloads();

/// Every case built into this executable.
Registry make_registry();

}  // namespace bench
