import numpy as np, dualrev as dr, warnings
f = lambda x: np.sqrt(x) * 0 + np.sum(x)
fc = dr.checkpoint(lambda x: np.sqrt(x))
x = np.array([0.0, 1.0])
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    print(dr.grad(lambda x: np.sum(np.sqrt(x)))(x), [str(i.message)[:100] for i in w])
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    print(dr.grad(lambda x: np.sum(fc(x)))(x), [str(i.message)[:100] for i in w])
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    print(dr.grad(lambda x: np.sum(fc(x)*0))(x), [str(i.message)[:200] for i in w])
    print(dr.grad(lambda x: np.sum(np.sqrt(x)*0))(x), [str(i.message)[:200] for i in w])
import dualrev
g = dualrev.graph(lambda w: np.sum(fc(w)), np.array([1.0, 2.0]))
print(type(g))
