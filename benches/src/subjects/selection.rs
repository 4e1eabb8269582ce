//! What a filtered benchmark run measures: [`Selection`], from the
//! command line or [`FILTER_ENV`].

use super::SUBJECTS;

/// The environment variable that carries a filter to the processes a
/// benchmark binary starts (the callgrind runner's), comma-separated, as
/// the command line's filter would.
pub const FILTER_ENV: &str = "STATIC_CALL_BENCH_FILTER";

/// What a filtered benchmark run measures (`cargo bench -p
/// static-call-bench -- <filter>`, or [`FILTER_ENV`]), and what it marks
/// "not selected" instead of missing.
///
/// A filter `subject/scenario` selects subject `subject` exactly (any,
/// when empty: `indirect/` never selects `plain-indirect`) in the
/// scenarios whose id (`call/hot-1arg`) or directory name
/// (`call-hot-1arg`) contains `scenario`; a filter that is a subject's
/// whole name selects that subject; any other filter selects the
/// scenarios containing it, for every subject. Several filters select
/// what any of them does; none selects everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    filters: Vec<String>,
}

impl Selection {
    /// Every figure.
    pub fn all() -> Selection {
        Selection::default()
    }

    /// The given filters (empty ones ignored).
    pub fn of<S: AsRef<str>>(filters: impl IntoIterator<Item = S>) -> Selection {
        Selection {
            filters: filters
                .into_iter()
                .map(|f| f.as_ref().trim().to_owned())
                .filter(|f| !f.is_empty())
                .collect(),
        }
    }

    /// This process's selection: [`FILTER_ENV`] when set, else the
    /// command line's first argument that is not a flag (what `cargo bench
    /// -- <filter>` passes).
    pub fn current() -> Selection {
        match std::env::var(FILTER_ENV) {
            Ok(v) => Selection::of(v.split(',')),
            Err(_) => Selection::of(command_line_filter()),
        }
    }

    /// The selection [`FILTER_ENV`] carries (everything when unset): for
    /// processes whose command line is not the user's.
    pub fn from_env() -> Selection {
        std::env::var(FILTER_ENV).map_or_else(|_| Selection::all(), |v| Selection::of(v.split(',')))
    }

    /// No filter: everything is selected.
    pub fn is_all(&self) -> bool {
        self.filters.is_empty()
    }

    /// The filters, comma-separated (as [`FILTER_ENV`] takes them).
    pub fn filters(&self) -> String {
        self.filters.join(",")
    }

    /// Whether `subject`'s figure of `scenario` is selected.
    pub fn selects(&self, scenario: &str, subject: &str) -> bool {
        self.is_all() || self.filters.iter().any(|f| selects(f, scenario, subject))
    }

    /// Whether any subject's figure of `scenario` is selected.
    pub fn selects_scenario(&self, scenario: &str) -> bool {
        SUBJECTS.iter().any(|s| self.selects(scenario, s.name))
    }

    /// Why an unselected figure is absent: "not selected (…)".
    pub fn reason(&self) -> String {
        format!(
            "not selected: this run's filter `{}` left it out",
            self.filters.join("`, `")
        )
    }

    /// The entries that mark what this selection leaves out of `scenario`
    /// among `subjects`: none when all are selected, one for the whole
    /// scenario when none is, else one per subject left out.
    pub fn left_out<'a>(
        &self,
        scenario: &str,
        subjects: impl IntoIterator<Item = &'a str>,
        metric: static_call_bundle::Metric,
        instrument: static_call_bundle::Instrument,
    ) -> Vec<static_call_bundle::Missing> {
        let subjects: Vec<&str> = subjects.into_iter().collect();
        let out: Vec<&str> = subjects
            .iter()
            .copied()
            .filter(|s| !self.selects(scenario, s))
            .collect();
        let entry = |subject: Option<&str>| static_call_bundle::Missing {
            scenario: scenario.into(),
            subject: subject.map(Into::into),
            metric,
            instrument,
            reason: self.reason(),
        };
        if out.is_empty() {
            Vec::new()
        } else if out.len() == subjects.len() {
            vec![entry(None)]
        } else {
            out.into_iter().map(|s| entry(Some(s))).collect()
        }
    }
}

/// The command line's filter: the first argument after the program's name
/// that is not a flag.
fn command_line_filter() -> Option<String> {
    std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .filter(|a| !a.is_empty())
}

/// Whether one filter selects `subject`'s figure of `scenario`
/// ([`Selection`] says how).
pub fn selects(filter: &str, scenario: &str, subject: &str) -> bool {
    let known = |name: &str| SUBJECTS.iter().any(|s| s.name == name);
    let in_scenario =
        |f: &str| f.is_empty() || scenario.contains(f) || scenario.replace('/', "-").contains(f);
    match filter.split_once('/') {
        Some((who, what)) if who.is_empty() || known(who) => {
            (who.is_empty() || who == subject) && in_scenario(what)
        }
        _ if known(filter) => filter == subject,
        _ => in_scenario(filter),
    }
}

#[cfg(test)]
mod selection_tests {
    use super::{Selection, selects};

    #[test]
    fn subject_names_match_whole() {
        assert!(selects("indirect/", "call/hot-1arg", "indirect"));
        assert!(!selects("indirect/", "call/hot-1arg", "plain-indirect"));
        assert!(selects("indirect", "module/load", "indirect"));
        assert!(!selects("indirect", "module/load", "plain-indirect"));
        assert!(!selects("direct", "call/hot-1arg", "direct-aa"));
        assert!(selects(
            "plain-indirect/call-hot",
            "call/hot-6arg",
            "plain-indirect"
        ));
        assert!(!selects(
            "plain-indirect/call-hot",
            "call/many-sites",
            "plain-indirect"
        ));
    }

    #[test]
    fn scenarios_match_by_substring() {
        // The scenario's id and its directory name both work, for every
        // subject.
        assert!(selects("call-hot-1arg", "call/hot-1arg", "trampoline"));
        assert!(selects("call/hot-1arg", "call/hot-1arg", "direct"));
        assert!(selects("/update", "update/idle", "inline-patch"));
        assert!(!selects("update", "call/hot-1arg", "inline-patch"));
        assert!(Selection::all().selects("anything", "at-all"));
        let s = Selection::of(["indirect/", "direct/call"]);
        assert!(s.selects("call/hot-1arg", "direct"));
        assert!(s.selects("update/idle", "indirect"));
        assert!(!s.selects("update/idle", "plain-indirect"));
    }

    #[test]
    fn what_is_left_out_is_marked_not_selected() {
        use static_call_bundle::{Instrument, Metric};
        let s = Selection::of(["indirect/"]);
        let m = s.left_out(
            "update/idle",
            ["inline-patch", "indirect", "plain-indirect"],
            Metric::WallTime,
            Instrument::Timer,
        );
        let who: Vec<_> = m.iter().map(|m| m.subject.as_deref()).collect();
        assert_eq!(who, [Some("inline-patch"), Some("plain-indirect")]);
        assert!(m.iter().all(|m| m.reason.starts_with("not selected")));
        // A scenario nobody is selected in: one entry for all of it.
        let s = Selection::of(["call-hot"]);
        let m = s.left_out(
            "update/idle",
            ["inline-patch", "indirect"],
            Metric::WallTime,
            Instrument::Timer,
        );
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].subject, None);
        assert!(
            Selection::all()
                .left_out("x", ["a"], Metric::WallTime, Instrument::Timer)
                .is_empty()
        );
    }
}
