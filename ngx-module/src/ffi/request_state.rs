//! Per-request capture storage and building the record from request state.

#![deny(unsafe_op_in_unsafe_fn)]

use core::ffi::c_void;
use core::ptr::addr_of;

use gatelog_record::record::{last_failed, Origin};
use gatelog_record::text::lossless_text;
use gatelog_record::time::iso8601_with_millis;
use gatelog_record::{FastcgiStderr, Record, Timeouts, SCHEMA};
use ngx::ffi::{
    ngx_cached_http_log_iso8601, ngx_http_core_module, ngx_http_core_srv_conf_t,
    ngx_http_get_indexed_variable, ngx_http_request_t, ngx_http_upstream_state_t, ngx_msec_t,
    ngx_pid, ngx_pool_cleanup_add, ngx_timeofday,
};

use super::module::{main_conf_of_request, ngx_http_gatelog_module};
use super::{bytes, guard};
use crate::attempts::{build_attempts, record_kind, RecordKind, StateView};
use crate::capture::{Built, RequestCapture};
use crate::metrics::Tally;

/// Pool cleanup that owns a request's capture. Its address also identifies the
/// capture in the pool's cleanup list: `r->ctx` is wiped by internal redirects
/// (error_page), the pool is not.
unsafe extern "C" fn capture_cleanup(data: *mut c_void) {
    guard((), || {
        if !data.is_null() {
            // SAFETY: `data` is the Box capture_of leaked into this cleanup, freed once.
            drop(unsafe { Box::from_raw(data as *mut RequestCapture) });
        }
    })
}

fn ctx_index() -> usize {
    // SAFETY: NGINX sets ctx_index when it loads the configuration; read only.
    unsafe { (*addr_of!(ngx_http_gatelog_module)).ctx_index }
}

/// The capture of main request `r`, made on first use when `create` is set.
///
/// # Safety
/// `r` is a live main request.
pub unsafe fn capture_of(
    r: *mut ngx_http_request_t,
    create: bool,
) -> Option<&'static mut RequestCapture> {
    // SAFETY: the request, its ctx array (one slot per module) and its pool are live; the capture
    // is a Box owned by a cleanup of that pool, so it lives as long as the request and is reached
    // only from this request's event-loop callbacks.
    unsafe {
        let slot = (*r).ctx.add(ctx_index());
        if !(*slot).is_null() {
            return Some(&mut *((*slot) as *mut RequestCapture));
        }
        let pool = (*r).pool;
        let ours: unsafe extern "C" fn(*mut c_void) = capture_cleanup;
        let mut cln = (*pool).cleanup;
        while !cln.is_null() {
            if (*cln).handler.is_some_and(|h| h as usize == ours as usize) && !(*cln).data.is_null()
            {
                *slot = (*cln).data;
                return Some(&mut *((*cln).data as *mut RequestCapture));
            }
            cln = (*cln).next;
        }
        if !create {
            return None;
        }
        let cln = ngx_pool_cleanup_add(pool, 0);
        if cln.is_null() {
            return None;
        }
        let data = Box::into_raw(Box::<RequestCapture>::default());
        (*cln).data = data.cast();
        (*cln).handler = Some(capture_cleanup);
        *slot = data.cast();
        Some(&mut *data)
    }
}

/// `$status`'s rule: the error status if one was set, else the response status.
///
/// # Safety
/// `r` is a live request.
unsafe fn final_status(r: *mut ngx_http_request_t) -> u16 {
    // SAFETY: `r` is live (caller).
    unsafe {
        let s = if (*r).err_status != 0 {
            (*r).err_status
        } else {
            (*r).headers_out.status
        };
        u16::try_from(s).unwrap_or(0)
    }
}

/// The record for main request `r`, if it gets one, built once per final status.
///
/// # Safety
/// `r` is a live main request in its log phase (or a variable lookup).
pub unsafe fn record_for(
    r: *mut ngx_http_request_t,
    record_recovered: bool,
) -> Option<&'static Built> {
    // SAFETY: `r` is live (caller); the capture lives in its pool.
    unsafe {
        let status = final_status(r);
        // The normal path: a good answer with recovered-recording off costs nothing.
        if status != 502 && status != 504 && !record_recovered {
            return None;
        }
        let has_states = !(*r).upstream_states.is_null() && (*(*r).upstream_states).nelts > 0;
        let existing = capture_of(r, false);
        if existing.is_none() {
            // Without a captured failure line, only a 5xx attempt status (an upstream
            // answer, or a next_upstream http_5xx) can make a record: skip the
            // allocation for every good request when gatelog_recovered is on.
            if !has_states {
                return None;
            }
            if status != 502 && status != 504 && !state_views_raw(r).iter().any(|s| s.status >= 500)
            {
                return None;
            }
        }
        let capture = match existing {
            Some(c) => c,
            None => capture_of(r, true)?,
        };
        let stale = !matches!(&capture.cached, Some((s, _)) if *s == status);
        if stale {
            let built = build(r, status, record_recovered, capture);
            capture.cached = Some((status, built));
        }
        capture.cached.as_ref().and_then(|(_, b)| b.as_ref())
    }
}

/// # Safety
/// `r` is a live main request.
unsafe fn build(
    r: *mut ngx_http_request_t,
    status: u16,
    record_recovered: bool,
    capture: &RequestCapture,
) -> Option<Built> {
    // SAFETY: `r` is live (caller): its connection, confs, upstream and header fields are
    // NGINX-owned memory valid during the request; NULL pointers are checked before use.
    unsafe {
        let states = state_views(r);
        let attempts = build_attempts(&states, &capture.events);
        let kind = record_kind(status, &attempts, record_recovered)?;
        let (origin, recovered) = match kind {
            RecordKind::Failed(o) => (o, false),
            // The final answer came from an upstream; the failures are in the attempts.
            RecordKind::Recovered => (Origin::Upstream, true),
        };
        let last_failed = last_failed(&attempts);
        let last_errno = last_failed.and_then(|a| a.errno);
        let last_phase = last_failed.and_then(|a| a.phase);

        let tp = ngx_timeofday();
        let now_ms = tp.sec.saturating_mul(1000).saturating_add(tp.msec as i64);
        let start_ms = (*r)
            .start_sec
            .saturating_mul(1000)
            .saturating_add((*r).start_msec as i64);
        let c = (*r).connection;
        let conn = if (*c).log.is_null() {
            (*c).number
        } else {
            (*(*c).log).connection
        };
        let host = (*r).headers_in.host;

        let mut record = Record {
            schema: SCHEMA.to_owned(),
            time: iso8601_with_millis(
                bytes(&*addr_of!(ngx_cached_http_log_iso8601)),
                tp.msec as u32,
                now_ms,
                tp.gmtoff as i32,
            ),
            // Set by summarize() below, from the fields that follow.
            level: None,
            msg: None,
            pid: Some(ngx_pid as u64),
            conn: Some(conn),
            request_id: request_id(r),
            status,
            origin,
            recovered,
            client: lossless_text(bytes(&(*c).addr_text)),
            server: lossless_text(server_name(r)),
            host: if host.is_null() {
                None
            } else {
                Some(lossless_text(bytes(&(*host).value)))
            },
            method: lossless_text(bytes(&(*r).method_name)),
            uri: lossless_text(bytes(&(*r).unparsed_uri)),
            protocol: protocol(r),
            request_time_ms: Some(u64::try_from(now_ms.saturating_sub(start_ms)).unwrap_or(0)),
            upstream: upstream_name(r),
            // Not written yet: the e2e record checks and the schema would change with it.
            upstream_protocol: None,
            errno_name: None,
            phase: None,
            attempts,
            timeouts_ms: timeouts(r),
            fastcgi_stderr: capture.stderr.as_ref().map(|s| FastcgiStderr {
                text: s.text.clone(),
                truncated: s.truncated,
            }),
        };
        record.summarize();
        let mut json = Vec::with_capacity(1024);
        record.write_line(&mut json);
        let tally = Tally::from_record(
            record.upstream.as_deref(),
            status,
            origin,
            recovered,
            &record.attempts,
        );
        Some(Built {
            json,
            last_errno,
            last_phase,
            tally,
        })
    }
}

fn ms(v: ngx_msec_t) -> Option<u64> {
    (v != ngx_msec_t::MAX).then_some(v as u64)
}

/// # Safety
/// `r` is a live request.
unsafe fn state_views_raw<'a>(r: *mut ngx_http_request_t) -> &'a [ngx_http_upstream_state_t] {
    // SAFETY: the upstream_states array holds `nelts` states (checked for NULL and emptiness).
    unsafe {
        let arr = (*r).upstream_states;
        if arr.is_null() || (*arr).nelts == 0 || (*arr).elts.is_null() {
            return &[];
        }
        core::slice::from_raw_parts(
            (*arr).elts as *const ngx_http_upstream_state_t,
            (*arr).nelts,
        )
    }
}

/// # Safety
/// `r` is a live request.
unsafe fn state_views(r: *mut ngx_http_request_t) -> Vec<StateView> {
    // SAFETY: `r` is live (caller); each state's peer is NULL or a valid ngx_str_t.
    unsafe {
        state_views_raw(r)
            .iter()
            .map(|s| StateView {
                peer: if s.peer.is_null() {
                    None
                } else {
                    Some(lossless_text(bytes(&*s.peer)))
                },
                status: u16::try_from(s.status).ok().filter(|&v| v != 0),
                connect_ms: ms(s.connect_time),
                header_ms: ms(s.header_time),
                response_ms: ms(s.response_time),
            })
            .collect()
    }
}

/// `$request_id`, when the configuration uses it elsewhere (see postconfiguration).
///
/// # Safety
/// `r` is a live request.
unsafe fn request_id(r: *mut ngx_http_request_t) -> Option<String> {
    // SAFETY: `r` is live (caller); the indexed variable value is checked for NULL and not_found.
    unsafe {
        let mc = main_conf_of_request(r)?;
        if mc.request_id_index < 0 {
            return None;
        }
        let v = ngx_http_get_indexed_variable(r, mc.request_id_index as usize);
        if v.is_null() || (*v).not_found() != 0 || (*v).data.is_null() {
            return None;
        }
        Some(lossless_text(core::slice::from_raw_parts(
            (*v).data,
            (*v).len() as usize,
        )))
    }
}

/// # Safety
/// `r` is a live request.
unsafe fn server_name<'a>(r: *mut ngx_http_request_t) -> &'a [u8] {
    // SAFETY: the request's server conf of the core module is set for every request.
    unsafe {
        let cscf =
            *(*r).srv_conf.add(ngx_http_core_module.ctx_index) as *const ngx_http_core_srv_conf_t;
        if cscf.is_null() {
            return &[];
        }
        bytes(&(*cscf).server_name)
    }
}

/// # Safety
/// `r` is a live request.
unsafe fn protocol(r: *mut ngx_http_request_t) -> String {
    // SAFETY: `r` is live (caller).
    unsafe {
        let p = bytes(&(*r).http_protocol);
        if !p.is_empty() {
            return lossless_text(p);
        }
        match (*r).http_version {
            9 => "HTTP/0.9".into(),
            1000 => "HTTP/1.0".into(),
            1001 => "HTTP/1.1".into(),
            2000 => "HTTP/2.0".into(),
            3000 => "HTTP/3.0".into(),
            v => format!("HTTP/{}.{}", v / 1000, v % 1000),
        }
    }
}

/// The upstream{} group name, or the address written in `*_pass`.
///
/// # Safety
/// `r` is a live request.
unsafe fn upstream_name(r: *mut ngx_http_request_t) -> Option<String> {
    // SAFETY: `r` is live (caller); its upstream, upstream conf and resolved address are checked
    // for NULL.
    unsafe {
        let u = (*r).upstream;
        if u.is_null() {
            return None;
        }
        let uscf = (*u).upstream;
        if !uscf.is_null() {
            let host = bytes(&(*uscf).host);
            // Implicit upstreams (made by `fastcgi_pass ADDR`) have no srv_conf; their
            // host is the address as written, the unix: prefix stripped.
            if (*uscf).srv_conf.is_null() {
                if host.starts_with(b"/") {
                    return Some(format!("unix:{}", lossless_text(host)));
                }
                if (*uscf).port != 0 {
                    return Some(format!("{}:{}", lossless_text(host), (*uscf).port));
                }
            }
            return Some(lossless_text(host));
        }
        let res = (*u).resolved;
        if !res.is_null() {
            let host = lossless_text(bytes(&(*res).host));
            return Some(if (*res).port != 0 {
                format!("{host}:{}", (*res).port)
            } else {
                host
            });
        }
        None
    }
}

/// # Safety
/// `r` is a live request.
unsafe fn timeouts(r: *mut ngx_http_request_t) -> Option<Timeouts> {
    // SAFETY: `r` is live (caller); its upstream and upstream conf are checked for NULL.
    unsafe {
        let u = (*r).upstream;
        if u.is_null() || (*u).conf.is_null() {
            return None;
        }
        let conf = (*u).conf;
        Some(Timeouts {
            connect: (*conf).connect_timeout as u64,
            send: (*conf).send_timeout as u64,
            read: (*conf).read_timeout as u64,
        })
    }
}
