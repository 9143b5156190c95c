/* Decodes one lossless JPEG frame (ITU-T T.81 process 14, one component, no restart
 * intervals: what CT scanners and DCMTK write) from memory; anything else is reported as
 * unsupported so the caller can fall back to DCMTK's decoder. */
#include "sm_io_internal.h"

#include <string.h>

#define FAST_BITS 9
/* Lookahead that decodes a whole difference (code + extra bits) at once */
#define DIFF_BITS 12

typedef struct Huff {
    /* canonical code tables: for each length l (1..16) the largest code, and the index of
     * its first value */
    int32_t maxcode[18];
    int32_t valptr[17];
    int32_t mincode[17];
    uint8_t vals[256];
    /* FAST_BITS lookahead: (length << 8) | value, 0 when the code is longer */
    uint16_t fast[1 << FAST_BITS];
    /* DIFF_BITS lookahead: bits consumed (0: not decodable in DIFF_BITS) and the difference */
    uint8_t dlen[1 << DIFF_BITS];
    int32_t dval[1 << DIFF_BITS];
    bool present;
} Huff;

typedef struct Bits {
    const uint8_t *p, *end;
    uint64_t acc;
    int n;        /* valid bits in acc */
    bool marker;  /* a marker was met: only zero bits follow */
} Bits;

static bool huff_build(Huff *h, const uint8_t counts[16], const uint8_t *vals, size_t nvals)
{
    memset(h, 0, sizeof *h);
    if (nvals > 256)
        return false;
    memcpy(h->vals, vals, nvals);
    int32_t code = 0, k = 0;
    for (int l = 1; l <= 16; l++) {
        h->valptr[l] = k;
        h->mincode[l] = code;
        code += counts[l - 1];
        k += counts[l - 1];
        if (code > (1 << l))
            return false;
        h->maxcode[l] = counts[l - 1] ? code - 1 : -1;
        code <<= 1;
    }
    h->maxcode[17] = 0x7FFFFFFF;
    /* fast table */
    k = 0;
    code = 0;
    for (int l = 1; l <= 16; l++) {
        for (int q = 0; q < counts[l - 1]; q++, k++, code++) {
            if (l <= FAST_BITS) {
                int shift = FAST_BITS - l;
                for (int r = 0; r < (1 << shift); r++)
                    h->fast[(code << shift) | r] = (uint16_t)((l << 8) | h->vals[k]);
            }
        }
        code <<= 1;
    }
    /* whole-difference table: code of length l for category t followed by t extra bits */
    k = 0;
    code = 0;
    for (int l = 1; l <= 16; l++) {
        for (int q = 0; q < counts[l - 1]; q++, k++, code++) {
            int t = h->vals[k];
            int used = t == 16 ? l : l + t;
            if (t > 16 || used > DIFF_BITS)
                continue;
            int shift = DIFF_BITS - l;
            for (int r = 0; r < (1 << shift); r++) {
                int idx = (code << shift) | r;
                int32_t v = 0;
                if (t == 16) {
                    v = 32768;
                } else if (t > 0) {
                    v = r >> (shift - t);
                    if (v < (1 << (t - 1)))
                        v -= (1 << t) - 1;
                }
                h->dlen[idx] = (uint8_t)used;
                h->dval[idx] = v;
            }
        }
        code <<= 1;
    }
    h->present = true;
    return true;
}

static inline void fill(Bits *b)
{
    /* fast path: whole bytes with no 0xFF (no stuffing, no marker) */
    while (b->n <= 56 && !b->marker && b->p < b->end && *b->p != 0xFF) {
        b->acc |= (uint64_t)*b->p++ << (56 - b->n);
        b->n += 8;
    }
    while (b->n <= 56) {
        uint64_t byte = 0;
        if (!b->marker && b->p < b->end) {
            byte = *b->p++;
            if (byte == 0xFF) {
                if (b->p < b->end && *b->p == 0x00) {
                    b->p++;
                } else {
                    b->marker = true; /* end of entropy-coded data */
                    b->p--;
                    byte = 0;
                }
            }
        } else {
            b->marker = true;
        }
        b->acc |= byte << (56 - b->n);
        b->n += 8;
    }
}

static inline uint32_t peek(Bits *b, int n)
{
    return (uint32_t)(b->acc >> (64 - n));
}

static inline void skip(Bits *b, int n)
{
    b->acc <<= n;
    b->n -= n;
}

/* Returns the SSSS category, or -1 on an invalid code. */
static inline int decode_cat(Bits *b, const Huff *h)
{
    if (b->n < 32)
        fill(b);
    uint16_t f = h->fast[peek(b, FAST_BITS)];
    if (f) {
        skip(b, f >> 8);
        return f & 0xFF;
    }
    uint32_t bits = peek(b, 16);
    for (int l = FAST_BITS + 1; l <= 16; l++) {
        int32_t code = (int32_t)(bits >> (16 - l));
        if (h->maxcode[l] >= 0 && code <= h->maxcode[l] && code >= h->mincode[l]) {
            skip(b, l);
            int idx = h->valptr[l] + code - h->mincode[l];
            return idx < 256 ? h->vals[idx] : -1;
        }
    }
    return -1;
}

static inline int32_t decode_diff(Bits *b, const Huff *h, bool *bad)
{
    if (b->n < 32)
        fill(b);
    uint32_t look = peek(b, DIFF_BITS);
    if (h->dlen[look]) {
        skip(b, h->dlen[look]);
        return h->dval[look];
    }
    int t = decode_cat(b, h);
    if (t < 0 || t > 16) {
        *bad = true;
        return 0;
    }
    if (t == 0)
        return 0;
    if (t == 16)
        return 32768;
    if (b->n < 16)
        fill(b);
    int32_t v = (int32_t)peek(b, t);
    skip(b, t);
    if (v < (1 << (t - 1)))
        v -= (1 << t) - 1;
    return v;
}

static size_t be16(const uint8_t *p)
{
    return ((size_t)p[0] << 8) | p[1];
}

bool sm_ljpeg_decode(SmError **error, const uint8_t *data, size_t n, unsigned rows, unsigned cols,
                     unsigned bytes_per_sample, void *dst)
{
    Huff *tables = NULL;
    Huff local[4];
    tables = local;
    for (int t = 0; t < 4; t++)
        tables[t].present = false;
    unsigned precision = 0, width = 0, height = 0;
    bool sof = false;
    if (n < 4 || data[0] != 0xFF || data[1] != 0xD8) {
        sm_error_set(error, SM_ERR_FORMAT, "lossless JPEG frame does not start with SOI");
        return false;
    }
    if (bytes_per_sample != 2) {
        sm_error_set(error, SM_ERR_UNSUPPORTED, "lossless JPEG into %u-byte samples", bytes_per_sample);
        return false;
    }
    size_t pos = 2;
    while (pos + 4 <= n) {
        if (data[pos] != 0xFF) {
            sm_error_set(error, SM_ERR_FORMAT, "lossless JPEG: marker expected at byte %zu", pos);
            return false;
        }
        uint8_t m = data[pos + 1];
        if (m == 0xFF) {
            pos++;
            continue;
        }
        size_t len = be16(data + pos + 2);
        if (len < 2 || pos + 2 + len > n) {
            sm_error_set(error, SM_ERR_FORMAT, "lossless JPEG: bad segment length at byte %zu", pos);
            return false;
        }
        const uint8_t *seg = data + pos + 4;
        size_t slen = len - 2;
        if (m == 0xC3) {
            if (slen < 9 || seg[5] != 1) {
                sm_error_set(error, SM_ERR_UNSUPPORTED, "lossless JPEG with several components");
                return false;
            }
            precision = seg[0];
            height = (unsigned)be16(seg + 1);
            width = (unsigned)be16(seg + 3);
            sof = true;
        } else if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
            sm_error_set(error, SM_ERR_UNSUPPORTED, "not a process-14 lossless JPEG (SOF %02X)", m);
            return false;
        } else if (m == 0xC4) {
            size_t q = 0;
            while (q + 17 <= slen) {
                unsigned tc_th = seg[q];
                const uint8_t *counts = seg + q + 1;
                size_t total = 0;
                for (int l = 0; l < 16; l++)
                    total += counts[l];
                if ((tc_th & 0x0F) > 3 || q + 17 + total > slen ||
                    !huff_build(&tables[tc_th & 0x0F], counts, seg + q + 17, total)) {
                    sm_error_set(error, SM_ERR_FORMAT, "lossless JPEG: bad Huffman table");
                    return false;
                }
                q += 17 + total;
            }
        } else if (m == 0xDD) {
            if (slen >= 2 && be16(seg) != 0) {
                sm_error_set(error, SM_ERR_UNSUPPORTED, "lossless JPEG with restart intervals");
                return false;
            }
        } else if (m == 0xDA) {
            if (!sof || slen < 6 || seg[0] != 1) {
                sm_error_set(error, SM_ERR_UNSUPPORTED, "lossless JPEG scan layout");
                return false;
            }
            unsigned td = seg[2] >> 4, predictor = seg[3], pt = seg[5] & 0x0F;
            if (td > 3 || !tables[td].present || predictor < 1 || predictor > 7 || precision < 2 ||
                precision > 16 || pt >= precision) {
                sm_error_set(error, SM_ERR_UNSUPPORTED, "lossless JPEG parameters (predictor %u, precision %u)",
                             predictor, precision);
                return false;
            }
            if (width != cols || height != rows) {
                sm_error_set(error, SM_ERR_FORMAT, "lossless JPEG frame is %ux%u, header says %ux%u", width, height,
                             cols, rows);
                return false;
            }
            const Huff *h = &tables[td];
            Bits b = {data + pos + 2 + len, data + n, 0, 0, false};
            bool bad = false;
            const uint32_t mask = 0xFFFF;
            uint16_t *o16 = dst;
            uint16_t *prev = NULL;
            for (unsigned y = 0; y < rows && !bad; y++) {
                uint16_t *cur = o16 + (size_t)y * cols;
                if (y == 0) {
                    int32_t pred = 1 << (precision - pt - 1);
                    for (unsigned x = 0; x < cols; x++) {
                        int32_t v = (pred + decode_diff(&b, h, &bad)) & (int32_t)mask;
                        cur[x] = (uint16_t)v;
                        pred = v;
                    }
                } else if (predictor == 1) {
                    /* Ra (left neighbour), what nearly every scanner and DCMTK write: a
                     * dependency-light loop of its own */
                    int32_t v = (prev[0] + decode_diff(&b, h, &bad)) & (int32_t)mask;
                    cur[0] = (uint16_t)v;
                    for (unsigned x = 1; x < cols; x++) {
                        v = (v + decode_diff(&b, h, &bad)) & (int32_t)mask;
                        cur[x] = (uint16_t)v;
                    }
                } else {
                    int32_t v = (prev[0] + decode_diff(&b, h, &bad)) & (int32_t)mask;
                    cur[0] = (uint16_t)v;
                    for (unsigned x = 1; x < cols; x++) {
                        int32_t ra = cur[x - 1], rb = prev[x], rc = prev[x - 1], p;
                        switch (predictor) {
                        case 1: p = ra; break;
                        case 2: p = rb; break;
                        case 3: p = rc; break;
                        case 4: p = ra + rb - rc; break;
                        case 5: p = ra + ((rb - rc) >> 1); break;
                        case 6: p = rb + ((ra - rc) >> 1); break;
                        default: p = (ra + rb) >> 1; break;
                        }
                        cur[x] = (uint16_t)((p + decode_diff(&b, h, &bad)) & (int32_t)mask);
                    }
                }
                prev = cur;
            }
            if (bad) {
                sm_error_set(error, SM_ERR_FORMAT, "lossless JPEG: invalid Huffman code");
                return false;
            }
            if (pt)
                for (size_t i = 0; i < (size_t)rows * cols; i++)
                    o16[i] = (uint16_t)(o16[i] << pt);
            return true;
        }
        pos += 2 + len;
    }
    sm_error_set(error, SM_ERR_FORMAT, "lossless JPEG: no scan found");
    return false;
}
