#ifndef IMAGE_DECODERS_H
#define IMAGE_DECODERS_H
#include <stddef.h>
#include <stdint.h>

/// Decodes a PNG or JPEG held in memory to 8-bit pixels, row-major HWC with `channels`
/// (1 grayscale, 3 RGB, 4 RGBA) converted by the library itself. On success returns 0 and sets
/// *pixels (free with image_free), *width and *height; on failure returns -1 and writes a short
/// reason into `message`.
int image_decode(const uint8_t *data, size_t size, int channels,
                 uint8_t **pixels, int *width, int *height, char *message, size_t message_size);
void image_free(uint8_t *pixels);

#endif
