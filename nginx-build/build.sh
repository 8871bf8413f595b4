#!/usr/bin/env bash
# Builds the two NGINX trees gatelog is compiled against and tested in, and the
# module for each of them:
#
#   deb-1.22      Debian's /usr/sbin/nginx (package nginx 1.22.1). Its module must be
#                 built against a copy of /usr/share/nginx/src (package nginx-dev)
#                 configured with Debian's own conf_flags, or NGINX refuses it as
#                 "not binary compatible".
#   vendored-1.28 NGINX 1.28 from the nginx-src crate that ngx vendors, configured with
#                 the vendored flags and built with make (the binary lives in the tree).
#   addon-deb-1.22  (`build.sh addon`, not part of `all`) the module for Debian's
#                 /usr/sbin/nginx built the way NGINX builds any third-party module:
#                 a copy of /usr/share/nginx/src configured with Debian's conf_flags
#                 plus --add-dynamic-module=ngx-module (ngx-module/config), then
#                 `make modules`. scripts/package ships this one.
#
# Output, per flavour, in nginx-build/out/<flavour>/:
#   nginx                          the NGINX binary to run (symlink)
#   ngx_http_gatelog_module.so     the module that loads into exactly that binary
#   version                        the NGINX version number the module was built for
#
# Idempotent: a tree is copied and configured once (stamped with its source version),
# and cargo rebuilds the module only when the sources changed.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
work="$here/work"
out="$here/out"
profile=${GATELOG_PROFILE:-release}
mkdir -p "$work" "$out"

log() { printf '[nginx-build] %s\n' "$*" >&2; }

# --- Debian's NGINX 1.22 ---------------------------------------------------------
build_deb_tree() {
    local src=/usr/share/nginx/src tree="$work/deb-1.22"
    [ -f "$src/conf_flags" ] || { log "missing $src/conf_flags: install the nginx-dev package"; exit 1; }
    # nginx-dev pins the installed nginx version; rebuild when the package changes.
    local stamp
    stamp="$(dpkg-query -W -f='${Version}' nginx-dev 2>/dev/null || echo unknown)"
    if [ -f "$tree/.gatelog-stamp" ] && [ "$(cat "$tree/.gatelog-stamp")" = "$stamp" ] \
        && [ -f "$tree/objs/ngx_auto_config.h" ]; then
        return
    fi
    log "configuring a copy of $src (nginx-dev $stamp)"
    rm -rf "$tree"
    cp -a "$src" "$tree"
    (
        cd "$tree"
        # shellcheck disable=SC1091
        . ./conf_flags
        ./configure "${NGX_CONF_FLAGS[@]}" >configure.log 2>&1
    ) || { log "configure failed, see $tree/configure.log"; exit 1; }
    echo "$stamp" >"$tree/.gatelog-stamp"
}

# --- NGINX 1.28 from the vendored source --------------------------------------------
vendored_src() {
    # Cargo.lock pins nginx-src through the gatelog-ngx `vendored` feature; ask cargo
    # where its sources are (this downloads the crate on a fresh machine).
    (cd "$root" && cargo metadata --format-version 1 --features gatelog-ngx/vendored) |
        python3 -c 'import json,sys,os
d=json.load(sys.stdin)
p=[p for p in d["packages"] if p["name"]=="nginx-src"][0]
print(os.path.join(os.path.dirname(p["manifest_path"]),"nginx"))'
}

build_vendored_tree() {
    local src tree="$work/vendored-1.28"
    src=$(vendored_src)
    [ -f "$src/src/core/nginx.h" ] || { log "vendored NGINX source not found at $src"; exit 1; }
    local stamp="$src"
    if [ -f "$tree/.gatelog-stamp" ] && [ "$(cat "$tree/.gatelog-stamp")" = "$stamp" ] \
        && [ -x "$tree/objs/nginx" ]; then
        return
    fi
    log "configuring and building NGINX from $src"
    rm -rf "$tree"
    cp -a "$src" "$tree"
    chmod -R u+w "$tree"
    (
        cd "$tree"
        ./auto/configure --with-compat --with-debug --with-http_realip_module \
            --with-http_ssl_module --with-http_v2_module --with-stream \
            --with-stream_realip_module --with-stream_ssl_module --with-threads \
            >configure.log 2>&1
        make -j"$(nproc)" >make.log 2>&1
    ) || { log "build failed, see $tree/configure.log and $tree/make.log"; exit 1; }
    echo "$stamp" >"$tree/.gatelog-stamp"
}

# --- Debian's NGINX 1.22 with gatelog as an addon -----------------------------------
build_addon() {
    local src=/usr/share/nginx/src tree="$work/addon-deb-1.22" flavour=addon-deb-1.22
    [ -f "$src/conf_flags" ] || { log "missing $src/conf_flags: install the nginx-dev package"; exit 1; }
    local version glue
    version="$(dpkg-query -W -f='${Version}' nginx-dev 2>/dev/null || echo unknown)"
    # configure copies nothing from the addon but reads its glue: run it again when
    # the glue changes, keeping objs/ (and cargo's build there) otherwise.
    glue="$( (cat "$root/ngx-module/config" "$root/ngx-module/config.make" "$root/ngx-module/auto/"*; dpkg-buildflags --get CFLAGS) | sha256sum | cut -c1-16)"
    if [ ! -f "$tree/.gatelog-version" ] || [ "$(cat "$tree/.gatelog-version")" != "$version" ]; then
        log "copying $src (nginx-dev $version)"
        rm -rf "$tree"
        cp -a "$src" "$tree"
        echo "$version" >"$tree/.gatelog-version"
    fi
    if [ ! -f "$tree/.gatelog-glue" ] || [ "$(cat "$tree/.gatelog-glue")" != "$glue" ] \
        || [ ! -f "$tree/objs/Makefile" ]; then
        log "configuring $tree with Debian's flags and --add-dynamic-module=$root/ngx-module"
        (
            cd "$tree"
            # shellcheck disable=SC1091
            . ./conf_flags
            # As Debian's own module packages are built (dh's nginx_mod buildsystem):
            # Debian's compiler and linker hardening flags, -fPIC for the .so.
            ./configure "${NGX_CONF_FLAGS[@]}" \
                --with-cc-opt="$(dpkg-buildflags --get CFLAGS) -fPIC $(dpkg-buildflags --get CPPFLAGS)" \
                --with-ld-opt="$(dpkg-buildflags --get LDFLAGS) -fPIC" \
                --add-dynamic-module="$root/ngx-module" >configure.log 2>&1
        ) || { log "configure failed, see $tree/configure.log"; exit 1; }
        echo "$glue" >"$tree/.gatelog-glue"
    fi
    log "make modules in $tree (cargo output in $tree/make.log)"
    # The trimmed source in nginx-dev has no top-level Makefile; objs/Makefile is it.
    (cd "$tree" && make -f objs/Makefile modules >make.log 2>&1) \
        || { tail -n 30 "$tree/make.log" >&2; log "make modules failed, see $tree/make.log"; exit 1; }
    mkdir -p "$out/$flavour"
    cp -f "$tree/objs/ngx_http_gatelog_module.so" "$out/$flavour/ngx_http_gatelog_module.so.tmp"
    mv -f "$out/$flavour/ngx_http_gatelog_module.so.tmp" "$out/$flavour/ngx_http_gatelog_module.so"
    ln -sfn /usr/sbin/nginx "$out/$flavour/nginx"
    sed -n 's/^#define nginx_version *\([0-9]*\).*/\1/p' "$tree/src/core/nginx.h" >"$out/$flavour/version"
    log "$flavour: /usr/sbin/nginx + $out/$flavour/ngx_http_gatelog_module.so (nginx_version $(cat "$out/$flavour/version"))"
}

# --- the module --------------------------------------------------------------------
build_module() {
    local flavour=$1 objs=$2 binary=$3
    # The Debian flavour shares the workspace's target/ (and .cargo/config.toml's
    # NGINX_BUILD_DIR), so `cargo test --release` reuses it; 1.28 gets its own, or each
    # build would invalidate the other's bindings.
    local target="$root/target"
    [ "$flavour" = deb-1.22 ] || target="$root/target/ngx-$flavour"
    log "building the module for $flavour"
    local flag=()
    [ "$profile" = release ] && flag=(--release)
    (cd "$root" && NGINX_BUILD_DIR="$objs" CARGO_TARGET_DIR="$target" \
        cargo build -q -p gatelog-ngx "${flag[@]}")
    mkdir -p "$out/$flavour"
    cp -f "$target/$profile/libngx_http_gatelog_module.so" "$out/$flavour/ngx_http_gatelog_module.so.tmp"
    mv -f "$out/$flavour/ngx_http_gatelog_module.so.tmp" "$out/$flavour/ngx_http_gatelog_module.so"
    ln -sfn "$binary" "$out/$flavour/nginx"
    sed -n 's/^#define nginx_version *\([0-9]*\).*/\1/p' "$(dirname "$objs")/src/core/nginx.h" >"$out/$flavour/version"
}

what=${1:-all}
case "$what" in
    trees)
        build_deb_tree
        build_vendored_tree
        ;;
    all)
        build_deb_tree
        build_vendored_tree
        build_module deb-1.22 "$work/deb-1.22/objs" /usr/sbin/nginx
        build_module vendored-1.28 "$work/vendored-1.28/objs" "$work/vendored-1.28/objs/nginx"
        for f in deb-1.22 vendored-1.28; do
            log "$f: $(readlink "$out/$f/nginx") + $out/$f/ngx_http_gatelog_module.so (nginx_version $(cat "$out/$f/version"))"
        done
        ;;
    addon)
        build_addon
        ;;
    *)
        echo "usage: $0 [all|trees|addon]" >&2
        exit 2
        ;;
esac
