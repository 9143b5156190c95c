/* Error objects set once by the function that detects a problem, plus string lists. */
#include "sm_core.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__)
__attribute__((format(printf, 1, 0)))
#endif
static char *vformat(const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (s)
        vsnprintf(s, (size_t)n + 1, fmt, ap);
    return s;
}

/* A static fallback so an out-of-memory error can still be reported. */
static char oom_message[] = "out of memory";

void sm_error_set(SmError **error, SmErrorCode code, const char *fmt, ...)
{
    if (!error || *error)
        return;
    SmError *e = malloc(sizeof *e);
    if (!e)
        return;
    va_list ap;
    va_start(ap, fmt);
    e->message = vformat(fmt, ap);
    va_end(ap);
    e->code = code;
    if (!e->message) {
        e->message = oom_message;
        e->code = SM_ERR_NOMEM;
    }
    *error = e;
}

void sm_error_prefix(SmError **error, const char *fmt, ...)
{
    if (!error || !*error)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *pre = vformat(fmt, ap);
    va_end(ap);
    if (!pre)
        return;
    SmError *e = *error;
    size_t n = strlen(pre) + strlen(e->message) + 1;
    char *m = malloc(n);
    if (m) {
        snprintf(m, n, "%s%s", pre, e->message);
        if (e->message != oom_message)
            free(e->message);
        e->message = m;
    }
    free(pre);
}

void sm_error_destroy(SmError *error)
{
    if (!error)
        return;
    if (error->message != oom_message)
        free(error->message);
    free(error);
}

const char *sm_error_code_name(SmErrorCode code)
{
    switch (code) {
    case SM_ERR_NONE: return "none";
    case SM_ERR_NOMEM: return "out-of-memory";
    case SM_ERR_USAGE: return "usage";
    case SM_ERR_IO: return "io";
    case SM_ERR_FORMAT: return "format";
    case SM_ERR_UNSUPPORTED: return "unsupported";
    case SM_ERR_GEOMETRY: return "geometry";
    case SM_ERR_NO_SERIES: return "no-series";
    case SM_ERR_OUTPUT: return "output";
    case SM_ERR_INTERNAL: return "internal";
    }
    return "unknown";
}

bool sm_strlist_add(SmStrList *list, const char *fmt, ...)
{
    if (list->n == list->cap) {
        size_t cap = list->cap ? list->cap * 2 : 8;
        char **items = realloc(list->items, cap * sizeof *items);
        if (!items)
            return false;
        list->items = items;
        list->cap = cap;
    }
    va_list ap;
    va_start(ap, fmt);
    char *s = vformat(fmt, ap);
    va_end(ap);
    if (!s)
        return false;
    list->items[list->n++] = s;
    return true;
}

void sm_strlist_clear(SmStrList *list)
{
    for (size_t i = 0; i < list->n; i++)
        free(list->items[i]);
    free(list->items);
    list->items = NULL;
    list->n = list->cap = 0;
}
