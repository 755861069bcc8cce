//! Real servers a test owns, on a fixed ephemeral port, so it can stop, kill and restart them while
//! the suite's shared servers stay up: a Tansu broker and a redis-server.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free loopback port (bound and released, so the server restarted later gets the same one, and
/// nothing listens on it until then).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_listening(what: &str, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends `signal` (`TERM`, `KILL`) to `child` and reaps it.
fn signal(child: &mut Child, signal: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A tansu broker with its own storage, which can be stopped and started again.
pub struct Broker {
    pub dir: PathBuf,
    pub port: u16,
    child: Option<Child>,
}

impl Broker {
    pub fn start(dir: &Path) -> Broker {
        let mut b = Broker {
            dir: dir.to_path_buf(),
            port: free_port(),
            child: None,
        };
        b.restart();
        b
    }

    /// The bootstrap address, for `kafka.brokers`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn restart(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("tansu.log"))
            .unwrap();
        let child = Command::new("tansu")
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                "sqlite://tansu.db",
            ])
            .current_dir(&self.dir)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start tansu (scripts/test.sh installs it: cargo install tansu)");
        self.child = Some(child);
        wait_listening("tansu", self.port);
    }

    /// Stops the broker with SIGKILL.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// Asks the broker to stop (SIGTERM) without waiting; see [`Broker::exited`]. Tansu 0.6 takes
    /// about 10 s to exit, failing the requests in flight and then refusing connections meanwhile.
    pub fn terminate(&self) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
        }
    }

    /// Whether the broker process has exited (reaping it if so).
    pub fn exited(&mut self) -> bool {
        match self.child.as_mut().map(|c| c.try_wait().unwrap()) {
            None => true,
            Some(None) => false,
            Some(Some(_)) => {
                self.child = None;
                true
            }
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A redis-server with its own directory and an append-only file (`appendfsync everysec`: what a
/// SIGKILL of the process cannot lose, since every write reached the kernel before its reply).
pub struct Redis {
    pub dir: PathBuf,
    pub port: u16,
    child: Option<Child>,
}

impl Redis {
    pub fn start(dir: &Path) -> Redis {
        let mut r = Redis {
            dir: dir.to_path_buf(),
            port: free_port(),
            child: None,
        };
        r.restart();
        r
    }

    /// The URL, for `redis.url`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--dir",
                self.dir.to_str().unwrap(),
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--save",
                "",
                "--logfile",
                "redis.log",
            ])
            .current_dir(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server (scripts/test.sh installs it)");
        self.child = Some(child);
        wait_listening("redis-server", self.port);
    }

    /// Kills the server with SIGKILL: no shutdown save, open connections reset.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            signal(&mut c, "KILL");
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}
