/* http_date.c - HTTP-date parsing and formatting (RFC 9110 §5.6.7).
 *
 * Three formats are accepted, all case-sensitive and in GMT:
 *   IMF-fixdate  Sun, 06 Nov 1994 08:49:37 GMT
 *   RFC 850      Sunday, 06-Nov-94 08:49:37 GMT   (obsolete)
 *   asctime      Sun Nov  6 08:49:37 1994         (obsolete)
 * Only IMF-fixdate is generated. Conversion between calendar dates and
 * unix seconds uses the proleptic Gregorian calendar with plain integer
 * arithmetic, so it needs neither the C library's time zone state nor
 * timegm().
 */
#include <string.h>

#include "error.h"
#include "http_util.h"

static const char *const day_short[7] = {"Mon", "Tue", "Wed", "Thu",
                                         "Fri", "Sat", "Sun"};
static const char *const day_long[7] = {"Monday",   "Tuesday", "Wednesday",
                                        "Thursday", "Friday",  "Saturday",
                                        "Sunday"};
static const char *const months[12] = {"Jan", "Feb", "Mar", "Apr",
                                       "May", "Jun", "Jul", "Aug",
                                       "Sep", "Oct", "Nov", "Dec"};

typedef struct {
  const char *s;
  size_t len;
  size_t pos;
  size_t base; /* offset of s in the caller's input, for error positions */
  dn_error *err;
} cursor;

typedef struct {
  int64_t year;
  int month; /* 1-12 */
  int day;
  int hour, minute, second;
} civil;

/* Days since 1970-01-01 of a proleptic Gregorian date (month 1-12). */
static int64_t days_from_civil(int64_t y, int m, int d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  *d = (int)(doy - (153 * mp + 2) / 5 + 1);
  *m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = yoe + era * 400 + (*m <= 2);
}

static int is_leap(int64_t y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m) {
  static const int n[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : n[m - 1];
}

static int fail(cursor *c, const char *what) {
  return dn__error_set(c->err, DN_EHEADER, c->base + c->pos,
                       "invalid HTTP-date: %s", what);
}

static int expect(cursor *c, const char *lit, const char *what) {
  size_t n = strlen(lit);
  if (c->len - c->pos < n || memcmp(c->s + c->pos, lit, n) != 0)
    return fail(c, what);
  c->pos += n;
  return 0;
}

/* Reads exactly `n` digits. */
static int digits(cursor *c, int n, int64_t *out, const char *what) {
  int64_t v = 0;
  for (int i = 0; i < n; i++) {
    if (c->pos >= c->len || c->s[c->pos] < '0' || c->s[c->pos] > '9')
      return fail(c, what);
    v = v * 10 + (c->s[c->pos++] - '0');
  }
  *out = v;
  return 0;
}

/* Matches one of `names` at the cursor; returns its index or -1. */
static int match_name(cursor *c, const char *const *names, int count) {
  for (int i = 0; i < count; i++) {
    size_t n = strlen(names[i]);
    if (c->len - c->pos >= n && memcmp(c->s + c->pos, names[i], n) == 0) {
      c->pos += n;
      return i;
    }
  }
  return -1;
}

static int month(cursor *c, civil *t) {
  int m = match_name(c, months, 12);
  if (m < 0)
    return fail(c, "bad month name");
  t->month = m + 1;
  return 0;
}

/* time-of-day = hour ":" minute ":" second ; 00:00:00 - 23:59:60 */
static int time_of_day(cursor *c, civil *t) {
  int64_t h = 0, m = 0, s = 0;
  int rc = digits(c, 2, &h, "bad hour");
  if (!rc)
    rc = expect(c, ":", "expected ':'");
  if (!rc)
    rc = digits(c, 2, &m, "bad minute");
  if (!rc)
    rc = expect(c, ":", "expected ':'");
  if (!rc)
    rc = digits(c, 2, &s, "bad second");
  if (rc)
    return rc;
  if (h > 23 || m > 59 || s > 60) {
    c->pos -= 8;
    return fail(c, "time of day out of range");
  }
  t->hour = (int)h;
  t->minute = (int)m;
  t->second = (int)s;
  return 0;
}

/* The two formats that write "day-name, day sep month sep year time GMT":
 *   IMF-fixdate  = day-name "," SP date1 SP time-of-day SP GMT
 *   date1        = day SP month SP year        ; e.g., 02 Jun 1982
 *   rfc850-date  = day-name-l "," SP date2 SP time-of-day SP GMT
 *   date2        = day "-" month "-" 2DIGIT    ; e.g., 02-Jun-82
 * sep is " " or "-", year_digits 4 or 2. */
static int parse_comma_date(cursor *c, civil *t, const char *sep,
                            int year_digits) {
  int64_t day = 0;
  const char *sep_error = sep[0] == ' ' ? "expected SP" : "expected '-'";
  int rc = expect(c, ", ", "expected ', ' after the day name");
  if (!rc)
    rc = digits(c, 2, &day, "bad day");
  if (!rc)
    rc = expect(c, sep, sep_error);
  if (!rc)
    rc = month(c, t);
  if (!rc)
    rc = expect(c, sep, sep_error);
  if (!rc)
    rc = digits(c, year_digits, &t->year, "bad year");
  if (!rc)
    rc = expect(c, " ", "expected SP");
  if (!rc)
    rc = time_of_day(c, t);
  if (!rc)
    rc = expect(c, " GMT", "expected ' GMT'");
  t->day = (int)day;
  return rc;
}

static int parse_imf(cursor *c, civil *t) {
  return parse_comma_date(c, t, " ", 4);
}

static int parse_rfc850(cursor *c, civil *t) {
  return parse_comma_date(c, t, "-", 2);
}

/* asctime-date = day-name SP date3 SP time-of-day SP year
 * date3 = month SP ( 2DIGIT / ( SP DIGIT ) )  ; e.g., Jun  2 */
static int parse_asctime(cursor *c, civil *t) {
  int64_t day = 0;
  int rc = expect(c, " ", "expected SP");
  if (!rc)
    rc = month(c, t);
  if (!rc)
    rc = expect(c, " ", "expected SP");
  if (!rc && c->pos < c->len && c->s[c->pos] == ' ') {
    c->pos++;
    rc = digits(c, 1, &day, "bad day");
  } else if (!rc) {
    rc = digits(c, 2, &day, "bad day");
  }
  if (!rc)
    rc = expect(c, " ", "expected SP");
  if (!rc)
    rc = time_of_day(c, t);
  if (!rc)
    rc = expect(c, " ", "expected SP");
  if (!rc)
    rc = digits(c, 4, &t->year, "bad year");
  t->day = rc ? 0 : (int)day;
  return rc;
}

/* RFC 9110 §5.6.7: a two-digit year more than 50 years in the future is
 * the most recent past year with the same last two digits. We take the
 * year with those digits in the window (now - 50, now + 50]. */
static int64_t expand_year(int64_t yy, int64_t now) {
  int64_t cy;
  int m, d;
  if (now == DN_HTTP_UNSET)
    now = 0;
  civil_from_days(now / 86400 - (now % 86400 < 0), &cy, &m, &d);
  int64_t y = cy - ((cy % 100) + 100) % 100 + yy;
  if (y > cy + 50)
    y -= 100;
  else if (y + 100 <= cy + 50)
    y += 100;
  return y;
}

/* Parses any of the three formats; *rfc850 says whether the year has two
 * digits. */
static int parse_any(cursor *c, civil *t, int *rfc850) {
  *rfc850 = match_name(c, day_long, 7) >= 0;
  if (*rfc850)
    return parse_rfc850(c, t);
  if (match_name(c, day_short, 7) < 0)
    return fail(c, "bad day name");
  if (c->pos < c->len && c->s[c->pos] == ',')
    return parse_imf(c, t);
  return parse_asctime(c, t);
}

int dn_http_date_parse(const char *s, size_t len, int64_t now, int64_t *out,
                       dn_error *err) {
  const char *in = s ? s : "";
  dn_slice v = dn__http_trim(in, s ? len : 0);
  cursor c = {v.ptr, v.len, 0, (size_t)(v.ptr - in), err};
  civil t = {0, 0, 0, 0, 0, 0};
  int rfc850;
  int rc = parse_any(&c, &t, &rfc850);
  if (rc)
    return rc;
  if (c.pos != c.len)
    return fail(&c, "unexpected text after the date");
  if (rfc850)
    t.year = expand_year(t.year, now);
  if (t.day < 1 || t.day > days_in_month(t.year, t.month)) {
    c.pos = 0;
    return fail(&c, "day out of range for the month");
  }
  *out = days_from_civil(t.year, t.month, t.day) * 86400 + t.hour * 3600 +
         t.minute * 60 + t.second;
  return 0;
}

static void put2(char *p, int v) {
  p[0] = (char)('0' + v / 10);
  p[1] = (char)('0' + v % 10);
}

int dn_http_date_format(int64_t t, char out[DN_HTTP_DATE_LEN + 1]) {
  /* Years 0-9999 lie between these two instants. */
  if (t < -62167219200LL || t > 253402300799LL)
    return DN_ERANGE;
  int64_t days = t / 86400, secs = t % 86400;
  if (secs < 0) {
    secs += 86400;
    days--;
  }
  int64_t y;
  int m, d;
  civil_from_days(days, &y, &m, &d);
  /* 1970-01-01 was a Thursday (index 3 from Monday). */
  int wd = (int)(((days % 7) + 7 + 3) % 7);
  memcpy(out, day_short[wd], 3);
  memcpy(out + 3, ", ", 2);
  put2(out + 5, d);
  out[7] = ' ';
  memcpy(out + 8, months[m - 1], 3);
  out[11] = ' ';
  put2(out + 12, (int)(y / 100));
  put2(out + 14, (int)(y % 100));
  out[16] = ' ';
  put2(out + 17, (int)(secs / 3600));
  out[19] = ':';
  put2(out + 20, (int)(secs / 60 % 60));
  out[22] = ':';
  put2(out + 23, (int)(secs % 60));
  memcpy(out + 25, " GMT", 5); /* with the NUL */
  return 0;
}
