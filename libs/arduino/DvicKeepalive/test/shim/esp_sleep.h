#pragma once
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
/** Shim: deep sleep ends the process (a board would restart from setup()). */
inline void esp_sleep_enable_timer_wakeup(uint64_t us) { fprintf(stderr, "sleep %llu us\n", (unsigned long long)us); }
inline void esp_deep_sleep_start() { exit(0); }
