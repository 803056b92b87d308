/* shipyard's exact evaluator of LightGBM trees (see shipyard/runtime/compiled.py).

   QuickScorer (Lucchese et al., SIGIR 2015): every tree keeps a bit mask of its leaves, in
   left-to-right order. For each feature of a row, the nodes that send the row right ("false"
   nodes) clear the leaves of their left subtree; the row's leaf is then the leftmost leaf left
   in the mask. Numerical nodes are sorted by threshold per feature, so the false ones are a
   prefix (threshold < value); categorical nodes have one list per category. Each node's
   direction is LightGBM's own (Tree::NumericalDecision, Tree::CategoricalDecision); the
   tables the Python side builds encode the missing-value rules. The outputs are sums of leaf
   values in training order, one double at a time from 0.0, then the objective's transform
   with the C library's exp, as GBDT::PredictRaw and the objectives' ConvertOutput do. */

#include <math.h>
#include <stdint.h>
#include <string.h>

/* LightGBM: const double kZeroThreshold = 1e-35f; values within it are read as 0.0. */
static const double ZERO = (double)1e-35f;

/* The tables; the field order matches shipyard.runtime.compiled._Layout. */
typedef struct {
    int32_t n_features, n_trees, n_outputs, words, transform, unused;
    double sigmoid;
    const uint64_t* initial;
    const int64_t* leaf_offset;
    const double* leaf_value;
    const int64_t* plain_start; const double* plain_threshold; const int32_t* plain_tree; const uint64_t* plain_mask;
    const int64_t* zero_start; const double* zero_threshold; const int32_t* zero_tree; const uint64_t* zero_mask;
    const int64_t* nan_start; const int32_t* nan_tree; const uint64_t* nan_mask;
    const int64_t* zeroval_start; const int32_t* zeroval_tree; const uint64_t* zeroval_mask;
    const int64_t* cat_base; const int64_t* cat_start; const int32_t* cat_tree; const uint64_t* cat_mask;
} Model;

static inline void apply(uint64_t* leaves, int words, const int32_t* tree, const uint64_t* mask, int64_t start, int64_t stop) {
    if (words == 1) {
        for (int64_t i = start; i < stop; i++) leaves[tree[i]] &= mask[i];
    } else {
        for (int64_t i = start; i < stop; i++) {
            uint64_t* target = leaves + (int64_t)tree[i] * words;
            const uint64_t* source = mask + i * words;
            for (int w = 0; w < words; w++) target[w] &= source[w];
        }
    }
}

static inline int64_t below(const double* threshold, int64_t start, int64_t stop, double v) {
    int64_t i = start;
    while (i < stop && threshold[i] < v) i++;
    return i;
}

static inline void apply_below(uint64_t* leaves, int words, const double* threshold, const int32_t* tree, const uint64_t* mask, int64_t start, int64_t stop, double v) {
    if (words == 1) {
        for (int64_t i = start; i < stop && threshold[i] < v; i++) leaves[tree[i]] &= mask[i];
    } else {
        apply(leaves, words, tree, mask, start, below(threshold, start, stop, v));
    }
}

/* static_cast<int>(v) as x86-64 runs it: NaN and out-of-range values give a negative int. */
static inline int to_int(double v) {
    if (!(v > -2147483649.0 && v < 2147483648.0)) return -1;
    return (int)v;
}

void shipyard_predict(const Model* m, const double* rows, int64_t n, double* out, uint64_t* leaves, double* sum) {
    const int F = m->n_features, T = m->n_trees, K = m->n_outputs, W = m->words;
    for (int64_t row = 0; row < n; row++) {
        memcpy(leaves, m->initial, sizeof(uint64_t) * (size_t)T * (size_t)W);
        const double* x = rows + row * F;
        for (int f = 0; f < F; f++) {
            double v = x[f];
            if (fabs(v) <= ZERO) v = 0.0;
            if (isnan(v)) {
                apply(leaves, W, m->nan_tree, m->nan_mask, m->nan_start[f], m->nan_start[f + 1]);
            } else {
                int64_t s = m->plain_start[f];
                apply_below(leaves, W, m->plain_threshold, m->plain_tree, m->plain_mask, s, m->plain_start[f + 1], v);
                if (m->zero_start[f] < m->zero_start[f + 1]) {
                    if (v == 0.0) {
                        apply(leaves, W, m->zeroval_tree, m->zeroval_mask, m->zeroval_start[f], m->zeroval_start[f + 1]);
                    } else {
                        s = m->zero_start[f];
                        apply_below(leaves, W, m->zero_threshold, m->zero_tree, m->zero_mask, s, m->zero_start[f + 1], v);
                    }
                }
            }
            int64_t base = m->cat_base[f], slots = m->cat_base[f + 1] - base;
            if (slots > 0) {
                int c = to_int(v);
                int64_t slot = base + ((c >= 0 && c < slots - 1) ? c : slots - 1);
                apply(leaves, W, m->cat_tree, m->cat_mask, m->cat_start[slot], m->cat_start[slot + 1]);
            }
        }
        for (int k = 0; k < K; k++) sum[k] = 0.0;
        for (int t = 0; t < T; t++) {
            const uint64_t* mask = leaves + (int64_t)t * W;
            int leaf = 0;
            for (int w = 0; w < W; w++) {
                if (mask[w]) { leaf = w * 64 + __builtin_ctzll(mask[w]); break; }
            }
            sum[t % K] += m->leaf_value[m->leaf_offset[t] + leaf];
        }
        double* output = out + row * K;
        if (m->transform == 1) {
            output[0] = 1.0 / (1.0 + exp(-m->sigmoid * sum[0]));
        } else if (m->transform == 2) {
            double wmax = sum[0];
            for (int k = 1; k < K; k++) wmax = sum[k] > wmax ? sum[k] : wmax;
            double wsum = 0.0;
            for (int k = 0; k < K; k++) { output[k] = exp(sum[k] - wmax); wsum += output[k]; }
            for (int k = 0; k < K; k++) output[k] /= wsum;
        } else {
            for (int k = 0; k < K; k++) output[k] = sum[k];
        }
    }
}
