/* uri_tour.c - a short tour of donut's URI handling: normalisation, URI
 * tags and tags derived from an RFC 6570 template over rows. */
#include <stdio.h>
#include <string.h>

#include <donut.h>

int main(void) {
  const char *uris[] = {"APP://Self/blog/../Item?b=2&a=1",
                        "app://self/Item?a=1&b=2", "page://self/Item?a=1&b=2"};
  for (size_t i = 0; i < sizeof uris / sizeof uris[0]; i++) {
    char *norm = NULL;
    char tag[DN_URI_TAG_MAX + 1];
    dn_error err;
    if (dn_uri_normalize(uris[i], strlen(uris[i]), &norm, NULL, &err) != 0 ||
        dn_uri_tag(uris[i], strlen(uris[i]), tag, NULL, &err) != 0) {
      fprintf(stderr, "%s: %s\n", uris[i], err.text);
      dn_free(norm);
      return 1;
    }
    printf("%-34s -> %-26s tag %s\n", uris[i], norm, tag);
    dn_free(norm);
  }
  const char *rows = "[{\"id\":1,\"name\":\"a\"},{\"id\":2,\"name\":\"b\"}]";
  dn_strings tags = {0};
  dn_error err;
  if (dn_uri_tags_from_rows("app://self/item{?id}", 20, rows, strlen(rows),
                            &tags, &err) != 0) {
    fprintf(stderr, "rows: %s\n", err.text);
    return 1;
  }
  printf("tags of app://self/item{?id} over %s:\n", rows);
  for (size_t i = 0; i < tags.count; i++)
    printf("  %s\n", tags.items[i]);
  dn_strings_free(&tags);
  return 0;
}
