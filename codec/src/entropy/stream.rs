//! The framing of one tile's ANS stream: where it starts and must end, its payload bytes, and
//! the early stop of a stream that has run dry.
//!
//! # Start state ([`StreamStart`])
//! The encoder does not start from constriction's empty state 0 but from a state chosen by the
//! container version, and the decoder must end, after the last latent, at exactly that state
//! with no words left ([`close_stream`]): a decoder that runs dry (a truncated payload) or has
//! words left over is caught.
//! - Format version 1 ([`StreamStart::One`]): the state [`INITIAL_STATE`] = 1. The first value
//!   pushed onto it costs about `PRECISION − 1.4` bits whatever its probability.
//! - Format versions 2 and 3 ([`StreamStart::Checksum`]): `2^32 + c`, `c` the tile's checksum
//!   (version 2: the CRC-32 of its canonical pixel bytes; version 3 also covers everything
//!   decoded beside them, see `format::TileCheck`). Starting at or above `2^32` (more than any
//!   probability) makes every push scale the state exactly, so the start-up cost above is gone and the 32 bits of `c`
//!   take its place (version 1 paid both: the start-up in the payload and a 4-byte checksum in
//!   the header). The decoder recomputes `c` from the pixels it decoded and requires the stream
//!   to end at `2^32 + c`; a stream that has no words left and a state below `2^32` can never
//!   get there, so the decoder stops at once ([`check_not_dry`]).
//!
//! # Payload bytes
//! The payload is the coder's `u32` words, little-endian, with the trailing zero bytes of the last
//! word (the high bytes of the coder's top word, never all zero) left out; the decoder restores
//! them, and rejects a payload that ends in a zero byte, so every image has exactly one payload.
//! This stays canonical with either start state: the byte strings that do not end in `00` map
//! one-to-one to the word sequences whose last word is not zero, and a decoder that ends at the
//! start state with no words left has taken, at every step, exactly the inverse of the encoder's
//! step (with a start state `≥ 2^32` the state never drops below `2^32` while words remain), so
//! re-encoding what it decoded gives back the same words.
//!

use constriction::stream::{stack::DefaultAnsCoder, Code};

use crate::{CodecError, Result};

/// The ANS state a version-1 stream starts from and its decoder must end at (see the module docs).
pub const INITIAL_STATE: u64 = 1;

/// The ANS state a version-2 stream with checksum `c` starts from is `CHECKSUM_BASE + c`.
pub const CHECKSUM_BASE: u64 = 1 << 32;

/// Where a tile's ANS stream starts, which is where its decoder must end: the one thing that
/// differs between container versions inside a payload (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StreamStart {
    /// Format version 1: [`INITIAL_STATE`].
    One,
    /// Format versions 2 and 3: [`CHECKSUM_BASE`] plus the tile's checksum
    /// (`format::TileCheck`).
    Checksum(u32),
}

impl StreamStart {
    /// The ANS state.
    pub fn state(self) -> u64 {
        match self {
            StreamStart::One => INITIAL_STATE,
            StreamStart::Checksum(crc) => CHECKSUM_BASE + u64::from(crc),
        }
    }

    /// The smallest state an honest stream of this kind is ever in: a decoder below it with no
    /// words left has run dry ([`check_not_dry`]).
    pub fn floor(self) -> u64 {
        match self {
            StreamStart::One => INITIAL_STATE,
            StreamStart::Checksum(_) => CHECKSUM_BASE,
        }
    }
}

/// A new ANS stream for one tile's payload, at `start`. Push everything in the reverse of the
/// decoding order, then [`finish_stream`].
pub fn start_stream(start: StreamStart) -> DefaultAnsCoder {
    DefaultAnsCoder::from_raw_parts(Vec::new(), start.state())
}

/// The payload bytes of a finished stream (see the module docs).
pub fn finish_stream(coder: DefaultAnsCoder) -> Result<Vec<u8>> {
    let words = coder
        .into_compressed()
        .map_err(|e| CodecError::Internal(format!("ANS flush failed: {e:?}")))?;
    Ok(payload_bytes(&words))
}

/// A payload's ANS stream, ready to pop from; rejects non-canonical payloads.
pub fn open_stream(payload: &[u8]) -> Result<DefaultAnsCoder> {
    DefaultAnsCoder::from_compressed(payload_words(payload)?)
        .map_err(|_| CodecError::CorruptPayload("ends in a zero word".into()))
}

/// Refuses a stream that has run dry: no words left and the state below `floor` (a
/// [`StreamStart::floor`]). Decoding only lowers the state once the words are used up, so such a
/// stream can never end at its start state: the decoder can stop at once instead of decoding
/// garbage to the end.
pub fn check_not_dry(coder: &DefaultAnsCoder, floor: u64) -> Result<()> {
    if coder.state() < floor && coder.bulk().is_empty() {
        return Err(CodecError::CorruptPayload(
            "data exhausted before the last value".into(),
        ));
    }
    Ok(())
}

/// After the last value the stream must be back at `start` with no words left:
/// [`CodecError::CorruptPayload`] if it ran dry or has data left, [`CodecError::PixelChecksum`]
/// if it ends at another checksum.
pub fn close_stream(coder: DefaultAnsCoder, start: StreamStart) -> Result<()> {
    check_finished(coder, start)
}

/// After the last latent the coder must be back at `start` with no words left.
fn check_finished(coder: DefaultAnsCoder, start: StreamStart) -> Result<()> {
    let (words, state) = coder.into_raw_parts();
    if words.is_empty() && state < start.floor() {
        return Err(CodecError::CorruptPayload(
            "data exhausted before the last latent".into(),
        ));
    }
    match start {
        _ if words.is_empty() && state == start.state() => Ok(()),
        StreamStart::Checksum(computed) if words.is_empty() && state >> 32 == 1 => {
            Err(CodecError::PixelChecksum {
                stored: state as u32,
                computed,
            })
        }
        _ => Err(CodecError::CorruptPayload(
            "data does not end with the last latent".into(),
        )),
    }
}

/// The coder's words as little-endian bytes, without the last word's zero high bytes.
fn payload_bytes(words: &[u32]) -> Vec<u8> {
    let mut bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    while bytes.last() == Some(&0) {
        bytes.pop();
    }
    bytes
}

/// Inverse of [`payload_bytes`]; rejects the empty payload and non-canonical trailing zeros.
fn payload_words(payload: &[u8]) -> Result<Vec<u32>> {
    match payload.last() {
        None => return Err(CodecError::CorruptPayload("empty".into())),
        Some(0) => return Err(CodecError::CorruptPayload("ends in a zero byte".into())),
        Some(_) => {}
    }
    let word = |b: &[u8]| {
        let mut w = [0u8; 4];
        w[..b.len()].copy_from_slice(b);
        u32::from_le_bytes(w)
    };
    Ok(payload.chunks(4).map(word).collect())
}
