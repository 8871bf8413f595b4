#!/usr/bin/env bash
# The Debian packages end to end, on this machine (root; slow: builds, installs with
# apt, purges). Opt-in: `scripts/test --packages` or run directly.
#
#  1. scripts/package builds both .debs; `apt-get install ./*.deb` installs them next
#     to Debian's nginx (the module's Depends: nginx-abi-... is satisfied by it).
#  2. The module is enabled the Debian way (modules-enabled/50-mod-http-gatelog.conf),
#     Debian's own configuration passes `nginx -t` with it, and the record file exists
#     with the mode of NGINX's logs.
#  3. Debian's /usr/sbin/nginx, run on a private config that includes the real
#     /etc/nginx/modules-enabled/*.conf and the packaged conf.d example, with NGINX's
#     real prefix (-p /usr/share/nginx/, so `load_module modules/...` resolves as in
#     production), answers real 502s on loopback -> records in /var/log/nginx/gatelog.json
#     that match NGINX's error log; it is stopped again (no system NGINX is started).
#  4. `man gatelog` / `man gatelog-analyze` render; the bash completion completes;
#     lnav (headless) shows the records with the level and the last failed attempt's
#     errno/phase/peer; `logrotate -d` covers the record file.
#  5. Remove: the module is disabled (link parked as .removed), prerm names a file
#     still using gatelog directives, `nginx -t` fails on it and passes without it;
#     reinstall restores the link, an upgrade keeps the module disabled when the
#     administrator removed the link; purge removes links, conffiles and records,
#     and `nginx -t` still passes.
# Packages the test itself installs (logrotate) are purged at the end unless
# GATELOG_TEST_KEEP_TOOLS=1; the machine is left as it was found.
set -euo pipefail
test_name=packages
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
need_root

debs=$root/target/debian
records=/var/log/nginx/gatelog.json
link=/etc/nginx/modules-enabled/50-mod-http-gatelog.conf
leftover_conf=/etc/nginx/conf.d/zz-gatelog-packaging-test.conf

present() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -qv 'not-installed'; }

# The test purges these packages and the record file: never on a machine that uses them.
for p in libnginx-mod-http-gatelog gatelog; do
    if present "$p"; then
        fail "$p is installed here; this test installs and purges it: remove it first"
    fi
done
[ ! -e "$records" ] || fail "$records exists; this test writes and (by purging) deletes it: move it away first"
[ ! -e "$link" ] && [ ! -e "$link.removed" ] || fail "$link(.removed) exists already"
/usr/sbin/nginx -t -q 2>/dev/null || fail "Debian's own configuration fails nginx -t before the test: fix that first"

cleanup() {
    local rc=$?
    stop_nginx
    rm -f "$leftover_conf"
    local ours=()
    for p in gatelog libnginx-mod-http-gatelog; do present "$p" && ours+=("$p"); done
    [ ${#ours[@]} -eq 0 ] || apt_get purge "${ours[@]}" >/dev/null 2>&1 || true
    purge_added_tools
    [ $rc -eq 0 ] || log "kept $prefix for inspection"
    exit $rc
}

new_prefix
trap cleanup EXIT

# --- 1. build and install ------------------------------------------------------------
log "building the packages (scripts/package)"
"$root/scripts/package"
ensure_tools logrotate man-db lnav
log "apt-get install ./*.deb"
(cd "$debs" && apt_get install ./*.deb) >"$prefix/apt-install.log" 2>&1 \
    || fail "apt-get install ./*.deb failed: $(tail -n 20 "$prefix/apt-install.log")"
installed libnginx-mod-http-gatelog && installed gatelog || fail "packages not installed after apt-get install"

# --- 2. enabled the Debian way --------------------------------------------------------
[ "$(readlink "$link")" = /usr/share/nginx/modules-available/mod-http-gatelog.conf ] \
    || fail "$link does not point to the modules-available conf: $(ls -l "$link" 2>&1)"
grep -qx 'load_module modules/ngx_http_gatelog_module.so;' /usr/share/nginx/modules-available/mod-http-gatelog.conf \
    || fail "unexpected modules-available conf"
[ -f /usr/lib/nginx/modules/ngx_http_gatelog_module.so ] || fail "module not in /usr/lib/nginx/modules"
[ "$(stat -c '%a %U:%G' "$records")" = "640 www-data:adm" ] \
    || fail "$records is $(stat -c '%a %U:%G' "$records"), expected 640 www-data:adm"
/usr/sbin/nginx -t >"$prefix/system-nginx-t.out" 2>&1 \
    || fail "Debian's configuration with the module enabled fails nginx -t: $(cat "$prefix/system-nginx-t.out")"
# (Into a file first: grep -q would stop reading early and fail the pipe.)
/usr/sbin/nginx -T >"$prefix/system-nginx-T.out" 2>&1 || fail "nginx -T failed"
grep -q '^load_module modules/ngx_http_gatelog_module.so;' "$prefix/system-nginx-T.out" \
    || fail "nginx -T does not show the module's load_module line"
log "installed and enabled; Debian's nginx -t passes with the module"

# --- 3. a real 502 through Debian's nginx with the packaged module ---------------------
nginx_prefix=/usr/share/nginx/
write_conf "include /etc/nginx/modules-enabled/*.conf;" "    include /etc/nginx/conf.d/gatelog.conf.example;"
nginx_t || fail "nginx -t on the test config: $(cat "$prefix/nginx-t.out")"
start_nginx
expect_status /refused 502
expect_status /retry 200
expect_status /upstream502 502
expect_status /bothdead 502
check_record "$records" /refused status=502 origin=nginx attempts.0.errno=111 \
    attempts.0.errno_name=ECONNREFUSED attempts.0.phase=connect attempts.0.peer="127.0.0.1:$port_dead" >/dev/null
check_record "$records" /retry status=200 recovered=true attempts.0.errno_name=ECONNREFUSED \
    attempts.1.status=200 attempts.1.event=null >/dev/null
check_record "$records" /upstream502 status=502 origin=upstream attempts.0.event=upstream_status \
    attempts.0.errno=null >/dev/null
check_record "$records" /bothdead status=502 attempts.0.errno_name=ECONNREFUSED \
    attempts.1.errno_name=ENOENT attempts.1.level=crit >/dev/null
stop_nginx
[ "$(wc -l <"$records")" -eq 4 ] || fail "$records holds $(wc -l <"$records") lines, expected 4"
log "4 real requests -> 4 records in $records, matching NGINX's error log"

# --- 4. man page, completion, lnav, logrotate ------------------------------------------
MANPAGER=cat MANWIDTH=100 man gatelog >"$prefix/man-gatelog.txt" 2>&1 || fail "man gatelog failed: $(cat "$prefix/man-gatelog.txt")"
grep -q 'gatelog-analyze(1)' "$prefix/man-gatelog.txt" && grep -q 'EXIT STATUS' "$prefix/man-gatelog.txt" \
    || fail "man gatelog lacks the subcommand or EXIT STATUS: $(head -n 20 "$prefix/man-gatelog.txt")"
MANPAGER=cat MANWIDTH=100 man gatelog-analyze >"$prefix/man-analyze.txt" 2>&1 || fail "man gatelog-analyze failed"
for opt in --records --nginx-log --fpm-log --since --format; do
    grep -q -- "$opt" "$prefix/man-analyze.txt" || fail "man gatelog-analyze does not document $opt"
done
# Every subcommand has a page naming every option the installed binary accepts (the
# pages are not stale).
subcommands=$(gatelog --help | sed -n '/^Commands:/,/^$/p' | awk 'NR > 1 && $1 != "help" {print $1}')
[ -n "$subcommands" ] || fail "gatelog --help lists no subcommand"
for sub in $subcommands; do
    MANPAGER=cat MANWIDTH=100 man "gatelog-$sub" >"$prefix/man-$sub.txt" 2>&1 || fail "man gatelog-$sub failed"
    grep -q "gatelog-$sub(1)" "$prefix/man-gatelog.txt" || fail "man gatelog does not list gatelog-$sub(1)"
    for opt in $(gatelog "$sub" --help | grep -o -- '--[a-z][a-z-]*' | sort -u); do
        grep -q -- "$opt" "$prefix/man-$sub.txt" || fail "gatelog $sub accepts $opt but its man page does not mention it"
    done
done
comp=/usr/share/bash-completion/completions/gatelog
[ -f "$comp" ] || fail "no bash completion at $comp"
got=$(bash -c '. "$1"; COMP_WORDS=(gatelog analyze --forma); COMP_CWORD=2; _gatelog gatelog --forma analyze; echo "${COMPREPLY[*]}"' _ "$comp")
[ "$got" = "--format" ] || fail "bash completion of 'gatelog analyze --forma' gave [$got], expected --format"
got=$(bash -c '. "$1"; COMP_WORDS=(gatelog analyze --format ""); COMP_CWORD=3; _gatelog gatelog "" --format; echo "${COMPREPLY[*]}"' _ "$comp")
# The values the installed binary accepts, as its short help lists them.
want=$(gatelog analyze -h | sed -n 's/.*--format <FORMAT>.*\[possible values: \([^]]*\)\].*/\1/p' | sed 's/, / /g')
[ -n "$want" ] || fail "gatelog analyze -h lists no --format values"
[ "$got" = "$want" ] || fail "bash completion of --format values gave [$got], the binary accepts [$want]"
[ -f /usr/share/zsh/vendor-completions/_gatelog ] && [ -f /usr/share/fish/vendor_completions.d/gatelog.fish ] \
    || fail "zsh or fish completion missing"
log "man pages of gatelog and ${subcommands//$'\n'/ } render and cover every option; bash completes 'gatelog analyze --forma' and --format values"

# lnav with no user configuration: only the packaged format in /etc/lnav.
lnav_home=$prefix/lnav-home
mkdir -p "$lnav_home"
out=$(HOME=$lnav_home lnav -C 2>&1) || fail "lnav -C: $out"
[ -z "$out" ] || fail "lnav -C complained: $out"
HOME=$lnav_home lnav -n \
    -c ';SELECT log_level, status, uri, conn, errno_name, phase, peer, event, tries FROM gatelog_v1_records' \
    -c ":write-json-to $prefix/lnav.json" "$records" >"$prefix/lnav.out" 2>&1 \
    || fail "lnav failed: $(cat "$prefix/lnav.out")"
python3 "$here/lnav_check.py" "$records" "$prefix/lnav.json" >&2 || fail "lnav's view of the records is wrong"
log "lnav (headless, packaged format) shows each record's level and errno/phase/peer"

logrotate -d /etc/logrotate.d/libnginx-mod-http-gatelog >"$prefix/logrotate-d.out" 2>&1 \
    || fail "logrotate -d failed: $(cat "$prefix/logrotate-d.out")"
grep -q "considering log $records\$" "$prefix/logrotate-d.out" \
    || fail "logrotate -d does not consider $records: $(cat "$prefix/logrotate-d.out")"
logrotate -d -f /etc/logrotate.d/libnginx-mod-http-gatelog >"$prefix/logrotate-df.out" 2>&1 || true
grep -q "rotating log $records" "$prefix/logrotate-df.out" \
    && grep -q 'running postrotate script' "$prefix/logrotate-df.out" \
    || fail "logrotate -d -f would not rotate $records and signal NGINX: $(cat "$prefix/logrotate-df.out")"
# The whole configuration (NGINX's *.log rule included) has no conflict with ours.
logrotate -d /etc/logrotate.conf >"$prefix/logrotate-all.out" 2>&1 || true
if grep -q '^error:' "$prefix/logrotate-all.out"; then
    fail "logrotate -d /etc/logrotate.conf reports: $(grep '^error:' "$prefix/logrotate-all.out")"
fi
grep -q "considering log $records\$" "$prefix/logrotate-all.out" \
    || fail "logrotate -d /etc/logrotate.conf does not reach $records"
log "logrotate -d covers $records (daily, 14, compress, USR1 through invoke-rc.d nginx rotate)"

# --- 5. remove, reinstall, purge ---------------------------------------------------------
printf 'gatelog %s;\n' "$records" >"$leftover_conf"
apt_get remove gatelog libnginx-mod-http-gatelog >"$prefix/apt-remove.log" 2>&1 \
    || fail "apt-get remove failed: $(tail -n 20 "$prefix/apt-remove.log")"
[ ! -e "$link" ] && [ -L "$link.removed" ] || fail "after remove: expected $link.removed only"
[ ! -e /usr/lib/nginx/modules/ngx_http_gatelog_module.so ] || fail "module still there after remove"
[ -f /etc/nginx/conf.d/gatelog.conf.example ] || fail "remove deleted a conffile (only purge may)"
grep -q "$leftover_conf" "$prefix/apt-remove.log" \
    || fail "prerm did not name $leftover_conf, which still uses gatelog: $(cat "$prefix/apt-remove.log")"
if /usr/sbin/nginx -t >"$prefix/nginx-t-leftover.out" 2>&1; then
    fail "nginx -t passed with a gatelog directive and the module removed: is it still loaded?"
fi
grep -q 'unknown directive "gatelog"' "$prefix/nginx-t-leftover.out" \
    || fail "unexpected nginx -t failure: $(cat "$prefix/nginx-t-leftover.out")"
rm -f "$leftover_conf"
/usr/sbin/nginx -t >"$prefix/nginx-t-removed.out" 2>&1 \
    || fail "nginx -t fails with the module removed: $(cat "$prefix/nginx-t-removed.out")"
log "removed: module disabled, prerm named the leftover directive, nginx -t passes without it"

(cd "$debs" && apt_get install ./libnginx-mod-http-gatelog_*.deb) >"$prefix/apt-reinstall.log" 2>&1 \
    || fail "reinstall failed: $(tail -n 20 "$prefix/apt-reinstall.log")"
[ -L "$link" ] && [ ! -e "$link.removed" ] || fail "reinstall after remove did not restore $link"
/usr/sbin/nginx -t -q || fail "nginx -t fails after reinstall"
log "reinstalled: the link is back"

# An administrator who disabled the module keeps it disabled across an upgrade.
rm -f "$link"
(cd "$debs" && apt_get install --reinstall ./libnginx-mod-http-gatelog_*.deb) >"$prefix/apt-reinstall2.log" 2>&1 \
    || fail "reinstall failed: $(tail -n 20 "$prefix/apt-reinstall2.log")"
[ ! -e "$link" ] && [ ! -L "$link" ] || fail "an upgrade re-enabled the module the administrator had disabled"
log "upgraded over a disabled module: it stays disabled"

apt_get purge gatelog libnginx-mod-http-gatelog >"$prefix/apt-purge.log" 2>&1 \
    || fail "apt-get purge failed: $(tail -n 20 "$prefix/apt-purge.log")"
for f in "$link" "$link.removed" /etc/nginx/conf.d/gatelog.conf.example \
    /etc/logrotate.d/libnginx-mod-http-gatelog /etc/lnav/formats/gatelog "$records" \
    /usr/share/nginx/modules-available/mod-http-gatelog.conf /usr/bin/gatelog; do
    [ ! -e "$f" ] && [ ! -L "$f" ] || fail "$f still there after purge"
done
present libnginx-mod-http-gatelog || present gatelog && fail "dpkg still knows a package after purge"
/usr/sbin/nginx -t >"$prefix/nginx-t-purged.out" 2>&1 \
    || fail "nginx -t fails after purge: $(cat "$prefix/nginx-t-purged.out")"
log "purged: links, conffiles, records gone; nginx -t passes"

rm -rf "$prefix"
log "PASS"
