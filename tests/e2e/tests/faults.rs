//! The seven causes, injected for real (see gatelog_e2e::scenarios).

use gatelog_e2e::env::Flavour;
use gatelog_e2e::lab::{Lab, TestResult, Verdict};
use gatelog_e2e::scenarios::{self, Fault, RunError};

use crate::Body;

fn fault_test(fault: Fault, flavour: &Flavour) -> TestResult {
    let lab = Lab::new(flavour, fault.name())?;
    let run = match scenarios::run(fault, &lab) {
        Ok(run) => run,
        Err(RunError::Unavailable(why)) => return Ok(Verdict::Skipped(why)),
        Err(RunError::Failed(e)) => return Err(e),
    };
    // Leave the evidence next to the logs (kept when the test fails).
    run.save(&lab, &lab.prefix.path("out"))?;
    scenarios::verify(&lab, &run)
}

macro_rules! fault_tests {
    ($($fn:ident => $fault:expr),* $(,)?) => {
        $(fn $fn(f: &Flavour) -> TestResult { fault_test($fault, f) })*
        pub fn all() -> Vec<(&'static str, Body)> {
            vec![$(($fault.name(), $fn as Body)),*]
        }
    };
}

fault_tests! {
    fpm_stopped => Fault::FpmStopped,
    fpm_killed => Fault::FpmKilled,
    fpm_tcp_down => Fault::FpmTcpDown,
    socket_permission => Fault::SocketPermission,
    wrong_socket_path => Fault::WrongSocketPath,
    max_children_timeout => Fault::MaxChildrenTimeout,
    max_children_backlog => Fault::MaxChildrenBacklog,
    max_children_tcp_connect_timeout => Fault::MaxChildrenTcpConnectTimeout,
    read_timeout => Fault::ReadTimeout,
    oom_kill => Fault::OomKill,
    segfault => Fault::Segfault,
}
