/* The native kernel of fraud/runtime/trees.py: walk every tree of a CompiledTrees over a batch of rows.
 *
 * Built and loaded by fraud/runtime/native.py (`python -m fraud.runtime.native`); the numpy code in
 * fraud/runtime/trees.py computes exactly the same numbers and is the fallback without a compiler.
 *
 * Layout (see fraud/runtime/trees.py): complete trees of depth `depth`, stored level by level and the
 * levels concatenated; level l starts at offsets[l] = n_trees * (2**l - 1). Within a level, the
 * node at position p has children 2p and 2p + 1 at the next level, and tree t's root is position t
 * of level 0. One step is p = 2p + (xx[slot[p]] >= key[p]), where a row is laid out as
 * xx = [x, -x] in float32, so missing values (NaN) follow each node's default direction.
 *
 * Outputs, in the numpy code's order of operations (so the numbers are bit for bit the same;
 * float sums depend on their order):
 *   margins[i]           float32 sum over trees of the leaf values, tree by tree (the base
 *                        margin is folded into tree 0's leaves), stored as double;
 *   work[i * 2F + slot]  Saabas contributions per slot, when work is not NULL: stepping into
 *                        child q credits delta[offsets[l + 1] + q] to the slot tested, tree
 *                        by tree and level by level within a tree; the caller zeroes work
 *                        and folds x and -x slots into features.
 * Rows go in blocks of BLOCK: one tree's nodes are tested against many rows while the rows'
 * positions stay in L1, and the rows' steps are independent, so the CPU overlaps them.
 */
#include <stddef.h>
#include <stdint.h>

#define BLOCK 64

#ifndef TREEWALK_DIGEST
#define TREEWALK_DIGEST "unversioned"
#endif

/* The digest of the source this library was built from (checked by fraud/runtime/native.py). */
const char *treewalk_digest(void) { return TREEWALK_DIGEST; }

void treewalk(const float *xx, int64_t n, int64_t width, const int32_t *slot, const float *key,
              const double *delta, const float *value, const int64_t *offsets, int64_t n_trees,
              int64_t depth, double *margins, double *work)
{
    int64_t pos[BLOCK];
    float sum[BLOCK];
    for (int64_t start = 0; start < n; start += BLOCK) {
        const int64_t m = n - start < BLOCK ? n - start : BLOCK;
        const float *rows = xx + start * width;
        double *acc = work ? work + start * width : NULL;
        for (int64_t i = 0; i < m; i++)
            sum[i] = -0.0f; /* the additive identity: a lone -0.0 leaf stays -0.0, as in numpy */
        for (int64_t t = 0; t < n_trees; t++) {
            for (int64_t i = 0; i < m; i++)
                pos[i] = t;
            for (int64_t level = 0; level < depth; level++) {
                const int32_t *s = slot + offsets[level];
                const float *k = key + offsets[level];
                const double *d = delta + offsets[level + 1];
                for (int64_t i = 0; i < m; i++) {
                    const int64_t p = pos[i];
                    const int32_t at = s[p];
                    const int64_t q = 2 * p + (rows[i * width + at] >= k[p]);
                    if (acc)
                        acc[i * width + at] += d[q];
                    pos[i] = q;
                }
            }
            for (int64_t i = 0; i < m; i++)
                sum[i] += value[pos[i]];
        }
        for (int64_t i = 0; i < m; i++)
            margins[start + i] = (double)sum[i];
    }
}
