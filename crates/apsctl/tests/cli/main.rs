//! Integration tests of the command line's own behaviour through the real `apsctl` binary:
//! untrusted text (script output, tenant file names, setting values) never reaches the terminal
//! raw, a closed standard output ends the command quietly, `--quiet` silences warnings, and
//! setting values come strictly from `--settings-file` (also on standard input) and `--set`.
//!
//! Issue 7 is the hardening issue; its tests are named `issue_7_<what>`.
//!
//! Main decision: every test that installs gets its own site user (`apsctl-itcli-N`), document
//! root and home, removed when the test ends, so tests run in parallel with each other and with
//! the other areas. The example package `examples/hello` (no database) is the application; a
//! hostile variant replaces its configuration script.
//!
//! Known gaps: the removal question is answered through `script(1)`, which gives apsctl a
//! terminal; terminals themselves are not emulated (the tests check the bytes written).
mod escapes;
mod settings_input;
mod streams;
mod support;
