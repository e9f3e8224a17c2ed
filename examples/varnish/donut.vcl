# donut.vcl - Varnish in front of donut, purged by tag through xkey.
#
# donut sends every cacheable page with an `xkey` header listing its
# closure tags (DONUT_CDN=varnish) and a long s-maxage; the xkey vmod from
# varnish-modules indexes cached objects by those keys. When a tag is
# invalidated, donut's Varnish purger sends
#     PURGE / HTTP/1.1
#     xkey: weather dk0-1f3a dk1-0c2 ...          (hard purge)
#     xkey-softpurge: weather dk0-1f3a ...        (soft purge, DONUT_PURGE_SOFT=1)
# to every server in DONUT_PURGE_URLS, and this VCL drops (or marks stale)
# every object carrying one of the keys. See docs/cdn-purge.md.
#
# Run it:  varnishd -F -a 127.0.0.1:6081 -f donut.vcl -n /tmp/varnish \
#                   -s malloc,64m
# and point DONUT_PURGE_URLS at http://127.0.0.1:6081/.
vcl 4.1;

import xkey;

# Where donut serves (donut serve --cdn varnish).
backend default {
    .host = "127.0.0.1";
    .port = "8080";
}

# Who may purge: the machines that run donut.
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
        } else if (req.http.xkey) {
            set req.http.n-gone = xkey.purge(req.http.xkey);
        } else {
            return (synth(400, "xkey or xkey-softpurge field required"));
        }
        return (synth(200, "Invalidated " + req.http.n-gone + " objects"));
    }
}

sub vcl_deliver {
    # Tell clients (and the tests) whether the page came from the cache.
    if (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
    # The keys are for Varnish only.
    unset resp.http.xkey;
}
