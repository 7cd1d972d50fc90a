//! The error type of every operation, sorted into kinds the edges map to exit codes.
use std::path::{Path, PathBuf};

/// What kind of failure an [`Error`] is; the CLI maps it to an exit status, a service to an HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input (a package, a setting, an argument) is not acceptable; nothing was changed.
    Invalid,
    /// The named object does not exist.
    NotFound,
    /// The object exists already, or is in use.
    Conflict,
    /// Another operation holds the instance.
    Busy,
    /// The operation ran and failed (a script, a database server); completed steps were undone.
    Failed,
    /// Something on this machine failed unexpectedly (I/O, a corrupt store).
    Internal,
}

/// An operation's error. Its message is one or more plain sentences naming what is at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file-system call failed.
    #[error("cannot access `{}`", path.display())]
    Io {
        /// The path at fault.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The input was refused; the message says why.
    #[error("{0}")]
    Invalid(String),
    /// Setting values were refused, each with its reason (`API.md`: `details[].setting`).
    #[error("the settings were refused:\n  {}", .0.iter().map(|(id, why)| format!("setting `{id}`: {why}")).collect::<Vec<_>>().join("\n  "))]
    Settings(Vec<(String, String)>),
    /// Something named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Something exists already or is in use.
    #[error("{0}")]
    Conflict(String),
    /// The instance is locked by another live operation.
    #[error("{0}")]
    Busy(String),
    /// The operation failed and was rolled back as far as the message says.
    #[error("{0}")]
    Failed(String),
    /// A file-system call made through `fs_err` failed; its message names the path.
    #[error("{0}")]
    Fs(#[from] std::io::Error),
    /// A folder of a site could not be used (a link planted in the way is refused, not followed).
    #[error(transparent)]
    Site(#[from] aps_host::safedir::SafeDirError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] aps_store::StoreError),
}

impl Error {
    /// The refused settings with their reasons, when this is [`Error::Settings`].
    pub fn refused_settings(&self) -> &[(String, String)] {
        match self {
            Self::Settings(list) => list,
            _ => &[],
        }
    }

    /// An I/O error on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// The category of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Io { .. } | Self::Fs(_) => ErrorKind::Internal,
            Self::Invalid(_) | Self::Settings(_) => ErrorKind::Invalid,
            Self::NotFound(_) => ErrorKind::NotFound,
            Self::Conflict(_) => ErrorKind::Conflict,
            Self::Busy(_) => ErrorKind::Busy,
            Self::Failed(_) | Self::Site(_) => ErrorKind::Failed,
            Self::Store(e) => match e.kind() {
                aps_store::StoreErrorKind::NotFound => ErrorKind::NotFound,
                aps_store::StoreErrorKind::Conflict => ErrorKind::Conflict,
                _ => ErrorKind::Internal,
            },
        }
    }
}

/// `error` and its causes as one line (`a: b: c`), for messages built from another error: the
/// cause (say, "Directory not empty") must reach the user, not only the outer sentence.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
