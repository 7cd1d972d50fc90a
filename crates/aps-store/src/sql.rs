//! Conversions between record values and `SQLite` columns, private to the store.
//!
//! Main decision: enums are stored as the same lowercase text they have in JSON and are checked
//! in Rust when read (an unknown value reads as a [`Corrupt`](crate::StoreErrorKind::Corrupt) error),
//! not by SQL `CHECK` constraints, which `SQLite` cannot alter without rebuilding the table; paths
//! are stored as UTF-8 text so the database stays readable with the `sqlite3` shell.

use std::path::{Path, PathBuf};

use rusqlite::Row;
use rusqlite::types::Type;

use crate::error::{Failure, Repr};

/// An enum kept in a TEXT column; implemented by [`text_enum!`].
pub(crate) trait TextEnum: Sized + Copy {
    /// `table.column`, for error messages.
    const COLUMN: &'static str;
    /// The variant stored as `text`, if any.
    fn from_text(text: &str) -> Option<Self>;
}

/// Declares a public enum kept in a TEXT column: serde, `as_str`, `Display` and [`TextEnum`].
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident in $column:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        $vis enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] $variant, )+
        }

        impl $name {
            /// The text this value has in the database and in JSON.
            $vis fn as_str(self) -> &'static str {
                match self {
                    $( Self::$variant => $text, )+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl $crate::sql::TextEnum for $name {
            const COLUMN: &'static str = $column;
            fn from_text(text: &str) -> Option<Self> {
                match text {
                    $( $text => Some(Self::$variant), )+
                    _ => None,
                }
            }
        }
    };
}
pub(crate) use text_enum;

/// A stored text that names no variant of the enum kept in its column.
#[derive(Debug, thiserror::Error)]
#[error("the store holds `{value}` in `{column}`, which this apsctl does not know")]
struct UnknownValue {
    column: &'static str,
    value: String,
}

/// Reads the enum in column `idx`.
pub(crate) fn enum_at<T: TextEnum>(row: &Row<'_>, idx: usize) -> rusqlite::Result<T> {
    let text: String = row.get(idx)?;
    T::from_text(&text).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            idx,
            Type::Text,
            Box::new(UnknownValue {
                column: T::COLUMN,
                value: text,
            }),
        )
    })
}

/// Reads the enum in column `idx`, which may be NULL.
pub(crate) fn opt_enum_at<T: TextEnum>(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<T>> {
    match row.get_ref(idx)? {
        rusqlite::types::ValueRef::Null => Ok(None),
        _ => enum_at(row, idx).map(Some),
    }
}

/// Reads the path in column `idx`.
pub(crate) fn path_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<PathBuf> {
    row.get::<_, String>(idx).map(PathBuf::from)
}

/// Reads the path in column `idx`, which may be NULL.
pub(crate) fn opt_path_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<PathBuf>> {
    Ok(row.get::<_, Option<String>>(idx)?.map(PathBuf::from))
}

/// The text to store for `path`; refuses a path that is not UTF-8.
pub(crate) fn path_text(path: &Path) -> Result<&str, Failure> {
    path.to_str().ok_or_else(|| {
        Repr::NotUtf8 {
            path: path.to_owned(),
        }
        .into()
    })
}

/// [`path_text`] for an optional path.
pub(crate) fn opt_path_text(path: Option<&Path>) -> Result<Option<&str>, Failure> {
    path.map(path_text).transpose()
}

/// The `SQLite` integer for an unsigned value; refuses one above `i64::MAX`.
pub(crate) fn int(what: &'static str, value: u64) -> Result<i64, Failure> {
    i64::try_from(value).map_err(|_| Repr::TooLarge { what, value }.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    text_enum! {
        /// A test enum.
        enum Colour in "paint.colour" {
            /// Red.
            Red = "red",
            /// Light blue.
            LightBlue = "light_blue",
        }
    }

    #[test]
    fn text_enum_round_trips_and_rejects_unknown_text() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let read =
            |text: &str| conn.query_row("SELECT ?1", [text], |row| enum_at::<Colour>(row, 0));
        assert_eq!(read("light_blue").unwrap(), Colour::LightBlue);
        assert_eq!(Colour::LightBlue.to_string(), "light_blue");
        assert_eq!(
            serde_json::to_string(&Colour::LightBlue).unwrap(),
            "\"light_blue\""
        );
        let err = read("green").unwrap_err();
        let source = std::error::Error::source(&err).unwrap().to_string();
        assert_eq!(
            source,
            "the store holds `green` in `paint.colour`, which this apsctl does not know"
        );
    }

    #[test]
    fn non_utf8_paths_and_huge_sizes_are_refused() {
        use std::os::unix::ffi::OsStrExt;
        let path = Path::new(std::ffi::OsStr::from_bytes(b"/srv/\xff"));
        assert!(
            matches!(path_text(path), Err(Failure::Store(e)) if e.kind() == crate::StoreErrorKind::Invalid)
        );
        assert!(int("size", u64::MAX).is_err());
        assert_eq!(int("size", 7).unwrap(), 7);
    }
}
