#include "stats.hpp"

#include <sstream>

namespace serve {
namespace {

constexpr auto kRelaxed = std::memory_order_relaxed;

std::size_t status_index(int status) noexcept {
  for (std::size_t i = 0; i < ServerStats::kStatuses.size(); ++i) {
    if (ServerStats::kStatuses[i] == status) {
      return i;
    }
  }
  return 1;  // the server only answers with kStatuses; anything else counts as a 400
}

}  // namespace

void ServerStats::connection_opened() noexcept {
  connections_.fetch_add(1, kRelaxed);
  open_.fetch_add(1, kRelaxed);
}

void ServerStats::connection_closed(ConnectionEnd end) noexcept {
  open_.fetch_sub(1, kRelaxed);
  if (end == ConnectionEnd::drained) {
    drained_.fetch_add(1, kRelaxed);
  } else if (end == ConnectionEnd::cancelled) {
    cancelled_.fetch_add(1, kRelaxed);
  }
}

void ServerStats::responses_sent(std::span<const int> statuses, std::size_t bytes) noexcept {
  for (const int status : statuses) {
    requests_[status_index(status)].fetch_add(1, kRelaxed);
  }
  bytes_sent_.fetch_add(bytes, kRelaxed);
}

std::uint64_t ServerStats::Snapshot::requests_total() const noexcept {
  std::uint64_t total = 0;
  for (const auto n : requests) {
    total += n;
  }
  return total;
}

ServerStats::Snapshot ServerStats::snapshot() const noexcept {
  Snapshot s;
  for (std::size_t i = 0; i < requests_.size(); ++i) {
    s.requests[i] = requests_[i].load(kRelaxed);
  }
  s.connections = connections_.load(kRelaxed);
  s.open = open_.load(kRelaxed);
  s.drained = drained_.load(kRelaxed);
  s.cancelled = cancelled_.load(kRelaxed);
  s.bytes_sent = bytes_sent_.load(kRelaxed);
  return s;
}

std::string ServerStats::to_prometheus(const std::string& prefix) const {
  const Snapshot s = snapshot();
  std::ostringstream out;
  auto header = [&](const char* name, const char* type, const char* help) {
    out << "# HELP " << prefix << '_' << name << ' ' << help << '\n';
    out << "# TYPE " << prefix << '_' << name << ' ' << type << '\n';
  };
  header("requests_total", "counter", "HTTP responses written, by status code.");
  for (std::size_t i = 0; i < kStatuses.size(); ++i) {
    out << prefix << "_requests_total{code=\"" << kStatuses[i] << "\"} " << s.requests[i] << '\n';
  }
  header("connections_total", "counter", "Connections accepted and served.");
  out << prefix << "_connections_total " << s.connections << '\n';
  header("connections_open", "gauge", "Connections open now.");
  out << prefix << "_connections_open " << s.open << '\n';
  header("bytes_sent_total", "counter", "Response bytes written, headers included.");
  out << prefix << "_bytes_sent_total " << s.bytes_sent << '\n';
  return out.str();
}

}  // namespace serve
