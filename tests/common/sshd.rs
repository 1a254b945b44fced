//! A real OpenSSH server on 127.0.0.1 for the hosts tests: its own host key, a throwaway client
//! key as the only authorized one, no password logins, and nothing read from /etc/ssh. The
//! "remote" host is this machine under another HOME and runtime directory (an [`Env`] of its own),
//! which the host's `command` sets with `env` before running corral there.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{DEADLINE, Env, bin};

pub struct Sshd {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Child,
}

const SSHD: &str = "/usr/sbin/sshd";

fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .output()
        .expect("ssh-keygen runs");
    assert!(out.status.success(), "ssh-keygen: {}", String::from_utf8_lossy(&out.stderr));
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

impl Sshd {
    /// A running sshd, or None (said on stderr) where OpenSSH's server is not installed
    /// (`scripts/setup.sh` installs it).
    pub fn start() -> Option<Sshd> {
        if !Path::new(SSHD).exists() {
            eprintln!(
                "skipped: {SSHD} is not installed (scripts/setup.sh installs openssh-server)"
            );
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        keygen(&d.join("host_key"));
        keygen(&d.join("id"));
        std::fs::copy(d.join("id.pub"), d.join("authorized_keys")).unwrap();
        // Run as root, sshd wants its privilege-separation directory.
        let _ = std::fs::create_dir_all("/run/sshd");
        let port = free_port();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nAuthorizedKeysFile {ak}\n\
             PidFile {pid}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
             PermitRootLogin prohibit-password\nAllowTcpForwarding no\nX11Forwarding no\n\
             PrintMotd no\nPrintLastLog no\nLogLevel ERROR\n",
            hk = d.join("host_key").display(),
            ak = d.join("authorized_keys").display(),
            pid = d.join("sshd.pid").display(),
        );
        std::fs::write(d.join("sshd_config"), config).unwrap();
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("sshd.log")).unwrap())
            .spawn()
            .expect("sshd starts");
        let mut s = Sshd { dir, port, child };
        let deadline = Instant::now() + DEADLINE;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = s.child.try_wait() {
                panic!("sshd exited ({status}): {}", s.log());
            }
            assert!(Instant::now() < deadline, "sshd did not listen: {}", s.log());
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(s)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    pub fn key(&self) -> PathBuf {
        self.dir.path().join("id")
    }

    /// The ssh command that logs in to this server as the current user.
    pub fn ssh_argv(&self, port: u16) -> Vec<String> {
        let user = std::env::var("USER")
            .ok()
            .filter(|u| !u.is_empty())
            .or_else(|| {
                let out = Command::new("id").arg("-un").output().ok()?;
                Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
            })
            .unwrap_or_else(|| "root".into());
        [
            "ssh",
            "-p",
            &port.to_string(),
            "-i",
            &self.key().display().to_string(),
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "LogLevel=ERROR",
            &format!("{user}@127.0.0.1"),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    /// `[hosts.NAME]` for `local`'s config, logging in here and running corral as `remote`'s
    /// user would (its HOME, config and runtime directory).
    pub fn host_config(&self, name: &str, remote: &Env) -> String {
        self.host_config_on(name, remote, self.port)
    }

    /// The same, on another port (one nothing listens on, for failures).
    pub fn host_config_on(&self, name: &str, remote: &Env, port: u16) -> String {
        let mut command = vec!["env".to_string()];
        let mut c = Command::new("true");
        remote.apply_env(&mut c);
        for (k, v) in c.get_envs() {
            if let Some(v) = v {
                command.push(format!("{}={}", k.to_string_lossy(), v.to_string_lossy()));
            }
        }
        command.push(bin().to_string());
        format!("[hosts.{name}]\nssh = {:?}\ncommand = {:?}\n", self.ssh_argv(port), command)
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
