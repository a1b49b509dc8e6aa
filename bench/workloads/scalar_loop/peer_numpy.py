import sys, time
import numpy as np
for _ in range(int(sys.argv[1])):
    a = np.float32(0.5); b = np.float32(0.999); c = np.float32(0.5)
    t0 = time.perf_counter()
    for i in range(200000):
        a = a * b + c
    print(f"TIME {time.perf_counter() - t0}")
    print(f"CHECK {a}")
