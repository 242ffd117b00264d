import numpy as np, dualrev as dr, warnings
warnings.simplefilter("ignore")
h = lambda x: np.where(x > 0, np.sqrt(x), 0.0)
fc = dr.checkpoint(h)
x = np.array([0.0, 1.0])
print(dr.grad(lambda x: np.sum(h(x)))(x))
print(dr.grad(lambda x: np.sum(fc(x)))(x))
print(dr.jacfwd(lambda x: fc(x))(x))
print(dr.jacobian(lambda x: fc(x)*x[0])(x), dr.jacobian(lambda x: h(x)*x[0])(x))
