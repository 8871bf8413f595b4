//! `gatelog-bench-gen measure`: run a command and report its wall time, CPU time and peak
//! RSS. A tiny launcher keeps the peak RSS honest: a child forked from a big process
//! (Python) inherits that process's high-water mark until it execs.

use crate::die;

pub(crate) fn run(args: &[String]) -> ! {
    let (report, cmd) = match args {
        [flag, report, sep, cmd @ ..] if flag == "--report" && sep == "--" && !cmd.is_empty() => {
            (report, cmd)
        }
        _ => die("usage: gatelog-bench-gen measure --report FILE -- COMMAND [ARGS...]"),
    };
    let t0 = std::time::Instant::now();
    let status = std::process::Command::new(&cmd[0])
        .args(&cmd[1..])
        .status()
        .unwrap_or_else(|e| die(&format!("{}: {e}", cmd[0])));
    let wall = t0.elapsed().as_secs_f64();
    // SAFETY: rusage is plain data (all zeroes is a valid value) and getrusage only fills
    // the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; RUSAGE_CHILDREN covers the command, the only child we waited for.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    let cpu = |t: &libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let code = status
        .code()
        .unwrap_or(128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0));
    let text = format!(
        "{{\"wall_s\": {wall:.6}, \"user_s\": {:.6}, \"sys_s\": {:.6}, \"maxrss_kib\": {}, \"exit\": {code}}}\n",
        cpu(&ru.ru_utime),
        cpu(&ru.ru_stime),
        ru.ru_maxrss
    );
    std::fs::write(report, text).unwrap_or_else(|e| die(&format!("{report}: {e}")));
    std::process::exit(code);
}
