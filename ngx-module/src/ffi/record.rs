//! Per-request capture storage and building the record from request state.

use core::ffi::c_void;
use core::ptr::addr_of;

use gatelog_record::record::Origin;
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
use crate::attempts::{build_attempts, verdict, StateView, Verdict};
use crate::capture::{Built, RequestCapture};

/// Pool cleanup that owns a request's capture. Its address also identifies the
/// capture in the pool's cleanup list: `r->ctx` is wiped by internal redirects
/// (error_page), the pool is not.
unsafe extern "C" fn capture_cleanup(data: *mut c_void) {
    guard((), || {
        if !data.is_null() {
            drop(Box::from_raw(data as *mut RequestCapture));
        }
    })
}

fn ctx_index() -> usize {
    unsafe { (*addr_of!(ngx_http_gatelog_module)).ctx_index }
}

/// The capture of main request `r`, made on first use when `create` is set.
pub unsafe fn capture_of(
    r: *mut ngx_http_request_t,
    create: bool,
) -> Option<&'static mut RequestCapture> {
    let slot = (*r).ctx.add(ctx_index());
    if !(*slot).is_null() {
        return Some(&mut *((*slot) as *mut RequestCapture));
    }
    let pool = (*r).pool;
    let ours: unsafe extern "C" fn(*mut c_void) = capture_cleanup;
    let mut cln = (*pool).cleanup;
    while !cln.is_null() {
        if (*cln).handler.is_some_and(|h| h as usize == ours as usize) && !(*cln).data.is_null() {
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

/// `$status`'s rule: the error status if one was set, else the response status.
unsafe fn final_status(r: *mut ngx_http_request_t) -> u16 {
    let s = if (*r).err_status != 0 {
        (*r).err_status
    } else {
        (*r).headers_out.status
    };
    u16::try_from(s).unwrap_or(0)
}

/// The record for main request `r`, if it gets one, built once per final status.
pub unsafe fn record_for(
    r: *mut ngx_http_request_t,
    record_recovered: bool,
) -> Option<&'static Built> {
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
        if status != 502 && status != 504 && !state_views_raw(r).iter().any(|s| s.status >= 500) {
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

unsafe fn build(
    r: *mut ngx_http_request_t,
    status: u16,
    record_recovered: bool,
    capture: &RequestCapture,
) -> Option<Built> {
    let states = state_views(r);
    let attempts = build_attempts(&states, &capture.events);
    let verdict = verdict(status, &attempts, record_recovered)?;
    let (origin, recovered) = match verdict {
        Verdict::Failed(o) => (o, false),
        // The final answer came from an upstream; the failures are in the attempts.
        Verdict::Recovered => (Origin::Upstream, true),
    };
    let last_failed = attempts
        .iter()
        .rev()
        .find(|a| a.errno.is_some() || a.phase.is_some());
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

    let record = Record {
        schema: SCHEMA.to_owned(),
        time: iso8601_with_millis(
            bytes(&*addr_of!(ngx_cached_http_log_iso8601)),
            tp.msec as u32,
            now_ms,
            tp.gmtoff as i32,
        ),
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
        attempts,
        timeouts_ms: timeouts(r),
        fastcgi_stderr: capture.stderr.as_ref().map(|s| FastcgiStderr {
            text: s.text.clone(),
            truncated: s.truncated,
        }),
    };
    let mut json = Vec::with_capacity(1024);
    record.write_line(&mut json);
    Some(Built {
        json,
        last_errno,
        last_phase,
    })
}

fn ms(v: ngx_msec_t) -> Option<u64> {
    (v != ngx_msec_t::MAX).then_some(v as u64)
}

unsafe fn state_views_raw<'a>(r: *mut ngx_http_request_t) -> &'a [ngx_http_upstream_state_t] {
    let arr = (*r).upstream_states;
    if arr.is_null() || (*arr).nelts == 0 || (*arr).elts.is_null() {
        return &[];
    }
    core::slice::from_raw_parts(
        (*arr).elts as *const ngx_http_upstream_state_t,
        (*arr).nelts,
    )
}

unsafe fn state_views(r: *mut ngx_http_request_t) -> Vec<StateView> {
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

/// `$request_id`, when the configuration uses it elsewhere (see postconfiguration).
unsafe fn request_id(r: *mut ngx_http_request_t) -> Option<String> {
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

unsafe fn server_name<'a>(r: *mut ngx_http_request_t) -> &'a [u8] {
    let cscf =
        *(*r).srv_conf.add(ngx_http_core_module.ctx_index) as *const ngx_http_core_srv_conf_t;
    if cscf.is_null() {
        return &[];
    }
    bytes(&(*cscf).server_name)
}

unsafe fn protocol(r: *mut ngx_http_request_t) -> String {
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

/// The upstream{} group name, or the address written in `*_pass`.
unsafe fn upstream_name(r: *mut ngx_http_request_t) -> Option<String> {
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

unsafe fn timeouts(r: *mut ngx_http_request_t) -> Option<Timeouts> {
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
