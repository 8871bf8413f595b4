#!/usr/bin/env bash
# The module built the way NGINX builds third-party modules: a copy of Debian's NGINX
# source (nginx-dev) configured with Debian's flags and
# --add-dynamic-module=ngx-module, then `make modules` (nginx-build/build.sh addon).
# The .so must load into Debian's /usr/sbin/nginx (`nginx -t`) and write a record
# for a real 502 (connection refused on loopback) that matches NGINX's error log.
set -euo pipefail
test_name=addon
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
need_root

log "building through ./configure --add-dynamic-module + make modules (first run: minutes)"
"$root/nginx-build/build.sh" addon
tree="$root/nginx-build/work/addon-deb-1.22"
so="$tree/objs/ngx_http_gatelog_module.so"
[ -f "$so" ] || fail "make modules did not produce $so"
grep -q -- "--add-dynamic-module=$root/ngx-module" "$tree/objs/ngx_auto_config.h" \
    || fail "$tree was not configured with --add-dynamic-module=$root/ngx-module"

# NGINX's build generated the module table in C (objs/..._modules.c) and linked the
# crate's static library: the .so exports exactly that table, nothing of Rust's.
exports=$(nm -D --defined-only "$so" | awk '{print $3}' | sort | tr '\n' ' ')
[ "$exports" = "ngx_module_names ngx_module_order ngx_modules " ] \
    || fail "$so exports [$exports], expected the three module-table symbols"

new_prefix
trap 'stop_nginx' EXIT
write_conf "load_module $so;" "    gatelog $prefix/logs/gatelog.json;"
nginx_t || fail "nginx -t rejected the module: $(cat "$prefix/nginx-t.out")"
grep -q 'test is successful' "$prefix/nginx-t.out" || fail "nginx -t: $(cat "$prefix/nginx-t.out")"
log "nginx -t: $(tail -n 1 "$prefix/nginx-t.out")"

start_nginx
expect_status /refused 502
check_record "$prefix/logs/gatelog.json" /refused \
    status=502 origin=nginx recovered=false method=GET \
    attempts.0.peer="127.0.0.1:$port_dead" attempts.0.phase=connect attempts.0.errno=111 \
    attempts.0.errno_name=ECONNREFUSED attempts.0.event=connect_failed attempts.0.level=error \
    >"$prefix/record.json"
log "record: $(cut -c1-160 "$prefix/record.json")..."
stop_nginx
trap - EXIT
rm -rf "$prefix"
log "PASS: built with --add-dynamic-module, loaded into /usr/sbin/nginx, 502 -> record"
