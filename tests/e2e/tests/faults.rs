//! The seven causes, injected for real (see gatelog_e2e::scenarios).

use gatelog_e2e::env::Flavour;
use gatelog_e2e::lab::{Lab, TestOutcome, TestResult};
use gatelog_e2e::scenarios::{self, Fault, RunError};

use crate::Test;

fn fault_test(fault: Fault, flavour: &Flavour) -> TestResult {
    let lab = Lab::new(flavour, fault.name())?;
    let run = match scenarios::run(fault, &lab) {
        Ok(run) => run,
        Err(RunError::Unavailable(why)) => return Ok(TestOutcome::Skipped(why)),
        Err(RunError::Failed(e)) => return Err(e),
    };
    // Leave the evidence next to the logs (kept when the test fails).
    run.save(&lab, &lab.prefix.path("out"))?;
    scenarios::verify(&lab, &run)
}

/// One test per fault of [`Fault::ALL`], named after it.
pub fn all() -> Vec<Test> {
    Fault::ALL
        .into_iter()
        .map(|fault| Test::new(fault.name(), move |f: &Flavour| fault_test(fault, f)))
        .collect()
}
