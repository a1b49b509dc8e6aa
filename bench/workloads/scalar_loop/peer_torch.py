import sys, time
import torch
torch.set_num_threads(2)
for _ in range(int(sys.argv[1])):
    a = torch.tensor(0.5); b = torch.tensor(0.999)
    t0 = time.perf_counter()
    for i in range(200000):
        a = a * b + 0.5
    print(f"TIME {time.perf_counter() - t0}")
    print(f"CHECK {a.item()}")
