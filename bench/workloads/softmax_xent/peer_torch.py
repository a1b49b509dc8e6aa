# nn.softmax + cross-entropy over a [4096, 1000] f32 batch, PyTorch eager.
import sys, time
import torch
torch.set_num_threads(2)
torch.manual_seed(0)
logits = torch.randn(4096, 1000)
labels = torch.nn.functional.one_hot(torch.randint(0, 1000, (4096,)), 1000).float()
for _ in range(int(sys.argv[1])):
    t0 = time.perf_counter()
    p = torch.softmax(logits, dim=-1)
    ce = -(labels * torch.log_softmax(logits, dim=-1)).sum(-1).mean()
    print(f"TIME {time.perf_counter() - t0}")
    print(f"CHECK {ce.item()}")
