#pragma once

#include <openssl/evp.h>

#include <array>
#include <cstddef>
#include <span>

namespace hash {

using Digest = std::array<unsigned char, 32>;

/// OpenSSL's SHA-256 (EVP), one file's worth. Move-only.
class Sha256 {
 public:
  Sha256();
  Sha256(Sha256&& other) noexcept;
  Sha256& operator=(Sha256&&) = delete;
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  ~Sha256();

  void update(std::span<const std::byte> bytes);
  Digest finish();

 private:
  EVP_MD_CTX* ctx_;
};

}  // namespace hash
