//! A request body as it arrived: the frames hyper read, kept as they are. The body is held once
//! (no second copy of a 1 MiB delivery), the MAC is fed frame by frame, and the upstream gets the
//! same frames in one vectored write. Only schemes that parse the body see it joined.

use std::borrow::Cow;
use std::io::IoSlice;

use bytes::{Buf, Bytes, BytesMut};
use smallvec::SmallVec;

/// The exact bytes a sender sent, in the pieces they were read in.
#[derive(Debug, Clone, Default)]
pub struct Body {
    /// Inline up to two: most bodies arrive in one or two frames, and need no allocation here.
    frames: SmallVec<[Bytes; 2]>,
    /// Frames already sent (see the `Buf` impl); all of them are unsent until the body is sent.
    sent: usize,
    /// Bytes left in the unsent frames.
    len: usize,
}

impl Body {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes in order, piece by piece.
    pub fn pieces(&self) -> impl Iterator<Item = &[u8]> {
        self.unsent().iter().map(|frame| &frame[..])
    }

    fn unsent(&self) -> &[Bytes] {
        &self.frames[self.sent..]
    }

    /// The whole body in one slice: borrowed when it arrived in one piece, else joined (a copy,
    /// made only for schemes that parse the body).
    pub fn contiguous(&self) -> Cow<'_, [u8]> {
        match self.unsent() {
            [] => Cow::Borrowed(&[]),
            [only] => Cow::Borrowed(only),
            _ => Cow::Owned(self.pieces().collect::<Vec<&[u8]>>().concat()),
        }
    }

    /// The whole body as one `Bytes`: the received frame itself when it arrived in one piece.
    pub fn into_bytes(self) -> Bytes {
        match self.unsent() {
            [only] => only.clone(),
            _ => self.contiguous().into_owned().into(),
        }
    }

    fn push(&mut self, frame: Bytes) {
        if !frame.is_empty() {
            self.len += frame.len();
            self.frames.push(frame);
        }
    }
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Self {
        let mut body = Body::default();
        body.push(bytes);
        body
    }
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Self {
        Bytes::from(bytes).into()
    }
}

impl From<&[u8]> for Body {
    fn from(bytes: &[u8]) -> Self {
        Bytes::copy_from_slice(bytes).into()
    }
}

impl From<&str> for Body {
    fn from(text: &str) -> Self {
        text.as_bytes().into()
    }
}

impl<const N: usize> From<&[u8; N]> for Body {
    fn from(bytes: &[u8; N]) -> Self {
        bytes.as_slice().into()
    }
}

/// Sending: hyper writes the frames with one `writev` (as many as fit) instead of joining them.
impl Buf for Body {
    fn remaining(&self) -> usize {
        self.len
    }

    fn chunk(&self) -> &[u8] {
        self.unsent().first().map_or(&[], |frame| &frame[..])
    }

    fn advance(&mut self, mut count: usize) {
        assert!(count <= self.len, "advanced past the end of the body");
        self.len -= count;
        while count > 0 {
            let front = &mut self.frames[self.sent];
            if count < front.len() {
                front.advance(count);
                return;
            }
            count -= front.len();
            // Sent: its share of hyper's buffer can go now.
            *front = Bytes::new();
            self.sent += 1;
        }
    }

    fn chunks_vectored<'a>(&'a self, slices: &mut [IoSlice<'a>]) -> usize {
        self.unsent().iter().zip(slices.iter_mut()).map(|(frame, slice)| *slice = IoSlice::new(frame)).count()
    }
}

/// Collects a body's frames as they are read, keeping each large frame as hyper cut it and
/// copying small ones together.
///
/// A frame shares hyper's read buffer (up to `max_header_bytes`, hyper's read size), so keeping a
/// small frame could pin a buffer many times its size: a sender trickling its body would make the
/// gateway hold far more than `max_body_bytes`. Frames of at least half the read size are kept,
/// so what a body holds stays under twice its size in the worst case and about its size in
/// practice; smaller ones are copied. A body that arrives whole in one frame is kept, whatever
/// its size: it pins one read buffer, most often the one its head arrived in.
#[derive(Debug)]
pub struct Collector {
    body: Body,
    small: BytesMut,
    keep_from: usize,
    announced: Option<usize>,
}

impl Collector {
    /// `read_size`: the most hyper reads at once (`max_buf_size`, here `max_header_bytes`).
    pub fn new(read_size: usize, announced: Option<usize>) -> Self {
        Self { body: Body::default(), small: BytesMut::new(), keep_from: read_size / 2, announced }
    }

    /// Bytes received so far.
    pub fn len(&self) -> usize {
        self.body.len + self.small.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn push(&mut self, frame: Bytes) {
        // The whole announced body in one frame, as a body that came with its head arrives: it
        // pins one read buffer at most, most often the one its head's fields pin anyway.
        let whole = self.is_empty() && self.announced == Some(frame.len());
        if whole || frame.len() >= self.keep_from {
            self.flush_small();
            self.body.push(frame);
        } else {
            if self.small.is_empty() {
                let rest = self.announced.unwrap_or(0).saturating_sub(self.len());
                self.small.reserve(rest.clamp(frame.len(), self.keep_from));
            }
            self.small.extend_from_slice(&frame);
            if self.small.len() >= self.keep_from {
                self.flush_small();
            }
        }
    }

    pub fn finish(mut self) -> Body {
        self.flush_small();
        self.body
    }

    fn flush_small(&mut self) {
        if !self.small.is_empty() {
            // Taken whole rather than split: a frozen whole buffer needs no shared header.
            self.body.push(std::mem::take(&mut self.small).freeze());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const READ_SIZE: usize = 64;

    fn collect(frames: &[Vec<u8>]) -> Body {
        let mut collector = Collector::new(READ_SIZE, None);
        for frame in frames {
            collector.push(Bytes::copy_from_slice(frame));
        }
        assert_eq!(collector.len(), frames.iter().map(Vec::len).sum::<usize>());
        collector.finish()
    }

    /// What hyper's client does with a body: vectored writes of whatever it is offered, then
    /// `advance` by what the socket took.
    fn send(mut body: Body, max_slices: usize, max_write: usize) -> Vec<u8> {
        let mut sent = Vec::new();
        while body.has_remaining() {
            let mut slices = vec![IoSlice::new(&[]); max_slices];
            let count = body.chunks_vectored(&mut slices);
            assert!(count > 0);
            let offered: Vec<u8> = slices[..count].iter().flat_map(|slice| slice.iter().copied()).collect();
            let written = offered.len().min(max_write);
            sent.extend_from_slice(&offered[..written]);
            body.advance(written);
        }
        sent
    }

    proptest! {
        #[test]
        fn the_body_is_the_bytes_received_in_order(
            frames in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 0..20),
            max_slices in 1usize..8,
            max_write in 1usize..300,
        ) {
            let whole: Vec<u8> = frames.concat();
            let body = collect(&frames);
            prop_assert_eq!(body.len(), whole.len());
            prop_assert_eq!(&body.contiguous()[..], &whole[..]);
            prop_assert_eq!(body.pieces().collect::<Vec<_>>().concat(), whole.clone());
            prop_assert_eq!(send(body, max_slices, max_write), whole);
        }

        #[test]
        fn small_frames_are_joined_so_few_pieces_are_held(
            frames in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..READ_SIZE / 2), 1..200),
        ) {
            let body = collect(&frames);
            // Every piece but the last is at least half a read: no small frame pins a buffer.
            let pieces: Vec<&[u8]> = body.pieces().collect();
            prop_assert!(pieces[..pieces.len() - 1].iter().all(|piece| piece.len() >= READ_SIZE / 2));
        }
    }

    #[test]
    fn a_body_that_arrives_whole_is_kept_without_a_copy() {
        let frame = Bytes::from(vec![7; 10]);
        let mut collector = Collector::new(READ_SIZE, Some(frame.len()));
        collector.push(frame.clone());
        assert_eq!(collector.finish().into_bytes().as_ptr(), frame.as_ptr(), "the received frame itself");
        // Only a part of the announced body: small, so copied.
        let mut collector = Collector::new(READ_SIZE, Some(2 * frame.len()));
        collector.push(frame.clone());
        collector.push(frame.clone());
        let body = collector.finish();
        assert_eq!(body.pieces().count(), 1, "joined");
        assert_ne!(body.pieces().next().map(<[u8]>::as_ptr), Some(frame.as_ptr()));
        assert_eq!(body.into_bytes(), [&frame[..], &frame[..]].concat());
    }

    #[test]
    fn large_frames_are_kept_without_a_copy() {
        let frame = Bytes::from(vec![7; READ_SIZE]);
        let mut collector = Collector::new(READ_SIZE, Some(READ_SIZE * 2));
        collector.push(frame.clone());
        collector.push(frame.clone());
        let body = collector.finish();
        let pieces: Vec<&[u8]> = body.pieces().collect();
        assert_eq!(pieces.len(), 2);
        assert!(pieces.iter().all(|piece| piece.as_ptr() == frame.as_ptr()), "the received frame itself");
        assert!(matches!(body.contiguous(), Cow::Owned(_)));
        assert!(matches!(Body::from(frame.clone()).contiguous(), Cow::Borrowed(_)));
        assert_eq!(Body::from(frame.clone()).into_bytes().as_ptr(), frame.as_ptr(), "one frame is not copied");
        assert_eq!(body.into_bytes(), [&frame[..], &frame[..]].concat());
    }
}
