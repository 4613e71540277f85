/*
 * TLS origination towards https:// upstreams (OpenSSL): certificate chain
 * verification against the system store or a configured CA file, hostname
 * (or IP) verification, SNI.
 */
#ifndef BG_TLS_H
#define BG_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

/* Client context; VERIFY=0 disables peer verification (tests only, logged
 * loudly). NULL with ERR filled on failure. */
SSL_CTX *bg_tls_client_ctx_new(const char *ca_file, int verify, char *err, size_t errcap);

/* A new SSL for one connection to HOST: SNI for DNS names, and the name or
 * IP the peer certificate must match. NULL on failure (error queue logged). */
SSL *bg_tls_client_ssl_new(SSL_CTX *ctx, const char *host);

#endif
