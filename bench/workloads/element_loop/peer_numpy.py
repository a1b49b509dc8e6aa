import sys, time
import numpy as np
for _ in range(int(sys.argv[1])):
    x = np.random.default_rng(0).random(100000, dtype=np.float32)
    t0 = time.perf_counter()
    for i in range(100000):
        if x[i] > 0.5:
            x[i] *= 2.0
        else:
            x[i] += 1.0
    print(f"TIME {time.perf_counter() - t0}")
    print(f"CHECK {x.sum()}")
