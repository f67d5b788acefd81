//! A private, throwaway PostgreSQL cluster for one test: Debian's server binaries (the highest version under
//! /usr/lib/postgresql), a fresh data directory in a temp dir, listening on 127.0.0.1 at a free port with its
//! unix socket inside the temp dir. It can be stopped and started again on the same port and data (to test a
//! database outage). It is stopped when dropped, and a watchdog stops it within a second of this test process
//! ending (or after 10 minutes at most). initdb and postgres refuse to run as root, so when the tests run as
//! root (CI) every server command runs as the `postgres` OS user through `runuser`.
use sqlx::Connection;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The longest any one step (initdb, start, stop, readiness) may take.
const WAIT: Duration = Duration::from_secs(30);

pub struct OwnPostgres {
    /// `postgres://postgres@127.0.0.1:PORT/lk`: an empty database, trust authentication.
    pub url: String,
    port: u16,
    dir: tempfile::TempDir,
    bin: PathBuf,
}

/// `/usr/lib/postgresql/<highest version>/bin`.
fn server_bin() -> PathBuf {
    let mut found: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.split('.').map(|p| p.parse::<u32>().ok()).collect::<Option<Vec<u32>>>()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("pg_ctl").is_file()).then_some((version, bin))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) => bin,
        None => panic!("PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin/initdb): apt-get install postgresql"),
    }
}

fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    // "Uid: real effective saved fs"
    status.lines().find(|l| l.starts_with("Uid:")).and_then(|l| l.split_whitespace().nth(2)) == Some("0")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl OwnPostgres {
    pub async fn start() -> OwnPostgres {
        let bin = server_bin();
        let dir = tempfile::Builder::new().prefix("lk-pg-").tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sock")).unwrap();
        let port = free_port();
        // Built before anything runs, so that a panic below still stops the server (Drop).
        let pg = OwnPostgres { url: format!("postgres://postgres@127.0.0.1:{port}/lk"), port, dir, bin };
        if is_root() {
            let ok = std::process::Command::new("chown").args(["-R", "postgres:postgres"]).arg(pg.dir.path()).status();
            assert!(ok.map(|s| s.success()).unwrap_or(false), "chown -R postgres:postgres {} failed", pg.dir.path().display());
        }
        let data = pg.data();
        pg.run("initdb", &["-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C", "-D", &data]).await;
        pg.watchdog();
        pg.start_server().await;
        let admin = format!("postgres://postgres@127.0.0.1:{port}/postgres");
        pg.wait_ready(&admin).await;
        let mut conn = sqlx::PgConnection::connect(&admin).await.expect("connect to the own PostgreSQL");
        sqlx::query("CREATE DATABASE lk").execute(&mut conn).await.expect("CREATE DATABASE lk");
        let _ = conn.close().await;
        pg
    }

    /// Stops the server (`pg_ctl stop -m fast`): open connections are cut and new ones refused.
    pub async fn stop(&self) {
        let data = self.data();
        self.run("pg_ctl", &["-D", &data, "-m", "fast", "-w", "-t", "30", "stop"]).await;
        assert!(std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err(), "PostgreSQL still accepts connections after stop");
    }

    /// Starts the server again on the same port and data, and waits until it accepts connections.
    pub async fn restart(&self) {
        self.start_server().await;
        self.wait_ready(&self.url).await;
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    async fn start_server(&self) {
        let (data, log) = (self.data(), self.dir.path().join("log").display().to_string());
        let opts = format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", self.port, self.dir.path().join("sock").display());
        self.run("pg_ctl", &["-D", &data, "-o", &opts, "-w", "-t", "30", "-l", &log, "start"]).await;
    }

    /// A server tool, as the `postgres` OS user when we are root. Output goes to `<dir>/commands.out` (not a
    /// pipe: the daemonized server must not keep one of ours open).
    fn command(&self, tool: &str) -> std::process::Command {
        let exe = self.bin.join(tool);
        let mut c = if is_root() {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            std::process::Command::new(exe)
        };
        c.current_dir(self.dir.path()).stdin(Stdio::null());
        c
    }

    async fn run(&self, tool: &str, args: &[&str]) {
        let out = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.path().join("commands.out")).unwrap();
        let mut cmd = self.command(tool);
        cmd.args(args).stdout(out.try_clone().unwrap()).stderr(out);
        let mut cmd = tokio::process::Command::from(cmd);
        cmd.kill_on_drop(true);
        let status = match tokio::time::timeout(WAIT + Duration::from_secs(5), cmd.status()).await {
            Ok(Ok(s)) if s.success() => return,
            Ok(Ok(s)) => format!("exited with {s}"),
            Ok(Err(e)) => format!("could not run ({e}; as root this needs runuser from util-linux; apt-get install postgresql)"),
            Err(_) => "timed out".to_string(),
        };
        panic!("{tool} {args:?} {status}\n--- commands.out ---\n{}\n--- server log ---\n{}", self.tail("commands.out"), self.tail("log"));
    }

    fn tail(&self, file: &str) -> String {
        let text = std::fs::read_to_string(self.dir.path().join(file)).unwrap_or_default();
        text.lines().rev().take(30).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    /// Waits (at most `WAIT`) until `url` answers `SELECT 1`.
    async fn wait_ready(&self, url: &str) {
        let deadline = Instant::now() + WAIT;
        let mut last = String::new();
        while Instant::now() < deadline {
            let attempt = tokio::time::timeout(Duration::from_secs(5), async {
                let mut conn = sqlx::PgConnection::connect(url).await?;
                sqlx::query("SELECT 1").execute(&mut conn).await?;
                conn.close().await
            });
            match attempt.await {
                Ok(Ok(())) => return,
                Ok(Err(e)) => last = e.to_string(),
                Err(_) => last = "connect timed out".into(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("own PostgreSQL not ready at {url} within {WAIT:?}: {last}\n--- server log ---\n{}", self.tail("log"));
    }

    /// Stops the server (`-m immediate`) once this test process is gone, or after 10 minutes; ends by itself
    /// within a second of the data directory disappearing (a normal drop).
    fn watchdog(&self) {
        let runuser = if is_root() { "runuser -u postgres -- " } else { "" };
        let (data, dir) = (self.data(), self.dir.path().display().to_string());
        let pg_ctl = self.bin.join("pg_ctl").display().to_string();
        let script = format!(
            "i=0; while kill -0 {me} 2>/dev/null && [ -d '{data}' ] && [ $i -lt 600 ]; do sleep 1; i=$((i+1)); done; \
             if [ -d '{data}' ]; then {runuser}'{pg_ctl}' -D '{data}' -m immediate -w -t 10 stop; kill -0 {me} 2>/dev/null || rm -rf '{dir}'; fi",
            me = std::process::id()
        );
        let _ = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self
            .command("pg_ctl")
            .args(["-D", data.as_str(), "-m", "immediate", "-w", "-t", "10", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
