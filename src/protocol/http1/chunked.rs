//! Incremental decoding of a chunked message body (RFC 9112 section 7.1) for a relay that must find
//! where the message ends on a keep-alive connection and the next one begins.

use super::Http1Error;

/// Incremental decoder for one chunked body (RFC 9112 section 7.1).
///
/// Line ends must be CRLF: a bare LF is an error rather than a guess, so a relay that would lose
/// track of the message boundary says so. Chunk extensions and trailer fields are skipped, not kept.
#[derive(Debug, Clone, Default)]
pub struct ChunkedDecoder {
    state: ChunkState,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum ChunkState {
    /// At the start of a chunk-size line.
    #[default]
    SizeStart,
    /// Reading the hex digits of a chunk size.
    Size(u64),
    /// Skipping whitespace and extensions after a chunk size, up to the line's CR.
    Extension(u64),
    /// Read the CR ending a chunk-size line.
    SizeLf(u64),
    /// Copying chunk data; this many bytes remain.
    Data(u64),
    /// Chunk data read; its CR must follow.
    DataCr,
    /// Chunk data and CR read; LF must follow.
    DataLf,
    /// At the start of a trailer field line or of the final empty line.
    TrailerStart,
    /// Inside a trailer field line, up to its CR.
    TrailerLine,
    /// Read the CR ending a trailer field line.
    TrailerLf,
    /// Read the CR of the final empty line; its LF ends the message.
    EndLf,
    Done,
    /// An error was reported; the message's end cannot be found any more.
    Failed(&'static str),
}

impl ChunkedDecoder {
    pub fn new() -> ChunkedDecoder {
        ChunkedDecoder::default()
    }

    /// Decodes the next bytes of the body, appending chunk data to `body`. Returns how many bytes of
    /// `input` belong to this message and whether it has ended; until it ends, all of `input` is
    /// consumed, so the caller never holds bytes back. Once it ends, the bytes from the returned
    /// offset on belong to the next message. After an error, every call returns the same error.
    pub fn feed(&mut self, input: &[u8], body: &mut Vec<u8>) -> Result<(usize, bool), Http1Error> {
        let mut pos = 0;
        while pos < input.len() {
            self.state = match self.state {
                ChunkState::Done => break,
                ChunkState::Failed(why) => return Err(Http1Error::Chunked(why)),
                ChunkState::Data(remaining) => {
                    let available = input.len() - pos;
                    let take = usize::try_from(remaining).map_or(available, |r| r.min(available));
                    body.extend_from_slice(&input[pos..pos + take]);
                    pos += take;
                    match remaining - take as u64 {
                        0 => ChunkState::DataCr,
                        left => ChunkState::Data(left),
                    }
                }
                state => {
                    pos += 1;
                    next_line_state(state, input[pos - 1])
                }
            };
        }
        match self.state {
            ChunkState::Failed(why) => Err(Http1Error::Chunked(why)),
            state => Ok((pos, state == ChunkState::Done)),
        }
    }
}

/// One byte of the line-oriented parts of a chunked body: size lines, the CRLF after chunk data,
/// trailer lines and the final empty line.
fn next_line_state(state: ChunkState, byte: u8) -> ChunkState {
    use ChunkState::*;
    let digit = (byte as char).to_digit(16).map(u64::from);
    if let (Size(n), Some(digit)) = (state, digit) {
        return n
            .checked_mul(16)
            .map_or(Failed("chunk size exceeds 64 bits"), |n| Size(n | digit));
    }
    match (state, byte) {
        (SizeStart, _) => digit.map_or(Failed("chunk size is not hexadecimal"), Size),
        (Size(n), b';' | b' ' | b'\t') => Extension(n),
        (Size(n) | Extension(n), b'\r') => SizeLf(n),
        (Size(_), _) => Failed("unexpected byte after a chunk size"),
        (Extension(_), b'\n') => Failed("bare LF in a chunk extension"),
        (Extension(n), _) => Extension(n),
        (SizeLf(0), b'\n') => TrailerStart,
        (SizeLf(n), b'\n') => Data(n),
        (SizeLf(_), _) => Failed("chunk-size line not ended by CRLF"),
        (DataCr, b'\r') => DataLf,
        (DataCr, _) => Failed("chunk data longer than its size"),
        (DataLf, b'\n') => SizeStart,
        (DataLf, _) => Failed("chunk data not followed by CRLF"),
        (TrailerStart, b'\r') => EndLf,
        (TrailerStart | TrailerLine, b'\n') => Failed("bare LF in the trailer section"),
        (TrailerLine, b'\r') => TrailerLf,
        (TrailerStart | TrailerLine, _) => TrailerLine,
        (TrailerLf, b'\n') => TrailerStart,
        (EndLf, b'\n') => Done,
        (TrailerLf | EndLf, _) => Failed("trailer line not ended by CRLF"),
        // `feed` handles these itself and never passes them here.
        (Data(_) | Done | Failed(_), _) => state,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A chunked body with extensions (one quoted, holding a `;`) and two trailer fields.
    const CHUNKED: &[u8] = b"4;name=value\r\nWiki\r\n6 ; q=\"a;b\"\r\npedia \r\n\
        E\r\nin \r\n\r\nchunks.\r\n0\r\nExpires: Wed, 21 Oct 2015 07:28:00 GMT\r\nX-Trace: 1\r\n\r\n";
    const DECODED: &[u8] = b"Wikipedia in \r\n\r\nchunks.";
    const NEXT_REQUEST: &[u8] = b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\n\r\n";

    /// Feeds `pieces` in turn, checking that every piece is consumed whole until the message ends.
    fn feed_pieces(pieces: &[&[u8]]) -> (usize, bool, Vec<u8>) {
        let mut decoder = ChunkedDecoder::new();
        let (mut consumed, mut done, mut body) = (0, false, Vec::new());
        for piece in pieces {
            let (n, d) = decoder.feed(piece, &mut body).unwrap();
            assert!(
                d || n == piece.len(),
                "an unfinished body consumes all input"
            );
            assert!(!done || n == 0, "a finished body consumes nothing more");
            consumed += n;
            done = d;
        }
        (consumed, done, body)
    }

    #[test]
    fn chunked_body_with_extensions_and_trailers_decodes_in_one_piece() {
        assert_eq!(
            feed_pieces(&[CHUNKED]),
            (CHUNKED.len(), true, DECODED.to_vec())
        );
        assert_eq!(feed_pieces(&[b"0\r\n\r\n"]), (5, true, Vec::new()));
    }

    #[test]
    fn chunked_body_decodes_byte_by_byte() {
        let bytes: Vec<&[u8]> = CHUNKED.chunks(1).collect();
        assert_eq!(feed_pieces(&bytes), (CHUNKED.len(), true, DECODED.to_vec()));
    }

    #[test]
    fn chunked_body_stops_at_the_next_message_at_every_split() {
        let mut stream = CHUNKED.to_vec();
        stream.extend_from_slice(NEXT_REQUEST);
        for split in 0..=stream.len() {
            let (a, b) = stream.split_at(split);
            assert_eq!(
                feed_pieces(&[a, b]),
                (CHUNKED.len(), true, DECODED.to_vec()),
                "split at {split}"
            );
        }
        assert_eq!(&stream[CHUNKED.len()..], NEXT_REQUEST);
    }

    #[test]
    fn a_finished_decoder_consumes_nothing() {
        let mut decoder = ChunkedDecoder::new();
        let mut body = Vec::new();
        assert_eq!(
            decoder.feed(b"1\r\nx\r\n0\r\n\r\nGET", &mut body),
            Ok((11, true))
        );
        assert_eq!(decoder.feed(b"GET", &mut body), Ok((0, true)));
        assert_eq!(decoder.feed(b"", &mut body), Ok((0, true)));
        assert_eq!(body, b"x");
    }

    #[test]
    fn malformed_chunked_bodies_are_errors_that_stick() {
        let cases: &[(&[u8], &str)] = &[
            (b"x\r\n", "chunk size is not hexadecimal"),
            (b"\r\n", "chunk size is not hexadecimal"),
            (b"4x\r\n", "unexpected byte after a chunk size"),
            (b"4\n", "unexpected byte after a chunk size"),
            (b"4;a\nWiki", "bare LF in a chunk extension"),
            (b"4\rX", "chunk-size line not ended by CRLF"),
            (b"2\r\nabc\r\n", "chunk data longer than its size"),
            (b"2\r\nab\rX", "chunk data not followed by CRLF"),
            (b"11111111111111111\r\n", "chunk size exceeds 64 bits"),
            (b"0\r\nX-A: b\n", "bare LF in the trailer section"),
            (b"0\r\n\rX", "trailer line not ended by CRLF"),
        ];
        for (input, why) in cases {
            let mut decoder = ChunkedDecoder::new();
            let err = Err(Http1Error::Chunked(why));
            assert_eq!(decoder.feed(input, &mut Vec::new()), err, "{input:?}");
            assert_eq!(decoder.feed(b"0\r\n\r\n", &mut Vec::new()), err);
        }
        // Sixteen hex digits fill 64 bits exactly.
        let mut decoder = ChunkedDecoder::new();
        assert_eq!(
            decoder.feed(b"ffffffffffffffff\r\n", &mut Vec::new()),
            Ok((18, false))
        );
    }

    #[test]
    fn random_bytes_never_panic_and_never_overrun_the_input() {
        let mut rng = fastrand::Rng::with_seed(9112);
        let alphabet = b"0123456789abcdefxX;= \t\r\n";
        for _ in 0..5_000 {
            let len = rng.usize(0..40);
            let input: Vec<u8> = (0..len)
                .map(|_| alphabet[rng.usize(..alphabet.len())])
                .collect();
            let mut body = Vec::new();
            if let Ok((used, _)) = ChunkedDecoder::new().feed(&input, &mut body) {
                assert!(used <= input.len() && body.len() <= used);
            }
        }
    }
}
