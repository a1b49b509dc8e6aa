# 200 000 iterations of a = a * b + 0.5 on f32 scalar tensors, the loop compiled with torch.jit.script.
import sys, time
import torch
torch.set_num_threads(2)


@torch.jit.script
def loop(a, b, n: int):
    for i in range(n):
        a = a * b + 0.5
    return a


loop(torch.tensor(0.5), torch.tensor(0.999), 10)  # the profiling executor optimizes at the 2nd call
for _ in range(int(sys.argv[1])):
    a = torch.tensor(0.5); b = torch.tensor(0.999)
    t0 = time.perf_counter()
    a = loop(a, b, 200000)
    print(f"TIME {time.perf_counter() - t0}")
    print(f"CHECK {a.item()}")
