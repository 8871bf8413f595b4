#!/usr/bin/env python3
"""Lists the error-log message templates NGINX can log while it serves a request
through an upstream, from NGINX source trees, for record/tests/templates.rs.

Usage: extract.py VERSION=SRC_DIR [VERSION=SRC_DIR ...] > nginx-templates.tsv
  e.g. extract.py 1.22.1=/tmp/nginx-1.22.1 1.28.3=/tmp/nginx-1.28.3
  (git -C nginx archive release-1.22.1 src | tar -x -C /tmp/nginx-1.22.1)

Output, one template per line, tab-separated: versions (comma-separated), file,
functions (comma-separated), the C format string as written in the source (string
literals joined; `ngx_*_n` names expanded to their Linux text). Configuration-time
messages (logged to cf->log or cycle->log) and the resolver's own DNS messages (logged
to the resolver's log, not a request's) are left out.
"""
import os
import re
import sys

FILES = [
    "src/http/ngx_http_upstream.c",
    "src/http/ngx_http_upstream_round_robin.c",
    "src/http/modules/ngx_http_fastcgi_module.c",
    "src/http/modules/ngx_http_proxy_module.c",
    "src/http/modules/ngx_http_uwsgi_module.c",
    "src/http/modules/ngx_http_scgi_module.c",
    "src/http/modules/ngx_http_grpc_module.c",
    "src/event/ngx_event_connect.c",
    "src/event/ngx_event_pipe.c",
    "src/event/ngx_event_openssl.c",
    "src/os/unix/ngx_recv.c",
    "src/os/unix/ngx_readv_chain.c",
    "src/os/unix/ngx_send.c",
    "src/os/unix/ngx_writev_chain.c",
    "src/os/unix/ngx_linux_sendfile_chain.c",
]
# ngx_event_openssl.c is mostly configuration; these functions run on connections.
SSL_IO = {
    "ngx_ssl_handshake", "ngx_ssl_try_early_data", "ngx_ssl_recv", "ngx_ssl_recv_early",
    "ngx_ssl_handle_recv", "ngx_ssl_write", "ngx_ssl_write_early", "ngx_ssl_sendfile",
    "ngx_ssl_send_chain", "ngx_ssl_shutdown", "ngx_ssl_shutdown_handler",
}
# Linux values of the ngx_*_n macros used in these messages (src/os/unix/*.h).
NAMES = {
    "ngx_socket_n": "socket()",
    "ngx_close_socket_n": "close() socket",
    "ngx_nonblocking_n": "ioctl(FIONBIO)",
    "ngx_blocking_n": "ioctl(!FIONBIO)",
    "ngx_tcp_push_n": "setsockopt(!TCP_CORK)",
    "ngx_tcp_nopush_n": "setsockopt(TCP_CORK)",
    "ngx_socket_nread_n": "ioctl(FIONREAD)",
    "ngx_delete_file_n": "unlink()",
    "ngx_regex_exec_n": "pcre2_match()",
}
CALL = re.compile(r"\b(ngx_log_error|ngx_connection_error|ngx_ssl_error|ngx_ssl_connection_error)\s*\(")
FUNC = re.compile(r"^(\w+)\(", re.M)
SKIP_LOGS = ("cf->log", "cycle->log", "ngx_cycle->log", "&rec->log", "ssl->log")


def args_of(src, start):
    i, depth = start, 1
    while depth and i < len(src):
        c = src[i]
        if c == '"':
            j = i + 1
            while src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            i = j
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        i += 1
    return src[start:i - 1]


def templates(root):
    for f in FILES:
        src = open(os.path.join(root, f), encoding="latin-1").read()
        funcs = [(m.start(), m.group(1)) for m in FUNC.finditer(src)]
        for m in CALL.finditer(src):
            fn = max((p for p in funcs if p[0] < m.start()), default=(0, "?"))[1]
            if fn == m.group(1):
                continue  # the wrapper's own definition
            if f.endswith("ngx_event_openssl.c") and fn not in SSL_IO:
                continue
            args = args_of(src, m.end())
            if any(log in args.split('"')[0] for log in SKIP_LOGS):
                continue
            head = args.split('"')[0]
            lits = re.findall(r'"((?:[^"\\]|\\.)*)"', args)
            name = next((v for k, v in NAMES.items() if re.search(r"\b%s\b" % k, head)), "")
            fmt = name + "".join(lits)
            if not fmt:
                continue  # passes a text through (ngx_connection_error's own call)
            yield f, fn, fmt


def main():
    seen = {}
    for arg in sys.argv[1:]:
        version, root = arg.split("=", 1)
        for f, fn, fmt in templates(root):
            e = seen.setdefault((f, fmt), [set(), set()])
            e[0].add(version)
            e[1].add(fn)
    for (f, fmt), (versions, fns) in sorted(seen.items()):
        print("\t".join([",".join(sorted(versions)), f, ",".join(sorted(fns)), fmt]))


main()
