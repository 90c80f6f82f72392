// Shim: HTTPClient over POSIX sockets (http:// only), so the library's own code talks to a real
// server on loopback in the e2e test.
#pragma once
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include "WiFiClient.h"

class HTTPClient {
 public:
  void setTimeout(int ms) { timeoutMs_ = ms; }
  bool begin(WiFiClient &client, const char *url) {
    if (client.secure() || strncmp(url, "http://", 7) != 0) return false;
    const char *host = url + 7;
    const char *slash = strchr(host, '/');
    const char *colon = strchr(host, ':');
    if (!slash) return false;
    size_t hostLen = (colon && colon < slash ? colon : slash) - host;
    if (hostLen >= sizeof host_) return false;
    memcpy(host_, host, hostLen);
    host_[hostLen] = 0;
    snprintf(port_, sizeof port_, "%d", colon && colon < slash ? atoi(colon + 1) : 80);
    snprintf(path_, sizeof path_, "%s", slash);
    headers_[0] = 0;
    return true;
  }
  void addHeader(const char *name, const char *value) {
    size_t n = strlen(headers_);
    snprintf(headers_ + n, sizeof headers_ - n, "%s: %s\r\n", name, value);
  }
  /** The HTTP status, or -1 when the server could not be reached. */
  int POST(uint8_t *body, size_t length) {
    struct addrinfo hints, *res = nullptr;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host_, port_, &hints, &res) != 0) return -1;
    int fd = socket(res->ai_family, res->ai_socktype, 0);
    struct timeval tv = {timeoutMs_ / 1000, (timeoutMs_ % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int ok = fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) == 0;
    freeaddrinfo(res);
    if (!ok) { if (fd >= 0) close(fd); return -1; }
    char head[1024];
    int n = snprintf(head, sizeof head, "POST %s HTTP/1.1\r\nHost: %s:%s\r\n%sContent-Length: %zu\r\nConnection: close\r\n\r\n", path_, host_, port_, headers_, length);
    if (write(fd, head, n) != n || write(fd, body, length) != (ssize_t)length) { close(fd); return -1; }
    char answer[64] = {0};
    ssize_t got = read(fd, answer, sizeof answer - 1);
    close(fd);
    int status = -1;
    if (got > 12) sscanf(answer, "HTTP/1.%*d %d", &status);
    return status;
  }
  void end() {}

 private:
  char host_[128] = "";
  char port_[8] = "";
  char path_[256] = "";
  char headers_[512] = "";
  int timeoutMs_ = 5000;
};
