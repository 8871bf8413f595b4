//! Who NGINX's workers are. NGINX resolves its `user USER [GROUP];` at start with
//! getpwnam(USER) and getgrnam(GROUP, default: a group named like the user), then
//! calls initgroups(USER, GROUP): the supplementary groups come from the group
//! database. The same lookups through the C library (so NSS, LDAP and sssd answer as
//! they answer NGINX) give the credentials a permission check must use.

use std::ffi::{CStr, CString};

/// A user with the credentials a process switched to it would have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    /// The primary group (NGINX's GROUP).
    pub gid: u32,
    pub group_name: String,
    /// Supplementary groups (initgroups), the primary one included.
    pub groups: Vec<u32>,
}

impl Account {
    pub fn in_group(&self, gid: u32) -> bool {
        self.gid == gid || self.groups.contains(&gid)
    }

    /// `www-data (uid 33, gid 33 www-data, groups www-data)`.
    pub fn describe(&self) -> String {
        let groups: Vec<String> = self
            .groups
            .iter()
            .map(|g| group_name(*g).unwrap_or_else(|| g.to_string()))
            .collect();
        format!(
            "{} (uid {}, gid {} {}, groups {})",
            self.name,
            self.uid,
            self.gid,
            self.group_name,
            groups.join(",")
        )
    }
}

/// Buffer size for the *_r lookups: grown on ERANGE up to this.
const MAX_BUF: usize = 1 << 20;

/// (uid, primary gid) of a user name.
fn passwd(name: &str) -> Result<(u32, u32), String> {
    let c = CString::new(name).map_err(|_| format!("user name {name:?} contains NUL"))?;
    let mut len = 4096;
    loop {
        let mut buf = vec![0 as libc::c_char; len];
        // SAFETY: an all-zero passwd is a valid value for getpwnam_r to fill.
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut out: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call; buf's length is passed.
        let rc = unsafe { libc::getpwnam_r(c.as_ptr(), &mut pw, buf.as_mut_ptr(), len, &mut out) };
        if rc == libc::ERANGE && len < MAX_BUF {
            len *= 4;
            continue;
        }
        if rc != 0 {
            return Err(format!(
                "looking up user {name}: {}",
                std::io::Error::from_raw_os_error(rc)
            ));
        }
        if out.is_null() {
            return Err(format!("no user {name} on this host"));
        }
        return Ok((pw.pw_uid, pw.pw_gid));
    }
}

/// The gid of a group name.
fn group_id(name: &str) -> Result<u32, String> {
    let c = CString::new(name).map_err(|_| format!("group name {name:?} contains NUL"))?;
    let mut len = 4096;
    loop {
        let mut buf = vec![0 as libc::c_char; len];
        // SAFETY: an all-zero group is a valid value for getgrnam_r to fill.
        let mut gr: libc::group = unsafe { std::mem::zeroed() };
        let mut out: *mut libc::group = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call; buf's length is passed.
        let rc = unsafe { libc::getgrnam_r(c.as_ptr(), &mut gr, buf.as_mut_ptr(), len, &mut out) };
        if rc == libc::ERANGE && len < MAX_BUF {
            len *= 4;
            continue;
        }
        if rc != 0 {
            return Err(format!(
                "looking up group {name}: {}",
                std::io::Error::from_raw_os_error(rc)
            ));
        }
        if out.is_null() {
            return Err(format!("no group {name} on this host"));
        }
        return Ok(gr.gr_gid);
    }
}

/// The name of a gid, if the group database has one.
pub fn group_name(gid: u32) -> Option<String> {
    let mut len = 4096;
    loop {
        let mut buf = vec![0 as libc::c_char; len];
        // SAFETY: an all-zero group is a valid value for getgrgid_r to fill.
        let mut gr: libc::group = unsafe { std::mem::zeroed() };
        let mut out: *mut libc::group = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call; buf's length is passed.
        let rc = unsafe { libc::getgrgid_r(gid, &mut gr, buf.as_mut_ptr(), len, &mut out) };
        if rc == libc::ERANGE && len < MAX_BUF {
            len *= 4;
            continue;
        }
        if rc != 0 || out.is_null() || gr.gr_name.is_null() {
            return None;
        }
        // SAFETY: gr_name points into buf, NUL-terminated by getgrgid_r.
        let name = unsafe { CStr::from_ptr(gr.gr_name) };
        return Some(name.to_string_lossy().into_owned());
    }
}

/// The name of a uid, if the user database has one.
pub fn user_name(uid: u32) -> Option<String> {
    let mut len = 4096;
    loop {
        let mut buf = vec![0 as libc::c_char; len];
        // SAFETY: an all-zero passwd is a valid value for getpwuid_r to fill.
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut out: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call; buf's length is passed.
        let rc = unsafe { libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), len, &mut out) };
        if rc == libc::ERANGE && len < MAX_BUF {
            len *= 4;
            continue;
        }
        if rc != 0 || out.is_null() || pw.pw_name.is_null() {
            return None;
        }
        // SAFETY: pw_name points into buf, NUL-terminated by getpwuid_r.
        let name = unsafe { CStr::from_ptr(pw.pw_name) };
        return Some(name.to_string_lossy().into_owned());
    }
}

/// The supplementary groups initgroups(user, gid) would set.
fn group_list(user: &str, gid: u32) -> Result<Vec<u32>, String> {
    let c = CString::new(user).map_err(|_| format!("user name {user:?} contains NUL"))?;
    let mut n: libc::c_int = 32;
    loop {
        let mut groups = vec![0 as libc::gid_t; n as usize];
        let mut count = n;
        // SAFETY: groups has room for `count` entries; getgrouplist writes at most
        // that many and sets count to the real number.
        let rc = unsafe { libc::getgrouplist(c.as_ptr(), gid, groups.as_mut_ptr(), &mut count) };
        if rc >= 0 {
            groups.truncate(count.max(0) as usize);
            return Ok(groups);
        }
        if count <= n || count > 65_536 {
            return Err(format!("getgrouplist({user}) failed"));
        }
        n = count;
    }
}

/// The account NGINX's workers run as for `user USER [GROUP];`.
pub fn nginx_account(user: &str, group: Option<&str>) -> Result<Account, String> {
    let (uid, _) = passwd(user)?;
    let group_name = group.unwrap_or(user).to_string();
    let gid = group_id(&group_name)?;
    let mut groups = group_list(user, gid)?;
    groups.sort_unstable();
    groups.dedup();
    Ok(Account {
        name: user.to_string(),
        uid,
        gid,
        group_name,
        groups,
    })
}

/// The account of a running process, from `/proc/PID/status` (what it really holds).
pub fn process_account(pid: u32) -> Option<Account> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .map(str::trim)
    };
    // `Uid:	real	effective	saved	fs`.
    let uid: u32 = field("Uid:")?.split_whitespace().nth(1)?.parse().ok()?;
    let gid: u32 = field("Gid:")?.split_whitespace().nth(1)?.parse().ok()?;
    let mut groups: Vec<u32> = field("Groups:")
        .unwrap_or("")
        .split_whitespace()
        .filter_map(|g| g.parse().ok())
        .collect();
    groups.push(gid);
    groups.sort_unstable();
    groups.dedup();
    Some(Account {
        name: user_name(uid).unwrap_or_else(|| uid.to_string()),
        uid,
        gid,
        group_name: group_name(gid).unwrap_or_else(|| gid.to_string()),
        groups,
    })
}

/// This process's effective uid.
pub fn euid() -> u32 {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_resolves_like_nginx() {
        // `user root;`: the group defaults to the user's name.
        let a = nginx_account("root", None).expect("root exists everywhere");
        assert_eq!((a.uid, a.gid), (0, 0));
        assert_eq!(a.group_name, "root");
        assert!(a.in_group(0));
        assert_eq!(user_name(0).as_deref(), Some("root"));
        assert_eq!(group_name(0).as_deref(), Some("root"));
    }

    #[test]
    fn unknown_names_are_errors() {
        let e = nginx_account("no-such-user-gatelog", None).unwrap_err();
        assert!(e.contains("no user no-such-user-gatelog"), "{e}");
        let e = nginx_account("root", Some("no-such-group-gatelog")).unwrap_err();
        assert!(e.contains("no group no-such-group-gatelog"), "{e}");
    }

    #[test]
    fn own_process_account() {
        let me = process_account(std::process::id()).expect("own /proc entry");
        assert_eq!(me.uid, euid());
    }
}
