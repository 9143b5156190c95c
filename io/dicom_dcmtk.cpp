/* The only C++ in spinemets: a thin extern "C" boundary to DCMTK that reads headers, decodes
 * pixel data, lists DICOMDIR references, writes CT slices and rasterises DICOM SEG objects,
 * turning every exception and OFCondition into an SmError. */
#include "sm_io_internal.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcmetinf.h>
#include <dcmtk/dcmdata/dcpixel.h>
#include <dcmtk/dcmdata/dcpixseq.h>
#include <dcmtk/dcmdata/dcpxitem.h>
#include <dcmtk/dcmdata/dcrledrg.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmdata/dccodec.h>
#include <dcmtk/dcmdata/dcxfer.h>
#include <dcmtk/dcmdata/dcistrmf.h>
#include <dcmtk/dcmjpeg/djdecode.h>
#include <dcmtk/dcmjpls/djdecode.h>
#include <dcmtk/oflog/oflog.h>
#include <dcmtk/dcmfg/fginterface.h>
#include <dcmtk/dcmfg/fgpixmsr.h>
#include <dcmtk/dcmfg/fgplanor.h>
#include <dcmtk/dcmfg/fgplanpo.h>
#include <dcmtk/dcmfg/fgseg.h>
#include <dcmtk/dcmseg/segdoc.h>
#include <dcmtk/dcmseg/segment.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include <sys/stat.h>

namespace {

std::once_flag init_flag;

/* Header reads keep values longer than this on disk (Pixel Data, big private blobs). */
constexpr Uint32 kHeaderMaxReadLength = 4096;

void copy_str(char *dst, size_t cap, const OFString &s)
{
    size_t n = s.size() < cap - 1 ? s.size() : cap - 1;
    memcpy(dst, s.c_str(), n);
    dst[n] = '\0';
    /* DICOM pads with spaces; values with embedded NULs are cut there. */
    while (n > 0 && (dst[n - 1] == ' ' || dst[n - 1] == '\0'))
        dst[--n] = '\0';
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)dst[i] < 0x20 && dst[i] != '\0')
            dst[i] = '?';
}

void get_str(DcmItem *it, const DcmTagKey &tag, char *dst, size_t cap)
{
    OFString s;
    dst[0] = '\0';
    if (it->findAndGetOFStringArray(tag, s).good())
        copy_str(dst, cap, s);
}

bool get_f64(DcmItem *it, const DcmTagKey &tag, double *v, unsigned long pos = 0)
{
    Float64 f = 0;
    if (it->findAndGetFloat64(tag, f, pos).good() && std::isfinite(f)) {
        *v = f;
        return true;
    }
    return false;
}

bool get_vec(DcmItem *it, const DcmTagKey &tag, double *v, unsigned long n)
{
    for (unsigned long i = 0; i < n; i++)
        if (!get_f64(it, tag, &v[i], i))
            return false;
    return true;
}

bool get_long(DcmItem *it, const DcmTagKey &tag, long *v)
{
    Sint32 s = 0;
    if (it->findAndGetSint32(tag, s).good()) {
        *v = s;
        return true;
    }
    OFString str;
    if (it->findAndGetOFString(tag, str).good() && !str.empty()) {
        char *end = NULL;
        long l = strtol(str.c_str(), &end, 10);
        if (end != str.c_str()) {
            *v = l;
            return true;
        }
    }
    return false;
}

bool get_u16(DcmItem *it, const DcmTagKey &tag, unsigned *v)
{
    Uint16 u = 0;
    if (it->findAndGetUint16(tag, u).good()) {
        *v = u;
        return true;
    }
    return false;
}

/* A value stored as US or SS depending on Pixel Representation. */
bool get_us_or_ss(DcmItem *it, const DcmTagKey &tag, bool is_signed, double *v)
{
    DcmElement *e = NULL;
    if (it->findAndGetElement(tag, e).bad() || e == NULL || e->getLength() < 2)
        return false;
    Uint16 u = 0;
    Sint16 s = 0;
    if (e->getUint16(u).good()) {
        *v = is_signed ? (double)(Sint16)u : (double)u;
        return true;
    }
    if (e->getSint16(s).good()) {
        *v = is_signed ? (double)s : (double)(Uint16)s;
        return true;
    }
    return false;
}

DcmItem *first_item(DcmItem *parent, const DcmTagKey &seq_tag)
{
    DcmItem *it = NULL;
    if (parent->findAndGetSequenceItem(seq_tag, it, 0).good())
        return it;
    return NULL;
}

/* Functional group macros of the Enhanced CT/MR IODs. */
void parse_group(DcmItem *group, SmDcmFrameGeom *g)
{
    DcmItem *it;
    if ((it = first_item(group, DcmTagKey(0x0020, 0x9113))) != NULL) /* PlanePositionSequence */
        if (get_vec(it, DCM_ImagePositionPatient, g->ipp, 3))
            g->has_ipp = true;
    if ((it = first_item(group, DcmTagKey(0x0020, 0x9116))) != NULL) /* PlaneOrientationSequence */
        if (get_vec(it, DCM_ImageOrientationPatient, g->iop, 6))
            g->has_iop = true;
    if ((it = first_item(group, DcmTagKey(0x0028, 0x9110))) != NULL) /* PixelMeasuresSequence */
        if (get_vec(it, DCM_PixelSpacing, g->spacing, 2))
            g->has_spacing = true;
    if ((it = first_item(group, DcmTagKey(0x0028, 0x9145))) != NULL) { /* PixelValueTransformation */
        double s = 1.0, b = 0.0;
        bool hs = get_f64(it, DCM_RescaleSlope, &s);
        bool hb = get_f64(it, DCM_RescaleIntercept, &b);
        if (hs || hb) {
            g->slope = s;
            g->intercept = b;
            g->has_rescale = true;
        }
    }
}

void frame_geom_init(SmDcmFrameGeom *g)
{
    memset(g, 0, sizeof *g);
    g->slope = 1.0;
    g->intercept = 0.0;
}

void header_init(SmDcmHeader *h)
{
    memset(h, 0, sizeof *h);
    h->slice_thickness = NAN;
    h->kvp = NAN;
    h->spacing_between_slices = NAN;
    frame_geom_init(&h->geom);
}

bool is_j2k_syntax(const char *uid)
{
    return strcmp(uid, "1.2.840.10008.1.2.4.90") == 0 || strcmp(uid, "1.2.840.10008.1.2.4.91") == 0 ||
           strcmp(uid, "1.2.840.10008.1.2.4.201") == 0 || strcmp(uid, "1.2.840.10008.1.2.4.202") == 0 ||
           strcmp(uid, "1.2.840.10008.1.2.4.203") == 0;
}

/* Verifies that the Pixel Data element header sits right before offset, so that a direct
 * read of the value bytes is safe. */
bool verify_pixel_offset(const char *path, uint64_t offset, uint64_t length, bool explicit_vr)
{
    unsigned hlen = explicit_vr ? 12u : 8u;
    if (offset < hlen)
        return false;
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    unsigned char b[12];
    bool ok = fseeko(f, (off_t)(offset - hlen), SEEK_SET) == 0 && fread(b, 1, hlen, f) == hlen;
    fclose(f);
    if (!ok || b[0] != 0xE0 || b[1] != 0x7F || b[2] != 0x10 || b[3] != 0x00)
        return false;
    const unsigned char *l = explicit_vr ? b + 8 : b + 4;
    if (explicit_vr && !(b[4] == 'O' && (b[5] == 'W' || b[5] == 'B')))
        return false;
    uint64_t len = (uint64_t)l[0] | ((uint64_t)l[1] << 8) | ((uint64_t)l[2] << 16) | ((uint64_t)l[3] << 24);
    return len == length;
}

bool header_read(SmError **error, const char *path, SmDcmHeader *out)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        sm_error_set(error, SM_ERR_IO, "cannot open: %s", strerror(errno));
        return false;
    }
    if (!S_ISREG(st.st_mode)) {
        sm_error_set(error, SM_ERR_IO, "not a regular file");
        return false;
    }
    if (st.st_size == 0) {
        sm_error_set(error, SM_ERR_FORMAT, "empty file");
        return false;
    }
    DcmFileFormat ff;
    OFCondition c = ff.loadFile(OFFilename(path), EXS_Unknown, EGL_noChange, kHeaderMaxReadLength, ERM_autoDetect);
    if (c.bad()) {
        sm_error_set(error, SM_ERR_FORMAT, "not a readable DICOM file (DCMTK: %s)", c.text());
        return false;
    }
    DcmDataset *ds = ff.getDataset();
    DcmMetaInfo *meta = ff.getMetaInfo();
    if (ds == NULL) {
        sm_error_set(error, SM_ERR_FORMAT, "no data set");
        return false;
    }
    /* The transfer syntax as declared (DCMTK 3.6.7 does not know the HTJ2K UIDs). */
    OFString ts;
    if (meta != NULL && meta->findAndGetOFString(DCM_TransferSyntaxUID, ts).good() && !ts.empty())
        copy_str(out->transfer_syntax, sizeof out->transfer_syntax, ts);
    E_TransferSyntax oxfer = ds->getOriginalXfer();
    if (out->transfer_syntax[0] == '\0' && oxfer != EXS_Unknown) {
        DcmXfer x(oxfer);
        copy_str(out->transfer_syntax, sizeof out->transfer_syntax, OFString(x.getXferID()));
    }
    DcmXfer ox(oxfer);
    out->big_endian = oxfer != EXS_Unknown && ox.getByteOrder() == EBO_BigEndian;

    get_str(ds, DCM_SOPClassUID, out->sop_class, sizeof out->sop_class);
    if (out->sop_class[0] == '\0' && meta != NULL)
        get_str(meta, DCM_MediaStorageSOPClassUID, out->sop_class, sizeof out->sop_class);
    get_str(ds, DCM_SOPInstanceUID, out->sop_instance, sizeof out->sop_instance);
    get_str(ds, DCM_SeriesInstanceUID, out->series_uid, sizeof out->series_uid);
    get_str(ds, DCM_StudyInstanceUID, out->study_uid, sizeof out->study_uid);
    get_str(ds, DCM_Modality, out->modality, sizeof out->modality);
    get_str(ds, DCM_ImageType, out->image_type, sizeof out->image_type);
    get_str(ds, DCM_SeriesDescription, out->series_description, sizeof out->series_description);
    get_str(ds, DCM_PatientPosition, out->patient_position, sizeof out->patient_position);
    get_str(ds, DCM_Manufacturer, out->manufacturer, sizeof out->manufacturer);
    get_str(ds, DCM_ConvolutionKernel, out->kernel, sizeof out->kernel);
    get_str(ds, DCM_ContrastBolusAgent, out->contrast, sizeof out->contrast);
    get_str(ds, DCM_BodyPartExamined, out->body_part, sizeof out->body_part);
    get_str(ds, DCM_PhotometricInterpretation, out->photometric, sizeof out->photometric);
    out->is_dicomdir = strcmp(out->sop_class, UID_MediaStorageDirectoryStorage) == 0 ||
                       ds->tagExists(DcmTagKey(0x0004, 0x1220));

    get_u16(ds, DCM_Rows, &out->rows);
    get_u16(ds, DCM_Columns, &out->cols);
    out->samples = 1;
    get_u16(ds, DCM_SamplesPerPixel, &out->samples);
    get_u16(ds, DCM_BitsAllocated, &out->bits_allocated);
    out->bits_stored = out->bits_allocated;
    get_u16(ds, DCM_BitsStored, &out->bits_stored);
    out->high_bit = out->bits_stored ? out->bits_stored - 1 : 0;
    get_u16(ds, DCM_HighBit, &out->high_bit);
    get_u16(ds, DCM_PixelRepresentation, &out->pixel_representation);
    long frames = 1;
    if (get_long(ds, DCM_NumberOfFrames, &frames)) {
        if (frames < 1 || frames > (long)SM_DCM_MAX_FRAMES) {
            sm_error_set(error, SM_ERR_FORMAT, "Number of Frames %ld out of range 1..%u", frames,
                         SM_DCM_MAX_FRAMES);
            return false;
        }
    }
    out->frames = (size_t)frames;
    out->has_instance = get_long(ds, DCM_InstanceNumber, &out->instance_number);
    out->has_acquisition = get_long(ds, DCM_AcquisitionNumber, &out->acquisition_number);
    get_f64(ds, DCM_SliceThickness, &out->slice_thickness);
    get_f64(ds, DCM_KVP, &out->kvp);
    get_f64(ds, DCM_SpacingBetweenSlices, &out->spacing_between_slices);
    bool sgn = out->pixel_representation == 1;
    out->has_padding = get_us_or_ss(ds, DCM_PixelPaddingValue, sgn, &out->padding_value);
    out->has_padding_limit = get_us_or_ss(ds, DCM_PixelPaddingRangeLimit, sgn, &out->padding_limit);

    SmDcmFrameGeom *g = &out->geom;
    g->has_ipp = get_vec(ds, DCM_ImagePositionPatient, g->ipp, 3);
    g->has_iop = get_vec(ds, DCM_ImageOrientationPatient, g->iop, 6);
    g->has_spacing = get_vec(ds, DCM_PixelSpacing, g->spacing, 2);
    {
        double s = 1.0, b = 0.0;
        bool hs = get_f64(ds, DCM_RescaleSlope, &s);
        bool hb = get_f64(ds, DCM_RescaleIntercept, &b);
        if (hs || hb) {
            g->slope = s;
            g->intercept = b;
            g->has_rescale = true;
        }
    }
    DcmItem *shared = first_item(ds, DcmTagKey(0x5200, 0x9229));
    if (shared != NULL) {
        parse_group(shared, g);
        DcmItem *pm = first_item(shared, DcmTagKey(0x0028, 0x9110));
        if (pm != NULL)
            get_f64(pm, DCM_SliceThickness, &out->slice_thickness);
    }
    DcmSequenceOfItems *per = NULL;
    if (ds->findAndGetSequence(DcmTagKey(0x5200, 0x9230), per).good() && per != NULL &&
        per->card() > 0) {
        if (per->card() != out->frames) {
            sm_error_set(error, SM_ERR_FORMAT,
                         "Per-frame Functional Groups Sequence has %lu items for %zu frames",
                         per->card(), out->frames);
            return false;
        }
        out->frame_geom = (SmDcmFrameGeom *)calloc(out->frames, sizeof(SmDcmFrameGeom));
        if (out->frame_geom == NULL) {
            sm_error_set(error, SM_ERR_NOMEM, "out of memory for %zu frame descriptions", out->frames);
            return false;
        }
        for (size_t f = 0; f < out->frames; f++) {
            out->frame_geom[f] = *g;
            DcmItem *item = per->getItem((unsigned long)f);
            if (item != NULL)
                parse_group(item, &out->frame_geom[f]);
            if (f == 0 && std::isnan(out->slice_thickness) && item != NULL) {
                DcmItem *pm = first_item(item, DcmTagKey(0x0028, 0x9110));
                if (pm != NULL)
                    get_f64(pm, DCM_SliceThickness, &out->slice_thickness);
            }
        }
    }

    DcmElement *px = NULL;
    if (ds->findAndGetElement(DCM_PixelData, px).good() && px != NULL) {
        out->has_pixel_data = true;
        E_TransferSyntax rep = EXS_Unknown;
        const DcmRepresentationParameter *rp = NULL;
        DcmPixelData *pd = OFdynamic_cast(DcmPixelData *, px);
        if (pd != NULL)
            pd->getOriginalRepresentationKey(rep, rp);
        out->encapsulated = px->getLengthField() == DCM_UndefinedLength ||
                            (oxfer != EXS_Unknown && ox.isEncapsulated()) || is_j2k_syntax(out->transfer_syntax);
        if (!out->encapsulated) {
            out->pixel_length = px->getLengthField();
            /* Direct reads are allowed only for native little-endian data whose element header
             * we can see on disk: Pixel Data must be the last element of the data set. */
            bool last = ds->card() > 0 && ds->getElement(ds->card() - 1) == px;
            bool le = oxfer != EXS_Unknown && ox.getByteOrder() == EBO_LittleEndian && !ox.isEncapsulated() &&
                      oxfer != EXS_DeflatedLittleEndianExplicit;
            if (last && le && (uint64_t)st.st_size >= out->pixel_length) {
                uint64_t off = (uint64_t)st.st_size - out->pixel_length;
                if (verify_pixel_offset(path, off, out->pixel_length, ox.isExplicitVR())) {
                    out->pixel_offset = off;
                    out->pixel_offset_known = true;
                }
            }
        }
    } else if (ds->tagExists(DcmTagKey(0x7FE0, 0x0008)) || ds->tagExists(DcmTagKey(0x7FE0, 0x0009))) {
        out->has_pixel_data = false; /* float pixel data: reported as unsupported by scan */
    }
    return true;
}

bool copy_native(SmError **error, DcmPixelData *pd, const SmDcmHeader *hdr, void *raw, size_t need)
{
    if (hdr->bits_allocated == 32 && hdr->big_endian) {
        sm_error_set(error, SM_ERR_UNSUPPORTED, "32-bit big-endian pixel data is not supported");
        return false;
    }
    /* 16-bit data through getUint16Array, so DCMTK has already swapped big endian. */
    const void *src = NULL;
    OFCondition c;
    if (hdr->bits_allocated == 16) {
        Uint16 *p = NULL;
        c = pd->getUint16Array(p);
        src = p;
    } else {
        Uint8 *p = NULL;
        c = pd->getUint8Array(p);
        src = p;
    }
    if (c.bad() || src == NULL) {
        sm_error_set(error, SM_ERR_FORMAT, "cannot read %u-bit Pixel Data (DCMTK: %s)",
                     (unsigned)hdr->bits_allocated, c.text());
        return false;
    }
    if ((size_t)pd->getLength() < need) {
        sm_error_set(error, SM_ERR_FORMAT, "Pixel Data has %lu bytes, %zu expected (truncated?)",
                     (unsigned long)pd->getLength(), need);
        return false;
    }
    memcpy(raw, src, need);
    return true;
}

typedef bool (*FrameDecoder)(SmError **, const uint8_t *, size_t, unsigned, unsigned, unsigned, void *);

/* Decodes every frame of encapsulated pixel data with one of our own decoders. */
bool decode_fragments(SmError **error, DcmPixelData *pd, const SmDcmHeader *hdr, void *raw, size_t frame_bytes,
                      FrameDecoder decode)
{
    E_TransferSyntax rep = EXS_Unknown;
    const DcmRepresentationParameter *rp = NULL;
    pd->getOriginalRepresentationKey(rep, rp);
    DcmPixelSequence *seq = NULL;
    OFCondition c = pd->getEncapsulatedRepresentation(rep, rp, seq);
    if (c.bad() || seq == NULL) {
        sm_error_set(error, SM_ERR_FORMAT, "no encapsulated pixel data fragments (DCMTK: %s)", c.text());
        return false;
    }
    unsigned long nfrag = seq->card();
    if (nfrag < 2) {
        sm_error_set(error, SM_ERR_FORMAT, "encapsulated Pixel Data has no fragments");
        return false;
    }
    std::vector<Uint32> start(hdr->frames + 1);
    for (size_t f = 0; f < hdr->frames; f++) {
        Uint32 s = 0;
        if (hdr->frames == 1)
            s = 1;
        else if (hdr->frames == nfrag - 1)
            s = (Uint32)(f + 1);
        else if (DcmCodec::determineStartFragment((Uint32)f, (Sint32)hdr->frames, seq, s).bad()) {
            sm_error_set(error, SM_ERR_FORMAT, "cannot locate the fragments of frame %zu", f);
            return false;
        }
        start[f] = s;
    }
    start[hdr->frames] = (Uint32)nfrag;
    std::vector<Uint8> buf;
    for (size_t f = 0; f < hdr->frames; f++) {
        if (start[f] < 1 || start[f] >= start[f + 1]) {
            sm_error_set(error, SM_ERR_FORMAT, "fragments of frame %zu are out of order", f);
            return false;
        }
        buf.clear();
        for (Uint32 i = start[f]; i < start[f + 1]; i++) {
            DcmPixelItem *item = NULL;
            if (seq->getItem(item, i).bad() || item == NULL) {
                sm_error_set(error, SM_ERR_FORMAT, "missing fragment %u", (unsigned)i);
                return false;
            }
            Uint8 *p = NULL;
            Uint32 len = item->getLength();
            if (len == 0)
                continue;
            if (item->getUint8Array(p).bad() || p == NULL) {
                sm_error_set(error, SM_ERR_FORMAT, "unreadable fragment %u (truncated?)", (unsigned)i);
                return false;
            }
            buf.insert(buf.end(), p, p + len);
        }
        if (!decode(error, buf.data(), buf.size(), hdr->rows, hdr->cols, hdr->bits_allocated / 8,
                    (char *)raw + f * frame_bytes)) {
            sm_error_prefix(error, "frame %zu: ", f);
            return false;
        }
    }
    return true;
}

bool is_jpeg_family(const char *uid)
{
    static const char *const uids[] = {"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.57",
                                       "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"};
    for (const char *u : uids)
        if (strcmp(uid, u) == 0)
            return true;
    return false;
}

/* Walks the JPEG marker segments of a frame's first fragment up to Start of Scan. DCMTK
 * 3.6.7's bit-depth scan loops forever on some malformed marker chains (found by fuzzing),
 * so a stream whose header is not a clean chain of markers never reaches it. */
bool jpeg_header_ok(const Uint8 *d, size_t n)
{
    if (n < 4 || d[0] != 0xFF || d[1] != 0xD8)
        return false;
    size_t pos = 2;
    bool sof = false;
    while (pos + 4 <= n) {
        if (d[pos] != 0xFF)
            return false;
        Uint8 m = d[pos + 1];
        if (m == 0xFF) { /* fill byte */
            pos++;
            continue;
        }
        if (m == 0x00 || m == 0xD8 || m == 0xD9)
            return false;
        if (m == 0x01 || (m >= 0xD0 && m <= 0xD7)) {
            pos += 2;
            continue;
        }
        size_t len = ((size_t)d[pos + 2] << 8) | d[pos + 3];
        if (len < 2)
            return false;
        if ((m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) || m == 0xF7)
            sof = true;
        if (m == 0xDA)
            return sof;
        pos += 2 + len;
    }
    return false;
}

bool check_jpeg_frames(SmError **error, DcmPixelData *pd, const SmDcmHeader *hdr)
{
    E_TransferSyntax rep = EXS_Unknown;
    const DcmRepresentationParameter *rp = NULL;
    pd->getOriginalRepresentationKey(rep, rp);
    DcmPixelSequence *seq = NULL;
    if (pd->getEncapsulatedRepresentation(rep, rp, seq).bad() || seq == NULL || seq->card() < 2) {
        sm_error_set(error, SM_ERR_FORMAT, "no encapsulated JPEG fragments");
        return false;
    }
    unsigned long nfrag = seq->card();
    for (size_t f = 0; f < hdr->frames; f++) {
        Uint32 start = 0;
        if (hdr->frames == 1)
            start = 1;
        else if (hdr->frames == nfrag - 1)
            start = (Uint32)(f + 1);
        else if (DcmCodec::determineStartFragment((Uint32)f, (Sint32)hdr->frames, seq, start).bad()) {
            sm_error_set(error, SM_ERR_FORMAT, "cannot locate the fragments of frame %zu", f);
            return false;
        }
        DcmPixelItem *item = NULL;
        Uint8 *p = NULL;
        if (seq->getItem(item, start).bad() || item == NULL || item->getUint8Array(p).bad() || p == NULL ||
            !jpeg_header_ok(p, item->getLength())) {
            sm_error_set(error, SM_ERR_FORMAT, "frame %zu: corrupt JPEG header (marker chain)", f);
            return false;
        }
    }
    return true;
}

bool pixels_read(SmError **error, const char *path, const SmDcmHeader *hdr, void *raw, size_t raw_size)
{
    size_t bps = hdr->bits_allocated / 8, frame_bytes, need;
    if (hdr->samples != 1 || (bps != 1 && bps != 2 && bps != 4) || hdr->bits_allocated % 8 != 0 ||
        !sm_size_mul((size_t)hdr->rows * hdr->cols, bps, &frame_bytes) ||
        !sm_size_mul(frame_bytes, hdr->frames, &need) || need > raw_size || need == 0) {
        sm_error_set(error, SM_ERR_INTERNAL, "pixel buffer does not match the header");
        return false;
    }
    if (hdr->pixel_offset_known && hdr->pixel_length >= need) {
        FILE *f = fopen(path, "rb");
        if (f == NULL) {
            sm_error_set(error, SM_ERR_IO, "cannot open: %s", strerror(errno));
            return false;
        }
        bool ok = fseeko(f, (off_t)hdr->pixel_offset, SEEK_SET) == 0 && fread(raw, 1, need, f) == need;
        fclose(f);
        if (!ok) {
            sm_error_set(error, SM_ERR_FORMAT, "Pixel Data truncated (%zu bytes expected at offset %llu)", need,
                         (unsigned long long)hdr->pixel_offset);
            return false;
        }
        return true;
    }
    DcmFileFormat ff;
    OFCondition c = ff.loadFile(OFFilename(path), EXS_Unknown, EGL_noChange, DCM_MaxReadLength, ERM_autoDetect);
    if (c.bad()) {
        sm_error_set(error, SM_ERR_FORMAT, "cannot read file (DCMTK: %s)", c.text());
        return false;
    }
    DcmDataset *ds = ff.getDataset();
    DcmElement *e = NULL;
    if (ds == NULL || ds->findAndGetElement(DCM_PixelData, e).bad() || e == NULL) {
        sm_error_set(error, SM_ERR_FORMAT, "no Pixel Data");
        return false;
    }
    DcmPixelData *pd = OFdynamic_cast(DcmPixelData *, e);
    if (pd == NULL) {
        sm_error_set(error, SM_ERR_FORMAT, "Pixel Data has an unexpected type");
        return false;
    }
    if (hdr->encapsulated && is_j2k_syntax(hdr->transfer_syntax))
        return decode_fragments(error, pd, hdr, raw, frame_bytes, sm_j2k_decode);
    if (hdr->encapsulated && strcmp(hdr->transfer_syntax, "1.2.840.10008.1.2.5") == 0)
        return decode_fragments(error, pd, hdr, raw, frame_bytes, sm_rle_decode);
    if (hdr->encapsulated && is_jpeg_family(hdr->transfer_syntax) && !check_jpeg_frames(error, pd, hdr))
        return false;
    if (hdr->encapsulated && hdr->bits_allocated == 16 &&
        (strcmp(hdr->transfer_syntax, "1.2.840.10008.1.2.4.57") == 0 ||
         strcmp(hdr->transfer_syntax, "1.2.840.10008.1.2.4.70") == 0)) {
        /* Our lossless JPEG decoder is several times faster than DCMTK's; whatever it does
         * not handle (or rejects) goes to DCMTK, whose verdict then stands. */
        SmError *own = NULL;
        bool ok = decode_fragments(&own, pd, hdr, raw, frame_bytes, sm_ljpeg_decode);
        sm_error_destroy(own);
        if (ok)
            return true;
    }
    if (hdr->encapsulated) {
        c = ds->chooseRepresentation(EXS_LittleEndianExplicit, NULL);
        if (c.bad() || !ds->canWriteXfer(EXS_LittleEndianExplicit)) {
            const char *name = sm_dcm_transfer_syntax_name(hdr->transfer_syntax);
            sm_error_set(error, SM_ERR_FORMAT, "cannot decode %s pixel data (DCMTK: %s)",
                         name ? name : hdr->transfer_syntax, c.bad() ? c.text() : "no decoder");
            return false;
        }
    }
    return copy_native(error, pd, hdr, raw, need);
}

bool dicomdir_files(SmError **error, const char *path, SmStrList *files)
{
    DcmFileFormat ff;
    OFCondition c = ff.loadFile(OFFilename(path), EXS_Unknown, EGL_noChange, DCM_MaxReadLength, ERM_autoDetect);
    if (c.bad()) {
        sm_error_set(error, SM_ERR_FORMAT, "cannot read DICOMDIR (DCMTK: %s)", c.text());
        return false;
    }
    DcmSequenceOfItems *seq = NULL;
    if (ff.getDataset()->findAndGetSequence(DcmTagKey(0x0004, 0x1220), seq).bad() || seq == NULL) {
        sm_error_set(error, SM_ERR_FORMAT, "DICOMDIR has no Directory Record Sequence");
        return false;
    }
    std::string dir(path);
    size_t slash = dir.find_last_of('/');
    dir = slash == std::string::npos ? std::string(".") : dir.substr(0, slash);
    for (unsigned long i = 0; i < seq->card(); i++) {
        DcmItem *rec = seq->getItem(i);
        OFString id;
        if (rec == NULL || rec->findAndGetOFStringArray(DcmTagKey(0x0004, 0x1500), id).bad() || id.empty())
            continue;
        std::string rel(id.c_str());
        for (char &ch : rel)
            if (ch == '\\')
                ch = '/';
        while (!rel.empty() && rel.back() == ' ')
            rel.pop_back();
        if (rel.empty() || rel.find("..") != std::string::npos)
            continue;
        std::string full = dir + "/" + rel;
        struct stat st;
        if (stat(full.c_str(), &st) != 0) {
            std::string lower = rel;
            for (char &ch : lower)
                ch = (char)tolower((unsigned char)ch);
            std::string alt = dir + "/" + lower;
            if (stat(alt.c_str(), &st) == 0)
                full = alt;
        }
        if (!sm_strlist_add(files, "%s", full.c_str())) {
            sm_error_set(error, SM_ERR_NOMEM, "out of memory listing DICOMDIR");
            return false;
        }
    }
    return true;
}

std::string ds_str(double v)
{
    /* DS is at most 16 characters: use as many significant digits as fit. */
    char buf[64];
    for (int prec = 15; prec >= 1; prec--) {
        snprintf(buf, sizeof buf, "%.*g", prec, std::fabs(v) < 1e-12 ? 0.0 : v);
        if (strlen(buf) <= 16)
            return std::string(buf);
    }
    return std::string("0");
}

std::string ds_multi(const double *v, int n)
{
    std::string s;
    for (int i = 0; i < n; i++) {
        if (i)
            s += "\\";
        s += ds_str(v[i]);
    }
    return s;
}

#define PUT(tag, val)                                                                  \
    do {                                                                               \
        OFCondition cc_ = ds->putAndInsertString(tag, (val));                          \
        if (cc_.bad()) {                                                               \
            sm_error_set(error, SM_ERR_OUTPUT, "cannot set %s (DCMTK: %s)", #tag, cc_.text()); \
            return false;                                                              \
        }                                                                              \
    } while (0)

bool ct_write(SmError **error, const char *path, const SmDcmWriteSlice *s)
{
    DcmFileFormat ff;
    DcmDataset *ds = ff.getDataset();
    char sop[65];
    dcmGenerateUniqueIdentifier(sop, SITE_INSTANCE_UID_ROOT);
    PUT(DCM_SpecificCharacterSet, "ISO_IR 100");
    PUT(DCM_ImageType, s->image_type ? s->image_type : "ORIGINAL\\PRIMARY\\AXIAL");
    PUT(DCM_SOPClassUID, UID_CTImageStorage);
    PUT(DCM_SOPInstanceUID, sop);
    PUT(DCM_StudyDate, s->study_date ? s->study_date : "");
    PUT(DCM_StudyTime, s->study_time ? s->study_time : "");
    PUT(DCM_AccessionNumber, "");
    PUT(DCM_Modality, "CT");
    PUT(DCM_Manufacturer, "spinemets");
    PUT(DCM_ReferringPhysicianName, "");
    PUT(DCM_SeriesDescription, s->series_description ? s->series_description : "");
    PUT(DCM_PatientName, s->patient_name ? s->patient_name : "PHANTOM");
    PUT(DCM_PatientID, s->patient_id ? s->patient_id : "PHANTOM");
    PUT(DCM_PatientBirthDate, "");
    PUT(DCM_PatientSex, "O");
    PUT(DCM_SliceThickness, ds_str(s->slice_thickness).c_str());
    if (std::isfinite(s->kvp))
        PUT(DCM_KVP, ds_str(s->kvp).c_str());
    else
        PUT(DCM_KVP, "");
    if (s->convolution_kernel)
        PUT(DCM_ConvolutionKernel, s->convolution_kernel);
    PUT(DCM_PatientPosition, s->patient_position ? s->patient_position : "HFS");
    PUT(DCM_StudyInstanceUID, s->study_uid);
    PUT(DCM_SeriesInstanceUID, s->series_uid);
    PUT(DCM_StudyID, "1");
    PUT(DCM_SeriesNumber, "1");
    PUT(DCM_AcquisitionNumber, std::to_string(s->acquisition_number > 0 ? s->acquisition_number : 1).c_str());
    PUT(DCM_InstanceNumber, std::to_string(s->instance_number).c_str());
    PUT(DCM_ImagePositionPatient, ds_multi(s->ipp, 3).c_str());
    PUT(DCM_ImageOrientationPatient, ds_multi(s->iop, 6).c_str());
    PUT(DCM_FrameOfReferenceUID, s->frame_of_reference_uid);
    PUT(DCM_PositionReferenceIndicator, "");
    PUT(DCM_SamplesPerPixel, "1");
    PUT(DCM_PhotometricInterpretation, "MONOCHROME2");
    PUT(DCM_Rows, std::to_string(s->rows).c_str());
    PUT(DCM_Columns, std::to_string(s->cols).c_str());
    PUT(DCM_PixelSpacing, ds_multi(s->pixel_spacing, 2).c_str());
    PUT(DCM_BitsAllocated, "16");
    PUT(DCM_BitsStored, "16");
    PUT(DCM_HighBit, "15");
    PUT(DCM_PixelRepresentation, s->pixel_signed ? "1" : "0");
    PUT(DCM_RescaleIntercept, ds_str(s->rescale_intercept).c_str());
    PUT(DCM_RescaleSlope, ds_str(s->rescale_slope).c_str());
    PUT(DCM_RescaleType, "HU");
    if (s->has_padding) {
        OFCondition cp = s->pixel_signed ? ds->putAndInsertSint16(DCM_PixelPaddingValue, (Sint16)s->padding_value)
                                         : ds->putAndInsertUint16(DCM_PixelPaddingValue, s->padding_value);
        if (cp.bad()) {
            sm_error_set(error, SM_ERR_OUTPUT, "cannot set Pixel Padding Value (DCMTK: %s)", cp.text());
            return false;
        }
    }
    size_t n = (size_t)s->rows * s->cols;
    OFCondition c = ds->putAndInsertUint16Array(DCM_PixelData, s->pixels, (unsigned long)n);
    if (c.bad()) {
        sm_error_set(error, SM_ERR_OUTPUT, "cannot set Pixel Data (DCMTK: %s)", c.text());
        return false;
    }
    c = ff.saveFile(OFFilename(path), EXS_LittleEndianExplicit, EET_ExplicitLength, EGL_recalcGL, EPD_noChange,
                    0, 0, EWM_fileformat);
    if (c.bad()) {
        sm_error_set(error, SM_ERR_OUTPUT, "cannot write %s (DCMTK: %s)", path, c.text());
        return false;
    }
    return true;
}

bool put(SmError **error, DcmItem *it, const DcmTagKey &tag, const std::string &v)
{
    OFCondition c = it->putAndInsertString(DcmTag(tag), v.c_str());
    if (c.bad()) {
        sm_error_set(error, SM_ERR_OUTPUT, "cannot set (%04x,%04x) (DCMTK: %s)", tag.getGroup(), tag.getElement(),
                     c.text());
        return false;
    }
    return true;
}

DcmItem *seq_item(SmError **error, DcmItem *parent, Uint16 g, Uint16 e, long index)
{
    DcmItem *it = NULL;
    OFCondition c = parent->findOrCreateSequenceItem(DcmTag(DcmTagKey(g, e)), it, index);
    if (c.bad() || it == NULL) {
        sm_error_set(error, SM_ERR_OUTPUT, "cannot create sequence (%04x,%04x) (DCMTK: %s)", g, e, c.text());
        return NULL;
    }
    return it;
}

bool enhanced_write(SmError **error, const char *path, const SmDcmWriteSlice *s, size_t n_frames,
                    const double (*ipp)[3], const uint16_t *pixels)
{
    DcmFileFormat ff;
    DcmDataset *ds = ff.getDataset();
    char sop[65];
    dcmGenerateUniqueIdentifier(sop, SITE_INSTANCE_UID_ROOT);
    if (!put(error, ds, DCM_SOPClassUID, UID_EnhancedCTImageStorage) || !put(error, ds, DCM_SOPInstanceUID, sop) ||
        !put(error, ds, DCM_ImageType, "ORIGINAL\\PRIMARY\\AXIAL\\NONE") || !put(error, ds, DCM_Modality, "CT") ||
        !put(error, ds, DCM_StudyInstanceUID, s->study_uid) || !put(error, ds, DCM_SeriesInstanceUID, s->series_uid) ||
        !put(error, ds, DCM_FrameOfReferenceUID, s->frame_of_reference_uid) ||
        !put(error, ds, DCM_PatientID, s->patient_id ? s->patient_id : "PHANTOM") ||
        !put(error, ds, DCM_PatientPosition, s->patient_position ? s->patient_position : "HFS") ||
        !put(error, ds, DCM_InstanceNumber, "1") || !put(error, ds, DCM_SamplesPerPixel, "1") ||
        !put(error, ds, DCM_PhotometricInterpretation, "MONOCHROME2") ||
        !put(error, ds, DCM_NumberOfFrames, std::to_string(n_frames)) ||
        !put(error, ds, DCM_Rows, std::to_string(s->rows)) || !put(error, ds, DCM_Columns, std::to_string(s->cols)) ||
        !put(error, ds, DCM_BitsAllocated, "16") || !put(error, ds, DCM_BitsStored, "16") ||
        !put(error, ds, DCM_HighBit, "15") || !put(error, ds, DCM_PixelRepresentation, s->pixel_signed ? "1" : "0"))
        return false;
    DcmItem *shared = seq_item(error, ds, 0x5200, 0x9229, 0);
    if (!shared)
        return false;
    DcmItem *pm = seq_item(error, shared, 0x0028, 0x9110, 0);
    DcmItem *po = pm ? seq_item(error, shared, 0x0020, 0x9116, 0) : NULL;
    DcmItem *pv = po ? seq_item(error, shared, 0x0028, 0x9145, 0) : NULL;
    if (!pv || !put(error, pm, DCM_PixelSpacing, ds_multi(s->pixel_spacing, 2)) ||
        !put(error, pm, DCM_SliceThickness, ds_str(s->slice_thickness)) ||
        !put(error, po, DCM_ImageOrientationPatient, ds_multi(s->iop, 6)) ||
        !put(error, pv, DCM_RescaleIntercept, ds_str(s->rescale_intercept)) ||
        !put(error, pv, DCM_RescaleSlope, ds_str(s->rescale_slope)) || !put(error, pv, DCM_RescaleType, "HU"))
        return false;
    for (size_t f = 0; f < n_frames; f++) {
        DcmItem *pf = seq_item(error, ds, 0x5200, 0x9230, -2);
        DcmItem *pp = pf ? seq_item(error, pf, 0x0020, 0x9113, 0) : NULL;
        if (!pp || !put(error, pp, DCM_ImagePositionPatient, ds_multi(ipp[f], 3)))
            return false;
    }
    OFCondition c = ds->putAndInsertUint16Array(DCM_PixelData, pixels, (unsigned long)(n_frames * s->rows * s->cols));
    if (c.good())
        c = ff.saveFile(OFFilename(path), EXS_LittleEndianExplicit);
    if (c.bad()) {
        sm_error_set(error, SM_ERR_OUTPUT, "cannot write %s (DCMTK: %s)", path, c.text());
        return false;
    }
    return true;
}

/* ---------- DICOM SEG: rasterised onto a reference grid ---------- */

/* Tolerances of the SEG geometry check: position (mm) and direction cosines. */
constexpr double kSegTolMm = 0.01;
constexpr double kSegTolDir = 1e-4;

/* Where one SEG frame lands on the reference grid: voxel of pixel (0,0) and the reference
 * axis (with sign) that increasing column / row index runs along. */
struct SegPlacement {
    long origin[3];
    int axis_c, axis_r;
    long sign_c, sign_r;
};

/* Reference axis a whose direction matches dir (unit) with sign *sign, or -1. */
int seg_find_axis(const SmVolume *ref, const double dir[3], long *sign)
{
    for (int a = 0; a < 3; a++) {
        double n = ref->spacing[a];
        if (!(n > 0))
            continue;
        for (int s = -1; s <= 1; s += 2) {
            bool match = true;
            for (int d = 0; d < 3; d++)
                match = match && std::fabs(dir[d] - s * ref->affine[d][a] / n) <= kSegTolDir;
            if (match) {
                *sign = s;
                return a;
            }
        }
    }
    return -1;
}

/* Voxel of ref nearest to lps, true if it is inside the grid and within kSegTolMm;
 * *dist gets the distance to its centre in mm. */
bool seg_voxel_at(const SmVolume *ref, const double lps[3], long ijk[3], double *dist)
{
    double idx[3], back[3], rounded[3];
    *dist = INFINITY;
    if (!sm_volume_lps_to_index(ref, lps, idx))
        return false;
    for (int d = 0; d < 3; d++) {
        rounded[d] = std::floor(idx[d] + 0.5);
        ijk[d] = (long)rounded[d];
    }
    sm_volume_index_to_lps(ref, rounded, back);
    *dist = std::sqrt((back[0] - lps[0]) * (back[0] - lps[0]) + (back[1] - lps[1]) * (back[1] - lps[1]) +
                      (back[2] - lps[2]) * (back[2] - lps[2]));
    for (int d = 0; d < 3; d++)
        if (ijk[d] < 0 || ijk[d] >= (long)ref->dims[d])
            return false;
    return *dist <= kSegTolMm;
}

/* Checks that frame f (pixel grid rows x cols with the given geometry) lies exactly on a
 * slice plane of ref and fills *pl; SM_ERR_GEOMETRY naming the mismatch otherwise. */
bool seg_frame_place(SmError **error, const char *path, const SmVolume *ref, size_t f, unsigned rows,
                     unsigned cols, const double ipp[3], const double iop[6], const double ps[2], SegPlacement *pl)
{
    pl->axis_c = seg_find_axis(ref, iop, &pl->sign_c);
    pl->axis_r = seg_find_axis(ref, iop + 3, &pl->sign_r);
    if (pl->axis_c < 0 || pl->axis_r < 0 || pl->axis_c == pl->axis_r) {
        sm_error_set(error, SM_ERR_GEOMETRY,
                     "%s: frame %zu orientation (%.6g %.6g %.6g / %.6g %.6g %.6g) is not parallel to the image axes "
                     "(tolerance %g); the segmentation must be made on this series (no resampling is done)",
                     path, f + 1, iop[0], iop[1], iop[2], iop[3], iop[4], iop[5], kSegTolDir);
        return false;
    }
    double ref_c = ref->spacing[pl->axis_c], ref_r = ref->spacing[pl->axis_r];
    if (std::fabs(ps[1] - ref_c) * (cols > 1 ? cols - 1 : 1) > kSegTolMm ||
        std::fabs(ps[0] - ref_r) * (rows > 1 ? rows - 1 : 1) > kSegTolMm) {
        sm_error_set(error, SM_ERR_GEOMETRY,
                     "%s: frame %zu pixel spacing %.6g x %.6g mm differs from the image's %.6g x %.6g mm (no "
                     "resampling is done)",
                     path, f + 1, ps[0], ps[1], ref_r, ref_c);
        return false;
    }
    /* the four corners must each sit on a voxel centre, an exact number of steps apart */
    const unsigned cc[4] = {0, cols - 1, 0, cols - 1}, rr[4] = {0, 0, rows - 1, rows - 1};
    for (int k = 0; k < 4; k++) {
        double lps[3];
        long ijk[3];
        double dist;
        for (int d = 0; d < 3; d++)
            lps[d] = ipp[d] + cc[k] * ps[1] * iop[d] + rr[k] * ps[0] * iop[3 + d];
        if (!seg_voxel_at(ref, lps, ijk, &dist)) {
            if (std::isfinite(dist) && dist <= kSegTolMm)
                sm_error_set(error, SM_ERR_GEOMETRY,
                             "%s: frame %zu at (%.3f, %.3f, %.3f) reaches outside the image grid (%zux%zux%zu)",
                             path, f + 1, ipp[0], ipp[1], ipp[2], ref->dims[0], ref->dims[1], ref->dims[2]);
            else
                sm_error_set(error, SM_ERR_GEOMETRY,
                             "%s: frame %zu at (%.3f, %.3f, %.3f) is not on a slice plane of the image: pixel (%u,%u) "
                             "is %.3f mm from the nearest voxel centre (tolerance %g mm; no resampling is done)",
                             path, f + 1, ipp[0], ipp[1], ipp[2], rr[k], cc[k], dist, kSegTolMm);
            return false;
        }
        if (k == 0) {
            for (int d = 0; d < 3; d++)
                pl->origin[d] = ijk[d];
            continue;
        }
        for (int d = 0; d < 3; d++) {
            long want = pl->origin[d] + (d == pl->axis_c ? pl->sign_c * (long)cc[k] : 0) +
                        (d == pl->axis_r ? pl->sign_r * (long)rr[k] : 0);
            if (ijk[d] != want) {
                sm_error_set(error, SM_ERR_GEOMETRY,
                             "%s: frame %zu pixel grid does not step voxel by voxel along the image grid", path,
                             f + 1);
                return false;
            }
        }
    }
    return true;
}

/* Geometry of frame f from the segmentation's functional groups (shared or per-frame). */
bool seg_frame_geometry(SmError **error, const char *path, FGInterface &fg, size_t f, double ipp[3], double iop[6],
                        double ps[2], Uint16 *segment)
{
    FGPlanePosPatient *pos = OFstatic_cast(FGPlanePosPatient *, fg.get((Uint32)f, DcmFGTypes::EFG_PLANEPOSPATIENT));
    FGPlaneOrientationPatient *ori =
        OFstatic_cast(FGPlaneOrientationPatient *, fg.get((Uint32)f, DcmFGTypes::EFG_PLANEORIENTPATIENT));
    FGPixelMeasures *pm = OFstatic_cast(FGPixelMeasures *, fg.get((Uint32)f, DcmFGTypes::EFG_PIXELMEASURES));
    FGSegmentation *sg = OFstatic_cast(FGSegmentation *, fg.get((Uint32)f, DcmFGTypes::EFG_SEGMENTATION));
    Float64 v[6] = {0, 0, 0, 0, 0, 0}, s0 = 0, s1 = 0;
    if (!pos || pos->getImagePositionPatient(v[0], v[1], v[2]).bad()) {
        sm_error_set(error, SM_ERR_FORMAT, "%s: frame %zu has no Plane Position (Patient)", path, f + 1);
        return false;
    }
    for (int d = 0; d < 3; d++)
        ipp[d] = v[d];
    if (!ori || ori->getImageOrientationPatient(v[0], v[1], v[2], v[3], v[4], v[5]).bad()) {
        sm_error_set(error, SM_ERR_FORMAT, "%s: frame %zu has no Plane Orientation (Patient)", path, f + 1);
        return false;
    }
    for (int d = 0; d < 6; d++)
        iop[d] = v[d];
    if (!pm || pm->getPixelSpacing(s0, 0).bad() || pm->getPixelSpacing(s1, 1).bad() || !(s0 > 0) || !(s1 > 0)) {
        sm_error_set(error, SM_ERR_FORMAT, "%s: frame %zu has no usable Pixel Measures (Pixel Spacing)", path, f + 1);
        return false;
    }
    ps[0] = s0;
    ps[1] = s1;
    bool finite = std::isfinite(ps[0]) && std::isfinite(ps[1]);
    for (int d = 0; d < 6; d++)
        finite = finite && std::isfinite(iop[d]) && (d >= 3 || std::isfinite(ipp[d]));
    if (!finite) {
        sm_error_set(error, SM_ERR_FORMAT, "%s: frame %zu geometry is not finite", path, f + 1);
        return false;
    }
    if (!sg || sg->getReferencedSegmentNumber(*segment).bad() || *segment == 0) {
        sm_error_set(error, SM_ERR_FORMAT, "%s: frame %zu has no Referenced Segment Number", path, f + 1);
        return false;
    }
    return true;
}

/* Display name of a segment: its label, else its description, else the meaning of its
 * Segmented Property Type code. */
void seg_name(DcmSegment *s, char *dst, size_t cap)
{
    OFString v;
    dst[0] = '\0';
    if (s->getSegmentLabel(v).good() && !v.empty())
        copy_str(dst, cap, v);
    if (!dst[0] && s->getSegmentDescription(v).good() && !v.empty())
        copy_str(dst, cap, v);
    if (!dst[0] && s->getSegmentedPropertyTypeCode().getCodeMeaning(v).good())
        copy_str(dst, cap, v);
}

bool seg_load(SmError **error, const char *path, const SmVolume *ref, SmVolume **out, SmStrList *names)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
        sm_error_set(error, SM_ERR_IO, "%s: cannot open the segmentation file", path);
        return false;
    }
    DcmFileFormat ff;
    OFCondition c = ff.loadFile(OFFilename(path));
    if (c.bad()) {
        sm_error_set(error, SM_ERR_FORMAT, "%s: not a readable DICOM file (DCMTK: %s)", path, c.text());
        return false;
    }
    DcmDataset *ds = ff.getDataset();
    char sop_class[65];
    get_str(ds, DCM_SOPClassUID, sop_class, sizeof sop_class);
    if (strcmp(sop_class, UID_SegmentationStorage) != 0) {
        bool labelmap = strcmp(sop_class, "1.2.840.10008.5.1.4.1.1.66.7") == 0;
        sm_error_set(error, labelmap ? SM_ERR_UNSUPPORTED : SM_ERR_FORMAT,
                     labelmap ? "%s: Label Map Segmentation objects (SOP class %s) are not supported; use a BINARY or "
                                "FRACTIONAL Segmentation"
                              : "%s: not a DICOM Segmentation object (SOP class '%s')",
                     path, sop_class);
        return false;
    }
    Uint16 max_fractional = 0;
    ds->findAndGetUint16(DCM_MaximumFractionalValue, max_fractional);
    DcmSegmentation *raw_seg = NULL;
    c = DcmSegmentation::loadDataset(*ds, raw_seg);
    std::unique_ptr<DcmSegmentation> seg(raw_seg);
    if (c.bad() || !seg) {
        sm_error_set(error, SM_ERR_FORMAT, "%s: cannot read the Segmentation (DCMTK: %s)", path, c.text());
        return false;
    }
    DcmSegTypes::E_SegmentationType type = seg->getSegmentationType();
    if (type != DcmSegTypes::ST_BINARY && type != DcmSegTypes::ST_FRACTIONAL) {
        sm_error_set(error, SM_ERR_UNSUPPORTED, "%s: Segmentation Type is neither BINARY nor FRACTIONAL", path);
        return false;
    }
    if (type == DcmSegTypes::ST_FRACTIONAL && max_fractional == 0) {
        sm_error_set(error, SM_ERR_FORMAT, "%s: FRACTIONAL segmentation without a Maximum Fractional Value", path);
        return false;
    }
    Uint16 rows = 0, cols = 0;
    ds->findAndGetUint16(DCM_Rows, rows);
    ds->findAndGetUint16(DCM_Columns, cols);
    size_t n_frames = seg->getNumberOfFrames(), n_segments = seg->getNumberOfSegments();
    if (rows == 0 || cols == 0 || n_frames == 0 || n_segments == 0 || n_segments > 65535) {
        sm_error_set(error, SM_ERR_FORMAT, "%s: Segmentation has %ux%u pixels, %zu frames and %zu segments", path,
                     rows, cols, n_frames, n_segments);
        return false;
    }
    size_t npix = (size_t)rows * cols;
    std::vector<Uint16> frame_segment(n_frames);
    std::vector<SegPlacement> place(n_frames);
    FGInterface &fg = seg->getFunctionalGroups();
    for (size_t f = 0; f < n_frames; f++) {
        double ipp[3], iop[6], ps[2];
        if (!seg_frame_geometry(error, path, fg, f, ipp, iop, ps, &frame_segment[f]))
            return false;
        if (frame_segment[f] > n_segments) {
            sm_error_set(error, SM_ERR_FORMAT, "%s: frame %zu refers to segment %u of %zu", path, f + 1,
                         frame_segment[f], n_segments);
            return false;
        }
        if (!seg_frame_place(error, path, ref, f, rows, cols, ipp, iop, ps, &place[f]))
            return false;
    }
    SmVolume *vol = sm_volume_create(error, ref->dims, SM_VOXEL_U16);
    if (!vol)
        return false;
    sm_volume_copy_geometry(vol, ref);
    uint16_t *dst = (uint16_t *)vol->data;
    std::vector<Uint8> set(npix);
    bool ok = true;
    for (size_t f = 0; f < n_frames && ok; f++) {
        const DcmIODTypes::Frame *fr = seg->getFrame(f);
        size_t packed = (npix + 7) / 8;
        if (!fr || !fr->pixData) {
            ok = false;
        } else if (type == DcmSegTypes::ST_BINARY && fr->length == packed) {
            for (size_t p = 0; p < npix; p++)
                set[p] = (Uint8)((fr->pixData[p / 8] >> (p % 8)) & 1u);
        } else if (fr->length == npix) {
            for (size_t p = 0; p < npix; p++)
                set[p] = type == DcmSegTypes::ST_BINARY ? fr->pixData[p] != 0
                                                        : 2u * fr->pixData[p] >= (unsigned)max_fractional;
        } else {
            ok = false;
        }
        if (!ok) {
            sm_error_set(error, SM_ERR_FORMAT, "%s: frame %zu pixel data is missing or has the wrong size", path,
                         f + 1);
            break;
        }
        const SegPlacement &pl = place[f];
        Uint16 s = frame_segment[f];
        for (size_t r = 0; r < rows; r++)
            for (size_t cidx = 0; cidx < cols; cidx++) {
                if (!set[r * cols + cidx])
                    continue;
                long ijk[3] = {pl.origin[0], pl.origin[1], pl.origin[2]};
                ijk[pl.axis_c] += pl.sign_c * (long)cidx;
                ijk[pl.axis_r] += pl.sign_r * (long)r;
                size_t at = (size_t)ijk[0] + ref->dims[0] * ((size_t)ijk[1] + ref->dims[1] * (size_t)ijk[2]);
                if (dst[at] < s) /* overlap: the higher segment number wins, whatever the frame order */
                    dst[at] = s;
            }
    }
    if (ok && names) {
        ok = sm_strlist_add(names, "%s", "");
        for (size_t s = 1; s <= n_segments && ok; s++) {
            char name[129];
            DcmSegment *sd = seg->getSegment(s);
            name[0] = '\0';
            if (sd)
                seg_name(sd, name, sizeof name);
            ok = sm_strlist_add(names, "%s", name);
        }
        if (!ok)
            sm_error_set(error, SM_ERR_NOMEM, "out of memory");
    }
    if (!ok) {
        sm_volume_destroy(vol);
        return false;
    }
    *out = vol;
    return true;
}

} /* namespace */

extern "C" {

bool sm_dcm_enhanced_ct_write(SmError **error, const char *path, const SmDcmWriteSlice *slice, size_t n_frames,
                              const double (*ipp)[3], const uint16_t *pixels)
{
    try {
        sm_dcm_init();
        return enhanced_write(error, path, slice, n_frames, ipp, pixels);
    } catch (...) {
        sm_error_set(error, SM_ERR_OUTPUT, "DCMTK failed writing %s", path);
    }
    return false;
}


void sm_dcm_init(void)
{
    try {
        std::call_once(init_flag, [] {
            OFLog::configure(OFLogger::OFF_LOG_LEVEL);
            DJDecoderRegistration::registerCodecs();
            DJLSDecoderRegistration::registerCodecs();
            DcmRLEDecoderRegistration::registerCodecs();
        });
    } catch (...) {
        /* Registration failing leaves compressed syntaxes undecodable: reported per file. */
    }
}

void sm_dcm_header_clear(SmDcmHeader *hdr)
{
    if (hdr == NULL)
        return;
    free(hdr->frame_geom);
    hdr->frame_geom = NULL;
}

bool sm_dcm_header_read(SmError **error, const char *path, SmDcmHeader *out)
{
    header_init(out);
    bool ok = false;
    try {
        sm_dcm_init();
        ok = header_read(error, path, out);
    } catch (const std::bad_alloc &) {
        sm_error_set(error, SM_ERR_NOMEM, "out of memory reading the header");
    } catch (const std::exception &ex) {
        sm_error_set(error, SM_ERR_FORMAT, "DCMTK failed reading the header: %s", ex.what());
    } catch (...) {
        sm_error_set(error, SM_ERR_FORMAT, "DCMTK failed reading the header");
    }
    if (!ok) {
        sm_dcm_header_clear(out);
        header_init(out);
    }
    return ok;
}

bool sm_dcm_dicomdir_files(SmError **error, const char *path, SmStrList *files)
{
    try {
        sm_dcm_init();
        return dicomdir_files(error, path, files);
    } catch (const std::bad_alloc &) {
        sm_error_set(error, SM_ERR_NOMEM, "out of memory reading DICOMDIR");
    } catch (...) {
        sm_error_set(error, SM_ERR_FORMAT, "DCMTK failed reading DICOMDIR");
    }
    return false;
}

bool sm_dcm_pixels_read(SmError **error, const char *path, const SmDcmHeader *hdr, void *raw, size_t raw_size)
{
    try {
        sm_dcm_init();
        return pixels_read(error, path, hdr, raw, raw_size);
    } catch (const std::bad_alloc &) {
        sm_error_set(error, SM_ERR_NOMEM, "out of memory decoding pixel data");
    } catch (...) {
        sm_error_set(error, SM_ERR_FORMAT, "DCMTK failed decoding pixel data");
    }
    return false;
}

bool sm_dcm_ct_write(SmError **error, const char *path, const SmDcmWriteSlice *slice)
{
    try {
        sm_dcm_init();
        return ct_write(error, path, slice);
    } catch (const std::bad_alloc &) {
        sm_error_set(error, SM_ERR_NOMEM, "out of memory writing %s", path);
    } catch (...) {
        sm_error_set(error, SM_ERR_OUTPUT, "DCMTK failed writing %s", path);
    }
    return false;
}

bool sm_io_dicom_seg_load(SmError **error, const char *path, const SmVolume *reference, SmVolume **out,
                          SmStrList *segment_names)
{
    if (!path || !reference || !out) {
        sm_error_set(error, SM_ERR_USAGE, "sm_io_dicom_seg_load: NULL argument");
        return false;
    }
    *out = NULL;
    try {
        sm_dcm_init();
        return seg_load(error, path, reference, out, segment_names);
    } catch (const std::bad_alloc &) {
        sm_error_set(error, SM_ERR_NOMEM, "out of memory reading %s", path);
    } catch (const std::exception &ex) {
        sm_error_set(error, SM_ERR_FORMAT, "%s: DCMTK failed reading the segmentation: %s", path, ex.what());
    } catch (...) {
        sm_error_set(error, SM_ERR_FORMAT, "%s: DCMTK failed reading the segmentation", path);
    }
    return false;
}

void sm_dcm_uid_generate(char out[65])
{
    try {
        dcmGenerateUniqueIdentifier(out, SITE_INSTANCE_UID_ROOT);
    } catch (...) {
        snprintf(out, 65, "2.25.%lu", (unsigned long)rand());
    }
}

const char *sm_dcm_transfer_syntax_name(const char *uid)
{
    static const struct {
        const char *uid, *name;
    } names[] = {
        {"1.2.840.10008.1.2", "implicit VR little endian"},
        {"1.2.840.10008.1.2.1", "explicit VR little endian"},
        {"1.2.840.10008.1.2.1.99", "deflated explicit VR little endian"},
        {"1.2.840.10008.1.2.2", "explicit VR big endian"},
        {"1.2.840.10008.1.2.4.50", "JPEG baseline"},
        {"1.2.840.10008.1.2.4.51", "JPEG extended"},
        {"1.2.840.10008.1.2.4.57", "JPEG lossless"},
        {"1.2.840.10008.1.2.4.70", "JPEG lossless SV1"},
        {"1.2.840.10008.1.2.4.80", "JPEG-LS lossless"},
        {"1.2.840.10008.1.2.4.81", "JPEG-LS near-lossless"},
        {"1.2.840.10008.1.2.4.90", "JPEG 2000 lossless"},
        {"1.2.840.10008.1.2.4.91", "JPEG 2000"},
        {"1.2.840.10008.1.2.4.201", "HTJ2K lossless"},
        {"1.2.840.10008.1.2.4.202", "HTJ2K lossless RPCL"},
        {"1.2.840.10008.1.2.4.203", "HTJ2K"},
        {"1.2.840.10008.1.2.5", "RLE lossless"},
    };
    if (uid == NULL)
        return NULL;
    for (const auto &n : names)
        if (strcmp(uid, n.uid) == 0)
            return n.name;
    return NULL;
}

bool sm_dcm_transfer_syntax_supported(const char *uid)
{
    return sm_dcm_transfer_syntax_name(uid) != NULL;
}

} /* extern "C" */
