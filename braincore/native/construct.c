/* Network construction in C: the hot loops of braincore/construction.py, the same numbers bit for bit.
 *
 * braincore/native/construct.py compiles this file (braincore/native/build.py: -O3 -march=native
 * -ffp-contract=off, so every floating-point operation is rounded as written) and checks it against the PyTorch
 * functions it replaces before using it; construction falls back to PyTorch where it cannot be built.
 *
 * - bc_hash_uniform: the counter-based uniforms of braincore/counter_rng.py (splitmix64's finaliser chained over
 *   the key, 53 bits to a double in (0, 1)) for keys (prefix, a[i], b[i], tail...).
 * - bc_ndtri: the inverse normal CDF of PyTorch's torch.special.ndtri (Cephes' ndtri: the same rational
 *   approximations, coefficients and operation order; log and sqrt from the C library). PyTorch's CPU kernel is
 *   compiled with fused multiply-adds where the CPU has them (its AVX2 / AVX-512 builds contract the Horner steps
 *   and y + y t), so this one fuses the same operations explicitly (fma); where PyTorch rounds them apart, the
 *   check of construct.py finds the difference and PyTorch's ndtri is used.
 * - bc_truncated_normal: truncated_normal_of of those uniforms, in one pass.
 * - bc_fixed_total: a fixed_total connector with multapses: n integers uniform in [0, n_pre m) (keyed by the draw's
 *   index), sorted (LSD radix sort), split into (pre, post) and numbered by post row (slot) -- the CSR order.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

int32_t bc_construct_abi(void) { return 1; }

static inline uint64_t mix64(uint64_t z) {
    z += 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static inline double uniform_of(uint64_t h) { return ((double)(h >> 11) + 0.5) * 0x1.0p-53; }

/* out[i] = uniform(hash(prefix, a[i], b[i], tail[0], ..., tail[n_tail - 1])); b may be NULL (keys (prefix, a[i],
 * tail...)); a and b are int32 (wide == 0) or int64 (wide == 1) arrays. */
void bc_hash_uniform(uint64_t prefix, const void *a, const void *b, int32_t wide, int64_t n, int32_t n_tail,
                     const int64_t *tail, double *out) {
    for (int64_t i = 0; i < n; i++) {
        uint64_t h = mix64(prefix ^ (uint64_t)(wide ? ((const int64_t *)a)[i] : (int64_t)((const int32_t *)a)[i]));
        if (b) h = mix64(h ^ (uint64_t)(wide ? ((const int64_t *)b)[i] : (int64_t)((const int32_t *)b)[i]));
        for (int32_t t = 0; t < n_tail; t++) h = mix64(h ^ (uint64_t)tail[t]);
        out[i] = uniform_of(h);
    }
}

/* Cephes' ndtri (Moshier 1984-1989, 3-clause BSD), evaluated as PyTorch's calc_ndtri does: Horner sums from the
 * leading coefficient (result = result * x + c, starting from 0, fused), the rest rounded operation by operation. */
static const double NDTRI_P0[5] = {-5.99633501014107895267E1, 9.80010754185999661536E1, -5.66762857469070293439E1,
                                   1.39312609387279679503E1, -1.23916583867381258016E0};
static const double NDTRI_Q0[9] = {1.0, 1.95448858338141759834E0, 4.67627912898881538453E0,
                                   8.63602421390890590575E1, -2.25462687854119370527E2, 2.00260212380060660359E2,
                                   -8.20372256168333339912E1, 1.59056225126211695515E1, -1.18331621121330003142E0};
static const double NDTRI_P1[9] = {4.05544892305962419923E0, 3.15251094599893866154E1, 5.71628192246421288162E1,
                                   4.40805073893200834700E1, 1.46849561928858024014E1, 2.18663306850790267539E0,
                                   -1.40256079171354495875E-1, -3.50424626827848203418E-2, -8.57456785154685413611E-4};
static const double NDTRI_Q1[9] = {1.0, 1.57799883256466749731E1, 4.53907635128879210584E1,
                                   4.13172038254672030440E1, 1.50425385692907503408E1, 2.50464946208309415979E0,
                                   -1.42182922854787788574E-1, -3.80806407691578277194E-2, -9.33259480895457427372E-4};
static const double NDTRI_P2[9] = {3.23774891776946035970E0, 6.91522889068984211695E0, 3.93881025292474443415E0,
                                   1.33303460815807542389E0, 2.01485389549179081538E-1, 1.23716634817820021358E-2,
                                   3.01581553508235416007E-4, 2.65806974686737550832E-6, 6.23974539184983293730E-9};
static const double NDTRI_Q2[9] = {1.0, 6.02427039364742014255E0, 3.67983563856160859403E0,
                                   1.37702099489081330271E0, 2.16236993594496635890E-1, 1.34204006088543189037E-2,
                                   3.28014464682127739104E-4, 2.89247864745380683936E-6, 6.79019408009981274425E-9};

static inline double horner(double x, const double *c, int degree) {
    double r = 0.0;
    for (int i = 0; i <= degree; i++) r = fma(r, x, c[i]);
    return r;
}

static double ndtri1(double y0) {
    const double exp_m2 = 0.13533528323661269189;  /* exp(-2) */
    if (y0 == 0.0) return -INFINITY;
    if (y0 == 1.0) return INFINITY;
    if (y0 < 0.0 || y0 > 1.0) return NAN;
    int negate = 1;
    double y = y0;
    if (y > 1.0 - exp_m2) {
        y = 1.0 - y;
        negate = 0;
    }
    if (y > exp_m2) {
        y = y - 0.5;
        const double y2 = y * y;
        const double x = fma(y, y2 * horner(y2, NDTRI_P0, 4) / horner(y2, NDTRI_Q0, 8), y);
        return x * 2.50662827463100050242E0;
    }
    double x = sqrt(-2.0 * log(y));
    const double x0 = x - log(x) / x;
    const double z = 1.0 / x;
    const double x1 = x < 8.0 ? z * horner(z, NDTRI_P1, 8) / horner(z, NDTRI_Q1, 8)
                              : z * horner(z, NDTRI_P2, 8) / horner(z, NDTRI_Q2, 8);
    x = x0 - x1;
    return negate ? -x : x;
}

void bc_ndtri(const double *p, int64_t n, double *out) {
    for (int64_t i = 0; i < n; i++) out[i] = ndtri1(p[i]);
}

/* The central branch of ndtri1 (exp(-2) < y <= 1 - exp(-2)) without branches, so that loops over it vectorise
 * (the operations, fused or not, are those of ndtri1: the same numbers). */
static inline double ndtri_central(double y) {
    y = y - 0.5;
    const double y2 = y * y;
    double p = 0.0, q = 0.0;
    for (int i = 0; i <= 4; i++) p = fma(p, y2, NDTRI_P0[i]);
    for (int i = 0; i <= 8; i++) q = fma(q, y2, NDTRI_Q0[i]);
    return fma(y, y2 * p / q, y) * 2.50662827463100050242E0;
}

#define BC_BLOCK 256

/* Truncated normals by inverse transform, as braincore/synapses/weights.py's truncated_normal_of computes them
 * from the uniforms of bc_hash_uniform (keys (prefix, a[i], b[i])): z = clamp(ndtri(pa + u width), lo, hi),
 * out = mean + std (mirror ? -z : z). Block by block: the hashes and the central branch of ndtri (about 73 % of
 * the values) in loops that vectorise, the tails (which call log) one by one. */
void bc_truncated_normal(uint64_t prefix, const void *a, const void *b, int32_t wide, int64_t n, double pa,
                         double width, double lo, double hi, int32_t mirror, double mean, double std, double *out) {
    const double exp_m2 = 0.13533528323661269189;
    double p[BC_BLOCK], z[BC_BLOCK];
    for (int64_t start = 0; start < n; start += BC_BLOCK) {
        const int m = (int)(n - start < BC_BLOCK ? n - start : BC_BLOCK);
        if (wide) {
            const int64_t *ka = (const int64_t *)a + start, *kb = (const int64_t *)b + start;
            for (int i = 0; i < m; i++) p[i] = pa + uniform_of(mix64(mix64(prefix ^ (uint64_t)ka[i]) ^ (uint64_t)kb[i])) * width;
        } else {
            const int32_t *ka = (const int32_t *)a + start, *kb = (const int32_t *)b + start;
            for (int i = 0; i < m; i++)
                p[i] = pa + uniform_of(mix64(mix64(prefix ^ (uint64_t)(int64_t)ka[i]) ^ (uint64_t)(int64_t)kb[i])) * width;
        }
        for (int i = 0; i < m; i++) z[i] = ndtri_central(p[i]);
        for (int i = 0; i < m; i++)
            if (!(p[i] > exp_m2 && p[i] <= 1.0 - exp_m2)) z[i] = ndtri1(p[i]);
        double *o = out + start;
        for (int i = 0; i < m; i++) {
            double v = z[i] < lo ? lo : z[i];  /* torch.clamp(min=lo, max=hi); never NaN: p lies in [0, 1] */
            v = v > hi ? hi : v;
            o[i] = mean + std * (mirror ? -v : v);
        }
    }
}

/* LSD radix sort of n 32-bit keys below 2^bits, 11 bits a pass; the result is in keys (scratch: n more). */
static void radix_sort32(uint32_t *keys, uint32_t *scratch, int64_t n, int bits) {
    int64_t count[1 << 11];
    uint32_t *src = keys, *dst = scratch;
    for (int shift = 0; shift < bits; shift += 11) {
        memset(count, 0, sizeof(count));
        for (int64_t i = 0; i < n; i++) count[(src[i] >> shift) & 2047]++;
        int64_t sum = 0;
        for (int d = 0; d < 2048; d++) {
            const int64_t c = count[d];
            count[d] = sum;
            sum += c;
        }
        for (int64_t i = 0; i < n; i++) dst[count[(src[i] >> shift) & 2047]++] = src[i];
        uint32_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != keys) memcpy(keys, src, (size_t)n * sizeof(uint32_t));
}

/* A fixed_total connector with multapses, as braincore/construction.py's _whole and _by_post build it: draw i
 * (0 <= i < n) is q_i = min(floor(u_i allowed), allowed - 1), u_i = uniform(hash(prefix, i)) (prefix: the hash of
 * (seed, stream, 0)); sorted, q = pre m + post (post shifted past pre when exclude). In that order (the CSR order:
 * by pre, post, slot) returns post (written over q, int32), slot (the synapse's position in its post neuron's
 * row: how many earlier synapses share its post) and indptr [n_pre + 1]. allowed = n_pre m must be below 2^32;
 * row_count: n_post zeroed int32 scratch. */
void bc_fixed_total(uint64_t prefix, int64_t n, int64_t allowed, int64_t m, int32_t exclude, int64_t n_pre,
                    uint32_t *q, uint32_t *scratch, int32_t *slot, int64_t *indptr, int32_t *row_count) {
    const double scale = (double)allowed;
    uint32_t high = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t v = (int64_t)(uniform_of(mix64(prefix ^ (uint64_t)i)) * scale);
        if (v > allowed - 1) v = allowed - 1;
        q[i] = (uint32_t)v;
        high |= (uint32_t)v;
    }
    int bits = 0;
    while (bits < 32 && (high >> bits)) bits++;
    radix_sort32(q, scratch, n, bits);
    int64_t pre = 0, row_end = m;  /* q in [pre m, row_end) belongs to pre (no division per synapse) */
    indptr[0] = 0;
    for (int64_t s = 0; s < n; s++) {
        const int64_t v = (int64_t)q[s];
        while (v >= row_end) {
            indptr[++pre] = s;
            row_end += m;
        }
        int64_t post = v - (row_end - m);
        if (exclude && post >= pre) post++;
        ((int32_t *)q)[s] = (int32_t)post;
        slot[s] = row_count[post]++;
    }
    while (pre < n_pre) indptr[++pre] = n;
}
