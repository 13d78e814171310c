"""Spike encoders and decoders: shapes, reproducibility, statistics, codes on known inputs, argument errors."""
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from braincore import encoding as E


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------------------------------------------
# shapes, dtypes, devices, reproducibility
# --------------------------------------------------------------------------------------------------------------
STOCHASTIC = {
    "rate": lambda x, g, **kw: E.rate(x, 7, generator=g, **kw),
    "poisson": lambda x, g, **kw: E.poisson(x, 7, dt=1.0, max_rate=500.0, generator=g, **kw),
    "population": lambda x, g, **kw: E.population(x, 4, 0.0, 1.0, 7, max_rate=500.0, generator=g, **kw),
}


@pytest.mark.parametrize("name", STOCHASTIC)
def test_stochastic_encoders_shape_dtype_and_seed(name):
    enc = STOCHASTIC[name]
    x = torch.rand(3, 5, generator=seeded(99))
    a = enc(x, seeded(1))
    expected_shape = (7, 3, 20) if name == "population" else (7, 3, 5)
    assert a.shape == expected_shape and a.dtype == torch.float32 and a.device == x.device
    assert set(a.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(a, enc(x, seeded(1)))            # same seed: the same train
    assert not torch.equal(a, enc(x, seeded(2)))        # another seed: another train (105-140 Bernoulli draws)
    assert enc(x, seeded(1), dtype=torch.float64).dtype == torch.float64
    assert torch.equal(enc(x, seeded(1), dtype=torch.bool), a.bool())
    # generator=None uses the global RNG, so torch.manual_seed reproduces it
    torch.manual_seed(123)
    b = enc(x, None)
    torch.manual_seed(123)
    assert torch.equal(b, enc(x, None))


def test_time_major_layout_for_any_input_shape():
    assert E.rate(0.5, 4).shape == (4,)
    assert E.poisson(torch.full((2, 3, 4), 0.5), 6).shape == (6, 2, 3, 4)
    assert E.latency(np.array([0.2, 0.9]), 5).shape == (5, 2)
    assert E.population(torch.zeros(3), 5, -1.0, 1.0, 8).shape == (8, 15)    # a single observation [D]
    assert E.delta(torch.zeros(6, 2, 3), 0.1).shape == (6, 2, 6)
    assert E.delta(torch.zeros(6, 2, 3), 0.1, off_spikes=False).shape == (6, 2, 3)


def test_integer_and_list_inputs_are_accepted():
    assert E.rate([[0, 1], [1, 0]], 3, generator=seeded(0)).shape == (3, 2, 2)
    spikes = E.rate(torch.tensor([0, 1]), 50, generator=seeded(0))
    assert spikes[:, 0].sum() == 0 and spikes[:, 1].sum() == 50            # p = 0 and p = 1 are exact


def test_rate_is_poisson_with_one_spike_probability_per_ms():
    x = torch.rand(4, 6, generator=seeded(5))
    assert torch.equal(E.rate(x, 30, generator=seeded(3)),
                       E.poisson(x, 30, dt=1.0, max_rate=1000.0, generator=seeded(3)))


def test_population_is_poisson_of_population_rates():
    x = torch.randn(5, 2, generator=seeded(0))
    r = E.population_rates(x, 6, -2.0, 2.0)
    assert torch.equal(E.population(x, 6, -2.0, 2.0, 40, max_rate=300.0, dt=0.5, generator=seeded(8)),
                       E.poisson(r, 40, max_rate=300.0, dt=0.5, generator=seeded(8)))


# --------------------------------------------------------------------------------------------------------------
# rate statistics
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dt,max_rate", [(1.0, 200.0), (0.5, 400.0), (0.1, 1000.0)])
def test_poisson_empirical_rate_matches(dt, max_rate):
    # Each step is Bernoulli(p), p = x max_rate dt / 1000, so the mean over T steps has standard error
    # sqrt(p (1 - p) / T). A 5-SE band is exceeded with probability 5.7e-7 per element (normal approximation,
    # accurate here since T p >= 200 for p > 0); the seed is fixed, so the test is deterministic anyway.
    x = torch.tensor([0.0, 0.05, 0.25, 0.5, 0.8, 1.0], dtype=torch.float64)
    T = 20000
    spikes = E.poisson(x, T, dt=dt, max_rate=max_rate, generator=seeded(2024))
    p = x * max_rate * dt / 1000.0
    p_hat = E.rate_decode(spikes).double()
    se = torch.sqrt(p * (1 - p) / T)
    assert torch.all((p_hat - p).abs() <= 5 * se), (p_hat, p, se)
    hz = p_hat * 1000.0 / dt
    assert torch.all((hz - x * max_rate).abs() <= 5 * se * 1000.0 / dt)
    assert p_hat[0] == 0.0                                 # x = 0 never fires


def test_rate_empirical_probability_matches():
    x = torch.linspace(0, 1, 11)
    T = 10000
    p_hat = E.rate_decode(E.rate(x.expand(2, 11), T, generator=seeded(7)))   # [2, 11], 2 T draws per value
    se = torch.sqrt(x * (1 - x) / T)
    assert torch.all((p_hat - x).abs() <= 5 * se + 1e-7)


def test_spike_trains_are_independent_over_time():
    # lag-1 autocorrelation of a Bernoulli train ~ N(0, 1/T): within 5 / sqrt(T)
    s = E.poisson(torch.full((1,), 0.5), 40000, max_rate=400.0, generator=seeded(11))[:, 0].double()
    s = s - s.mean()
    rho = (s[1:] * s[:-1]).mean() / (s * s).mean()
    assert abs(rho) < 5 / math.sqrt(len(s))


# --------------------------------------------------------------------------------------------------------------
# latency
# --------------------------------------------------------------------------------------------------------------
def test_latency_linear_mapping_on_the_grid():
    x = torch.linspace(0, 1, 11, dtype=torch.float64)
    spikes = E.latency(x, 11, linear=True, threshold=0.0)
    t = E.first_spike_time(spikes)
    assert t.tolist() == [11, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0]         # x = 0 is not above the threshold: none
    assert spikes.sum(0).tolist() == [0] + [1] * 10


def test_latency_log_mapping_matches_rc_formula():
    x = torch.tensor([1.0, 0.5, 0.2, 0.05, 0.02, 0.011, 0.0101], dtype=torch.float64)
    tau, theta, T = 40.0, 0.01, 60
    k = E.first_spike_time(E.latency(x, T, tau=tau, threshold=theta))
    expected = np.clip(np.floor(tau * np.log(x.numpy() / (x.numpy() - theta)) + 0.5), 0, T - 1)
    assert k.tolist() == expected.astype(int).tolist()
    assert k[-1] == T - 1                                    # t = 185 steps: clipped to the last step


def test_latency_normalized_log_mapping_spans_the_window():
    theta, eps, T = 0.01, 1e-3, 25
    k = E.first_spike_time(E.latency(torch.tensor([theta + eps, 1.0], dtype=torch.float64), T,
                                     threshold=theta, normalize=True, epsilon=eps))
    assert k.tolist() == [T - 1, 0]


@pytest.mark.parametrize("linear", [True, False])
def test_latency_larger_input_spikes_earlier(linear):
    x = torch.sort(torch.rand(200, generator=seeded(3), dtype=torch.float64)).values
    k = E.first_spike_time(E.latency(x, 101, linear=linear, tau=30.0, threshold=0.01))
    fires = x > 0.01
    assert torch.all(k[fires][1:] <= k[fires][:-1])        # non-increasing in x
    assert torch.all(k[~fires] == 101)
    if linear:                                           # distinct grid values give distinct steps
        xs = torch.arange(1, 101, dtype=torch.float64) / 100
        ks = E.first_spike_time(E.latency(xs, 101, linear=True))
        assert torch.all(ks[1:] < ks[:-1])


@settings(max_examples=60, deadline=None)
@given(x=arrays(np.float64, st.integers(1, 30), elements=st.floats(0.0, 1.0)),
       steps=st.integers(1, 40), linear=st.booleans(),
       threshold=st.sampled_from([0.01, 0.1, 0.5]), tau=st.floats(0.1, 100.0))
def test_latency_exactly_one_spike_above_threshold(x, steps, linear, threshold, tau):
    spikes = E.latency(torch.from_numpy(x), steps, linear=linear, threshold=threshold, tau=tau,
                       normalize=False)
    counts = spikes.sum(0).numpy()
    assert spikes.shape == (steps, len(x))
    np.testing.assert_array_equal(counts, (x > threshold).astype(np.float32))
    k = E.first_spike_time(spikes).numpy()
    order = np.argsort(x, kind="stable")
    assert np.all(np.diff(k[order][x[order] > threshold]) <= 0)


def test_latency_errors():
    with pytest.raises(ValueError, match=r"x must lie in \[0, 1\]"):
        E.latency(torch.tensor([0.5, 1.2]), 10)
    with pytest.raises(ValueError, match="threshold > 0"):
        E.latency(torch.tensor([0.5]), 10, threshold=0.0)
    with pytest.raises(ValueError, match=r"threshold must lie in \[0, 1\)"):
        E.latency(torch.tensor([0.5]), 10, threshold=1.0, linear=True)
    with pytest.raises(ValueError, match="tau must be a positive"):
        E.latency(torch.tensor([0.5]), 10, tau=0.0)
    with pytest.raises(ValueError, match="num_steps must be a positive integer"):
        E.latency(torch.tensor([0.5]), 0)


# --------------------------------------------------------------------------------------------------------------
# population
# --------------------------------------------------------------------------------------------------------------
def test_population_rates_centres_and_width():
    c = E.population_centres(5, [0.0, -1.0], [1.0, 3.0])
    torch.testing.assert_close(c, torch.tensor([[0.0, 0.25, 0.5, 0.75, 1.0], [-1.0, 0.0, 1.0, 2.0, 3.0]]))
    r = E.population_rates(torch.tensor([[0.25, 1.5]], dtype=torch.float64), 5, [0.0, -1.0], [1.0, 3.0])
    assert r.shape == (1, 10)
    # dimension 0 sits on centre 1; dimension 1 between centres 2 and 3; sigma = spacing / 1.5
    torch.testing.assert_close(r[0, 1], torch.tensor(1.0, dtype=torch.float64))
    torch.testing.assert_close(r[0, 7], torch.tensor(math.exp(-9 / 32), dtype=torch.float64))
    torch.testing.assert_close(r[0, 0], torch.tensor(math.exp(-0.25**2 / (2 * (0.25 / 1.5) ** 2)),
                                                     dtype=torch.float64))
    r2 = E.population_rates(torch.tensor([[0.25, 1.5]], dtype=torch.float64), 5, [0.0, -1.0], [1.0, 3.0],
                            sigma=[0.1, 2.0])
    torch.testing.assert_close(r2[0, 7], torch.tensor(math.exp(-0.25 / 8.0), dtype=torch.float64))


def test_population_clips_out_of_range_values_to_the_edges():
    lo, hi = torch.tensor([-1.0, 0.0]), torch.tensor([1.0, 10.0])
    x = torch.tensor([[-7.0, 11.0], [1.5, -0.1]])
    edge = torch.tensor([[-1.0, 10.0], [1.0, 0.0]])
    torch.testing.assert_close(E.population_rates(x, 7, lo, hi), E.population_rates(edge, 7, lo, hi))


@settings(max_examples=80, deadline=None)
@given(x=st.floats(-2.0, 5.0), m=st.integers(2, 12))
def test_population_rates_peak_at_the_nearest_centre(x, m):
    r = E.population_rates(torch.tensor([[x]], dtype=torch.float64), m, 0.0, 3.0)[0]
    c = E.population_centres(m, 0.0, 3.0, dtype=torch.float64)[0]
    assert torch.all((r >= 0) & (r <= 1))
    xc = min(max(x, 0.0), 3.0)
    dist = (c - xc).abs()
    assert dist[int(r.argmax())] <= dist.min() + 1e-12


def test_population_most_active_neuron_is_nearest_the_input():
    # Inputs 0.3 spacing from a centre: expected counts of the best and runner-up neurons differ by
    # T p_max (0.904 - 0.638) ~ 130 spikes, about 6 standard deviations of the difference.
    m, lo, hi = 9, -4.0, 4.0
    spacing = (hi - lo) / (m - 1)
    centres = torch.linspace(lo, hi, m)
    offsets = torch.tensor([-0.3, 0.0, 0.3])
    x = (centres[1:-1, None] + offsets * spacing).reshape(-1, 1)          # [21, 1]
    spikes = E.population(x, m, lo, hi, 1000, max_rate=500.0, generator=seeded(4))
    best = spikes.sum(0).argmax(-1)
    nearest = (x - centres).abs().argmin(-1)
    assert torch.equal(best, nearest)


def test_population_decode_recovers_the_input_within_half_a_spacing():
    # Interior: unbiased, spike noise ~ 0.03 spacing; edges: one-sided fields pull the estimate inwards by
    # <= 0.26 spacing. Both are well inside the half-spacing bound.
    m, D = 11, 3
    lo, hi = torch.tensor([-1.0, 0.0, -10.0]), torch.tensor([1.0, 5.0, 30.0])
    spacing = (hi - lo) / (m - 1)
    x = lo + (hi - lo) * torch.rand(200, D, generator=seeded(6))
    x[:3] = torch.stack([lo, hi, (lo + hi) / 2])                             # the edges and the middle
    spikes = E.population(x, m, lo, hi, 500, max_rate=500.0, generator=seeded(7))
    assert spikes.shape == (500, 200, D * m)
    est = E.population_decode(spikes, lo, hi, m)
    assert est.shape == (200, D)
    assert torch.all((est - x).abs() <= 0.5 * spacing), ((est - x).abs() / spacing).max()
    # deterministic intensities decode even closer in the interior
    r = E.population_rates(x, m, lo, hi)
    est_r = E.population_decode(r.unsqueeze(0), lo, hi, m)
    inner = ((x - lo) > 2 * spacing).all(-1) & ((hi - x) > 2 * spacing).all(-1)
    assert torch.all(((est_r - x).abs() / spacing)[inner] < 1e-3)


def test_population_decode_nan_without_spikes_and_shape_errors():
    est = E.population_decode(torch.zeros(5, 2, 8), 0.0, 1.0, 4)
    assert est.shape == (2, 2) and torch.isnan(est).all()
    with pytest.raises(ValueError, match="divisible by 3"):
        E.population_decode(torch.zeros(5, 2, 8), 0.0, 1.0, 3)
    with pytest.raises(ValueError, match=r"\[T, \.\.\., D \* num_neurons\]"):
        E.population_decode(torch.zeros(8), 0.0, 1.0, 4)


def test_population_errors():
    x = torch.zeros(4, 2)
    with pytest.raises(ValueError, match="low < high"):
        E.population(x, 5, [0.0, 1.0], [1.0, 1.0], 10)
    with pytest.raises(ValueError, match=r"shape \[2\]"):
        E.population(x, 5, [0.0, 0.0, 0.0], 1.0, 10)
    with pytest.raises(ValueError, match="num_neurons must be an integer >= 2"):
        E.population(x, 1, 0.0, 1.0, 10)
    with pytest.raises(ValueError, match="sigma must be > 0"):
        E.population_rates(x, 5, 0.0, 1.0, sigma=0.0)
    with pytest.raises(ValueError, match=r"\[\.\.\., D\]"):
        E.population_rates(torch.tensor(0.5), 5, 0.0, 1.0)
    with pytest.raises(ValueError, match="exceeds 1"):
        E.population(x, 5, 0.0, 1.0, 10, max_rate=100.0, dt=20.0)
    with pytest.raises(ValueError, match="NaN"):
        E.population(torch.tensor([[float("nan"), 0.0]]), 5, 0.0, 1.0, 10)


# --------------------------------------------------------------------------------------------------------------
# delta modulation
# --------------------------------------------------------------------------------------------------------------
def test_delta_on_a_ramp():
    x = torch.arange(9, dtype=torch.float64).view(9, 1, 1) * 0.25        # 0, 0.25, ..., 2.0
    s = E.delta(x, 0.5)
    assert s.shape == (9, 1, 2)
    assert s[:, 0, 0].tolist() == [0, 0, 1, 0, 1, 0, 1, 0, 1]          # every 0.5 of rise
    assert s[:, 0, 1].sum() == 0                                        # no OFF events


def test_delta_on_a_step_with_on_and_off_channels():
    up = torch.tensor([0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0])
    x = torch.stack([up, -up], dim=-1).unsqueeze(1)                      # [T=8, B=1, N=2]
    s = E.delta(x, 0.5)[:, 0]                                            # [T, 2N]: ON0, ON1, OFF0, OFF1
    on0, on1, off0, off1 = (s[:, i].nonzero().flatten().tolist() for i in range(4))
    assert (on0, off0) == ([3], [6])
    assert (on1, off1) == ([6], [3])
    assert torch.equal(E.delta(x, 0.5, off_spikes=False), E.delta(x, 0.5)[..., :2])


def test_delta_accumulates_slow_drift_and_ignores_the_first_sample():
    x = torch.tensor([5.0, 5.3, 5.6, 5.8, 6.0, 6.2, 5.9, 5.6]).view(8, 1, 1)
    s = E.delta(x, 0.5, dtype=torch.int64)[:, 0]
    assert s.dtype == torch.int64
    # ON at 5.6 (rise 0.6 from 5.0), reference 5.6; ON at 6.2 (rise 0.6 accumulated over 3 steps);
    # OFF at 5.6 (fall 0.6 from 6.2)
    assert s[:, 0].tolist() == [0, 0, 1, 0, 0, 1, 0, 0]
    assert s[:, 1].tolist() == [0, 0, 0, 0, 0, 0, 0, 1]


@settings(max_examples=40, deadline=None)
@given(x=arrays(np.float64, st.tuples(st.integers(1, 20), st.integers(1, 3), st.integers(1, 4)),
                elements=st.floats(-10, 10)),
       threshold=st.floats(0.05, 5.0))
def test_delta_properties(x, threshold):
    s = E.delta(torch.from_numpy(x), threshold)
    n = x.shape[-1]
    on, off = s[..., :n], s[..., n:]
    assert torch.all(s[0] == 0)
    assert torch.all(on * off == 0)                                      # never both at once
    assert torch.equal(E.delta(torch.from_numpy(x), threshold, off_spikes=False), on)
    # replaying the events reconstructs the signal to within one threshold after every event
    ref = x[0].copy()
    for k in range(1, x.shape[0]):
        fired = (on[k] + off[k]).numpy() > 0
        ref = np.where(fired, x[k], ref)
        assert np.all(np.abs(x[k] - ref) < threshold + 1e-12)


def test_delta_errors():
    with pytest.raises(ValueError, match=r"time series \[T, B, N\]"):
        E.delta(torch.zeros(5), 0.1)
    with pytest.raises(ValueError, match="threshold must be a positive"):
        E.delta(torch.zeros(5, 1, 1), 0.0)


# --------------------------------------------------------------------------------------------------------------
# decoders, rate-code errors
# --------------------------------------------------------------------------------------------------------------
def test_rate_decode_and_first_spike_time():
    s = torch.tensor([[0, 1, 0], [0, 0, 0], [1, 1, 0], [0, 1, 0]], dtype=torch.uint8)   # [T=4, N=3]
    torch.testing.assert_close(E.rate_decode(s), torch.tensor([0.25, 0.75, 0.0]))
    assert E.first_spike_time(s).tolist() == [2, 0, 4]
    assert E.first_spike_time(s).dtype == torch.int64
    assert E.rate_decode(s.double()).dtype == torch.float64
    with pytest.raises(ValueError, match=r"time-major \[T, \.\.\.\]"):
        E.first_spike_time(torch.tensor(1.0))


def test_rate_code_errors():
    x = torch.full((2, 2), 0.5)
    with pytest.raises(ValueError, match=r"x must lie in \[0, 1\].*got values in \[-0\.1, 0\.5\]"):
        E.poisson(torch.tensor([-0.1, 0.5]), 10)
    with pytest.raises(ValueError, match=r"x must lie in \[0, 1\]"):
        E.rate(torch.tensor([0.5, 1.0001]), 10)
    with pytest.raises(ValueError, match=r"= 1\.5 exceeds 1; expected <= 1"):
        E.poisson(x, 10, dt=1.5, max_rate=1000.0)
    E.poisson(x, 10, dt=1.0, max_rate=1000.0)                          # p_max = 1 exactly is allowed
    with pytest.raises(ValueError, match="dt must be a positive"):
        E.poisson(x, 10, dt=-1.0)
    with pytest.raises(ValueError, match="max_rate must be a positive"):
        E.poisson(x, 10, max_rate=0.0)
    with pytest.raises(ValueError, match="num_steps must be a positive integer, got 2.5"):
        E.rate(x, 2.5)
    with pytest.raises(ValueError, match="num_steps must be a positive integer, got True"):
        E.rate(x, True)
    with pytest.raises(ValueError, match="generator must be a torch.Generator"):
        E.rate(x, 3, generator=0)
    with pytest.raises(ValueError, match="NaN"):
        E.rate(torch.tensor([float("nan")]), 3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_outputs_follow_the_input_device():
    x = torch.rand(2, 3, device="cuda")
    g = torch.Generator(device="cuda").manual_seed(0)
    assert E.poisson(x, 5, generator=g).device == x.device
    assert E.latency(x, 5).device == x.device
    assert E.population(x, 4, 0.0, 1.0, 5).device == x.device
    assert E.delta(x.unsqueeze(0).expand(4, 2, 3), 0.1).device == x.device
    with pytest.raises(ValueError, match="generator is on cpu"):
        E.poisson(x, 5, generator=seeded(0))
