/* main.c - a program outside the donut tree: normalises a URI, renders a
 * page through the engine, and prints both. */
#include <stdio.h>
#include <string.h>

#include <donut.h>

static int hello(dn_render *r, void *ud) {
  (void)ud;
  return dn_render_write_str(r, "hello");
}

int main(void) {
  char *norm = NULL;
  if (dn_uri_normalize("APP://Self/x?b=1&a=2", 20, &norm, NULL, NULL) != 0)
    return 1;
  dn_engine *e;
  dn_rep *rep;
  if (dn_engine_new(NULL, &e) ||
      dn_engine_register(e, "app://self/x", NULL, hello, NULL) ||
      dn_engine_get(e, norm, strlen(norm), NULL, 0, &rep, NULL, NULL))
    return 1;
  printf("%s %.*s %s\n", norm, (int)dn_rep_body(rep).len, dn_rep_body(rep).ptr,
         dn_version());
  dn_rep_unref(rep);
  dn_engine_free(e);
  dn_free(norm);
  return 0;
}
