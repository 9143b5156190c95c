/* PNG writing (QC pictures) with libpng, atomic. */
#include "sm_io.h"
#include "sm_io_files.h"

#include <png.h>
#include <stdio.h>

bool sm_io_png_save(SmError **error, const char *path, const uint8_t *pixels, size_t width,
                    size_t height, int channels)
{
    if ((channels != 1 && channels != 3) || width == 0 || height == 0 || width > 65535 ||
        height > 65535) {
        sm_error_set(error, SM_ERR_USAGE, "%s: bad PNG size %zux%zu or channel count %d", path,
                     width, height, channels);
        return false;
    }
    char *tmp = NULL;
    FILE *f = sm_io_temp_open(error, path, &tmp);
    if (!f)
        return false;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    volatile bool ok = false;
    if (png && info && setjmp(png_jmpbuf(png)) == 0) {
        png_init_io(png, f);
        png_set_compression_level(png, 6);
        png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8,
                     channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                     PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
        png_write_info(png, info);
        for (size_t y = 0; y < height; y++)
            png_write_row(png, pixels + y * width * (size_t)channels);
        png_write_end(png, NULL);
        ok = true;
    }
    png_destroy_write_struct(png ? &png : NULL, info ? &info : NULL);
    return sm_io_temp_finish(error, f, tmp, path, ok, "PNG write");
}
