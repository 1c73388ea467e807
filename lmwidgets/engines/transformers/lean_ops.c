/* The small operations of a Llama-family decoding step, one call each (see lean_ops.py).
 *
 * Between a decoder layer's matrix products, ATen runs ~27 small operations a step (norms,
 * rotary, attention, activation, residuals); each costs 10-20 us on a CPU whose caches the
 * products just flushed, about a quarter of a step of a small model. These loops do the same
 * arithmetic in five calls a layer. Compiled once per machine (-O3 -march=native), float32,
 * contiguous inputs; the caller checks shapes and strides.
 *
 * -ffp-contract=off: no fused multiply-add, so the rotation rounds as ATen's mul, mul, add do.
 */
#include <math.h>
#include <stddef.h>

/* a . b over n (16 independent lanes, so the loop vectorizes without reordering rules) */
static float dot(const float *a, const float *b, long n) {
    float acc[16] = {0};
    long j = 0;
    for (; j + 16 <= n; j += 16)
        for (int l = 0; l < 16; l++) acc[l] += a[j + l] * b[j + l];
    float sum = 0.0f;
    for (; j < n; j++) sum += a[j] * b[j];
    for (int l = 0; l < 16; l++) sum += acc[l];
    return sum;
}

/* out = weight * (x / sqrt(mean(x^2) + eps)), one row of n */
static void rms_row(const float *x, const float *weight, float eps, long n, float *out) {
    float scale = 1.0f / sqrtf(dot(x, x, n) / (float)n + eps);
    for (long k = 0; k < n; k++) out[k] = weight[k] * (x[k] * scale);
}

void lmw_rms_norm(const float *x, const float *weight, float eps, long rows, long n, float *out) {
    for (long r = 0; r < rows; r++) rms_row(x + r * n, weight, eps, n, out + r * n);
}

/* total = x + y (the residual), normed = rms_norm(total) */
void lmw_add_rms_norm(const float *x, const float *y, const float *weight, float eps, long rows,
                      long n, float *total, float *normed) {
    for (long k = 0; k < rows * n; k++) total[k] = x[k] + y[k];
    lmw_rms_norm(total, weight, eps, rows, n, normed);
}

/* Rotate the first `heads` heads of each row in place: x*cos + cat(x2, x1)*signed_sin, with
 * cos/signed_sin one row of head_dim per batch row (transformers' rotate_half, signs moved). */
void lmw_rotary(float *x, long rows, long row_stride, long heads, long head_dim, const float *cos,
                const float *signed_sin) {
    long half = head_dim / 2;
    for (long r = 0; r < rows; r++) {
        const float *c = cos + r * head_dim, *s = signed_sin + r * head_dim;
        for (long h = 0; h < heads; h++) {
            float *v = x + r * row_stride + h * head_dim;
            for (long k = 0; k < half; k++) {
                float first = v[k], second = v[half + k];
                float a = first * c[k], b = second * s[k];
                float p = second * c[half + k], q = first * s[half + k];
                v[k] = a + b;
                v[half + k] = p + q;
            }
        }
    }
}

/* One query per row and head against the cache: softmax(q.K * scaling) V, grouped heads.
 * q: rows x (n_q*d) with row stride q_stride; key, value: rows x n_kv x length x d, each
 * head's length x d contiguous, heads kv_head_stride apart and rows kv_row_stride apart (a
 * cache that grows in place hands out views of a larger buffer); out: rows x n_q x d. */
void lmw_attend(const float *q, long q_stride, const float *key, const float *value,
                long kv_row_stride, long kv_head_stride, long rows, long n_q, long n_kv,
                long length, long d, float scaling, float *scores, float *out) {
    long group = n_q / n_kv;
    for (long r = 0; r < rows; r++) {
        for (long h = 0; h < n_q; h++) {
            const float *qh = q + r * q_stride + h * d;
            long at = r * kv_row_stride + (h / group) * kv_head_stride;
            const float *k = key + at, *v = value + at;
            float top = -INFINITY;
            for (long t = 0; t < length; t++) {
                scores[t] = dot(qh, k + t * d, d) * scaling;
                if (scores[t] > top) top = scores[t];
            }
            float total = 0.0f;
            for (long t = 0; t < length; t++) {
                scores[t] = expf(scores[t] - top);
                total += scores[t];
            }
            float *o = out + (r * n_q + h) * d;
            for (long j = 0; j < d; j++) o[j] = 0.0f;
            for (long t = 0; t < length; t++) {
                float p = scores[t] / total;
                for (long j = 0; j < d; j++) o[j] += p * v[t * d + j];
            }
        }
    }
}

/* out = silu(gate) * up, gate and up each `width` wide in rows of `stride` */
void lmw_silu_mul(const float *gate, const float *up, long rows, long stride, long width,
                  float *out) {
    for (long r = 0; r < rows; r++) {
        const float *g = gate + r * stride, *u = up + r * stride;
        float *o = out + r * width;
        for (long k = 0; k < width; k++) o[k] = g[k] / (1.0f + expf(-g[k])) * u[k];
    }
}
