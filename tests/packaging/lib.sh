# shellcheck shell=bash disable=SC2034,SC2154
# (root, here and the helpers are for the sourcing test, which sets test_name.)
# Shared by the packaging tests (addon.sh, packages.sh, rsyslog.sh, syslog-ng.sh): a private NGINX
# prefix on loopback in front of three upstream situations, started and always
# stopped, the record checks (records.py), and the steps both syslog receiver recipes
# share. Sourced; the caller sets test_name.

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)

log() { printf '[%s] %s\n' "$test_name" "$*" >&2; }
fail() {
    printf '[%s] FAIL: %s\n' "$test_name" "$*" >&2
    exit 1
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

need_root() {
    [ "$(id -u)" = 0 ] || fail "needs root (NGINX workers run as www-data; packages are installed)"
}

# apt and dpkg wait for a lock another apt holds (other jobs may install packages).
apt_get() {
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -y -qq "$@" </dev/null
}

# new_prefix: a fresh directory for the config, logs and temp files (kept when a test
# fails, removed by the test when it passes) and three loopback ports.
new_prefix() {
    prefix=$(mktemp -d "/tmp/gatelog-$test_name.XXXXXX")
    chmod 755 "$prefix"
    mkdir -p "$prefix"/{conf,logs,run,tmp}
    port_front=$(free_port)
    port_backend=$(free_port)
    # Bound and closed at once: nothing listens there, so connect() is refused (111).
    port_dead=$(free_port)
}

# write_conf MAIN_LINES HTTP_LINES: nginx.conf with a front server (the three
# situations) and a backend server answering 200 or 502.
#   /refused      proxy_pass to the dead port                  -> 502, ECONNREFUSED, connect
#   /retry        upstream {dead, backend}, gatelog_recovered  -> 200 after a failed try
#   /upstream502  the backend itself answers 502               -> 502, origin "upstream"
#   /bothdead     upstream {dead, missing unix socket}         -> 502 after 111, then ENOENT
write_conf() {
    local main=$1 http=$2
    cat >"$prefix/conf/nginx.conf" <<EOF
$main
user www-data;
worker_processes 1;
master_process on;
daemon off;
pid $prefix/run/nginx.pid;
error_log $prefix/logs/error.log info;

events {
    worker_connections 64;
}

http {
    access_log $prefix/logs/access.log;
    client_body_temp_path $prefix/tmp/client_body;
    proxy_temp_path $prefix/tmp/proxy;
    fastcgi_temp_path $prefix/tmp/fastcgi;
    uwsgi_temp_path $prefix/tmp/uwsgi;
    scgi_temp_path $prefix/tmp/scgi;
    default_type text/plain;

$http

    upstream retry {
        server 127.0.0.1:$port_dead;
        server 127.0.0.1:$port_backend;
    }

    upstream bothdead {
        server 127.0.0.1:$port_dead;
        server unix:$prefix/run/missing.sock;
    }

    server {
        listen 127.0.0.1:$port_backend;
        location / { return 200 "backend ok\n"; }
        location /bad { return 502; }
    }

    server {
        listen 127.0.0.1:$port_front;
        server_name packaging.gatelog;
        location /refused { proxy_pass http://127.0.0.1:$port_dead; }
        location /retry { proxy_pass http://retry; gatelog_recovered on; }
        location /upstream502 { proxy_pass http://127.0.0.1:$port_backend/bad; }
        location /bothdead { proxy_pass http://bothdead; }
    }
}
EOF
}

# nginx_t: `nginx -t` on the prefix's config, output kept in $prefix/nginx-t.out.
# NGINX's prefix (-p) is $nginx_prefix when set, else the test's directory.
nginx_t() {
    /usr/sbin/nginx -p "${nginx_prefix:-$prefix/}" -c "$prefix/conf/nginx.conf" -t >"$prefix/nginx-t.out" 2>&1
}

start_nginx() {
    # Its own process group (master and workers), so that stop_nginx can end exactly
    # these processes by their group id.
    setsid /usr/sbin/nginx -p "${nginx_prefix:-$prefix/}" -c "$prefix/conf/nginx.conf" >"$prefix/logs/stderr.log" 2>&1 &
    nginx_pid=$!
    for _ in $(seq 1 100); do
        if curl -s -o /dev/null "http://127.0.0.1:$port_front/"; then
            return 0
        fi
        kill -0 "$nginx_pid" 2>/dev/null || fail "nginx exited at start: $(cat "$prefix/logs/stderr.log" "$prefix/logs/error.log" 2>/dev/null | tail -n 5)"
        sleep 0.05
    done
    fail "nginx did not answer on 127.0.0.1:$port_front within 5 s"
}

# stop_nginx: graceful stop (QUIT), then KILL of the group after 10 s.
stop_nginx() {
    [ -n "${nginx_pid:-}" ] || return 0
    kill -QUIT "$nginx_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
        kill -0 "$nginx_pid" 2>/dev/null || break
        sleep 0.1
    done
    # Whatever is left of the group (a stuck master, orphaned workers).
    kill -KILL -- "-$nginx_pid" 2>/dev/null || true
    wait "$nginx_pid" 2>/dev/null || true
    nginx_pid=
}

# get PATH: prints the HTTP status of a request to the front server.
get() {
    curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port_front$1"
}

# expect_status PATH STATUS
expect_status() {
    local got
    got=$(get "$1")
    [ "$got" = "$2" ] || fail "GET $1 answered $got, expected $2"
}

# check_record FILE URI [path=value...]: the one record for URI in FILE has these
# values (records.py waits for it and cross-checks the error log).
check_record() {
    local file=$1 uri=$2
    shift 2
    python3 "$here/records.py" "$file" "$uri" "$prefix/logs/error.log" "$@" \
        || fail "record check failed for $uri in $file"
}

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

# ensure_tools PKG...: installs the missing ones with apt, remembering in added_tools
# exactly what apt adds, so that purge_added_tools leaves the machine as it was.
added_tools=()
ensure_tools() {
    local want=() p
    for p in "$@"; do installed "$p" || want+=("$p"); done
    [ ${#want[@]} -gt 0 ] || return 0
    local new
    new=$(apt-get install -s --no-install-recommends "${want[@]}" </dev/null | sed -n 's/^Inst \([^ ]*\) .*/\1/p')
    log "installing test tools: ${want[*]} (apt adds: ${new//$'\n'/ })"
    # shellcheck disable=SC2206
    added_tools+=($new)
    apt_get install --no-install-recommends "${want[@]}" >/dev/null
}

# purge_added_tools: unless GATELOG_TEST_KEEP_TOOLS=1.
purge_added_tools() {
    if [ ${#added_tools[@]} -gt 0 ] && [ -z "${GATELOG_TEST_KEEP_TOOLS:-}" ]; then
        # Only when apt would take away nothing else (something installed meanwhile
        # may have come to depend on them).
        local extra
        extra=$(apt-get -s purge "${added_tools[@]}" </dev/null 2>/dev/null |
            sed -n 's/^Purg \([^ ]*\) .*/\1/p' | grep -vxF -f <(printf '%s\n' "${added_tools[@]}") || true)
        if [ -n "$extra" ]; then
            log "not purging ${added_tools[*]}: apt would also remove ${extra//$'\n'/ }"
        else
            log "purging what the test installed: ${added_tools[*]}"
            apt_get purge "${added_tools[@]}" >/dev/null 2>&1 || true
        fi
        added_tools=()
    fi
}

# --- docs/pipelines.md's syslog receivers (rsyslog.sh, syslog-ng.sh) -------------------
# Both tests take a receiver's documented config and the documented NGINX line, make
# the port and the directory private, start the receiver on its own, send the same
# four requests through the module's `gatelog syslog:` target (and a file target for
# comparison), and require the receiver's file to equal the module's byte for byte.

# subst FILE FROM TO: replace, and fail when FROM is not there (the doc changed).
subst() {
    grep -qF -- "$2" "$1" || fail "docs/pipelines.md's block no longer contains [$2]; update this test"
    python3 -c 'import sys; p,a,b=sys.argv[1:]; t=open(p).read(); open(p,"w").write(t.replace(a,b))' "$1" "$2" "$3"
}

# recipe_prepare PACKAGE HEADING: builds the module the way NGINX builds any add-on
# ($so), makes the prefix with $prefix/$test_name for the receiver's files, installs
# PACKAGE when missing, picks a UDP port ($port_syslog) and extracts the receiver's
# block (the one under HEADING) into $prefix/doc-$test_name.conf and the NGINX block,
# its port made private, into $prefix/gatelog-syslog.conf. On exit NGINX and the
# receiver are stopped, the tools purged, and the prefix removed unless the test failed.
recipe_prepare() {
    local package=$1 heading=$2
    "$root/nginx-build/build.sh" addon
    so=$root/nginx-build/out/addon-deb-1.22/ngx_http_gatelog_module.so
    receiver_pid=
    new_prefix
    trap recipe_cleanup EXIT
    ensure_tools "$package"
    local doc=$root/docs/pipelines.md
    port_syslog=$(free_port)
    mkdir -p "$prefix/$test_name"
    python3 "$here/docblock.py" "$doc" "$heading" >"$prefix/doc-$test_name.conf"
    python3 "$here/docblock.py" "$doc" '# /etc/nginx/conf.d/gatelog.conf' >"$prefix/gatelog-syslog.conf"
    subst "$prefix/gatelog-syslog.conf" 'server=127.0.0.1:514,' "server=127.0.0.1:$port_syslog,"
}

recipe_cleanup() {
    local rc=$?
    stop_nginx
    if [ -n "${receiver_pid:-}" ]; then
        kill -TERM -- "-$receiver_pid" 2>/dev/null || true
        wait "$receiver_pid" 2>/dev/null || true
        receiver_pid=
    fi
    purge_added_tools
    if [ $rc -eq 0 ]; then rm -rf "$prefix"; else log "kept $prefix for inspection"; fi
    exit $rc
}

# start_receiver COMMAND...: the receiver in its own process group (its output in
# $prefix/logs/$test_name.out); fails when it is gone half a second later.
start_receiver() {
    setsid "$@" >"$prefix/logs/$test_name.out" 2>&1 &
    receiver_pid=$!
    sleep 0.5
    kill -0 "$receiver_pid" 2>/dev/null || fail "$1 exited: $(cat "$prefix/logs/$test_name.out")"
}

# recipe_requests: NGINX with the module, the recipe's syslog target and the file
# target $prefix/logs/gatelog.json; the four situations of write_conf, one request each
# (four records).
recipe_requests() {
    write_conf "load_module $so;" "    include $prefix/gatelog-syslog.conf;
    gatelog $prefix/logs/gatelog.json;"
    nginx_t || fail "nginx -t: $(cat "$prefix/nginx-t.out")"
    start_nginx
    expect_status /refused 502
    expect_status /retry 200
    expect_status /upstream502 502
    expect_status /bothdead 502
}
