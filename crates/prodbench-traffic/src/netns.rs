//! Sockets inside another process's network namespace: how the generator and the fault proxy
//! reach a local (bubblewrap) sandbox's services, which listen on the sandbox's own loopback.
//!
//! A socket belongs to the network namespace of the thread that creates it, and keeps it for
//! life: once created, it can be connected, accepted on and read from any thread. So one
//! dedicated OS thread per namespace joins it (`setns(fd, CLONE_NEWNET)`, once) and does
//! nothing but create sockets there on request; the runtime's threads never change namespace,
//! and connecting, accepting and I/O happen on the runtime as for any other socket. The
//! thread ends when the last handle to it ([`Netns`] or one of its connectors) is dropped.
//!
//! Privilege: joining a network namespace takes `CAP_SYS_ADMIN` both in the user namespace
//! that owns it and in the caller's own (the kernel's `netns_install`). Root (prodbench on the
//! docker backend, or any root host) has both. An unprivileged process owns the user namespace
//! that bubblewrap created, so it has the first, but not the second: `of_pid` then fails with
//! `EPERM`, and the error says so. (Joining the sandbox's user namespace as well would give
//! both, but a multithreaded process may not change user namespace.)

use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::mpsc;
use std::thread;

use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::oneshot;

use crate::client::{Connecting, Connector};

/// A network namespace, entered by a thread of its own.
#[derive(Debug, Clone)]
pub struct Netns {
    pid: u32,
    jobs: mpsc::Sender<Job>,
}

/// What the namespace's thread does for the runtime.
#[derive(Debug)]
enum Job {
    /// An unconnected TCP socket of `addr`'s family.
    Socket { addr: SocketAddr, reply: oneshot::Sender<io::Result<TcpSocket>> },
    /// A listener bound to `addr` (non-blocking, ready for the runtime).
    Listen { addr: SocketAddr, reply: oneshot::Sender<io::Result<std::net::TcpListener>> },
}

impl Netns {
    /// The network namespace of process `pid` (`/proc/PID/ns/net`). Blocks only while its
    /// thread starts and joins the namespace (well under a millisecond).
    pub fn of_pid(pid: u32) -> io::Result<Netns> {
        let path = format!("/proc/{pid}/ns/net");
        let namespace = File::open(&path).map_err(|e| io::Error::new(e.kind(), format!("open {path}: {e}")))?;
        let (jobs, queue) = mpsc::channel();
        let (joined, entered) = mpsc::sync_channel(1);
        thread::Builder::new().name(format!("netns-{pid}")).spawn(move || {
            let outcome = enter(&namespace).map_err(|e| explain_setns(&path, e));
            let ok = outcome.is_ok();
            joined.send(outcome).ok();
            if ok {
                serve(queue);
            }
        })?;
        entered.recv().map_err(|_| io::Error::other("the namespace thread ended before joining"))??;
        Ok(Netns { pid, jobs })
    }

    /// The process whose namespace this is.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Opens connections from inside the namespace: `addr` is as the namespace sees it
    /// (`127.0.0.1:8080` is the sandbox's loopback, not the host's).
    pub fn connector(&self) -> NetnsConnector {
        NetnsConnector { netns: self.clone() }
    }

    /// A listener bound to `addr` inside the namespace, accepting on the runtime.
    pub async fn listen(&self, addr: SocketAddr) -> io::Result<TcpListener> {
        let listener = self.ask(|reply| Job::Listen { addr, reply }).await?;
        TcpListener::from_std(listener)
    }

    async fn ask<T>(&self, job: impl FnOnce(oneshot::Sender<io::Result<T>>) -> Job) -> io::Result<T> {
        let (reply, answer) = oneshot::channel();
        let gone = || io::Error::other(format!("the thread in the network namespace of pid {} is gone", self.pid));
        self.jobs.send(job(reply)).map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

/// A [`Connector`] whose sockets are created inside a [`Netns`], then connected on the runtime.
#[derive(Debug, Clone)]
pub struct NetnsConnector {
    netns: Netns,
}

impl Connector for NetnsConnector {
    fn connect(&self, addr: SocketAddr) -> Connecting {
        let netns = self.netns.clone();
        Box::pin(async move {
            let socket = netns.ask(|reply| Job::Socket { addr, reply }).await?;
            socket.connect(addr).await
        })
    }
}

fn enter(namespace: &File) -> io::Result<()> {
    // SAFETY: `namespace` is an open file for the call's duration; setns changes only the
    // calling thread's network namespace (CLONE_NEWNET), and this thread is ours alone.
    if unsafe { libc::setns(namespace.as_raw_fd(), libc::CLONE_NEWNET) } == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

fn explain_setns(path: &str, error: io::Error) -> io::Error {
    let hint = if error.raw_os_error() == Some(libc::EPERM) {
        " (joining a network namespace needs CAP_SYS_ADMIN in the user namespace that owns it and in our own: run as root)"
    } else {
        ""
    };
    io::Error::new(error.kind(), format!("setns into {path}: {error}{hint}"))
}

/// Creates sockets until every handle is dropped.
fn serve(queue: mpsc::Receiver<Job>) {
    for job in queue {
        match job {
            Job::Socket { addr, reply } => {
                let socket = if addr.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() };
                reply.send(socket).ok();
            }
            Job::Listen { addr, reply } => {
                let listener = std::net::TcpListener::bind(addr).and_then(|listener| listener.set_nonblocking(true).map(|()| listener));
                reply.send(listener.map_err(|e| io::Error::new(e.kind(), format!("listen on {addr}: {e}")))).ok();
            }
        }
    }
}
