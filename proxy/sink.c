#include "proxy/sink.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <jansson.h>
#include <openssl/ssl.h>

#include "common/log.h"
#include "common/util.h"
#include "proxy/serve.h"
#include "common/hex.h"

typedef struct {
    const char *name;
    FILE *record;
    unsigned long long count;
} sink_t;

static void sink_usage(FILE *fp)
{
    fprintf(fp, "usage: bordergate sink [--listen ADDR] [--name NAME] [--record FILE]\n"
                "                       [--tls-cert PEM --tls-key PEM] [--port-file FILE]\n"
                "\n"
                "A demo upstream: answers 200 with a small JSON body and, with --record,\n"
                "appends one JSON line per request it received (method, target, headers,\n"
                "body) to FILE. Special paths:\n"
                "  /__sink/status/NNN   answer with status NNN\n"
                "  /__sink/bytes/N      answer with N bytes (add ?chunked=1 for chunked)\n"
                "  /__sink/delay/MS     answer after MS milliseconds\n"
                "  /__sink/close        close the connection without answering\n"
                "ADDR defaults to 127.0.0.1:0 (a free port, printed on stdout).\n");
}

static unsigned long long path_number(const char *target, size_t len, const char *prefix)
{
    size_t pl = strlen(prefix);
    if (len <= pl || memcmp(target, prefix, pl) != 0)
        return (unsigned long long)-1;
    unsigned long long v = 0;
    size_t i = pl;
    if (i >= len || target[i] < '0' || target[i] > '9')
        return (unsigned long long)-1;
    for (; i < len && target[i] >= '0' && target[i] <= '9'; i++)
        v = v * 10 + (unsigned long long)(target[i] - '0');
    return v;
}

static void record_request(sink_t *sink, const bg_serve_req_t *req)
{
    json_t *o = json_object();
    json_t *hdrs = json_array();
    char ts[40];
    bg_util_format_time(bg_util_wall_ms(), ts, sizeof ts);
    json_object_set_new(o, "ts", json_string(ts));
    json_object_set_new(o, "sink", json_string(sink->name));
    json_object_set_new(o, "seq", json_integer((json_int_t)sink->count));
    json_object_set_new(o, "method", json_stringn(req->head->method, req->head->method_len));
    json_object_set_new(o, "target", json_stringn(req->head->target, req->head->target_len));
    for (size_t i = 0; i < req->head->nheaders; i++) {
        const bg_http_header_t *h = &req->head->headers[i];
        json_t *pair = json_array();
        json_array_append_new(pair, json_stringn(h->name, h->name_len));
        json_t *v = json_stringn(h->value, h->value_len);
        json_array_append_new(pair, v != NULL ? v : json_string("<non-utf8>"));
        json_array_append_new(hdrs, pair);
    }
    json_object_set_new(o, "headers", hdrs);
    size_t blen = evbuffer_get_length(req->body);
    const char *b = blen > 0 ? (const char *)evbuffer_pullup(req->body, -1) : "";
    json_object_set_new(o, "body_bytes", json_integer((json_int_t)blen));
    json_t *bs = json_stringn(b, blen);
    if (bs != NULL && memchr(b, '\0', blen) == NULL) {
        json_object_set_new(o, "body", bs);
    } else {
        if (bs != NULL)
            json_decref(bs);
        /* Not text: hex keeps the record exact without another dependency. */
        char *hex = malloc(blen * 2 + 1);
        if (hex != NULL) {
            bg_hex_encode((const unsigned char *)b, blen, hex);
            json_object_set_new(o, "body_hex", json_string(hex));
            free(hex);
        }
    }
    char *line = json_dumps(o, JSON_COMPACT);
    if (line != NULL) {
        fprintf(sink->record, "%s\n", line);
        fflush(sink->record);
        free(line);
    }
    json_decref(o);
}

static void sink_handle(void *arg, const bg_serve_req_t *req, bg_serve_reply_t *reply)
{
    sink_t *sink = arg;
    const char *t = req->head->target;
    size_t tl = req->head->target_len;
    unsigned long long v;

    if (sink->record != NULL)
        record_request(sink, req);
    sink->count++;

    if ((v = path_number(t, tl, "/__sink/status/")) != (unsigned long long)-1 && v >= 200 &&
        v <= 599) {
        reply->status = (int)v;
    } else if ((v = path_number(t, tl, "/__sink/bytes/")) != (unsigned long long)-1) {
        reply->content_type = "application/octet-stream";
        reply->stream_len = v;
        reply->chunked = memmem(t, tl, "chunked=1", 9) != NULL;
        if (v == 0)
            evbuffer_add(reply->body, "", 0);
        return;
    } else if ((v = path_number(t, tl, "/__sink/delay/")) != (unsigned long long)-1) {
        reply->delay_ms = v > 600000 ? 600000 : (int)v;
    } else if (tl == 13 && memcmp(t, "/__sink/close", 13) == 0) {
        reply->drop = 1;
        return;
    }
    evbuffer_add_printf(reply->body,
                        "{\"ok\":true,\"sink\":\"%s\",\"seq\":%llu,\"received_bytes\":%zu}\n",
                        sink->name, sink->count - 1, evbuffer_get_length(req->body));
}

static void on_stop(evutil_socket_t sig, short what, void *arg)
{
    event_base_loopexit(arg, NULL);
}

int bg_sink_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},  {"name", required_argument, NULL, 'n'},
        {"record", required_argument, NULL, 'r'},  {"tls-cert", required_argument, NULL, 'c'},
        {"tls-key", required_argument, NULL, 'k'}, {"port-file", required_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    const char *listen = "127.0.0.1:0", *cert = NULL, *key = NULL, *port_file = NULL;
    const char *record = NULL;
    sink_t sink = {.name = "sink"};
    int c, rc = 1;
    SSL_CTX *ctx = NULL;
    struct event_base *base = NULL;
    bg_serve_t *srv = NULL;
    struct event *sigint = NULL, *sigterm = NULL;

    bg_log_set_component("sink");
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'l': listen = optarg; break;
        case 'n': sink.name = optarg != NULL ? optarg : "sink"; break;
        case 'r': record = optarg; break;
        case 'c': cert = optarg; break;
        case 'k': key = optarg; break;
        case 'p': port_file = optarg; break;
        case 'h': sink_usage(stdout); return 0;
        default: sink_usage(stderr); return 2;
        }
    }
    if (optind != argc || (cert == NULL) != (key == NULL)) {
        sink_usage(stderr);
        return 2;
    }
    for (const char *p = sink.name; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20) {
            fprintf(stderr,
                    "bordergate sink: --name must not contain quotes or control characters\n");
            return 2;
        }
    }

    struct sockaddr_storage ss;
    socklen_t sl;
    char err[256];
    if (bg_util_parse_sockaddr(listen, &ss, &sl, err, sizeof err) != 0) {
        fprintf(stderr, "bordergate sink: --listen: %s\n", err);
        return 2;
    }
    if (record != NULL) {
        sink.record = fopen(record, "a");
        if (sink.record == NULL) {
            fprintf(stderr, "bordergate sink: %s: cannot open for append: %s\n", record,
                    strerror(errno));
            return 1;
        }
    }
    if (cert != NULL) {
        ctx = SSL_CTX_new(TLS_server_method());
        if (ctx == NULL || SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
            bg_log_openssl(BG_LOG_ERROR, "sink: loading --tls-cert");
            fprintf(stderr, "bordergate sink: %s: not a usable PEM certificate chain\n", cert);
            goto done;
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(ctx) != 1) {
            bg_log_openssl(BG_LOG_ERROR, "sink: loading --tls-key");
            fprintf(stderr, "bordergate sink: %s: not the private key of %s\n", key, cert);
            goto done;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    base = event_base_new();
    if (base == NULL)
        goto done;
    srv = bg_serve_new(base, (struct sockaddr *)&ss, sl, ctx, 64u << 20, sink_handle, &sink, err,
                       sizeof err);
    if (srv == NULL) {
        fprintf(stderr, "bordergate sink: %s\n", err);
        goto done;
    }
    int port = bg_serve_port(srv);
    printf("bordergate sink '%s' listening on port %d%s\n", sink.name, port, ctx ? " (TLS)" : "");
    fflush(stdout);
    if (port_file != NULL) {
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.tmp", port_file);
        FILE *fp = fopen(tmp, "w");
        if (fp == NULL || fprintf(fp, "%d\n", port) < 0 || fclose(fp) != 0 ||
            rename(tmp, port_file) != 0) {
            fprintf(stderr, "bordergate sink: %s: cannot write port file\n", port_file);
            goto done;
        }
    }
    sigint = evsignal_new(base, SIGINT, on_stop, base);
    sigterm = evsignal_new(base, SIGTERM, on_stop, base);
    evsignal_add(sigint, NULL);
    evsignal_add(sigterm, NULL);
    event_base_dispatch(base);
    rc = 0;
done:
    if (sigint != NULL)
        event_free(sigint);
    if (sigterm != NULL)
        event_free(sigterm);
    bg_serve_free(srv);
    if (base != NULL)
        event_base_free(base);
    if (ctx != NULL)
        SSL_CTX_free(ctx);
    if (sink.record != NULL)
        fclose(sink.record);
    return rc;
}
