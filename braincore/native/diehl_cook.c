/* Diehl & Cook (2015) competitive STDP network, one sample at a time, in C (float64).
 *
 * The equations, parameters and step order are documented in braincore/networks/diehl_cook.py, whose PyTorch
 * implementation this kernel reproduces (tests/test_diehl_cook.py compares the two on identical input spikes).
 * Per step k (dt): (1) forward-Euler update of both layers from the conductances of step k-1, theta decays,
 * the timer advances, refractory membranes stay clamped; (2) thresholds; (3) synapses: input spikes add their
 * weight column to g_e of the excitatory layer and depress (pre trace set to 1, w -= nu_pre * post1), excitatory
 * spikes excite their inhibitory partner and potentiate (w += nu_post * pre * post2 before its reset, then
 * post1 = post2 = 1), inhibitory spikes inhibit every other excitatory neuron; (4) resets. Traces decay exactly.
 *
 * Input spikes: given explicitly ([T, n_in] bytes) or drawn here, a Bernoulli draw per input and step with
 * probability p_i, sampled by geometric skipping (exactly the same distribution, one draw per spike).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int32_t n_in, n_exc, T, learn, adapt, pad;
    double dt;
    /* excitatory layer */
    double v_rest_e, v_reset_e, v_th_e, tau_e, E_exc_e, E_inh_e, tau_ge_e, tau_gi_e, t_ref_e, t_hold, timer_rate;
    double theta_plus, tau_theta;
    /* inhibitory layer */
    double v_rest_i, v_reset_i, v_th_i, tau_i, E_exc_i, E_inh_i, tau_ge_i, tau_gi_i, t_ref_i;
    double w_ei, w_ie;
    /* STDP */
    double tau_pre, tau_post1, tau_post2, nu_pre, nu_post, w_max;
    /* arrays */
    double *w;        /* [n_in * n_exc], row-major by input */
    double *theta;    /* [n_exc] mV */
    uint64_t *rng;    /* xoshiro256** state [4] */
} DCNet;

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
static inline uint64_t next_u64(uint64_t *s) {
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t; s[3] = rotl(s[3], 45);
    return result;
}
static inline double uniform01(uint64_t *s) { return ((double)(next_u64(s) >> 11) + 0.5) * 0x1.0p-53; }

void dc_seed(uint64_t *state, uint64_t seed) {
    for (int i = 0; i < 4; i++) {
        uint64_t z = (seed += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        state[i] = z ^ (z >> 31);
    }
}

/* Spike lists per step (CSR by step) of Bernoulli(p_i) trains over T steps: first spike after a geometric wait. */
static int64_t draw_inputs(DCNet *net, const double *p, int32_t *step_ptr, int32_t *idx, int64_t cap) {
    const int32_t T = net->T, n = net->n_in;
    int64_t total = 0;
    int32_t *count = step_ptr + 1;
    memset(step_ptr, 0, sizeof(int32_t) * (size_t)(T + 1));
    /* pass 1: draw every spike as (step, input) into idx pairs at the end of the buffer region */
    int32_t *steps = idx + cap;  /* scratch of the same capacity */
    for (int32_t i = 0; i < n; i++) {
        if (p[i] <= 0.0) continue;
        if (p[i] >= 1.0) {
            for (int32_t k = 0; k < T && total < cap; k++) { steps[total] = k; idx[total] = i; total++; count[k]++; }
            continue;
        }
        const double lq = log1p(-p[i]);
        int64_t k = -1;
        for (;;) {
            k += 1 + (int64_t)floor(log(uniform01(net->rng)) / lq);
            if (k >= T || total >= cap) break;
            steps[total] = (int32_t)k; idx[total] = i; total++; count[k]++;
        }
    }
    for (int32_t k = 0; k < T; k++) step_ptr[k + 1] += step_ptr[k];
    /* pass 2: counting sort by step into idx (inputs ascending within a step) */
    int32_t *fill = (int32_t *)malloc(sizeof(int32_t) * (size_t)T);
    int32_t *sorted = (int32_t *)malloc(sizeof(int32_t) * (size_t)(total > 0 ? total : 1));
    memcpy(fill, step_ptr, sizeof(int32_t) * (size_t)T);
    for (int64_t s = 0; s < total; s++) sorted[fill[steps[s]]++] = idx[s];
    memcpy(idx, sorted, sizeof(int32_t) * (size_t)total);
    free(fill); free(sorted);
    return total;
}

/* One presentation of T steps from the rest state. explicit_spikes: [T * n_in] bytes or NULL (then p: [n_in]
 * spike probabilities per step). counts: [n_exc] excitatory spike counts (out); inh_counts: [n_exc] or NULL.
 * Returns the number of input spikes. */
int64_t dc_present(DCNet *net, const uint8_t *explicit_spikes, const double *p, int64_t *counts, int64_t *inh_counts) {
    const int32_t n_in = net->n_in, n = net->n_exc, T = net->T;
    const double dt = net->dt;
    double *v_e = calloc((size_t)n, sizeof(double)), *ge_e = calloc((size_t)n, sizeof(double));
    double *gi_e = calloc((size_t)n, sizeof(double)), *ref_e = calloc((size_t)n, sizeof(double));
    double *timer = calloc((size_t)n, sizeof(double));
    double *v_i = calloc((size_t)n, sizeof(double)), *ge_i = calloc((size_t)n, sizeof(double));
    double *gi_i = calloc((size_t)n, sizeof(double)), *ref_i = calloc((size_t)n, sizeof(double));
    double *pre = calloc((size_t)n_in, sizeof(double));
    double *post1 = calloc((size_t)n, sizeof(double)), *post2 = calloc((size_t)n, sizeof(double));
    int32_t *fired_e = malloc(sizeof(int32_t) * (size_t)n), *fired_i = malloc(sizeof(int32_t) * (size_t)n);
    int32_t *in_now = malloc(sizeof(int32_t) * (size_t)n_in), *mark_i = calloc((size_t)n, sizeof(int32_t));
    int32_t *step_ptr = NULL, *idx = NULL;
    int64_t n_input_spikes = 0;
    if (!explicit_spikes) {
        int64_t cap = 16;
        for (int32_t i = 0; i < n_in; i++) cap += (int64_t)(p[i] * T * 2.0 + 8.0 * sqrt(p[i] * T + 1.0));
        step_ptr = malloc(sizeof(int32_t) * (size_t)(T + 1));
        idx = malloc(sizeof(int32_t) * (size_t)(2 * cap));
        n_input_spikes = draw_inputs(net, p, step_ptr, idx, cap);
    }
    for (int32_t j = 0; j < n; j++) {
        v_e[j] = net->v_rest_e; v_i[j] = net->v_rest_i; timer[j] = net->t_hold + 1.0;
        counts[j] = 0;
        if (inh_counts) inh_counts[j] = 0;
    }
    const double d_pre = exp(-dt / net->tau_pre), d_p1 = exp(-dt / net->tau_post1), d_p2 = exp(-dt / net->tau_post2);
    const double theta_keep = 1.0 - dt / net->tau_theta;
    const double a_ge_e = 1.0 - dt / net->tau_ge_e, a_gi_e = 1.0 - dt / net->tau_gi_e;
    const double a_ge_i = 1.0 - dt / net->tau_ge_i, a_gi_i = 1.0 - dt / net->tau_gi_i;
    double *w = net->w, *theta = net->theta;
    const double w_max = net->w_max;
    for (int32_t k = 0; k < T; k++) {
        /* (1) state update, forward Euler from the values of the previous step */
        int32_t nf_e = 0, nf_i = 0;
        for (int32_t j = 0; j < n; j++) {
            double v = v_e[j];
            double dv = ((net->v_rest_e - v) + ge_e[j] * (net->E_exc_e - v) + gi_e[j] * (net->E_inh_e - v)) / net->tau_e;
            if (ref_e[j] > 0.0) ref_e[j] -= dt; else v += dt * dv;
            ge_e[j] *= a_ge_e; gi_e[j] *= a_gi_e;
            if (net->adapt) theta[j] *= theta_keep;
            timer[j] += dt * net->timer_rate;
            v_e[j] = v;
            /* (2) threshold: theta and the hold timer */
            if (v > net->v_th_e + theta[j] && timer[j] > net->t_hold) fired_e[nf_e++] = j;
            double u = v_i[j];
            double du = ((net->v_rest_i - u) + ge_i[j] * (net->E_exc_i - u) + gi_i[j] * (net->E_inh_i - u)) / net->tau_i;
            if (ref_i[j] > 0.0) ref_i[j] -= dt; else u += dt * du;
            ge_i[j] *= a_ge_i; gi_i[j] *= a_gi_i;
            v_i[j] = u;
            if (u > net->v_th_i && ref_i[j] <= 0.0) fired_i[nf_i++] = j;
            post1[j] *= d_p1; post2[j] *= d_p2;
        }
        for (int32_t i = 0; i < n_in; i++) pre[i] *= d_pre;
        /* (3) synapses. Input spikes of this step: */
        int32_t m = 0;
        if (explicit_spikes) {
            const uint8_t *row = explicit_spikes + (int64_t)k * n_in;
            for (int32_t i = 0; i < n_in; i++) if (row[i]) in_now[m++] = i;
            n_input_spikes += m;
        } else {
            for (int32_t s = step_ptr[k]; s < step_ptr[k + 1]; s++) in_now[m++] = idx[s];
        }
        for (int32_t s = 0; s < m; s++) {
            const int32_t i = in_now[s];
            double *wr = w + (int64_t)i * n;
            for (int32_t j = 0; j < n; j++) ge_e[j] += wr[j];
            if (net->learn) {
                pre[i] = 1.0;
                for (int32_t j = 0; j < n; j++) {
                    double x = wr[j] - net->nu_pre * post1[j];
                    wr[j] = x < 0.0 ? 0.0 : x;
                }
            }
        }
        for (int32_t f = 0; f < nf_e; f++) {
            const int32_t j = fired_e[f];
            ge_i[j] += net->w_ei;
            counts[j]++;
            if (net->learn) {
                const double gain = net->nu_post * post2[j];
                for (int32_t i = 0; i < n_in; i++) {
                    double *wi = w + (int64_t)i * n + j;
                    double x = *wi + gain * pre[i];
                    *wi = x > w_max ? w_max : x;
                }
                post1[j] = 1.0; post2[j] = 1.0;
            }
        }
        if (nf_i) {  /* each inhibitory spike inhibits every excitatory neuron but its partner */
            for (int32_t f = 0; f < nf_i; f++) { mark_i[fired_i[f]] = 1; if (inh_counts) inh_counts[fired_i[f]]++; }
            for (int32_t j = 0; j < n; j++) gi_e[j] += net->w_ie * (double)(nf_i - mark_i[j]);
            for (int32_t f = 0; f < nf_i; f++) mark_i[fired_i[f]] = 0;
        }
        /* (4) resets */
        for (int32_t f = 0; f < nf_e; f++) {
            const int32_t j = fired_e[f];
            v_e[j] = net->v_reset_e; ref_e[j] = net->t_ref_e; timer[j] = 0.0;
            if (net->adapt) theta[j] += net->theta_plus;
        }
        for (int32_t f = 0; f < nf_i; f++) { v_i[fired_i[f]] = net->v_reset_i; ref_i[fired_i[f]] = net->t_ref_i; }
    }
    free(v_e); free(ge_e); free(gi_e); free(ref_e); free(timer); free(v_i); free(ge_i); free(gi_i); free(ref_i);
    free(pre); free(post1); free(post2); free(fired_e); free(fired_i); free(in_now); free(mark_i); free(step_ptr); free(idx);
    return n_input_spikes;
}

/* Scale each excitatory neuron's input weights (a column of w) to sum to total (columns summing to 0 stay). */
void dc_normalize(DCNet *net, double total) {
    const int32_t n_in = net->n_in, n = net->n_exc;
    double *sums = calloc((size_t)n, sizeof(double));
    for (int32_t i = 0; i < n_in; i++) {
        const double *wr = net->w + (int64_t)i * n;
        for (int32_t j = 0; j < n; j++) sums[j] += wr[j];
    }
    for (int32_t j = 0; j < n; j++) sums[j] = sums[j] > 0.0 ? total / sums[j] : 1.0;
    for (int32_t i = 0; i < n_in; i++) {
        double *wr = net->w + (int64_t)i * n;
        for (int32_t j = 0; j < n; j++) wr[j] *= sums[j];
    }
    free(sums);
}

int32_t dc_abi_version(void) { return 1; }
