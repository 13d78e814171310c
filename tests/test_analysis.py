"""braincore.analysis against closed forms: Poisson, gamma and periodic trains, (a)synchronous populations, the
LIF diffusion theory (deterministic limit, Monte Carlo, Brunel 2000 Table 1)."""
import math

import numpy as np
import pytest

from braincore import analysis as A


def renewal_trains(n_neurons: int, rate_hz: float, duration_ms: float, shape: float = 1.0, seed: int = 0):
    """Gamma renewal trains of ``shape`` k (k = 1: Poisson) at ``rate_hz``: ISI CV = 1/sqrt(k)."""
    rng = np.random.default_rng(seed)
    mean_isi = 1000.0 / rate_hz
    n_draw = int(duration_ms / mean_isi * 1.5 + 10 * math.sqrt(duration_ms / mean_isi) + 20)
    isi = rng.gamma(shape, mean_isi / shape, size=(n_neurons, n_draw))
    t = np.cumsum(isi, axis=1)
    assert (t[:, -1] > duration_ms).all()
    neuron = np.broadcast_to(np.arange(n_neurons)[:, None], t.shape)
    keep = t < duration_ms
    return t[keep], neuron[keep]


# ------------------------------------------------------------------------------------------ rates
def test_mean_and_per_neuron_rates_count_spikes():
    times = np.array([1.0, 5.0, 7.0, 9.0, 900.0])
    neurons = np.array([0, 0, 2, 2, 2])
    assert A.mean_rate(times, 4, 1000.0) == pytest.approx(5 / 4)          # 5 spikes, 4 neurons, 1 s
    np.testing.assert_allclose(A.firing_rates(neurons, 4, 500.0), [4.0, 0.0, 6.0, 0.0])


def test_population_rate_bins_whole_bins_and_converts_to_hz():
    times = np.array([0.0, 0.4, 0.99, 1.0, 2.5, 3.2])
    t, rate = A.population_rate(times, n_neurons=10, duration=3.5, bin_ms=1.0)   # 3 whole bins; 3.2 dropped
    np.testing.assert_allclose(t, [0.0, 1.0, 2.0])
    np.testing.assert_allclose(rate, np.array([3, 1, 1]) / (10 * 1e-3))


def test_population_rate_of_poisson_population_averages_to_its_rate():
    # 500 neurons at 20 Hz for 5 s: 50,000 spikes, relative s.d. of the mean 1/sqrt(50000) = 0.45 %
    times, _ = renewal_trains(500, 20.0, 5000.0, seed=1)
    _, rate = A.population_rate(times, 500, 5000.0, bin_ms=5.0)
    assert rate.mean() == pytest.approx(20.0, rel=0.025)


def test_spikes_of_selects_trial_and_window_and_shifts_time():
    data = {"t": np.array([5.0, 50.0, 60.0, 150.0, 70.0]), "neuron": np.array([0, 1, 2, 3, 4]),
            "trial": np.array([0, 0, 0, 0, 1])}
    t, n = A.spikes_of(data, trial=0, t_start=50.0, t_stop=150.0)
    np.testing.assert_allclose(t, [0.0, 10.0])
    np.testing.assert_array_equal(n, [1, 2])


# ------------------------------------------------------------------------------------------ ISI CV
def test_poisson_trains_have_cv_one():
    # 200 neurons x ~2000 intervals. For exponential intervals the CV estimate has s.d. 1/sqrt(n) (delta method:
    # Var = (c^4 - c^3 skew + c^2 (kurt - 1)/4) / n = (1 - 2 + 2) / n) and a bias of order 1/n, so each neuron is
    # within 5/sqrt(n) of 1, and the mean of 200 within 5/sqrt(200 n) + 1/n.
    times, neurons = renewal_trains(200, 50.0, 40_000.0, seed=2)
    cv, mean = A.isi_cv(times, neurons, 200)
    n = np.bincount(neurons, minlength=200) - 1
    assert np.all(np.abs(cv - 1.0) < 5.0 / np.sqrt(n))
    assert abs(mean - 1.0) < 5.0 / math.sqrt(n.sum()) + 1.0 / n.min()


def test_gamma_trains_have_cv_one_over_sqrt_shape():
    # shape 4: CV = 0.5; the estimate's s.d. is below 1/sqrt(n) (thinner tails than the exponential)
    times, neurons = renewal_trains(100, 40.0, 50_000.0, shape=4.0, seed=3)
    _, mean = A.isi_cv(times, neurons, 100)
    assert mean == pytest.approx(0.5, abs=5.0 / math.sqrt(len(times)) + 0.002)


def test_regular_trains_have_cv_zero_whatever_their_period_and_phase():
    times, neurons = [], []
    for i, period in enumerate([3.7, 10.0, 25.0, 101.3]):
        t = i * 0.9 + period * np.arange(int(2000 / period))
        times.append(t)
        neurons.append(np.full(t.size, i))
    times, neurons = np.concatenate(times), np.concatenate(neurons)
    order = np.random.default_rng(0).permutation(times.size)          # unsorted input
    cv, mean = A.isi_cv(times[order], neurons[order], 4)
    np.testing.assert_allclose(cv, 0.0, atol=1e-9)
    assert mean == pytest.approx(0.0, abs=1e-9)


def test_isi_cv_skips_neurons_with_too_few_spikes():
    times = np.array([0.0, 10.0, 30.0, 5.0, 7.0, 1.0])
    neurons = np.array([0, 0, 0, 1, 1, 3])
    cv, mean = A.isi_cv(times, neurons, 4, min_spikes=3)
    assert cv[0] == pytest.approx(np.std([10.0, 20.0]) / 15.0)
    assert np.isnan(cv[1:]).all()
    assert mean == pytest.approx(cv[0])
    cv2, _ = A.isi_cv(times, neurons, 4, min_spikes=3, ddof=1)
    assert cv2[0] == pytest.approx(np.std([10.0, 20.0], ddof=1) / 15.0)
    assert np.isnan(A.isi_cv([], [], 3)[1])


def test_bad_indices_and_lengths_are_refused():
    with pytest.raises(ValueError, match="differ in length"):
        A.isi_cv([1.0, 2.0], [0], 1)
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        A.isi_cv([1.0, 2.0], [0, 2], 2)
    with pytest.raises(ValueError, match="min_spikes"):
        A.isi_cv([1.0], [0], 1, min_spikes=1)


# ------------------------------------------------------------------------------------------ synchrony
def test_identical_trains_give_chi_one_and_fano_n():
    # every neuron fires the same Poisson train: the population average *is* each neuron's signal
    t, _ = renewal_trains(1, 30.0, 10_000.0, seed=4)
    n = 50
    times, neurons = np.repeat(t, n), np.tile(np.arange(n), t.size)
    assert A.synchrony_chi(times, neurons, n, 10_000.0, bin_ms=2.0) == pytest.approx(1.0, abs=1e-9)
    # population count = n c_b: Var / mean = n Var[c] / E[c] = n (1 - p) for <= 1 spike per bin of probability p
    p = t.size * 2.0 / 10_000.0
    assert A.population_fano(times, 10_000.0, bin_ms=2.0) == pytest.approx(n * (1 - p), rel=0.05)


def test_independent_poisson_gives_chi_one_over_sqrt_n():
    # chi^2 = 1/N in expectation; over 10,000 bins the variance ratio is known to ~sqrt(2/10000) = 1.4 %, so
    # chi sqrt(N) is 1 within a few per cent (10 % allowed)
    n = 400
    times, neurons = renewal_trains(n, 20.0, 10_000.0, seed=5)
    chi = A.synchrony_chi(times, neurons, n, 10_000.0, bin_ms=1.0)
    assert chi * math.sqrt(n) == pytest.approx(1.0, abs=0.1)
    assert A.population_fano(times, 10_000.0, bin_ms=1.0) == pytest.approx(1.0, abs=0.1)


def test_chi_counts_silent_neurons_and_grows_with_shared_spikes():
    # half the spikes of each neuron from one common train: chi^2 ~ c^2 N / (1 + (N - 1) ... ) -> well above 1/sqrt(N)
    n = 200
    common, _ = renewal_trains(1, 10.0, 20_000.0, seed=6)
    own_t, own_n = renewal_trains(n, 10.0, 20_000.0, seed=7)
    times = np.concatenate([own_t, np.repeat(common, n)])
    neurons = np.concatenate([own_n, np.tile(np.arange(n), common.size)])
    chi = A.synchrony_chi(times, neurons, n, 20_000.0, bin_ms=1.0)
    # pairwise count correlation 1/2, so chi^2 = 1/N + (1 - 1/N) / 2 ~ 0.5
    assert chi == pytest.approx(math.sqrt(1 / n + (1 - 1 / n) * 0.5), abs=0.03)
    # adding 200 silent neurons adds zero-variance signals: Var of the mean / 4, mean variance / 2
    chi_silent = A.synchrony_chi(times, neurons, 2 * n, 20_000.0, bin_ms=1.0)
    assert chi_silent == pytest.approx(chi / math.sqrt(2), rel=1e-9)
    assert math.isnan(A.synchrony_chi([], [], 10, 100.0))


# ------------------------------------------------------------------------------------------ theory
def test_lif_rate_reaches_the_deterministic_interval_at_low_noise():
    # sigma -> 0 above threshold: 1/nu = t_ref + tau ln((mu - V_r) / (mu - theta))
    mu = 30.0
    expected = 1000.0 / (2.0 + 20.0 * math.log((mu - 10.0) / (mu - 20.0)))
    assert A.lif_rate(mu, 0.05) == pytest.approx(expected, rel=1e-3)
    assert A.lif_cv(mu, 0.05) < 0.01
    assert A.lif_rate(10.0, 0.5) < 1e-6            # far below threshold: silent


def test_lif_cv_tends_to_one_for_rare_threshold_crossings():
    # subthreshold and low noise: escapes are rare, the interval nearly exponential (CV -> 1 from below)
    assert A.lif_cv(12.0, 4.0) == pytest.approx(1.0, abs=0.03)


def _lif_monte_carlo(mu, sigma, n=1000, duration=2000.0, dt=0.02, seed=0):
    """tau dV/dt = -V + mu + sigma sqrt(tau) xi, integrated exactly per step (free variance sigma^2 / 2)."""
    rng = np.random.default_rng(seed)
    tau, theta, v_r, t_ref = 20.0, 20.0, 10.0, 2.0
    a = math.exp(-dt / tau)
    s = sigma * math.sqrt((1 - a * a) / 2)
    v, refractory = rng.uniform(v_r, theta, n), np.zeros(n)
    times, neurons = [], []
    for k in range(int(duration / dt)):
        active = refractory <= 0
        v = np.where(active, mu + (v - mu) * a + s * rng.standard_normal(n), v)
        refractory -= dt
        fired = np.flatnonzero(v >= theta)
        if fired.size:
            v[fired], refractory[fired] = v_r, t_ref
            times.append(np.full(fired.size, k * dt))
            neurons.append(fired)
    data = {"t": np.concatenate(times), "neuron": np.concatenate(neurons)}
    return A.spikes_of(data, t_start=200.0)


def test_lif_rate_and_cv_match_a_monte_carlo_simulation():
    # Brunel's AI operating point (mu 21 mV, sigma 7.7 mV). Discrete-time threshold detection misses excursions
    # between samples, lowering the rate by O(sigma sqrt(dt / tau)) (~2 % at dt = 0.02 ms); 1000 neurons x 1.8 s
    # x 38 Hz give the rate to 0.3 % and the mean CV to ~0.01. Measured: 37.1 Hz vs 37.9 Hz, CV 0.66 vs 0.68.
    times, neurons = _lif_monte_carlo(21.0, 7.7)
    assert A.mean_rate(times, 1000, 1800.0) == pytest.approx(A.lif_rate(21.0, 7.7), rel=0.05)
    assert A.isi_cv(times, neurons, 1000)[1] == pytest.approx(A.lif_cv(21.0, 7.7), abs=0.05)


@pytest.mark.parametrize("g, eta, table1", [(6.0, 4.0, 55.8), (5.0, 2.0, 38.0), (4.5, 0.9, 6.5)])
def test_brunel_rate_reproduces_the_papers_theory(g, eta, table1):
    # Brunel (2000), Table 1, theory column for the irregular states of Fig. 8 B, C, D (given to 0.1 Hz)
    result = A.brunel_rate(g, eta)
    assert result["rate"] == pytest.approx(table1, abs=0.1)
    mu, sigma = A.brunel_moments(result["rate"], g, result["nu_ext"])
    assert (mu, sigma) == (pytest.approx(result["mu"]), pytest.approx(result["sigma"]))
    assert A.nu_threshold() == pytest.approx(10.0)
