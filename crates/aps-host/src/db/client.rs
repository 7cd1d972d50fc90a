//! Runs database client programs: the one place in `db` that starts child processes.
//!
//! Main decision: every client gets a clean environment (fixed `PATH`, `LC_ALL=C.UTF-8`, plus
//! the variables the caller names), stdin fed from a separate thread (so a child that fills its
//! stdout or stderr never deadlocks against us) — or, for a caller's reader that cannot cross
//! threads, fed on the calling thread while stdout is drained on another — stdout captured, sent
//! straight into a file, or streamed into the caller's writer (a dump going into a backup
//! archive: a failing writer closes the pipe, which ends the dumper), and stderr collected in an anonymous temporary file of which only the start is kept for the
//! error message, with every secret of the call replaced by `***`. Credentials are written to
//! temporary 0600 files by [`secret_file`] and referenced by path.
//!
//! Known gap: the programs are looked up in a fixed list of system directories, not in the
//! controller's `PATH`.

use std::ffi::{OsStr, OsString};
use std::io::{self, Read as _, Seek as _, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::DbError;

/// Directories searched for client programs, in order.
const CLIENT_DIRS: &[&str] = &[
    "/usr/local/bin",
    "/usr/bin",
    "/bin",
    "/usr/local/sbin",
    "/usr/sbin",
    "/sbin",
];

/// Most stderr kept for an error message.
const STDERR_KEEP: u64 = 4096;

/// Most stdout captured from a query.
const STDOUT_KEEP: u64 = 1 << 20;

/// The one function that creates client processes; everything else goes through [`run`].
fn client_command(program: &Path) -> Command {
    let mut command = crate::env::bare_command(program);
    command
        .env("PATH", CLIENT_DIRS.join(":"))
        .env("LC_ALL", "C.UTF-8");
    command
}

/// The first of `candidates` found in the client directories.
pub(super) fn find_program(candidates: &[&str]) -> Result<PathBuf, DbError> {
    CLIENT_DIRS
        .iter()
        .flat_map(|dir| candidates.iter().map(move |name| Path::new(dir).join(name)))
        .find(|path| is_executable(path))
        .ok_or_else(|| DbError::ClientMissing {
            candidates: candidates.join("`/`"),
            searched: CLIENT_DIRS.join(":"),
        })
}

/// Whether `path` is an executable regular file.
pub(super) fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    fs_err::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Writes `contents` to a new temporary file readable only by its owner; deleted on drop.
pub(super) fn secret_file(contents: &str) -> Result<tempfile::NamedTempFile, DbError> {
    let io_err = |source| DbError::Io {
        action: "write a temporary credentials file".to_owned(),
        source,
    };
    // `tempfile` creates the file with mode 0600 and O_EXCL.
    let mut file = tempfile::Builder::new()
        .prefix("apsctl-db-")
        .tempfile()
        .map_err(io_err)?;
    file.write_all(contents.as_bytes()).map_err(io_err)?;
    file.flush().map_err(io_err)?;
    Ok(file)
}

/// `--name=value` with a path value, as one argument.
pub(super) fn path_arg(name: &str, path: &Path) -> OsString {
    let mut arg = OsString::from(name);
    arg.push("=");
    arg.push(path.as_os_str());
    arg
}

/// Writes a child's stdin on the calling thread (for readers that cannot cross threads).
pub(super) type LocalWriter<'a> = Box<dyn FnOnce(&mut dyn Write) -> io::Result<()> + 'a>;

/// What the child reads on stdin.
pub(super) enum Input<'a> {
    /// Nothing (stdin is `/dev/null`).
    Null,
    /// These bytes (SQL statements), written from a separate thread.
    Bytes(Vec<u8>),
    /// Whatever the function writes (a dump streamed in), from the calling thread while stdout
    /// is drained on another (stdout must not be `Stream`).
    Local(LocalWriter<'a>),
}

/// Where the child's stdout goes.
pub(super) enum Output<'a> {
    /// Captured (at most 1 MiB) and returned.
    Capture,
    /// Discarded.
    Discard,
    /// Into this writer, as it comes (stdin must not be `Local`).
    Stream(&'a mut dyn Write),
}

/// One run of a client program.
pub(super) struct Invocation<'a> {
    /// The program (absolute path from [`find_program`]).
    pub program: &'a Path,
    /// Its arguments (never a secret).
    pub args: Vec<OsString>,
    /// Extra environment variables (never a secret value; paths to secret files are fine).
    pub env: Vec<(&'static str, OsString)>,
    /// Its stdin.
    pub stdin: Input<'a>,
    /// Its stdout.
    pub stdout: Output<'a>,
    /// What it does, for error messages ("create database `x`").
    pub action: String,
    /// Values to redact from error messages.
    pub secrets: Vec<&'a str>,
}

impl<'a> Invocation<'a> {
    /// An invocation with no arguments, no stdin and captured stdout.
    pub(super) fn new(program: &'a Path, action: impl Into<String>) -> Self {
        Self {
            program,
            args: Vec::new(),
            env: Vec::new(),
            stdin: Input::Null,
            stdout: Output::Capture,
            action: action.into(),
            secrets: Vec::new(),
        }
    }

    /// Adds one argument.
    pub(super) fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }
}

/// Runs the invocation to completion; returns the captured stdout (empty unless captured).
pub(super) fn run(invocation: Invocation<'_>) -> Result<Vec<u8>, DbError> {
    run_inner(invocation).map(|(captured, _)| captured)
}

/// Runs an invocation whose stdout is [`Output::Stream`]; returns the bytes streamed.
pub(super) fn run_streamed(invocation: Invocation<'_>) -> Result<u64, DbError> {
    run_inner(invocation).map(|(_, streamed)| streamed)
}

fn run_inner(invocation: Invocation<'_>) -> Result<(Vec<u8>, u64), DbError> {
    let Invocation {
        program,
        args,
        env,
        stdin,
        stdout,
        action,
        secrets,
    } = invocation;
    let spawn_err = |source| DbError::Spawn {
        program: program.to_owned(),
        action: action.clone(),
        source,
    };

    let mut stderr_file = tempfile::tempfile().map_err(spawn_err)?;
    let (stdout_to, sink) = match stdout {
        Output::Capture => (Stdio::piped(), None),
        Output::Discard => (Stdio::null(), None),
        Output::Stream(sink) => (Stdio::piped(), Some(sink)),
    };
    let mut command = client_command(program);
    command
        .args(&args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(match stdin {
            Input::Null => Stdio::null(),
            Input::Bytes(_) | Input::Local(_) => Stdio::piped(),
        })
        .stdout(stdout_to)
        .stderr(Stdio::from(stderr_file.try_clone().map_err(spawn_err)?));
    let mut child = command.spawn().map_err(spawn_err)?;
    let child_stdin = child.stdin.take();
    let child_stdout = child.stdout.take();

    let mut sink_error = None;
    // What a separate thread feeds (everything but a `Local` writer, which stays here).
    let (local, to_feed): (Option<LocalWriter<'_>>, Option<Vec<u8>>) = match stdin {
        Input::Local(write) => (Some(write), None),
        Input::Null => (None, None),
        Input::Bytes(bytes) => (None, Some(bytes)),
    };
    let (feed, captured, streamed) = std::thread::scope(|scope| {
        if let Some(write) = local {
            // The caller's reader stays on this thread; stdout is drained on another.
            let drain = scope.spawn(move || capture(child_stdout));
            let feed = match child_stdin {
                // `pipe` drops at the end of the arm, closing the child's stdin.
                Some(mut pipe) => write(&mut pipe),
                None => Ok(()),
            };
            let (read, captured) = drain
                .join()
                .unwrap_or_else(|_| (Err(io::Error::other("stdout reader panicked")), Vec::new()));
            return (feed.and(read), captured, 0);
        }
        let feeder = scope.spawn(move || -> io::Result<()> {
            let Some(mut pipe) = child_stdin else {
                return Ok(());
            };
            match to_feed {
                None => Ok(()),
                Some(bytes) => pipe.write_all(&bytes),
            }
            // `pipe` drops here, closing the child's stdin.
        });
        let (read, captured, streamed) = match (sink, child_stdout) {
            (Some(sink), Some(out)) => {
                let (read, streamed) = stream(out, sink, &mut sink_error);
                (read, Vec::new(), streamed)
            }
            (None, out) => {
                let (read, captured) = capture(out);
                (read, captured, 0)
            }
            (Some(_), None) => (Ok(()), Vec::new(), 0),
        };
        let feed = feeder
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("stdin writer panicked")));
        (feed.and(read), captured, streamed)
    });
    let status = child.wait().map_err(spawn_err)?;
    // The writer the output went to failed (a full disk): that is the error, whatever the
    // child made of its closed pipe.
    if let Some(source) = sink_error {
        return Err(DbError::Io {
            action: format!("write the output of `{}` ({action})", program.display()),
            source,
        });
    }
    if !status.success() {
        let mut text = Vec::new();
        // Best effort: an unreadable stderr still leaves the exit status in the message.
        if stderr_file.rewind().is_ok() {
            let _ = (&mut stderr_file).take(STDERR_KEEP).read_to_end(&mut text);
        }
        return Err(DbError::ClientFailed {
            program: program.to_owned(),
            action,
            status: status.to_string(),
            stderr: redact(String::from_utf8_lossy(&text).trim(), &secrets),
        });
    }
    // The child succeeded but we could not feed it everything: the result is incomplete.
    feed.map_err(spawn_err)?;
    Ok((captured, streamed))
}

/// Keeps at most [`STDOUT_KEEP`] bytes of `out` and drains the rest, so a chatty child never
/// blocks on a full pipe.
fn capture(out: Option<std::process::ChildStdout>) -> (io::Result<()>, Vec<u8>) {
    let mut captured = Vec::new();
    let read = match out {
        Some(mut out) => (&mut out)
            .take(STDOUT_KEEP)
            .read_to_end(&mut captured)
            .and_then(|_| io::copy(&mut out, &mut io::sink()))
            .map(drop),
        None => Ok(()),
    };
    (read, captured)
}

/// Copies `out` into `sink` as it comes; returns the read result and the bytes streamed. A
/// failing `sink` is kept in `sink_error` and stops the copy; `out` is dropped at once, so the
/// child sees its pipe closed and ends.
fn stream(
    mut out: std::process::ChildStdout,
    sink: &mut dyn Write,
    sink_error: &mut Option<io::Error>,
) -> (io::Result<()>, u64) {
    let mut buf = vec![0u8; 1 << 16];
    let mut streamed = 0u64;
    loop {
        let n = match out.read(&mut buf) {
            Ok(0) => return (Ok(()), streamed),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return (Err(e), streamed),
        };
        if let Err(e) = sink
            .write_all(&buf[..n])
            .and_then(|()| sink.flush().map(drop))
        {
            *sink_error = Some(e);
            return (Ok(()), streamed);
        }
        streamed += n as u64;
    }
}

/// Replaces every non-empty secret in `text` by `***`.
pub(super) fn redact(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_owned();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        out = out.replace(secret, "***");
    }
    out
}

/// Stdout as trimmed UTF-8 text, or an `UnexpectedOutput` error.
pub(super) fn text(program: &Path, action: &str, stdout: &[u8]) -> Result<String, DbError> {
    String::from_utf8(stdout.to_vec())
        .map(|s| s.trim_end_matches(['\n', '\r']).to_owned())
        .map_err(|_| DbError::UnexpectedOutput {
            program: program.to_owned(),
            action: action.to_owned(),
            output: String::from_utf8_lossy(stdout).chars().take(200).collect(),
        })
}

/// Checks that a query answered exactly `expected` (a login check's `SELECT 1`).
pub(super) fn expect_answer(
    program: &Path,
    action: &str,
    stdout: &[u8],
    expected: &str,
) -> Result<(), DbError> {
    let answer = text(program, action, stdout)?;
    if answer == expected {
        Ok(())
    } else {
        Err(DbError::UnexpectedOutput {
            program: program.to_owned(),
            action: action.to_owned(),
            output: answer.chars().take(200).collect(),
        })
    }
}

/// Parses a one-value answer `0`/`1`/… as a count.
pub(super) fn count(program: &Path, action: &str, stdout: &[u8]) -> Result<u64, DbError> {
    let answer = text(program, action, stdout)?;
    answer
        .trim()
        .parse()
        .map_err(|_| DbError::UnexpectedOutput {
            program: program.to_owned(),
            action: action.to_owned(),
            output: answer.chars().take(200).collect(),
        })
}

/// Decodes the hexadecimal text a query printed (`HEX(…)`, `encode(…, 'hex')`) as UTF-8, so that
/// values with tabs, line breaks or `|` survive the clients' plain output formats.
pub(super) fn decode_hex(hex: &str) -> Option<String> {
    if hex.len() % 2 != 0 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// Opens `out` for a dump: created or truncated, mode 0600.
pub(super) fn create_dump_file(out: &Path) -> Result<std::fs::File, DbError> {
    use fs_err::os::unix::fs::OpenOptionsExt as _;
    let file = fs_err::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(out)
        .map_err(|source| DbError::Io {
            action: "create the dump file".to_owned(),
            source,
        })?;
    Ok(file.into_parts().0)
}

/// Removes a partial dump after a failure, keeping the original error.
pub(super) fn discard_partial(out: &Path, error: DbError) -> DbError {
    // The dump error is what matters; a failed cleanup would only hide it.
    let _ = fs_err::remove_file(out);
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_replaces_every_secret() {
        assert_eq!(
            redact("near 'pw1' and 'pw2' pw1", &["pw1", "pw2", ""]),
            "near '***' and '***' ***"
        );
    }

    #[test]
    fn secret_files_are_private_and_removed() {
        use std::os::unix::fs::PermissionsExt as _;
        let file = secret_file("password=x").unwrap();
        let path = file.path().to_owned();
        let mode = fs_err::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(fs_err::read_to_string(&path).unwrap(), "password=x");
        drop(file);
        assert!(!path.exists());
    }

    #[test]
    fn run_feeds_stdin_and_captures_stdout() {
        let cat = find_program(&["cat"]).unwrap();
        let mut inv = Invocation::new(&cat, "echo");
        inv.stdin = Input::Bytes(b"hello".to_vec());
        assert_eq!(run(inv).unwrap(), b"hello");
    }

    #[test]
    fn run_streams_large_input_and_output_without_deadlock() {
        // 8 MiB through `cat`, in from this thread and out into a writer: more than any pipe
        // buffer in both directions.
        let cat = find_program(&["cat"]).unwrap();
        let mut source = std::io::repeat(b'x').take(8 << 20);
        let mut inv = Invocation::new(&cat, "copy");
        inv.stdin = Input::Local(Box::new(|w| io::copy(&mut source, w).map(drop)));
        inv.stdout = Output::Discard;
        run(inv).unwrap();
        let mut sink = Vec::new();
        let sh = find_program(&["sh"]).unwrap();
        let mut inv = Invocation::new(&sh, "print 8 MiB")
            .arg("-c")
            .arg("head -c 8388608 /dev/zero");
        inv.stdout = Output::Stream(&mut sink);
        assert_eq!(run_streamed(inv).unwrap(), 8 << 20);
        assert_eq!(sink.len(), 8 << 20);
    }

    #[test]
    fn a_failing_sink_stops_the_child_and_is_the_error() {
        struct Full(usize);
        impl Write for Full {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                if self.0 < buf.len() {
                    return Err(io::Error::other("no space left"));
                }
                self.0 -= buf.len();
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let sh = find_program(&["sh"]).unwrap();
        let mut sink = Full(1 << 20);
        let mut inv = Invocation::new(&sh, "print forever")
            .arg("-c")
            .arg("cat /dev/zero");
        inv.stdout = Output::Stream(&mut sink);
        let err = run_streamed(inv).unwrap_err().to_string();
        assert!(err.contains("print forever"), "{err}");
    }

    #[test]
    fn oversized_stdout_is_cut_without_blocking_the_child() {
        let sh = find_program(&["sh"]).unwrap();
        let inv = Invocation::new(&sh, "print a lot")
            .arg("-c")
            .arg("head -c 3000000 /dev/zero");
        assert_eq!(run(inv).unwrap().len(), 1 << 20);
    }

    #[test]
    fn failures_report_status_and_redacted_stderr() {
        let sh = find_program(&["sh"]).unwrap();
        let mut inv = Invocation::new(&sh, "fail on purpose")
            .arg("-c")
            .arg("echo 'bad password s3cr3t' >&2; exit 3");
        inv.secrets = vec!["s3cr3t"];
        let err = run(inv).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("fail on purpose"), "{msg}");
        assert!(msg.contains("bad password ***"), "{msg}");
        assert!(msg.contains("exit status: 3"), "{msg}");
        assert!(!msg.contains("s3cr3t"));
    }

    #[test]
    fn children_get_a_clean_environment() {
        let env = find_program(&["env"]).unwrap();
        let mut inv = Invocation::new(&env, "print env");
        inv.env = vec![("PGPASSFILE", "/x".into())];
        let out = String::from_utf8(run(inv).unwrap()).unwrap();
        let mut keys: Vec<&str> = out.lines().filter_map(|l| l.split('=').next()).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["LC_ALL", "PATH", "PGPASSFILE"]);
    }

    #[test]
    fn hex_decodes_in_either_case() {
        assert_eq!(
            decode_hex("6C6F63616C686F7374").as_deref(),
            Some("localhost")
        );
        assert_eq!(decode_hex("617c0a62").as_deref(), Some("a|\nb"));
        assert_eq!(decode_hex("").as_deref(), Some(""));
        assert_eq!(decode_hex("2"), None);
        assert_eq!(decode_hex("ZZ"), None);
        assert_eq!(decode_hex("ff"), None, "not UTF-8");
    }

    #[test]
    fn missing_programs_are_named() {
        let err = find_program(&["no-such-client-a", "no-such-client-b"]).unwrap_err();
        assert!(
            err.to_string()
                .contains("no-such-client-a`/`no-such-client-b")
        );
    }
}
