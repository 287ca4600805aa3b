//! A TCP byte stream, split into chunks by the input itself: the first byte is a seed for the
//! chunk sizes, the rest is the stream. Framing the chunks must give exactly the frames (and
//! the error) of framing the whole, never panic, and never hold more than one bounded
//! incomplete message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sip_edge::message::{Frame, ParseError, StreamFramer};

/// Small, so the limit is hit often.
const MAX: usize = 2048;

fn frames(chunks: &[&[u8]]) -> (Vec<Frame>, Option<ParseError>) {
    let mut f = StreamFramer::new(MAX);
    let mut out = Vec::new();
    for c in chunks {
        f.push(c);
        loop {
            match f.next_frame() {
                Ok(Some(fr)) => out.push(fr),
                Ok(None) => break,
                Err(e) => return (out, Some(e)),
            }
        }
        assert!(f.buffered() < MAX, "buffered {} of {MAX}", f.buffered());
    }
    (out, None)
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, stream)) = data.split_first() else {
        return;
    };
    let whole = frames(&[stream]);
    // Chunk sizes from a xorshift seeded by the first byte: 1..=seed%64+1 bytes each.
    let mut s = u64::from(seed) | 0x100;
    let span = usize::from(seed % 64) + 1;
    let mut chunks = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let n = 1 + (s as usize) % span.min(rest.len());
        let (a, b) = rest.split_at(n);
        chunks.push(a);
        rest = b;
    }
    let chunked = frames(&chunks);
    assert_eq!(whole, chunked);
    for f in &whole.0 {
        if let Frame::Message(m) = f {
            assert!(m.len() <= MAX);
            assert!(!m.starts_with(b"\r") && !m.starts_with(b"\n"));
        }
    }
});
