//! A real authoritative DNS server for the tests: Debian's BIND `named` on 127.0.0.1 at a free port, primary
//! for the zone `test.` with dynamic updates from `nsupdate`. It is killed when dropped, and a watchdog ends
//! it within a second of this test process ending (or after 10 minutes at most).
use std::process::Stdio;
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};

pub struct Bind {
    /// `127.0.0.1:port`, for `--dns-server`.
    pub addr: String,
    port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    for _ in 0..20 {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port for named");
}

impl Bind {
    pub async fn start() -> Bind {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        let port = free_port();
        std::fs::write(
            dir.path().join("named.conf"),
            format!(
                "options {{ directory \"{d}\"; listen-on port {port} {{ 127.0.0.1; }}; listen-on-v6 {{ none; }}; pid-file none;\n\
                 session-keyfile \"{d}/session.key\"; recursion no; dnssec-validation no; allow-query {{ 127.0.0.1; }}; }};\n\
                 controls {{ }};\n\
                 zone \"test\" {{ type primary; file \"{d}/test.zone\"; allow-update {{ 127.0.0.1; }}; check-names ignore; }};\n"
            ),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("test.zone"),
            "$TTL 1\n@ IN SOA ns.test. admin.test. 1 60 60 600 1\n@ IN NS ns.test.\nns IN A 127.0.0.1\n",
        )
        .unwrap();
        let child = Command::new("/usr/sbin/named")
            .args(["-g", "-c"])
            .arg(dir.path().join("named.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("named runs (apt-get install bind9; .ci/install-tools does it)");
        let named_pid = child.id().unwrap();
        // Watchdog: ends named when this test process is gone, or after 10 minutes.
        let _ = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "i=0; while kill -0 {me} 2>/dev/null && [ $i -lt 600 ]; do sleep 1; i=$((i+1)); done; kill {named_pid} 2>/dev/null",
                me = std::process::id()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Bind { addr: format!("127.0.0.1:{port}"), port, child, _dir: dir };
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("named did not start listening on 127.0.0.1:{port} within 10 s");
    }

    async fn nsupdate(&self, commands: &str) {
        let script = format!("server 127.0.0.1 {}\ncheck-names no\nzone test.\n{commands}send\n", self.port);
        let mut child = Command::new("nsupdate").stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("nsupdate runs");
        child.stdin.take().unwrap().write_all(script.as_bytes()).await.unwrap();
        let out = tokio::time::timeout(std::time::Duration::from_secs(20), child.wait_with_output()).await.expect("nsupdate finishes").unwrap();
        assert!(out.status.success(), "nsupdate failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Replaces every TXT value at `name` (a name under `test.`) with `values`.
    pub async fn set_txt(&self, name: &str, values: &[&str]) {
        let mut cmds = format!("update delete {name}. TXT\n");
        for v in values {
            cmds.push_str(&format!("update add {name}. 1 TXT \"{v}\"\n"));
        }
        self.nsupdate(&cmds).await;
    }

    /// Removes every TXT value at `name`; `other` keeps the name existing (an A record) when true.
    pub async fn clear(&self, name: &str, keep_name: bool) {
        let mut cmds = format!("update delete {name}. TXT\n");
        if keep_name {
            cmds.push_str(&format!("update add {name}. 1 A 127.0.0.1\n"));
        } else {
            cmds.push_str(&format!("update delete {name}. A\n"));
        }
        self.nsupdate(&cmds).await;
    }
}

impl Drop for Bind {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
