import sys, time
import torch
torch.set_num_threads(2)
n = int(sys.argv[2]) if len(sys.argv) > 2 else 1024  # bench/run's `size` file
a = torch.rand(n, n); b = torch.rand(n, n)
for _ in range(int(sys.argv[1])):
    t0 = time.perf_counter()
    c = a @ b
    print(f"TIME {time.perf_counter() - t0}")
    print(f"CHECK {c[3, 5].item()}")
