/* braincore native CPU engine: the simulator's clock-driven loop (see braincore/simulator.py) in C.
 *
 * This file is a template: the neuron models' step functions are generated from their definitions
 * (braincore/equations/c_code.py) and inserted at the MODELS marker below, one function per model of the network
 * and a dispatcher `step_model`; braincore/native/build.py compiles each such source once and caches it.
 *
 * One call runs many steps with no Python in between, which removes the per-step interpreter and dispatch
 * overhead that dominates small and medium networks. The schedule, equations and floating-point operation
 * order are those of the PyTorch engine, so that in float64 both engines give the same spikes bit for bit
 * on networks without noise (tests/test_native.py checks this). Poisson inputs use this file's own generator
 * (xoshiro256**), seeded from the simulator seed, so they differ from the PyTorch engine's stream.
 *
 * Compiled by braincore/native/build.py twice: with REAL=double and REAL=float. No -ffast-math and
 * -ffp-contract=off: the order and rounding of every operation is that of the source. One exception, on x86:
 * bc_run flushes subnormal numbers to zero (FTZ and DAZ, restored on return). Decaying conductances and traces
 * that receive no input reach the subnormal range (below 1.2e-38 in float32, 2.2e-308 in float64) after a few
 * hundred steps, and arithmetic on subnormals is about 100x slower on x86: they made a quiet synaptic group the
 * most expensive loop of a step. A value that small added to a membrane potential or a weight changes nothing.
 */
#define _GNU_SOURCE  /* syscall() (the threads' futex) under -std=c99 */
#include <math.h>
#include <stdint.h>
#include <string.h>
#if defined(_OPENMP)
#include <omp.h>
#endif
#if defined(__SSE2__)
#include <xmmintrin.h>
#define BC_FTZ_ON() const unsigned int bc_saved_csr = _mm_getcsr(); _mm_setcsr(bc_saved_csr | 0x8040u)
#define BC_FTZ_OFF() _mm_setcsr(bc_saved_csr)
#else
#define BC_FTZ_ON() do { } while (0)
#define BC_FTZ_OFF() do { } while (0)
#endif

#ifndef REAL
#define REAL double
#endif

/* A loop over neurons whose arrays are distinct tensors (state variables, synaptic groups, ring slots): no
 * iteration reads what another writes. Said to the compiler, which otherwise cannot prove it for this many
 * pointers and leaves a population step scalar (measured: the Diehl & Cook excitatory step 4x slower). */
#if defined(__clang__)
#define BC_INDEPENDENT _Pragma("clang loop vectorize(assume_safety)")
#elif defined(__GNUC__)
#define BC_INDEPENDENT _Pragma("GCC ivdep")
#else
#define BC_INDEPENDENT
#endif

/* Vector math. Where glibc's vector math library (libmvec) links, build.py defines BC_LIBMVEC and these
 * declarations tell the compiler that the functions the generated steps call have vector variants: a loop over
 * neurons that calls them (Hodgkin-Huxley rates, AdEx's exponential, exprel) then runs 4 or 8 neurons per
 * instruction (expm1 about 10x faster than the scalar call). Their results stay within glibc's documented error
 * bounds (a few ulp) of the exact values and may differ from the scalar functions in the last bits, as the PyTorch
 * engine's own vectorised functions (SLEEF) do; the arithmetic between the calls keeps the source's order. */
#if defined(BC_LIBMVEC)
#define BC_SIMD __attribute__((simd("notinbranch")))
BC_SIMD double exp(double);
BC_SIMD double expm1(double);
BC_SIMD double log(double);
BC_SIMD double log1p(double);
BC_SIMD double sin(double);
BC_SIMD double cos(double);
BC_SIMD double tanh(double);
BC_SIMD double pow(double, double);
#endif

enum { SYN_INSTANT = 0, SYN_EXP = 1, SYN_ALPHA = 2, SYN_COND = 3 };
enum { IN_POISSON = 0, IN_CURRENT = 1, IN_TV_CURRENT = 2, IN_SPIKE_FILE = 3 };
enum { REC_SPIKES = 0, REC_RATE = 1, REC_STATE = 2 };

typedef struct {
    int32_t model, n, ref_steps, v_index;  /* model: index of its generated step; v_index: the membrane potential */
    void **state;                      /* state arrays [B*n], in the model's state-record order */
    const double *K;                   /* scalar parameters and constants of the generated step */
    void **arrays;                     /* per-neuron parameters and constants [n] */
    int32_t n_groups, n_inputs;
    int32_t *groups;                   /* synaptic groups feeding this population, in order */
    int32_t *inputs;                   /* current inputs onto this population, in order */
    void *drive;                       /* scratch [n] */
    int32_t *fired;                    /* scratch [B*n]: indices of this step's spikes per trial */
    int32_t *n_fired;                  /* scratch [B] */
    int32_t *bounds;                   /* [T+1], T = Net.parts: part t is neurons bounds[t] .. bounds[t+1]-1 */
    int32_t *part_fired;               /* scratch [B*T]: spikes of part t in trial b, listed at fired + b n +
                                          bounds[t] until the step's end joins the lists (join_spikes) */
} Pop;

typedef struct {
    int32_t kind, post, n, has_poisson;  /* has_poisson: Poisson or spike-file inputs add to this group */
    int32_t fed, pad;                  /* fed: a projection delivers into this group's ring (else it stays empty) */
    double decay, dt_over_tau, E_rev, factor;
    void *x, *h, *ring;                /* x, h [B*n]; ring [L*B*n] */
} Group;

typedef struct {
    int32_t pre, group, uniform_delay, n_post;   /* uniform_delay < 0: per-synapse delays */
    int32_t full, same;                /* full: all-to-all in order (synapse s of pre i is post s - indptr[i]);
                                          same: every weight equals w_same and no rule writes them */
    int64_t *indptr;
    int32_t *post;                     /* 32-bit: half the memory traffic of the delivery loop */
    int16_t *delay;                    /* per-synapse delays (steps), the simulator's int16 tensor ... */
    int32_t *delay32;                  /* ... or, where a delay exceeds 32767 steps, its int32 one (delay NULL) */
    void *w;
    double w_same;
    int64_t *cuts;                     /* T = Net.parts > 1, rows sorted by post: [n_pre*(T+1)], the synapses of
                                          row i onto part t of the post population are cuts[i(T+1)+t] ..
                                          cuts[i(T+1)+t+1]-1 (bc_row_cuts); NULL: one part, all-to-all, or rows not
                                          sorted by post (filtered synapse by synapse) */
} Proj;

typedef struct {
    int32_t type, group, pop, n_neurons;
    double scale, lam, amplitude;
    int64_t start, stop, T;
    int64_t *neurons;                  /* NULL: all neurons */
    void *values;                      /* time-varying current [T*ncols] */
    int64_t ncols;
    void *lams;                        /* Poisson: per trial and target neuron mean counts [B*m], or NULL */
    const double *limits;              /* with lams: exp(-lams) [B*m], computed once when the rates are set */
    /* with lams, the non-zero rates per trial (computed with limits): entries nz_ptr[b] .. nz_ptr[b+1]-1 are the
     * neurons nz_index[e] (in 0..m-1) with lams > 0, nz_accept[e] = lam / nz_max[b] (the largest rate of trial b) */
    const int64_t *nz_ptr, *nz_index;
    const double *nz_accept, *nz_max;
    int64_t *ev_steps, *ev_neurons;    /* spike file: events sorted by step */
    int64_t n_events, cursor;          /* cursor: first event not yet delivered */
    int64_t *ev_index, *ev_count;      /* Poisson: scratch for one trial's events [m] (poisson_events) */
    int32_t fires, pad;                /* fires: the spikes of a Poisson source population (no group) */
} Input;

typedef struct {
    int32_t type, pop;
    int64_t cap, filled, room, dropped;
    int64_t *triples;                  /* spikes: [cap*3] (step, trial, neuron) */
    int64_t *counts;                   /* spikes: [B*n]; rate: [steps*B] spikes per step and trial */
} Rec;

/* A plasticity rule on one projection: generated from its definition (kind >= 0, braincore/equations/c_rule.py)
 * or one of the engine's own homeostatic rules (kind < 0: RULE_NORMALIZE, RULE_SCALING), which need reductions
 * over a neuron's synapses that the rule language does not express. */
enum { RULE_NORMALIZE = -1, RULE_SCALING = -2 };
typedef struct {
    int32_t kind, proj, modulator, first;  /* modulator: channel index or -1; first: first step of this run */
    int32_t n_act_pre, n_act_post, every, by;  /* homeostasis: every (steps), by (0: post, 1: pre) */
    const double *K;                   /* dt, parameters, constants (c_rule.rule_constant_names) */
    void **traces;                     /* trace arrays, definition order */
    int64_t *indptr_post, *by_post;    /* incoming synapses of each post neuron */
    int32_t *pre_of;                   /* presynaptic neuron of each synapse */
    uint8_t *flag_pre, *flag_post;     /* scratch [B*n]: spiked this step, per trial */
    uint8_t *seen_pre, *seen_post;     /* scratch [n]: in the union list */
    int32_t *act_pre, *act_post;       /* scratch [n]: neurons that spiked in some trial */
    int64_t *counter;                  /* homeostasis: the rule's step counter (its state "n") */
    void *scratch;                     /* homeostasis: [max(n_pre, n_post)] */
    int64_t finite_at;                 /* normalisation: the step whose pass found every weight finite, or -1 */
} Rule;

/* A neuromodulator channel: M <- baseline + (M - baseline) * factor each step (factor**0 = 1: no decay). */
typedef struct {
    double factor, baseline;
    int32_t decays, zero_baseline;
    void *value;                       /* [B] */
} Chan;

typedef struct {
    int32_t B, L, n_pops, n_groups, n_projs, n_inputs, n_recs, n_rules;
    int32_t n_chans, threads;          /* threads: how many run the parts (see the threads section below) */
    int64_t k;
    Pop *pops; Group *groups; Proj *projs; Input *inputs; Rec *recs;
    uint64_t *rng;                     /* xoshiro256** state [4] */
    Rule *rules; Chan *chans;
    int32_t parts, pad2;               /* every population is cut into this many parts (Pop.bounds) */
} Net;

/* ---- random numbers: xoshiro256** (Blackman & Vigna 2018) ------------------------------------------------ */
static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
static inline uint64_t next_u64(uint64_t *s) {
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t; s[3] = rotl(s[3], 45);
    return result;
}
static inline double uniform01(uint64_t *s) { return (double)(next_u64(s) >> 11) * 0x1.0p-53; }

/* Poisson deviate (exp(-lam) given, so that a rate shared by many neurons computes it once per step): multiplication
 * of uniforms below lam = 10, else Hoermann's (1993) transformed rejection
 * with squeeze (PTRS). */
static int64_t poisson(uint64_t *s, double lam, double limit) {  /* limit: exp(-lam), computed by the caller */
    if (lam <= 0.0) return 0;
    if (lam < 10.0) {
        double prod = uniform01(s);
        int64_t k = 0;
        while (prod > limit) { prod *= uniform01(s); k++; }
        return k;
    }
    double slam = sqrt(lam), loglam = log(lam), b = 0.931 + 2.53 * slam, a = -0.059 + 0.02483 * b;
    double inv_alpha = 1.1239 + 1.1328 / (b - 3.4), vr = 0.9277 - 3.6224 / (b - 2.0);
    for (;;) {
        double U = uniform01(s) - 0.5, V = uniform01(s), us = 0.5 - fabs(U);
        int64_t k = (int64_t)floor((2.0 * a / us + b) * U + lam + 0.43);
        if (us >= 0.07 && V <= vr) return k;
        if (k < 0 || (us < 0.013 && V > us)) continue;
        if (log(V) + log(inv_alpha) - log(a / (us * us) + b) <= -lam + (double)k * loglam - lgamma((double)k + 1.0))
            return k;
    }
}

/* ---- one step ----------------------------------------------------------------------------------------------
 * Per population and trial, the generated step (braincore/equations/c_code.py) handles every synaptic group in the
 * same pass over the neurons as their update: take the ring-buffer slot of this step (deliver), add the group's
 * term to the input (or its voltage jump to v), decay it over the step, then integrate. Decaying before the neuron
 * update rather than after propagation changes nothing: propagation only writes ring slots of later steps. Groups
 * fed by Poisson inputs take the ring slot and the Poisson counts in separate passes first, so every element sees
 * the PyTorch engine's order: x + ring, + Poisson, use, decay. */
static inline REAL *ring_row(Net *net, Group *G, int32_t b) {
    return (REAL *)G->ring + (net->k % net->L) * ((int64_t)net->B * G->n) + (int64_t)b * G->n;
}

/* Independent Poisson(lam) counts for m neurons with one small rate, drawn without visiting the zeros: the neurons
 * with a non-zero count follow each other at geometric gaps (each neuron is non-zero with probability
 * q = 1 - exp(-lam), independently: P(gap = g) = exp(-lam)^g q), and a non-zero count is Poisson(lam) conditioned on
 * >= 1 (inversion). The joint law is that of m independent Poisson(lam) draws; the cost is one or two uniforms per
 * non-zero count instead of one per neuron. */
#define SKIP_BELOW 0.1
static inline int64_t next_nonzero(uint64_t *s, double lam, int64_t j) {
    const double u = 1.0 - uniform01(s);                   /* (0, 1] */
    const double gap = floor(-log(u) / lam);                /* failures before the next success */
    return gap > 9.0e15 ? INT64_MAX : j + 1 + (int64_t)gap;
}
static inline int64_t truncated_poisson(uint64_t *s, double lam) {
    double u = uniform01(s) * -expm1(-lam);                 /* P(count >= 1) = 1 - exp(-lam) */
    double p = lam * exp(-lam);                              /* P(count = 1) */
    int64_t k = 1;
    while (u > p && k < 1000) { u -= p; k++; p *= lam / (double)k; }
    return k;
}

/* The Poisson counts of input `in` in trial b at this step, as events: (target index j in 0..m-1, count >= 1) in
 * ascending j, written to idx/cnt (room for m); returns how many. The draws, and their order, are the sampler's:
 * only the consumer differs (a synaptic group adds count * weight; a Poisson source fires once). */
static int64_t poisson_events(Net *net, Input *in, int32_t b, int64_t m, int64_t *restrict idx,
                              int64_t *restrict cnt) {
    int64_t n_ev = 0;
    const REAL *lams = in->lams ? (const REAL *)in->lams + (int64_t)b * m : NULL;
    const double *limits = lams ? in->limits + (int64_t)b * m : NULL;
    if (lams) {  /* a rate map: only its non-zero rates */
        const int64_t first = in->nz_ptr[b], K = in->nz_ptr[b + 1] - first;
        const int64_t *index = in->nz_index + first;
        const double lam_max = in->nz_max[b];
        if (lam_max < SKIP_BELOW) {
            /* thinning: Poisson(lam_max) counts at geometric gaps over the K neurons, each event kept with
             * probability lam / lam_max, gives independent Poisson(lam) counts (a thinned Poisson variable is
             * Poisson), at a cost per event rather than per neuron */
            const double *accept = in->nz_accept + first;
            for (int64_t e = next_nonzero(net->rng, lam_max, -1); e < K; e = next_nonzero(net->rng, lam_max, e)) {
                const int64_t candidates = truncated_poisson(net->rng, lam_max);
                int64_t count = candidates;
                if (accept[e] < 1.0) {
                    count = 0;
                    for (int64_t c = 0; c < candidates; c++) count += uniform01(net->rng) < accept[e];
                }
                if (count) { idx[n_ev] = index[e]; cnt[n_ev++] = count; }
            }
        } else {
            for (int64_t e = 0; e < K; e++) {
                const int64_t j = index[e];
                const int64_t count = poisson(net->rng, (double)lams[j], limits[j]);
                if (count) { idx[n_ev] = j; cnt[n_ev++] = count; }
            }
        }
        return n_ev;
    }
    if (in->lam > 0.0 && in->lam < SKIP_BELOW) {  /* one rate, rarely a count: skip the zeros */
        for (int64_t j = next_nonzero(net->rng, in->lam, -1); j < m; j = next_nonzero(net->rng, in->lam, j)) {
            idx[n_ev] = j; cnt[n_ev++] = truncated_poisson(net->rng, in->lam);
        }
        return n_ev;
    }
    const double shared_limit = exp(-in->lam);
    for (int64_t j = 0; j < m; j++) {
        const int64_t count = poisson(net->rng, in->lam, shared_limit);
        if (count) { idx[n_ev] = j; cnt[n_ev++] = count; }
    }
    return n_ev;
}

static void deliver_poisson(Net *net, int32_t pop, int32_t b) {
    for (int32_t q = 0; q < net->n_inputs; q++) {
        Input *in = &net->inputs[q];
        if ((in->type != IN_POISSON && in->type != IN_SPIKE_FILE) || in->pop != pop || in->fires) continue;
        Group *G = &net->groups[in->group];
        REAL *row = (REAL *)(G->kind == SYN_ALPHA ? G->h : G->x) + (int64_t)b * G->n;
        const REAL scale = (REAL)in->scale;
        if (in->type == IN_SPIKE_FILE) {  /* this step's events, each adding the weight in every trial */
            int64_t e = in->cursor;
            for (; e < in->n_events && in->ev_steps[e] == net->k; e++) row[in->ev_neurons[e]] += scale;
            if (b == net->B - 1) in->cursor = e;
            continue;
        }
        if (net->k < in->start || (in->stop >= 0 && net->k >= in->stop)) continue;  /* outside its window */
        const int64_t m = in->neurons ? in->n_neurons : G->n;
        const int64_t n_ev = poisson_events(net, in, b, m, in->ev_index, in->ev_count);
        for (int64_t e = 0; e < n_ev; e++) {
            const int64_t j = in->ev_index[e];
            row[in->neurons ? in->neurons[j] : j] += scale * (REAL)in->ev_count[e];
        }
    }
}

/* A Poisson source population (braincore/neurons/poisson.py): its neurons with a count >= 1 fire, in ascending
 * order (the order every neuron model's step gives). */
static int32_t fire_poisson(Net *net, Pop *P, int32_t b, int32_t *restrict fired) {
    const int32_t pop = (int32_t)(P - net->pops);
    for (int32_t q = 0; q < net->n_inputs; q++) {
        Input *in = &net->inputs[q];
        if (!in->fires || in->pop != pop) continue;
        const int64_t n_ev = poisson_events(net, in, b, P->n, in->ev_index, in->ev_count);
        for (int64_t e = 0; e < n_ev; e++) fired[e] = (int32_t)in->ev_index[e];
        return (int32_t)n_ev;
    }
    return 0;
}

/* x += ring (alpha: h += e * ring), and clear the slot. */
static void take_ring(Net *net, Group *G, int32_t b) {
    REAL *arriving = ring_row(net, G, b);
    const int32_t n = G->n;
    REAL *target = (REAL *)(G->kind == SYN_ALPHA ? G->h : G->x) + (int64_t)b * n;
    if (G->kind == SYN_ALPHA) {
        const REAL e = (REAL)2.718281828459045235360287;  /* e, as Python's math.e */
        for (int32_t i = 0; i < n; i++) target[i] += arriving[i] * e;
    } else {
        for (int32_t i = 0; i < n; i++) target[i] += arriving[i];
    }
    memset(arriving, 0, sizeof(REAL) * n);
}

/* drive += the population's current inputs, in input order, for the neurons lo .. hi-1 (one part) */
static void external_current(Net *net, Pop *P, REAL *drive, int32_t lo, int32_t hi) {
    for (int32_t c = 0; c < P->n_inputs; c++) {
        Input *in = &net->inputs[P->inputs[c]];
        const int64_t k = net->k;
        const REAL *vals = NULL;
        REAL amp = 0;
        if (in->type == IN_CURRENT) {
            if (k < in->start || (in->stop >= 0 && k >= in->stop)) continue;
            amp = (REAL)in->amplitude;
        } else {
            if (k >= in->T) continue;
            vals = (const REAL *)in->values + k * in->ncols;
        }
        if (in->neurons) {  /* listed neurons: those of this part, in list order */
            for (int64_t j = 0; j < in->n_neurons; j++) {
                const int64_t i = in->neurons[j];
                if (i >= lo && i < hi) drive[i] += vals ? vals[in->ncols == 1 ? 0 : j] : amp;
            }
        } else {
            for (int64_t j = lo; j < hi; j++) drive[j] += vals ? vals[in->ncols == 1 ? 0 : j] : amp;
        }
    }
}

/* (REAL)(exp(x) - 1) / x, continuous at 0: the series 1 + x/2 below |x| = 1e-6 (as the PyTorch step's _exprel) */
static inline REAL bc_exprel(REAL x) { return fabs(x) < 1e-6 ? (REAL)1.0 + (REAL)0.5 * x : expm1(x) / x; }

/* min(max(x, lo), hi) as torch.clamp: a NaN stays NaN (fmin/fmax would drop it, and are not inlined) */
static inline REAL bc_clip(REAL x, REAL lo, REAL hi) { return x < lo ? lo : (x > hi ? hi : x); }

/* ---- plasticity helpers ----------------------------------------------------------------------------------- */
/* Flag this step's spikes of P per trial ([B*n]) and list the neurons that spiked in some trial. */
static void mark_spikes(Net *net, const Pop *P, uint8_t *flag, int32_t *act, uint8_t *seen, int32_t *n_act) {
    int32_t count = 0;
    for (int32_t b = 0; b < net->B; b++) {
        const int32_t *fired = P->fired + (int64_t)b * P->n;
        for (int32_t f = 0; f < P->n_fired[b]; f++) {
            const int32_t i = fired[f];
            flag[(int64_t)b * P->n + i] = 1;
            if (!seen[i]) { seen[i] = 1; act[count++] = i; }
        }
    }
    *n_act = count;
}

static void unmark_spikes(Net *net, const Pop *P, uint8_t *flag, int32_t *act, uint8_t *seen, int32_t n_act) {
    for (int32_t b = 0; b < net->B; b++) {
        const int32_t *fired = P->fired + (int64_t)b * P->n;
        for (int32_t f = 0; f < P->n_fired[b]; f++) flag[(int64_t)b * P->n + fired[f]] = 0;
    }
    for (int32_t a = 0; a < n_act; a++) seen[act[a]] = 0;
}

/* The homeostatic rules of braincore/plasticity/homeostasis.py, in its operation order. */
static void builtin_rule(Net *net, Rule *R) {
    const Proj *J = &net->projs[R->proj];
    const Pop *Pa = &net->pops[J->pre], *Pb = &net->pops[net->groups[J->group].post];
    const int32_t B = net->B, nb = Pb->n;
    const int64_t S = J->indptr[Pa->n];
    REAL *w = (REAL *)J->w;
    REAL *tmp = (REAL *)R->scratch;
    if (R->kind == RULE_SCALING) {  /* r <- r d + s g; every `every` steps: w *= max(0, 1 + k (r_t - mean r)/r_t) */
        const REAL d = (REAL)R->K[0], g = (REAL)R->K[1], r_target = (REAL)R->K[2], k = (REAL)R->K[3];
        const REAL w_min = (REAL)R->K[4], w_max = (REAL)R->K[5];
        REAL *r = (REAL *)R->traces[0];
        for (int32_t b = 0; b < B; b++) {
            REAL *rb = r + (int64_t)b * nb;
            for (int32_t j = 0; j < nb; j++) rb[j] = rb[j] * d;
            const int32_t *fired = Pb->fired + (int64_t)b * nb;
            int32_t f = 0;
            for (int32_t j = 0; j < nb; j++) {  /* + s g, with s = 0 or 1 (the PyTorch engine's post * g) */
                const REAL spk = (f < Pb->n_fired[b] && fired[f] == j) ? (f++, (REAL)1) : (REAL)0;
                rb[j] = rb[j] + spk * g;
            }
        }
        *R->counter += 1;
        if (!(R->every == 1 || *R->counter % R->every == 0)) return;
        const REAL invB = (REAL)(1.0 / (double)B);
        for (int32_t j = 0; j < nb; j++) {
            REAL sum = 0;
            for (int32_t b = 0; b < B; b++) sum = sum + r[(int64_t)b * nb + j];
            REAL factor = (REAL)1 + k * ((r_target - sum * invB) / r_target);
            tmp[j] = factor < 0 ? (REAL)0 : factor;
        }
        for (int64_t s = 0; s < S; s++) w[s] = bc_clip(w[s] * tmp[J->post[s]], w_min, w_max);
        return;
    }
    /* RULE_NORMALIZE: sums per post (by 0) or pre (by 1) neuron, in synapse order; w *= total / sum where sum and
     * total have the same sign */
    *R->counter += 1;
    if (!(R->every == 1 || *R->counter % R->every == 0)) return;
    const REAL total = (REAL)R->K[0];
    const int32_t n = R->by ? Pa->n : nb;
    for (int32_t q = 0; q < n; q++) tmp[q] = 0;
    if (J->full && !R->by) {  /* the same sums in the same order, without the index: vectorised */
        for (int32_t i = 0; i < Pa->n; i++) {
            const REAL *restrict row = w + (int64_t)i * nb;
            for (int32_t j = 0; j < nb; j++) tmp[j] = tmp[j] + row[j];
        }
    } else {
        for (int64_t s = 0; s < S; s++) {
            const int32_t q = R->by ? R->pre_of[s] : J->post[s];
            tmp[q] = tmp[q] + w[s];
        }
    }
    /* total / sum as the PyTorch engine evaluates a number over a tensor: (1 / sum) * total */
    for (int32_t q = 0; q < n; q++) tmp[q] = tmp[q] * total > 0 ? ((REAL)1 / tmp[q]) * total : (REAL)1;
    /* the pass writes every weight: it notes whether all are finite (x - x is 0 for a finite x, NaN otherwise), so
     * that the blow-up check after a run ending on this step need not read the weights again */
    /* ... and whether any leaves [K[1], K[2]], the tightest bounds of the projection's bounded rules */
    const REAL bound_lo = (REAL)R->K[1], bound_hi = (REAL)R->K[2];
    int bad = 0, out = 0;
    if (J->full && !R->by) {
        for (int32_t i = 0; i < Pa->n; i++) {
            REAL *restrict row = w + (int64_t)i * nb;
            for (int32_t j = 0; j < nb; j++) {
                const REAL x = row[j] * tmp[j];
                row[j] = x;
                bad |= (x - x) != (REAL)0;
                out |= (x < bound_lo) | (x > bound_hi);
            }
        }
    } else {
        for (int64_t s = 0; s < S; s++) {
            const REAL x = w[s] * tmp[R->by ? R->pre_of[s] : J->post[s]];
            w[s] = x;
            bad |= (x - x) != (REAL)0;
            out |= (x < bound_lo) | (x > bound_hi);
        }
    }
    R->finite_at = bad ? -1 : net->k;
    /* scaled weights outside a bounded rule's [w_min, w_max]: as the PyTorch engine clamps every weight at that
     * rule's next step, the rules of this projection clip every weight at their next step (a rule before this one in
     * the chain at the next step, one after it at this step). Inside the tightest bounds, no clip would change a
     * weight, and none is done (a NaN is left as it is by a clip, as by torch.clamp). */
    if (out)
        for (int32_t q = 0; q < net->n_rules; q++)
            if (net->rules[q].proj == R->proj && &net->rules[q] != R) net->rules[q].first = 1;
}

static void step_modulators(Net *net) {
    for (int32_t c = 0; c < net->n_chans; c++) {
        Chan *C = &net->chans[c];
        if (!C->decays) continue;
        REAL *m = (REAL *)C->value;
        const REAL f = (REAL)C->factor, base = (REAL)C->baseline;
        for (int32_t b = 0; b < net->B; b++) m[b] = C->zero_baseline ? m[b] * f : base + (m[b] - base) * f;
    }
}

/* @MODELS@ */

/* ---- threads ----------------------------------------------------------------------------------------------
 * Every population is cut into net->parts contiguous parts (Pop.bounds: boundaries at multiples of 64 neurons, so
 * that the vector loops split a part where they split the whole population). Part t of a step is: update part t of
 * every population (step_populations), and, once every part is updated, deliver every spike into part t of each
 * post-synaptic population (propagate), walking the spiking presynaptic neurons in the order one thread does and
 * adding the synapses of each row that fall into the part (a sub-range of the row: Proj.cuts). So every element of
 * state and ring buffers receives the same operations in the same order whatever the number of parts or threads,
 * and the results are bit for bit those of one thread. What is sequential by nature runs on the calling thread
 * between the two parallel phases: the Poisson inputs (one random stream, drawn at the start of the step for every
 * population in population and trial order, as before), then joining each population's per-part spike lists into
 * one ascending list, neuromodulators, plasticity rules and spike recording.
 *
 * Each thread runs its own parts in every phase (the same parts every step: their state and ring buffers stay in its
 * core's cache), then any part no thread has taken yet (claimed by compare-and-swap); the calling thread waits for
 * the parts to be done, not for the other threads to arrive. On a machine shared with other work, a thread that is
 * not scheduled then does not stall the step (the others take its parts), where a barrier would wait a time slice
 * for it. With one thread (or a build without OpenMP) the same functions run part after part, unsynchronised. */

/* The sequential start of a step: Poisson and spike-file inputs, population by population and trial by trial (each
 * group fed by them takes its ring slot first, so that every element sees x + ring, + Poisson, as PyTorch). */
static void begin_step(Net *net) {
    for (int32_t p = 0; p < net->n_pops; p++) {
        Pop *P = &net->pops[p];
        if (P->model < 0) {  /* a Poisson source: its spikes drawn here, all in part 0's place (the others empty) */
            const int32_t T = net->parts;
            for (int32_t b = 0; b < net->B; b++) {
                for (int32_t t = 0; t < T; t++) P->part_fired[b * T + t] = 0;
                P->part_fired[b * T] = fire_poisson(net, P, b, P->fired + (int64_t)b * P->n);
            }
            continue;
        }
        int has = 0;
        for (int32_t gi = 0; gi < P->n_groups; gi++) has |= net->groups[P->groups[gi]].has_poisson;
        if (!has) continue;
        for (int32_t b = 0; b < net->B; b++) {
            for (int32_t gi = 0; gi < P->n_groups; gi++) {
                Group *G = &net->groups[P->groups[gi]];
                if (G->has_poisson && G->fed) take_ring(net, G, b);
            }
            deliver_poisson(net, p, b);
        }
    }
}

/* Part t of every population: external currents, then the generated step (braincore/equations/c_code.py), which takes
 * every group's input (delivering the other groups' ring slots), decays the groups and integrates in one pass, and
 * lists the part's spikes at fired + b n + bounds[t]. */
static void step_populations(Net *net, int32_t t) {
    const int32_t T = net->parts;
    for (int32_t p = 0; p < net->n_pops; p++) {
        Pop *P = &net->pops[p];
        if (P->model < 0) continue;  /* a Poisson source: drawn in begin_step */
        const int32_t n = P->n, lo = P->bounds[t], hi = P->bounds[t + 1];
        REAL *drive = (REAL *)P->drive;
        for (int32_t b = 0; b < net->B; b++) {
            if (lo == hi) { P->part_fired[b * T + t] = 0; continue; }
            if (P->n_inputs) {  /* external currents; without, the generated step starts from zero */
                memset(drive + lo, 0, sizeof(REAL) * (size_t)(hi - lo));
                external_current(net, P, drive, lo, hi);
            }
            P->part_fired[b * T + t] = step_model(net, P, b, drive, P->fired + (int64_t)b * n + lo, lo, hi);
        }
    }
}

/* Spikes of projection J into part t of its post population: the presynaptic spikes in ascending order (the parts'
 * lists in part order), each row's synapses onto the part in row order. */
static void propagate(Net *net, Proj *J, int32_t t) {
    Pop *P = &net->pops[J->pre];
    Group *G = &net->groups[J->group];
    const Pop *Q = &net->pops[G->post];
    const int32_t B = net->B, L = net->L, T = net->parts;
    const int32_t lo = Q->bounds[t], hi = Q->bounds[t + 1];
    if (lo == hi) return;
    const int filter = T > 1 && !J->cuts && !J->full;  /* rows not sorted by post: test each synapse */
    const int64_t *cuts = J->cuts;
    const int64_t plane = (int64_t)B * J->n_post;
    const REAL *w = (const REAL *)J->w;
    const REAL same = (REAL)J->w_same;
    REAL *ring = (REAL *)G->ring;
    for (int32_t b = 0; b < B; b++) {
        for (int32_t part = 0; part < T; part++) {
            const int32_t *fired = P->fired + (int64_t)b * P->n + P->bounds[part];
            const int32_t count = P->part_fired[b * T + part];
            for (int32_t f = 0; f < count; f++) {
                const int32_t i = fired[f];
                const int64_t s0 = cuts ? cuts[(int64_t)i * (T + 1) + t] : J->indptr[i];
                const int64_t s1 = cuts ? cuts[(int64_t)i * (T + 1) + t + 1] : J->indptr[i + 1];
                if (J->uniform_delay >= 0) {
                    REAL *restrict row = ring + ((net->k + J->uniform_delay) % L) * plane + (int64_t)b * J->n_post;
                    if (J->full) {  /* the same additions, without the index: vectorised */
                        const REAL *restrict ws = w + J->indptr[i];
                        for (int32_t j = lo; j < hi; j++) row[j] += ws[j];
                    } else if (filter) {
                        for (int64_t s = s0; s < s1; s++) {
                            const int32_t j = J->post[s];
                            if (j >= lo && j < hi) row[j] += J->same ? same : w[s];
                        }
                    } else if (J->same) {  /* one weight: the indices are the only memory traffic */
                        for (int64_t s = s0; s < s1; s++) row[J->post[s]] += same;
                    } else {
                        for (int64_t s = s0; s < s1; s++) row[J->post[s]] += w[s];
                    }
                } else {
#define BC_DELIVER(D, V) for (int64_t s = s0; s < s1; s++) \
                    ring[((net->k + (D)[s]) % L) * plane + (int64_t)b * J->n_post + J->post[s]] += (V)
#define BC_DELIVER_FILTERED(D, V) for (int64_t s = s0; s < s1; s++) { const int32_t j = J->post[s]; \
                    if (j >= lo && j < hi) ring[((net->k + (D)[s]) % L) * plane + (int64_t)b * J->n_post + j] += (V); }
                    if (filter && J->delay) { BC_DELIVER_FILTERED(J->delay, J->same ? same : w[s]); }
                    else if (filter) { BC_DELIVER_FILTERED(J->delay32, J->same ? same : w[s]); }
                    else if (J->delay && J->same) BC_DELIVER(J->delay, same);
                    else if (J->delay) BC_DELIVER(J->delay, w[s]);
                    else if (J->same) BC_DELIVER(J->delay32, same);
                    else BC_DELIVER(J->delay32, w[s]);
#undef BC_DELIVER
#undef BC_DELIVER_FILTERED
                }
            }
        }
    }
}

/* Each population's per-part spike lists moved together: fired + b n holds the step's spikes in ascending order and
 * n_fired[b] their number, as the rules and recorders read them. */
static void join_spikes(Net *net) {
    const int32_t T = net->parts;
    for (int32_t p = 0; p < net->n_pops; p++) {
        Pop *P = &net->pops[p];
        for (int32_t b = 0; b < net->B; b++) {
            int32_t *fired = P->fired + (int64_t)b * P->n;
            int32_t total = 0;
            for (int32_t part = 0; part < T; part++) {
                const int32_t count = P->part_fired[b * T + part];
                if (count && P->bounds[part] != total)
                    memmove(fired + total, fired + P->bounds[part], sizeof(int32_t) * (size_t)count);
                total += count;
            }
            P->n_fired[b] = total;
        }
    }
}

/* Room check: stop before a step whose spikes might not fit a spike recorder's buffer. */
static int recorders_full(Net *net) {
    for (int32_t r = 0; r < net->n_recs; r++) {
        Rec *R = &net->recs[r];
        if (R->type != REC_SPIKES || R->filled >= R->room) continue;
        int64_t need = (int64_t)net->B * net->pops[R->pop].n;
        if (R->room - R->filled < need) need = R->room - R->filled;
        if (R->cap - R->filled < need) return 1;
    }
    return 0;
}

static void record(Net *net, int64_t local_step) {
    for (int32_t r = 0; r < net->n_recs; r++) {
        Rec *R = &net->recs[r];
        Pop *P = &net->pops[R->pop];
        for (int32_t b = 0; b < net->B; b++) {
            const int32_t *fired = P->fired + (int64_t)b * P->n;
            const int32_t count = P->n_fired[b];
            if (R->type == REC_RATE) { R->counts[local_step * net->B + b] = count; continue; }
            if (R->type != REC_SPIKES) continue;  /* state monitors: read from Python */
            for (int32_t f = 0; f < count; f++) {
                R->counts[(int64_t)b * P->n + fired[f]] += 1;
                if (R->filled < R->room) {
                    int64_t *t = R->triples + 3 * R->filled++;
                    t[0] = net->k; t[1] = b; t[2] = fired[f];
                } else {
                    R->dropped++;
                }
            }
        }
    }
}

static void end_step(Net *net, int64_t local_step) {
    join_spikes(net);
    step_modulators(net);
    for (int32_t r = 0; r < net->n_rules; r++) { step_rule(net, &net->rules[r]); net->rules[r].first = 0; }
    record(net, local_step);
    net->k++;
}

enum { PHASE_UPDATE = 0, PHASE_PROPAGATE = 1, PHASE_QUIT = 2 };

static void run_part(Net *net, int32_t phase, int32_t t) {
    if (phase == PHASE_UPDATE) step_populations(net, t);
    else for (int32_t j = 0; j < net->n_projs; j++) propagate(net, &net->projs[j], t);
}

#if defined(_OPENMP)
#if defined(__x86_64__) || defined(__i386__)
#define BC_PAUSE() __builtin_ia32_pause()
#else
#define BC_PAUSE() do { } while (0)
#endif
#include <sched.h>
#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <limits.h>
#endif

/* The phases the calling thread hands out: seq numbers them; claimed[t] is the last phase whose part t some thread
 * took (compare-and-swap: one thread per part and phase); done counts the parts finished in the current phase. */
typedef struct {
    int64_t seq;
    int32_t done, phase;
    int64_t *claimed;
    int32_t gen, sleepers;             /* gen: the low bits of seq, the word sleeping threads wait on (futex) */
} Team;

/* A thread that finds no phase for a while sleeps until the next one (Linux futex; elsewhere it yields): spinning,
 * it would take time from the calling thread whenever the two share a core. */
#define SPINS_BEFORE_SLEEP 20000
static void sleep_until_next(Team *team, int64_t seen) {
#if defined(__linux__)
    const int32_t gen = __atomic_load_n(&team->gen, __ATOMIC_SEQ_CST);
    __atomic_add_fetch(&team->sleepers, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&team->seq, __ATOMIC_SEQ_CST) == seen)  /* else published meanwhile: no sleep */
        syscall(SYS_futex, &team->gen, FUTEX_WAIT_PRIVATE, gen, NULL, NULL, 0);
    __atomic_sub_fetch(&team->sleepers, 1, __ATOMIC_SEQ_CST);
#else
    (void)team; (void)seen;
    sched_yield();
#endif
}

static void wake_sleepers(Team *team) {
#if defined(__linux__)
    if (__atomic_load_n(&team->sleepers, __ATOMIC_SEQ_CST) > 0)
        syscall(SYS_futex, &team->gen, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
#else
    (void)team;
#endif
}

static inline int claim(Team *team, int32_t t, int64_t seq) {
    int64_t v = __atomic_load_n(&team->claimed[t], __ATOMIC_ACQUIRE);
    /* v >= seq: taken in this phase, or the caller's phase is over (every part of it was taken) */
    return v < seq && __atomic_compare_exchange_n(&team->claimed[t], &v, seq, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

/* Take and run parts of phase `seq`: first this thread's own (t = id, id + nt, ...: the same parts every step, whose
 * data stay in this core's cache), then any left (a thread the machine has not scheduled leaves its parts to those
 * that run). A part is run only when claimed in phase seq, which cannot end before that part is done. */
static void take_parts(Net *net, Team *team, int64_t seq, int32_t id, int32_t nt) {
    for (int pass = 0; pass < 2; pass++) {
        for (int32_t t = pass ? 0 : id; t < net->parts; t += pass ? 1 : nt) {
            if (!claim(team, t, seq)) continue;
            run_part(net, __atomic_load_n(&team->phase, __ATOMIC_ACQUIRE), t);
            __atomic_add_fetch(&team->done, 1, __ATOMIC_RELEASE);
        }
    }
}

static inline void wait_a_little(int32_t *spins) {
    if (++*spins < 2000) BC_PAUSE();
    else sched_yield();  /* long waits (the caller's sequential work): let other work run on this core */
}

/* The calling thread (id 0): publish a phase, take parts too, wait until all are done. */
static void run_phase(Net *net, Team *team, int32_t phase, int32_t nt) {
    __atomic_store_n(&team->phase, phase, __ATOMIC_RELAXED);
    __atomic_store_n(&team->done, 0, __ATOMIC_RELAXED);
    const int64_t seq = team->seq + 1;
    __atomic_store_n(&team->seq, seq, __ATOMIC_SEQ_CST);
    __atomic_store_n(&team->gen, (int32_t)seq, __ATOMIC_SEQ_CST);
    wake_sleepers(team);
    if (phase == PHASE_QUIT) return;
    take_parts(net, team, seq, 0, nt);
    int32_t spins = 0;
    while (__atomic_load_n(&team->done, __ATOMIC_ACQUIRE) < net->parts) wait_a_little(&spins);
}

/* The other threads: wait for a phase, take parts, until told to quit. */
static void work(Net *net, Team *team, int32_t id, int32_t nt) {
    int64_t seen = 0;
    for (;;) {
        int64_t seq;
        int32_t spins = 0;
        while ((seq = __atomic_load_n(&team->seq, __ATOMIC_ACQUIRE)) == seen) {
            if (++spins < SPINS_BEFORE_SLEEP) BC_PAUSE();
            else { sleep_until_next(team, seen); spins = 0; }
        }
        seen = seq;
        if (__atomic_load_n(&team->phase, __ATOMIC_ACQUIRE) == PHASE_QUIT) return;
        take_parts(net, team, seq, id, nt);
    }
}
#endif

/* Run up to `steps` steps; returns how many ran (fewer when a spike buffer needs emptying first). */
int64_t bc_run(Net *net, int64_t steps) {
    BC_FTZ_ON();  /* subnormals to zero (see the top of this file) */
    int64_t done = 0;
    if (net->parts < 1) net->parts = 1;
#if defined(_OPENMP)
    if (net->threads > 1 && net->parts > 1) {
        int64_t claimed[net->parts];
        for (int32_t t = 0; t < net->parts; t++) claimed[t] = 0;
        Team team = {0, 0, PHASE_UPDATE, claimed, 0, 0};
#pragma omp parallel num_threads(net->threads) default(shared)
        {
            BC_FTZ_ON();  /* the floating-point control register is per thread */
            const int32_t id = (int32_t)omp_get_thread_num(), nt = (int32_t)omp_get_num_threads();
            if (id == 0) {
                for (; done < steps; done++) {
                    if (recorders_full(net)) break;
                    begin_step(net);
                    run_phase(net, &team, PHASE_UPDATE, nt);
                    run_phase(net, &team, PHASE_PROPAGATE, nt);
                    end_step(net, done);
                }
                run_phase(net, &team, PHASE_QUIT, nt);
            } else {
                work(net, &team, id, nt);
            }
            BC_FTZ_OFF();
        }
        BC_FTZ_OFF();
        return done;
    }
#endif
    for (; done < steps; done++) {
        if (recorders_full(net)) break;
        begin_step(net);
        for (int32_t t = 0; t < net->parts; t++) run_part(net, PHASE_UPDATE, t);
        for (int32_t t = 0; t < net->parts; t++) run_part(net, PHASE_PROPAGATE, t);
        end_step(net, done);
    }
    BC_FTZ_OFF();
    return done;
}

/* The trials of a protocol in one call (Simulator.run_trials): before each trial the network's rest (copies of
 * initial values, zeroed buffers: Simulator._rest_plan), the trial's row of rates (mean counts per step) into one
 * Poisson rate map and its plan, every spike recorder's counts zeroed; then `steps` steps; then the counts of the
 * listed recorders copied out. Every spike recorder counts only (no room for triples), so no step stops early. */
typedef struct {
    int64_t n_copies, n_zeros;
    void *const *copy_dst;
    void *const *copy_src;
    const int64_t *copy_bytes;
    void *const *zero_dst;
    const int64_t *zero_bytes;
    const REAL *rates;                 /* [n_trials * B * m] */
    int64_t m;                         /* the rate map's entries per trial of the batch */
    int32_t input, n_out;              /* the Poisson input whose map is set; how many recorders are copied out */
    const int32_t *out_rec;            /* [n_out] recorder indices */
    int64_t *const *out;               /* [n_out] destinations, [n_trials * B * n] each */
    int64_t stop_below;                /* > 0: stop after a trial in which some trial of the batch counted fewer
                                          spikes in the first listed recorder */
} Trials;

int64_t bc_poisson_plan(const REAL *lams, int32_t B, int64_t m, double *limits, int64_t *nz_ptr, int64_t *nz_index,
                        double *nz_accept, double *nz_max);

/* Returns how many trials ran: n_trials, or fewer when stop_below stopped them. */
int64_t bc_run_trials(Net *net, const Trials *T, int64_t steps, int64_t n_trials) {
    Input *Q = &net->inputs[T->input];
    const int64_t row = (int64_t)net->B * T->m;
    for (int64_t k = 0; k < n_trials; k++) {
        for (int64_t c = 0; c < T->n_copies; c++) memcpy(T->copy_dst[c], T->copy_src[c], (size_t)T->copy_bytes[c]);
        for (int64_t z = 0; z < T->n_zeros; z++) memset(T->zero_dst[z], 0, (size_t)T->zero_bytes[z]);
        memcpy(Q->lams, T->rates + k * row, (size_t)row * sizeof(REAL));
        bc_poisson_plan((const REAL *)Q->lams, net->B, T->m, (double *)Q->limits, (int64_t *)Q->nz_ptr,
                        (int64_t *)Q->nz_index, (double *)Q->nz_accept, (double *)Q->nz_max);
        for (int32_t r = 0; r < net->n_recs; r++)
            if (net->recs[r].type == REC_SPIKES)
                memset(net->recs[r].counts, 0, (size_t)net->B * net->pops[net->recs[r].pop].n * sizeof(int64_t));
        bc_run(net, steps);
        for (int32_t o = 0; o < T->n_out; o++) {
            const Rec *R = &net->recs[T->out_rec[o]];
            const int64_t n = (int64_t)net->B * net->pops[R->pop].n;
            memcpy(T->out[o] + k * n, R->counts, (size_t)n * sizeof(int64_t));
        }
        if (T->stop_below > 0 && T->n_out > 0) {
            const Rec *R = &net->recs[T->out_rec[0]];
            const int32_t n = net->pops[R->pop].n;
            for (int32_t b = 0; b < net->B; b++) {
                int64_t total = 0;
                for (int32_t i = 0; i < n; i++) total += R->counts[(int64_t)b * n + i];
                if (total < T->stop_below) return k + 1;
            }
        }
    }
    return n_trials;
}

/* Whether this build runs threads (compiled with OpenMP). */
int32_t bc_openmp(void) {
#if defined(_OPENMP)
    return 1;
#else
    return 0;
#endif
}

/* For part boundaries bounds[0..T] of a post population, cut each CSR row i (synapses indptr[i] .. indptr[i+1]-1
 * onto post[s]) into the synapses onto each part: cuts[i(T+1)+t] is the row's first synapse with post >= bounds[t]
 * (cuts[i(T+1)] = indptr[i], cuts[i(T+1)+T] = indptr[i+1]). Returns 0, or -1 when a row is not sorted by post (no
 * cuts then: propagation filters those rows synapse by synapse). */
int32_t bc_row_cuts(const int64_t *indptr, const int32_t *post, int64_t n_pre, const int32_t *bounds, int32_t T,
                    int64_t *cuts) {
    for (int64_t i = 0; i < n_pre; i++)
        for (int64_t s = indptr[i] + 1; s < indptr[i + 1]; s++)
            if (post[s] < post[s - 1]) return -1;
    for (int64_t i = 0; i < n_pre; i++) {
        int64_t *c = cuts + i * (T + 1);
        c[0] = indptr[i];
        c[T] = indptr[i + 1];
        for (int32_t t = 1; t < T; t++) {  /* first s in [c[t-1], end) with post[s] >= bounds[t] */
            int64_t a = c[t - 1], z = indptr[i + 1];
            while (a < z) {
                const int64_t mid = a + (z - a) / 2;
                if (post[mid] < bounds[t]) a = mid + 1; else z = mid;
            }
            c[t] = a;
        }
    }
    return 0;
}

/* Seed the generator with splitmix64, as the xoshiro authors recommend. */
void bc_seed(uint64_t *state, uint64_t seed) {
    for (int i = 0; i < 4; i++) {
        uint64_t z = (seed += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        state[i] = z ^ (z >> 31);
    }
}

/* What the Poisson sampler reads for a rate map lams [B*m] (expected events per step), computed once per map (see
 * Input): limits = exp(-lams) in double; per trial b the neurons with a non-zero rate (nz_index[nz_ptr[b] ..
 * nz_ptr[b+1]-1], ascending), each rate over the trial's largest (nz_accept), that largest in nz_max[b] (infinite
 * when a rate of the trial is not finite). Returns the number of non-zero rates. */
int64_t bc_poisson_plan(const REAL *lams, int32_t B, int64_t m, double *limits, int64_t *nz_ptr, int64_t *nz_index,
                        double *nz_accept, double *nz_max) {
    int64_t e = 0;
    nz_ptr[0] = 0;
    for (int32_t b = 0; b < B; b++) {
        const REAL *row = lams + (int64_t)b * m;
        double largest = 0.0;
        int finite = 1;
        for (int64_t j = 0; j < m; j++) {
            const double lam = (double)row[j];
            limits[(int64_t)b * m + j] = exp(-lam);
            if (!isfinite(lam)) finite = 0;
            else if (lam > largest) largest = lam;
        }
        nz_max[b] = finite ? largest : INFINITY;
        for (int64_t j = 0; j < m; j++) {
            const double lam = (double)row[j];
            if (lam > 0) { nz_index[e] = j; nz_accept[e] = lam / nz_max[b]; e++; }
        }
        nz_ptr[b + 1] = e;
    }
    return e;
}

/* The blow-up check's fast path: the index of the first of n arrays (lens[a] REALs at ptrs[a]) whose sum is not
 * finite, or -1 when every sum is. A NaN or an infinity makes the sum non-finite; a sum of finite values that
 * overflows is a false alarm the caller resolves by counting exactly (braincore/finite.py). Eight partial sums so
 * that the loop vectorises without reassociation flags. */
int32_t bc_first_nonfinite(void *const *ptrs, const int64_t *lens, int32_t n) {
    for (int32_t a = 0; a < n; a++) {
        const REAL *restrict x = (const REAL *)ptrs[a];
        const int64_t m = lens[a], whole = m - m % 8;
        REAL acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int64_t i = 0; i < whole; i += 8)
            for (int j = 0; j < 8; j++) acc[j] += x[i + j];
        REAL s = 0;
        for (int64_t i = whole; i < m; i++) s += x[i];
        for (int j = 0; j < 8; j++) s += acc[j];
        if (!isfinite(s)) return a;
    }
    return -1;
}

int32_t bc_abi_version(void) { return 12; }
