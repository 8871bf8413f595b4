//! Numbers, hex and JSON string bodies appended to a byte buffer without allocating or
//! going through `fmt`: the generator formats a few numbers per line, billions of times.

pub(crate) fn push_u64(buf: &mut Vec<u8>, mut v: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    buf.extend_from_slice(&tmp[i..]);
}

pub(crate) fn push_u64_pad(buf: &mut Vec<u8>, v: u64, w: usize, pad: u8) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    let mut x = v;
    loop {
        i -= 1;
        tmp[i] = b'0' + (x % 10) as u8;
        x /= 10;
        if x == 0 {
            break;
        }
    }
    for _ in (tmp.len() - i)..w {
        buf.push(pad);
    }
    buf.extend_from_slice(&tmp[i..]);
}

pub(crate) fn push_hex(buf: &mut Vec<u8>, v: u64, w: usize) {
    pub(crate) const H: &[u8; 16] = b"0123456789abcdef";
    for i in (0..w).rev() {
        buf.push(H[((v >> (i * 4)) & 15) as usize]);
    }
}

pub(crate) fn json_escape(buf: &mut Vec<u8>, s: &str) {
    for &c in s.as_bytes() {
        match c {
            b'"' => buf.extend_from_slice(b"\\\""),
            b'\\' => buf.extend_from_slice(b"\\\\"),
            b'\n' => buf.extend_from_slice(b"\\n"),
            b'\t' => buf.extend_from_slice(b"\\t"),
            c if c < 0x20 => {
                buf.extend_from_slice(b"\\u00");
                push_hex(buf, c as u64, 2);
            }
            c => buf.push(c),
        }
    }
}
