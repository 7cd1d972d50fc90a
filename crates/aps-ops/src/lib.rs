//! The operations layer: every command of apsctl is one function here.
#![deny(missing_docs)]
