/*
 * aw_error.c - recording a failure and turning it into the contract's
 * stable code and a one-line message that names the target and the path.
 */
#include "aw_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Recording                                                           */
/* ------------------------------------------------------------------ */

static void copy_path(aw_error *err, const char *path, size_t len)
{
  err->has_path = path != NULL;
  if (!path)
    len = 0;
  if (len >= sizeof err->path)
    len = sizeof err->path - 1;
  if (len)
    memcpy(err->path, path, len);
  err->path[len] = '\0';
  err->path_len = len;
  err->source = NULL;
}

void aw_fail_source(aw_error *err, const char *source)
{
  err->source = source;
}

const char *aw_error_source(const aw_error *err)
{
  return err->source;
}

int aw_fail(aw_error *err, enum aw_kind kind, const char *step,
            const char *path, size_t path_len, const char *detail)
{
  err->kind = kind;
  err->errnum = 0;
  err->step = step;
  copy_path(err, path, path_len);
  err->detail = detail ? detail : "";
  err->source = NULL;
  return -1;
}

int aw_fail_sys_len(aw_error *err, const char *step, const char *path, size_t len,
                    int errnum)
{
  err->kind = AW_KIND_SYSTEM;
  err->errnum = errnum;
  err->step = step;
  copy_path(err, path, len);
  err->detail = "";
  err->source = NULL;
  return -1;
}

int aw_fail_sys_why(aw_error *err, const char *step, const char *path, size_t len,
                    int errnum, const char *detail)
{
  aw_fail_sys_len(err, step, path, len, errnum);
  err->detail = detail ? detail : "";
  return -1;
}

int aw_fail_sys(aw_error *err, const char *step, const char *path, int errnum)
{
  return aw_fail_sys_len(err, step, path, path ? strlen(path) : 0, errnum);
}

/* ------------------------------------------------------------------ */
/* Codes                                                               */
/* ------------------------------------------------------------------ */

#define E(name) { name, #name }
static const struct { int num; const char *name; } errno_names[] = {
  E(EPERM), E(ENOENT), E(ESRCH), E(EINTR), E(EIO), E(ENXIO), E(E2BIG),
  E(ENOEXEC), E(EBADF), E(ECHILD), E(EAGAIN), E(ENOMEM), E(EACCES),
  E(EFAULT), E(EBUSY), E(EEXIST), E(EXDEV), E(ENODEV), E(ENOTDIR),
  E(EISDIR), E(EINVAL), E(ENFILE), E(EMFILE), E(ETXTBSY), E(EFBIG),
  E(ENOSPC), E(ESPIPE), E(EROFS), E(EMLINK), E(EPIPE), E(ERANGE),
  E(EDEADLK), E(ENAMETOOLONG), E(ENOLCK), E(ENOSYS), E(ENOTEMPTY),
  E(ELOOP), E(EOVERFLOW), E(EDQUOT), E(ESTALE), E(ENOTSUP),
  E(ETIMEDOUT), E(ECANCELED), E(EBADMSG), E(EPROTO), E(ENOTCONN), E(ECONNRESET), E(EILSEQ),
};
#undef E

const char *aw_error_code(const aw_error *err)
{
  static __thread char unknown[24];
  size_t i;

  switch (err->kind) {
  case AW_KIND_NONE:     return "ok";
  case AW_KIND_INVALID:  return "invalid";
  case AW_KIND_CONFLICT: return "conflict";
  case AW_KIND_BUSY:     return "busy";
  case AW_KIND_NO_VERSION: return "noversion";
  case AW_KIND_FORMAT:   return "format";
  case AW_KIND_CHANGED:  return "changed";
  case AW_KIND_SYSTEM:   break;
  }
  for (i = 0; i < sizeof errno_names / sizeof errno_names[0]; i++)
    if (errno_names[i].num == err->errnum)
      return errno_names[i].name;
  snprintf(unknown, sizeof unknown, "E%d", err->errnum);
  return unknown;
}

/* ------------------------------------------------------------------ */
/* Messages                                                            */
/* ------------------------------------------------------------------ */

/* The message being formatted. A cut message stays a prefix of the full
 * one: a plain piece is cut at the buffer's end, an escape goes in whole
 * or not at all, and nothing is appended once something was cut. */
typedef struct out {
  char *buf;
  size_t size, pos;   /* size > 0; pos < size: buf[pos] is the NUL */
  int cut;
} out;

static void put(out *o, const char *s, size_t n, int whole)
{
  size_t room = o->size - 1 - o->pos;
  if (o->cut)
    return;
  if (n > room) {
    o->cut = 1;
    n = whole ? 0 : room;
  }
  memcpy(o->buf + o->pos, s, n);
  o->pos += n;
  o->buf[o->pos] = '\0';
}

static void append(out *o, const char *s)
{
  put(o, s, strlen(s), 0);
}

/* The length of the well-formed UTF-8 sequence of two or more bytes at
 * s[0..len), or 0 when s[0] does not start one (a stray continuation
 * byte, an overlong form, a surrogate, a code point past U+10FFFF, a
 * sequence cut short). */
static size_t utf8_len(const unsigned char *s, size_t len)
{
  unsigned char lo = 0x80, hi = 0xbf;
  size_t n, i;

  if (s[0] >= 0xc2 && s[0] <= 0xdf)
    n = 2;
  else if (s[0] >= 0xe0 && s[0] <= 0xef)
    n = 3;
  else if (s[0] >= 0xf0 && s[0] <= 0xf4)
    n = 4;
  else
    return 0;
  if (s[0] == 0xe0)
    lo = 0xa0;   /* overlong */
  else if (s[0] == 0xed)
    hi = 0x9f;   /* surrogates */
  else if (s[0] == 0xf0)
    lo = 0x90;   /* overlong */
  else if (s[0] == 0xf4)
    hi = 0x8f;   /* past U+10FFFF */
  if (n > len || s[1] < lo || s[1] > hi)
    return 0;
  for (i = 2; i < n; i++)
    if (s[i] < 0x80 || s[i] > 0xbf)
      return 0;
  return n;
}

/* Appends `s`, escaping as \xHH the bytes a terminal would not print or
 * would misread (payload paths may hold any byte but NUL): control bytes,
 * '"', '\\', and every byte that is not part of well-formed UTF-8. */
static void append_escaped(out *o, const char *s, size_t len)
{
  static const char hex[] = "0123456789abcdef";
  size_t i, plain = 0;
  for (i = 0; i < len && !o->cut; i++) {
    unsigned char c = (unsigned char)s[i];
    size_t n;
    if (c >= 0x80 && (n = utf8_len((const unsigned char *)s + i, len - i)) > 0) {
      i += n - 1;   /* a whole character, plain */
      continue;
    }
    if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
      char esc[4];
      put(o, s + plain, i - plain, 0);   /* the plain run before it */
      esc[0] = '\\';
      esc[1] = 'x';
      esc[2] = hex[c >> 4];
      esc[3] = hex[c & 15];
      put(o, esc, 4, 1);
      plain = i + 1;
    }
  }
  put(o, s + plain, i - plain, 0);
}

/* What a system failure says: the plain words recorded with it, or for
 * ENOSYS words that name the file system (the step names the call), or
 * the errno's own text. */
static const char *sys_words(const aw_error *err)
{
  if (err->detail && err->detail[0])
    return err->detail;
  if (err->errnum == ENOSYS)
    return "this file system does not support this step";
  if (err->errnum == EROFS)
    return "the file system is mounted read-only";
  return strerror(err->errnum);
}

char *aw_error_format(const aw_error *err, const char *prefix,
                      const char *target, char *buf, size_t size)
{
  out o;

  if (size == 0)
    return buf;
  o.buf = buf;
  o.size = size;
  o.pos = 0;
  o.cut = 0;
  buf[0] = '\0';
  if (prefix && *prefix) {
    append(&o, prefix);
    append(&o, ": ");
  }
  if (target) {
    append_escaped(&o, target, strlen(target));
    append(&o, ": ");
  }
  append(&o, err->step ? err->step : "error");
  if (err->has_path) {
    append(&o, " \"");
    append_escaped(&o, err->path, err->path_len);
    append(&o, "\"");
  }
  if (aw_error_source(err)) {
    append(&o, " from source \"");
    append_escaped(&o, aw_error_source(err), strlen(aw_error_source(err)));
    append(&o, "\"");
  }
  append(&o, ": ");
  if (err->kind == AW_KIND_SYSTEM) {
    append(&o, sys_words(err));
    append(&o, " (");
    append(&o, aw_error_code(err));
    append(&o, ")");
  } else {
    append(&o, err->detail ? err->detail : "");
  }
  return buf;
}

size_t aw_error_format_size(const aw_error *err, const char *prefix,
                            const char *target)
{
  /* Every part counted as if each of its bytes took a 4-byte escape, and
   * 64 bytes for the separators and quotes. */
  size_t n = strlen(prefix ? prefix : "") + strlen(target ? target : "?") +
             strlen(err->step ? err->step : "error") + err->path_len +
             strlen(err->detail ? err->detail : "") +
             (aw_error_source(err) ? strlen(aw_error_source(err)) + 16 : 0);
  if (err->kind == AW_KIND_SYSTEM)
    n += strlen(sys_words(err)) + strlen(aw_error_code(err));
  return 4 * n + 64;
}
