//! How operations talk to the person or program that started them.
//!
//! Libraries never print (STYLE practice 6): progress, warnings and questions go through a
//! [`Reporter`] passed in by the edge. The CLI's reporter writes to stderr and asks on a terminal;
//! a service would log instead.

/// What the user chose to do with the instance's files on removal (REFERENCE §8.10 step 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileChoice {
    /// Remove every file and folder under the instance's directories.
    All,
    /// Remove only unchanged application files; keep and list the rest.
    App,
}

/// How far a long operation (a backup, a restore) got, for a progress bar on a terminal or a
/// progress stream of the service.
#[derive(Debug, Clone, Copy)]
pub struct Progress<'a> {
    /// What it is doing (`files`, `database main`, …).
    pub phase: &'a str,
    /// Files done so far.
    pub files: u64,
    /// Bytes done so far.
    pub bytes: u64,
    /// Bytes in all, when known.
    pub total_bytes: Option<u64>,
}

/// The channel from an operation back to its caller.
pub trait Reporter {
    /// Progress of a long operation; called often (the edge decides how often to draw).
    fn progress(&self, _progress: &Progress<'_>) {}
    /// The long operation's progress is over (the edge clears its bar).
    fn progress_done(&self) {}
    /// A step of the operation starts (shown as progress on a terminal).
    fn step(&self, message: &str);
    /// Something the user should know that does not stop the operation.
    fn warn(&self, message: &str);
    /// Asks the removal question of the seed scenario (sub-step 3.2). `None` when nobody can be
    /// asked (no terminal): the operation then refuses rather than guess.
    fn ask_file_choice(&self, kept_preview: &str) -> Option<FileChoice>;
    /// Whether [`Reporter::ask_file_choice`] can reach a person (checked before anything changes).
    fn can_ask(&self) -> bool;
}

/// A reporter that stays silent and can ask nothing (tests, library use).
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Reporter for Silent {
    fn step(&self, _message: &str) {}
    fn warn(&self, _message: &str) {}
    fn ask_file_choice(&self, _kept_preview: &str) -> Option<FileChoice> {
        None
    }
    fn can_ask(&self) -> bool {
        false
    }
}
