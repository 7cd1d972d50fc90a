//! apsctl's persistent state in one SQLite database (WAL) under the controller's home.
#![deny(missing_docs)]
