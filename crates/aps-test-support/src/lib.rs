//! Test fixtures shared by apsctl's test suites: package builders and hostile archives.
