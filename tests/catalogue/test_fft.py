"""numpy.fft: values equal NumPy's; JVPs and VJPs against finite differences in real
and imaginary directions, to second order; forward = reverse for real inputs."""

import numpy as np
import pytest

import dualrev as dr
from dualrev.testing import check_grads
from tests.helpers import fwd_rev_agree

rng = np.random.default_rng(14)
x = rng.standard_normal(8)
X = rng.standard_normal((4, 6))
z = x + 1j * rng.standard_normal(8)

CASES = {
    "fft_real": (np.fft.fft, (x,)),
    "fft_complex": (np.fft.fft, (z,)),
    "ifft": (np.fft.ifft, (z,)),
    "fft_n_pad": (lambda v: np.fft.fft(v, n=10), (x,)),
    "fft_n_crop_ortho": (lambda v: np.fft.fft(v, n=5, norm="ortho"), (z,)),
    "fft2": (np.fft.fft2, (X,)),
    "ifft2_forward": (lambda v: np.fft.ifft2(v, norm="forward"), (X + 0j,)),
    "fftn_axes": (lambda v: np.fft.fftn(v, axes=(0,)), (X,)),
    "ifftn": (np.fft.ifftn, (X + 1j,)),
    "fft_axis0": (lambda v: np.fft.fft(v, axis=0), (X,)),
    "rfft": (np.fft.rfft, (x,)),
    "rfft_odd": (np.fft.rfft, (x[:7],)),
    "rfft_ortho": (lambda v: np.fft.rfft(v, norm="ortho"), (x,)),
    "irfft": (np.fft.irfft, (np.fft.rfft(x),)),
    "irfft_odd": (lambda c: np.fft.irfft(c, n=7), (np.fft.rfft(x[:7]),)),
    "irfft_forward": (lambda c: np.fft.irfft(c, norm="forward"), (np.fft.rfft(x),)),
    "rfftn": (np.fft.rfftn, (X,)),
    "irfftn": (lambda c: np.fft.irfftn(c, s=(4, 6), axes=(0, 1)), (np.fft.rfftn(X),)),
    "filter_roundtrip": (lambda v: np.real(np.fft.ifft(np.fft.fft(v) * np.exp(-np.arange(8.0)))),
                         (x,)),
    "power_spectrum": (lambda v: np.abs(np.fft.rfft(v)) ** 2, (x,)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_fft(name):
    f, args = CASES[name]
    out, _ = dr.jvp(f, args, tuple(np.zeros_like(a) for a in args))
    np.testing.assert_allclose(out, f(*args), rtol=1e-12, atol=1e-12)
    check_grads(f, args, order=2, rtol=1e-6, atol=1e-7)
    if not np.iscomplexobj(args[0]) and not np.iscomplexobj(f(*args)):
        fwd_rev_agree(f, args, 0, rtol=1e-10, atol=1e-10)
    elif not np.iscomplexobj(args[0]):
        with pytest.raises(dr.DualrevError, match="real-valued outputs"):
            dr.jacrev(f)(*args)  # would see only the real part: refused


def test_parseval_gradient():
    # sum |fft(x)|^2 = n sum x^2, so its gradient is 2 n x
    g = dr.grad(lambda v: np.sum(np.abs(np.fft.fft(v)) ** 2))(x)
    np.testing.assert_allclose(g, 2 * x.size * x, rtol=1e-12)


@pytest.mark.parametrize("fft", [np.fft.fft, np.fft.ifft, np.fft.fftn, np.fft.fft2,
                                 np.fft.rfft, np.fft.irfft, np.fft.rfftn, np.fft.irfftn])
def test_fft_out_refused(fft):
    # out= was accepted and ignored
    x = np.ones((4, 4))
    with pytest.raises(dr.InPlaceError):
        dr.jvp(lambda v: fft(v, out=np.zeros((4, 4), complex)), (x,), (x,))
