//! Tenant attacks: a site's user — the tenant — is untrusted, owns its document root and runs
//! the package scripts, while apsctl acts on the same files as root. Every test plays the tenant
//! as a real second system user against the real binary (issue 7, the hardening issue, section
//! A; one test per attack):
//!
//! - A1 `issue_7_a1_…`: a configuration script, with a file the tenant planted in its site,
//!   pushes a command into the admin's terminal with `TIOCSTI` (`terminal.rs`).
//! - A2 `issue_7_a2_…`: the tenant swaps a folder above its document root for a link to another
//!   tenant's site after `site add`; `remove --files all` and `install` follow no link
//!   (`paths.rs`).
//! - A3 `issue_7_a3_…`: the tenant points links at another tenant's instance and empty folder to
//!   have its instance installed, claimed or removed there (`paths.rs`).
//! - A4 `issue_7_a4_…`: the tenant opens and `flock`s every file of the home it can reach, to
//!   block operations and make `recover` skip a crashed one (`locks.rs`).
//! - A5 `issue_7_a5_…`: apsctl under `umask 000`, then private metadata tampered with (a script
//!   name leaving the private folder, a group/other-writable file) (`umask.rs`).
//! - A6 `issue_7_a6_…`: the tenant swaps folders for links to root's folders in its instance's
//!   `tmp/`, its SQLite database folder and its instance root, during a removal (`paths.rs`).
//! - A7 `issue_7_a7_…`: the tenant names files in its instance with ESC, OSC 52 and newline +
//!   `error:` to drive the admin's terminal through the removal report (`terminal.rs`).
//! - A8 `issue_7_a8_…`: a script leaves a process behind (`setsid`, double fork) after success,
//!   failure and timeout (`processes.rs`).
//! - Links planted in the site while apsctl deploys or removes files (the first tests of this
//!   area, `links.rs`).
//!
//! Covered elsewhere, not repeated here: `site add`'s refusals (a link on the way to the
//! document root, another site's document root, a parent of every site, `/etc` and other system
//! folders, system accounts such as `daemon`) are `crates/apsctl/tests/sites`
//! (`issue_7_a_docroot_behind_a_planted_link_is_refused`, `issue_7_overlapping_docroots_are_refused`,
//! `issue_7_docroots_of_others_and_of_the_system_are_refused`,
//! `issue_7_system_accounts_are_refused_as_site_users`); the escaping of script output, file
//! names in the removal question and setting values is `crates/apsctl/tests/cli/escapes.rs`
//! (`issue_7_script_output_cannot_drive_the_terminal`, `issue_7_removal_lists_tenant_file_names_escaped`,
//! `issue_7_removal_question_shows_file_names_escaped`, `issue_7_setting_values_are_escaped_in_text_and_json`).
//!
//! Main decision: the attacker is never simulated by root. Files the tenant plants are made by
//! the tenant (`runuser`), hostile code runs as the tenant inside package scripts or as the
//! tenant's own processes, and each test asserts on what a victim — another tenant's files,
//! root's folders, the admin's terminal — looks like afterwards. The fixture is `world.rs`.
//!
//! Known gaps: the chown of a new SQLite database folder at install runs before the tenant can
//! write there, so A6 cannot race it; `aps-host`'s own tests cover that walk
//! (`chown_tree_changes_links_not_their_targets`). Races between apsctl's look at a folder and
//! its use are exercised by a tenant process swapping a folder and a link in a loop: a passing
//! run shows that the moments it hit followed no link, not that every moment was hit.
mod links;
mod locks;
mod paths;
mod processes;
mod terminal;
mod umask;
mod world;
