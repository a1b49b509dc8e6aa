import sys, time
import numpy as np
n = int(sys.argv[2]) if len(sys.argv) > 2 else 1024  # bench/run's `size` file
rng = np.random.default_rng(0)
a = rng.random((n, n), dtype=np.float32); b = rng.random((n, n), dtype=np.float32)
for _ in range(int(sys.argv[1])):
    t0 = time.perf_counter()
    c = a @ b
    print(f"TIME {time.perf_counter() - t0}")
    print(f"CHECK {c[3, 5]}")
