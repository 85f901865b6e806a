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

struct Case {
  std::string bench, impl, variant;
  std::function<Report(const Params&)> run;
  bool sequential = false;  // ignores --threads: runs once, with threads=1
};

struct Workload {
  std::string name;
  std::uint64_t default_n;
};

class Registry {
 public:
  void add(Case c) { cases_.push_back(std::move(c)); }
  const std::vector<Case>& cases() const noexcept { return cases_; }

 private:
  std::vector<Case> cases_;
};

/// The workloads in the order `all` runs them.
const std::vector<Workload>& workloads();

/// Every case built into this executable.
Registry make_registry();

}  // namespace bench
