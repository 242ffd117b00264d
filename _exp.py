import numpy as np, dualrev as dr, tracemalloc, time
def rhs(x, F):
    return (np.roll(x, -1) - np.roll(x, 2)) * np.roll(x, 1) - x + F
def step(x, F, dt=0.01):
    k1 = rhs(x, F); k2 = rhs(x + dt/2*k1, F); k3 = rhs(x + dt/2*k2, F); k4 = rhs(x + dt*k3, F)
    return x + dt/6*(k1 + 2*k2 + 2*k3 + k4)
x0 = 8.0 + np.sin(np.arange(64.0))
def peak(n, sch, **kw):
    loss = lambda F: np.sum(dr.checkpoint_loop(step, x0, n, F, schedule=sch, **kw)**2)
    dr.grad(loss)(8.0)
    tracemalloc.start(); t=time.perf_counter()
    g = dr.grad(loss)(8.0)
    t=time.perf_counter()-t
    p = tracemalloc.get_traced_memory()[1]; tracemalloc.stop()
    return p, t, g
for n in (30, 300):
    for sch in ("store_all", "revolve", "segments"):
        p,t,g = peak(n, sch)
        print(n, sch, p, round(t,3), g)
