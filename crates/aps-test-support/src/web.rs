//! Real nginx, Apache httpd and PHP-FPM servers for integration tests, each on a free loopback
//! port in a temporary folder of its own, stopped when dropped.
//!
//! Main decision: no systemd, no Debian wrapper (`apachectl`, `/etc/apache2/envvars`,
//! `/etc/nginx/nginx.conf`) and no shared state. Each server gets a main configuration written
//! from scratch into its temporary folder, which also holds its pid file, error log, lock files
//! and (nginx) temporary paths; the binaries are run directly (`/usr/sbin/nginx`,
//! `/usr/sbin/apache2`, the newest `/usr/sbin/php-fpm*`). The system's own nginx or Apache, if
//! apt started them on port 80, are neither needed nor touched, and several test servers run side
//! by side. What the caller may change is one folder, [`WebServer::web_dir`], included into the
//! server block / virtual host as `<web_dir>/*.conf`; [`WebServer::test_cmd`] and
//! [`WebServer::reload_cmd`] are the shell command lines apsctl would run for this server.
//!
//! Other decisions:
//! - The servers run as root masters with `www-data` workers, as on a real host; the harness
//!   therefore needs root. Its temporary folders are mode 0755 so the workers can reach the
//!   nginx temporary paths and the PHP-FPM socket; nothing in them is secret.
//! - PHP-FPM's socket is owned by `www-data` with mode 0660, so only the web servers' workers
//!   (and root) can connect, as with Debian's default pool.
//! - A port comes from [`free_port`] (bind port 0, drop): another process can take it in between,
//!   so a start that fails with "Address already in use" is retried on a new port.
//! - Reloads (`nginx -s reload`, `apache2 -k graceful`) return before the new configuration is
//!   live, and for a moment old and new workers answer side by side. Each server therefore runs
//!   exactly one worker process (nginx `worker_processes 1`; Apache `StartServers 1` with spare
//!   thread limits that keep one child), so [`WebServer::wait_for_status`] can wait for the
//!   outcome *and* for the master to be down to one child: after it, every answer comes from the
//!   new configuration.
//! - Stopping never parses the configuration (a test may have left a broken one in `web_dir`):
//!   the master's pid from the pid file gets SIGTERM, then SIGKILL after 10 s.
//! - HTTP is spoken over a plain [`TcpStream`] (HTTP/1.0, `Connection: close`), so no client
//!   crate is needed.
//!
//! Known gaps: a test process killed by a signal (no unwinding) leaves its servers running; the
//! docroot must be reachable by `www-data` (and the PHP files readable by the FPM pool's user),
//! which is the caller's job; paths containing a quote, a backslash or a newline are refused.

use std::fmt::Write as _;
use std::fs::Permissions;
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The user the web servers' workers run as, and the owner of the PHP-FPM socket.
const WEB_USER: &str = "www-data";
/// How long a start, a stop or a status change may take.
const PATIENCE: Duration = Duration::from_secs(10);
/// How long [`WebServer::get`] retries a failed connection.
const CONNECT_PATIENCE: Duration = Duration::from_secs(5);
/// The pause between two polls.
const POLL: Duration = Duration::from_millis(50);
/// How many ports a start tries when the one it was given got taken.
const PORT_ATTEMPTS: usize = 3;

const NGINX: &str = "/usr/sbin/nginx";
const APACHE: &str = "/usr/sbin/apache2";
const APACHE_MODULES: &str = "/usr/lib/apache2/modules";
/// The Apache modules loaded, by module name and file. `unixd` and `log_config` are built into
/// Debian's binary and cannot be loaded.
const APACHE_LOAD: &[(&str, &str)] = &[
    ("mpm_event_module", "mod_mpm_event.so"),
    ("authz_core_module", "mod_authz_core.so"),
    ("authz_host_module", "mod_authz_host.so"),
    ("dir_module", "mod_dir.so"),
    ("mime_module", "mod_mime.so"),
    ("alias_module", "mod_alias.so"),
    ("rewrite_module", "mod_rewrite.so"),
    ("proxy_module", "mod_proxy.so"),
    ("proxy_fcgi_module", "mod_proxy_fcgi.so"),
    ("setenvif_module", "mod_setenvif.so"),
    ("headers_module", "mod_headers.so"),
];

/// A PHP-FPM master with one pool, listening on a unix socket in its own temporary folder.
pub struct PhpFpm {
    /// The pool's address as apsctl's `site add --php-fastcgi` takes it: `unix:/abs/path.sock`.
    pub listen: String,
    dir: TempDir,
    child: Child,
}

impl PhpFpm {
    /// Starts php-fpm (the newest `/usr/sbin/php-fpm*` found) in the foreground (`-F`, its own
    /// `-y` config, pid file and error log in a temporary folder) with one pool running as
    /// `user`/`group`, listening on a unix socket that `www-data` (the web servers' workers) can
    /// connect to: `pm = static` with 2 children, `catch_workers_output = yes`, the default
    /// `clear_env`. Waits until the socket exists.
    ///
    /// Panics, with the error log, when php-fpm is missing, exits or makes no socket within 10 s.
    pub fn start(user: &str, group: &str) -> PhpFpm {
        Self::start_with(user, group, &[])
    }

    /// [`PhpFpm::start`] with more lines for the pool's section, e.g.
    /// `php_value[memory_limit] = 64M` or `php_admin_flag[file_uploads] = off`.
    pub fn start_with(user: &str, group: &str, pool_lines: &[&str]) -> PhpFpm {
        assert_root("PhpFpm::start");
        let binary = newest_php_fpm();
        let dir = state_dir("apsctl-php-fpm-");
        let base = dir.path();
        let socket = base.join("php-fpm.sock");
        let error_log = base.join("error.log");
        let config = base.join("php-fpm.conf");
        let text = format!(
            "[global]\n\
             pid = {pid}\n\
             error_log = {log}\n\
             daemonize = no\n\
             \n\
             [test]\n\
             user = {user}\n\
             group = {group}\n\
             listen = {sock}\n\
             listen.owner = {WEB_USER}\n\
             listen.group = {WEB_USER}\n\
             listen.mode = 0660\n\
             pm = static\n\
             pm.max_children = 2\n\
             catch_workers_output = yes\n\
             {extra}",
            extra = pool_lines
                .iter()
                .fold(String::new(), |out, line| out + line + "\n"),
            pid = plain(&base.join("php-fpm.pid")),
            log = plain(&error_log),
            sock = plain(&socket),
        );
        write(&config, &text);
        let output = output_file(base);
        let child = command(&binary)
            .arg("-F")
            .arg("-y")
            .arg(&config)
            .arg("-p")
            .arg(base)
            .stdin(Stdio::null())
            .stdout(output.try_clone().expect("clone the php-fpm output file"))
            .stderr(output)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{}`: {e}", binary.display()));
        let mut fpm = PhpFpm {
            listen: format!("unix:{}", socket.display()),
            dir,
            child,
        };
        let deadline = Instant::now() + PATIENCE;
        while !socket.exists() {
            if let Ok(Some(status)) = fpm.child.try_wait() {
                panic!(
                    "php-fpm exited ({status}) before its socket existed\n{}",
                    fpm.log_text()
                );
            }
            assert!(
                Instant::now() <= deadline,
                "php-fpm made no socket `{}` within 10 s\n{}",
                socket.display(),
                fpm.log_text()
            );
            sleep(POLL);
        }
        fpm
    }

    /// The contents of php-fpm's error log (workers' output included), for failure messages.
    pub fn error_log(&self) -> String {
        self.log_text()
    }

    fn log_text(&self) -> String {
        let base = self.dir.path();
        format!(
            "--- {} ---\n{}--- output ---\n{}",
            base.join("error.log").display(),
            read_lossy(&base.join("error.log")),
            read_lossy(&base.join("output.log"))
        )
    }
}

impl Drop for PhpFpm {
    /// SIGTERM to the master (which ends its workers), SIGKILL after 10 s; always reaped.
    fn drop(&mut self) {
        signal(self.child.id(), "TERM");
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) => sleep(POLL),
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Which server a [`WebServer`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Nginx,
    Apache,
}

/// A running nginx or Apache httpd on `127.0.0.1:port`, configured in its own temporary folder.
pub struct WebServer {
    /// The loopback port it listens on (127.0.0.1).
    pub port: u16,
    /// A folder (root-owned, 0755) whose `*.conf` files are included into the server block
    /// (nginx `include`) or the virtual host (Apache `IncludeOptional`).
    pub web_dir: PathBuf,
    /// A shell command line running the server's own configuration test of this server's main
    /// configuration: exit status 0 if and only if it is valid, errors on stderr.
    pub test_cmd: String,
    /// A shell command line making this server reload its configuration (asynchronously).
    pub reload_cmd: String,
    kind: Kind,
    dir: TempDir,
    pid_file: PathBuf,
    error_log: PathBuf,
}

impl WebServer {
    /// nginx serving `docroot`; its one server block is `listen 127.0.0.1:PORT; server_name _;
    /// root DOCROOT; include WEB_DIR/*.conf;` and nothing else (no location, no index).
    ///
    /// A root master with `user www-data;` workers, daemonised with its pid file, error log and
    /// temporary paths in its own folder, `access_log off`, and nothing from `/etc/nginx` but
    /// `mime.types`. Waits until the port answers; panics with the error log otherwise.
    pub fn nginx(docroot: &Path) -> WebServer {
        start(Kind::Nginx, docroot)
    }

    /// Apache httpd (`mpm_event`) serving `docroot` from a main configuration of its own: the
    /// modules of a minimal working set loaded from `/usr/lib/apache2/modules`, `User`/`Group
    /// www-data`, `Listen 127.0.0.1:PORT`, pid file, error log, mutexes and runtime folder in its
    /// own folder, `TypesConfig /etc/mime.types`, `<Directory />` denied, and one
    /// `<VirtualHost 127.0.0.1:PORT>` with `DocumentRoot DOCROOT`, `<Directory DOCROOT>` granted
    /// (`AllowOverride None`) and `IncludeOptional WEB_DIR/*.conf`. No `DirectoryIndex` is set
    /// (`mod_dir`'s default applies), no access log is written, and one child process serves
    /// (`StartServers 1`, spare threads 1–26 of 25 per child; see the module doc).
    ///
    /// Waits until the port answers; panics with the error log otherwise.
    pub fn apache(docroot: &Path) -> WebServer {
        start(Kind::Apache, docroot)
    }

    /// The contents of the server's error log (for test failure messages).
    pub fn error_log(&self) -> String {
        format!(
            "--- {} ---\n{}--- output ---\n{}",
            self.error_log.display(),
            read_lossy(&self.error_log),
            read_lossy(&self.dir.path().join("output.log"))
        )
    }

    /// GETs `path` (for example `/blog/`) with `Host: localhost` over HTTP/1.0 and returns the
    /// status and the body (lossy UTF-8). Retries failed connections for about 5 s, then panics.
    pub fn get(&self, path: &str) -> (u16, String) {
        let deadline = Instant::now() + CONNECT_PATIENCE;
        loop {
            match http_get(self.port, path) {
                Ok(answer) => return answer,
                Err(e) if Instant::now() > deadline => panic!(
                    "GET {path} on 127.0.0.1:{} ({:?}) failed: {e}\n{}",
                    self.port,
                    self.kind,
                    self.error_log()
                ),
                Err(_) => sleep(POLL),
            }
        }
    }

    /// Polls [`WebServer::get`] every 50 ms for up to 10 s until the status is `status` and the
    /// server has settled, and returns the last answer; the caller asserts on it.
    ///
    /// Reloads are asynchronous, and for a moment the workers of the old configuration still
    /// accept connections beside the new ones: a first answer with the new status does not mean
    /// the next one has it too. So the server counts as settled only once its master has a
    /// single live child again (both servers are configured to run one worker process).
    pub fn wait_for_status(&self, path: &str, status: u16) -> (u16, String) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let answer = self.get(path);
            if (answer.0 == status && self.settled()) || Instant::now() > deadline {
                return answer;
            }
            sleep(POLL);
        }
    }

    /// Whether the master runs exactly one worker process (none left from a reload).
    fn settled(&self) -> bool {
        self.pid().is_some_and(|pid| live_children(pid) == 1)
    }

    /// The master's pid, if its pid file holds one.
    fn pid(&self) -> Option<u32> {
        fs_err::read_to_string(&self.pid_file)
            .ok()
            .and_then(|text| text.trim().parse().ok())
    }
}

impl Drop for WebServer {
    /// SIGTERM to the master named by the pid file (no configuration is parsed, so a broken one
    /// left in `web_dir` does not matter), SIGKILL after 10 s; waits until the master is gone.
    fn drop(&mut self) {
        let Some(pid) = self.pid() else { return };
        signal(pid, "TERM");
        if !wait_gone(pid, PATIENCE) {
            signal(pid, "KILL");
            wait_gone(pid, PATIENCE);
        }
    }
}

/// A free loopback TCP port (binds 127.0.0.1:0, reads the port, drops the socket).
pub fn free_port() -> u16 {
    TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .expect("bind a free port on 127.0.0.1")
        .port()
}

/// Starts a server, on a new port when the last one got taken meanwhile.
fn start(kind: Kind, docroot: &Path) -> WebServer {
    assert_root("WebServer::start");
    assert!(
        docroot.is_absolute(),
        "the docroot `{}` must be absolute",
        docroot.display()
    );
    let mut attempt = 1;
    loop {
        match try_start(kind, docroot) {
            Ok(server) => return server,
            Err(message)
                if attempt < PORT_ATTEMPTS && message.contains("Address already in use") =>
            {
                attempt += 1;
            }
            Err(message) => panic!("{message}"),
        }
    }
}

/// One start on a fresh port and folder; the error message carries the server's logs.
fn try_start(kind: Kind, docroot: &Path) -> Result<WebServer, String> {
    let port = free_port();
    let dir = state_dir(match kind {
        Kind::Nginx => "apsctl-nginx-",
        Kind::Apache => "apsctl-apache-",
    });
    let base = dir.path().to_path_buf();
    let web_dir = base.join("web.d");
    fs_err::create_dir(&web_dir).expect("create the web folder");
    fs_err::set_permissions(&web_dir, Permissions::from_mode(0o755)).expect("chmod the web folder");
    let error_log = base.join("error.log");
    let (pid_file, start, test_cmd, reload_cmd) = match kind {
        Kind::Nginx => {
            let config = base.join("nginx.conf");
            let pid_file = base.join("nginx.pid");
            write(
                &config,
                &nginx_config(&base, port, docroot, &web_dir, &pid_file, &error_log),
            );
            let args = format!(
                "-p {} -c {} -e {}",
                sh_quote(&format!("{}/", base.display())),
                sh_quote(&plain(&config)),
                sh_quote(&plain(&error_log)),
            );
            (
                pid_file,
                format!("{NGINX} {args}"),
                format!("{NGINX} -t {args}"),
                format!("{NGINX} -s reload {args}"),
            )
        }
        Kind::Apache => {
            let config = base.join("apache2.conf");
            let pid_file = base.join("apache2.pid");
            write(
                &config,
                &apache_config(&base, port, docroot, &web_dir, &pid_file, &error_log),
            );
            let args = format!("-f {}", sh_quote(&plain(&config)));
            (
                pid_file,
                format!("{APACHE} -k start {args}"),
                format!("{APACHE} -t {args}"),
                format!("{APACHE} -k graceful {args}"),
            )
        }
    };
    let server = WebServer {
        port,
        web_dir,
        test_cmd,
        reload_cmd,
        kind,
        dir,
        pid_file,
        error_log,
    };
    // Both daemonise: the command returns once the master is set up (Apache binds after that).
    let status = run_shell(&start, &server.dir.path().join("output.log"));
    if !status.success() {
        return Err(format!(
            "`{start}` failed ({status})\n{}",
            server.error_log()
        ));
    }
    let deadline = Instant::now() + PATIENCE;
    loop {
        let pid = server.pid();
        if pid.is_some() && TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(server);
        }
        let dead = pid.is_some_and(|pid| !alive(pid));
        if dead || Instant::now() > deadline {
            return Err(format!(
                "{kind:?} on 127.0.0.1:{port} did not answer within 10 s{}\n{}",
                if dead { " (its master exited)" } else { "" },
                server.error_log()
            ));
        }
        sleep(POLL);
    }
}

fn nginx_config(
    base: &Path,
    port: u16,
    docroot: &Path,
    web_dir: &Path,
    pid_file: &Path,
    error_log: &Path,
) -> String {
    let mut temp_paths = String::new();
    for name in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"] {
        // nginx creates these as root and hands them to the worker user.
        let _ = writeln!(
            temp_paths,
            "    {name}_temp_path \"{}\";",
            plain(&base.join(name))
        );
    }
    format!(
        "user {WEB_USER};\n\
         worker_processes 1;\n\
         daemon on;\n\
         pid \"{pid}\";\n\
         error_log \"{log}\" warn;\n\
         \n\
         events {{\n    worker_connections 64;\n}}\n\
         \n\
         http {{\n\
         \x20   include /etc/nginx/mime.types;\n\
         \x20   default_type application/octet-stream;\n\
         \x20   access_log off;\n\
         {temp_paths}\
         \n\
         \x20   server {{\n\
         \x20       listen 127.0.0.1:{port};\n\
         \x20       server_name _;\n\
         \x20       root \"{root}\";\n\
         \x20       include \"{web}/*.conf\";\n\
         \x20   }}\n\
         }}\n",
        pid = plain(pid_file),
        log = plain(error_log),
        root = plain(docroot),
        web = plain(web_dir),
    )
}

fn apache_config(
    base: &Path,
    port: u16,
    docroot: &Path,
    web_dir: &Path,
    pid_file: &Path,
    error_log: &Path,
) -> String {
    let mut text = format!("ServerRoot \"{}\"\nServerName localhost\n", plain(base));
    for (module, file) in APACHE_LOAD {
        let _ = writeln!(text, "LoadModule {module} {APACHE_MODULES}/{file}");
    }
    let _ = write!(
        text,
        "User {WEB_USER}\n\
         Group {WEB_USER}\n\
         Listen 127.0.0.1:{port}\n\
         PidFile \"{pid}\"\n\
         ErrorLog \"{log}\"\n\
         LogLevel warn\n\
         StartServers 1\n\
         MinSpareThreads 1\n\
         MaxSpareThreads 26\n\
         ThreadsPerChild 25\n\
         Mutex file:{base} default\n\
         DefaultRuntimeDir \"{base}\"\n\
         TypesConfig /etc/mime.types\n\
         \n\
         <Directory />\n\
         \x20   Require all denied\n\
         \x20   AllowOverride None\n\
         </Directory>\n\
         \n\
         <VirtualHost 127.0.0.1:{port}>\n\
         \x20   ServerName localhost\n\
         \x20   DocumentRoot \"{root}\"\n\
         \x20   <Directory \"{root}\">\n\
         \x20       Require all granted\n\
         \x20       AllowOverride None\n\
         \x20   </Directory>\n\
         \x20   IncludeOptional \"{web}/*.conf\"\n\
         </VirtualHost>\n",
        pid = plain(pid_file),
        log = plain(error_log),
        base = plain(base),
        root = plain(docroot),
        web = plain(web_dir),
    );
    text
}

/// One HTTP/1.0 GET; `Err` for any I/O failure or an answer without a status line.
fn http_get(port: u16, path: &str) -> Result<(u16, String), String> {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(PATIENCE))
        .map_err(|e| e.to_string())?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("no HTTP status line in {text:?}"))?;
    let body = text.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    Ok((status, body.to_owned()))
}

/// The newest `/usr/sbin/php-fpm<major>.<minor>` (a plain `php-fpm` counts as the oldest).
fn newest_php_fpm() -> PathBuf {
    let entries = fs_err::read_dir("/usr/sbin").expect("list /usr/sbin");
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let version = name.strip_prefix("php-fpm")?;
            let key: Vec<u32> = if version.is_empty() {
                Vec::new()
            } else {
                version
                    .split('.')
                    .map(str::parse)
                    .collect::<Result<_, _>>()
                    .ok()?
            };
            Some((key, entry.path()))
        })
        .max()
        .map(|(_, path)| path)
        .expect("no /usr/sbin/php-fpm* (apt-get install php-fpm)")
}

/// A temporary folder for a server's state, mode 0755 so its workers can reach what they need.
fn state_dir(prefix: &str) -> TempDir {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("create a temporary folder");
    fs_err::set_permissions(dir.path(), Permissions::from_mode(0o755))
        .expect("chmod the temporary folder");
    dir
}

/// The file collecting a server's stdout and stderr (early errors before its log is open).
fn output_file(base: &Path) -> std::fs::File {
    fs_err::File::create(base.join("output.log"))
        .expect("create the output file")
        .into_parts()
        .0
}

/// Runs `line` through `sh -c` with its output appended to `output`, and returns its status.
fn run_shell(line: &str, output: &Path) -> ExitStatus {
    let file = fs_err::OpenOptions::new()
        .create(true)
        .append(true)
        .open(output)
        .expect("open the output file");
    let file = file.into_parts().0;
    command(Path::new("sh"))
        .arg("-c")
        .arg(line)
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("clone the output file"))
        .stderr(file)
        .status()
        .unwrap_or_else(|e| panic!("cannot run `{line}`: {e}"))
}

/// Sends `SIGname` to `pid` through the shell's `kill`, ignoring failures (it may be gone).
fn signal(pid: u32, name: &str) {
    let _ = command(Path::new("sh"))
        .arg("-c")
        .arg(format!("kill -{name} {pid}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Whether `pid` runs: it exists and is no zombie (a daemon's master is reaped by whoever
/// adopted it, which may take a while or, in containers, never happen).
fn alive(pid: u32) -> bool {
    let Ok(stat) = fs_err::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the command name, which is in parentheses and may contain anything.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    !matches!(state, Some("Z" | "X") | None)
}

/// How many live (not zombie) processes have `parent` as their parent.
fn live_children(parent: u32) -> usize {
    let Ok(entries) = fs_err::read_dir("/proc") else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| {
            let Ok(stat) = fs_err::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // After the command name: state, then the parent's pid.
            let mut fields = stat
                .rsplit_once(')')
                .map_or("", |(_, rest)| rest)
                .split_whitespace();
            let state = fields.next();
            let ppid = fields.next().and_then(|field| field.parse::<u32>().ok());
            ppid == Some(parent) && !matches!(state, Some("Z" | "X"))
        })
        .count()
}

/// Waits until `pid` is gone, at most `patience`; whether it is.
fn wait_gone(pid: u32, patience: Duration) -> bool {
    let deadline = Instant::now() + patience;
    while alive(pid) {
        if Instant::now() > deadline {
            return false;
        }
        sleep(POLL);
    }
    true
}

/// Panics unless the process runs as root (the servers start root masters with other users).
fn assert_root(what: &str) {
    let status = fs_err::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let euid = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1));
    assert_eq!(
        euid,
        Some("0"),
        "{what} needs root (the servers' masters run as root)"
    );
}

/// `path` as text for a configuration file; refuses what would need quoting there.
fn plain(path: &Path) -> String {
    let text = path
        .to_str()
        .unwrap_or_else(|| panic!("`{}` is not UTF-8", path.display()));
    assert!(
        !text.contains(['"', '\n', '\'', '\\']),
        "`{text}` contains a quote, a backslash or a newline"
    );
    text.to_owned()
}

/// `text` single-quoted for `sh` (`plain` paths contain no `'`).
fn sh_quote(text: &str) -> String {
    format!("'{text}'")
}

/// Writes a configuration file, panicking with its path on failure.
fn write(path: &Path, text: &str) {
    fs_err::write(path, text).expect("write a configuration file");
}

/// A file's contents as lossy UTF-8, or a note that it cannot be read.
fn read_lossy(path: &Path) -> String {
    match fs_err::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => format!("({e})\n"),
    }
}

/// The one place this harness starts a program.
#[expect(
    clippy::disallowed_methods,
    reason = "test servers are started by the test harness itself, not through aps_host's Env, \
              which aps-test-support does not depend on"
)]
fn command(program: &Path) -> Command {
    Command::new(program)
}
