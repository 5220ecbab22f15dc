/* npy_header.h: private to data/: the preamble and dict header of a .npy (npy_header.c). */
#ifndef AVPS_NPY_HEADER_H
#define AVPS_NPY_HEADER_H

#include "data.h"

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
#define NPY_ALIGN 64          /* numpy pads the preamble to a multiple of this */
#define NPY_PREAMBLE_MAX 320  /* room for the longest preamble npy_header_format writes */
#define NPY_SHAPE_TEXT_MAX 128

/* product(shape) * item size into *nbytes; -1 when it does not fit in size_t. */
int npy_shape_bytes(npy_dtype d, int ndim, const size_t *shape, size_t *nbytes);
/* A tuple as Python prints it: "()", "(5,)", "(3, 4)"; with zero_is_any, 0 prints "any". */
void npy_shape_text(const size_t *shape, int ndim, int zero_is_any, char buf[NPY_SHAPE_TEXT_MAX]);
/* Fills dtype, ndim, shape and nbytes from the dict text of a header (data untouched).
 * The message says what is wrong but not the file; the caller prefixes that. */
int npy_header_parse(const char *text, size_t len, npy_array *a, avps_error *err);
/* The version 1.0 preamble numpy writes for a: magic, version, length, the dict with its
 * spare room and padding, newline. Returns its length, a multiple of NPY_ALIGN. */
size_t npy_header_format(const npy_array *a, char buf[NPY_PREAMBLE_MAX]);

#endif
