# The kmeans workload in NumPy (vectorized, the same algorithm and data).
import sys, time
import numpy as np
SP = 4.0  # cluster spacing (the noise is +-1.5)

def points(n):
    i = np.arange(n, dtype=np.int64)
    h1 = (i * i * 7919 + i * 104729 + 12345) % 1000003
    h2 = (i * i * 6151 + i * 15485863 + 777) % 1000033
    h3 = (i * 2654435761 % 4294967296) // 536870912
    cx = (h3 % 4).astype(np.float32) * np.float32(SP)
    cy = (h3 // 4).astype(np.float32) * np.float32(SP)
    dx = h1.astype(np.float32) / np.float32(1000003.0) * np.float32(3.0) - np.float32(1.5)
    dy = h2.astype(np.float32) / np.float32(1000033.0) * np.float32(3.0) - np.float32(1.5)
    return np.stack([cx + dx, cy + dy], axis=1)


def kmeans(x, init, tol):
    c = init
    moved = tol + 1
    steps = 0
    while moved > tol and steps < 500:
        d = ((x[:, None, :] - c[None, :, :]) ** 2).sum(axis=2)
        assign = np.eye(c.shape[0], dtype=np.float32)[d.argmin(axis=1)]
        counts = assign.sum(axis=0)
        nxt = (assign.T @ x) / np.maximum(counts, np.float32(1))[:, None]
        moved = np.abs(nxt - c).max()
        c = nxt
        steps += 1
    return c, steps


x = points(100000)
for _ in range(int(sys.argv[1])):
    t0 = time.perf_counter()
    c, steps = kmeans(x, x[16:24], np.float32(1e-4))
    print(f"TIME {time.perf_counter() - t0}")
    print(f"CHECK {steps} {c[:, 0].sum()} {c[:, 1].sum()}")
