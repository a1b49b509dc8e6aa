import sys, time
import torch
torch.set_num_threads(2)
x = torch.rand(1 << 24) - 0.5
for _ in range(int(sys.argv[1])):
    t0 = time.perf_counter()
    y = torch.relu(x * 1.5 + 0.25) * 0.5 + 2.0
    print(f"TIME {time.perf_counter() - t0}")
    print(f"CHECK {y[12345].item()}")
