//! Integration tests of the package layer through the real `apsctl` binary: `package lint` over
//! the real-world corpus, build/import/list/show/remove of the example package, hostile archives
//! refused without a trace, removal refused while an instance uses the package, the output contract
//! (`--json` is one document on stdout, reasons are sentences on stderr), and metadata or values
//! that would fail only after deploying, refused up front.
//!
//! Main decision: every test has its own sandbox (home, work folder, `TMPDIR`, `HOME`), so tests
//! run in parallel and "nothing written outside the home" is checked by snapshots.
//!
//! Known gaps: signatures in APP-LIST.xml and add-on (master package) imports are not covered here.
mod contract;
mod hostile;
mod import;
mod in_use;
mod lint;
mod refused_early;
mod support;
mod text_output;
