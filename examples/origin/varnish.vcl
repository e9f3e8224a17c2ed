# varnish.vcl - Varnish 7.1 with ESI and the xkey vmod in front of the
# origin-mode example app (examples/origin/app.py), to compare with
# `donut serve --upstream http://127.0.0.1:5000`.
#
# It reads the same header fields donut reads:
#   Surrogate-Control: max-age=N, content="ESI/1.0"
#       content="ESI/1.0" turns ESI processing on (beresp.do_esi) and
#       max-age=N is the TTL; without it Varnish's own Cache-Control rules
#       apply (s-maxage, then max-age).
#   Surrogate-Key: tag1 tag2
#       copied into the xkey field, which the xkey vmod indexes, together
#       with one key per URL ("url:/frag/weather") for URI purges.
#   Cache-Control: stale-if-error=N
#       becomes the grace: after the TTL Varnish serves the stale object
#       while it fetches again, and keeps it when that fetch fails (5xx or
#       no connection). (Varnish has no separate stale-if-error; grace
#       also means stale-while-revalidate.)
#   Set-Cookie, Cache-Control: private / no-store
#       uncacheable, by the built-in VCL that runs after this one.
#
# After a successful POST, PUT, PATCH or DELETE it purges, like donut, the
# target URI, a same-origin Location and Content-Location, and every tag in
# Donut-Invalidate.
#
# Purging by hand (from localhost only):
#   curl -X PURGE -H 'xkey: weather author-3' http://127.0.0.1:6081/
#   curl -X PURGE -H 'xkey-softpurge: comments-7' http://127.0.0.1:6081/
#   curl -X PURGE http://127.0.0.1:6081/frag/weather      (one URL)
#
# Run it (the app on port 5000):
#   varnishd -F -a 127.0.0.1:6081 -f $PWD/examples/origin/varnish.vcl \
#            -n /tmp/varnish-origin -s malloc,256m
# Check that it compiles:  varnishd -C -f $PWD/examples/origin/varnish.vcl
vcl 4.1;

import std;
import xkey;

backend origin {
    .host = "127.0.0.1";
    .port = "5000";
    .connect_timeout = 2s;
    .first_byte_timeout = 30s;
}

acl purgers {
    "127.0.0.1";
    "::1";
}

sub vcl_recv {
    if (req.method == "PURGE") {
        if (client.ip !~ purgers) {
            return (synth(403, "Forbidden"));
        }
        if (req.http.xkey-softpurge) {
            set req.http.n-gone = xkey.softpurge(req.http.xkey-softpurge);
            return (synth(200, "Invalidated " + req.http.n-gone + " objects"));
        }
        if (req.http.xkey) {
            set req.http.n-gone = xkey.purge(req.http.xkey);
            return (synth(200, "Invalidated " + req.http.n-gone + " objects"));
        }
        # No keys: purge the URL itself.
        return (purge);
    }

    # Writes go to the app; vcl_deliver purges what they changed.
    if (req.method != "GET" && req.method != "HEAD") {
        return (pass);
    }

    # The test switches and the personalised greeting are never cached.
    if (req.url ~ "^/admin/" || req.url ~ "^/frag/greeting([?#]|$)") {
        return (pass);
    }

    # Only the greeting reads a cookie, so the rest of the site is shared by
    # every visitor. An ESI subrequest starts from the headers the client
    # sent, so an included /frag/greeting still sees the Cookie that is
    # removed here from the page's request.
    unset req.http.Cookie;
    # Falls through to the built-in vcl_recv (hash, or pass on Authorization).
}

sub vcl_backend_response {
    # A failed background fetch keeps the stale object (stale-if-error).
    if (bereq.is_bgfetch && beresp.status >= 500) {
        return (abandon);
    }

    if (beresp.http.Surrogate-Control ~ {"(?i)content\s*=\s*"?ESI/1\.0"?"}) {
        set beresp.do_esi = true;
    }

    # TTL from Surrogate-Control max-age (max-age=N or max-age=N+M).
    if (beresp.http.Surrogate-Control ~ "(?i)(^|[ ,;])max-age=[0-9]+") {
        set beresp.ttl = std.duration(
            regsub(beresp.http.Surrogate-Control,
                   "(?i)^(.*[ ,;])?max-age=([0-9]+).*$", "\2") + "s", 0s);
    }

    # Grace from stale-if-error, so a failing app leaves stale pages served.
    if (beresp.http.Cache-Control ~ "(?i)stale-if-error=[0-9]+") {
        set beresp.grace = std.duration(
            regsub(beresp.http.Cache-Control,
                   "(?i)^.*stale-if-error=([0-9]+).*$", "\1") + "s", 0s);
    }

    # xkey keys: the surrogate keys and the URL.
    if (beresp.http.Surrogate-Key) {
        set beresp.http.xkey = beresp.http.Surrogate-Key + " url:" + bereq.url;
    } else {
        set beresp.http.xkey = "url:" + bereq.url;
    }
    # Falls through to the built-in vcl_backend_response, which makes
    # responses with Set-Cookie, Cache-Control private/no-store/no-cache
    # (without Surrogate-Control) or no TTL uncacheable.
}

sub vcl_backend_error {
    # The app is down during a background fetch: keep serving the stale one.
    if (bereq.is_bgfetch) {
        return (abandon);
    }
}

sub vcl_deliver {
    # Invalidation after a successful write, as RFC 9111 §4.4 and donut do.
    if (req.method ~ "^(POST|PUT|PATCH|DELETE)$" &&
        resp.status >= 200 && resp.status < 400) {
        set req.http.x-purge = "url:" + req.url;
        if (resp.http.Location ~ "^/([^/]|$)") {
            set req.http.x-purge = req.http.x-purge + " url:" + resp.http.Location;
        } else if (resp.http.Location ~ "^https?://" &&
                   regsub(resp.http.Location, "^https?://([^/?#]+).*$", "\1") == req.http.host) {
            set req.http.x-purge = req.http.x-purge + " url:" +
                regsub(resp.http.Location, "^https?://[^/?#]+(/.*)?$", "\1");
        }
        if (resp.http.Content-Location ~ "^/([^/]|$)") {
            set req.http.x-purge = req.http.x-purge + " url:" + resp.http.Content-Location;
        } else if (resp.http.Content-Location ~ "^https?://" &&
                   regsub(resp.http.Content-Location, "^https?://([^/?#]+).*$", "\1") == req.http.host) {
            set req.http.x-purge = req.http.x-purge + " url:" +
                regsub(resp.http.Content-Location, "^https?://[^/?#]+(/.*)?$", "\1");
        }
        if (resp.http.Donut-Invalidate) {
            set req.http.x-purge = req.http.x-purge + " " + resp.http.Donut-Invalidate;
        }
        set resp.http.X-Purged = xkey.purge(req.http.x-purge);
        unset req.http.x-purge;
    }

    if (req.esi_level == 0) {
        if (obj.hits > 0) {
            set resp.http.X-Cache = "HIT";
        } else {
            set resp.http.X-Cache = "MISS";
        }
    }
    # Surrogate fields are for surrogates only.
    unset resp.http.xkey;
    unset resp.http.Surrogate-Key;
    unset resp.http.Surrogate-Control;
}

sub vcl_synth {
    # Purge answers in plain text.
    if (req.method == "PURGE") {
        set resp.http.Content-Type = "text/plain; charset=utf-8";
        set resp.body = resp.reason + {"
"};
        return (deliver);
    }
}
