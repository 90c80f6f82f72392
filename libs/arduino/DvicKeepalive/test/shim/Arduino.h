// A thin stand-in for the Arduino core on Linux: enough to compile and run DvicKeepalive and its
// examples with g++ (test only; the real boards use their own core).
#pragma once
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

inline uint32_t millis() {
  static struct timespec start = {0, 0};
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  if (start.tv_sec == 0 && start.tv_nsec == 0) start = now;
  return (uint32_t)((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000);
}
inline void delay(uint32_t ms) { usleep(ms * 1000); }
inline long random(long max) { return max > 0 ? rand() % max : 0; }
inline int analogRead(int) { return 512; }

struct EspClass {
  uint32_t getFreeHeap() { return 180000; }
};
static EspClass ESP;
