"""A NumPy physics model as a layer of a PyTorch network: a small network predicts each
pendulum's damping from a feature, the NumPy RK4 simulator (bridged by
``dualrev.to_torch``) integrates the pendulum, and Adam fits the network to observed
trajectories. ``torch.func.vmap`` runs the simulator once for the whole batch (by
``dualrev.vmap``); the backward pass is dualrev's reverse mode.

Checks printed: the loss falls, and the gradient PyTorch gets through the bridge equals
dualrev's own gradient of the same loss written in NumPy.

Needs PyTorch (``pip install 'dualrev[torch]'``)."""

import sys

import numpy as np
import torch

import dualrev as dr

G_OVER_L = 9.81


def simulate(damping, steps=40, h=0.05):
    """The angle of a damped pendulum from (1, 0), by RK4: shape (steps,)."""

    def rhs(y):
        return np.stack([y[1], -G_OVER_L * np.sin(y[0]) - damping * y[1]])

    y = np.array([1.0, 0.0]) + 0.0 * damping
    angles = []
    for _ in range(steps):
        a = rhs(y)
        b = rhs(y + h / 2 * a)
        c = rhs(y + h / 2 * b)
        d = rhs(y + h * c)
        y = y + h / 6 * (a + 2 * b + 2 * c + d)
        angles.append(y[0])
    return np.stack(angles)


def main(steps: int = 40) -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    features = np.linspace(-1.0, 1.0, 8)
    true_damping = 0.4 + 0.3 * features  # what the network must learn
    observed = np.stack([simulate(c, steps) for c in true_damping])
    observed += 1e-3 * rng.standard_normal(observed.shape)

    sim = dr.to_torch(lambda c: simulate(c, steps))
    net = torch.nn.Sequential(torch.nn.Linear(1, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    net = net.double()
    z = torch.tensor(features[:, None])
    target = torch.tensor(observed)
    opt = torch.optim.Adam(net.parameters(), lr=0.05)

    def loss_fn():
        damping = net(z)[:, 0]
        return torch.mean((torch.func.vmap(sim)(damping) - target) ** 2), damping

    losses = []
    for _ in range(60):
        opt.zero_grad()
        loss, _ = loss_fn()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    print(f"loss: {losses[0]:.3e} -> {losses[-1]:.3e} after {len(losses)} Adam steps")

    # the gradient with respect to the dampings, through the bridge and by dualrev alone
    loss, damping = loss_fn()
    (through_bridge,) = torch.autograd.grad(loss, damping)

    def numpy_loss(c):
        return np.mean((np.stack([simulate(ci, steps) for ci in c]) - observed) ** 2)

    direct = dr.grad(numpy_loss)(damping.detach().numpy())
    diff = float(np.max(np.abs(through_bridge.numpy() - direct)))
    print(f"bridge gradient vs dualrev: max difference {diff:.1e}")
    print("learned damping:", np.round(damping.detach().numpy(), 3))
    print("true damping:   ", np.round(true_damping, 3))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 40)
