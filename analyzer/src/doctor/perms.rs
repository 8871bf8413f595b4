//! May an account open a unix socket? connect(2) needs search (x) permission on
//! every directory of the path and write (w) permission on the socket file, decided
//! by the kernel from the owner, group and mode bits and, where present, the POSIX
//! ACL (`system.posix_acl_access`: FPM's `listen.acl_users`/`listen.acl_groups` set
//! one). A substring match of group names (the guide's script) misses all of this.

use std::ffi::CString;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

use super::users::{self, Account};

/// Which permission a step of the path needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Search a directory.
    Search,
    /// Write the socket file (connect).
    Write,
}

impl Need {
    fn bit(self) -> u32 {
        match self {
            Need::Search => 1,
            Need::Write => 2,
        }
    }
}

/// One component of the path, as stat(2) saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub path: PathBuf,
    /// `directory`, `socket`, `regular file`, ...; None when it does not exist.
    pub kind: Option<&'static str>,
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    pub acl: Option<Acl>,
    pub need: Need,
    /// Whether the account has the needed permission (None: could not stat).
    pub allowed: Option<bool>,
    /// The stat error, when there is one.
    pub error: Option<String>,
}

impl Step {
    /// `/run/php root:root 0700 directory` (`+acl` when an ACL is set).
    pub fn describe(&self) -> String {
        format!("{} {}", self.path.display(), self.attrs())
    }

    /// `root:root 0700 directory`, or why it could not be seen.
    pub fn attrs(&self) -> String {
        match self.kind {
            None => self.error.as_deref().unwrap_or("missing").to_string(),
            Some(k) => format!(
                "{}:{} {:04o}{} {k}",
                users::user_name(self.uid).unwrap_or_else(|| self.uid.to_string()),
                users::group_name(self.gid).unwrap_or_else(|| self.gid.to_string()),
                self.mode & 0o7777,
                if self.acl.is_some() { " +acl" } else { "" },
            ),
        }
    }
}

/// A POSIX access ACL (only its entries that decide access).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Acl {
    pub user_obj: u32,
    pub users: Vec<(u32, u32)>,
    pub group_obj: u32,
    pub groups: Vec<(u32, u32)>,
    pub mask: Option<u32>,
    pub other: u32,
}

const ACL_USER_OBJ: u16 = 0x01;
const ACL_USER: u16 = 0x02;
const ACL_GROUP_OBJ: u16 = 0x04;
const ACL_GROUP: u16 = 0x08;
const ACL_MASK: u16 = 0x10;
const ACL_OTHER: u16 = 0x20;

impl Acl {
    /// Parses the kernel's xattr form: a little-endian u32 version (2), then 8-byte
    /// entries (u16 tag, u16 perm, u32 id).
    pub fn parse(b: &[u8]) -> Option<Acl> {
        let version = u32::from_le_bytes(b.get(0..4)?.try_into().ok()?);
        if version != 2 || (b.len() - 4) % 8 != 0 {
            return None;
        }
        let mut acl = Acl::default();
        for e in b[4..].chunks_exact(8) {
            let tag = u16::from_le_bytes([e[0], e[1]]);
            let perm = u32::from(u16::from_le_bytes([e[2], e[3]])) & 7;
            let id = u32::from_le_bytes([e[4], e[5], e[6], e[7]]);
            match tag {
                ACL_USER_OBJ => acl.user_obj = perm,
                ACL_USER => acl.users.push((id, perm)),
                ACL_GROUP_OBJ => acl.group_obj = perm,
                ACL_GROUP => acl.groups.push((id, perm)),
                ACL_MASK => acl.mask = Some(perm),
                ACL_OTHER => acl.other = perm,
                _ => return None,
            }
        }
        Some(acl)
    }
}

/// The kernel's decision (fs/posix_acl.c, fs/namei.c) for `who` wanting `want` (a
/// bit of rwx = 4,2,1) on an inode owned by uid:gid with `mode` and maybe an ACL.
pub fn may(who: &Account, uid: u32, gid: u32, mode: u32, acl: Option<&Acl>, want: u32) -> bool {
    if who.uid == 0 {
        // CAP_DAC_OVERRIDE (search is always granted; write too).
        return true;
    }
    let Some(acl) = acl else {
        let bits = if who.uid == uid {
            mode >> 6
        } else if who.in_group(gid) {
            mode >> 3
        } else {
            mode
        };
        return bits & want == want;
    };
    if who.uid == uid {
        return acl.user_obj & want == want;
    }
    let mask = acl.mask.unwrap_or(7);
    if let Some((_, p)) = acl.users.iter().find(|(id, _)| *id == who.uid) {
        return p & mask & want == want;
    }
    let mut found = false;
    let mut group_perms = Vec::new();
    if who.in_group(gid) {
        found = true;
        group_perms.push(acl.group_obj);
    }
    for (id, p) in &acl.groups {
        if who.in_group(*id) {
            found = true;
            group_perms.push(*p);
        }
    }
    if found {
        return group_perms.iter().any(|p| p & mask & want == want);
    }
    acl.other & want == want
}

fn kind_of(md: &std::fs::Metadata) -> &'static str {
    let t = md.file_type();
    if t.is_dir() {
        "directory"
    } else if t.is_socket() {
        "socket"
    } else if t.is_file() {
        "regular file"
    } else if t.is_fifo() {
        "FIFO"
    } else {
        "special file"
    }
}

/// The access ACL of a path, if it has one.
fn read_acl(path: &Path) -> Option<Acl> {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
    let name = c"system.posix_acl_access";
    let mut buf = [0u8; 1024];
    // SAFETY: c and name are NUL-terminated; buf's length is passed.
    let n = unsafe {
        libc::getxattr(
            c.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast::<libc::c_void>(),
            buf.len(),
        )
    };
    if n <= 0 {
        return None;
    }
    Acl::parse(&buf[..n as usize])
}

/// Every component of `socket` from `/` down, with what `who` may do there. Stops
/// after the first component that does not exist.
pub fn walk(socket: &Path, who: &Account) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut at = PathBuf::new();
    let comps: Vec<Component> = socket.components().collect();
    for (i, c) in comps.iter().enumerate() {
        at.push(c.as_os_str());
        let last = i + 1 == comps.len();
        let need = if last { Need::Write } else { Need::Search };
        match std::fs::metadata(&at) {
            Ok(md) => {
                let acl = read_acl(&at);
                let allowed = may(who, md.uid(), md.gid(), md.mode(), acl.as_ref(), need.bit());
                steps.push(Step {
                    path: at.clone(),
                    kind: Some(kind_of(&md)),
                    uid: md.uid(),
                    gid: md.gid(),
                    mode: md.mode(),
                    acl,
                    need,
                    allowed: Some(allowed),
                    error: None,
                });
            }
            Err(e) => {
                let missing = e.kind() == std::io::ErrorKind::NotFound;
                steps.push(Step {
                    path: at.clone(),
                    kind: None,
                    uid: 0,
                    gid: 0,
                    mode: 0,
                    acl: None,
                    need,
                    allowed: None,
                    error: Some(if missing {
                        "does not exist".to_string()
                    } else {
                        e.to_string()
                    }),
                });
                break;
            }
        }
    }
    steps
}

/// The first step that denies `who`, if any.
pub fn first_denied(steps: &[Step]) -> Option<&Step> {
    steps.iter().find(|s| s.allowed == Some(false))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn www() -> Account {
        Account {
            name: "www-data".into(),
            uid: 33,
            gid: 33,
            group_name: "www-data".into(),
            groups: vec![33, 1001],
        }
    }

    #[test]
    fn mode_bits() {
        let w = www();
        // root:root 0600 socket: denied; www-data:www-data 0660: allowed.
        assert!(!may(&w, 0, 0, 0o140600, None, 2));
        assert!(may(&w, 33, 33, 0o140660, None, 2));
        assert!(may(&w, 0, 33, 0o140660, None, 2));
        // A supplementary group counts (the script's substring grep does not know).
        assert!(may(&w, 0, 1001, 0o140660, None, 2));
        // Owner bits decide for the owner even when other bits would allow.
        assert!(!may(&w, 33, 0, 0o140066, None, 2));
        // A 0700 root directory cannot be searched.
        assert!(!may(&w, 0, 0, 0o040700, None, 1));
        assert!(may(&w, 0, 0, 0o040711, None, 1));
        let root = Account { uid: 0, ..www() };
        assert!(may(&root, 0, 0, 0o140000, None, 2));
    }

    fn acl_bytes(entries: &[(u16, u16, u32)]) -> Vec<u8> {
        let mut b = 2u32.to_le_bytes().to_vec();
        for (t, p, id) in entries {
            b.extend(t.to_le_bytes());
            b.extend(p.to_le_bytes());
            b.extend(id.to_le_bytes());
        }
        b
    }

    #[test]
    fn acls_as_fpm_sets_them() {
        // listen.acl_users = www-data on a root:root 0660 socket:
        // user::rw- user:www-data:rw- group::rw- mask::rw- other::---
        let b = acl_bytes(&[
            (ACL_USER_OBJ, 6, u32::MAX),
            (ACL_USER, 6, 33),
            (ACL_GROUP_OBJ, 6, u32::MAX),
            (ACL_MASK, 6, u32::MAX),
            (ACL_OTHER, 0, u32::MAX),
        ]);
        let acl = Acl::parse(&b).unwrap();
        assert_eq!(acl.users, [(33, 6)]);
        assert!(may(&www(), 0, 0, 0o140660, Some(&acl), 2));
        // The mask limits named entries.
        let masked = Acl {
            mask: Some(4),
            ..acl.clone()
        };
        assert!(!may(&www(), 0, 0, 0o140660, Some(&masked), 2));
        // A matching group entry without the bit denies (no fall-through to other).
        let g = Acl::parse(&acl_bytes(&[
            (ACL_USER_OBJ, 6, 0),
            (ACL_GROUP_OBJ, 6, 0),
            (ACL_GROUP, 4, 1001),
            (ACL_MASK, 6, 0),
            (ACL_OTHER, 6, 0),
        ]))
        .unwrap();
        assert!(!may(&www(), 0, 0, 0o140666, Some(&g), 2));
        assert_eq!(Acl::parse(&[1, 0, 0, 0]), None);
        assert_eq!(Acl::parse(&[2, 0, 0, 0, 1]), None);
    }

    #[test]
    fn walk_stops_at_the_missing_component() {
        let steps = walk(Path::new("/proc/no-such-dir/x.sock"), &www());
        assert_eq!(steps.len(), 3);
        assert_eq!(steps[0].kind, Some("directory"));
        assert_eq!(steps[2].kind, None);
        assert_eq!(steps[2].error.as_deref(), Some("does not exist"));
    }
}
