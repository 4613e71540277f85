#include "proxy/tls.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "common/log.h"

SSL_CTX *bg_tls_client_ctx_new(const char *ca_file, int verify, char *err, size_t errcap)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        snprintf(err, errcap, "cannot create TLS context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (ca_file != NULL) {
        if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
            unsigned long e = ERR_get_error();
            char buf[200];
            ERR_error_string_n(e, buf, sizeof buf);
            ERR_clear_error();
            snprintf(err, errcap, "%s: cannot load CA certificates: %s", ca_file, buf);
            SSL_CTX_free(ctx);
            return NULL;
        }
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        ERR_clear_error();
        snprintf(err, errcap, "cannot load the system CA store");
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (verify) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
        bg_warn("upstream TLS certificate verification is DISABLED (upstream_tls.verify=false)");
    }
    return ctx;
}

SSL *bg_tls_client_ssl_new(SSL_CTX *ctx, const char *host)
{
    unsigned char tmp[16];
    SSL *ssl = SSL_new(ctx);
    if (ssl == NULL) {
        bg_log_openssl(BG_LOG_ERROR, "SSL_new");
        return NULL;
    }
    int is_ip = inet_pton(AF_INET, host, tmp) == 1 || inet_pton(AF_INET6, host, tmp) == 1;
    if (is_ip) {
        /* No SNI for literal addresses (RFC 6066 3); match the IP SAN. */
        X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
        if (X509_VERIFY_PARAM_set1_ip_asc(param, host) != 1)
            goto fail;
    } else {
        if (SSL_set_tlsext_host_name(ssl, host) != 1)
            goto fail;
        SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (SSL_set1_host(ssl, host) != 1)
            goto fail;
    }
    return ssl;
fail:
    bg_log_openssl(BG_LOG_ERROR, "setting TLS peer name");
    SSL_free(ssl);
    return NULL;
}
