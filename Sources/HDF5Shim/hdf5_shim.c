#include "hdf5_shim.h"

#include <hdf5.h>
#include <stdio.h>
#include <string.h>

// HDF5 prints its error stack unless told not to, and the setting is per thread.
static void quiet(void) {
    static _Thread_local int done = 0;
    if (!done) {
        H5open();
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
        done = 1;
    }
}

// A core-driver file access list: memory only, never written to disk.
static hid_t memory_access(void) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0) return -1;
    if (H5Pset_fapl_core(fapl, 64 * 1024, 0) < 0) { H5Pclose(fapl); return -1; }
    return fapl;
}

// The core driver still wants a name, unique among the open files.
static void unique_name(char *name, size_t size) {
    static unsigned long counter = 0;
    snprintf(name, size, "dptrain-memory-%lu.h5", ++counter);
}

int64_t h5s_create(void) {
    quiet();
    hid_t fapl = memory_access();
    if (fapl < 0) return -1;
    char name[64];
    unique_name(name, sizeof name);
    hid_t file = H5Fcreate(name, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    return file;
}

int64_t h5s_open(const void *bytes, size_t count) {
    quiet();
    hid_t fapl = memory_access();
    if (fapl < 0) return -1;
    if (H5Pset_file_image(fapl, (void *)bytes, count) < 0) { H5Pclose(fapl); return -1; }
    char name[64];
    unique_name(name, sizeof name);
    hid_t file = H5Fopen(name, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    return file;
}

int64_t h5s_image(int64_t file, void *buffer, size_t capacity) {
    quiet();
    if (H5Fflush(file, H5F_SCOPE_GLOBAL) < 0) return -1;
    ssize_t size = H5Fget_file_image(file, NULL, 0);
    if (size < 0) return -1;
    if (buffer && capacity >= (size_t)size && H5Fget_file_image(file, buffer, (size_t)size) < 0) return -1;
    return size;
}

int h5s_close(int64_t file) {
    quiet();
    return H5Fclose(file) < 0 ? -1 : 0;
}

int h5s_create_group(int64_t file, const char *path) {
    quiet();
    hid_t group = H5Gcreate2(file, path, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (group < 0) return -1;
    H5Gclose(group);
    return 0;
}

int h5s_write_floats(int64_t file, const char *path, int rank, const int64_t *dims, const float *values) {
    quiet();
    hsize_t sizes[32];
    if (rank < 0 || rank > 32) return -1;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0) return -1;
        sizes[i] = (hsize_t)dims[i];
    }
    hid_t space = rank == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(rank, sizes, NULL);
    if (space < 0) return -1;
    hid_t set = H5Dcreate2(file, path, H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Sclose(space);
    if (set < 0) return -1;
    herr_t rc = H5Dwrite(set, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values);
    H5Dclose(set);
    return rc < 0 ? -1 : 0;
}

int h5s_set_string_attribute(int64_t file, const char *path, const char *name, const char *value) {
    quiet();
    hid_t type = H5Tcopy(H5T_C_S1);
    if (type < 0) return -1;
    H5Tset_size(type, H5T_VARIABLE);
    H5Tset_cset(type, H5T_CSET_UTF8);
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attribute = H5Acreate_by_name(file, path, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = -1;
    if (attribute >= 0) {
        rc = H5Awrite(attribute, type, &value);
        H5Aclose(attribute);
    }
    H5Sclose(space);
    H5Tclose(type);
    return rc < 0 ? -1 : 0;
}

int h5s_kind(int64_t file, const char *path) {
    quiet();
    // H5Lexists fails when a link on the way is missing, so check each prefix in turn.
    char prefix[1024];
    size_t length = strlen(path);
    if (length >= sizeof prefix) return -1;
    for (size_t i = 1; i <= length; i++) {
        if (i < length && path[i] != '/') continue;
        memcpy(prefix, path, i);
        prefix[i] = 0;
        if (strcmp(prefix, "/") == 0) continue;
        if (H5Lexists(file, prefix, H5P_DEFAULT) <= 0) return 0;
    }
    hid_t object = H5Oopen(file, path, H5P_DEFAULT);
    if (object < 0) return 0;
    H5I_type_t type = H5Iget_type(object);
    H5Oclose(object);
    return type == H5I_GROUP ? 1 : type == H5I_DATASET ? 2 : 3;
}

int64_t h5s_members(int64_t file, const char *path, char *buffer, size_t capacity) {
    quiet();
    hid_t group = H5Gopen2(file, path, H5P_DEFAULT);
    if (group < 0) return -1;
    H5G_info_t info;
    if (H5Gget_info(group, &info) < 0) { H5Gclose(group); return -1; }
    int64_t needed = 0;
    for (hsize_t i = 0; i < info.nlinks; i++) {
        ssize_t length = H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, i, NULL, 0, H5P_DEFAULT);
        if (length < 0) { H5Gclose(group); return -1; }
        if (buffer && (size_t)(needed + length + 1) <= capacity) {
            H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, i, buffer + needed, (size_t)length + 1, H5P_DEFAULT);
        }
        needed += length + 1;
    }
    H5Gclose(group);
    return needed;
}

int h5s_shape(int64_t file, const char *path, int64_t *dims, int max_rank) {
    quiet();
    hid_t set = H5Dopen2(file, path, H5P_DEFAULT);
    if (set < 0) return -1;
    hid_t space = H5Dget_space(set);
    int rank = space < 0 ? -1 : H5Sget_simple_extent_ndims(space);
    if (rank > 0) {
        hsize_t sizes[32];
        if (rank > 32 || H5Sget_simple_extent_dims(space, sizes, NULL) < 0) rank = -1;
        for (int i = 0; i < rank && i < max_rank; i++) dims[i] = (int64_t)sizes[i];
    }
    if (space >= 0) H5Sclose(space);
    H5Dclose(set);
    return rank;
}

int h5s_read_floats(int64_t file, const char *path, float *values, size_t count) {
    quiet();
    hid_t set = H5Dopen2(file, path, H5P_DEFAULT);
    if (set < 0) return -1;
    int rc = 0;
    hid_t type = H5Dget_type(set);
    H5T_class_t class = type < 0 ? H5T_NO_CLASS : H5Tget_class(type);
    if (type >= 0) H5Tclose(type);
    if (class != H5T_INTEGER && class != H5T_FLOAT) rc = -2;
    if (rc == 0) {
        hid_t space = H5Dget_space(set);
        hssize_t points = space < 0 ? -1 : H5Sget_simple_extent_npoints(space);
        if (space >= 0) H5Sclose(space);
        if (points < 0) rc = -1;
        else if ((size_t)points != count) rc = -3;
    }
    // HDF5 converts integers and doubles to the memory type on reading.
    if (rc == 0 && H5Dread(set, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values) < 0) rc = -1;
    H5Dclose(set);
    return rc;
}

