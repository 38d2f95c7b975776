#include "image_decoders.h"
#include <png.h>
#include <stdio.h>
#include <jpeglib.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

static int decode_png(const uint8_t *data, size_t size, int channels, uint8_t **pixels,
                      int *width, int *height, char *message, size_t message_size) {
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&image, data, size)) {
        snprintf(message, message_size, "not a readable PNG (%s)", image.message);
        return -1;
    }
    image.format = channels == 1 ? PNG_FORMAT_GRAY : channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_RGBA;
    size_t bytes = PNG_IMAGE_SIZE(image);
    uint8_t *out = malloc(bytes ? bytes : 1);
    if (!out) { png_image_free(&image); snprintf(message, message_size, "out of memory"); return -1; }
    if (!png_image_finish_read(&image, NULL, out, 0, NULL)) {
        snprintf(message, message_size, "corrupt PNG (%s)", image.message);
        free(out);
        png_image_free(&image);
        return -1;
    }
    *pixels = out;
    *width = (int)image.width;
    *height = (int)image.height;
    return 0;
}

struct jpeg_failure {
    struct jpeg_error_mgr manager;
    jmp_buf jump;
};

static void jpeg_fail(j_common_ptr info) {
    struct jpeg_failure *failure = (struct jpeg_failure *)info->err;
    longjmp(failure->jump, 1);
}

static void jpeg_quiet(j_common_ptr info, int level) { (void)info; (void)level; }

static int decode_jpeg(const uint8_t *data, size_t size, int channels, uint8_t **pixels,
                       int *width, int *height, char *message, size_t message_size) {
    struct jpeg_decompress_struct info;
    struct jpeg_failure failure;
    uint8_t *volatile out = NULL;
    info.err = jpeg_std_error(&failure.manager);
    failure.manager.error_exit = jpeg_fail;
    failure.manager.emit_message = jpeg_quiet;
    if (setjmp(failure.jump)) {
        char reason[JMSG_LENGTH_MAX];
        failure.manager.format_message((j_common_ptr)&info, reason);
        snprintf(message, message_size, "corrupt JPEG (%s)", reason);
        jpeg_destroy_decompress(&info);
        free(out);
        return -1;
    }
    jpeg_create_decompress(&info);
    jpeg_mem_src(&info, data, (unsigned long)size);
    jpeg_read_header(&info, TRUE);
    if (info.jpeg_color_space == JCS_CMYK || info.jpeg_color_space == JCS_YCCK) {
        snprintf(message, message_size, "CMYK JPEG images are not supported");
        jpeg_destroy_decompress(&info);
        return -1;
    }
    info.out_color_space = channels == 1 ? JCS_GRAYSCALE : channels == 3 ? JCS_RGB : JCS_EXT_RGBA;
    jpeg_start_decompress(&info);
    size_t stride = (size_t)info.output_width * (size_t)info.output_components;
    out = malloc(stride * info.output_height + 1);
    if (!out) {
        jpeg_destroy_decompress(&info);
        snprintf(message, message_size, "out of memory");
        return -1;
    }
    while (info.output_scanline < info.output_height) {
        JSAMPROW row = out + stride * info.output_scanline;
        jpeg_read_scanlines(&info, &row, 1);
    }
    jpeg_finish_decompress(&info);
    *width = (int)info.output_width;
    *height = (int)info.output_height;
    jpeg_destroy_decompress(&info);
    *pixels = out;
    return 0;
}

int image_decode(const uint8_t *data, size_t size, int channels,
                 uint8_t **pixels, int *width, int *height, char *message, size_t message_size) {
    if (channels != 1 && channels != 3 && channels != 4) {
        snprintf(message, message_size, "channels must be 1, 3 or 4");
        return -1;
    }
    if (size >= 8 && png_sig_cmp(data, 0, 8) == 0) return decode_png(data, size, channels, pixels, width, height, message, message_size);
    if (size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) return decode_jpeg(data, size, channels, pixels, width, height, message, message_size);
    snprintf(message, message_size, "neither a PNG nor a JPEG file");
    return -1;
}

void image_free(uint8_t *pixels) { free(pixels); }
