//! How sure a diagnosis is, on a small named scale instead of bare numbers, so that
//! the same strength of evidence gets the same number in every cause file and a
//! reader of the report knows what a number means. The JSON report keeps a number
//! (0..1): [`Confidence::value`].

use std::fmt;

/// The levels, weakest first (so `Ord` compares strength).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Confidence {
    /// A guess: almost nothing supports the diagnosis (a cut line, an access-log
    /// status with no error line), or the diagnosis is `unknown` because nothing was
    /// recognised. 0.25.
    Weak,
    /// Two or more causes fit the evidence about equally (ENOENT alone: FPM stopped
    /// or a wrong path; a reset alone: an OOM kill or a crash). The reason names
    /// them and the fix covers each, with the check that tells them apart. 0.5.
    Ambiguous,
    /// The usual reading of what NGINX saw, with no context line to confirm it, or
    /// with evidence that points at the cause only indirectly; another cause stays
    /// possible. 0.7.
    Likely,
    /// A context line supports the cause but does not name this very request or
    /// process (a max_children warning in the window, a crash in the same second),
    /// or NGINX's own line has one meaning but the cause behind it is inferred. 0.85.
    Strong,
    /// The inputs say it outright: the same pid in FPM's exit and the kernel's OOM
    /// kill, FPM's lifecycle line that it was stopped, an errno with one meaning
    /// (EACCES). Not 1.0: logs can still mislead (clock skew, pid reuse). 0.95.
    Certain,
}

impl Confidence {
    /// The number in the reports (0..1).
    pub fn value(self) -> f64 {
        match self {
            Confidence::Weak => 0.25,
            Confidence::Ambiguous => 0.5,
            Confidence::Likely => 0.7,
            Confidence::Strong => 0.85,
            Confidence::Certain => 0.95,
        }
    }

    /// One level lower (Weak stays Weak): the same evidence joined less surely.
    pub fn lower(self) -> Confidence {
        match self {
            Confidence::Certain => Confidence::Strong,
            Confidence::Strong => Confidence::Likely,
            Confidence::Likely => Confidence::Ambiguous,
            Confidence::Ambiguous | Confidence::Weak => Confidence::Weak,
        }
    }

    /// The level's name, as in docs/analyzer.md.
    pub fn name(self) -> &'static str {
        match self {
            Confidence::Weak => "weak",
            Confidence::Ambiguous => "ambiguous",
            Confidence::Likely => "likely",
            Confidence::Strong => "strong",
            Confidence::Certain => "certain",
        }
    }
}

impl fmt::Display for Confidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::Confidence::{self, *};

    #[test]
    fn the_scale_orders_by_value_and_ambiguous_is_at_most_a_half() {
        let all = [Weak, Ambiguous, Likely, Strong, Certain];
        for w in all.windows(2) {
            assert!(w[0] < w[1]);
            assert!(w[0].value() < w[1].value());
        }
        assert!(Ambiguous.value() <= 0.5);
        assert!(all.iter().all(|c| (0.0..=1.0).contains(&c.value())));
    }

    #[test]
    fn lower_steps_down_one_level() {
        assert_eq!(Certain.lower(), Strong);
        assert_eq!(Likely.lower(), Ambiguous);
        assert_eq!(Weak.lower(), Confidence::Weak);
    }
}
