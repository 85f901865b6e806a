#include "sha256.hpp"

#include <new>
#include <stdexcept>
#include <string>
#include <utility>

namespace hash {
namespace {

// Fetched once: EVP_sha256() would look the implementation up again on
// every init (OpenSSL 3's implicit fetch).
const EVP_MD* sha256() {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md != nullptr ? md : EVP_sha256();
}

void check(int ok, const char* what) {
  if (ok != 1) {
    throw std::runtime_error(std::string("OpenSSL ") + what + " failed");
  }
}

}  // namespace

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  if (ctx_ == nullptr) {
    throw std::bad_alloc();
  }
  if (EVP_DigestInit_ex(ctx_, sha256(), nullptr) != 1) {
    EVP_MD_CTX_free(ctx_);
    throw std::runtime_error("OpenSSL EVP_DigestInit_ex(SHA256) failed");
  }
}

Sha256::Sha256(Sha256&& other) noexcept : ctx_(std::exchange(other.ctx_, nullptr)) {}

Sha256::~Sha256() { EVP_MD_CTX_free(ctx_); }

void Sha256::update(std::span<const std::byte> bytes) {
  check(EVP_DigestUpdate(ctx_, bytes.data(), bytes.size()), "EVP_DigestUpdate");
}

Digest Sha256::finish() {
  Digest d{};
  unsigned int length = 0;
  check(EVP_DigestFinal_ex(ctx_, d.data(), &length), "EVP_DigestFinal_ex");
  return d;
}

}  // namespace hash
