"""dualrev.to_torch: a NumPy function differentiated by dualrev inside PyTorch, checked
against torch's own autograd of the same function written in torch, dualrev's transforms,
finite differences (gradcheck) and torch.func."""

import numpy as np
import pytest

import dualrev as dr
from dualrev.errors import DualrevError
from tests.extras import need

pytestmark = pytest.mark.extras

torch = need("torch")


def model(x, y):
    """Two outputs, both inputs used nonlinearly."""
    return np.sin(x) * np.exp(y[:3]) + np.sum(y ** 2), np.tanh(x @ y[:3])


def model_torch(x, y):
    return torch.sin(x) * torch.exp(y[:3]) + torch.sum(y ** 2), torch.tanh(x @ y[:3])


def scalar(x):
    return np.sum(np.sin(x) ** 3) + np.prod(x[:2])


def scalar_torch(x):
    return torch.sum(torch.sin(x) ** 3) + torch.prod(x[:2])


def tensors(*shapes, seed=0, grad=True):
    rng = np.random.default_rng(seed)
    return [torch.tensor(rng.normal(size=s), requires_grad=grad) for s in shapes]


def test_gradcheck_gradgradcheck_and_forward_ad():
    g = dr.to_torch(model)
    x, y = tensors(3, 4)
    assert torch.autograd.gradcheck(g, (x, y), check_forward_ad=True,
                                    check_batched_grad=False)
    assert torch.autograd.gradgradcheck(g, (x, y))


def test_backward_equals_torch_autograd_and_runs_f_once():
    calls = []

    def counted(x, y):
        calls.append(1)
        return model(x, y)

    g = dr.to_torch(counted)
    x, y = tensors(3, 4, seed=1)
    a, b = g(x, y)
    loss = torch.sum(a ** 2) + b
    loss.backward()
    assert len(calls) == 1  # the backward replays the tape recorded by the forward
    calls.clear()
    gx = torch.func.grad(lambda x, y: torch.sum(g(x, y)[0]))(x.detach(), y.detach())
    assert len(calls) == 1  # under torch.func too (its backward runs with create_graph)
    np.testing.assert_allclose(gx.numpy(), np.cos(x.detach().numpy()) * np.exp(
        y.detach().numpy()[:3]), rtol=1e-13)
    x2, y2 = (t.detach().clone().requires_grad_() for t in (x, y))
    a2, b2 = model_torch(x2, y2)
    (torch.sum(a2 ** 2) + b2).backward()
    torch.testing.assert_close(x.grad, x2.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(y.grad, y2.grad, rtol=1e-12, atol=1e-12)


def test_double_backward_equals_torch():
    g = dr.to_torch(scalar)
    (x,) = tensors(4, seed=2)
    (gx,) = torch.autograd.grad(g(x), x, create_graph=True)
    (hv,) = torch.autograd.grad(gx @ torch.arange(4.0, dtype=torch.float64), x)
    x2 = x.detach().clone().requires_grad_()
    (gx2,) = torch.autograd.grad(scalar_torch(x2), x2, create_graph=True)
    (hv2,) = torch.autograd.grad(gx2 @ torch.arange(4.0, dtype=torch.float64), x2)
    torch.testing.assert_close(gx, gx2, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(hv, hv2, rtol=1e-12, atol=1e-12)


def test_torch_func_transforms_against_dualrev():
    g = dr.to_torch(scalar)
    (x,) = tensors(4, seed=3, grad=False)
    xn = x.numpy()
    np.testing.assert_allclose(torch.func.grad(g)(x).numpy(), dr.grad(scalar)(xn), rtol=1e-13)
    np.testing.assert_allclose(torch.func.hessian(g)(x).numpy(), dr.hessian(scalar)(xn),
                               rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(torch.func.jacrev(torch.func.jacrev(g))(x).numpy(),
                               dr.hessian(scalar)(xn), rtol=1e-12, atol=1e-14)
    m = dr.to_torch(model)
    (y,) = tensors(4, seed=4, grad=False)
    for jac in (torch.func.jacrev, torch.func.jacfwd):
        j0, j1 = jac(m, argnums=(0, 1))(x[:3], y)
        r0, r1 = dr.jacobian(model, argnums=(0, 1))(xn[:3], y.numpy())
        for a, b in zip(j0 + j1, r0 + r1, strict=True):
            np.testing.assert_allclose(a.numpy(), b, rtol=1e-12, atol=1e-14)
    out, tangent = torch.func.jvp(g, (x,), (torch.ones(4, dtype=torch.float64),))
    np.testing.assert_allclose(tangent.item(), dr.jvp(scalar, (xn,), (np.ones(4),))[1],
                               rtol=1e-13)


def test_vmap_and_per_example_gradients():
    calls = []

    def counted(x):
        calls.append(1)
        return scalar(x)

    g = dr.to_torch(counted)
    xs = torch.tensor(np.random.default_rng(5).normal(size=(6, 4)))
    out = torch.func.vmap(g)(xs)
    assert len(calls) == 1  # one dualrev.vmap call for the batch, not six
    np.testing.assert_allclose(out.numpy(), [scalar(r) for r in xs.numpy()], rtol=1e-13)
    per_example = torch.func.vmap(torch.func.grad(g))(xs)
    np.testing.assert_allclose(per_example.numpy(), dr.vmap(dr.grad(scalar))(xs.numpy()),
                               rtol=1e-13)
    # in_dims with an unmapped argument, and a gradient through vmap
    m = dr.to_torch(model)
    ys = xs.clone().requires_grad_()
    a, b = torch.func.vmap(m, in_dims=(None, 0))(xs[0, :3], ys)
    (b.sum() + a.sum()).backward()
    ref = dr.grad(lambda Y: sum(np.sum(model(xs[0, :3].numpy(), y)[0]) + model(
        xs[0, :3].numpy(), y)[1] for y in Y))(xs.numpy())
    np.testing.assert_allclose(ys.grad.numpy(), ref, rtol=1e-12)


def test_pytrees_constants_and_requires_grad_false():
    def f(p, data, scale=1.0, kind="sum"):
        assert isinstance(data["i"], np.ndarray) and data["i"].dtype.kind == "i"
        r = scale * np.sin(p["w"] * data["x"][data["i"]]) + p["b"]
        return {"total": np.sum(r) if kind == "sum" else np.max(r), "r": r}

    g = dr.to_torch(f)
    w, b = tensors(3, (), seed=6)
    xd = torch.tensor([0.5, 1.0, 2.0, 3.0], dtype=torch.float64)  # requires_grad=False
    idx = torch.tensor([3, 0, 2])
    out = g({"w": w, "b": b}, {"x": xd, "i": idx}, scale=2.0)
    assert set(out) == {"total", "r"} and out["r"].shape == (3,)
    out["total"].backward()
    assert xd.grad is None
    wn, xn = w.detach().numpy(), xd.numpy()[[3, 0, 2]]
    np.testing.assert_allclose(w.grad.numpy(), 2.0 * np.cos(wn * xn) * xn, rtol=1e-13)
    assert b.grad.item() == pytest.approx(3.0)
    # the data tensor differentiated too, when it asks for it
    xd.requires_grad_()
    g({"w": w, "b": b}, {"x": xd, "i": idx})["total"].backward()
    expected = np.zeros(4)
    expected[[3, 0, 2]] = np.cos(wn * xn) * wn
    np.testing.assert_allclose(xd.grad.numpy(), expected, rtol=1e-13)


def test_float32_in_float32_out():
    g = dr.to_torch(lambda x: np.sin(x) * np.float64(2.0))  # NumPy computes in float64
    x = torch.tensor([0.5, 1.5], dtype=torch.float32, requires_grad=True)
    y = g(x)
    assert y.dtype == torch.float32
    y.sum().backward()
    assert x.grad.dtype == torch.float32
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.cos([0.5, 1.5]), rtol=1e-6)
    # mixed precisions promote as torch does
    h = dr.to_torch(lambda a, b: a * b)
    out = h(x, torch.tensor([1.0, 2.0], dtype=torch.float64))
    assert out.dtype == torch.float64


def test_complex_follows_torch_convention():
    def f(z):
        return np.sum(np.abs(np.sin(z) * z) ** 2)

    def f_torch(z):
        return torch.sum(torch.abs(torch.sin(z) * z) ** 2)

    rng = np.random.default_rng(7)
    z = torch.tensor(rng.normal(size=3) + 1j * rng.normal(size=3), requires_grad=True)
    dr.to_torch(f)(z).backward()
    z2 = z.detach().clone().requires_grad_()
    f_torch(z2).backward()
    torch.testing.assert_close(z.grad, z2.grad, rtol=1e-12, atol=1e-12)
    # a complex output, with a complex cotangent, through a holomorphic map
    w = z.detach().clone().requires_grad_()
    w2 = z.detach().clone().requires_grad_()
    ct = torch.tensor(rng.normal(size=3) + 1j * rng.normal(size=3))
    dr.to_torch(lambda z: np.exp(z) * z)(w).backward(ct)
    (torch.exp(w2) * w2).backward(ct)
    torch.testing.assert_close(w.grad, w2.grad, rtol=1e-12, atol=1e-12)
    # non-holomorphic maps, complex to complex and complex to real: gradcheck's complex
    # mode (Wirtinger), forward mode and double backward
    for fn in (lambda z: np.exp(z) * np.conj(z), lambda z: np.sum(np.real(z * z))):
        g = dr.to_torch(fn)
        assert torch.autograd.gradcheck(g, (w,), check_forward_ad=True,
                                        check_batched_grad=False)
        assert torch.autograd.gradgradcheck(g, (w,))


def test_outputs_do_not_share_memory_and_no_grad_mode():
    g = dr.to_torch(lambda x: x)
    x = torch.ones(3, dtype=torch.float64)
    y = g(x)
    y[0] = 5.0
    assert x[0].item() == 1.0
    with torch.no_grad():
        (w,) = tensors(3, seed=8)
        out = dr.to_torch(scalar)(w)
    assert not out.requires_grad
    assert out.item() == pytest.approx(scalar(w.detach().numpy()), rel=1e-14)


def test_refusals_name_the_construct():
    g = dr.to_torch(lambda x, i: np.sum(x[i]))
    xs = torch.ones(4, 3, dtype=torch.float64)
    with pytest.raises(DualrevError, match="integer tensor"):
        torch.func.vmap(g)(xs, torch.zeros(4, dtype=torch.int64))
    h = dr.to_torch(lambda a, b: a + b)
    with pytest.raises(DualrevError, match="different devices"):
        h(torch.ones(2, dtype=torch.float64), torch.ones(2, device="meta"))


def test_training_loop_loss_decreases_and_gradients_equal_dualrev():
    """An RK4-integrated ODE in NumPy with parameters fitted by torch's SGD."""

    def decay(p, steps=20, h=0.1):
        y, ys = np.array([1.0, 0.0]) + 0.0 * p[0], []
        for _ in range(steps):
            def rhs(y):
                return np.stack([y[1], -p[0] * y[0] - p[1] * y[1]])
            a = rhs(y)
            b = rhs(y + h / 2 * a)
            c = rhs(y + h / 2 * b)
            d = rhs(y + h * c)
            y = y + h / 6 * (a + 2 * b + 2 * c + d)
            ys.append(y[0])
        return np.stack(ys)

    target = decay(np.array([2.0, 0.5]))
    sim = dr.to_torch(decay)
    p = torch.tensor([1.0, 0.1], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([p], lr=0.1)
    losses = []
    for _ in range(25):
        opt.zero_grad()
        loss = torch.mean((sim(p) - torch.tensor(target)) ** 2)
        loss.backward()
        direct = dr.grad(lambda q: np.mean((decay(q) - target) ** 2))(p.detach().numpy())
        np.testing.assert_allclose(p.grad.numpy(), direct, rtol=1e-12, atol=1e-15)
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 10


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precisions_come_back_in_their_dtype(dtype):
    """bfloat16 has no NumPy dtype: the function sees float32; both come back as given."""
    dt = getattr(torch, dtype)
    g = dr.to_torch(lambda x: np.sin(x) * 2.0)
    x = torch.tensor([0.5, 1.0], dtype=dt, requires_grad=True)
    y = g(x)
    y.sum().backward()
    assert y.dtype == dt and x.grad.dtype == dt
    np.testing.assert_allclose(x.grad.float().numpy(), 2 * np.cos([0.5, 1.0]), rtol=1e-2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_tensors_come_back_on_their_device():
    """The NumPy model runs on the host (a copy each way); outputs and gradients are on
    the input's device."""
    g = dr.to_torch(lambda x: np.sum(np.sin(x) ** 2))
    x = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64, device="cuda", requires_grad=True)
    y = g(x)
    assert y.device == x.device
    y.backward()
    assert x.grad.device == x.device
    np.testing.assert_allclose(x.grad.cpu().numpy(), np.sin(2 * np.array([0.5, 1.0, 2.0])),
                               rtol=1e-13)
    np.testing.assert_allclose(torch.func.vmap(torch.func.grad(g))(
        torch.stack([x.detach(), 2 * x.detach()])).cpu().numpy()[1],
        np.sin(4 * np.array([0.5, 1.0, 2.0])), rtol=1e-13)


def test_torch_compile_breaks_the_graph_at_the_bridge():
    """Dynamo would trace into the NumPy code and fail: the bridge runs eagerly inside a
    compiled function, with its derivative."""
    g = dr.to_torch(lambda x: np.sum(np.sin(x) ** 2))
    x = torch.tensor([0.5, 1.0], dtype=torch.float64, requires_grad=True)
    h = torch.compile(lambda x: g(x) * torch.cos(x).sum(), backend="eager")
    y = h(x)
    y.backward()
    xn = np.array([0.5, 1.0])
    expected = np.sin(2 * xn) * np.cos(xn).sum() - np.sum(np.sin(xn) ** 2) * np.sin(xn)
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-13)


def test_scipy_solve_ivp_model():
    """A SciPy ODE solve (dualrev's solve_ivp: variational equations) as a torch op:
    finite differences (gradcheck) and torch.func.jacrev against dualrev.jacobian."""
    import scipy.integrate as si

    def decay(k):
        sol = si.solve_ivp(lambda t, y: -k[0] * y + k[1] * np.sin(t), (0.0, 2.0),
                           np.array([1.0]), t_eval=np.linspace(0.5, 2.0, 4), rtol=1e-10,
                           atol=1e-12)
        return sol.y[0]

    g = dr.to_torch(decay)
    k = torch.tensor([0.7, 0.3], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(g, (k,), atol=1e-6, check_batched_grad=False)
    np.testing.assert_allclose(torch.func.jacrev(g)(k.detach()).numpy(),
                               dr.jacobian(decay)(k.detach().numpy()), rtol=1e-10)


def test_a_function_writing_into_its_argument_leaves_the_tensor_alone():
    def f(x):
        x *= 2.0  # in place, on the NumPy side
        return np.sum(x ** 2)

    g = dr.to_torch(f)
    for grad in (False, True):
        x = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=grad)
        y = g(x)
        assert y.item() == pytest.approx(20.0)
        assert x.detach().numpy().tolist() == [1.0, 2.0]
        if grad:
            y.backward()
            np.testing.assert_allclose(x.grad.numpy(), 8.0 * np.array([1.0, 2.0]), rtol=1e-14)


def test_vmap_of_a_value_dependent_branch_loops():
    """dualrev.vmap refuses an `if` on a batched value; the bridge's vmap rule then calls
    f per element (torch.func.vmap needs no rewrite of the model)."""

    def f(x):
        if np.sum(x) > 0:
            return np.sum(np.sin(x) ** 2)
        return np.sum(x ** 3)

    def f_torch(x):
        return torch.where(x.sum() > 0, torch.sum(torch.sin(x) ** 2), torch.sum(x ** 3))

    xs = torch.tensor(np.random.default_rng(9).normal(size=(6, 3)))
    assert (xs.sum(1) > 0).any() and (xs.sum(1) < 0).any()
    g = dr.to_torch(f)
    torch.testing.assert_close(torch.func.vmap(torch.func.grad(g))(xs),
                               torch.func.vmap(torch.func.grad(f_torch))(xs))
    torch.testing.assert_close(torch.func.vmap(g, in_dims=1)(xs.T),
                               torch.func.vmap(f_torch)(xs))


def test_nested_vmaps_and_vmap_of_mixed_second_derivatives():
    def f(x, y):
        return np.sum(np.sin(x) * y ** 2)

    g = dr.to_torch(f)
    xs = torch.tensor(np.random.default_rng(11).normal(size=(4, 5, 3)))
    y = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    out = torch.func.vmap(torch.func.vmap(g, (0, None)), (0, None))(xs, y)
    np.testing.assert_allclose(out.numpy(), np.sum(np.sin(xs.numpy()) * y.numpy() ** 2, -1),
                               rtol=1e-14)
    second = torch.func.jacfwd(torch.func.jacrev(g, argnums=(0, 1)), argnums=0)
    jx, jy = torch.func.vmap(second, (0, None))(xs[0], y)
    for i in range(5):
        hx, hy = dr.jacfwd(dr.jacrev(f, argnums=(0, 1)), argnums=0)(xs[0, i].numpy(),
                                                                    y.numpy())
        np.testing.assert_allclose(jx[i].numpy(), hx, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(jy[i].numpy(), hy, rtol=1e-13, atol=1e-15)


def test_integer_outputs_pass_through_without_derivative():
    """An argmax beside the differentiable outputs: returned as an integer tensor, marked
    non-differentiable; the floating outputs' derivatives in every mode."""
    g = dr.to_torch(lambda x: (np.sum(x ** 2), np.argmax(x), x * 3.0))
    x = torch.tensor([1.0, 3.0, 2.0], dtype=torch.float64, requires_grad=True)
    a, i, b = g(x)
    assert i.dtype == torch.int64 and i.item() == 1 and not i.requires_grad
    (a + b.sum()).backward()
    np.testing.assert_allclose(x.grad.numpy(), [5.0, 9.0, 7.0], rtol=1e-15)
    floats = lambda x: (g(x)[0], g(x)[2])  # noqa: E731
    assert torch.autograd.gradcheck(floats, (x,), check_forward_ad=True,
                                    check_batched_grad=False)
    assert torch.autograd.gradgradcheck(floats, (x,))
    np.testing.assert_allclose(torch.func.hessian(lambda x: g(x)[0])(x.detach()).numpy(),
                               2 * np.eye(3), rtol=1e-15)
    assert torch.func.vmap(lambda x: g(x)[1])(
        torch.eye(3, dtype=torch.float64)).tolist() == [0, 1, 2]
    only = dr.to_torch(lambda x: np.floor(x).astype(np.int64))(x)
    assert only.tolist() == [1, 3, 2] and not only.requires_grad
