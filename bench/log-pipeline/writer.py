"""One demo writer for bench/log-pipeline: writes `count` lines through libs/python/dvic_log at
`rate` lines/s (0: as fast as it can). Each message carries its write time in ns."""
import sys
import time

sys.path.insert(0, sys.argv[1])
import dvic_log  # noqa: E402

demo, count, rate = sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
log = dvic_log.open(demo=demo, max_bytes=1 << 30)
start = time.time()
for i in range(count):
    log.info("t=%d seq=%d payload=camera frame processed in 12 ms" % (time.time_ns(), i))
    if rate and i % 50 == 49:
        ahead = (i + 1) / rate - (time.time() - start)
        if ahead > 0:
            time.sleep(ahead)
log.close()
