#include <algorithm>
#include <exception>
#include <fstream>
#include <iostream>

#include "harness.hpp"
#include "isolate.hpp"
#include "registry.hpp"

namespace {

using bench::Case;
using bench::Fields;
using bench::Options;

bool selected(const std::vector<std::string>& filter, const std::string& name) {
  return filter.empty() || std::find(filter.begin(), filter.end(), name) != filter.end();
}

// Runs the case in this process; its failure becomes an error= line.
Fields run_here(const Case& c, const bench::Params& p) {
  bench::reset_peak_rss();
  try {
    auto report = c.run(p);
    return bench::make_line(c.bench, c.impl, c.variant, p.threads, report, bench::peak_rss_kb());
  } catch (const std::exception& e) {
    return bench::error_line(c.bench, c.impl, c.variant, p.threads, p.n, c.tags, e.what());
  }
}

bool reps_given = false;  // --reps was on the command line

Fields run_case(const Case& c, const bench::Workload& w, const Options& o, std::size_t threads) {
  int reps = !reps_given && w.default_reps > 0 ? w.default_reps : o.reps;
  bench::Params p{threads, o.n.value_or(w.default_n), o.n.has_value(), reps, o.slow};
  if (!o.fork) return run_here(c, p);
  try {
    return bench::parse_line(
        bench::run_in_child([&] { return bench::to_text(run_here(c, p)); }, o.timeout_s));
  } catch (const std::exception& e) {
    return bench::error_line(c.bench, c.impl, c.variant, p.threads, p.n, c.tags, e.what());
  }
}

bool failed(const Fields& line) {
  return std::any_of(line.begin(), line.end(), [](auto& kv) { return kv.first == "error"; });
}

std::vector<Fields> run_workload(const bench::Workload& w, const bench::Registry& reg,
                                 const Options& o) {
  std::vector<Fields> lines;
  for (std::size_t i = 0; i < o.threads.size(); ++i) {
    for (auto& c : reg.cases()) {
      if (c.bench != w.name || !selected(o.impls, c.impl) || !selected(o.variants, c.variant))
        continue;
      if (c.sequential && i > 0) continue;
      lines.push_back(run_case(c, w, o, c.sequential ? 1 : o.threads[i]));
      std::cout << bench::to_text(lines.back()) << std::endl;
    }
  }
  return lines;
}

void list_cases(const bench::Workload& w, const bench::Registry& reg) {
  for (auto& c : reg.cases()) {
    if (c.bench != w.name) continue;
    Fields f{{"bench", c.bench}, {"impl", c.impl}, {"variant", c.variant}};
    f.insert(f.end(), c.tags.begin(), c.tags.end());
    std::cout << bench::to_text(f) << '\n';
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  try {
    o = bench::parse_options(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "sluice_bench: " << e.what() << '\n' << bench::usage();
    return 2;
  }
  reps_given =
      std::any_of(argv + 1, argv + argc, [](const char* a) { return std::string(a) == "--reps"; });
  auto reg = bench::make_registry();
  std::vector<Fields> lines;
  bool known = false;
  for (auto& w : bench::workloads()) {
    if (o.workload != "all" && o.workload != w.name) continue;
    known = true;
    if (o.list) {
      list_cases(w, reg);
      continue;
    }
    auto more = run_workload(w, reg, o);
    lines.insert(lines.end(), more.begin(), more.end());
  }
  if (!known) {
    std::cerr << "sluice_bench: unknown workload '" << o.workload << "'\n" << bench::usage();
    return 2;
  }
  if (o.json_path) std::ofstream(*o.json_path) << bench::to_json(lines);
  return std::any_of(lines.begin(), lines.end(), failed) ? 1 : 0;
}
