/*
 * `bordergate sink`: a demo/test upstream that answers and records exactly
 * what reached it (method, target, headers, body) as JSON lines, so a user
 * or a test can see what left through the proxy.
 */
#ifndef BG_SINK_H
#define BG_SINK_H

int bg_sink_main(int argc, char **argv);

#endif
