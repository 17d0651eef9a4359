//! Plain HTTP/1 connections that give their buffers back while idle.
//!
//! hyper keeps a read and a write buffer (8 KiB or more each) for the life of a connection, so
//! a thousand idle keep-alive senders would hold 17 MiB doing nothing. Here a connection that
//! has answered everything, flushed its answer and received nothing since is taken apart after
//! [`RELEASE_AFTER`]: hyper's state is dropped, any bytes it had read but not used are kept,
//! and the connection waits for the sender's next write in a small task of its own (512 bytes,
//! half a serving task). A new hyper connection, in a new task, starts when the sender writes.
//!
//! The same timer that watches for idleness enforces `header_read_timeout` on request heads,
//! in place of hyper's header timer (a boxed timer started and stopped for every request).

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf, Bytes};
use http::Request;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

use super::{ConnectionService, Protocols};
use crate::lock;
use crate::watchdog::Watchdog;

/// How long a connection must be idle before its buffers are released: long enough that a
/// busy keep-alive connection never pays for a new hyper connection, short enough that a burst
/// of senders who then idle never holds many buffers at once. The timer looks once per period,
/// so a connection is released after one to two periods of quiet.
pub const RELEASE_AFTER: Duration = Duration::from_millis(20);

/// A plain HTTP/1 connection, with what it needs to start serving again: all an idle
/// connection keeps.
pub(super) struct Connection<S> {
    pub socket: TcpStream,
    pub service: S,
    pub protocols: Arc<Protocols>,
    pub draining: watch::Receiver<bool>,
    pub hard_stopped: watch::Receiver<bool>,
}

/// What the connection has been doing, as seen from its socket and its service.
///
/// Reads and writes only raise flags; the timer reads the clock when it looks at them, once per
/// [`RELEASE_AFTER`], rather than each read and write reading it (two clock reads a request).
/// The times it keeps are therefore up to one period late, which only ever lengthens a wait.
struct Activity {
    /// Bytes were read or written since the timer last looked.
    io_since_check: AtomicBool,
    /// Answer bytes were written since the timer last looked: the wait for the next head began.
    answer_written_since_check: AtomicBool,
    /// Requests whose answer is not ready yet.
    answering: AtomicUsize,
    /// At least one answer was given (the first request is never released mid-head).
    answered: AtomicBool,
    /// Bytes arrived since the last answer was ready: the start of the next request.
    read_since_answer: AtomicBool,
    /// The last write could not complete: answer bytes wait in hyper's buffer.
    write_blocked: AtomicBool,
}

impl Activity {
    fn new(answered: bool) -> Self {
        Self {
            io_since_check: AtomicBool::new(false),
            answer_written_since_check: AtomicBool::new(false),
            answering: AtomicUsize::new(0),
            answered: AtomicBool::new(answered),
            read_since_answer: AtomicBool::new(false),
            write_blocked: AtomicBool::new(false),
        }
    }

    fn note_io(&self) {
        self.io_since_check.store(true, Ordering::Relaxed);
    }

    /// An answer, or part of one, went out: the wait for the next head starts again.
    fn note_answer_written(&self) {
        self.note_io();
        self.answer_written_since_check.store(true, Ordering::Relaxed);
    }

    /// No request is being answered or written: nothing but a head is awaited. (hyper writes an
    /// answer in the same poll that finds it ready, so a ready answer is either written or
    /// `write_blocked`.)
    fn awaiting_head(&self) -> bool {
        self.answering.load(Ordering::Relaxed) == 0 && !self.write_blocked.load(Ordering::Relaxed)
    }

    fn releasable(&self) -> bool {
        self.answered.load(Ordering::Relaxed)
            && self.answering.load(Ordering::Relaxed) == 0
            && !self.read_since_answer.load(Ordering::Relaxed)
            && !self.write_blocked.load(Ordering::Relaxed)
    }
}

/// Serves a new `connection` until it closes, the drain asks it to finish, or the hard stop.
pub(super) async fn serve<S: ConnectionService + Clone + Unpin>(connection: Connection<S>) {
    serve_from(connection, false).await
}

/// Serves `connection`; when it idles, releases hyper's state and moves the wait for the next
/// request to a task of its own (see [`wait_for_request`]). A connection that `answered` before
/// is past its first request, which is never released mid-head.
async fn serve_from<S: ConnectionService + Clone + Unpin>(mut connection: Connection<S>, mut answered: bool) {
    let mut unread = Bytes::new();
    loop {
        let activity = Arc::new(Activity::new(answered));
        let counted = {
            let (activity, service) = (activity.clone(), connection.service.clone());
            let spare: Spare<S::Future> = Arc::default();
            service_fn(move |request: Request<Incoming>| {
                activity.answering.fetch_add(1, Ordering::Relaxed);
                let mut slot = lock(&spare).take().unwrap_or_else(|| Box::pin(None));
                slot.set(Some(service.call(request)));
                Answering { slot: Some(slot), spare: spare.clone(), activity: activity.clone() }
            })
        };
        let transport = Transport { socket: connection.socket, unread, activity: activity.clone() };
        // Boxed, to be taken apart (`into_parts`) once it idles.
        let mut hyper = Box::pin(connection.protocols.http1.serve_connection(TokioIo::new(transport), counted));
        // The last read or write, and when the wait for a request head began, as the timer saw them.
        let started = Instant::now();
        let (mut last_io, mut head_awaited_from) = (started, started);
        let sleep = std::pin::pin!(tokio::time::sleep_until(last_io + RELEASE_AFTER));
        let mut timer = Watchdog::new(sleep);
        let mut drain_started = false;
        let released = loop {
            tokio::select! {
                result = std::future::poll_fn(|cx| hyper.as_mut().poll_without_shutdown(cx)) => match result {
                    Ok(()) => break false,
                    Err(error) => return tracing::debug!(%error, "connection ended with an error"),
                },
                () = &mut timer => {
                    // The drain, the hard stop and the head deadline are looked at here, within
                    // one RELEASE_AFTER, instead of on every wake-up of every request: soon
                    // enough, and thousands of instructions a request cheaper (callgrind).
                    if *connection.hard_stopped.borrow() {
                        return;
                    }
                    let now = Instant::now();
                    if activity.io_since_check.swap(false, Ordering::Relaxed) {
                        last_io = now;
                    }
                    if activity.answer_written_since_check.swap(false, Ordering::Relaxed) {
                        head_awaited_from = now;
                    }
                    let header_read_timeout = connection.protocols.header_read_timeout;
                    if activity.awaiting_head() && now >= head_awaited_from + header_read_timeout {
                        return tracing::debug!("no request head within header_read_timeout; closing the connection");
                    }
                    if !drain_started && *connection.draining.borrow() {
                        drain_started = true;
                        hyper.as_mut().graceful_shutdown();
                    }
                    if now >= last_io + RELEASE_AFTER && !drain_started && activity.releasable() {
                        break true;
                    }
                    timer.reset(now + RELEASE_AFTER);
                }
            }
        };
        let transport = {
            let parts = Pin::into_inner(hyper).into_parts();
            let mut transport = parts.io.into_inner();
            // Bytes hyper read and did not use come first, then any it never read.
            // (An empty `read_buf` still holds hyper's whole buffer: it is dropped here.)
            if released && !parts.read_buf.is_empty() {
                transport.unread = [&parts.read_buf[..], &transport.unread[..]].concat().into();
            }
            transport
        };
        connection.socket = transport.socket;
        if !released {
            // hyper finished the connection (close, HTTP/1.0, drain): say goodbye properly.
            let _ = connection.socket.shutdown().await;
            return;
        }
        super::heap::note_release();
        if transport.unread.is_empty() {
            tokio::spawn(wait_for_request(connection));
            return;
        }
        // The next request has begun: serve it at once.
        (answered, unread) = (true, transport.unread);
    }
}

/// Waits, holding nothing but `connection`, until the sender writes again (then serves it in a
/// new task), the keep-alive timeout passes, or the drain starts (the hard stop comes after).
///
/// A plain function returning a future: an `async fn` would keep a second copy of `connection`,
/// and this future is what every idle connection costs.
#[expect(clippy::manual_async_fn, reason = "an async fn would hold `connection` twice")]
fn wait_for_request<S: ConnectionService + Clone + Unpin>(
    mut connection: Connection<S>,
) -> impl Future<Output = ()> + Send {
    async move {
        let keep_alive = connection.protocols.header_read_timeout.saturating_sub(RELEASE_AFTER);
        let request_began = tokio::select! {
            ready = std::future::poll_fn(|cx| connection.socket.poll_read_ready(cx)) => ready.is_ok(),
            () = tokio::time::sleep(keep_alive) => false,
            // The drain only ever changes to true; an error means it is gone, which ends us too.
            _ = connection.draining.changed() => false,
        };
        if request_began {
            spawn_serve(connection);
        }
    }
}

/// Starts serving `connection` in a task of its own. (A plain function between the two async
/// ones, so neither future's type depends on the other's.)
fn spawn_serve<S: ConnectionService + Clone + Unpin>(connection: Connection<S>) {
    tokio::spawn(serve_from(connection, true));
}

/// A request's answer, counted as given once it is ready.
///
/// hyper takes an idle connection apart only if the service's future is `Unpin`, so the answer
/// runs in a box; the box (a few KB, past the allocator's fast path) is kept for the
/// connection's next request instead of being allocated and freed for each one.
struct Answering<F> {
    /// `None` once the answer was given.
    slot: Option<Slot<F>>,
    /// Where the slot goes back for the next request.
    spare: Spare<F>,
    activity: Arc<Activity>,
}

/// A request's future, in place; `None` between requests.
type Slot<F> = Pin<Box<Option<F>>>;

/// The serving hyper connection's spare slot (dropped with it, so an idle connection keeps none).
type Spare<F> = Arc<Mutex<Option<Slot<F>>>>;

impl<F> Answering<F> {
    /// Drops the future in place and keeps the slot for the next request.
    fn give_back(&mut self) {
        if let Some(mut slot) = self.slot.take() {
            slot.set(None);
            *lock(&self.spare) = Some(slot);
        }
    }
}

impl<F: Future> Future for Answering<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let slot = self.slot.as_mut().expect("an answer is not polled after it was given");
        let answer = slot.as_mut().as_pin_mut().expect("a slot holds its future until given back");
        let response = ready!(answer.poll(cx));
        self.give_back();
        let activity = &self.activity;
        activity.read_since_answer.store(false, Ordering::Relaxed);
        activity.answered.store(true, Ordering::Relaxed);
        activity.answering.fetch_sub(1, Ordering::Relaxed);
        Poll::Ready(response)
    }
}

impl<F> Drop for Answering<F> {
    fn drop(&mut self) {
        self.give_back();
    }
}

/// The socket as hyper sees it: bytes an earlier hyper connection left unread come first.
struct Transport {
    socket: TcpStream,
    unread: Bytes,
    activity: Arc<Activity>,
}

impl AsyncRead for Transport {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if !this.unread.is_empty() {
            let n = this.unread.len().min(buf.remaining());
            buf.put_slice(&this.unread[..n]);
            this.unread.advance(n);
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.socket).poll_read(cx, buf))?;
        if buf.filled().len() > before {
            this.activity.read_since_answer.store(true, Ordering::Relaxed);
            this.activity.note_io();
        }
        Poll::Ready(Ok(()))
    }
}

impl Transport {
    /// hyper flushes whenever it is polled, so only bytes written count as activity.
    fn note_write(&self, polled: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        self.activity.write_blocked.store(polled.is_pending(), Ordering::Relaxed);
        if matches!(polled, Poll::Ready(Ok(written)) if written > 0) {
            self.activity.note_answer_written();
        }
        polled
    }
}

impl AsyncWrite for Transport {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.socket).poll_write(cx, data);
        self.note_write(polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.socket).poll_write_vectored(cx, bufs);
        self.note_write(polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.socket.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.socket).poll_flush(cx);
        self.activity.write_blocked.store(polled.is_pending(), Ordering::Relaxed);
        polled
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.socket).poll_shutdown(cx)
    }
}
