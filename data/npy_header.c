/* npy_header.c: the .npy header, a Python dict literal such as
 *     {'descr': '<f2', 'fortran_order': False, 'shape': (3, 4), }
 * parsed strictly (exactly these three keys, the dtypes avps uses) but as Python would
 * read it (any key order, any spacing, either quote, trailing comma or not), and
 * written exactly as numpy writes it, so that both sides read each other's files. */
#include "npy_header.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *descr; /* as numpy writes it */
    size_t size;
} dtype_info[NPY_DTYPE_COUNT] = {
    [NPY_F16] = {"<f2", 2}, [NPY_F32] = {"<f4", 4}, [NPY_U8] = {"|u1", 1},
    [NPY_U16] = {"<u2", 2}, [NPY_I32] = {"<i4", 4}, [NPY_F64] = {"<f8", 8},
};

size_t npy_dtype_size(npy_dtype d) {
    return (unsigned)d < NPY_DTYPE_COUNT ? dtype_info[d].size : 0;
}

const char *npy_dtype_descr(npy_dtype d) {
    return (unsigned)d < NPY_DTYPE_COUNT ? dtype_info[d].descr : "?";
}

int npy_shape_bytes(npy_dtype d, int ndim, const size_t *shape, size_t *nbytes) {
    /* As numpy: the non-zero axes must multiply within an intp even when another is 0. */
    size_t n = npy_dtype_size(d);
    int empty = 0;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] == 0)
            empty = 1;
        else if (shape[i] > (size_t)PTRDIFF_MAX / n)
            return -1;
        else
            n *= shape[i];
    }
    *nbytes = empty ? 0 : n;
    return 0;
}

void npy_shape_text(const size_t *shape, int ndim, int zero_is_any, char buf[NPY_SHAPE_TEXT_MAX]) {
    size_t at = 0;
    buf[at++] = '(';
    for (int i = 0; i < ndim; i++) {
        if (zero_is_any && shape[i] == 0)
            at += (size_t)snprintf(buf + at, NPY_SHAPE_TEXT_MAX - at, "%sany", i ? ", " : "");
        else
            at += (size_t)snprintf(buf + at, NPY_SHAPE_TEXT_MAX - at, "%s%zu", i ? ", " : "", shape[i]);
    }
    snprintf(buf + at, NPY_SHAPE_TEXT_MAX - at, "%s)", ndim == 1 ? "," : "");
}

size_t npy_header_format(const npy_array *a, char buf[NPY_PREAMBLE_MAX]) {
    char shape[NPY_SHAPE_TEXT_MAX], first[32];
    npy_shape_text(a->shape, a->ndim, 0, shape);
    int n = snprintf(buf + 10, NPY_PREAMBLE_MAX - 10, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                     npy_dtype_descr(a->dtype), shape);
    size_t len = 10 + (size_t)n;
    /* numpy leaves room for the first axis to grow to 21 digits in place */
    if (a->ndim > 0)
        for (size_t k = (size_t)snprintf(first, sizeof first, "%zu", a->shape[0]); k < 21; k++)
            buf[len++] = ' ';
    size_t pad = NPY_ALIGN - (len + 1) % NPY_ALIGN; /* 1 to 64 spaces: never none */
    memset(buf + len, ' ', pad);
    len += pad;
    buf[len++] = '\n';
    memcpy(buf, NPY_MAGIC "\x01\x00", 8);
    buf[8] = (char)((len - 10) & 0xff);
    buf[9] = (char)((len - 10) >> 8);
    return len;
}

/* ---- parsing ------------------------------------------------------------------------ */

typedef struct {
    const char *start, *p, *end;
    avps_error *err;
} cursor;

static int syntax_error(cursor *c, const char *what) {
    return avps_fail(c->err, "malformed at byte %td: expected %s", c->p - c->start, what);
}

static void skip_space(cursor *c) {
    while (c->p < c->end && *c->p && strchr(" \t\n\r\f\v", *c->p))
        c->p++;
}

/* Skips spaces, then takes ch if it is next. */
static int accept(cursor *c, char ch) {
    skip_space(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

static int expect_char(cursor *c, char ch, const char *what) {
    return accept(c, ch) ? 0 : syntax_error(c, what);
}

/* A quoted string without escapes (none of numpy's keys or dtypes has one). */
static int take_string(cursor *c, char *buf, size_t cap) {
    skip_space(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
        return syntax_error(c, "a quoted string");
    char quote = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != quote) {
        if (*c->p == '\\' || *c->p == '\n' || n + 1 >= cap)
            return syntax_error(c, "a short string without escapes");
        buf[n++] = *c->p++;
    }
    if (c->p >= c->end)
        return syntax_error(c, "the closing quote");
    c->p++;
    buf[n] = '\0';
    return 0;
}

/* A bare word: True, False, or a number's digits. */
static size_t word_length(const cursor *c) {
    size_t n = 0;
    while (c->p + n < c->end && (c->p[n] == '_' || (c->p[n] >= '0' && c->p[n] <= '9') ||
                                 (c->p[n] >= 'A' && c->p[n] <= 'Z') || (c->p[n] >= 'a' && c->p[n] <= 'z')))
        n++;
    return n;
}

static int parse_descr(cursor *c, npy_array *a) {
    char descr[64];
    skip_space(c);
    if (c->p < c->end && (*c->p == '[' || *c->p == '{'))
        return avps_fail(c->err, "structured dtypes are not supported (avps reads '<f2', '<f4', '|u1', '<u2', '<i4')");
    if (take_string(c, descr, sizeof descr))
        return -1;
    for (int d = 0; d < NPY_DTYPE_COUNT; d++)
        if (strcmp(descr, dtype_info[d].descr) == 0) {
            a->dtype = (npy_dtype)d;
            return 0;
        }
    if (strcmp(descr, "<u1") == 0 || strcmp(descr, ">u1") == 0) { /* one byte has no order */
        a->dtype = NPY_U8;
        return 0;
    }
    if (descr[0] == '>')
        return avps_fail(c->err, "big-endian dtype '%s' is not supported (save arr.astype('<%s'))", descr, descr + 1);
    return avps_fail(c->err, "unsupported dtype '%s' (avps reads '<f2', '<f4', '|u1', '<u2', '<i4')", descr);
}

static int parse_fortran_order(cursor *c) {
    skip_space(c);
    size_t n = word_length(c);
    if (n == 5 && memcmp(c->p, "False", 5) == 0) {
        c->p += n;
        return 0;
    }
    if (n == 4 && memcmp(c->p, "True", 4) == 0)
        return avps_fail(c->err, "fortran_order True is not supported (save np.ascontiguousarray(arr))");
    return syntax_error(c, "True or False for 'fortran_order'");
}

/* A non-negative integer; Python 2's numpy wrote longs with an 'L'. */
static int parse_dim(cursor *c, size_t *dim) {
    skip_space(c);
    size_t n = word_length(c), v = 0, digits = 0;
    if (c->p < c->end && *c->p == '-')
        return avps_fail(c->err, "negative dimension in 'shape'");
    while (digits < n && c->p[digits] >= '0' && c->p[digits] <= '9') {
        unsigned d = (unsigned)(c->p[digits] - '0');
        if (v > (SIZE_MAX - d) / 10)
            return avps_fail(c->err, "dimension %.*s in 'shape' is too large", (int)n, c->p);
        v = v * 10 + d;
        digits++;
    }
    if (digits == 0 || (digits > 1 && c->p[0] == '0') || n - digits > 1 || (n > digits && c->p[digits] != 'L'))
        return syntax_error(c, "a non-negative integer in 'shape'");
    c->p += n;
    *dim = v;
    return 0;
}

/* "()", "(5,)", "(3, 4)", "(3, 4,)"; "(5)" is an int to Python, not a tuple. */
static int parse_shape(cursor *c, npy_array *a) {
    if (expect_char(c, '(', "a tuple for 'shape'"))
        return -1;
    a->ndim = 0;
    int trailing_comma = 1;
    while (!accept(c, ')')) {
        if (!trailing_comma)
            return syntax_error(c, "',' or ')' in 'shape'");
        if (a->ndim == NPY_MAX_DIMS)
            return avps_fail(c->err, "'shape' has more than %d dimensions", NPY_MAX_DIMS);
        if (parse_dim(c, &a->shape[a->ndim]))
            return -1;
        a->ndim++;
        trailing_comma = accept(c, ',');
    }
    if (a->ndim == 1 && !trailing_comma)
        return avps_fail(c->err, "'shape' (%zu) is not a tuple; numpy writes (%zu,)", a->shape[0], a->shape[0]);
    return 0;
}

/* One "'key': value"; *seen collects the keys met so far, as bits. */
static int parse_entry(cursor *c, npy_array *a, unsigned *seen) {
    static const char *const keys[3] = {"descr", "fortran_order", "shape"};
    char key[32];
    if (take_string(c, key, sizeof key))
        return -1;
    int k = 0;
    while (k < 3 && strcmp(key, keys[k]) != 0)
        k++;
    if (k == 3)
        return avps_fail(c->err, "unknown key '%s' (a .npy header has 'descr', 'fortran_order', 'shape')", key);
    if (*seen & 1u << k)
        return avps_fail(c->err, "key '%s' given twice", key);
    *seen |= 1u << k;
    if (expect_char(c, ':', "':' after a key"))
        return -1;
    return k == 0 ? parse_descr(c, a) : k == 1 ? parse_fortran_order(c) : parse_shape(c, a);
}

int npy_header_parse(const char *text, size_t len, npy_array *a, avps_error *err) {
    cursor c = {text, text, text + len, err};
    unsigned seen = 0;
    if (expect_char(&c, '{', "'{'"))
        return -1;
    int more = 1;
    while (!accept(&c, '}')) {
        if (!more)
            return syntax_error(&c, "',' or '}'");
        if (parse_entry(&c, a, &seen))
            return -1;
        more = accept(&c, ',');
    }
    skip_space(&c);
    if (c.p != c.end)
        return syntax_error(&c, "only spaces after '}'");
    if (seen != 7)
        return avps_fail(err, "the header lacks '%s'", !(seen & 1) ? "descr" : !(seen & 2) ? "fortran_order" : "shape");
    for (int i = a->ndim; i < NPY_MAX_DIMS; i++)
        a->shape[i] = 0;
    if (npy_shape_bytes(a->dtype, a->ndim, a->shape, &a->nbytes)) {
        char shape[NPY_SHAPE_TEXT_MAX];
        npy_shape_text(a->shape, a->ndim, 0, shape);
        return avps_fail(err, "shape %s of '%s' overflows the address space", shape, npy_dtype_descr(a->dtype));
    }
    return 0;
}
