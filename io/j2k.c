/* Decodes one JPEG 2000 or HTJ2K frame held in memory with OpenJPEG (DCMTK 3.6.7 has no
 * JPEG 2000 codec). */
#include "sm_io_internal.h"

#include <openjpeg.h>
#include <string.h>

typedef struct MemStream {
    const uint8_t *data;
    size_t n, pos;
} MemStream;

static OPJ_SIZE_T mem_read(void *buf, OPJ_SIZE_T nb, void *user)
{
    MemStream *m = user;
    if (m->pos >= m->n)
        return (OPJ_SIZE_T)-1;
    size_t left = m->n - m->pos;
    size_t k = nb < left ? nb : left;
    memcpy(buf, m->data + m->pos, k);
    m->pos += k;
    return k;
}

static OPJ_OFF_T mem_skip(OPJ_OFF_T nb, void *user)
{
    MemStream *m = user;
    if (nb < 0) {
        if ((size_t)(-nb) > m->pos)
            return -1;
        m->pos -= (size_t)(-nb);
        return nb;
    }
    size_t left = m->n - m->pos;
    size_t k = (size_t)nb < left ? (size_t)nb : left;
    m->pos += k;
    return (OPJ_OFF_T)k;
}

static OPJ_BOOL mem_seek(OPJ_OFF_T nb, void *user)
{
    MemStream *m = user;
    if (nb < 0 || (size_t)nb > m->n)
        return OPJ_FALSE;
    m->pos = (size_t)nb;
    return OPJ_TRUE;
}

static void quiet(const char *msg, void *user)
{
    (void)msg;
    (void)user;
}

bool sm_j2k_decode(SmError **error, const uint8_t *data, size_t n, unsigned rows, unsigned cols,
                   unsigned bytes_per_sample, void *dst)
{
    static const uint8_t jp2_magic[12] = {0, 0, 0, 0x0C, 'j', 'P', ' ', ' ', 0x0D, 0x0A, 0x87, 0x0A};
    if (data == NULL || n < 4 || (bytes_per_sample != 1 && bytes_per_sample != 2 && bytes_per_sample != 4)) {
        sm_error_set(error, SM_ERR_FORMAT, "empty or invalid JPEG 2000 frame (%zu bytes)", n);
        return false;
    }
    OPJ_CODEC_FORMAT fmt;
    if (n >= 12 && memcmp(data, jp2_magic, 12) == 0)
        fmt = OPJ_CODEC_JP2;
    else if (data[0] == 0xFF && data[1] == 0x4F && data[2] == 0xFF && data[3] == 0x51)
        fmt = OPJ_CODEC_J2K;
    else {
        sm_error_set(error, SM_ERR_FORMAT, "not a JPEG 2000 codestream (no SOC/SIZ marker)");
        return false;
    }
    MemStream ms = {data, n, 0};
    opj_stream_t *stream = opj_stream_create(64 * 1024, OPJ_TRUE);
    opj_codec_t *codec = opj_create_decompress(fmt);
    opj_image_t *img = NULL;
    bool ok = false;
    if (stream == NULL || codec == NULL) {
        sm_error_set(error, SM_ERR_NOMEM, "out of memory creating a JPEG 2000 decoder");
        goto done;
    }
    opj_stream_set_user_data(stream, &ms, NULL);
    opj_stream_set_user_data_length(stream, (OPJ_UINT64)n);
    opj_stream_set_read_function(stream, mem_read);
    opj_stream_set_skip_function(stream, mem_skip);
    opj_stream_set_seek_function(stream, mem_seek);
    opj_set_info_handler(codec, quiet, NULL);
    opj_set_warning_handler(codec, quiet, NULL);
    opj_set_error_handler(codec, quiet, NULL);
    opj_dparameters_t params;
    opj_set_default_decoder_parameters(&params);
    if (!opj_setup_decoder(codec, &params) || !opj_read_header(stream, codec, &img) || img == NULL) {
        sm_error_set(error, SM_ERR_FORMAT, "corrupt JPEG 2000 header");
        goto done;
    }
    if (img->numcomps < 1 || img->comps[0].w != cols || img->comps[0].h != rows) {
        sm_error_set(error, SM_ERR_FORMAT, "JPEG 2000 frame is %ux%u with %u components, header says %ux%u",
                     img->numcomps ? img->comps[0].w : 0, img->numcomps ? img->comps[0].h : 0, img->numcomps,
                     cols, rows);
        goto done;
    }
    if (!opj_decode(codec, stream, img) || !opj_end_decompress(codec, stream)) {
        sm_error_set(error, SM_ERR_FORMAT, "corrupt or truncated JPEG 2000 codestream");
        goto done;
    }
    {
        const opj_image_comp_t *c = &img->comps[0];
        if (c->data == NULL || c->w != cols || c->h != rows || c->factor != 0) {
            sm_error_set(error, SM_ERR_FORMAT, "JPEG 2000 decoder returned no full-resolution data");
            goto done;
        }
        size_t count = (size_t)rows * cols;
        const OPJ_INT32 *src = c->data;
        if (bytes_per_sample == 1) {
            uint8_t *d = dst;
            for (size_t i = 0; i < count; i++)
                d[i] = (uint8_t)src[i];
        } else if (bytes_per_sample == 2) {
            uint16_t *d = dst;
            for (size_t i = 0; i < count; i++)
                d[i] = (uint16_t)src[i];
        } else {
            uint32_t *d = dst;
            for (size_t i = 0; i < count; i++)
                d[i] = (uint32_t)src[i];
        }
    }
    ok = true;
done:
    if (img)
        opj_image_destroy(img);
    if (codec)
        opj_destroy_codec(codec);
    if (stream)
        opj_stream_destroy(stream);
    return ok;
}
