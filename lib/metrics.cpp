#include "sluice/metrics.hpp"

#include <algorithm>
#include <sstream>

namespace sluice {

double Metrics::utilization() const noexcept {
  if (workers == 0 || interval_ns == 0) {
    return 0.0;
  }
  const double u = static_cast<double>(busy_ns) /
                   (static_cast<double>(workers) * static_cast<double>(interval_ns));
  return std::clamp(u, 0.0, 1.0);
}

double Metrics::queue_pressure() const noexcept {
  if (!max_pending || *max_pending == 0) {
    return 0.0;
  }
  return static_cast<double>(pending) / static_cast<double>(*max_pending);
}

double Metrics::success_rate() const noexcept {
  const auto ended = completed + failed + cancelled + timed_out;
  return ended == 0 ? 1.0 : static_cast<double>(completed) / static_cast<double>(ended);
}

std::string Metrics::to_prometheus(const std::string& prefix) const {
  std::ostringstream out;
  auto metric = [&](const char* name, const char* type, const char* help, auto value) {
    out << "# HELP " << prefix << '_' << name << ' ' << help << '\n';
    out << "# TYPE " << prefix << '_' << name << ' ' << type << '\n';
    out << prefix << '_' << name << ' ' << value << '\n';
  };
  out << "# HELP " << prefix << "_tasks_total Tasks by outcome.\n";
  out << "# TYPE " << prefix << "_tasks_total counter\n";
  const std::pair<const char*, std::uint64_t> outcomes[] = {{"completed", completed},
                                                            {"failed", failed},
                                                            {"cancelled", cancelled},
                                                            {"timed_out", timed_out},
                                                            {"rejected", rejected}};
  for (const auto& [outcome, n] : outcomes) {
    out << prefix << "_tasks_total{outcome=\"" << outcome << "\"} " << n << '\n';
  }
  metric("tasks_spawned_total", "counter", "Tasks spawned, including rejected ones.", spawned);
  metric("tasks_pending", "gauge", "Tasks spawned and not finished.", pending);
  metric("tasks_active", "gauge", "Pending tasks not waiting in a queue.", active);
  metric("tasks_queued", "gauge", "Tasks ready to run, waiting in a queue.", queued);
  metric("steals_total", "counter", "Successful work-stealing operations.", steals);
  metric("parks_total", "counter", "Times a worker went to sleep.", parks);
  metric("workers", "gauge", "Worker threads.", workers);
  if (max_pending) {
    metric("max_pending", "gauge", "Runtime-wide admission bound.", *max_pending);
  }
  metric("utilization", "gauge", "Share of worker time not parked, last interval.", utilization());
  metric("queue_pressure", "gauge", "pending / max_pending.", queue_pressure());
  metric("success_rate", "gauge", "completed / ended tasks.", success_rate());
  return out.str();
}

}  // namespace sluice
