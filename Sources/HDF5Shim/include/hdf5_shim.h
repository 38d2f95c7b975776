// Plain C face of the HDF5 library for Swift. HDF5's constants (H5P_DEFAULT, H5T_NATIVE_FLOAT, ...)
// are macros over globals and casts that Swift cannot import, so this is the only code that
// includes hdf5.h. Files live in memory (HDF5's core driver): a .keras archive holds the weights
// file as a zip entry, so it is built and read as bytes, never as a file of its own.
// Every function returns a negative value on failure, and HDF5 prints nothing.
#ifndef DPTRAIN_HDF5_SHIM_H
#define DPTRAIN_HDF5_SHIM_H

#include <stddef.h>
#include <stdint.h>

/// A new, empty file in memory; its handle, or negative.
int64_t h5s_create(void);
/// Opens the file image `bytes` (copied) read-only; its handle, or negative.
int64_t h5s_open(const void *bytes, size_t count);
/// The file's image: its size in bytes, copied into `buffer` when `capacity` is large enough.
int64_t h5s_image(int64_t file, void *buffer, size_t capacity);
int h5s_close(int64_t file);

/// Creates the group at `path` (its parent must exist).
int h5s_create_group(int64_t file, const char *path);
/// Writes a float32 dataset of `rank` dimensions (0: a scalar), contiguous, as h5py does.
int h5s_write_floats(int64_t file, const char *path, int rank, const int64_t *dims, const float *values);
/// Sets a variable-length UTF-8 string attribute on the object at `path`, as h5py writes a str.
int h5s_set_string_attribute(int64_t file, const char *path, const char *name, const char *value);

/// What is at `path`: 0 nothing, 1 a group, 2 a dataset, 3 something else.
int h5s_kind(int64_t file, const char *path);
/// The names of the group's members, each followed by a NUL: the bytes they need, copied into
/// `buffer` when `capacity` is large enough.
int64_t h5s_members(int64_t file, const char *path, char *buffer, size_t capacity);
/// The dataset's rank; its first `max_rank` dimensions go to `dims`.
int h5s_shape(int64_t file, const char *path, int64_t *dims, int max_rank);
/// Reads `count` elements of a numeric dataset (any integer or float type) converted to float32;
/// -2 if it holds something else, -3 if `count` is not its size.
int h5s_read_floats(int64_t file, const char *path, float *values, size_t count);

#endif
