import sys, time
import torch
torch.set_num_threads(2)
a = torch.rand(1024, 1024); b = torch.rand(1024, 1024)
for _ in range(int(sys.argv[1])):
    t0 = time.perf_counter()
    c = a @ b
    print(f"TIME {time.perf_counter() - t0}")
    print(f"CHECK {c[3, 5].item()}")
