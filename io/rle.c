/* Decodes one DICOM RLE Lossless frame (PS3.5 Annex G: a 64-byte header of segment offsets,
 * then one PackBits segment per byte plane, most significant plane first) from memory. */
#include "sm_io_internal.h"

#include <string.h>

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* Unpacks one segment into every stride-th byte of out (count bytes expected). Returns the
 * number of bytes produced. */
static size_t unpack(const uint8_t *src, size_t n, uint8_t *out, size_t count, size_t stride)
{
    size_t produced = 0, pos = 0;
    while (pos < n && produced < count) {
        int8_t c = (int8_t)src[pos++];
        if (c >= 0) {
            size_t run = (size_t)c + 1;
            if (run > n - pos)
                run = n - pos;
            if (run > count - produced)
                run = count - produced;
            for (size_t q = 0; q < run; q++)
                out[(produced + q) * stride] = src[pos + q];
            pos += run;
            produced += run;
        } else if (c != -128) {
            if (pos >= n)
                break;
            size_t run = (size_t)(1 - c);
            uint8_t v = src[pos++];
            if (run > count - produced)
                run = count - produced;
            for (size_t q = 0; q < run; q++)
                out[(produced + q) * stride] = v;
            produced += run;
        }
    }
    return produced;
}

bool sm_rle_decode(SmError **error, const uint8_t *data, size_t n, unsigned rows, unsigned cols,
                   unsigned bytes_per_sample, void *dst)
{
    if (data == NULL || n < 64 || bytes_per_sample < 1 || bytes_per_sample > 4) {
        sm_error_set(error, SM_ERR_FORMAT, "RLE frame too short (%zu bytes)", n);
        return false;
    }
    uint32_t nseg = le32(data);
    if (nseg != bytes_per_sample) {
        sm_error_set(error, SM_ERR_FORMAT, "RLE frame has %u segments, %u expected", nseg, bytes_per_sample);
        return false;
    }
    size_t count = (size_t)rows * cols;
    uint8_t *out = dst;
    for (uint32_t s = 0; s < nseg; s++) {
        uint32_t off = le32(data + 4 + 4 * s);
        uint32_t end = s + 1 < nseg ? le32(data + 8 + 4 * s) : (uint32_t)(n > UINT32_MAX ? UINT32_MAX : n);
        if (off < 64 || off > n || end > n || end < off) {
            sm_error_set(error, SM_ERR_FORMAT, "RLE segment %u offsets %u..%u outside the frame (%zu bytes)", s, off,
                         end, n);
            return false;
        }
        /* segment 0 is the most significant byte; output is little endian */
        size_t byte = bytes_per_sample - 1 - s;
        if (unpack(data + off, end - off, out + byte, count, bytes_per_sample) != count) {
            sm_error_set(error, SM_ERR_FORMAT, "RLE segment %u is truncated", s);
            return false;
        }
    }
    return true;
}
