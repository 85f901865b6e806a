#include <algorithm>
#include <exception>
#include <fstream>
#include <iostream>

#include "harness.hpp"
#include "registry.hpp"

namespace {

using bench::Case;
using bench::Line;
using bench::Options;

bool selected(const std::vector<std::string>& filter, const std::string& name) {
  return filter.empty() || std::find(filter.begin(), filter.end(), name) != filter.end();
}

Line run_case(const Case& c, const bench::Workload& w, const Options& o, std::size_t threads) {
  bench::Params p{threads, o.n.value_or(w.default_n), o.n.has_value(), o.reps, o.slow};
  Line line{c.bench, c.impl, c.variant, threads, {}, 0, {}};
  line.report.n = p.n;
  bench::reset_peak_rss();
  try {
    line.report = c.run(p);
  } catch (const std::exception& e) {
    line.error = e.what();
    std::replace(line.error.begin(), line.error.end(), ' ', '_');
  }
  line.vmhwm_kb = bench::peak_rss_kb();
  return line;
}

std::vector<Line> run_workload(const bench::Workload& w, const bench::Registry& reg, const Options& o) {
  std::vector<Line> lines;
  for (std::size_t i = 0; i < o.threads.size(); ++i) {
    for (auto& c : reg.cases()) {
      if (c.bench != w.name || !selected(o.impls, c.impl) || !selected(o.variants, c.variant)) continue;
      if (c.sequential && i > 0) continue;
      lines.push_back(run_case(c, w, o, c.sequential ? 1 : o.threads[i]));
      std::cout << bench::to_text(lines.back()) << std::endl;
    }
  }
  return lines;
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
  auto reg = bench::make_registry();
  std::vector<Line> lines;
  bool known = false;
  for (auto& w : bench::workloads()) {
    if (o.workload != "all" && o.workload != w.name) continue;
    known = true;
    if (o.list) {
      for (auto& c : reg.cases())
        if (c.bench == w.name) std::cout << c.bench << ' ' << c.impl << ' ' << c.variant << '\n';
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
  bool failed = std::any_of(lines.begin(), lines.end(), [](const Line& l) { return !l.error.empty(); });
  return failed ? 1 : 0;
}
