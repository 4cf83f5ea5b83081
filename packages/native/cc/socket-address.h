// A socket address from (family, text, port) and back: inet and inet6 take a numeric address and a port, unix a path.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <string>

namespace ferry {

struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;

  sockaddr* sa() { return reinterpret_cast<sockaddr*>(&storage); }

  bool Parse(int family, const std::string& address, int port) {
    memset(&storage, 0, sizeof storage);
    if (family == AF_INET) {
      auto* in = reinterpret_cast<sockaddr_in*>(&storage);
      in->sin_family = AF_INET;
      in->sin_port = htons(static_cast<uint16_t>(port));
      if (inet_pton(AF_INET, address.c_str(), &in->sin_addr) != 1) return false;
      length = sizeof *in;
      return true;
    }
    if (family == AF_INET6) {
      auto* in6 = reinterpret_cast<sockaddr_in6*>(&storage);
      in6->sin6_family = AF_INET6;
      in6->sin6_port = htons(static_cast<uint16_t>(port));
      if (inet_pton(AF_INET6, address.c_str(), &in6->sin6_addr) != 1) return false;
      length = sizeof *in6;
      return true;
    }
    if (family == AF_UNIX) {
      auto* un = reinterpret_cast<sockaddr_un*>(&storage);
      if (address.empty() || address.size() >= sizeof un->sun_path) return false;
      un->sun_family = AF_UNIX;
      memcpy(un->sun_path, address.data(), address.size());
      length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size() + 1);
      return true;
    }
    return false;
  }

  // The address as text ("" for an unnamed unix socket) and the port (0 for unix).
  std::string Text(int* port) const {
    char buf[INET6_ADDRSTRLEN] = "";
    *port = 0;
    if (storage.ss_family == AF_INET) {
      auto* in = reinterpret_cast<const sockaddr_in*>(&storage);
      inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf);
      *port = ntohs(in->sin_port);
      return buf;
    }
    if (storage.ss_family == AF_INET6) {
      auto* in6 = reinterpret_cast<const sockaddr_in6*>(&storage);
      inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf);
      *port = ntohs(in6->sin6_port);
      return buf;
    }
    if (storage.ss_family == AF_UNIX) {
      auto* un = reinterpret_cast<const sockaddr_un*>(&storage);
      size_t max = length > offsetof(sockaddr_un, sun_path) ? length - offsetof(sockaddr_un, sun_path) : 0;
      return std::string(un->sun_path, strnlen(un->sun_path, max));
    }
    return "";
  }
};

}  // namespace ferry
