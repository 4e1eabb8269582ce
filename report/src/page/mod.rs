//! The page: a frame (head, header, footer) around sections, each
//! described as data ([`Section`]: id, title, intro and its blocks) and
//! rendered by one function, [`section`].
//!
//! HTML is written with maud, which escapes every spliced value; the only
//! text inserted as it is (`PreEscaped`) is our own style sheet and the
//! SVG plotters draws (see [`crate::charts`]).

use maud::{DOCTYPE, Markup, PreEscaped, html};
use static_call_bundle::Mode;

use crate::baseline::Comparison;
use crate::charts::{self, Target};
use crate::fmt;
use crate::input::Input;
use crate::model::{self, Measure, Subject};

mod calls;
mod changes;
mod conformance;
mod counters;
pub(crate) mod figures;
mod machines;
pub(crate) mod parts;
mod polluted;
mod sites;
mod tables;
mod timings;

pub use tables::figure_key;

const CSS: &str = include_str!("../style.css");

/// What every section renders from: the machines, and the subjects across
/// them.
pub(crate) struct Page<'a> {
    pub inputs: &'a [Input],
    pub subjects: &'a [Subject],
}

/// One section of the page, as data.
#[derive(Debug)]
pub struct Section {
    /// Its `id`, the target of its link in the header.
    pub id: &'static str,
    /// Its heading and the link's text.
    pub title: &'static str,
    /// The paragraph under the heading, with `code` in backticks; `None`
    /// where the first block leads.
    pub(crate) intro: Option<&'static str>,
    /// What follows, in order.
    pub(crate) blocks: &'static [Block],
}

/// A part of a section.
pub(crate) enum Block {
    /// Blocks side by side (`<div class="pair">`).
    Pair(&'static [Block]),
    /// One measure against the number of sites, one line per subject and
    /// machine.
    Lines(Lines),
    /// A small table: subjects down, machines across, one measure at one
    /// site count.
    Point {
        /// The measure.
        m: Measure,
        /// The site count.
        sites: Option<u64>,
        /// The table's caption.
        caption: &'static str,
    },
    /// Anything else, drawn by its function.
    Custom(fn(&Page<'_>) -> Markup),
}

impl std::fmt::Debug for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Block::Pair(b) => f.debug_tuple("Pair").field(b).finish(),
            Block::Lines(l) => f.debug_tuple("Lines").field(&l.id).finish(),
            Block::Point { caption, .. } => f.debug_tuple("Point").field(caption).finish(),
            Block::Custom(_) => f.write_str("Custom"),
        }
    }
}

/// A chart of one measure against the number of sites.
pub(crate) struct Lines {
    /// The figure's id (`fig-` before it) and the chart's.
    pub id: &'static str,
    /// The caption.
    pub title: &'static str,
    /// What is drawn.
    pub m: Measure,
    /// Dashed levels: sites, value, label.
    pub targets: &'static [(f64, f64, &'static str)],
    /// Log y whenever every value is positive (latencies); otherwise only
    /// when the values span more than a factor of 20.
    pub log: bool,
}

/// The sections, in page order.
pub const SECTIONS: &[Section] = &[
    crate::summary::SECTION,
    calls::SECTION,
    timings::UPDATES,
    crate::threads::SECTION,
    timings::MODULES,
    timings::MEMORY,
    tables::SECTION,
    counters::SECTION,
    sites::SECTION,
    conformance::SECTION,
    machines::SECTION,
];

/// The whole page.
pub fn render(inputs: &[Input], changes: Option<&Comparison>) -> String {
    let subjects = model::subjects(inputs);
    let page = Page {
        inputs,
        subjects: &subjects,
    };
    let labels: Vec<&str> = inputs.iter().map(|i| i.label.as_str()).collect();
    html! {
        (DOCTYPE) "\n"
        html lang="en" {
            "\n"
            head {
                "\n"
                meta charset="utf-8";
                "\n"
                meta name="viewport" content="width=device-width, initial-scale=1";
                "\n"
                title { "Static calls in userspace: " (labels.join(" · ")) }
                "\n"
                // Our own style sheet, a file of this crate: no input reaches it.
                style { "\n" (PreEscaped(CSS)) }
                "\n"
            }
            "\n"
            body {
                "\n"
                (header(inputs, changes.is_some()))
                main {
                    "\n"
                    @if inputs.is_empty() {
                        p class="nodata" { "No bundle was given." }
                    } @else {
                        @if let Some(c) = changes {
                            (changes::section(c)) "\n"
                        }
                        @for s in SECTIONS {
                            (section(&page, s)) "\n"
                        }
                    }
                }
                "\n"
                footer {
                    "Written by " code { "static-call-report" }
                    " from the bundles named under " a href="#machines" { "Machines and method" }
                    "; it holds everything it shows and needs no network or script."
                }
                "\n"
            }
            "\n"
        }
        "\n"
    }
    .into_string()
}

/// A section: its heading, its intro, its blocks.
fn section(p: &Page<'_>, s: &Section) -> Markup {
    html! {
        section id=(s.id) {
            h2 { (s.title) }
            @if let Some(intro) = s.intro {
                p class="intro" { (parts::code_text(intro)) }
            }
            @for b in s.blocks {
                (block(p, b))
            }
        }
    }
}

/// One block of a section.
fn block(p: &Page<'_>, b: &Block) -> Markup {
    match b {
        Block::Pair(bs) => html! {
            div class="pair" { @for b in *bs { (block(p, b)) } }
        },
        Block::Lines(l) => figures::sites_figure(p, l),
        Block::Point { m, sites, caption } => parts::point_table(p, *m, *sites, caption),
        Block::Custom(f) => f(p),
    }
}

/// A run mode's name.
pub(crate) fn mode(m: Mode) -> &'static str {
    match m {
        Mode::Quick => "quick",
        Mode::Full => "full",
    }
}

fn header(inputs: &[Input], changes: bool) -> Markup {
    let mut commits: Vec<&str> = inputs
        .iter()
        .map(|i| i.bench.machine.commit.as_str())
        .collect();
    commits.sort_unstable();
    commits.dedup();
    let several = inputs.len() > 1;
    html! {
        header {
            "\n"
            h1 { "Static calls in userspace" }
            "\n"
            p class="sub" {
                "static-call implementations against direct and indirect calls"
                @if !inputs.is_empty() {
                    ", on " (inputs.len()) " machine" @if several { "s" } ": "
                    @for (k, i) in inputs.iter().enumerate() {
                        @if k > 0 { "; " }
                        @if several { (charts::swatch(k, "#555")) }
                        b { (i.label) }
                        " (" (fmt::date(&i.bench.machine.date)) ", " (mode(i.bench.run.mode)) " run)"
                    }
                }
                "."
            }
            "\n"
            @if commits.len() > 1 {
                p class="warn" id="commit-warning" {
                    b { "These bundles come from different commits" }
                    " ("
                    @for (k, i) in inputs.iter().enumerate() {
                        @if k > 0 { "; " }
                        (i.label) ": " (i.bench.machine.commit)
                    }
                    "): a difference between columns may be a change of the code, not of the machine."
                }
            }
            nav {
                @if changes { a href="#changes" { "Changes" } }
                @for s in SECTIONS { a href={ "#" (s.id) } { (s.title) } }
            }
            "\n"
        }
        "\n"
    }
}

/// A dashed target level.
pub(crate) fn target(&(x, y, label): &(f64, f64, &str)) -> Target {
    Target {
        x,
        y,
        label: label.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::SECTIONS;

    #[test]
    fn section_ids_are_unique_and_intros_pair_their_backticks() {
        for (k, s) in SECTIONS.iter().enumerate() {
            assert!(
                SECTIONS[..k].iter().all(|o| o.id != s.id),
                "section id {} twice",
                s.id
            );
            // An odd count would print the backticks instead of <code>.
            let ticks = s.intro.map_or(0, |i| i.matches('`').count());
            assert!(
                ticks.is_multiple_of(2),
                "section {}: {ticks} backticks in its intro",
                s.id
            );
        }
    }
}
