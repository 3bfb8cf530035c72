/*
 * wsgate._speedups: the common case of wsgate.http11's parse() and
 * response_head() in C, for the worker's lent-connection loop
 * (docs/architecture.md, "The C speedups").
 *
 * Optional: http11.py imports it when the build made it for this very
 * interpreter (the file name carries the interpreter's EXT_SUFFIX) and
 * WSGATE_NO_SPEEDUPS is not set. Each function here serves only the plain
 * shape of its input and calls the pure-Python function it stands for (given
 * by configure()) for everything else, so the result is always the Python
 * one: a request with a header name, method or Host value the Python side has
 * not seen yet (its caches decide those), a bad byte, an unusual
 * Content-Length, anything deferred or incomplete. The Python caches
 * (http11._methods, _keys, _servers, _names) are read here, never written.
 *
 * CPython C API, no limited API: built for one interpreter by `make`.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>
#include <time.h>

#if PY_VERSION_HEX < 0x030A0000
static inline PyObject *
Py_NewRef(PyObject *o)
{
    Py_INCREF(o);
    return o;
}
#endif

/* http11.py's header codes (_DROP … _REFUSE), in its order. */
enum { K_DROP, K_HOST, K_LENGTH, K_COOKIE, K_CONNECTION, K_PRAGMA, K_REFUSE };
/* http11.py's response header kinds (_PLAIN … _CTYPE). */
enum { R_PLAIN, R_CLEN, R_DATE, R_CTYPE };

/* What configure() gave: http11's caches and its Python functions. */
static PyObject *methods, *keys, *servers, *names, *py_parse, *py_head, *date_line;
static Py_ssize_t default_max_head, default_max_body; /* http11.MAX_HEAD, MAX_BODY */

/* Interned strings. */
static PyObject *s_REQUEST_METHOD, *s_SCRIPT_NAME, *s_PATH_INFO, *s_QUERY_STRING, *s_REQUEST_URI,
    *s_SERVER_PROTOCOL, *s_SERVER_NAME, *s_SERVER_PORT, *s_HTTP_HOST, *s_CONTENT_LENGTH, *s_HTTP_COOKIE,
    *s_HTTP_CONNECTION, *s_HTTP_PRAGMA, *s_HTTP_CACHE_CONTROL, *s_no_cache, *s_empty, *s_http11, *s_80,
    *s_443, *s_https, *s_url_scheme, *s_comma, *s_semicolon, *s_GET, *s_HEAD, *s_POST;

/* Bytes a line of a head may hold (http11._LINE_BYTES): HTAB, SP, VCHAR, obs-text. */
static unsigned char line_byte[256];

static PyObject *
latin1(const char *p, Py_ssize_t n)
{
    return PyUnicode_DecodeLatin1(p, n, NULL);
}

/* a + sep + b, a new reference (NULL on error). */
static PyObject *
join3(PyObject *a, PyObject *sep, PyObject *b)
{
    PyObject *ab = PyUnicode_Concat(a, sep);
    if (ab == NULL)
        return NULL;
    PyObject *r = PyUnicode_Concat(ab, b);
    Py_DECREF(ab);
    return r;
}

/* environ[key] = value, or environ[key] += sep + value if present. 0, or -1 on error. */
static int
set_or_join(PyObject *environ, PyObject *key, PyObject *value, PyObject *sep)
{
    PyObject *old = PyDict_GetItemWithError(environ, key);
    if (old == NULL) {
        if (PyErr_Occurred())
            return -1;
        return PyDict_SetItem(environ, key, value);
    }
    PyObject *joined = join3(old, sep, value);
    if (joined == NULL)
        return -1;
    int rc = PyDict_SetItem(environ, key, joined);
    Py_DECREF(joined);
    return rc;
}

static int
hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The path of a target, %XX decoded as latin-1 (urllib.parse.unquote(path,
 * encoding="latin-1") of a path without a bad escape). NULL without an
 * error set: a bad escape (the Python side defers it). */
static PyObject *
path_of(const char *p, Py_ssize_t n)
{
    if (memchr(p, '%', n) == NULL)
        return latin1(p, n);
    char small[512] = {0};
    char *out = n <= (Py_ssize_t)sizeof small ? small : PyMem_Malloc(n);
    if (out == NULL)
        return PyErr_NoMemory();
    Py_ssize_t j = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (p[i] != '%') {
            out[j++] = p[i];
            continue;
        }
        int hi = i + 2 < n ? hexval((unsigned char)p[i + 1]) : -1;
        int lo = hi >= 0 ? hexval((unsigned char)p[i + 2]) : -1;
        if (lo < 0) {
            if (out != small)
                PyMem_Free(out);
            return NULL;
        }
        out[j++] = (char)(hi * 16 + lo);
        i += 2;
    }
    PyObject *r = latin1(out, j);
    if (out != small)
        PyMem_Free(out);
    return r;
}

/*
 * The request at buf[pos:] when it has the plain shape, as http11._py_parse
 * gives it: (environ, body, end). NULL without an error set: the Python
 * parser must decide. NULL with an error set: an error.
 */
static PyObject *
fast_parse(PyObject *buf, Py_ssize_t pos, PyObject *conn, Py_ssize_t max_head, Py_ssize_t max_body)
{
    const char *all;
    Py_ssize_t size;
    if (PyBytes_CheckExact(buf)) {
        all = PyBytes_AS_STRING(buf);
        size = PyBytes_GET_SIZE(buf);
    } else if (PyByteArray_CheckExact(buf)) {
        all = PyByteArray_AS_STRING(buf);
        size = PyByteArray_GET_SIZE(buf);
    } else {
        return NULL;
    }
    if (!PyDict_CheckExact(conn) || pos < 0 || pos > size || max_head < 4)
        return NULL;
    const char *data = all + pos;
    Py_ssize_t avail = size - pos < max_head ? size - pos : max_head;
    const char *crlf2 = avail >= 4 ? memmem(data, avail, "\r\n\r\n", 4) : NULL;
    if (crlf2 == NULL)
        return NULL;
    Py_ssize_t end = crlf2 - data; /* the head is data[:end] */

    /* Every byte a line byte, CR and LF only as CR LF pairs; the request line ends at the first. */
    Py_ssize_t line_end = -1;
    for (Py_ssize_t i = 0; i < end; i++) {
        unsigned char c = (unsigned char)data[i];
        if (line_byte[c])
            continue;
        if (c == '\r' && i + 1 < end && data[i + 1] == '\n') {
            if (line_end < 0)
                line_end = i;
            i++;
            continue;
        }
        return NULL;
    }
    if (line_end < 0)
        line_end = end;

    /* METHOD SP target SP HTTP/1.1: exactly two spaces. */
    const char *sp1 = memchr(data, ' ', line_end);
    if (sp1 == NULL)
        return NULL;
    const char *sp2 = memchr(sp1 + 1, ' ', data + line_end - (sp1 + 1));
    if (sp2 == NULL || memchr(sp2 + 1, ' ', data + line_end - (sp2 + 1)) != NULL)
        return NULL;
    if (data + line_end - (sp2 + 1) != 8 || memcmp(sp2 + 1, "HTTP/1.1", 8) != 0)
        return NULL;
    const char *target_p = sp1 + 1;
    Py_ssize_t target_n = sp2 - target_p;
    if (target_n < 1 || target_p[0] != '/' || memchr(target_p, '\t', target_n) != NULL)
        return NULL;
    const char *q = memchr(target_p, '?', target_n);
    Py_ssize_t path_n = q ? q - target_p : target_n;

    PyObject *method = NULL, *target = NULL, *path = NULL, *query = NULL, *environ = NULL;
    PyObject *host = NULL, *length = NULL, *pragma = NULL, *body = NULL, *result = NULL;
    PyObject *name = NULL, *value = NULL;
    Py_ssize_t method_n = sp1 - data;
    if (method_n == 3 && memcmp(data, "GET", 3) == 0)
        method = Py_NewRef(s_GET);
    else if (method_n == 4 && memcmp(data, "POST", 4) == 0)
        method = Py_NewRef(s_POST);
    else if (method_n == 4 && memcmp(data, "HEAD", 4) == 0)
        method = Py_NewRef(s_HEAD);
    else if ((method = latin1(data, method_n)) == NULL)
        goto error;
    int known = PySet_Contains(methods, method);
    if (known < 0)
        goto error;
    if (!known)
        goto decline;

    environ = PyDict_Copy(conn);
    if (environ == NULL)
        goto error;
    Py_ssize_t at = line_end + 2;
    while (at < end + 2) { /* each header line: data[at:nl] */
        const char *nl_p = at < end ? memmem(data + at, end - at, "\r\n", 2) : NULL;
        Py_ssize_t nl = nl_p ? nl_p - data : end;
        const char *colon = memchr(data + at, ':', nl - at);
        if (colon == NULL)
            goto decline;
        if ((name = latin1(data + at, colon - (data + at))) == NULL)
            goto error;
        PyObject *key = PyDict_GetItemWithError(keys, name); /* borrowed */
        Py_CLEAR(name);
        if (key == NULL) {
            if (PyErr_Occurred())
                goto error;
            goto decline; /* a name the Python side has not seen */
        }
        const char *v = colon + 1, *v_end = data + nl;
        while (v < v_end && (*v == ' ' || *v == '\t'))
            v++;
        while (v_end > v && (v_end[-1] == ' ' || v_end[-1] == '\t'))
            v_end--;
        if ((value = latin1(v, v_end - v)) == NULL)
            goto error;
        if (PyUnicode_CheckExact(key)) {
            if (set_or_join(environ, key, value, s_comma) < 0)
                goto error;
        } else {
            if (!PyLong_CheckExact(key))
                goto decline;
            long code = PyLong_AsLong(key);
            switch (code) {
            case K_DROP:
                break;
            case K_HOST:
                if (host != NULL)
                    goto decline;
                host = Py_NewRef(value);
                break;
            case K_LENGTH: {
                Py_ssize_t n = v_end - v;
                if (length != NULL || n < 1 || n > 18)
                    goto decline;
                for (Py_ssize_t i = 0; i < n; i++)
                    if (v[i] < '0' || v[i] > '9')
                        goto decline;
                length = Py_NewRef(value);
                break;
            }
            case K_COOKIE:
                if (set_or_join(environ, s_HTTP_COOKIE, value, s_semicolon) < 0)
                    goto error;
                break;
            case K_CONNECTION: {
                int has = PyDict_Contains(environ, s_HTTP_CONNECTION);
                if (has < 0)
                    goto error;
                /* value.lower() == "keep-alive": for latin-1 text, an ASCII case-insensitive match */
                if (has || v_end - v != 10 || PyOS_strnicmp(v, "keep-alive", 10) != 0)
                    goto decline;
                if (PyDict_SetItem(environ, s_HTTP_CONNECTION, value) < 0)
                    goto error;
                break;
            }
            case K_PRAGMA:
                if (pragma == NULL) {
                    pragma = Py_NewRef(value);
                    if (PyDict_SetItem(environ, s_HTTP_PRAGMA, value) < 0)
                        goto error;
                } else if (set_or_join(environ, s_HTTP_PRAGMA, value, s_comma) < 0) {
                    goto error;
                }
                break;
            default: /* K_REFUSE, or a code this file does not know */
                goto decline;
            }
        }
        Py_CLEAR(value);
        at = nl + 2;
    }
    if (host == NULL)
        goto decline;
    PyObject *server = PyDict_GetItemWithError(servers, host); /* borrowed */
    if (server == NULL) {
        if (PyErr_Occurred())
            goto error;
        goto decline;
    }
    if (!PyTuple_CheckExact(server) || PyTuple_GET_SIZE(server) != 2)
        goto decline;
    Py_ssize_t start = pos + end + 4;
    if (length == NULL) {
        body = PyBytes_FromStringAndSize(NULL, 0);
    } else {
        long long n = 0;
        const char *digits = PyUnicode_AsUTF8(length);
        if (digits == NULL)
            goto error;
        for (; *digits; digits++)
            n = n * 10 + (*digits - '0');
        if (n > max_body || (long long)start + n > (long long)size)
            goto decline; /* deferred, or the body is still coming */
        /* size and the data pointer again: nothing above ran Python code, but be exact */
        body = PyBytes_FromStringAndSize(all + start, (Py_ssize_t)n);
        start += (Py_ssize_t)n;
        if (body != NULL && PyDict_SetItem(environ, s_CONTENT_LENGTH, length) < 0)
            goto error;
    }
    if (body == NULL)
        goto error;
    if (pragma != NULL && PyUnicode_GET_LENGTH(pragma) == 8 && PyUnicode_CompareWithASCIIString(pragma, "no-cache") == 0) {
        int has = PyDict_Contains(environ, s_HTTP_CACHE_CONTROL);
        if (has < 0 || (!has && PyDict_SetItem(environ, s_HTTP_CACHE_CONTROL, s_no_cache) < 0))
            goto error;
    }
    if ((target = latin1(target_p, target_n)) == NULL)
        goto error;
    if (q == NULL) {
        path = (memchr(target_p, '%', target_n) == NULL) ? Py_NewRef(target) : path_of(target_p, path_n);
        query = Py_NewRef(s_empty);
    } else {
        path = path_of(target_p, path_n);
        query = latin1(q + 1, target_p + target_n - (q + 1));
        if (query == NULL)
            goto error;
    }
    if (path == NULL) {
        if (PyErr_Occurred())
            goto error;
        goto decline; /* a bad escape */
    }
    PyObject *port = PyTuple_GET_ITEM(server, 1);
    int has_port = PyObject_IsTrue(port);
    if (has_port < 0)
        goto error;
    if (!has_port) {
        port = s_80;
        PyObject *scheme = PyDict_GetItemWithError(conn, s_url_scheme);
        if (scheme == NULL && PyErr_Occurred())
            goto error;
        if (scheme != NULL) {
            int https = PyObject_RichCompareBool(scheme, s_https, Py_EQ);
            if (https < 0)
                goto error;
            if (https)
                port = s_443;
        }
    }
    if (PyDict_SetItem(environ, s_REQUEST_METHOD, method) < 0 || PyDict_SetItem(environ, s_SCRIPT_NAME, s_empty) < 0
        || PyDict_SetItem(environ, s_PATH_INFO, path) < 0 || PyDict_SetItem(environ, s_QUERY_STRING, query) < 0
        || PyDict_SetItem(environ, s_REQUEST_URI, target) < 0
        || PyDict_SetItem(environ, s_SERVER_PROTOCOL, s_http11) < 0
        || PyDict_SetItem(environ, s_SERVER_NAME, PyTuple_GET_ITEM(server, 0)) < 0
        || PyDict_SetItem(environ, s_SERVER_PORT, port) < 0 || PyDict_SetItem(environ, s_HTTP_HOST, host) < 0)
        goto error;
    {
        PyObject *end_obj = PyLong_FromSsize_t(start);
        if (end_obj == NULL)
            goto error;
        result = PyTuple_Pack(3, environ, body, end_obj);
        Py_DECREF(end_obj);
    }
    goto done;
decline:
error:
    /* result stays NULL; an error, if any, is set */
done:
    Py_XDECREF(method);
    Py_XDECREF(target);
    Py_XDECREF(path);
    Py_XDECREF(query);
    Py_XDECREF(environ);
    Py_XDECREF(host);
    Py_XDECREF(length);
    Py_XDECREF(pragma);
    Py_XDECREF(body);
    Py_XDECREF(name);
    Py_XDECREF(value);
    return result;
}

static int
configured(void)
{
    if (py_parse == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "wsgate._speedups: configure() was not called");
        return 0;
    }
    return 1;
}

/* The arguments of http11.parse(buf, pos, conn, max_head=MAX_HEAD,
 * max_body=MAX_BODY, mount=""), given by position, with no mount: 1 when
 * the C parser may take them. */
static int
parse_args(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, Py_ssize_t *pos, Py_ssize_t *max_head,
           Py_ssize_t *max_body)
{
    if (kwnames != NULL && PyTuple_GET_SIZE(kwnames) > 0)
        return 0;
    if (nargs < 3 || nargs > 6)
        return 0;
    if (nargs == 6 && !(PyUnicode_CheckExact(args[5]) && PyUnicode_GET_LENGTH(args[5]) == 0))
        return 0; /* a mount point: the Python parser's */
    for (Py_ssize_t i = 1; i < nargs && i < 5; i++)
        if (i != 2 && !PyLong_CheckExact(args[i]))
            return 0;
    *pos = PyLong_AsSsize_t(args[1]);
    *max_head = nargs > 3 ? PyLong_AsSsize_t(args[3]) : default_max_head;
    *max_body = nargs > 4 ? PyLong_AsSsize_t(args[4]) : default_max_body;
    if (PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    return 1;
}

/* What a function answers once its C path has run: r, or the error it set, or
 * when it declined (NULL, no error) the Python function's answer — None
 * for the try_ functions, which have no fallback. */
static PyObject *
answer(PyObject *r, PyObject *fallback, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (r != NULL || PyErr_Occurred())
        return r;
    if (fallback == NULL)
        Py_RETURN_NONE;
    return PyObject_Vectorcall(fallback, args, nargs, kwnames);
}

static PyObject *
parse_or(PyObject *fallback, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    Py_ssize_t pos, max_head, max_body;
    PyObject *r = NULL;
    if (!configured())
        return NULL;
    if (parse_args(args, nargs, kwnames, &pos, &max_head, &max_body))
        r = fast_parse(args[0], pos, args[2], max_head, max_body);
    return answer(r, fallback, args, nargs, kwnames);
}

PyDoc_STRVAR(try_parse_doc, "try_parse(buf, pos, conn, max_head, max_body): parse()'s result for a plain request, "
                            "None when the Python parser must decide (tests compare the two).");

static PyObject *
sp_try_parse(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return parse_or(NULL, args, nargs, kwnames);
}

PyDoc_STRVAR(parse_doc, "parse(buf, pos, conn, max_head=MAX_HEAD, max_body=MAX_BODY, mount=''): wsgate.http11.parse, "
                        "the plain request in C, anything else by the Python parser.");

static PyObject *
sp_parse(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return parse_or(py_parse, args, nargs, kwnames);
}

/* ------------------------------------------------------------------------ response_head */

/* A str of latin-1 characters: its bytes, else NULL. */
static const char *
latin1_data(PyObject *s, Py_ssize_t *n)
{
    if (!PyUnicode_CheckExact(s) || PyUnicode_KIND(s) != PyUnicode_1BYTE_KIND)
        return NULL;
    *n = PyUnicode_GET_LENGTH(s);
    return (const char *)PyUnicode_1BYTE_DATA(s);
}

#define MAX_FAST_HEADERS 64

/* The items of an exact list or tuple of headers (*n of them) in *items: 1,
 * else 0. (An empty list's items are NULL.) */
static int
header_items(PyObject *headers, PyObject *const **items, Py_ssize_t *n)
{
    if (PyList_CheckExact(headers)) {
        *n = PyList_GET_SIZE(headers);
        *items = (PyObject *const *)((PyListObject *)headers)->ob_item;
        return 1;
    }
    if (PyTuple_CheckExact(headers)) {
        *n = PyTuple_GET_SIZE(headers);
        *items = (PyObject *const *)((PyTupleObject *)headers)->ob_item;
        return 1;
    }
    return 0;
}

/*
 * http11._py_head(status, headers, length, chunked) with date None for the
 * plain shape: a str status and a list or tuple of (str, str) tuples whose
 * names http11._names knows, latin-1 text, a Content-Length the
 * application gave in digits. NULL without an error: the Python function
 * must make it.
 */
static PyObject *
fast_head(PyObject *status, PyObject *headers, PyObject *length_obj, PyObject *chunked_obj)
{
    Py_ssize_t status_n, date_n, n_headers;
    const char *status_p = latin1_data(status, &status_n);
    if (status_p == NULL || status_n < 3)
        return NULL;
    PyObject *const *items;
    if (!header_items(headers, &items, &n_headers))
        return NULL;
    if (n_headers > MAX_FAST_HEADERS)
        return NULL;
    int empty = (memcmp(status_p, "204", 3) == 0 || memcmp(status_p, "304", 3) == 0 || status_p[0] == '1');
    int is304 = memcmp(status_p, "304", 3) == 0;
    char length_buf[32];
    Py_ssize_t length_n = -1;
    if (length_obj != Py_None) {
        if (!PyLong_CheckExact(length_obj))
            return NULL;
        int overflow;
        long long v = PyLong_AsLongLongAndOverflow(length_obj, &overflow);
        if (overflow || (v == -1 && PyErr_Occurred())) {
            PyErr_Clear();
            return NULL;
        }
        length_n = PyOS_snprintf(length_buf, sizeof length_buf, "%lld", v);
    }
    int chunked = PyObject_IsTrue(chunked_obj);
    if (chunked < 0) {
        PyErr_Clear();
        return NULL;
    }
    /* Each header kept: its "Canonical: " prefix and its stripped value. */
    const char *pre_p[MAX_FAST_HEADERS], *val_p[MAX_FAST_HEADERS];
    Py_ssize_t pre_n[MAX_FAST_HEADERS], val_n[MAX_FAST_HEADERS];
    int kept = 0, has_date = 0, app_length = -1; /* -1: no Content-Length seen; 1: a valid one */
    Py_ssize_t total = 9 + status_n + 2;           /* "HTTP/1.1 " status CRLF */
    for (Py_ssize_t i = 0; i < n_headers; i++) {
        PyObject *item = items[i];
        if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 2)
            return NULL;
        PyObject *name = PyTuple_GET_ITEM(item, 0);
        Py_ssize_t vn;
        const char *v = latin1_data(PyTuple_GET_ITEM(item, 1), &vn);
        if (!PyUnicode_CheckExact(name) || v == NULL)
            return NULL;
        PyObject *entry = PyDict_GetItemWithError(names, name); /* borrowed: (canonical, kind, prefix) */
        if (entry == NULL || !PyTuple_CheckExact(entry) || PyTuple_GET_SIZE(entry) != 3
            || !PyLong_CheckExact(PyTuple_GET_ITEM(entry, 1))) {
            PyErr_Clear();
            return NULL;
        }
        long kind = PyLong_AsLong(PyTuple_GET_ITEM(entry, 1));
        if (kind == R_CLEN) {
            if (empty)
                continue;
            if (app_length < 0) {
                /* http11 takes it if strconv.ParseInt does and it is >= 0: here only plain digits */
                if (vn < 1 || vn > 18)
                    return NULL;
                for (Py_ssize_t j = 0; j < vn; j++)
                    if (v[j] < '0' || v[j] > '9')
                        return NULL;
                app_length = 1;
            }
        } else if (kind == R_DATE) {
            has_date = 1;
        } else if (kind == R_CTYPE) {
            if (is304)
                continue; /* net/http suppresses it on a 304 */
        } else if (kind != R_PLAIN) {
            return NULL;
        }
        Py_ssize_t pn;
        const char *p = latin1_data(PyTuple_GET_ITEM(entry, 2), &pn);
        if (p == NULL)
            return NULL;
        while (vn > 0 && (*v == ' ' || *v == '\t')) {
            v++;
            vn--;
        }
        while (vn > 0 && (v[vn - 1] == ' ' || v[vn - 1] == '\t'))
            vn--;
        pre_p[kept] = p;
        pre_n[kept] = pn;
        val_p[kept] = v;
        val_n[kept] = vn;
        kept++;
        total += pn + vn + 2;
    }
    PyObject *date = NULL;
    const char *date_p = NULL;
    if (!has_date) {
        /* http11._date_line() changes once a second (int(time.time()), the second time() gives): ask it then only */
        static time_t date_second = -1;
        static PyObject *date_cached;
        time_t now = time(NULL);
        if (now != date_second || date_cached == NULL) {
            PyObject *fresh = PyObject_CallNoArgs(date_line);
            if (fresh == NULL)
                return NULL; /* an error: raised */
            Py_XSETREF(date_cached, fresh);
            date_second = now;
        }
        date = Py_NewRef(date_cached);
        date_p = latin1_data(date, &date_n);
        if (date_p == NULL) {
            Py_DECREF(date);
            return NULL;
        }
        total += date_n;
    }
    int framing = !empty && app_length < 0;
    if (framing && chunked)
        total += 28; /* "Transfer-Encoding: chunked\r\n" */
    else if (framing && length_n >= 0)
        total += 16 + length_n + 2;
    total += 2;
    PyObject *out = PyBytes_FromStringAndSize(NULL, total);
    if (out == NULL) {
        Py_XDECREF(date);
        return NULL;
    }
    char *w = PyBytes_AS_STRING(out);
#define PUT(p, n) (memcpy(w, (p), (n)), w += (n))
    PUT("HTTP/1.1 ", 9);
    PUT(status_p, status_n);
    PUT("\r\n", 2);
    for (int i = 0; i < kept; i++) {
        PUT(pre_p[i], pre_n[i]);
        PUT(val_p[i], val_n[i]);
        PUT("\r\n", 2);
    }
    if (date_p != NULL)
        PUT(date_p, date_n);
    if (framing && chunked) {
        PUT("Transfer-Encoding: chunked\r\n", 28);
    } else if (framing && length_n >= 0) {
        PUT("Content-Length: ", 16);
        PUT(length_buf, length_n);
        PUT("\r\n", 2);
    }
    PUT("\r\n", 2);
#undef PUT
    Py_XDECREF(date);
    return out;
}

/* response_head's arguments (status, headers, length=None, chunked=False, date=None): 1 when the fast path may
 * take them. */
static int
head_args(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (kwnames != NULL && PyTuple_GET_SIZE(kwnames) > 0)
        return 0;
    return nargs >= 2 && nargs <= 5 && (nargs < 5 || args[4] == Py_None);
}

static PyObject *
head_or(PyObject *fallback, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *r = NULL;
    if (!configured())
        return NULL;
    if (head_args(args, nargs, kwnames))
        r = fast_head(args[0], args[1], nargs > 2 ? args[2] : Py_None, nargs > 3 ? args[3] : Py_False);
    return answer(r, fallback, args, nargs, kwnames);
}

PyDoc_STRVAR(try_head_doc, "try_head(status, headers, length=None, chunked=False): response_head()'s bytes for a "
                           "plain response, None when the Python function must make it (tests compare the two).");

static PyObject *
sp_try_head(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return head_or(NULL, args, nargs, kwnames);
}

PyDoc_STRVAR(head_doc, "response_head(status, headers, length=None, chunked=False, date=None): "
                       "wsgate.http11.response_head, the plain response in C, anything else in Python.");

static PyObject *
sp_head(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return head_or(py_head, args, nargs, kwnames);
}

/* ------------------------------------------------------------------------ start_response's header checks */

PyDoc_STRVAR(checked_length_doc,
             "checked_length(headers, good_names, length_names): the value of the first header named in length_names, "
             "or None, when every header is a (str, str) tuple whose name is in good_names and whose value is "
             "latin-1 text without a control character (HTAB aside); False when the Python checks must decide "
             "(wsgate.lend.LentResponse.start_response).");

static PyObject *
sp_checked_length(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyAnySet_Check(args[1]) || !PyAnySet_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "checked_length(headers, good_names, length_names)");
        return NULL;
    }
    Py_ssize_t n;
    PyObject *const *items;
    if (!header_items(args[0], &items, &n))
        Py_RETURN_FALSE;
    PyObject *length = Py_None;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = items[i];
        if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 2)
            Py_RETURN_FALSE;
        PyObject *name = PyTuple_GET_ITEM(item, 0), *value = PyTuple_GET_ITEM(item, 1);
        Py_ssize_t vn;
        const unsigned char *v = (const unsigned char *)latin1_data(value, &vn);
        if (!PyUnicode_CheckExact(name) || v == NULL)
            Py_RETURN_FALSE;
        int good = PySet_Contains(args[1], name);
        if (good < 0)
            return NULL;
        if (!good)
            Py_RETURN_FALSE;
        for (Py_ssize_t j = 0; j < vn; j++) /* worker._CONTROL_CHARS: [\x01-\x08\x0a-\x1f\x7f] */
            if ((v[j] >= 0x01 && v[j] <= 0x08) || (v[j] >= 0x0a && v[j] <= 0x1f) || v[j] == 0x7f)
                Py_RETURN_FALSE;
        if (length == Py_None) {
            int is_length = PySet_Contains(args[2], name);
            if (is_length < 0)
                return NULL;
            if (is_length)
                length = value;
        }
    }
    return Py_NewRef(length);
}

PyDoc_STRVAR(configure_doc, "configure(methods, keys, servers, names, py_parse, py_head, date_line, max_head, "
                            "max_body): http11's caches (read, never written), the Python functions for everything "
                            "else, and parse()'s defaults.");

static PyObject *
sp_configure(PyObject *self, PyObject *args)
{
    PyObject *a[7];
    Py_ssize_t max_head, max_body;
    if (!PyArg_ParseTuple(args, "O!O!O!O!OOOnn:configure", &PySet_Type, &a[0], &PyDict_Type, &a[1], &PyDict_Type,
                          &a[2], &PyDict_Type, &a[3], &a[4], &a[5], &a[6], &max_head, &max_body))
        return NULL;
    default_max_head = max_head;
    default_max_body = max_body;
    PyObject **slots[7] = {&methods, &keys, &servers, &names, &py_parse, &py_head, &date_line};
    for (int i = 0; i < 7; i++)
        Py_XSETREF(*slots[i], Py_NewRef(a[i]));
    Py_RETURN_NONE;
}

static PyMethodDef methods_def[] = {
    {"configure", sp_configure, METH_VARARGS, configure_doc},
    {"parse", (PyCFunction)(void (*)(void))sp_parse, METH_FASTCALL | METH_KEYWORDS, parse_doc},
    {"try_parse", (PyCFunction)(void (*)(void))sp_try_parse, METH_FASTCALL | METH_KEYWORDS, try_parse_doc},
    {"response_head", (PyCFunction)(void (*)(void))sp_head, METH_FASTCALL | METH_KEYWORDS, head_doc},
    {"try_head", (PyCFunction)(void (*)(void))sp_try_head, METH_FASTCALL | METH_KEYWORDS, try_head_doc},
    {"checked_length", (PyCFunction)(void (*)(void))sp_checked_length, METH_FASTCALL, checked_length_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "wsgate._speedups",
    "wsgate.http11's parse() and response_head() for plain requests and responses, in C (optional).", -1,
    methods_def,
};

static int
intern(PyObject **slot, const char *text)
{
    *slot = PyUnicode_InternFromString(text);
    return *slot == NULL ? -1 : 0;
}

PyMODINIT_FUNC
PyInit__speedups(void)
{
    for (int c = 0; c < 256; c++)
        line_byte[c] = (c == 9 || (c >= 0x20 && c < 0x7f) || c >= 0x80);
    struct {
        PyObject **slot;
        const char *text;
    } strings[] = {
        {&s_REQUEST_METHOD, "REQUEST_METHOD"}, {&s_SCRIPT_NAME, "SCRIPT_NAME"}, {&s_PATH_INFO, "PATH_INFO"},
        {&s_QUERY_STRING, "QUERY_STRING"}, {&s_REQUEST_URI, "REQUEST_URI"}, {&s_SERVER_PROTOCOL, "SERVER_PROTOCOL"},
        {&s_SERVER_NAME, "SERVER_NAME"}, {&s_SERVER_PORT, "SERVER_PORT"}, {&s_HTTP_HOST, "HTTP_HOST"},
        {&s_CONTENT_LENGTH, "CONTENT_LENGTH"}, {&s_HTTP_COOKIE, "HTTP_COOKIE"},
        {&s_HTTP_CONNECTION, "HTTP_CONNECTION"}, {&s_HTTP_PRAGMA, "HTTP_PRAGMA"},
        {&s_HTTP_CACHE_CONTROL, "HTTP_CACHE_CONTROL"}, {&s_no_cache, "no-cache"}, {&s_empty, ""},
        {&s_http11, "HTTP/1.1"}, {&s_80, "80"}, {&s_443, "443"}, {&s_https, "https"},
        {&s_url_scheme, "wsgi.url_scheme"}, {&s_comma, ", "}, {&s_semicolon, "; "}, {&s_GET, "GET"},
        {&s_HEAD, "HEAD"}, {&s_POST, "POST"},
    };
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++)
        if (intern(strings[i].slot, strings[i].text) < 0)
            return NULL;
    return PyModule_Create(&module_def);
}
