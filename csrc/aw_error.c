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
}

int aw_fail(aw_error *err, enum aw_kind kind, const char *step,
            const char *path, size_t path_len, const char *detail)
{
  err->kind = kind;
  err->errnum = 0;
  err->step = step;
  copy_path(err, path, path_len);
  err->detail = detail ? detail : "";
  return -1;
}

int aw_fail_sys(aw_error *err, const char *step, const char *path, int errnum)
{
  err->kind = AW_KIND_SYSTEM;
  err->errnum = errnum;
  err->step = step;
  copy_path(err, path, path ? strlen(path) : 0);
  err->detail = "";
  return -1;
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
  E(ETIMEDOUT), E(ECANCELED),
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

/* Appends `s` to buf[*pos..size), escaping bytes a terminal would not
 * print (payload paths may hold any byte but NUL and '/'-rules). */
static void append_escaped(char *buf, size_t size, size_t *pos, const char *s,
                           size_t len)
{
  static const char hex[] = "0123456789abcdef";
  const char *end = s + len;
  for (; s < end && *pos + 5 < size; s++) {
    unsigned char c = (unsigned char)*s;
    if (c < 0x20 || c == 0x7f || c == '"' || c == '\\') {
      buf[(*pos)++] = '\\';
      buf[(*pos)++] = 'x';
      buf[(*pos)++] = hex[c >> 4];
      buf[(*pos)++] = hex[c & 15];
    } else {
      buf[(*pos)++] = (char)c;
    }
  }
  buf[*pos] = '\0';
}

static void append(char *buf, size_t size, size_t *pos, const char *s)
{
  int n = snprintf(buf + *pos, size - *pos, "%s", s);
  if (n > 0)
    *pos += ((size_t)n < size - *pos) ? (size_t)n : size - *pos - 1;
}

char *aw_error_format(const aw_error *err, const char *prefix,
                      const char *target, char *buf, size_t size)
{
  size_t pos = 0;

  if (size == 0)
    return buf;
  buf[0] = '\0';
  if (prefix && *prefix) {
    append(buf, size, &pos, prefix);
    append(buf, size, &pos, ": ");
  }
  if (target) {
    append_escaped(buf, size, &pos, target, strlen(target));
    append(buf, size, &pos, ": ");
  }
  append(buf, size, &pos, err->step ? err->step : "error");
  if (err->has_path) {
    append(buf, size, &pos, " \"");
    append_escaped(buf, size, &pos, err->path, err->path_len);
    append(buf, size, &pos, "\"");
  }
  append(buf, size, &pos, ": ");
  if (err->kind == AW_KIND_SYSTEM) {
    append(buf, size, &pos, strerror(err->errnum));
    append(buf, size, &pos, " (");
    append(buf, size, &pos, aw_error_code(err));
    append(buf, size, &pos, ")");
  } else {
    append(buf, size, &pos, err->detail ? err->detail : "");
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
             strlen(err->detail ? err->detail : "");
  if (err->kind == AW_KIND_SYSTEM)
    n += strlen(strerror(err->errnum)) + strlen(aw_error_code(err));
  return 4 * n + 64;
}
