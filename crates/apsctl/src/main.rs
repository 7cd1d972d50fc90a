//! The `apsctl` command line: a thin edge over `aps_ops`.
fn main() {}
