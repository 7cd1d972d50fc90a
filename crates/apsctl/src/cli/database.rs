//! `apsctl database kept` and `apsctl database drop`: databases kept after their instance was
//! removed (`remove --keep-databases`).
use std::fmt::Write as _;
use std::process::ExitCode;

use aps_ops::shown;
use clap::Subcommand;
use serde_json::json;

use crate::output::Printer;

/// `database` commands.
#[derive(Debug, Clone, Copy, Subcommand)]
pub enum DatabaseCmd {
    /// List the databases kept after their instance was removed (never their passwords).
    Kept,
    /// Drop a kept database and its login, and forget it.
    Drop {
        /// The kept database's id (from `database kept`).
        id: i64,
    },
}

/// Runs a `database` command.
pub fn run(cmd: DatabaseCmd, s: super::Session, out: &Printer) -> anyhow::Result<ExitCode> {
    let ctx = s.context()?;
    match cmd {
        DatabaseCmd::Kept => {
            let list = aps_ops::database::kept(&ctx)?;
            out.data(&json!({ "databases": list }), || {
                let mut t = String::new();
                if list.is_empty() {
                    t.push_str("no kept databases");
                }
                for k in &list {
                    let _ = writeln!(
                        t,
                        "{}\t{} `{}` login `{}` on {}\t(instance {} of site {}, db:id {})",
                        k.id,
                        shown::name(&k.kind),
                        shown::name(&k.name),
                        shown::name(&k.login),
                        shown::name(k.server.as_deref().unwrap_or("-")),
                        shown::name(&k.instance),
                        shown::name(&k.site),
                        shown::name(&k.db_id)
                    );
                }
                t
            })?;
        }
        DatabaseCmd::Drop { id } => {
            let dropped = aps_ops::database::drop_kept(&ctx, id)?;
            out.data(&serde_json::to_value(&dropped)?, || {
                format!(
                    "dropped kept database {} ({} `{}`, login `{}`)",
                    dropped.id,
                    shown::name(&dropped.kind),
                    shown::name(&dropped.name),
                    shown::name(&dropped.login)
                )
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
